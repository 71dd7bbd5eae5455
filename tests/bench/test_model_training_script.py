"""The model-training benchmark runs on a few examples and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "model_training.py"


def test_a_tiny_run_prints_the_table() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--sizes", "20", "--labels", "2",
                           "--folds", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert "accuracy" in header and "peak RSS MB" in header
    assert row.split()[:2] == ["20", "2"]
