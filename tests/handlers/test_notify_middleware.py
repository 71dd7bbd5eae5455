"""Jobs announced on their final outcome by webhook, Slack, Discord and email: submitted over
`POST /api/jobs` to the API and worker in this process, received by real local HTTP receivers
and a real SMTP server (aiosmtpd), on a real Redis and SQL records."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from agentqueue.config import Settings
from agentqueue.core.submission import JobSubmitter
from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import CallNext, Middleware
from agentqueue.engine.queue import JobQueue
from agentqueue.handlers.builtin import builtin_registry
from agentqueue.handlers.notify import OPTION, notify_option
from agentqueue.handlers.notify_middleware import Notifications
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from agentqueue.services import Services, build_workers, open_queues
from tests.support.app_api import in_process_api
from tests.support.http_receiver import Receiver, receiving
from tests.support.smtp_server import Mailbox, smtp_server
from tests.support.waiting import eventually
from tests.support.workers import StartWorker, mw_queue, start_worker

__all__ = ["mw_queue", "start_worker"]  # fixtures

SECRET = "whsec-notify"
TEXT = "Queues hold work. Workers take it. Results come back to whoever asked."


@contextlib.contextmanager
def receivers(count: int) -> Iterator[list[Receiver]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(receiving(Receiver())) for _ in range(count)]


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
async def service(redis_url: str, prefix: str, tmp_path: Path, mailbox: Mailbox
                  ) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """API and worker in this process, allowed to reach loopback, sending mail to aiosmtpd."""
    with smtp_server(mailbox) as (host, port):
        async with in_process_api(
            redis_url, prefix, tmp_path, run_worker=True, WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
            WEBHOOK_SECRET=SECRET, SMTP_HOST=host, SMTP_PORT=str(port),
            SMTP_FROM="jobs@acme.test", QUEUE_BACKOFF_MS="50",
        ) as started:
            yield started


async def finished(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job = (await http.get(f"/api/jobs/{job_id}")).json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    return await eventually(probe, timeout=30, what=f"job {job_id} to finish")


async def arrived(receiver: Receiver, count: int = 1) -> list[Any]:
    async def probe() -> bool:
        return len(receiver.received) >= count

    await eventually(probe, timeout=30, what=f"{count} request(s) at {receiver.url}")
    return [json.loads(body) for _, body in receiver.received]


async def notifications(services: Services, job_type: str) -> list[Any]:
    """The notification jobs of a type, once every one of them has finished."""
    async def probe() -> list[Any] | None:
        records, _ = await services.records.list_jobs(types=[job_type], limit=100)
        done = all(r.status in ("completed", "failed") for r in records)
        return records if done else None

    return await eventually(probe, timeout=30, what=f"the {job_type} jobs to finish")


async def test_a_completed_job_is_announced_to_each_kind_of_target(
    service: tuple[httpx.AsyncClient, Services], mailbox: Mailbox
) -> None:
    http, services = service
    with receivers(3) as (hook, slack, discord):
        answer = await http.post("/api/jobs", json={
            "type": "summarize", "data": {"text": TEXT},
            "notify": [{"webhook": hook.url}, {"slack": slack.url},
                       {"discord": discord.url}, {"email": "ops@example.com"}]})
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["id"]
        job = await finished(http, job_id)
        [webhook_body] = await arrived(hook)
        [slack_body] = await arrived(slack)
        [discord_body] = await arrived(discord)
        headers, raw = hook.received[0]

    line = f"✅ Job summarize ({job_id}) completed after 1 attempt"
    assert slack_body == {"text": line}
    assert discord_body == {"content": line}
    assert webhook_body["event"] == "job.completed"
    payload = webhook_body["payload"]
    assert payload["jobId"] == job_id and payload["type"] == "summarize"
    assert payload["status"] == "completed" and payload["result"] == job["result"]
    digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["x-agentqueue-signature"] == f"sha256={digest}"

    async def mailed() -> bool:
        return len(mailbox.messages) == 1

    await eventually(mailed, timeout=30, what="the email notification")
    message = mailbox.messages[0]
    assert message["To"] == "ops@example.com"
    assert message["Subject"] == f"Job summarize {job_id} completed"
    body = message.get_body(("plain",))
    assert body is not None and line in body.get_content()
    # The notifications are jobs of the same owner as the job, listed with theirs.
    listed = (await http.get("/api/jobs", params={"type": "slack-message"})).json()["jobs"]
    assert [j["userId"] for j in listed] == [job["userId"]]


async def test_a_retry_is_not_announced_and_the_final_failure_is_once(
    service: tuple[httpx.AsyncClient, Services],
) -> None:
    http, services = service
    with receivers(1) as [slack], receiving(Receiver(statuses=[503, 404])) as target:
        # A webhook job: its receiver answers 503 (retried), then 404 (failed for good).
        answer = await http.post("/api/jobs", json={
            "type": "webhook", "data": {"url": target.url}, "maxAttempts": 3,
            "notify": [{"slack": slack.url}]})
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["id"]
        job = await finished(http, job_id)
        [body] = await arrived(slack)
        sent = await notifications(services, "slack-message")

    assert job["status"] == "failed" and job["attempts"] == 2
    assert body == {"text": f"❌ Job webhook ({job_id}) failed: webhook answered HTTP 404; "
                            "not retried after 2 attempts"}
    assert len(sent) == 1 and len(slack.received) == 1


async def test_only_the_outcomes_a_target_asks_for_are_announced(
    service: tuple[httpx.AsyncClient, Services],
) -> None:
    http, services = service
    with receivers(2) as (on_failure, on_completion):
        answer = await http.post("/api/jobs", json={
            "type": "summarize", "data": {"text": TEXT},
            "notify": [{"on": ["failed"], "slack": on_failure.url},
                       {"on": ["completed"], "discord": on_completion.url}]})
        await finished(http, answer.json()["id"])
        await arrived(on_completion)
        # Both targets are considered in one go, the first first: none was queued for it.
        assert await services.records.list_jobs(types=["slack-message"]) == ([], 0)
    assert on_failure.received == []


# --- a worker that dies once its job has ended ------------------------------------------------


class NeverStoresTheOutcome(Middleware):
    """As a worker that dies right after the handler returned: the outcome is never stored
    (until the test lets it go)."""

    def __init__(self) -> None:
        self.returned = asyncio.Event()
        self.release = asyncio.Event()

    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        result = await call_next()
        self.returned.set()
        await self.release.wait()
        return result


class HooksObserved(Notifications):
    """Notifications, saying when its outcome hook has run (and queued again, or not)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.hooked = asyncio.Event()

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        await super().after_job(ctx, result)
        self.hooked.set()


