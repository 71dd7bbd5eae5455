"""Webhook delivery against a real local HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis.asyncio as redis

from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.engine.worker import WorkerOptions, WorkerRuntime
from agentqueue.handlers.webhooks import WEBHOOK, WebhookHandler
from tests.support.waiting import eventually

SECRET = "whsec-test"


class Receiver:
    """Answers each request with the next scripted status; records what arrived."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([503, 200])
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
async def queue(client: redis.Redis, prefix: str, redis_url: str) -> AsyncIterator[JobQueue]:
    worker = WorkerRuntime("webhooks", redis_url, prefix=prefix,
                           options=WorkerOptions(concurrency=2, lock_duration_ms=2000))
    WebhookHandler(secret=SECRET).register(worker)
    await worker.start()
    yield JobQueue("webhooks", client, prefix=prefix,
                   defaults=QueueDefaults(attempts=5, backoff_ms=50))
    await worker.stop(0)


async def finished(queue: JobQueue, job_id: str) -> Any:
    async def probe() -> Any:
        view = await queue.get(job_id)
        return view if view and view.state in ("completed", "failed") else None

    return await eventually(probe, what="the delivery to finish")


async def test_delivery_is_retried_until_accepted_and_signed(queue, receiver) -> None:
    job_id = await queue.add(WEBHOOK, {"url": receiver.url, "event": "job.completed",
                                       "payload": {"jobId": "7"}})
    view = await finished(queue, job_id)
    assert view.state == "completed" and view.attempts_made == 2
    assert view.result["status"] == 200 and view.result["attempt"] == 2
    headers, body = receiver.received[-1]
    assert json.loads(body) == {"event": "job.completed", "payload": {"jobId": "7"}}
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-agentqueue-signature"] == f"sha256={expected}"
    assert headers["x-agentqueue-event"] == "job.completed"


async def test_a_client_error_is_not_retried(queue, receiver) -> None:
    receiver.statuses[:] = [404]
    view = await finished(queue, await queue.add(WEBHOOK, {"url": receiver.url}))
    assert view.state == "failed" and view.attempts_made == 1
    assert "HTTP 404" in view.failed_reason and len(receiver.received) == 1


async def test_a_bad_url_fails_at_once(queue) -> None:
    view = await finished(queue, await queue.add(WEBHOOK, {"url": "ftp://example.invalid/x"}))
    assert view.state == "failed" and view.attempts_made == 1 and "url" in view.failed_reason
