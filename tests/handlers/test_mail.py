"""The email queue's four jobs, sent by a real worker on a real Redis to a real local SMTP
server (aiosmtpd): templates, retries, refusals, logins, and no second send after the server
accepted a message."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import CallNext, Middleware
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.errors import InvalidJobInput
from agentqueue.services import WorkerGroup, build_workers
from tests.support.smtp_server import Mailbox, smtp_server
from tests.support.workers import finished

# The login tests' server takes a password without TLS (on loopback), as aiosmtpd warns.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SENDER = "Acme <noreply@acme.test>"
Start = Callable[..., Awaitable[JobQueue]]


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp(mailbox: Mailbox) -> Iterator[tuple[str, int]]:
    with smtp_server(mailbox) as address:
        yield address


def mail_settings(redis_url: str, prefix: str, smtp: tuple[str, int] | None,
                  **extra: Any) -> Settings:
    values: dict[str, Any] = {"REDIS_URL": redis_url, "QUEUE_PREFIX": prefix,
                              "QUEUE_BACKOFF_MS": "50", "EMAIL_APP_NAME": "Acme"}
    if smtp is not None:
        values.update(SMTP_HOST=smtp[0], SMTP_PORT=str(smtp[1]), SMTP_FROM=SENDER)
    return Settings(_env_file=None, **{**values, **extra})  # type: ignore[call-arg]


@pytest.fixture
async def email_worker(client: redis.Redis, prefix: str,
                       redis_url: str) -> AsyncIterator[Start]:
    """Start the email queue's worker (with settings and middleware of the test's); answer
    its queue."""
    groups: list[WorkerGroup] = []

    async def start(smtp: tuple[str, int] | None, *, middleware: list[Middleware] | None = None,
                    **extra: Any) -> JobQueue:
        settings = mail_settings(redis_url, prefix, smtp, **extra)
        group = build_workers(settings, redis_url, [settings.email_queue_name],
                              middleware=middleware or [])
        await group.start()
        groups.append(group)
        return JobQueue(settings.email_queue_name, client, prefix=prefix,
                        defaults=QueueDefaults(attempts=3, backoff_ms=50))

    yield start
    for group in groups:
        await group.stop(0)


async def send(queue: JobQueue, name: str, data: dict[str, Any], **options: Any) -> Any:
    return await finished(queue, await queue.add(name, data, **options))


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


# --- the four jobs ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data", "subject", "in_text"), [
    ("send-welcome", {"to": "ann@example.com", "name": "Ann", "url": "https://acme.test/in"},
     "Welcome to Acme, Ann", "Sign in: https://acme.test/in"),
    ("send-verification", {"to": "ann@example.com", "url": "https://acme.test/v?t=1",
                           "code": "483920"},
     "Confirm your email address for Acme", "Or enter this code: 483920"),
    ("send-reset-password", {"to": "ann@example.com", "url": "https://acme.test/r?t=2",
                             "expiresInMinutes": 15},
     "Reset your Acme password", "within 15 minutes"),
    ("send-notification", {"to": "ann@example.com", "subject": "Your export is ready",
                           "message": "All 3 files are done."},
     "Your export is ready", "All 3 files are done."),
])
async def test_each_job_sends_its_templated_message(
    email_worker: Start, smtp: tuple[str, int], mailbox: Mailbox,
    name: str, data: dict[str, Any], subject: str, in_text: str,
) -> None:
    view = await send(await email_worker(smtp), name, data)

    assert view.state == "completed", view.failed_reason
    [message] = mailbox.messages
    assert message["Subject"] == subject
    assert message["To"] == "ann@example.com" and message["From"] == SENDER
    text, html = parts(message)
    assert in_text in text
    assert html.lstrip().startswith("<!doctype html>") and "Acme" in html
    assert view.result["messageId"] == message["Message-ID"]
    assert view.result["messageId"].endswith("@acme.test>")
    assert view.result["status"] == "sent" and view.result["alreadySent"] is False
    assert view.progress["message"] == "Sent to ann@example.com"


async def test_html_is_escaped_and_the_text_part_is_not(
    email_worker: Start, smtp: tuple[str, int], mailbox: Mailbox
) -> None:
    name = '<img src=x onerror="alert(1)"> & Co'
    view = await send(await email_worker(smtp), "send-welcome",
                      {"to": "ann@example.com", "name": name})

    assert view.state == "completed", view.failed_reason
    text, html = parts(mailbox.messages[0])
    assert "<img" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; Co" in html
    assert f"Hello {name}," in text


async def test_an_operators_template_replaces_the_builtin_one_of_its_name(
    email_worker: Start, smtp: tuple[str, int], mailbox: Mailbox, tmp_path: Path
) -> None:
    (tmp_path / "welcome.subject").write_text("Hi {{ name }}, from {{ app_name }}\n")
    (tmp_path / "base.html").write_text("<html><body class=acme>{% block body %}{% endblock %}"
                                        "</body></html>")
    queue = await email_worker(smtp, EMAIL_TEMPLATES_DIR=str(tmp_path))
    view = await send(queue, "send-welcome", {"to": "ann@example.com", "name": "Ann"})

    assert view.state == "completed", view.failed_reason
    message = mailbox.messages[0]
    assert message["Subject"] == "Hi Ann, from Acme"
    text, html = parts(message)
    assert "<body class=acme>" in html and "Welcome to Acme" in html  # built-in body, own layout
    assert "Welcome to Acme. Your account is ready." in text  # the built-in text part


# --- idempotency --------------------------------------------------------------------------------


class FailAfterTheHandlerOnce(Middleware):
    """The job's first attempt fails after its handler returned (the message already sent)."""

    def __init__(self) -> None:
        self.failed: set[str] = set()

    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        result = await call_next()
        if ctx.id not in self.failed:
            self.failed.add(ctx.id)
            raise ConnectionError("lost Redis right after sending")
        return result


