"""Start the real `agentqueue` CLI as subprocesses, as a user would, and talk HTTP to them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.waiting import eventually

CLI = str(Path(sys.executable).parent / "agentqueue")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AgentqueueProcess:
    """One `agentqueue <command> [args]` child with its own log file."""

    def __init__(
        self, command: str, env: dict[str, str], log_path: Path, *, cwd: Path | None = None
    ) -> None:
        self.command = command
        self.log_path = log_path
        self.port = int(env.get("PORT", "0"))
        # The records database lives in the data dir: a test never writes into the checkout.
        assert "AGENTQUEUE_DATA_DIR" in env or "DATABASE_URL" in env, "give the process a data dir"
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("REDIS_URL", "REDIS_HOST", "OPENAI_API_KEY", "DATABASE_URL")}
        # `agentqueue worker` runs one process unless a test asks for more (`--processes`):
        # a test that kills or signals "the worker" means that one process.
        full_env["WORKER_PROCESSES"] = "1"
        full_env.update(env)
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [CLI, *command.split()], env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=cwd,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as http:
            async def healthy() -> bool:
                if self.proc.poll() is not None:
                    raise AssertionError(f"agentqueue {self.command} exited:\n{self.log()}")
                try:
                    return (await http.get("/agent/queue/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(healthy, timeout=timeout, what=f"agentqueue {self.command} health")

    async def wait_log(self, text: str, timeout: float = 30.0) -> None:
        async def logged() -> bool:
            return text in self.log()

        await eventually(logged, timeout=timeout, what=f"{text!r} in the log")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@contextmanager
def agentqueue(
    command: str, env: dict[str, str], log_path: Path, *, cwd: Path | None = None
) -> Iterator[AgentqueueProcess]:
    process = AgentqueueProcess(command, env, log_path, cwd=cwd)
    try:
        yield process
    finally:
        died = process.proc.poll()
        process.stop()
        if died is not None:
            # Gone before the test was done with it (a crash, the OOM killer): say why in the
            # test's output, since pytest removes old temporary directories and their logs.
            tail = "\n".join(process.log().splitlines()[-60:])
            print(f"agentqueue {command} had exited with code {died}; its log ends:\n{tail}")
