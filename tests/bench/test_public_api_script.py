"""The public API benchmark runs end to end on a few jobs and prints its table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "public_api.py"


def test_a_tiny_run_prints_the_table(redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # SQLite only: quick
    done = subprocess.run(
        [sys.executable, str(BENCH), "--jobs", "5", "--concurrency", "2"],
        env={**env, "REDIS_URL": redis_url}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "ratio" in lines[1]
    measured = [line for line in lines if "bullmq" in line]
    assert [line.split(",")[0] for line in measured] == [
        "enqueue", "enqueue", "processing", "processing"]
    assert "records on SQLite" in measured[0] and "without records" in measured[3]
    for line in measured:
        assert line.count("j/s") == 2  # agentqueue's rate and the peer's
        assert "bullmq" in line
