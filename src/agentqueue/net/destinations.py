"""Which network addresses a tenant-chosen request may reach.

By default only public unicast addresses: never loopback, private, link-local (cloud metadata at
169.254.169.254 included), unique-local IPv6, shared (100.64/10), multicast, unspecified or
reserved ones, nor IPv6 forms that embed such an IPv4 address (mapped, 6to4, NAT64, compatible).
An operator may allow more with a list of networks (WEBHOOK_ALLOWED_NETWORKS).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

ALLOW_SETTING = "WEBHOOK_ALLOWED_NETWORKS"

_NAT64 = ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ip_network("::/96")  # deprecated ::a.b.c.d, which Python calls global
# Names that only ever mean something inside a network (RFC 6761, 6762, 8375 and common use).
_INTERNAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".intranet",
                      ".home.arpa", ".lan", ".corp", ".private")


class DestinationNotAllowed(Exception):
    """The destination is not public and no operator setting allows it: never retried."""

    def __init__(self, host: str, setting: str = ALLOW_SETTING) -> None:
        super().__init__(
            f"destination {host} is not allowed: it is (or resolves to) a loopback, private, "
            f"link-local or otherwise non-public address; an operator can allow internal "
            f"networks with {setting}"
        )
        self.host = host


def parse_networks(text: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 127.0.0.1, fd00::/8` as networks; ValueError naming a bad entry."""
    networks = []
    for entry in text.replace(",", " ").split():
        try:
            networks.append(ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network (CIDR)") from None
    return tuple(networks)


def _embedded_ipv4(address: IPAddress) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where it stands for one."""
    if isinstance(address, IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return IPv4Address(address.packed[-4:])
    return None


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address that stands for no non-public IPv4 address."""
    if not address.is_global or address.is_multicast:
        return False
    embedded = _embedded_ipv4(address)
    return embedded is None or is_public(embedded)


@dataclass(frozen=True)
class DestinationPolicy:
    """Public addresses, plus the networks an operator allowed."""

    allowed: tuple[Network, ...] = ()
    setting: str = ALLOW_SETTING  # named in refusals, so users learn what would allow it

    @classmethod
    def from_setting(cls, text: str | None) -> DestinationPolicy:
        return _policy_for(text or "")

    def allows(self, address: IPAddress) -> bool:
        candidates = [address]
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            candidates.append(embedded)
        if any(a in n for a in candidates for n in self.allowed if a.version == n.version):
            return True
        return is_public(address)

    def check_addresses(self, host: str, addresses: Iterable[IPAddress]) -> None:
        """Every address must be allowed: one bad answer among good ones refuses the host."""
        addresses = list(addresses)
        if not addresses or not all(self.allows(a) for a in addresses):
            raise DestinationNotAllowed(host, self.setting)

    def check_host(self, host: str) -> None:
        """A check without resolving (at the edge): literal addresses and internal-only names.

        Names that resolve are checked again, address by address, when connecting.
        """
        name = host.strip("[]").rstrip(".").lower()
        try:
            literal = ip_address(name)
        except ValueError:
            if not self.allowed and _internal_name(name):
                raise DestinationNotAllowed(host, self.setting) from None
            return
        self.check_addresses(host, [literal])


def _internal_name(name: str) -> bool:
    # A name without a dot is resolved through the machine's search domains: an internal host.
    return name == "localhost" or "." not in name or name.endswith(_INTERNAL_SUFFIXES)


@lru_cache(maxsize=8)
def _policy_for(text: str) -> DestinationPolicy:
    return DestinationPolicy(parse_networks(text))
