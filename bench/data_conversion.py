"""A large CSV through a `data-conversion` job of a real `agentqueue serve`, and what it costs.

    python bench/data_conversion.py [--size 1GB] [--to jsonl|json] [--keep]

Writes a CSV of about `--size` bytes (sizes like 1GB, 250MB, 64KB) with quoted fields, embedded
commas, quotes and line breaks and non-ASCII text; starts `agentqueue serve` (embedded Valkey,
SQLite, all in a temporary directory) with DATA_CONVERSION_ROOTS on that directory; submits the
job over HTTP with `filePath`, polls it to the end, and prints rows/s, MB/s and the worker
process's peak resident memory (VmHWM from /proc, the serve process that runs the worker;
the embedded Valkey is a process of its own and not counted) before and after the job.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
CLI = str(Path(sys.executable).with_name("agentqueue"))
NAMES = ["Ada Lovelace", "Zoë Ångström", "李小龙", "José Núñez", "Ørjan Ødegård", "Grace Hopper"]


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?B?)\s*", text.upper())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: a size such as 1GB, 250MB or 64KB")
    return int(float(match.group(1)) * UNITS[match.group(2) if match.group(2) != "K" else "KB"])


def write_csv(path: Path, size: int) -> int:
    """About `size` bytes of CSV; the number of data rows written."""
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("id,name,email,amount,active,note\r\n")
        written = 0
        while written < size:
            lines = []
            for i in range(rows, rows + 10_000):
                name = NAMES[i % len(NAMES)]
                note = ('"said ""hello, world""\nand left"' if i % 7 == 0
                        else f"order {i} shipped")
                lines.append(f"{i},{name},user{i}@example.com,{i * 1.25:.2f},"
                             f"{'true' if i % 2 else 'false'},{note}\r\n")
            chunk = "".join(lines)
            out.write(chunk)
            written += len(chunk.encode())
            rows += len(lines)
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in kB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def call(base: str, key: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        base + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=parse_size("1GB"),
                        help="the CSV's size, e.g. 1GB (default), 250MB, 64KB")
    parser.add_argument("--to", choices=["jsonl", "json"], default="jsonl")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="aq-convert-bench-"))
    (work / "in").mkdir()
    source = work / "in" / "big.csv"
    started = time.perf_counter()
    rows = write_csv(source, args.size)
    megabytes = source.stat().st_size / 1024**2
    print(f"input: {megabytes:,.1f} MB, {rows:,} rows (written in "
          f"{time.perf_counter() - started:.1f} s)")

    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "REDIS_HOST", "DATABASE_URL")}
    port = free_port()
    env.update(PORT=str(port), AGENTQUEUE_DATA_DIR=str(work / "data"), LOG_LEVEL="WARNING",
               DATA_CONVERSION_ROOTS=str(work / "in"), RATE_LIMIT_PER_MINUTE="0")
    key = subprocess.run([CLI, "keys", "create", "--user", "bench", "--org", "bench"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    base = f"http://127.0.0.1:{port}"
    with open(work / "serve.log", "wb") as log:
        server = subprocess.Popen([CLI, "serve"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/agent/queue/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"agentqueue serve did not start; see {work / 'serve.log'}")
                time.sleep(0.2)
        before = memory_kb(server.pid)
        job = call(base, key, "POST", "/api/jobs", {"type": "data-conversion", "data": {
            "filePath": "big.csv", "outputFormat": args.to}})
        submitted = time.perf_counter()
        last = ""
        while job["status"] not in ("completed", "failed", "cancelled"):
            time.sleep(0.5)
            job = call(base, key, "GET", f"/api/jobs/{job['id']}")
            message = job["progress"].get("message") or ""
            if message != last:
                print(f"  {message}".ljust(60), end="\r", flush=True)
                last = message
        elapsed = time.perf_counter() - submitted
        after = memory_kb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    print()
    if job["status"] != "completed":
        sys.exit(f"the job {job['status']}: {job['error']}")
    result = job["result"]
    print(f"csv -> {args.to}: {result['rows']:,} rows in {elapsed:.1f} s (submit to done, "
          f"counting pass included): {result['rows'] / elapsed:,.0f} rows/s, "
          f"{megabytes / elapsed:,.1f} MB/s; output {result['output']['bytes'] / 1024**2:,.1f} MB")
    print(f"worker (agentqueue serve) RSS: {before['VmRSS'] / 1024:,.1f} MB before the job, "
          f"peak {after['VmHWM'] / 1024:,.1f} MB (peak before the job "
          f"{before['VmHWM'] / 1024:,.1f} MB)")
    if args.keep:
        print(f"kept {work}")
    else:
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
