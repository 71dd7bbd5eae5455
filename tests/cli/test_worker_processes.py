"""`agentqueue worker --processes 2`, as a user runs it: both processes serve jobs, a killed one
is replaced, and one SIGTERM stops them all gracefully."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentqueue.config import Settings
from tests.cli.pid_app import QUEUE, make_app
from tests.support.processes import AgentqueueProcess, agentqueue
from tests.support.service import delete_service_keys, serve_env
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
STARTED = re.compile(r"Worker process (\d) started \(pid (\d+)\)")


@pytest.fixture
async def env(tmp_path: Path, redis_url: str) -> AsyncIterator[dict[str, str]]:
    # One job at a time per process: two jobs active at once are on two processes.
    env = serve_env(tmp_path / "data", REDIS_URL=redis_url, QUEUE_CONCURRENCY="1")
    yield env
    await delete_service_keys(env)


def children(worker: AgentqueueProcess) -> dict[int, int]:
    """Process number -> pid of its latest start, from the supervisor's log."""
    return {int(n): int(pid) for n, pid in STARTED.findall(worker.log())}


async def served_by_all(worker: AgentqueueProcess, count: int) -> None:
    async def ready() -> bool:
        return worker.log().count(f"Worker on queue '{QUEUE}' started") >= count

    await eventually(ready, timeout=90, what=f"{count} worker process starts")


async def test_two_processes_serve_one_replaced_after_sigkill_and_one_sigterm_stops_both(
    env: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings(**env)  # type: ignore[arg-type]  # the aliases are the env names
    app = make_app(settings)
    command = "worker tests.cli.pid_app:app --no-builtin --processes 2"
    with agentqueue(command, env, tmp_path / "worker.log", cwd=REPO) as worker:
        await served_by_all(worker, 2)
        first = children(worker)
        assert len(first) == 2

        # A child that dies is replaced, and the supervisor says so.
        worker_pid = first[1]
        os.kill(worker_pid, signal.SIGKILL)
        await worker.wait_log(f"Worker process 1 (pid {worker_pid}) exited unexpectedly "
                              "(signal SIGKILL)")
        await served_by_all(worker, 3)
        current = children(worker)
        assert current[2] == first[2] and current[1] != worker_pid

        # Two jobs active at once: one on each process.
        started, release = tmp_path / "started", tmp_path / "release"
        started.mkdir()
        jobs = [await app.enqueue("whoami", {"hold_until": str(release),
                                             "started_dir": str(started)}) for _ in range(2)]

        async def both_active() -> bool:
            return len(list(started.iterdir())) == 2

        await eventually(both_active, timeout=30, what="two jobs active")
        assert {int(p.read_text()) for p in started.iterdir()} == set(current.values())

        # One SIGTERM: every process stops taking jobs and lets its active one finish.
        worker.signal(signal.SIGTERM)

        async def both_waiting() -> bool:
            return worker.log().count("Waiting up to") == 2

        await eventually(both_waiting, timeout=30, what="both processes waiting on their job")
        assert worker.proc.poll() is None, "the supervisor quit with jobs still active"
        release.touch()
        results = [await job.wait(timeout=30) for job in jobs]
        assert {r["pid"] for r in results} == set(current.values())
        assert worker.wait_exit(60) == 0
        assert "Worker processes stopped" in worker.log()
    await app.close()
