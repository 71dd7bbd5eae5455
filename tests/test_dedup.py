"""BullMQ-style deduplication from the Python API (`dedup_key`, `dedup_ttl_ms`, `dedup_mode`):
simple, throttle and debounce, against real Redis and SQLite, on the keys Node BullMQ uses
(`<prefix>:<queue>:de:<id>`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from tests.conftest import delete_prefix
from tests.support.workers import app_worker

HOUR_MS = 3_600_000


class Note(BaseModel):
    v: int = 0


def make_app(settings: Settings) -> agentqueue.App:
    app = agentqueue.App(settings=settings, builtin=False)

    @app.job("note")
    async def note(ctx: agentqueue.JobContext, data: Note) -> int:
        return data.v

    return app


@pytest.fixture
async def app(redis_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[agentqueue.App]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=tmp_path)
    made = make_app(settings)
    yield made
    await made.close()
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def test_throttle_holds_the_key_after_the_job_finished(app: agentqueue.App) -> None:
    async with app_worker(app):
        first = await app.enqueue("note", {"v": 1}, dedup_key="t", dedup_ttl_ms=HOUR_MS,
                                  dedup_mode="throttle")
        assert await first.wait(timeout=30) == 1
        again = await app.enqueue("note", {"v": 2}, dedup_key="t", dedup_ttl_ms=HOUR_MS)
        assert (again.id, again.existing) == (first.id, True)
        # Simple mode frees the key when the job finishes.
        simple = await app.enqueue("note", {"v": 3}, dedup_key="s", dedup_mode="simple")
        assert await simple.wait(timeout=30) == 3
        after = await app.enqueue("note", {"v": 4}, dedup_key="s")
        assert after.id != simple.id and not after.existing
        assert await after.wait(timeout=30) == 4


async def test_debounce_replaces_the_delayed_job_with_the_latest_data(
    app: agentqueue.App, prefix: str
) -> None:
    options = {"dedup_key": "save-doc-9", "dedup_ttl_ms": HOUR_MS, "dedup_mode": "debounce",
               "delay_ms": HOUR_MS}
    first = await app.enqueue("note", {"v": 1}, **options)  # type: ignore[arg-type]
    second = await app.enqueue("note", {"v": 2}, **options)  # type: ignore[arg-type]
    third = await app.enqueue("note", {"v": 3}, **options)  # type: ignore[arg-type]
    assert len({first.id, second.id, third.id}) == 3 and not third.existing
    backend = await app._backend()
    jobs = backend.queue(third.queue)
    delayed = await jobs.page(["delayed"])
    assert [(v.id, v.data) for v in delayed] == [(third.id, {"v": 3})]
    assert await jobs.deduplicated("save-doc-9") == third.id
    # Node BullMQ's key, so a Node producer debouncing on the same id meets the same job.
    raw = await backend.client.get(f"{prefix}:{third.queue}:de:save-doc-9")
    assert raw == third.id
    for replaced, by in ((first, second), (second, third)):
        record = await backend.records.get(replaced.queue, replaced.id)
        assert record is not None and record.status == "cancelled"
        assert record.error == f"replaced by job {by.id} (debounce)"
    assert await third.status() == "delayed"


@pytest.mark.parametrize(("options", "message"), [
    ({"dedup_mode": "debounce"}, "dedup_mode needs a dedup_key"),
    ({"dedup_key": "k", "dedup_mode": "debounce", "dedup_ttl_ms": 10}, "needs delay_ms"),
    ({"dedup_key": "k", "dedup_mode": "throttle"}, "needs dedup_ttl_ms"),
    ({"dedup_key": "k", "dedup_mode": "simple", "dedup_ttl_ms": 5}, "that is 'throttle'"),
    ({"dedup_key": "k", "dedup_mode": "sometimes"}, "dedup_mode is one of"),
])
async def test_bad_dedup_options_are_refused(app: agentqueue.App, options: dict[str, object],
                                             message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await app.enqueue("note", {}, **options)  # type: ignore[arg-type]
