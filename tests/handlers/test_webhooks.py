"""Webhook delivery against real local receivers, on a real Redis.

The receivers listen on loopback, which webhooks may not reach by default: the deliveries that
should arrive run under an operator's allow-list (WEBHOOK_ALLOWED_NETWORKS), the refusals
without one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from ipaddress import ip_address
from typing import Any

import pytest
import redis.asyncio as redis

from agentqueue.config import Settings
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.handlers.webhooks import SENDER, WEBHOOK, WebhookSender
from agentqueue.net.destinations import DestinationPolicy, IPAddress
from agentqueue.net.pinned import system_resolver
from agentqueue.services import WorkerGroup, build_workers
from tests.support.http_receiver import Receiver, receiving
from tests.support.waiting import eventually

SECRET = "whsec-test"
DEFAULT_POLICY = ""  # WEBHOOK_ALLOWED_NETWORKS: public destinations only
LOOPBACK_ALLOWED = "127.0.0.0/8"

Queues = Callable[..., Awaitable[JobQueue]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving(Receiver(statuses=[503, 200])) as r:
        yield r


@pytest.fixture
async def queues(client: redis.Redis, prefix: str, redis_url: str) -> AsyncIterator[Queues]:
    """Start the webhook queue's worker with the networks it may reach (and a resolver);
    answer its queue."""
    groups: list[WorkerGroup] = []

    async def start(allowed: str = DEFAULT_POLICY, resolver: Any = system_resolver) -> JobQueue:
        settings = Settings(  # type: ignore[call-arg]
            REDIS_URL=redis_url, QUEUE_PREFIX=prefix, QUEUE_CONCURRENCY="2",
            QUEUE_LOCK_DURATION_MS="2000", WEBHOOK_SECRET=SECRET,
            WEBHOOK_ALLOWED_NETWORKS=allowed,
        )
        group = build_workers(settings, redis_url, [settings.webhooks_queue_name])
        if resolver is not system_resolver:  # the same sender, resolving names our way
            group.resources.provide(SENDER, WebhookSender(
                secret=SECRET, policy=DestinationPolicy.from_setting(allowed),
                resolver=resolver), WebhookSender.aclose)
        await group.start()
        groups.append(group)
        return JobQueue(settings.webhooks_queue_name, client, prefix=prefix,
                        defaults=QueueDefaults(attempts=5, backoff_ms=50))

    yield start
    for group in groups:
        await group.stop(0)


async def finished(queue: JobQueue, job_id: str) -> Any:
    async def probe() -> Any:
        view = await queue.get(job_id)
        return view if view and view.state in ("completed", "failed") else None

    return await eventually(probe, what="the delivery to finish")


async def deliver(queue: JobQueue, data: dict[str, Any], **options: Any) -> Any:
    return await finished(queue, await queue.add(WEBHOOK, data, **options))


# --- delivery ----------------------------------------------------------------------------------


async def test_delivery_is_retried_until_accepted_and_signed(queues, receiver) -> None:
    queue = await queues(LOOPBACK_ALLOWED)
    view = await deliver(queue, {"url": receiver.url, "event": "job.completed",
                                 "payload": {"jobId": "7"}, "headers": {"X-Tenant": "acme"}})
    assert view.state == "completed" and view.attempts_made == 2
    assert view.result["status"] == 200 and view.result["attempt"] == 2
    headers, body = receiver.received[-1]
    assert json.loads(body) == {"event": "job.completed", "payload": {"jobId": "7"}}
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-agentqueue-signature"] == f"sha256={expected}"
    assert headers["x-agentqueue-event"] == "job.completed"
    assert headers["x-tenant"] == "acme"


async def test_a_client_error_is_not_retried(queues, receiver) -> None:
    receiver.statuses[:] = [404]
    view = await deliver(await queues(LOOPBACK_ALLOWED), {"url": receiver.url})
    assert view.state == "failed" and view.attempts_made == 1
    assert "HTTP 404" in view.failed_reason and len(receiver.received) == 1


async def test_a_bad_url_fails_at_once(queues) -> None:
    view = await deliver(await queues(), {"url": "ftp://example.invalid/x"})
    assert view.state == "failed" and view.attempts_made == 1 and "url" in view.failed_reason


async def test_the_last_attempt_does_not_promise_a_retry(queues, receiver) -> None:
    receiver.statuses[:] = [503, 503]
    view = await deliver(await queues(LOOPBACK_ALLOWED), {"url": receiver.url}, attempts=2)
    assert view.state == "failed" and view.attempts_made == 2
    assert view.failed_reason == "webhook answered HTTP 503; gave up after 2 attempts"


# --- destinations ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254",
                                  "[::ffff:127.0.0.1]", "10.0.0.1"])
async def test_internal_destinations_are_refused_for_good_by_default(
    queues, receiver, host: str
) -> None:
    view = await deliver(await queues(), {"url": f"http://{host}:{receiver.port}/hook"})
    assert view.state == "failed" and view.attempts_made == 1  # not retried
    assert "is not allowed" in view.failed_reason
    assert "WEBHOOK_ALLOWED_NETWORKS" in view.failed_reason
    assert receiver.received == []


async def test_a_public_looking_name_that_resolves_to_loopback_is_refused(
    queues, receiver
) -> None:
    async def loopback_dns(host: str, port: int) -> Sequence[IPAddress]:
        return [ip_address("127.0.0.1")]

    queue = await queues(resolver=loopback_dns)
    view = await deliver(queue, {"url": f"http://hooks.example.com:{receiver.port}/hook"})
    assert view.state == "failed" and view.attempts_made == 1
    assert view.failed_reason.startswith(
        "webhook delivery refused: destination hooks.example.com is not allowed")
    assert receiver.received == []


async def test_forbidden_headers_fail_the_job_without_a_request(queues, receiver) -> None:
    queue = await queues(LOOPBACK_ALLOWED)
    for headers in ({"Host": "internal.example"}, {"X-Agentqueue-Signature": "sha256=forged"},
                    {"X-Note": "a\r\nInjected: 1"}):
        view = await deliver(queue, {"url": receiver.url, "headers": headers})
        assert view.state == "failed" and view.attempts_made == 1
        assert view.failed_reason.startswith("invalid job data: data.headers")
    assert receiver.received == []


# --- failures that would reveal port state -----------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def open_port(reply: bytes | None) -> asyncio.Server:
    """A TCP service that is not HTTP: answers `reply` (like Redis) or stays silent."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if reply is None:
            await reader.read()  # silent until the client gives up
        else:
            await reader.read(1)
            writer.write(reply)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def test_closed_open_and_silent_ports_fail_with_the_same_clear_reason(queues) -> None:
    queue = await queues(LOOPBACK_ALLOWED)
    talking, silent = await open_port(b"-ERR unknown command 'POST'\r\n"), await open_port(None)
    ports = [closed_port(), talking.sockets[0].getsockname()[1], silent.sockets[0].getsockname()[1]]
    try:
        views = [await deliver(queue, {"url": f"http://127.0.0.1:{port}/hook",
                                       "timeoutSeconds": 1}, attempts=1)
                 for port in ports]
    finally:
        talking.close()
        silent.close()
    reasons = {view.failed_reason for view in views}
    assert reasons == {"webhook delivery to 127.0.0.1 failed: no valid HTTP answer within 1 s "
                       "(could not connect, connection lost or timed out); gave up after 1 "
                       "attempt"}


async def test_a_network_failure_before_the_last_attempt_says_it_will_retry(queues) -> None:
    queue = await queues(LOOPBACK_ALLOWED)
    job_id = await queue.add(WEBHOOK, {"url": f"http://127.0.0.1:{closed_port()}/hook"},
                             attempts=3, backoff={"type": "fixed", "delay": 60_000})

    async def retrying() -> Any:
        view = await queue.get(job_id)
        return view if view and view.attempts_made >= 1 and view.failed_reason else None

    view = await eventually(retrying, what="the first attempt to fail")
    assert view.failed_reason.endswith("timed out); will retry (attempt 1 of 3)")
