"""The examples as a user runs them: a new virtual environment (`python -m venv`), agentqueue
installed into it with pip from a copy of this checkout (dependencies from the package index
pip is configured with), its `agentqueue worker` and its python running examples/custom_job.py.
Nothing of this checkout's `src/` or the test environment is on the path."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.service import delete_service_keys, serve_env
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
# What a fresh clone would not have.
NOT_SHIPPED = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "build", "dist", "*.egg-info", "__pycache__",
    ".*_cache", ".agentqueue")


@pytest.fixture
async def env(tmp_path: Path, redis_url: str) -> AsyncIterator[dict[str, str]]:
    env = serve_env(tmp_path / "data", REDIS_URL=redis_url)
    yield env
    await delete_service_keys(env)


def user_env(settings: dict[str, str]) -> dict[str, str]:
    """The user's shell: no PYTHONPATH or virtual environment of the test run."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "REDIS_URL", "REDIS_HOST", "DATABASE_URL")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **settings}


def run(*args: str | Path, cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_custom_job_example_from_a_clean_venv(env: dict[str, str], tmp_path: Path) -> None:
    checkout = tmp_path / "agentqueue"
    shutil.copytree(REPO, checkout, ignore=NOT_SHIPPED)
    venv = tmp_path / "venv"
    shell = user_env(env)
    await asyncio.to_thread(run, sys.executable, "-m", "venv", venv, cwd=tmp_path, env=shell,
                            timeout=120)
    await asyncio.to_thread(run, venv / "bin" / "pip", "install", "--quiet", checkout,
                            cwd=tmp_path, env=shell, timeout=1000)
    where = await asyncio.to_thread(
        run, venv / "bin" / "python", "-c", "import agentqueue; print(agentqueue.__file__)",
        cwd=checkout, env=shell, timeout=60)
    assert where.strip().startswith(str(venv)), where

    log_path = tmp_path / "worker.log"
    with log_path.open("ab") as log:
        worker = await asyncio.create_subprocess_exec(
            str(venv / "bin" / "agentqueue"), "worker", "examples.custom_job:app",
            cwd=checkout, env=shell, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    try:
        async def started() -> bool:
            assert worker.returncode is None, log_path.read_text()
            return "Worker on queue 'jobs' started" in log_path.read_text()

        await eventually(started, timeout=60, what="the venv's worker started")
        out = await asyncio.to_thread(run, venv / "bin" / "python", "examples/custom_job.py",
                                      cwd=checkout, env=shell, timeout=120)
    finally:
        if worker.returncode is None:
            worker.terminate()
        await worker.wait()
    assert "result: {'words': 8, 'top': [{'word': 'the', 'count': 3}, " \
           "{'word': 'and', 'count': 2}, {'word': 'bat', 'count': 1}]}" in out
