"""An httpx transport that connects only to addresses it has checked (no DNS rebinding).

Checking a name and then letting the HTTP client resolve it again leaves a window: the second
answer may differ (DNS rebinding). Here each request's host is resolved once, every address is
checked against a `DestinationPolicy`, and the connection goes to one of those very addresses;
the Host header and the TLS name (SNI and certificate check) stay the name the caller gave.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence
from ipaddress import ip_address

import httpx

from agentqueue.net.destinations import DestinationPolicy, IPAddress

# host, port -> the addresses the host resolves to. A seam: tests swap in their own answers.
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])  # drop an IPv6 zone id
        if address not in addresses:
            addresses.append(address)
    return addresses


class PinnedTransport(httpx.AsyncBaseTransport):
    """Resolve, check every address, connect to a checked one; refuse with DestinationNotAllowed.

    Connections are not kept alive: the pool would key them by address, so a later request for
    another name resolving to the same address could reuse a TLS session verified for the first.
    """

    def __init__(
        self,
        policy: DestinationPolicy,
        *,
        resolver: Resolver = system_resolver,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner or httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_keepalive_connections=0), trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.raw_host.decode("ascii")  # IDNA-encoded, as DNS and SNI want it
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        addresses = await self._resolve(request, host, port)
        self.policy.check_addresses(host, addresses)
        original = request.url
        failure: httpx.ConnectError | None = None
        for target in addresses:  # in the resolver's order of preference, as a client would
            if str(target) != host:
                # The Host header was set from the original URL when the request was built.
                request.url = original.copy_with(host=str(target))
                request.extensions = {**request.extensions, "sni_hostname": host}
            try:
                return await self.inner.handle_async_request(request)
            except httpx.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def _resolve(self, request: httpx.Request, host: str, port: int) -> list[IPAddress]:
        try:
            return [ip_address(host)]
        except ValueError:
            pass
        timeout = (request.extensions.get("timeout") or {}).get("connect")
        try:
            async with asyncio.timeout(timeout):
                addresses = list(await self.resolver(host, port))
        except TimeoutError:
            raise httpx.ConnectTimeout(f"resolving {host} timed out", request=request) from None
        except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
            raise httpx.ConnectError(f"could not resolve {host}", request=request) from exc
        if not addresses:
            raise httpx.ConnectError(f"could not resolve {host}", request=request)
        return addresses

    async def aclose(self) -> None:
        await self.inner.aclose()


def pinned_client(
    policy: DestinationPolicy, *, resolver: Resolver = system_resolver
) -> httpx.AsyncClient:
    """A client for tenant-chosen URLs: checked, pinned, no redirects, no proxies from env."""
    return httpx.AsyncClient(transport=PinnedTransport(policy, resolver=resolver),
                             follow_redirects=False, trust_env=False)
