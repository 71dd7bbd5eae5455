"""A worker SIGKILLed after the SMTP server accepted an email job's message, before the job's
outcome was stored: the job is run again by the next worker, which does not send it again."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import agentqueue
from agentqueue.config import Settings
from tests.support.processes import agentqueue as run_agentqueue
from tests.support.service import delete_service_keys, serve_env
from tests.support.smtp_server import Mailbox, smtp_server
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def env(tmp_path: Path, redis_url: str) -> AsyncIterator[dict[str, str]]:
    # A dead worker's job is taken over within about a second.
    env = serve_env(tmp_path / "data", REDIS_URL=redis_url, QUEUE_LOCK_DURATION_MS="1000",
                    QUEUE_STALLED_INTERVAL_MS="500", SMTP_FROM="noreply@acme.test")
    yield env
    await delete_service_keys(env)


async def test_a_worker_killed_after_the_server_accepted_does_not_send_twice(
    env: dict[str, str], tmp_path: Path
) -> None:
    mailbox = Mailbox()
    marker = tmp_path / "sent"
    with smtp_server(mailbox) as (host, port):
        env.update(SMTP_HOST=host, SMTP_PORT=str(port))
        app = agentqueue.App(Settings(**env))  # type: ignore[arg-type]  # env names: aliases
        try:
            job = await app.enqueue("send-welcome", {"to": "ann@example.com", "name": "Ann"})
            crashing = {**env, "MAIL_CRASH_MARKER": str(marker)}
            with run_agentqueue("worker tests.handlers.mail_crash_app:app --queue email "
                                "--processes 1", crashing, tmp_path / "first.log",
                                cwd=REPO) as first:
                async def sent() -> bool:
                    return marker.exists()

                await eventually(sent, timeout=90, what="the first worker to send")
                assert len(mailbox.messages) == 1
                first.signal(signal.SIGKILL)
                first.wait_exit()
            assert await job.status() == "active"  # its outcome was never stored

            with run_agentqueue("worker --queue email --processes 1", env,
                                tmp_path / "second.log", cwd=REPO):
                result: Any = await job.wait(timeout=90)
        finally:
            await app.close()

    assert len(mailbox.messages) == 1  # one message at the server, not two
    assert result["alreadySent"] is True and result["attempt"] == 1
    assert result["messageId"] == mailbox.messages[0]["Message-ID"]


