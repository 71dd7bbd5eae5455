"""bench/push_deltas.py and bench/push_load.py run end to end on a tiny load and print their
tables (the figures themselves are for people, not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run(script: str, redis_url: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), *args],
                          env={**os.environ, "REDIS_URL": redis_url},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_push_deltas_prints_each_subscribers_delay_beside_coalesced_progress(
        redis_url: str) -> None:
    out = run("push_deltas.py", redis_url, "--jobs", "1", "--words", "8", "--pace", "0.01")
    for row in ("SSE", "WebSocket", "Job.events delta", "coalesced progress (peer)"):
        assert row in out
    assert "p99 coalesced progress / p99 SSE delta" in out


def test_push_load_prints_latency_and_rss_for_one_and_many_subscribers(redis_url: str) -> None:
    out = run("push_load.py", redis_url, "--subscribers", "5", "--jobs", "2", "--rate", "4")
    assert "RSS" in out and "p99 with 5 subscribers / with 1" in out
    lines = [line.split() for line in out.splitlines() if line.strip().startswith(("1 ", "5 "))]
    assert [row[2] for row in lines] == ["1", "5"]  # every subscriber heard every job