async def test_a_retry_after_the_server_accepted_does_not_send_again(
    email_worker: Start, smtp: tuple[str, int], mailbox: Mailbox
) -> None:
    queue = await email_worker(smtp, middleware=[FailAfterTheHandlerOnce()])
    view = await send(queue, "send-reset-password",
                      {"to": "ann@example.com", "url": "https://acme.test/r"})

    assert view.state == "completed" and view.attempts_made == 2
    assert len(mailbox.messages) == 1  # the server has one message, not two
    assert view.result["alreadySent"] is True and view.result["attempt"] == 1
    assert view.result["messageId"] == mailbox.messages[0]["Message-ID"]


async def test_a_deferred_message_is_retried_and_arrives_once(
    email_worker: Start, smtp: tuple[str, int], mailbox: Mailbox
) -> None:
    mailbox.data_replies[:] = ["451 4.3.0 Try again later"]
    view = await send(await email_worker(smtp), "send-welcome", {"to": "ann@example.com"})

    assert view.state == "completed" and view.attempts_made == 2
    assert len(mailbox.messages) == 1 and view.result["attempt"] == 2


async def test_every_attempt_of_a_job_carries_the_same_message_id(
    email_worker: Start, smtp: tuple[str, int], mailbox: Mailbox
) -> None:
    queue = await email_worker(smtp)
    first = await send(queue, "send-welcome", {"to": "ann@example.com"})
    second = await send(queue, "send-welcome", {"to": "ann@example.com"})

    assert first.result["messageId"] != second.result["messageId"]  # two jobs, two messages
    assert [m["Message-ID"] for m in mailbox.messages] == [first.result["messageId"],
                                                           second.result["messageId"]]


# --- refusals -----------------------------------------------------------------------------------


async def test_a_refused_recipient_fails_at_once(
    email_worker: Start, smtp: tuple[str, int], mailbox: Mailbox
) -> None:
    mailbox.rcpt_replies[:] = ["550 5.1.1 No such user"]
    view = await send(await email_worker(smtp), "send-welcome", {"to": "nobody@example.com"})

    assert view.state == "failed" and view.attempts_made == 1
    assert "refused the recipient" in view.failed_reason and "550" in view.failed_reason
    assert mailbox.messages == []


async def test_an_unreachable_server_is_retried_then_given_up(email_worker: Start) -> None:
    from tests.support.processes import free_port

    queue = await email_worker(("127.0.0.1", free_port()))  # nothing listens there
    view = await send(queue, "send-welcome", {"to": "ann@example.com"}, attempts=2)

    assert view.state == "failed" and view.attempts_made == 2
    assert "could not send through 127.0.0.1" in view.failed_reason
    assert "gave up after 2 attempts" in view.failed_reason


async def test_a_bad_address_reaching_the_worker_fails_without_retry(
    email_worker: Start, smtp: tuple[str, int], mailbox: Mailbox
) -> None:
    view = await send(await email_worker(smtp), "send-welcome", {"to": "ann@@example"})

    assert view.state == "failed" and view.attempts_made == 1
    assert "data.to: not a valid email address" in view.failed_reason
    assert mailbox.messages == []


async def test_without_smtp_settings_a_job_fails_at_once_naming_them(email_worker: Start) -> None:
    view = await send(await email_worker(None), "send-welcome", {"to": "ann@example.com"})

    assert view.state == "failed" and view.attempts_made == 1
    assert "set SMTP_HOST and SMTP_FROM" in view.failed_reason


# --- login --------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["s3cret-Pa55word", "wrong-guess"])
async def test_it_logs_in_and_never_logs_the_password(
    email_worker: Start, caplog: pytest.LogCaptureFixture, given: str
) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox, login=("mailer", "s3cret-Pa55word")) as smtp:
        caplog.set_level(logging.DEBUG)
        queue = await email_worker(smtp, SMTP_USERNAME="mailer", SMTP_PASSWORD=given)
        view = await send(queue, "send-welcome", {"to": "ann@example.com"})

    assert ("mailer", given) in mailbox.logins
    if given == "wrong-guess":
        assert view.state == "failed" and view.attempts_made == 1
        assert "SMTP login refused" in view.failed_reason
        assert "SMTP_PASSWORD" in view.failed_reason and given not in view.failed_reason
        assert mailbox.messages == []
    else:
        assert view.state == "completed" and len(mailbox.messages) == 1
    assert caplog.text and given not in caplog.text


# --- at submission ------------------------------------------------------------------------------


async def test_enqueue_refuses_a_bad_address_and_a_missing_smtp_server(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    configured = agentqueue.App(mail_settings(redis_url, prefix, ("127.0.0.1", 2525),
                                              AGENTQUEUE_DATA_DIR=str(tmp_path)))
    offline = agentqueue.App(mail_settings(redis_url, prefix, None,
                                           AGENTQUEUE_DATA_DIR=str(tmp_path)))
    try:
        with pytest.raises(InvalidJobInput, match="data.to: not a valid email address"):
            await configured.enqueue("send-welcome", {"to": "ann at example.com"})
        with pytest.raises(InvalidJobInput, match="data.url"):
            await configured.enqueue("send-verification", {"to": "ann@example.com"})
        with pytest.raises(InvalidJobInput, match="set SMTP_HOST and SMTP_FROM"):
            await offline.enqueue("send-notification", {"to": "ann@example.com",
                                                        "subject": "s", "message": "m"})
    finally:
        await configured.close()
        await offline.close()
