"""The seed 001 workflows-and-bulk benchmark runs end to end on a few items and prints its
figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "seed001_workflows_bulk.py"


def test_a_tiny_run_prints_its_figures(redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--items", "20", "--steps", "3"],
        env={**env, "REDIS_URL": redis_url}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "what,figure"
    assert lines[1].startswith("bulk-operation,20 items in ") and "items/s" in lines[1]
    assert lines[2].startswith("one job per item,20 jobs in ")
    assert lines[3].startswith("workflow chain,3 steps in ") and "per step" in lines[3]
