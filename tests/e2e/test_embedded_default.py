"""`agentqueue serve` with nothing configured: its embedded Valkey lives and dies with it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.processes import agentqueue, free_port
from tests.support.waiting import eventually


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def is_valkey(pid: int) -> bool:
    return "valkey-server" in Path(f"/proc/{pid}/cmdline").read_text()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs Linux /proc")
async def test_embedded_valkey_dies_with_a_sigkilled_serve(tmp_path: Path) -> None:
    env = {"PORT": str(free_port()), "AGENTQUEUE_DATA_DIR": str(tmp_path / "data")}
    with agentqueue("serve", env, tmp_path / "serve.log") as serve:
        await serve.wait_healthy()
        valkeys = [pid for pid in children(serve.proc.pid) if is_valkey(pid)]
        assert len(valkeys) == 1
        assert (tmp_path / "data" / "valkey" / "appendonlydir").is_dir()  # AOF on, in data dir
        os.kill(serve.proc.pid, signal.SIGKILL)
        serve.wait_exit()

        async def gone() -> bool:
            return not alive(valkeys[0])

        await eventually(gone, what="the embedded Valkey to exit with its parent")
