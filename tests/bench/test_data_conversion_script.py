"""The data-conversion benchmark runs end to end on a small CSV and prints its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "data_conversion.py"


def test_a_small_run_prints_rows_per_second_and_peak_rss() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--size", "256KB"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rows/s" in done.stdout and "peak" in done.stdout and "RSS" in done.stdout
