"""README's "CLI" example runs as written: each command of its first block, in order, against a
fresh `agentqueue serve` on this machine with no key yet (as after `make run`), in the default
mode (no --url, no REDIS_URL: the service at 127.0.0.1:$PORT)."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.processes import CLI, AgentqueueProcess, agentqueue
from tests.support.service import delete_service_keys, serve_env

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    text = README.read_text()
    after = text[text.index("\n## CLI\n"):]
    found = re.search(r"```bash\n(.*?)```", after, re.S)
    assert found
    return [line.split("  #")[0].strip() for line in found.group(1).splitlines()
            if line.strip()]


@pytest.fixture
async def service(redis_url: str, tmp_path: Path) -> AsyncIterator[AgentqueueProcess]:
    env = serve_env(tmp_path / "data", REDIS_URL=redis_url, AI_PROVIDER="builtin")
    with agentqueue("serve", env, tmp_path / "serve.log") as process:
        await process.wait_healthy()
        yield process
    await delete_service_keys(env)


async def test_the_readme_cli_block_works_as_written(service: AgentqueueProcess) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "REDIS_HOST", "AGENTQUEUE_URL", "AGENTQUEUE_KEY")}
    env["PORT"] = str(service.port)
    commands = readme_commands()
    assert len(commands) >= 10
    for command in commands:
        words = shlex.split(command.split("|")[0])  # the jq of the last line aside
        assert words[0] == "agentqueue"
        done = await asyncio.create_subprocess_exec(
            CLI, *words[1:], env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(done.communicate(), 120)
        assert done.returncode == 0, (command, out, err)
        if words[1:3] == ["jobs", "submit"] and "--wait" not in words:
            assert out.decode().strip().startswith("ai-jobs:")
