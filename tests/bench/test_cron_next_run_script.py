"""The cron next-run benchmark runs on a few calls and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cron_next_run.py"


def test_a_tiny_run_prints_the_table() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--calls", "10"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "ratio" in lines[0] and len(lines) == 5
    assert lines[1].startswith("0 9 * * 1")
