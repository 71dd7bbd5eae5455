"""A real local SMTP server (aiosmtpd, on its own thread) that keeps the messages it accepted
and can be scripted to refuse or defer recipients and messages, or to require a login."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from tests.support.processes import free_port


class Mailbox:
    """aiosmtpd's handler: the next scripted reply to RCPT / DATA (then 250), messages kept."""

    def __init__(self, rcpt_replies: list[str] | None = None,
                 data_replies: list[str] | None = None) -> None:
        self.rcpt_replies = list(rcpt_replies or [])
        self.data_replies = list(data_replies or [])
        self.messages: list[EmailMessage] = []
        self.logins: list[tuple[str, str]] = []
        self.arrived = threading.Condition()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_replies:
            return self.data_replies.pop(0)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.arrived:
            self.messages.append(message)
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


class Authenticator:
    """Accepts one username and password (LOGIN and PLAIN); records every attempt."""

    def __init__(self, mailbox: Mailbox, username: str, password: str) -> None:
        self.mailbox, self.username, self.password = mailbox, username, password

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.mailbox.logins.append((login, password))
        # handled=False: the server itself answers (235, or 535 on a wrong password).
        return AuthResult(success=(login, password) == (self.username, self.password),
                          handled=False)


@contextmanager
def smtp_server(mailbox: Mailbox, *, login: tuple[str, str] | None = None
                ) -> Iterator[tuple[str, int]]:
    """Serve `mailbox` on 127.0.0.1 (a free port) for the block: its host and port."""
    from aiosmtpd.controller import Controller

    port = free_port()
    options: dict[str, Any] = {}
    if login is not None:
        options = {"authenticator": Authenticator(mailbox, *login), "auth_required": True,
                   "auth_require_tls": False}
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield "127.0.0.1", port
    finally:
        controller.stop()
