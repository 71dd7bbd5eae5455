"""Node BullMQ sees agentqueue's schedules as its own job schedulers, and agentqueue lists one
a Node producer made (owned by nobody). Needs node and npm (packages from the npm registry)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from tests.conftest import delete_prefix
from tests.e2e.test_node_interop import node_modules, pytestmark, run_node

__all__ = ["node_modules", "pytestmark"]


@pytest.fixture
async def app(redis_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[agentqueue.App]:
    app = agentqueue.App(Settings(REDIS_URL=redis_url, QUEUE_PREFIX=prefix,
                                  AGENTQUEUE_DATA_DIR=str(tmp_path / "data")))
    yield app
    await app.close()
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def node_schedulers(app: agentqueue.App, *args: str) -> list[dict[str, Any]]:
    env = {"REDIS_URL": app.settings.external_redis_url or "",
           "QUEUE_PREFIX": app.settings.queue_prefix}
    proc = await run_node("schedulers.mjs", env, app.settings.ai_jobs_queue_name, *args)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result: list[dict[str, Any]] = json.loads(out)
    return result


async def test_node_and_agentqueue_see_the_same_schedules(
        node_modules: Path, app: agentqueue.App) -> None:
    ours = await app.schedule("sentiment", {"text": "made in Python"}, cron="0 9 * * 1",
                              tz="America/New_York", schedule_id="py-made", limit=10)
    seen = {s["key"]: s for s in await node_schedulers(app, "add", "node-made")}
    assert seen["py-made"]["pattern"] == "0 9 * * 1"
    assert seen["py-made"]["tz"] == "America/New_York"
    assert seen["py-made"]["next"] == ours.view.next_ms and seen["py-made"]["limit"] == 10
    assert seen["py-made"]["template"]["data"]["text"] == "made in Python"

    listed = {s.id: s for s in await app.schedules(app.settings.ai_jobs_queue_name)}
    node_made = listed["node-made"]
    assert node_made.every_ms == 3_600_000 and node_made.type == "sentiment"
    assert node_made.data == {"text": "made in Node"} and node_made.user_id == ""
    assert node_made.next_run is not None
    assert await app.remove_schedule("node-made")
    assert "node-made" not in {s["key"] for s in await node_schedulers(app, "list")}
