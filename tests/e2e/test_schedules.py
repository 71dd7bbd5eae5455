"""Schedules over one `agentqueue serve` and two more `agentqueue worker` processes: HTTP
(owned like jobs), runs taken once across the three, and the `agentqueue schedules` CLI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.processes import CLI, AgentqueueProcess, agentqueue, free_port
from tests.support.service import create_key, delete_service_keys, serve_env
from tests.support.waiting import eventually

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    env = serve_env(tmp_path_factory.mktemp("data"))
    if "REDIS_URL" not in env:  # the workers and the CLI reach the embedded server here
        env["AGENTQUEUE_EMBEDDED_PORT"] = str(free_port())
    redis_url = env.get("REDIS_URL") or f"redis://127.0.0.1:{env['AGENTQUEUE_EMBEDDED_PORT']}/0"
    keys = {
        "alice": create_key(env, "--user", "alice", "--org", "acme"),
        "bob": create_key(env, "--user", "bob", "--org", "acme"),
        "carol": create_key(env, "--user", "carol", "--org", "globex"),
        "root": create_key(env, "--user", "root", "--org", "ops", "--admin"),
    }
    logs = tmp_path_factory.mktemp("logs")
    worker_env = {**env, "REDIS_URL": redis_url, "PORT": str(free_port())}
    with agentqueue("serve", env, logs / "serve.log") as proc:
        await proc.wait_healthy()
        with agentqueue("worker", worker_env, logs / "w1.log") as w1, \
                agentqueue("worker", {**worker_env, "PORT": str(free_port())},
                           logs / "w2.log") as w2:
            await w1.wait_log("started")
            await w2.wait_log("started")
            yield {"proc": proc, "keys": keys, "env": {**env, "REDIS_URL": redis_url}}
    await delete_service_keys(env)


def client(service: dict[str, Any], who: str) -> httpx.AsyncClient:
    proc: AgentqueueProcess = service["proc"]
    return httpx.AsyncClient(base_url=proc.base_url, timeout=30,
                             headers={"Authorization": f"Bearer {service['keys'][who]}"})


MONDAY = {"type": "agent-task", "data": {"title": "Monday morning report"},
          "cron": "0 9 * * 1", "tz": "America/New_York", "priority": 7}


async def test_create_read_update_pause_delete_owned_like_jobs(
        service: dict[str, Any]) -> None:
    async with client(service, "alice") as alice, client(service, "bob") as bob, \
            client(service, "carol") as carol, client(service, "root") as root:
        made = await alice.post("/api/schedules", json={**MONDAY, "id": "task-123"})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["id"] == "task-123" and body["userId"] == "alice"
        assert len(body["nextRuns"]) == 5 and body["nextRun"] == body["nextRuns"][0]
        for run in body["nextRuns"]:
            local = datetime.fromisoformat(run.replace("Z", "+00:00")).astimezone(NY)
            assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)

        # Someone else's schedule does not exist for them (same org included).
        for other in (bob, carol):
            assert (await other.get("/api/schedules/task-123")).status_code == 404
            assert (await other.patch("/api/schedules/task-123",
                                      json={"cron": "0 8 * * *"})).status_code == 404
            assert (await other.post("/api/schedules/task-123/pause")).status_code == 404
            assert (await other.delete("/api/schedules/task-123")).status_code == 404
            assert "task-123" not in [s["id"] for s in
                                      (await other.get("/api/schedules")).json()["schedules"]]
        taken = await bob.post("/api/schedules", json={**MONDAY, "id": "task-123"})
        assert taken.status_code == 409 and "taken" in taken.json()["message"]
        assert "task-123" in [s["id"] for s in
                              (await root.get("/api/schedules")).json()["schedules"]]

        changed = (await alice.patch("/api/schedules/task-123",
                                     json={"cron": "30 10 * * 1"})).json()
        local = datetime.fromisoformat(changed["nextRun"].replace("Z", "+00:00")).astimezone(NY)
        assert (local.hour, local.minute) == (10, 30) and changed["tz"] == "America/New_York"

        paused = (await alice.post("/api/schedules/task-123/pause")).json()
        assert paused["paused"] is True and paused["nextRun"] is None
        resumed = (await alice.post("/api/schedules/task-123/resume")).json()
        assert resumed["paused"] is False and resumed["nextRun"] is not None

        assert (await alice.delete("/api/schedules/task-123")).status_code == 204
        assert (await alice.get("/api/schedules/task-123")).status_code == 404


@pytest.mark.parametrize(("change", "says"), [
    ({"cron": "0 9 * *"}, "cron:"),
    ({"cron": "0 9 * * 8"}, "cron:"),
    ({"tz": "America/Nowhere"}, "tz: unknown time zone"),
    ({"cron": None, "every": 5}, "every:"),
    ({"every": 60000}, "either cron"),
    ({"cron": None}, "either cron"),
    ({"type": "no-such-type"}, "type: unknown job type"),
    ({"data": {}}, "data"),
    ({"id": "has:colon"}, "id:"),
    ({"startDate": "yesterday"}, "start"),
    ({"limit": 0}, "limit"),
])
async def test_bad_schedules_are_refused_with_a_message(
        service: dict[str, Any], change: dict[str, Any], says: str) -> None:
    async with client(service, "alice") as alice:
        refused = await alice.post("/api/schedules", json={**MONDAY, **change})
        assert refused.status_code == 400, refused.text
        assert says in refused.json()["message"]


async def test_runs_are_taken_once_across_three_workers(service: dict[str, Any]) -> None:
    every = 400
    async with client(service, "alice") as alice, client(service, "carol") as carol:
        made = await alice.post("/api/schedules", json={
            "type": "sentiment", "data": {"text": "I love this, it is great"},
            "every": every, "limit": 6, "id": "often"})
        assert made.status_code == 201, made.text

        async def all_done() -> dict[str, Any] | None:
            body: dict[str, Any] = (await alice.get("/api/schedules/often/runs")).json()
            statuses = [run["status"] for run in body["runs"]]
            return body if statuses == ["completed"] * 6 else None

        runs = (await eventually(all_done, timeout=60, what="six completed runs"))["runs"]
        ticks = sorted(int(run["id"].rsplit(":", 1)[1]) for run in runs)
        assert len(set(ticks)) == 6
        # One run per tick: a second chain of runs would put two within one interval.
        assert all(later - earlier >= every for earlier, later in zip(ticks, ticks[1:],
                                                                      strict=False))
        assert all(run["userId"] == "alice" and run["attempts"] == 1 for run in runs)
        first = runs[0]["id"]
        assert (await alice.get(f"/api/jobs/{first}")).json()["result"]["provider"] == "builtin"
        assert (await carol.get(f"/api/jobs/{first}")).status_code == 404
        assert (await carol.get("/api/schedules/often/runs")).status_code == 404
        done = (await alice.get("/api/schedules/often")).json()
        assert done["iterations"] == 6 and done["nextRun"] is None


def cli(service: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "schedules", *args], env={**os.environ, **service["env"]},
                          capture_output=True, text=True, timeout=60)


async def test_the_cli_lists_shows_pauses_resumes_and_removes(service: dict[str, Any]) -> None:
    async with client(service, "alice") as alice:
        made = await alice.post("/api/schedules", json={**MONDAY, "id": "cli-report"})
        assert made.status_code == 201, made.text
    listed = cli(service, "list", "--runs", "2")
    assert listed.returncode == 0, listed.stderr
    assert "cli-report" in listed.stdout and "0 9 * * 1" in listed.stdout
    assert listed.stdout.count("09:00 E") >= 2  # its next two runs, in New York time
    shown = cli(service, "show", "cli-report")
    assert shown.returncode == 0 and "Monday morning report" in shown.stdout
    assert cli(service, "pause", "cli-report").returncode == 0
    assert "paused" in cli(service, "list").stdout
    resumed = cli(service, "resume", "cli-report")
    assert resumed.returncode == 0 and "next run" in resumed.stdout
    assert cli(service, "remove", "cli-report").returncode == 0
    missing = cli(service, "show", "cli-report")
    assert missing.returncode == 1 and "No schedule" in missing.stderr


async def test_a_schedule_survives_a_restart_and_runs_a_missed_tick_once(
        tmp_path: Any) -> None:
    """Everything stops (API, workers, the embedded server); ticks pass; on restart the
    schedule is still there, the run that fell due meanwhile runs once (catch-up "once"),
    and the schedule goes on from now."""
    import time

    env = serve_env(tmp_path / "data")
    if "REDIS_URL" not in env:
        env["AGENTQUEUE_EMBEDDED_PORT"] = str(free_port())
    key = create_key(env, "--user", "dave", "--org", "acme")
    headers = {"Authorization": f"Bearer {key}"}

    async def ticks(http: httpx.AsyncClient) -> list[int]:
        body = (await http.get("/api/schedules/steady/runs?limit=100")).json()
        return sorted(int(run["id"].rsplit(":", 1)[1]) for run in body["runs"]
                      if run["status"] == "completed")

    try:
        with agentqueue("serve", env, tmp_path / "first.log") as proc:
            await proc.wait_healthy()
            async with httpx.AsyncClient(base_url=proc.base_url, headers=headers,
                                         timeout=30) as http:
                made = await http.post("/api/schedules", json={
                    "type": "sentiment", "data": {"text": "steady"}, "every": 1000,
                    "id": "steady"})
                assert made.status_code == 201, made.text
                await eventually(lambda: ticks(http), what="a first run")
        down_ms = time.time() * 1000

        async def passed() -> bool:
            return time.time() * 1000 - down_ms > 3500

        await eventually(passed, timeout=10, interval=0.2, what="ticks to pass while down")
        up_ms = time.time() * 1000  # ticks from here on are the restarted service's own
        with agentqueue("serve", env, tmp_path / "second.log") as proc:
            await proc.wait_healthy()
            async with httpx.AsyncClient(base_url=proc.base_url, headers=headers,
                                         timeout=30) as http:
                assert (await http.get("/api/schedules/steady")).status_code == 200

                async def going_on() -> list[int] | None:
                    done = await ticks(http)
                    return done if any(t > up_ms for t in done) else None

                done = await eventually(going_on, timeout=60, what="runs after the restart")
                assert (await http.delete("/api/schedules/steady")).status_code == 204
        missed = [t for t in done if down_ms < t < up_ms]
        assert len(missed) == 1, f"ticks while down {missed}, all {done}"
    finally:
        await delete_service_keys(env)
