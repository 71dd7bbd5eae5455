"""examples/agent_tasks.py (seed 002's calls, sync) run as a user would, against
`agentqueue worker examples.agent_tasks:app` in another process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.processes import agentqueue
from tests.support.service import delete_service_keys, serve_env

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def env(tmp_path: Path, redis_url: str) -> AsyncIterator[dict[str, str]]:
    env = serve_env(tmp_path / "data", REDIS_URL=redis_url)
    yield env
    await delete_service_keys(env)


async def test_agent_tasks_example(env: dict[str, str], tmp_path: Path) -> None:
    with agentqueue("worker examples.agent_tasks:app", env, tmp_path / "worker.log",
                    cwd=REPO) as worker:
        await worker.wait_log("Worker on queue 'reports' started")
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "examples/agent_tasks.py"], cwd=REPO,
            env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "result: {'task_id': 'task-1', 'report': 'done: Weekly report'}",
        "- Waiting: 0", "- Active: 0", "- Completed: 1", "- Failed: 0", "- Delayed: 0",
        "- Paused: 0",
        "while paused: paused",
        "removed: True cancelled",
        "getJob: completed None",
        "cleaned: 0",
    ]
