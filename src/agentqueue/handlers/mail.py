"""The `email` queue (seed 004): `send-welcome`, `send-verification`, `send-reset-password` and
`send-notification`, each a templated message (`agentqueue.handlers.mail_render`) sent over
SMTP (`agentqueue.handlers.mail_send`): a retry of a job whose message the server accepted
does not send it again (`mail_send` says how, and the one crash window left).

Input is refused at submission when it can never be sent: a malformed address (checked by
email-validator, without DNS), a missing link, or no SMTP server configured (SMTP_HOST and
SMTP_FROM, named in the answer). A job that reaches a worker anyway fails at once, unretried.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from agentqueue.config import Settings
from agentqueue.context import Context
from agentqueue.handlers.builtin import email_queue
from agentqueue.registry import JobRegistry

SEND_WELCOME = "send-welcome"
SEND_VERIFICATION = "send-verification"
SEND_RESET_PASSWORD = "send-reset-password"
SEND_NOTIFICATION = "send-notification"

# The types this module defines, as a user defines theirs (see handlers.builtin).
jobs = JobRegistry()


def checked_address(value: str) -> str:
    """`value` as email-validator normalizes it (no DNS lookup: the SMTP server decides
    deliverability), or a validation error saying what is wrong with it."""
    # Loaded with the first address checked, not when the service starts.
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise PydanticCustomError("email_address", "not a valid email address: {reason}",
                                  {"reason": str(exc)}) from None


EmailAddress = Annotated[
    str, Field(max_length=320), AfterValidator(checked_address),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 320}),
]


def smtp_problem(settings: Settings) -> str | None:
    """Why this deployment cannot send email, naming the settings; None if it can."""
    missing = [name for name, value in (("SMTP_HOST", settings.smtp_host),
                                        ("SMTP_FROM", settings.smtp_from)) if not value]
    if not missing:
        return None
    return (f"email is not configured: set {' and '.join(missing)} (the SMTP server and the "
            "sender address)")


def require_smtp(info: ValidationInfo) -> None:
    """At the API and in the worker (both pass their settings): refuse email nobody can send."""
    settings = (info.context or {}).get("settings")
    if isinstance(settings, Settings):
        problem = smtp_problem(settings)
        if problem:
            raise PydanticCustomError("email_not_configured", problem)


class MailInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: EmailAddress = Field(description="the recipient's address")
    name: str | None = Field(None, max_length=200, description="the recipient's name, to greet")

    @model_validator(mode="after")
    def _sendable(self, info: ValidationInfo) -> MailInput:
        require_smtp(info)
        return self

    def variables(self) -> dict[str, Any]:
        """What the templates read (besides `app_name` and `subject`)."""
        return {"to": self.to, "name": self.name}


class WelcomeInput(MailInput):
    url: AnyHttpUrl | None = Field(None, description="where to sign in")

    def variables(self) -> dict[str, Any]:
        return {**super().variables(), "url": str(self.url) if self.url else None}


class VerificationInput(MailInput):
    url: AnyHttpUrl = Field(description="the link that confirms the address")
    code: str | None = Field(None, min_length=1, max_length=64,
                             description="a code to type instead of following the link")

    def variables(self) -> dict[str, Any]:
        return {**super().variables(), "url": str(self.url), "code": self.code}


class ResetPasswordInput(MailInput):
    url: AnyHttpUrl = Field(description="the link to choose a new password")
    expiresInMinutes: int = Field(60, ge=1, le=10_080, description="how long the link works")

    def variables(self) -> dict[str, Any]:
        return {**super().variables(), "url": str(self.url),
                "expires_in_minutes": self.expiresInMinutes}


class NotificationInput(MailInput):
    subject: str = Field(min_length=1, max_length=200)
    message: str = Field(min_length=1, max_length=20_000,
                         description="plain text; blank lines separate paragraphs")
    url: AnyHttpUrl | None = Field(None, description="a link to add under the message")

    def variables(self) -> dict[str, Any]:
        return {**super().variables(), "subject": self.subject, "message": self.message,
                "url": str(self.url) if self.url else None}


async def send(ctx: Context, kind: str, data: MailInput) -> dict[str, Any]:
    from agentqueue.handlers.mail_send import sender_of

    return await sender_of(ctx).send(ctx, kind, data.to, data.variables())


@jobs.job(SEND_WELCOME, queue=email_queue)
async def send_welcome(ctx: Context, data: WelcomeInput) -> dict[str, Any]:
    return await send(ctx, "welcome", data)


@jobs.job(SEND_VERIFICATION, queue=email_queue)
async def send_verification(ctx: Context, data: VerificationInput) -> dict[str, Any]:
    return await send(ctx, "verification", data)


@jobs.job(SEND_RESET_PASSWORD, queue=email_queue)
async def send_reset_password(ctx: Context, data: ResetPasswordInput) -> dict[str, Any]:
    return await send(ctx, "reset-password", data)


@jobs.job(SEND_NOTIFICATION, queue=email_queue)
async def send_notification(ctx: Context, data: NotificationInput) -> dict[str, Any]:
    return await send(ctx, "notification", data)
