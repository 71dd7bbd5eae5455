"""Shared fixtures: a real Redis/Valkey for every test, under a key prefix of its own, and a
records database for the tests that need one.

`REDIS_URL` selects an external server (CI runs the suite once against this machine's Redis);
unset, the suite starts the embedded Valkey, as `agentqueue serve` does.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from agentqueue.engine.connection import connect
from agentqueue.engine.embedded import EmbeddedValkey
from agentqueue.records.migrations import upgrade
from agentqueue.records.store import Records


@pytest.fixture(scope="session")
async def redis_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"))
    yield await server.start()
    await server.stop()


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test (or user) shares."""
    return f"aqtest-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def client(redis_url: str, prefix: str) -> AsyncIterator[redis.Redis]:
    conn = connect(redis_url)
    yield conn
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def delete_prefix(conn: redis.Redis, prefix: str) -> None:
    for pattern in (f"{prefix}:*", f"agentqueue:{prefix}:*"):
        keys = [key async for key in conn.scan_iter(match=pattern, count=1000)]
        if keys:
            await conn.delete(*keys)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[Records]:
    """A migrated records database: SQLite in the test's temporary directory.

    (tests/records overrides it with SQLite and PostgreSQL databases and a pinned clock.)
    """
    url = f"sqlite+aiosqlite:///{tmp_path / 'records.db'}"
    await upgrade(url)
    opened = await Records.connect(url)
    yield opened
    await opened.close()
