"""Running an example as a user would: its worker (`agentqueue worker examples.<name>:app`) in
one process, the example script in another."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.support.processes import agentqueue

REPO = Path(__file__).resolve().parents[2]


async def run_script(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python <script>` from the repository root, as a user runs an example."""
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, script], cwd=REPO, env={**os.environ, **env},
        capture_output=True, text=True, timeout=120)


async def run_example(name: str, queue: str, env: dict[str, str],
                      tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """examples/<name>.py run while `agentqueue worker examples.<name>:app` serves `queue`."""
    with agentqueue(f"worker examples.{name}:app", env, tmp_path / "worker.log",
                    cwd=REPO) as worker:
        await worker.wait_log(f"Worker on queue '{queue}' started")
        return await run_script(f"examples/{name}.py", env)
