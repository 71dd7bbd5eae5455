"""examples/queue_admin.py run as a user would: `agentqueue worker examples.queue_admin:app` in
one process, the example script in another."""

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


async def test_queue_admin_example(env: dict[str, str], tmp_path: Path) -> None:
    with agentqueue("worker examples.queue_admin:app", env, tmp_path / "worker.log",
                    cwd=REPO) as worker:
        await worker.wait_log("Worker on queue 'images' started")
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "examples/queue_admin.py"], cwd=REPO,
            env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:5] == [
        "paused: True",
        "paused jobs: 3, delayed: 1",
        "waiting to run: ['dog.png', 'notes.txt', 'cat.jpg']",
        "paused: False",
        "cat: {'thumbnail': 'cat-200.png'}",
    ]
    assert lines[5:9] == [
        "dog: {'thumbnail': 'dog-64.png'}",
        "notes failed: notes.txt is not an image",
        "completed: ['cat-200.png', 'dog-64.png']",
        "failed: [('notes.txt', 'notes.txt is not an image')]",
    ]
    assert sorted(lines[9:12]) == [
        "event: completed: {'thumbnail': 'cat-200.png'}",
        "event: completed: {'thumbnail': 'dog-64.png'}",
        "event: failed: notes.txt is not an image",
    ]
    assert lines[12:] == [
        "cleaned 2 completed jobs; completed now: []",
        "emptied 1 job(s); counts now QueueCounts(waiting=0, active=0, completed=0, failed=1, "
        "delayed=0, paused=0, prioritized=0)",
    ]
