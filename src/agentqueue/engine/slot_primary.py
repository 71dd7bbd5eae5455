"""Connections that follow the primary of one cluster slot through failovers.

The worker loop pipelines raw commands on its queue's keys, which all hash to one slot; a
cluster client cannot route such a pipeline, so the worker talks to that slot's primary over a
plain pool. These connections ask the cluster where the slot lives each time they connect
(`SlotLocator`), so after a failover the pool's reconnects reach the new primary; a `MOVED`
answer (the slot went elsewhere while the node stayed up, e.g. an old primary back as a
replica) makes every connection of the pool reconnect before its next command.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as redis
from redis.asyncio.connection import Connection, SSLConnection
from redis.crc import key_slot
from redis.exceptions import MovedError, RedisError

log = logging.getLogger("agentqueue.redis")

# Asking one node for the map of slots: a dead node must not hold the reconnect up long.
_ASK_TIMEOUT_S = 1.0


class SlotLocator:
    """Where one slot's primary is, asked of the cluster's nodes when it is not known."""

    def __init__(self, nodes: list[tuple[str, int]], key: str, *, username: str | None = None,
                 password: str | None = None, ssl: bool = False) -> None:
        self.slot = key_slot(key.encode())
        self._seeds = list(nodes)
        self._known: list[tuple[str, int]] = []  # every node the last map named
        self._username, self._password, self._ssl = username, password, ssl
        self._primary: tuple[str, int] | None = None
        self._lock = asyncio.Lock()
        # Bumped whenever the primary is forgotten: connections made before then reconnect.
        self.generation = 0

    async def primary(self) -> tuple[str, int]:
        async with self._lock:
            if self._primary is None:
                self._primary = await self._ask()
            return self._primary

    def forget(self) -> None:
        """The slot's primary may have changed: ask again on the next connect."""
        if self._primary is not None:
            log.info("Cluster slot %d: its primary %s:%d is gone or moved; looking again",
                     self.slot, *self._primary)
            self._primary = None
            self.generation += 1

    async def _ask(self) -> tuple[str, int]:
        failure: Exception | None = None
        for host, port in dict.fromkeys(self._seeds + self._known):
            client = redis.Redis(host=host, port=port, decode_responses=True,
                                 socket_timeout=_ASK_TIMEOUT_S,
                                 socket_connect_timeout=_ASK_TIMEOUT_S, username=self._username,
                                 password=self._password, ssl=self._ssl)
            try:
                ranges = await client.execute_command("CLUSTER SLOTS")
            except (RedisError, OSError) as exc:
                failure = exc
                continue
            finally:
                await client.aclose()
            self._known = [(str(n[0]) or host, int(n[1])) for r in ranges for n in r[2:]]
            for start, end, primary, *_ in ranges:
                if int(start) <= self.slot <= int(end):
                    return str(primary[0]) or host, int(primary[1])
            failure = RedisError(f"no node serves cluster slot {self.slot}")
        raise redis.ConnectionError(f"cluster slot {self.slot}: no node answered ({failure})")


class _FollowsSlot(Connection):
    """A connection to `locator`'s primary, whichever node that is when it connects."""

    locator: SlotLocator

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._generation = -1

    async def _connect(self) -> None:
        generation = self.locator.generation
        self.host, self.port = await self.locator.primary()
        try:
            await super()._connect()
        except OSError:  # refused, unreachable, timed out
            self.locator.forget()  # that node is down: the map may name another by now
            raise
        self._generation = generation

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if self.is_connected and self._generation != self.locator.generation:
            await self.disconnect()  # made before the primary moved: go to the new one
        await super().send_packed_command(command, check_health)

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except MovedError:
            # The rest of a pipeline's replies are still in step: reconnect on the next send.
            self.locator.forget()
            raise


class _FollowsSlotSSL(_FollowsSlot, SSLConnection):
    pass


def slot_connection_class(locator: SlotLocator, *, ssl: bool) -> type[Connection]:
    """A connection class whose connections follow `locator`'s primary."""
    base = _FollowsSlotSSL if ssl else _FollowsSlot
    return type("SlotPrimaryConnection", (base,), {"locator": locator})