async def test_the_notification_is_queued_before_the_outcome_is_stored(
    redis_url: str, prefix: str, client: redis.Redis, records: Records,
    start_worker: StartWorker, mw_queue: JobQueue,
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix,
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8")
    registry = builtin_registry()
    queues = open_queues(settings, client, registry)
    stuck = NeverStoresTheOutcome()
    notify = HooksObserved(JobSubmitter(queues, records), settings, registry)

    async def work(ctx: JobContext) -> dict[str, Any]:
        return {"rows": 3}

    await start_worker({"export": work}, [stuck, notify])
    webhooks = build_workers(settings, redis_url, [settings.webhooks_queue_name],
                             records=records)
    await webhooks.start()
    try:
        with receivers(1) as [slack]:
            option = notify_option([{"slack": slack.url}], JobOwner(user_id="ann"), None)
            job_id = await mw_queue.add("export", {}, **{OPTION: option})
            await asyncio.wait_for(stuck.returned.wait(), 30)
            [body] = await arrived(slack)
            live = await mw_queue.get(job_id)
            assert live is not None and live.state == "active"  # no outcome stored yet
            assert body == {"text": f"✅ Job export (mw:{job_id}) completed after 1 attempt"}

            stuck.release.set()  # the outcome is stored, and the hooks queue the same job

            async def completed() -> bool:
                view = await mw_queue.get(job_id)
                return view is not None and view.state == "completed"

            await eventually(completed, what="the job to complete")
            await asyncio.wait_for(notify.hooked.wait(), 30)
            sent = await notifications_in(records, "slack-message")
        assert len(sent) == 1 and len(slack.received) == 1
        assert sent[0].user_id == "ann"
    finally:
        stuck.release.set()
        await webhooks.stop(0)
        for queue in queues.values():
            await queue.close()


async def notifications_in(records: Records, job_type: str) -> list[Any]:
    async def probe() -> list[Any] | None:
        found, _ = await records.list_jobs(types=[job_type], limit=100)
        return found if found and all(r.status == "completed" for r in found) else None

    return await eventually(probe, timeout=30, what=f"the {job_type} jobs to finish")
