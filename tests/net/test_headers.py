"""Which headers a tenant may set on a request to a destination it chose."""

from __future__ import annotations

import pytest

from agentqueue.net.headers import header_problem


def test_custom_and_a_few_standard_headers_are_allowed() -> None:
    assert header_problem({"X-Signature": "abc", "Authorization": "Bearer t0k3n",
                           "User-Agent": "mine/1.0", "Idempotency-Key": "42"}) is None


@pytest.mark.parametrize("name", [
    "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE",
    "Cookie", "Content-Type", "Proxy-Authorization", "Forwarded", "X-Agentqueue-Signature",
    "x-agentqueue-delivery", "X-Forwarded-For", "X-Real-IP", "X-HTTP-Method-Override",
])
def test_hop_by_hop_security_and_our_own_headers_are_refused(name: str) -> None:
    problem = header_problem({name: "x"})
    assert problem is not None and f"{name!r} may not be set" in problem
    assert "X-* headers" in problem


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\x00b", "caf\u00e9"])
def test_line_breaks_and_control_characters_in_values_are_refused(value: str) -> None:
    assert "printable ASCII" in (header_problem({"X-Note": value}) or "")


def test_sizes_and_counts_are_limited() -> None:
    assert "at most 20 headers" in (header_problem({f"X-H{i}": "v" for i in range(21)}) or "")
    assert "longer than 4096" in (header_problem({"X-Big": "v" * 4097}) or "")
    assert "8192 characters in all" in (
        header_problem({f"X-H{i}": "v" * 4000 for i in range(3)}) or "")
    assert "not a valid header name" in (header_problem({"X Bad": "v"}) or "")
    assert "given twice" in (header_problem({"X-A": "1", "x-a": "2"}) or "")
