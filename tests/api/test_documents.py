"""Seed 001's document-processing over HTTP, as a user would: a real PDF, DOCX and HTML posted to
`/api/jobs`, run by the service's worker with the offline MiniLM model, then found by
`/api/documents/search` with ownership enforced, re-processed, listed and deleted; and the
same index from Python (`App.search_documents_sync`)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.services import Services
from tests.conftest import delete_prefix
from tests.documents.builders import docx_of, pdf_of
from tests.support.app_api import in_process_api
from tests.support.fake_openai import EMBEDDINGS_ROUTE, FakeOpenAI
from tests.support.waiting import eventually

PDF_PAGES = [
    "Refund policy\nCustomers may return unopened items within thirty days\n"
    "for a full refund of the purchase price.",
    "Shipping\nOrders leave our warehouse within two business days\n"
    "and are delivered by courier.",
]


class Users:
    """API clients for alice and bob (organization acme) and eve (organization other)."""

    def __init__(self, http: httpx.AsyncClient, services: Services) -> None:
        self.http = http
        self.services = services
        self.keys: dict[str, str] = {}

    async def add(self, user: str, org: str) -> None:
        key, _ = await self.services.records.create_api_key(user_id=user, org_id=org,
                                                            is_admin=False)
        self.keys[user] = key

    async def call(self, user: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[user]}"}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def process(self, user: str, data: dict[str, Any]) -> dict[str, Any]:
        """Submit a document-processing job and wait for it to finish; the finished job."""
        created = await self.call(user, "POST", "/api/jobs",
                                  json={"type": "document-processing", "data": data})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        async def done() -> dict[str, Any] | None:
            job = (await self.call(user, "GET", f"/api/jobs/{job_id}")).json()
            return job if job["status"] in ("completed", "failed") else None

        return await eventually(done, timeout=120, what=f"job {job_id} to finish")

    async def progress_of(self, job_ref: str) -> list[tuple[int, int, str]]:
        """The job's progress events on its queue's BullMQ events stream, oldest first."""
        queue, job_id = job_ref.split(":", 1)
        key = f"{self.services.settings.queue_prefix}:{queue}:events"
        seen = []
        for _id, fields in await self.services.client.xrange(key):
            if fields.get("event") == "progress" and fields.get("jobId") == job_id:
                value = json.loads(fields["data"])
                seen.append((value["current"], value["total"], value["message"]))
        return seen

    async def search(self, user: str, query: str, limit: int = 3) -> list[dict[str, Any]]:
        answer = await self.call(user, "POST", "/api/documents/search",
                                 json={"query": query, "limit": limit})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["provider"], body["model"]) == ("builtin", "all-MiniLM-L6-v2")
        return list(body["results"])


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as server:
        yield server


@pytest.fixture
async def users(redis_url: str, prefix: str, tmp_path: Path,
                fake: FakeOpenAI) -> AsyncIterator[Users]:
    async with in_process_api(redis_url, prefix, tmp_path / "data", run_worker=True,
                              OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake.base_url,
                              AI_PROVIDER="builtin") as (http, services):
        users = Users(http, services)
        for user, org in (("alice", "acme"), ("bob", "acme"), ("eve", "other")):
            await users.add(user, org)
        yield users
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def test_a_pdf_is_searchable_by_its_organization_only(users: Users) -> None:
    job = await users.process("alice", {
        "documentId": "policies", "title": "Store policies", "contentType": "pdf",
        "content": b64(pdf_of(PDF_PAGES)), "metadata": {"team": "support"}})
    assert job["status"] == "completed", job["error"]
    result = job["result"]
    assert {k: result[k] for k in ("documentId", "pages", "replaced", "provider", "model",
                                   "dimensions", "contentType")} == {
        "documentId": "policies", "pages": 2, "replaced": False, "provider": "builtin",
        "model": "all-MiniLM-L6-v2", "dimensions": 384, "contentType": "application/pdf"}
    assert result["chunks"] == 2  # one a page: each chunk cites its page
    # What a subscriber to the job's progress saw: pages read, then chunks embedded.
    assert await users.progress_of(job["id"]) == [
        (2, 4, "Read 2 page(s); 2 chunk(s) to embed"), (4, 4, "Embedded chunk 2 of 2"),
        (4, 4, "Indexed 2 chunk(s)")]

    best = (await users.search("bob", "how long do I have to send a product back?"))[0]
    assert (best["documentId"], best["page"], best["title"]) == ("policies", 1, "Store policies")
    assert "thirty days" in best["text"]
    best = (await users.search("alice", "when will my parcel be delivered"))[0]
    assert best["page"] == 2

    assert await users.search("eve", "refund") == []
    for method in ("GET", "DELETE"):
        answer = await users.call("eve", method, "/api/documents/policies")
        assert answer.status_code == 404, answer.text
    listed = (await users.call("eve", "GET", "/api/documents")).json()
    assert (listed["documents"], listed["total"]) == ([], 0)

    doc = (await users.call("bob", "GET", "/api/documents/policies")).json()
    assert (doc["pages"], doc["chunks"], doc["metadata"], doc["userId"]) == (
        2, 2, {"team": "support"}, "alice")
    assert doc["jobId"] == job["id"]


async def test_processing_again_replaces_the_document(users: Users) -> None:
    first = await users.process("alice", {
        "documentId": "handbook", "contentType": "docx",
        "content": b64(docx_of(["Employees get twenty five days of paid holiday a year."]))})
    assert first["status"] == "completed", first["error"]
    html = ("<html><body><h1>Handbook</h1><p>The office coffee machine is cleaned every "
            "Friday afternoon.</p><script>ignored()</script></body></html>")
    second = await users.process("bob", {"documentId": "handbook", "contentType": "text/html",
                                         "content": html})
    assert second["status"] == "completed", second["error"]
    assert second["result"]["replaced"] is True

    results = await users.search("alice", "how many vacation days do staff get", limit=10)
    assert [r["documentId"] for r in results] == ["handbook"]  # one chunk: the old one is gone
    assert "coffee machine" in results[0]["text"] and "holiday" not in results[0]["text"]
    listed = (await users.call("alice", "GET", "/api/documents")).json()
    assert listed["total"] == 1
    assert listed["documents"][0]["contentType"] == "text/html"

    assert (await users.call("alice", "DELETE", "/api/documents/handbook")).status_code == 204
    assert await users.search("bob", "coffee") == []
    assert (await users.call("alice", "GET", "/api/documents/handbook")).status_code == 404


@pytest.mark.parametrize(("data", "says"), [
    ({"documentId": "x", "content": "abc", "contentType": "pdf", "encoding": "text"},
     "must be given as base64"),
    ({"documentId": "x", "content": "not base64!", "contentType": "pdf"}, "not valid base64"),
    ({"documentId": "x", "content": "abc", "contentType": "image/png"},
     "unsupported content type"),
    ({"content": "abc"}, "documentId"),
    ({"documentId": "x", "content": "abc", "chunkWords": 50, "chunkOverlap": 50},
     "chunkOverlap must be smaller"),
])
async def test_input_that_can_never_succeed_is_refused(
    users: Users, data: dict[str, Any], says: str
) -> None:
    answer = await users.call("alice", "POST", "/api/jobs",
                              json={"type": "document-processing", "data": data})
    assert answer.status_code == 400, answer.text
    assert says in answer.text


async def test_a_broken_pdf_fails_at_once_saying_why(users: Users) -> None:
    job = await users.process("alice", {"documentId": "broken", "contentType": "pdf",
                                        "content": b64(b"%PDF-1.4 nothing else")})
    assert job["status"] == "failed"
    assert "not a readable PDF" in job["error"]
    assert job["attempts"] == 1  # no retries: it cannot get better
    assert (await users.call("alice", "GET", "/api/documents/broken")).status_code == 404


async def test_a_document_without_text_fails_at_once(users: Users) -> None:
    job = await users.process("alice", {"documentId": "blank", "contentType": "pdf",
                                        "content": b64(pdf_of(["", ""]))})
    assert job["status"] == "failed" and job["attempts"] == 1
    assert "no text to index" in job["error"]


async def test_a_providers_embeddings_are_searched_with_that_provider(
    users: Users, fake: FakeOpenAI
) -> None:
    job = await users.process("alice", {
        "documentId": "remote", "content": "Embedded by the OpenAI-compatible endpoint.",
        "provider": "openai", "model": "text-embedding-3-small"})
    assert job["status"] == "completed", job["error"]
    assert (job["result"]["provider"], job["result"]["model"],
            job["result"]["dimensions"]) == ("openai", "text-embedding-3-small", 4)
    assert job["result"]["usage"]["inputTokens"] > 0  # metered like any provider call
    embedded = [r for r in fake.requests if r.path == EMBEDDINGS_ROUTE]
    assert embedded[0].body["input"] == ["Embedded by the OpenAI-compatible endpoint."]

    answer = await users.call("bob", "POST", "/api/documents/search", json={
        "query": "endpoint", "provider": "openai", "model": "text-embedding-3-small"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["provider"], body["model"]) == ("openai", "text-embedding-3-small")
    assert [r["documentId"] for r in body["results"]] == ["remote"]
    # Vectors of another model are not comparable: the offline search does not see them.
    assert await users.search("bob", "endpoint") == []


async def test_bad_search_requests(users: Users) -> None:
    for body, says in (({"query": ""}, "query"), ({"query": "x", "limit": 0}, "limit"),
                       ({"query": "x", "provider": "nope"}, "provider")):
        answer = await users.call("alice", "POST", "/api/documents/search", json=body)
        assert answer.status_code == 400, answer.text
        assert says in answer.text


async def test_the_python_api_searches_the_same_index(users: Users, tmp_path: Path,
                                                      redis_url: str, prefix: str) -> None:
    job = await users.process("alice", {
        "documentId": "faq", "contentType": "markdown",
        "content": "# FAQ\n\nThe support line is open **from nine to five** on weekdays."})
    assert job["status"] == "completed", job["error"]
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix,
        AGENTQUEUE_DATA_DIR=tmp_path / "data")
    app = agentqueue.App(settings=settings)
    try:
        acme = agentqueue.Owner(user_id="carol", org_id="acme")
        found = await asyncio.to_thread(app.search_documents_sync, "opening hours of support",
                                        owner=acme)
        assert [m.document_id for m in found.matches] == ["faq"]
        assert "nine to five" in found.matches[0].text
        other = agentqueue.Owner(user_id="carol", org_id="other")
        assert (await app.search_documents("support", owner=other)).matches == []
        assert [d.document_id for d in await app.documents(owner=acme)] == ["faq"]
        assert await app.delete_document("faq", owner=acme)
        assert await app.get_document("faq", owner=acme) is None
    finally:
        await asyncio.to_thread(app.close_sync)
        await app.close()
