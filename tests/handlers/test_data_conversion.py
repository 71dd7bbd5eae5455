"""data-conversion from Python: enqueued with `App.enqueue` as a user's job type is, run by a
real worker on real files; its input refused at enqueue when it can never succeed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.errors import InvalidJobInput, JobFailed
from agentqueue.handlers.data_conversion import file_store
from agentqueue.services import WorkerGroup, build_workers
from tests.conftest import delete_prefix


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    root.mkdir()
    (root / "people.csv").write_text('name,city\nAda,"London, UK"\nZoë,Zürich\n',
                                     encoding="utf-8")
    (root / "bad.csv").write_text("name,city\nAda,London\nBob\n", encoding="utf-8")
    (tmp_path / "outside.csv").write_text("a\n1\n")
    return root


@pytest.fixture
async def app(redis_url: str, prefix: str, tmp_path: Path,
              roots: Path) -> AsyncIterator[agentqueue.App]:
    settings = Settings(  # type: ignore[call-arg]
        REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=str(tmp_path / "data"),
        AI_PROVIDER="builtin", DATA_CONVERSION_ROOTS=str(roots),
    )
    app = agentqueue.App(settings=settings)
    yield app
    await app.close()
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


@pytest.fixture
async def workers(app: agentqueue.App, redis_url: str) -> AsyncIterator[WorkerGroup]:
    backend = await app._backend()
    group = build_workers(app.settings, redis_url, records=backend.records,
                          registry=app.types())
    await group.start()
    yield group
    await group.stop(5)


async def test_a_csv_under_the_roots_converts_to_jsonl(
        app: agentqueue.App, workers: WorkerGroup) -> None:
    job = await app.enqueue("data-conversion",
                            {"filePath": "people.csv", "outputFormat": "jsonl"}, owner="u1")
    assert job.queue == "jobs"  # seed 001's generic queue
    result = await job.wait(timeout=60)
    assert result["rows"] == result["rowsTotal"] == 2 and result["skipped"] == 0
    assert result["output"]["name"] == "people.jsonl"
    assert result["output"]["url"] == f"/api/jobs/jobs:{job.id}/output"
    output = file_store(app.settings).output_path(("u1", None), "jobs", job.id, "jsonl")
    assert [json.loads(line) for line in output.read_text().splitlines()] == [
        {"name": "Ada", "city": "London, UK"}, {"name": "Zoë", "city": "Zürich"}]
    assert result["output"]["bytes"] == output.stat().st_size
    assert await job.progress() == {"current": 2, "total": 2, "percent": 100.0,
                                    "message": "Processing item 2 of 2"}


async def test_bad_rows_fail_the_job_by_line_or_are_skipped(
        app: agentqueue.App, workers: WorkerGroup) -> None:
    failing = await app.enqueue("data-conversion",
                                {"filePath": "bad.csv", "outputFormat": "json"}, owner="u1")
    with pytest.raises(JobFailed, match="line 3: expected 2 fields, found 1"):
        await failing.wait(timeout=60)
    skipping = await app.enqueue("data-conversion", {
        "filePath": "bad.csv", "outputFormat": "json", "onBadRow": "skip"}, owner="u1")
    result = await skipping.wait(timeout=60)
    assert result["rows"] == 1 and result["badRows"] == [
        {"line": 3, "row": 2, "error": "expected 2 fields, found 1"}]


async def test_an_upload_is_converted_for_its_owner_only(
        app: agentqueue.App, workers: WorkerGroup) -> None:
    store = file_store(app.settings)
    file_id, partial = store.new_upload(("u1", None))
    partial.write_text('[{"a": 1}]')
    store.commit(("u1", None), file_id, "upload.json")
    mine = await app.enqueue("data-conversion", {"fileId": file_id, "outputFormat": "csv"},
                             owner="u1")
    assert (await mine.wait(timeout=60))["rows"] == 1
    theirs = await app.enqueue("data-conversion", {"fileId": file_id, "outputFormat": "csv"},
                               owner="u2")
    with pytest.raises(JobFailed, match="no such file"):
        await theirs.wait(timeout=60)


async def test_seed_001s_nested_options_are_read(
        app: agentqueue.App, workers: WorkerGroup) -> None:
    job = await app.enqueue("data-conversion", {
        "filePath": "bad.csv", "options": {"outputFormat": "jsonl", "onBadRow": "skip"}})
    assert (await job.wait(timeout=60))["skipped"] == 1


@pytest.mark.parametrize(("data", "message"), [
    ({"filePath": "people.csv", "outputFormat": "json", "options": {"outputFormat": "csv"}},
     "options.outputFormat: given twice"),
    ({"options": {"filePath": "people.csv", "outputFormat": "json"}}, "options.filePath"),
    ({"filePath": "people.csv", "options": {"outputFormat": "json", "typo": 1}}, "typo"),
    ({"filePath": "../outside.csv", "outputFormat": "json"}, "'..'"),
    ({"filePath": "/etc/passwd", "outputFormat": "json"}, "outside"),
    ({"filePath": "missing.csv", "outputFormat": "json"}, "no such file"),
    ({"filePath": "people.csv", "outputFormat": "csv"}, "the input is csv already"),
    ({"filePath": "people.csv", "outputFormat": "xml"}, "outputFormat"),
    ({"filePath": "people.csv", "inputFormat": "jsonl", "outputFormat": "jsonl"}, "already"),
    ({"outputFormat": "json"}, "fileId"),
    ({"filePath": "people.csv", "fileId": "0" * 32, "outputFormat": "json"}, "one of them"),
    ({"fileId": "../../x", "outputFormat": "json"}, "no such file"),
    ({"filePath": "people.csv", "outputFormat": "json", "delimiter": ";;"}, "delimiter"),
    ({"filePath": "people.csv", "outputFormat": "json", "onBadRow": "ignore"}, "onBadRow"),
])
async def test_input_that_can_never_succeed_is_refused_at_enqueue(
        app: agentqueue.App, data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidJobInput, match=message):
        await app.enqueue("data-conversion", data)
