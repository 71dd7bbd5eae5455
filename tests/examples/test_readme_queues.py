"""README's "Queues" example runs as written: its code block, awaited as the body of an async
function, against real Redis and a worker running the `word-count` type of README's example."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.engine.worker import WorkerRuntime
from tests.conftest import delete_prefix

README = Path(__file__).resolve().parents[2] / "README.md"


class WordCountInput(BaseModel):
    text: str


def readme_block(heading: str) -> str:
    """The first ```python block after `heading`."""
    text = README.read_text()
    after = text[text.index(f"\n{heading}\n"):]
    found = re.search(r"```python\n(.*?)```", after, re.S)
    assert found, f"no python block after {heading!r}"
    return found.group(1)


@pytest.fixture
async def app(redis_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[agentqueue.App]:
    app = agentqueue.App(settings=Settings(REDIS_URL=redis_url, QUEUE_PREFIX=prefix,
                                           AGENTQUEUE_DATA_DIR=str(tmp_path / "data")))

    @app.job("word-count", queue="jobs")
    async def count_words(ctx: agentqueue.JobContext, data: WordCountInput) -> dict[str, Any]:
        return {"words": len(data.text.split())}

    runtime = WorkerRuntime("jobs", redis_url, prefix=prefix)
    for definition in app.definitions.values():
        runtime.register(definition.name, definition.run)
    await runtime.start()
    yield app
    await runtime.stop(5)
    await app.close()
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def test_the_queues_example_runs_as_written(app: agentqueue.App) -> None:
    block = readme_block("### Queues")
    namespace: dict[str, Any] = {"app": app, "agentqueue": agentqueue}
    exec("async def example():\n" + textwrap.indent(block, "    "), namespace)  # noqa: S102
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        async with asyncio.timeout(60):
            await namespace["example"]()
    lines = printed.getvalue().splitlines()
    assert lines[0] == "0 0 0 {'waiting': 0, 'active': 0, 'completed': 0, 'failed': 0, " \
                       "'delayed': 0, 'paused': 0, 'prioritized': 0}"
    assert lines[1:] == ["True", "completed 1 {'words': 3}"]
