"""`agentqueue jobs list | show | submit | wait | cancel | retry`, run as a user would, against a
real `agentqueue serve`: over HTTP with an API key (remote) and on its Redis and records
(direct)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.cli.conftest import Done, Run, Service, one_line_error, start
from tests.support.processes import CLI, free_port
from tests.support.waiting import eventually


def steps(**data: str) -> str:
    return json.dumps(data)


def test_submit_wait_show_and_list_a_job(cli: Run, ops_service: Service) -> None:
    done = cli("jobs", "submit", "steps", steps(), "--wait", "--json")
    job = done.json()
    assert job["status"] == "completed" and job["result"] == {"ok": True}
    assert job["id"].startswith("ops:") and job["type"] == "steps"
    assert job["progress"]["percentage"] == 100

    shown = cli("jobs", "show", job["id"])
    assert shown.code == 0, shown.stderr
    assert job["id"] in shown.stdout and "completed" in shown.stdout
    assert '"ok": true' in shown.stdout

    listed = cli("jobs", "list", "--type", "steps", "--status", "completed", "--limit", "500",
                 "--json").json()
    assert job["id"] in [j["id"] for j in listed["jobs"]]
    assert {j["status"] for j in listed["jobs"]} == {"completed"}
    table = cli("jobs", "list", "--type", "steps")
    assert table.code == 0 and job["id"] in table.stdout


def test_submit_prints_the_id_alone_on_stdout(cli: Run) -> None:
    done = cli("jobs", "submit", "steps", steps())
    assert done.code == 0, done.stderr
    ref = done.stdout.strip()
    assert ref.startswith("ops:") and "\n" not in ref
    assert f"agentqueue jobs wait {ref}" in done.stderr
    assert cli("jobs", "wait", ref, "--json").json()["status"] == "completed"


async def test_wait_shows_progress_and_streamed_text_until_the_result(
        ops_service: Service, mode: str, cli: Run, tmp_path: Path) -> None:
    release, then = (tmp_path / f"{name}-{uuid.uuid4().hex}" for name in ("release", "then"))
    ref = cli("jobs", "submit", "steps", steps(release=str(release), then=str(then)),
              "--json").json()["id"]

    waiting = await start(ops_service, mode, "jobs", "wait", ref)
    seen = b""

    def shows(text: str) -> Callable[[], Awaitable[bool]]:
        async def shown() -> bool:
            nonlocal seen
            assert waiting.stderr is not None
            seen += await waiting.stderr.read(4096)
            return text.encode() in seen
        return shown

    await eventually(shows("progress 1/3 (33.33%) step one"), timeout=60, what="step one")
    release.touch()
    await eventually(shows("Hello world"), timeout=60, what="the streamed text")
    then.touch()
    out, rest = await asyncio.wait_for(waiting.communicate(), 60)
    shown = (seen + rest).decode()
    assert waiting.returncode == 0, shown
    assert json.loads(out) == {"ok": True}  # the result, on stdout alone
    assert shown.rstrip().endswith("completed")
    if mode == "direct":  # it hears every event; remote mode polls every 0.5 s
        assert "progress 3/3 (100%) done" in shown


def test_a_failed_job_exits_non_zero_and_can_be_retried(cli: Run) -> None:
    done = cli("jobs", "submit", "steps", steps(fail="the input was bad"), "--wait")
    error = one_line_error(done)
    assert "failed" in error and "the input was bad" in error
    ref = error.split()[2]

    assert cli("jobs", "show", ref, "--json").json()["error"] == "the input was bad"
    retried = cli("jobs", "retry", ref, "--json").json()
    assert retried["status"] in ("pending", "active", "failed")
    waited = cli("jobs", "wait", ref, "--json")
    assert waited.code == 1
    assert json.loads(waited.stdout)["attempts"] >= 1  # --json still prints the job

    again = one_line_error(cli("jobs", "cancel", ref))
    assert "finished" in again


def test_cancel_a_waiting_job(cli: Run, tmp_path: Path) -> None:
    # The worker holds the first job; a delayed one is still waiting when cancelled.
    ref = cli("jobs", "submit", "steps", steps(), "--delay", "600000", "--json").json()["id"]
    assert cli("jobs", "show", ref, "--json").json()["status"] == "pending"
    cancelled = cli("jobs", "cancel", ref, "--json").json()
    assert cancelled["status"] == "cancelled"
    assert "cancelled" in one_line_error(cli("jobs", "wait", ref))
    assert "Retrying" in cli("jobs", "retry", ref).stdout


def test_errors_are_one_line(cli: Run, mode: str) -> None:
    assert "QUEUE:ID" in one_line_error(cli("jobs", "show", "nonsense"))
    assert "not found" in one_line_error(cli("jobs", "show", "ops:999999"))
    assert "JSON" in one_line_error(cli("jobs", "submit", "steps", "[1"))
    assert "unknown job type" in one_line_error(cli("jobs", "submit", "no-such-type")).lower()
    assert "--status" in one_line_error(cli("jobs", "list", "--status", "finished"))
    if mode == "remote":
        assert "direct mode" in one_line_error(cli("jobs", "list", "--queue", "ops"))


def test_remote_mode_needs_a_key_and_sees_only_the_keys_jobs(
        ops_service: Service, cli: Run, mode: str) -> None:
    if mode == "direct":
        return
    assert "401" in one_line_error(cli("jobs", "list", key="aq_not-a-key"))
    mine = cli("jobs", "submit", "steps", steps(), "--json", key=ops_service.user_key).json()
    assert mine["userId"] == "alice"
    theirs = cli("jobs", "list", "--limit", "500", "--json", key=ops_service.user_key).json()
    assert {j["userId"] for j in theirs["jobs"]} == {"alice"}


def test_unreachable_backends_are_one_line(ops_service: Service) -> None:
    base = {k: v for k, v in os.environ.items()
            if k not in ("REDIS_URL", "REDIS_HOST", "AGENTQUEUE_URL", "DATABASE_URL")}
    nowhere = f"http://127.0.0.1:{free_port()}"
    for env, expected in (
            ({**base, "AGENTQUEUE_URL": nowhere}, f"cannot reach {nowhere}"),
            ({**base, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
              "AGENTQUEUE_DATA_DIR": str(ops_service.tmp / "other")}, "Redis (REDIS_URL)")):
        done = subprocess.run([CLI, "queues"], env=env, capture_output=True, text=True,
                              timeout=60)
        line = one_line_error(Done(done.returncode, done.stdout, done.stderr))
        assert expected in line, line
