"""README's "Documents" curl block runs as written against a fresh `agentqueue serve` (no key
yet: requests from 127.0.0.1 are the local admin), with a real PDF as `manual.pdf` in the
current directory. The two submissions run first; the searches once both jobs have finished."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.documents.builders import pdf_of
from tests.support.processes import AgentqueueProcess, agentqueue
from tests.support.service import delete_service_keys, serve_env
from tests.support.waiting import eventually

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    text = README.read_text()
    after = text[text.index("\n### Documents: process, then search\n"):]
    found = re.search(r"```bash\n(.*?)```", after, re.S)
    assert found
    # Continuation lines joined; comments (whole lines, or after two spaces) dropped.
    joined = found.group(1).replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture
async def service(redis_url: str, tmp_path: Path) -> AsyncIterator[AgentqueueProcess]:
    env = serve_env(tmp_path / "data", REDIS_URL=redis_url, AI_PROVIDER="builtin")
    with agentqueue("serve", env, tmp_path / "serve.log") as process:
        await process.wait_healthy()
        yield process
    await delete_service_keys(env)


async def run(command: str, port: int, cwd: Path) -> str:
    done = await asyncio.create_subprocess_exec(
        "bash", "-c", command.replace("localhost:3000", f"127.0.0.1:{port}"), cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(done.communicate(), 60)
    assert done.returncode == 0, (command, out, err)
    return out.decode()


async def test_the_readme_documents_block_works_as_written(
    service: AgentqueueProcess, tmp_path: Path
) -> None:
    (tmp_path / "manual.pdf").write_bytes(pdf_of(["Safety manual", "Keep it away from water."]))
    commands = readme_commands()
    assert len(commands) == 6
    submitted = [json.loads(await run(c, service.port, tmp_path))["id"] for c in commands[:2]]

    async def finished() -> bool:
        async with httpx.AsyncClient(base_url=service.base_url) as http:
            jobs = [(await http.get(f"/api/jobs/{job_id}")).json() for job_id in submitted]
        assert all(job["status"] != "failed" for job in jobs), jobs
        return all(job["status"] == "completed" for job in jobs)

    await eventually(finished, timeout=120, what="both documents indexed")
    found = json.loads(await run(commands[2], service.port, tmp_path))
    assert found["results"][0]["documentId"] == "returns"
    listed = json.loads(await run(commands[3], service.port, tmp_path))
    assert {d["documentId"] for d in listed["documents"]} == {"returns", "manual"}
    one = json.loads(await run(commands[4], service.port, tmp_path))
    assert (one["documentId"], one["pages"]) == ("returns", 1)
    assert await run(commands[5], service.port, tmp_path) == ""  # 204
    assert "not found" in await run(commands[4], service.port, tmp_path)
