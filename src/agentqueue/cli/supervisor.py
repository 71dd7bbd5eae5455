"""`agentqueue worker --processes N`: N worker processes under one supervisor.

Each child is `agentqueue worker ... --processes 1`, started afresh (a new interpreter, as
multiprocessing's spawn would, without pickling anything): the children share nothing but Redis
and the records database, exactly like workers on several machines, so the same guarantees hold
(maintenance duties under a Redis lease, records written with compare-and-set).

- One shutdown: SIGTERM/SIGINT to the supervisor sends SIGTERM to every child, which stops taking
  jobs and lets its active ones finish within SHUTDOWN_GRACE_SECONDS. A second signal is passed
  on too (a child then stops its jobs at once); a child still running well after the grace
  period is killed.
- A child that exits on its own is restarted, after a delay that grows while it keeps dying
  soon after its start, so a crash loop does not spin; the supervisor logs each exit.
- The children die with the supervisor (Linux's parent-death signal, SIGKILL) even when it is
  SIGKILLed: a killed supervisor is a killed worker, and its jobs are recovered as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger("agentqueue.supervisor")

# Environment of a child: its number (1..N), shown in its log lines.
CHILD_INDEX_ENV = "AGENTQUEUE_WORKER_PROCESS"
# Restart delays for a child that keeps dying; a child that ran this long starts the count anew.
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
HEALTHY_RUN_S = 30.0
# After the grace period, how long children get to wind down before they are killed.
FORCE_MARGIN_S = 10.0
# A child exiting with this code found a setting it cannot run with: restarting will not help.
USAGE_ERROR = 2

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"code {code}"


@dataclass
class _Child:
    index: int
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    failures: int = 0


class WorkerSupervisor:
    """Runs `command` (a worker) `processes` times over, until told to stop."""

    def __init__(self, command: Sequence[str], processes: int, *, grace_s: float) -> None:
        self.command = list(command)
        self.grace_s = grace_s
        self._children = [_Child(index) for index in range(1, processes + 1)]
        self._stopping = asyncio.Event()
        self._signals = 0
        self._fatal: int | None = None

    async def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; the exit code: 0 when every child stopped cleanly."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        log.info("Starting %d worker processes", len(self._children))
        keepers = [asyncio.create_task(self._keep(child), name=f"worker-process-{child.index}")
                   for child in self._children]
        await self._stopping.wait()
        if not self._signals:  # stopping on a child's refusal: the others were not told yet
            self._send(signal.SIGTERM)
        codes = await self._stop_all()
        for keeper in keepers:
            keeper.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        if self._fatal is not None:
            return self._fatal
        return 0 if all(code == 0 for code in codes) else 1

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info("%s: stopping %d worker processes (grace %.0fs)", sig.name,
                     len(self._children), self.grace_s)
            self._stopping.set()
        else:
            log.warning("%s again: worker processes stop their jobs now", sig.name)
        self._send(signal.SIGTERM)

    def _send(self, sig: signal.Signals) -> None:
        for child in self._children:
            if child.process is not None and child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(sig)

    async def _keep(self, child: _Child) -> None:
        """Start `child`, and start it again whenever it exits before the supervisor stops."""
        while not self._stopping.is_set():
            child.process = await asyncio.create_subprocess_exec(
                *self.command, env={**os.environ, CHILD_INDEX_ENV: str(child.index)},
                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
            )
            child.started_at = time.monotonic()
            if self._stopping.is_set():  # the stop signal came while it was being started
                child.process.send_signal(signal.SIGTERM)
            log.info("Worker process %d started (pid %d)", child.index, child.process.pid)
            code = await child.process.wait()
            if self._stopping.is_set():
                return
            if code == USAGE_ERROR:
                log.error("Worker process %d (pid %d) refused its settings; stopping",
                          child.index, child.process.pid)
                self._fatal = USAGE_ERROR
                self._stopping.set()
                return
            ran_s = time.monotonic() - child.started_at
            child.failures = 0 if ran_s >= HEALTHY_RUN_S else child.failures + 1
            delay = RESTART_BACKOFF_S[min(max(child.failures - 1, 0), len(RESTART_BACKOFF_S) - 1)]
            log.warning("Worker process %d (pid %d) exited unexpectedly (%s) after %.1fs; "
                        "restarting in %.1fs", child.index, child.process.pid,
                        describe_exit(code), ran_s, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _stop_all(self) -> list[int]:
        """Wait for the children to stop (they were signalled); kill those still running long
        after the grace period. Their exit codes, in order."""
        running = [c.process for c in self._children
                   if c.process is not None and c.process.returncode is None]
        waits = [asyncio.ensure_future(process.wait()) for process in running]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=self.grace_s + FORCE_MARGIN_S)
            if pending:
                log.warning("%d worker process(es) still running after the grace period; "
                            "killing them", len(pending))
                self._send(signal.SIGKILL)
                await asyncio.gather(*pending)
        codes = [c.process.returncode for c in self._children if c.process is not None]
        log.info("Worker processes stopped")
        return [code if code is not None else 1 for code in codes]
