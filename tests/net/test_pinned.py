"""The pinned transport resolves once, checks every address and connects to a checked one.

Two real receivers on one port: 127.0.0.1 stands for an allowed destination, 127.0.0.2 for a
forbidden one (the policy allows only 127.0.0.1/32). A resolver seam plays DNS.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Sequence
from ipaddress import ip_address

import httpx
import pytest
import trustme

from agentqueue.net.destinations import DestinationNotAllowed, DestinationPolicy, IPAddress
from agentqueue.net.pinned import PinnedTransport, pinned_client
from tests.support.http_receiver import Receiver, receiving

ALLOWED_ONLY_127_0_0_1 = DestinationPolicy.from_setting("127.0.0.1/32")


class ScriptedDns:
    """Answers each lookup with the next scripted list of addresses (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = [[ip_address(a) for a in answer] for answer in answers]
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.lookups.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def good() -> Iterator[Receiver]:
    with receiving(Receiver("127.0.0.1")) as receiver:
        yield receiver


@pytest.fixture
def evil(good: Receiver) -> Iterator[Receiver]:
    with receiving(Receiver("127.0.0.2", port=good.port)) as receiver:
        yield receiver


async def test_a_rebinding_name_is_connected_to_the_address_that_was_checked(
    good: Receiver, evil: Receiver
) -> None:
    dns = ScriptedDns(["127.0.0.1"], ["127.0.0.2"])  # first answer allowed, then rebound
    async with pinned_client(ALLOWED_ONLY_127_0_0_1, resolver=dns) as client:
        answer = await client.post(f"http://rebind.test:{good.port}/hook", content=b"{}")
    assert answer.status_code == 200
    assert len(good.received) == 1 and evil.received == []
    assert good.received[0][0]["host"] == f"rebind.test:{good.port}"
    assert dns.lookups == ["rebind.test"]  # resolved once: nothing re-resolves behind the check


async def test_the_next_request_checks_the_new_answer_and_refuses_it(
    good: Receiver, evil: Receiver
) -> None:
    dns = ScriptedDns(["127.0.0.1"], ["127.0.0.2"])
    async with pinned_client(ALLOWED_ONLY_127_0_0_1, resolver=dns) as client:
        await client.post(f"http://rebind.test:{good.port}/hook", content=b"{}")
        with pytest.raises(DestinationNotAllowed):
            await client.post(f"http://rebind.test:{good.port}/hook", content=b"{}")
    assert len(good.received) == 1 and evil.received == []


async def test_one_forbidden_address_among_the_answers_refuses_the_name(
    good: Receiver, evil: Receiver
) -> None:
    dns = ScriptedDns(["127.0.0.1", "127.0.0.2"])
    async with pinned_client(ALLOWED_ONLY_127_0_0_1, resolver=dns) as client:
        with pytest.raises(DestinationNotAllowed):
            await client.post(f"http://mixed.test:{good.port}/hook", content=b"{}")
    assert good.received == [] and evil.received == []


async def test_https_keeps_the_name_for_sni_and_the_certificate_check() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.test").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    receiver = Receiver("127.0.0.1")
    receiver.use_tls(server_context)
    dns = ScriptedDns(["127.0.0.1"])
    with receiving(receiver):
        inner = httpx.AsyncHTTPTransport(verify=client_context)
        transport = PinnedTransport(ALLOWED_ONLY_127_0_0_1, resolver=dns, inner=inner)
        async with httpx.AsyncClient(transport=transport) as client:
            answer = await client.post(f"https://hooks.test:{receiver.port}/hook", content=b"{}")
            assert answer.status_code == 200
            with pytest.raises(httpx.ConnectError):  # the certificate names hooks.test only
                await client.post(f"https://other.test:{receiver.port}/hook", content=b"{}")
    assert len(receiver.received) == 1
    assert receiver.received[0][0]["host"] == f"hooks.test:{receiver.port}"


async def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    async def nowhere(host: str, port: int) -> Sequence[IPAddress]:
        raise OSError("Name or service not known")

    async with pinned_client(DestinationPolicy(), resolver=nowhere) as client:
        with pytest.raises(httpx.ConnectError, match="could not resolve nowhere.test"):
            await client.post("http://nowhere.test/hook")


async def test_when_one_checked_address_refuses_the_next_one_is_tried(good: Receiver) -> None:
    dns = ScriptedDns(["127.0.0.3", "127.0.0.1"])  # nothing listens on 127.0.0.3
    policy = DestinationPolicy.from_setting("127.0.0.0/8")
    async with pinned_client(policy, resolver=dns) as client:
        answer = await client.post(f"http://two.test:{good.port}/hook", content=b"{}")
    assert answer.status_code == 200 and len(good.received) == 1
