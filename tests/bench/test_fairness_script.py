"""bench/fairness.py runs end to end on a tiny load and prints both runs and the ratio."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_fairness_prints_both_runs_and_the_ratio(redis_url: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "fairness.py"), "--a-jobs", "20", "--b-jobs", "2",
         "--work-ms", "1", "--cap", "2"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "REDIS_URL": redis_url})
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()[-4:]
    assert table[1].startswith("without fairness") and table[2].startswith("with fairness")
    assert table[3].startswith("ratio (without / with)")
