"""The `notify` job option: announce a job's outcome by webhook, Slack, Discord or email.

`notify: [{"on": ["completed", "failed"], "webhook": url} | {"slack": url} |
{"discord": url} | {"email": address}]`, given to `POST /api/jobs` or `App.enqueue`, is
checked at submission (URLs by the webhooks' destination rules, an email address by
email-validator and against the SMTP settings) and stored in the job's BullMQ options with
the job's owner. The `Notifications` worker middleware (`handlers.notify_middleware`) reads it
when the job ends for good and queues one job per target, owned as the job:

| target    | job                                   | on the queue |
|-----------|---------------------------------------|--------------|
| `webhook` | `webhook` (signed, event `job.<outcome>`, payload below) | webhooks |
| `slack`   | `slack-message` (`{"text": …}`)      | webhooks |
| `discord` | `discord-message` (`{"content": …}`) | webhooks |
| `email`   | `send-notification`                   | email |
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agentqueue.handlers.mail import EmailAddress, require_smtp
from agentqueue.handlers.webhooks import allowed_destination
from agentqueue.records.views import JobOwner

Outcome = Literal["completed", "failed", "cancelled"]
OPTION = "notify"  # the key in the job's BullMQ options
MAX_TARGETS = 10
KINDS = ("webhook", "slack", "discord", "email")


class NotifyTarget(BaseModel):
    """One destination of a job's announcement, and the outcomes it is told of."""

    model_config = ConfigDict(extra="forbid")

    on: list[Outcome] = Field(["completed", "failed"], min_length=1,
                              description="the outcomes announced (a retry is not one; a job "
                                          "cancelled before it started is not announced)")
    webhook: AnyHttpUrl | None = Field(None, description="a signed `webhook` job, as seed "
                                                         "003's webhooks queue delivers")
    slack: AnyHttpUrl | None = Field(None, description="a Slack incoming webhook URL")
    discord: AnyHttpUrl | None = Field(None, description="a Discord webhook URL")
    email: EmailAddress | None = Field(None, description="an address (needs SMTP_HOST)")

    @field_validator("webhook", "slack", "discord")
    @classmethod
    def _public_destination(cls, url: AnyHttpUrl | None,
                            info: ValidationInfo) -> AnyHttpUrl | None:
        return None if url is None else allowed_destination(url, info)

    @model_validator(mode="after")
    def _one_destination(self, info: ValidationInfo) -> NotifyTarget:
        named = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(named) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (not "
                             f"{' and '.join(named) or 'none'})")
        if self.email is not None:
            require_smtp(info)
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    @property
    def destination(self) -> str:
        return str(getattr(self, self.kind))


_TARGETS = TypeAdapter(list[NotifyTarget])


def check_targets(raw: Any, context: dict[str, Any] | None) -> list[NotifyTarget]:
    """`raw` as targets (at most MAX_TARGETS), or a ValueError naming what is wrong
    (`notify[0].webhook: …`)."""
    if not isinstance(raw, list):
        raise ValueError("notify: a list of targets, e.g. [{\"webhook\": \"https://…\"}]")
    if len(raw) > MAX_TARGETS:
        raise ValueError(f"notify: at most {MAX_TARGETS} targets")
    try:
        return _TARGETS.validate_python(
            [t.model_dump(exclude_none=True) if isinstance(t, BaseModel) else t for t in raw],
            context=context)
    except ValidationError as exc:
        raise ValueError(_described(exc)) from None


def _described(exc: ValidationError) -> str:
    """Each wrong field as the HTTP APIs name fields: `notify[0].webhook: …`."""
    parts = []
    for error in exc.errors():
        where = "notify" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                   for p in error.get("loc", ()))
        text = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {'unknown field' if error['type'] == 'extra_forbidden' else text}")
    return "; ".join(parts)


def notify_option(raw: Any, owner: JobOwner, context: dict[str, Any] | None) -> dict[str, Any]:
    """What the job's BullMQ options keep: the checked targets and whom their jobs belong to."""
    targets = check_targets(raw, context)
    return {
        "owner": {"userId": owner.user_id,
                  **({"orgId": owner.org_id} if owner.org_id is not None else {})},
        "targets": [t.model_dump(mode="json", exclude_none=True) for t in targets],
    }


def stored_targets(option: Any) -> tuple[JobOwner, list[NotifyTarget]]:
    """The option as a worker reads it back (already checked at submission)."""
    owner = option.get("owner") or {}
    targets = [NotifyTarget.model_validate(t) for t in option.get("targets") or []]
    return JobOwner(user_id=str(owner.get("userId") or ""), org_id=owner.get("orgId")), targets
