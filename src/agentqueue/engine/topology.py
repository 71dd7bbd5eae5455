"""Which Redis deployment a URL names, and the slot rule of Redis Cluster (no I/O here).

- `redis://` / `rediss://`: one server;
- `redis+cluster://[user:password@]host:port[,host:port…]`: a Redis Cluster, found from any of
  those nodes;
- `redis+sentinel://[user:password@]host:port[,host:port…]/<primary name>[/<db>]
  [?sentinel_password=…]`: the primary that those Sentinels name, found again after a failover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SENTINEL_SCHEMES = {"redis+sentinel": "redis", "rediss+sentinel": "rediss"}
_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is and how it is deployed, read from a URL (see the module's docstring)."""

    kind: Literal["standalone", "cluster", "sentinel"]
    url: str  # the URL as given
    nodes: tuple[tuple[str, int], ...] = ()  # cluster: startup nodes; sentinel: the sentinels
    master: str = ""  # sentinel: the name of the primary they watch
    db: int = 0
    ssl: bool = False
    username: str | None = None
    password: str | None = None  # of the data nodes (not the sentinels)
    sentinel_password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> RedisTarget:
        scheme, _, rest = url.partition("://")
        if scheme not in CLUSTER_SCHEMES and scheme not in SENTINEL_SCHEMES:
            return cls("standalone", url)
        parts = urlsplit(f"{CLUSTER_SCHEMES.get(scheme) or SENTINEL_SCHEMES[scheme]}://{rest}")
        auth, _, hosts = parts.netloc.rpartition("@")
        user, _, password = auth.partition(":")
        query = parse_qs(parts.query)
        common: dict[str, Any] = {
            "ssl": parts.scheme == "rediss",
            "username": unquote(user) or None,
            "password": unquote(password) or None,
        }
        if scheme in CLUSTER_SCHEMES:
            return cls("cluster", url, _hosts(hosts, 6379), **common)
        path = [segment for segment in parts.path.split("/") if segment]
        if not path:
            raise ValueError(f"{scheme}:// needs the primary's name: {scheme}://host:port/<name>")
        return cls("sentinel", url, _hosts(hosts, _SENTINEL_PORT), master=unquote(path[0]),
                   db=int(path[1]) if len(path) > 1 else 0,
                   sentinel_password=query.get("sentinel_password", [None])[0], **common)


def _hosts(text: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
        hosts.append((host.strip("[]") or "localhost", int(port or default_port)))
    if not hosts:
        raise ValueError("a Redis Cluster or Sentinel URL names at least one host:port")
    return tuple(hosts)


def is_cluster_url(url: str) -> bool:
    return RedisTarget.parse(url).kind == "cluster"


def hash_tag(key: str) -> str | None:
    """The part of `key` Redis Cluster hashes to pick its slot (the text between the first `{`
    and the next `}`, if not empty), or None when the whole key is hashed."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1:end] if end > start + 1 else None


def require_hash_tag(prefix: str) -> None:
    """Refuse a queue prefix without a hash tag on a cluster: BullMQ's scripts take all of a
    queue's keys at once, which Redis Cluster allows only within one slot."""
    if hash_tag(prefix) is None:
        raise ValueError(
            f"queue prefix {prefix!r} has no hash tag: on Redis Cluster all keys of a queue "
            f"must hash to one slot, so the prefix must be like {{{prefix.strip('{}') or 'bull'}}}"
            " (QUEUE_PREFIX; Node BullMQ producers and workers must use the same prefix)")


