"""Start-up time and idle memory of the `agentqueue` commands, beside a bare uvicorn app.

    python bench/startup.py [--runs 5]

Each figure is the median of `--runs` starts; the kinds of start alternate within each run, so
all of them see the same machine. Measured from spawning the process:
- `agentqueue serve` (embedded Valkey + SQLite): until `GET /agent/queue/health` answers 200,
  with a fresh data directory (Valkey, database and migrations from nothing) and a warm one
  (the directory of an earlier start: the schema is already at head);
- `agentqueue api` (REDIS_URL, SQLite in a warm data directory): until health answers 200;
- `agentqueue worker` with WORKER_PROCESSES=1 (REDIS_URL): until its log says every queue's
  worker started;
- the peer: `python -m uvicorn` serving a FastAPI app with one route (`bench/startup_peer.py`),
  until that route answers 200. The ratio to it is what holds on a noisy machine.
Also the CPU seconds the process used until then (user + system, from /proc; Valkey's not
included), and its resident memory (VmRSS) `--idle-seconds` (2) after it was ready; for
`serve`, the embedded Valkey child's is given apart. REDIS_URL (default
redis://127.0.0.1:6379/0) gets a key prefix of its own.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).parent / "agentqueue")
TICKS = os.sysconf("SC_CLK_TCK")
WORKER_QUEUES = 5  # the built-in queues, each logging "Worker on queue '…' started"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False
    return probe


def logged(path: Path, text: str, count: int) -> Callable[[], bool]:
    return lambda: path.read_text(errors="replace").count(text) >= count


@dataclass
class Figures:
    ready_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    child_rss: list[float] = field(default_factory=list)


def start(command: list[str], env: dict[str, str], log: Path,
          ready: Callable[[Path], Callable[[], bool]], figures: Figures,
          idle_s: float) -> None:
    with log.open("wb") as out:
        began = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        probe = ready(log)
        try:
            deadline = began + 120
            while not probe():
                if proc.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"{command} did not start:\n{log.read_text()}")
                time.sleep(0.005)
            figures.ready_s.append(time.perf_counter() - began)
            figures.cpu_s.append(cpu_seconds(proc.pid))
            time.sleep(idle_s)
            figures.rss.append(rss_mb(proc.pid))
            kids = children_of(proc.pid)
            if kids:
                figures.child_rss.append(sum(rss_mb(kid) for kid in kids))
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup-runs", type=int, default=1,
                        help="starts of each kind before the measured ones (not counted)")
    parser.add_argument("--idle-seconds", type=float, default=2.0,
                        help="how long after being ready the memory is read")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items()
            if k not in ("REDIS_URL", "REDIS_HOST", "DATABASE_URL", "OPENAI_API_KEY",
                         "ANTHROPIC_API_KEY")}
    results: dict[str, Figures] = {name: Figures() for name in (
        "bare uvicorn app (peer)", "serve, fresh data dir", "serve, warm data dir", "api",
        "worker --processes 1")}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        warm = tmp / "warm"
        external = {"REDIS_URL": args.redis_url,
                    "QUEUE_PREFIX": f"benchstart-{uuid.uuid4().hex[:8]}",
                    "AGENTQUEUE_DATA_DIR": str(tmp / "external")}
        # The warm-up runs fill the OS caches (and the warm data dir); the first measured
        # "warm" start then finds the schema that a warm-up (or the fresh start) created.
        warmups = args.warmup_runs
        for run in range(1 - warmups, args.runs + 1):
            figures = results if run > 0 else {name: Figures() for name in results}
            port = free_port()
            start([sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "--port", str(port),
                   "--log-level", "warning", "startup_peer:app"], base, tmp / "peer.log",
                  lambda _log, p=port: http_ok(f"http://127.0.0.1:{p}/"),
                  figures["bare uvicorn app (peer)"], args.idle_seconds)
            for name, data_dir in (("serve, fresh data dir", tmp / f"fresh-{run + warmups}"),
                                   ("serve, warm data dir", warm)):
                port = free_port()
                env = {**base, "PORT": str(port), "AGENTQUEUE_DATA_DIR": str(data_dir)}
                start([CLI, "serve"], env, tmp / "serve.log",
                      lambda _log, p=port: http_ok(f"http://127.0.0.1:{p}/agent/queue/health"),
                      figures[name], args.idle_seconds)
            port = free_port()
            start([CLI, "api"], {**base, **external, "PORT": str(port)}, tmp / "api.log",
                  lambda _log, p=port: http_ok(f"http://127.0.0.1:{p}/agent/queue/health"),
                  figures["api"], args.idle_seconds)
            start([CLI, "worker"], {**base, **external, "WORKER_PROCESSES": "1"},
                  tmp / "worker.log",
                  lambda log: logged(log, "Worker on queue", WORKER_QUEUES),
                  figures["worker --processes 1"], args.idle_seconds)
            if run > 0:
                print(f"run {run}: " + ", ".join(f"{name} {f.ready_s[-1]:.2f}s"
                                                 for name, f in results.items()), flush=True)
    peer = statistics.median(results["bare uvicorn app (peer)"].ready_s)
    print(f"\nmedians of {args.runs} runs (os.cpu_count() = {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"{'start':28s} {'ready s':>8s} {'x peer':>7s} {'CPU s':>6s} {'RSS MB':>7s} "
          f"{'Valkey MB':>9s}")
    for name, f in results.items():
        ready = statistics.median(f.ready_s)
        child = f"{statistics.median(f.child_rss):9.1f}" if f.child_rss else f"{'':9s}"
        print(f"{name:28s} {ready:8.2f} {ready / peer:7.2f} {statistics.median(f.cpu_s):6.2f} "
              f"{statistics.median(f.rss):7.1f} {child}")


if __name__ == "__main__":
    main()
