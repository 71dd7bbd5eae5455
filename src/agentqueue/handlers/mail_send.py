"""Sending an email job's message over SMTP (aiosmtplib), once per job whatever its retries.

Idempotency: each job's message has one Message-ID, made from the job (queue, id, creation
time), the same on every attempt. The moment the server accepts the message (its 250 reply to
DATA), the Message-ID is recorded in Redis under the job; an attempt that finds it there
(a retry after a later failure, or a re-run after the worker died) answers the recorded result
without connecting. That is at-least-once delivery with one crash window: a worker killed
between the server's reply and that one Redis write sends again on its re-run, with the same
Message-ID (which mail stores use to drop duplicates). At-most-once (recording before sending)
would close that window by giving up instead: any crash while sending would leave the job
unable to tell "sent" from "never sent", and a verification or password-reset email that never
came is worse than one that came twice in a sub-millisecond window.

SMTP answers decide retries: a 5xx (recipient or message refused, login refused) fails the job
at once; a 4xx, a refused or lost connection or a timeout is retried with the queue's backoff.
The password never appears in a log line or an error.
"""

from __future__ import annotations

import json
import logging
import re
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING, Any

from agentqueue.config import Settings
from agentqueue.context import Context
from agentqueue.engine.worker import JobContext, PermanentJobError
from agentqueue.handlers.mail_render import Templates
from agentqueue.timefmt import iso_now

if TYPE_CHECKING:
    import redis.asyncio as redis

log = logging.getLogger(__name__)

SENDER = "mail-sender"
# How long a sent message is remembered: longer than any job's retries take.
SENT_TTL_S = 30 * 86_400
_UNSAFE = re.compile(r"[^A-Za-z0-9.\-_]")


def sender_of(ctx: Context) -> MailSender:
    """The worker's sender (made from the settings with the first email)."""
    def make() -> MailSender:
        resources = ctx.resources
        assert resources is not None  # a worker's context (Context._resources says so too)
        return MailSender(ctx.settings, resources.runtime.client, resources.runtime.prefix)

    return ctx.shared(SENDER, make)


def message_id(ctx: JobContext, sender: str) -> str:
    """The job's Message-ID: the same on every attempt, unique per job."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "agentqueue.invalid"
    local = _UNSAFE.sub("_", f"{ctx.queue}.{ctx.id}.{ctx.job.timestamp}")
    return f"<{local}@{domain}>"


class MailSender:
    def __init__(self, settings: Settings, client: redis.Redis, prefix: str,
                 templates: Templates | None = None) -> None:
        self.settings = settings
        self.client = client
        self.prefix = prefix
        self.templates = templates or Templates(settings.email_templates_dir)

    def sent_key(self, ctx: JobContext) -> str:
        # The creation time tells a job apart from a later one given the same custom id.
        return f"agentqueue:{self.prefix}:email-sent:{ctx.queue}:{ctx.id}:{ctx.job.timestamp}"

    async def send(self, ctx: JobContext, kind: str, to: str,
                   variables: dict[str, Any]) -> dict[str, Any]:
        key = self.sent_key(ctx)
        recorded = await self.client.get(key)
        if recorded:
            log.info("email %s:%s was accepted by the server on an earlier attempt; not "
                     "sent again", ctx.queue, ctx.id)
            return {**json.loads(recorded), "alreadySent": True}
        settings = self.settings
        sender = settings.smtp_from or ""
        rendered = self.templates.render(kind, {**variables, "app_name": settings.email_app_name})
        await ctx.progress(1, 2, f"Sending to {to}")
        message = EmailMessage()
        message["From"] = sender
        message["To"] = to
        message["Subject"] = rendered.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id(ctx, sender)
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        await self._deliver(ctx, message)
        result = {"status": "sent", "messageId": message["Message-ID"], "to": to,
                  "subject": rendered.subject, "template": kind, "acceptedAt": iso_now(),
                  "attempt": ctx.attempt}
        try:  # first thing after the server's acceptance: see the module's docs
            await self.client.set(key, json.dumps(result), ex=SENT_TTL_S)
        except Exception as exc:  # the message is sent: the job still completes
            log.warning("email %s:%s sent, but its Message-ID could not be recorded: %s",
                        ctx.queue, ctx.id, exc)
        await ctx.progress(2, 2, f"Sent to {to}")
        return {**result, "alreadySent": False}

    async def _deliver(self, ctx: JobContext, message: EmailMessage) -> None:
        import aiosmtplib  # loaded with the first email, not when the service starts

        s = self.settings
        try:
            await aiosmtplib.send(
                message, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
                password=s.secret("smtp_password"), start_tls=s.smtp_starttls,
                use_tls=s.smtp_tls, timeout=s.smtp_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if all(400 <= c < 500 for c in codes):
                raise _retry_or_give_up(
                    ctx, f"SMTP server deferred the recipient ({reason})") from None
            raise PermanentJobError(f"SMTP server refused the recipient ({reason}); not "
                                    "retried") from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise PermanentJobError(f"SMTP login refused ({exc.code} {exc.message}): check "
                                    "SMTP_USERNAME and SMTP_PASSWORD; not retried") from None
        except aiosmtplib.SMTPNotSupported as exc:
            raise PermanentJobError(f"SMTP server does not support what the settings ask "
                                    f"(SMTP_STARTTLS, SMTP_USERNAME): {exc}; not retried") from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                raise PermanentJobError(f"SMTP server refused the message ({exc.code} "
                                        f"{exc.message}); not retried") from None
            raise _retry_or_give_up(ctx, f"SMTP server answered {exc.code} "
                                         f"{exc.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Refused, lost or timed-out connections: the message was not accepted.
            raise _retry_or_give_up(ctx, f"could not send through {s.smtp_host}:{s.smtp_port}"
                                         f" ({type(exc).__name__}: {exc})") from None


def _retry_or_give_up(ctx: JobContext, reason: str) -> Exception:
    attempts = int(ctx.opts.get("attempts") or 1)
    if ctx.attempt >= attempts:
        return PermanentJobError(f"{reason}; gave up after {ctx.attempt} attempt"
                                 f"{'s' if ctx.attempt > 1 else ''}")
    return ConnectionError(f"{reason}; will retry (attempt {ctx.attempt} of {attempts})")
