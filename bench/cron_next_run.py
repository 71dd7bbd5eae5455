"""The cost of computing a schedule's next run: agentqueue's DST-safe `next_run_ms` beside the
bullmq package's `default_repeat_strategy` (its peer, which gets change days wrong), one run.

    python bench/cron_next_run.py [--calls 20000]

A worker computes one next run per run it takes, so this is per-run overhead. Prints
microseconds per call for each pattern and the ratio to the package's.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bullmq.job_scheduler import default_repeat_strategy

from agentqueue.engine.cron import next_run_ms

PATTERNS = ["0 9 * * 1", "*/15 * * * *", "* * * * *", "30 2 * * *"]
TZ = "America/New_York"
START_MS = 1_796_000_000_000


def per_call_us(call: Callable[[int], object], calls: int) -> float:
    began = time.perf_counter()
    for i in range(calls):
        call(START_MS + i * 61_000)
    return (time.perf_counter() - began) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls
    print(f"{'pattern':<16}{'bullmq us/call':>16}{'agentqueue us/call':>20}{'ratio':>8}")
    for pattern in PATTERNS:
        peer = per_call_us(lambda at, p=pattern: default_repeat_strategy(  # type: ignore[misc]
            at, {"pattern": p, "tz": TZ}), calls)
        ours = per_call_us(lambda at, p=pattern: next_run_ms(p, TZ, at), calls)  # type: ignore[misc]
        print(f"{pattern:<16}{peer:>16.1f}{ours:>20.1f}{ours / peer:>8.2f}")


if __name__ == "__main__":
    main()
