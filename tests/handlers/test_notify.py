"""The `notify` option checked at submission, over `POST /api/jobs` and `App.enqueue`: what can
never be delivered is refused (400 / ValueError) and nothing is queued."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

import agentqueue
from agentqueue.config import Settings
from agentqueue.handlers.notify import OPTION
from tests.support.app_api import in_process_api

TEXT = "Queues hold work. Workers take it."


@pytest.mark.parametrize(("notify", "named"), [
    ([{"slack": "http://127.0.0.1:9/hook"}], "notify[0].slack"),
    ([{"webhook": "http://169.254.169.254/latest"}], "notify[0].webhook"),
    ([{"discord": "http://10.0.0.7/api/webhooks/1"}], "notify[0].discord"),
    ([{"email": "ops@example.com"}], "set SMTP_HOST and SMTP_FROM"),
    ([{"email": "ops at example.com"}], "notify[0].email: not a valid email address"),
    ([{"slack": "https://hooks.slack.com/a", "discord": "https://discord.com/api/webhooks/b"}],
     "give exactly one of webhook, slack, discord, email (not slack and discord)"),
    ([{"on": ["retried"], "slack": "https://hooks.slack.com/a"}], "notify[0].on[0]"),
    ([{"on": [], "slack": "https://hooks.slack.com/a"}], "notify[0].on"),
    ([{"slack": "https://hooks.slack.com/a"}] * 11, "notify"),
])
async def test_post_api_jobs_refuses_a_target_that_can_never_be_reached(
    redis_url: str, prefix: str, tmp_path: Path, notify: list[dict[str, Any]], named: str
) -> None:
    async with in_process_api(redis_url, prefix, tmp_path) as (http, services):
        answer = await http.post("/api/jobs", json={"type": "summarize", "data": {"text": TEXT},
                                                    "notify": notify})
        assert answer.status_code == 400, answer.text
        assert named in answer.json()["message"]
        if named.endswith(("slack", "webhook", "discord")):  # refused as webhooks are
            assert "WEBHOOK_ALLOWED_NETWORKS" in answer.json()["message"]
        assert await services.records.list_jobs() == ([], 0)  # nothing recorded or queued


async def test_post_api_jobs_stores_the_checked_targets_with_the_job(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with in_process_api(redis_url, prefix, tmp_path) as (http, services):
        answer = await http.post("/api/jobs", json={
            "type": "summarize", "data": {"text": TEXT},
            "notify": [{"slack": "https://hooks.slack.com/services/T/B/X"},
                       {"on": ["failed"], "webhook": "https://example.com/jobs"}]})
        assert answer.status_code == 201, answer.text
        queue, _, job_id = answer.json()["id"].partition(":")
        stored = json.loads(await services.client.hget(f"{prefix}:{queue}:{job_id}", "opts"))

    assert stored[OPTION]["targets"] == [
        {"on": ["completed", "failed"], "slack": "https://hooks.slack.com/services/T/B/X"},
        {"on": ["failed"], "webhook": "https://example.com/jobs"},
    ]
    assert stored[OPTION]["owner"]["userId"] == answer.json()["userId"]


async def test_enqueue_checks_notify_as_the_api_does(
    redis_url: str, prefix: str, tmp_path: Path, client: redis.Redis
) -> None:
    app = agentqueue.App(Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=tmp_path))
    try:
        with pytest.raises(ValueError, match=r"notify\[0\]\.webhook: .*WEBHOOK_ALLOWED_NETWORKS"):
            await app.enqueue("summarize", {"text": TEXT},
                              notify=[{"webhook": "http://127.0.0.1:8080/hook"}])
        job = await app.enqueue("summarize", {"text": TEXT}, owner="ann",
                                notify=[{"discord": "https://discord.com/api/webhooks/1/x"}])
        stored = json.loads(await client.hget(
            f"{prefix}:{job.queue}:{job.id}", "opts"))
        assert stored[OPTION] == {
            "owner": {"userId": "ann"},
            "targets": [{"on": ["completed", "failed"],
                         "discord": "https://discord.com/api/webhooks/1/x"}],
        }
    finally:
        await app.close()
