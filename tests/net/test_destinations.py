"""Which destinations a tenant-chosen request may reach, and the setting that allows more."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from agentqueue.config import Settings
from agentqueue.net.destinations import DestinationNotAllowed, DestinationPolicy, parse_networks

NOT_PUBLIC = [
    "127.0.0.1", "127.8.9.10", "0.0.0.0", "10.1.2.3", "172.16.0.1", "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "192.0.0.1", "192.0.2.1", "198.18.0.1", "240.0.0.1", "255.255.255.255", "224.0.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "ff0e::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "::127.0.0.1",  # deprecated IPv4-compatible form
    "2001:db8::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    assert not DestinationPolicy().allows(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert DestinationPolicy().allows(ip_address(address))


def test_an_operator_allows_networks_and_only_those() -> None:
    policy = DestinationPolicy.from_setting("10.0.0.0/8, 127.0.0.1")
    assert policy.allows(ip_address("10.9.8.7"))
    assert policy.allows(ip_address("::ffff:10.9.8.7"))
    assert policy.allows(ip_address("127.0.0.1"))
    assert not policy.allows(ip_address("127.0.0.2"))
    assert not policy.allows(ip_address("169.254.169.254"))


def test_every_resolved_address_must_be_allowed() -> None:
    policy = DestinationPolicy()
    policy.check_addresses("ok.example", [ip_address("8.8.8.8")])
    with pytest.raises(DestinationNotAllowed) as refused:
        policy.check_addresses("mixed.example", [ip_address("8.8.8.8"), ip_address("10.0.0.1")])
    assert str(refused.value).startswith("destination mixed.example is not allowed")
    assert "WEBHOOK_ALLOWED_NETWORKS" in str(refused.value)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "api.localhost", "redis",
                                  "metadata.google.internal", "printer.local", "[::1]",
                                  "127.0.0.1", "169.254.169.254"])
def test_internal_hosts_are_refused_without_resolving(host: str) -> None:
    with pytest.raises(DestinationNotAllowed):
        DestinationPolicy().check_host(host)


def test_public_names_pass_the_check_without_resolving() -> None:
    DestinationPolicy().check_host("hooks.example.com")
    DestinationPolicy().check_host("8.8.8.8")


def test_with_an_allow_list_internal_names_are_left_to_the_connect_time_check() -> None:
    policy = DestinationPolicy.from_setting("127.0.0.0/8")
    policy.check_host("localhost")
    policy.check_host("127.0.0.1")
    with pytest.raises(DestinationNotAllowed):
        policy.check_host("10.0.0.1")


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match="'10.0.0/33' is not an IP address or network"):
        parse_networks("127.0.0.1, 10.0.0/33")


def test_a_bad_setting_stops_the_process_at_start() -> None:
    with pytest.raises(ValueError, match="'nonsense' is not an IP address"):
        Settings(WEBHOOK_ALLOWED_NETWORKS="nonsense")  # type: ignore[call-arg]
    assert Settings(WEBHOOK_ALLOWED_NETWORKS="10.0.0.0/8").webhook_allowed_networks  # type: ignore[call-arg]
