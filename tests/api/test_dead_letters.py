"""Dead letters over HTTP (`/api/dead-letters`) and from Python (`App.dead_letters`, `replay`):
a job that spent its attempts is listed with its error and stack, owned like jobs, and replayed
one by one or in bulk, with new data if given; the log says so as seed 002 shows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import agentqueue
from agentqueue.config import Settings
from tests.support.app_api import app_api
from tests.support.waiting import eventually
from tests.support.workers import app_worker


class Task(BaseModel):
    ok: bool = False
    n: int = 0


def make_app(settings: Settings) -> agentqueue.App:
    app = agentqueue.App(settings=settings, builtin=False)

    @app.job("doomed", attempts=3, backoff="fixed", backoff_ms=10)
    async def doomed(ctx: agentqueue.JobContext, data: Task) -> dict[str, Any]:
        if not data.ok:
            raise RuntimeError(f"provider refused task {data.n}")
        return {"done": data.n}

    return app


def service(redis_url: str, prefix: str, tmp_path: Path) -> Any:
    return app_api(make_app, redis_url, prefix, tmp_path)


async def _dead(http: httpx.AsyncClient, ref: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        answer = await http.get(f"/api/dead-letters/{ref}")
        return answer.json() if answer.status_code == 200 else None

    return await eventually(probe, what=f"{ref} a dead letter")


async def _status(http: httpx.AsyncClient, ref: str, wanted: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job = (await http.get(f"/api/jobs/{ref}")).json()
        return job if job["status"] == wanted else None

    return await eventually(probe, what=f"{ref} {wanted}")


async def test_a_job_that_spent_its_attempts_is_listed_and_replayed_with_new_data(
    redis_url: str, prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with service(redis_url, prefix, tmp_path) as (_, services, http):
        with caplog.at_level(logging.INFO, logger="agentqueue.jobs"):
            created = await http["alice"].post("/api/jobs",
                                               json={"type": "doomed", "data": {"n": 7}})
            assert created.status_code == 201
            ref = created.json()["id"]
            letter = await _dead(http["alice"], ref)
        job_id = ref.partition(":")[2]
        assert f"Job {job_id} moved to dead letter queue after 3 attempts" in caplog.text
        assert letter["error"] == "provider refused task 7"
        assert letter["attemptsMade"] == 3 and letter["maxAttempts"] == 3
        assert letter["status"] == "failed" and letter["type"] == "doomed"
        assert letter["userId"] == "alice" and letter["data"] == {"n": 7}
        # The stack names the service's code: admins see it, the job's owner its error only.
        assert letter["stacktrace"] == []
        stack = (await http["root"].get(f"/api/dead-letters/{ref}")).json()["stacktrace"]
        assert any("RuntimeError: provider refused task 7" in s for s in stack)

        listed = (await http["alice"].get("/api/dead-letters")).json()
        assert [x["id"] for x in listed["deadLetters"]] == [ref] and listed["total"] == 1
        # Owned like jobs: bob neither lists nor replays alice's; the admin sees all.
        assert (await http["bob"].get("/api/dead-letters")).json()["total"] == 0
        assert (await http["bob"].get(f"/api/dead-letters/{ref}")).status_code == 404
        assert (await http["bob"].post(f"/api/dead-letters/{ref}/replay")).status_code == 404
        assert (await http["root"].get("/api/dead-letters")).json()["total"] == 1

        # New data is checked as a create checks it.
        bad = await http["alice"].post(f"/api/dead-letters/{ref}/replay",
                                       json={"data": {"n": "seven"}})
        assert bad.status_code == 400 and "data.n" in bad.json()["message"]

        replayed = await http["alice"].post(f"/api/dead-letters/{ref}/replay",
                                            json={"data": {"ok": True, "n": 8}})
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["id"] == ref  # the same job, run again
        done = await _status(http["alice"], ref, "completed")
        assert done["result"] == {"done": 8} and done["data"] == {"ok": True, "n": 8}
        assert done["attempts"] == 1  # attempts counted afresh
        assert (await http["alice"].get("/api/dead-letters")).json()["total"] == 0
        # No longer a dead letter: replaying it again is a 404.
        again = await http["alice"].post(f"/api/dead-letters/{ref}/replay")
        assert again.status_code == 404


async def test_bulk_replay_by_ids_and_all(redis_url: str, prefix: str, tmp_path: Path) -> None:
    async with service(redis_url, prefix, tmp_path) as (_, services, http):
        refs = []
        for n in range(3):
            answer = await http["alice"].post("/api/jobs",
                                              json={"type": "doomed", "data": {"n": n}})
            refs.append(answer.json()["id"])
        for ref in refs:
            await _dead(http["alice"], ref)
        # By ids, without new data: they fail again (their data still fails), each replayed.
        answer = await http["alice"].post("/api/dead-letters/replay",
                                          json={"ids": [refs[0], "jobs:999", "nonsense"]})
        assert answer.status_code == 200
        body = answer.json()
        assert body["replayed"] == 1
        assert [(r["id"], r["replayed"]) for r in body["results"]] == [
            (refs[0], True), ("jobs:999", False), ("nonsense:", False)]
        assert body["results"][1]["error"] == "Dead letter jobs:999 not found"
        async def all_dead() -> bool:  # refs[0] dead again after three more attempts
            listed = (await http["alice"].get("/api/dead-letters")).json()
            return bool(listed["total"] == 3)

        await eventually(all_dead, what="three dead letters listed")
        # All of them, with data that succeeds.
        answer = await http["alice"].post("/api/dead-letters/replay",
                                          json={"all": True, "data": {"ok": True, "n": 1}})
        assert answer.json()["replayed"] == 3
        for ref in refs:
            await _status(http["alice"], ref, "completed")
        refused = await http["alice"].post("/api/dead-letters/replay", json={})
        assert refused.status_code == 400


async def test_dead_letters_from_python(redis_url: str, prefix: str, tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=tmp_path)
    app = make_app(settings)
    try:
        async with app_worker(app):
            job = await app.enqueue("doomed", {"n": 1}, owner="carol")
            with pytest.raises(agentqueue.JobFailed):
                await job.wait(timeout=30)

            async def listed() -> list[Any]:
                return await app.dead_letters()

            [letter] = await eventually(listed, what="a dead letter")
            assert (letter.queue, letter.job_id, letter.error) == (
                job.queue, job.id, "provider refused task 1")
            assert letter.attempts_made == 3 and letter.user_id == "carol"
            assert letter.stacktrace
            assert await app.queue(job.queue).dead_letters() == [letter]
            assert await app.queue("other").dead_letters() == []
            with pytest.raises(agentqueue.InvalidJobInput):
                await app.replay(job.queue, job.id, data={"n": "x"})
            again = await app.replay(job.queue, job.id, data=Task(ok=True, n=2))
            assert await again.wait(timeout=30) == {"done": 2}

            async def none_left() -> bool:
                return await app.dead_letters() == []

            await eventually(none_left, what="no dead letters")
            outcomes = await app.replay_dead_letters([(job.queue, job.id)])
            assert [(o.replayed, o.error) for o in outcomes] == [
                (False, f"Job {job.id} not found")]
    finally:
        await app.close()
