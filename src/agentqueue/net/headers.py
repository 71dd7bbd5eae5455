"""Which request headers a tenant may set on an outbound request it chooses (webhooks).

An allow-list: `X-*` custom headers and a few standard ones a receiver may need. Everything
else is ours or the HTTP layer's to set (Host, Content-Length, Transfer-Encoding, Connection,
Content-Type, Cookie, …), and some `X-` names are refused too: our own `X-Agentqueue-*`, and
those that proxies trust for the client's address, the original URL or the method.
"""

from __future__ import annotations

import re

MAX_HEADERS = 20
MAX_NAME_CHARS = 100
MAX_VALUE_CHARS = 4096
MAX_TOTAL_CHARS = 8192

ALLOWED_NAMES = ("Authorization", "User-Agent", "Accept", "Accept-Language", "Idempotency-Key")
REFUSED_X_PREFIXES = ("x-agentqueue-", "x-forwarded-", "x-real-ip", "x-client-ip",
                      "x-original-", "x-rewrite-url", "x-http-method", "x-method-override")

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field name
_VALUE = re.compile(r"[\t\x20-\x7e]*")  # visible ASCII, space and tab: no CR, LF or NUL
_ALLOWED = {name.lower() for name in ALLOWED_NAMES}

RULE = (f"allowed are {', '.join(ALLOWED_NAMES)} and X-* headers other than X-Agentqueue-*, "
        "X-Forwarded-*, X-Real-IP, X-Client-IP, X-Original-*, X-Rewrite-URL and method overrides")


def header_problem(headers: dict[str, str]) -> str | None:
    """What is wrong with `headers`, or None when a tenant may send them."""
    if len(headers) > MAX_HEADERS:
        return f"at most {MAX_HEADERS} headers, got {len(headers)}"
    seen: set[str] = set()
    total = 0
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or len(name) > MAX_NAME_CHARS:
            return (f"{name[:MAX_NAME_CHARS]!r} is not a valid header name (letters, digits and "
                    f"-, at most {MAX_NAME_CHARS} characters)")
        lower = name.lower()
        if lower in seen:
            return f"{name!r} is given twice (header names ignore case)"
        seen.add(lower)
        allowed = lower in _ALLOWED or (lower.startswith("x-")
                                        and not lower.startswith(REFUSED_X_PREFIXES))
        if not allowed:
            return f"{name!r} may not be set: {RULE}"
        if not _VALUE.fullmatch(value):
            return (f"{name}: the value may hold only printable ASCII characters (no line breaks "
                    "or control characters)")
        if len(value) > MAX_VALUE_CHARS:
            return f"{name}: the value is longer than {MAX_VALUE_CHARS} characters"
        total += len(name) + len(value)
    if total > MAX_TOTAL_CHARS:
        return f"headers hold more than {MAX_TOTAL_CHARS} characters in all"
    return None
