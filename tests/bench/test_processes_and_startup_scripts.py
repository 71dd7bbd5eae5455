"""bench/processes.py and bench/startup.py run end to end on a tiny load and print their tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_processes_prints_both_modes_and_the_ratio(redis_url: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "processes.py"), "--jobs", "20", "--io-jobs", "20",
         "--rounds", "1", "--sqlite", "--redis-url", redis_url],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()[-3:]
    assert "--processes 1" in table[0] and "--processes 2" in table[0] and "ratio" in table[0]
    assert [line.split()[0] for line in table[1:]] == ["noop", "io"]
    assert all(line.endswith("x") and line.count("/s") == 2 for line in table[1:])


def test_startup_prints_each_start_beside_the_peer(redis_url: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "startup.py"), "--runs", "1", "--warmup-runs", "0",
         "--idle-seconds", "0.2", "--redis-url", redis_url],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()[-6:]
    assert "x peer" in table[0] and "RSS MB" in table[0]
    names = ("bare uvicorn app (peer)", "serve, fresh data dir", "serve, warm data dir", "api",
             "worker --processes 1")
    assert [line[:28].strip() for line in table[1:]] == list(names)
    assert table[1].split()[5] == "1.00"  # the peer's own ratio
    assert len(table[2].split()) == 9  # serve: ready, ratio, CPU, RSS and Valkey's RSS
