"""The maintenance runner: periodic duties, each done by one process at a time.

Every process (`serve`, `api`, `worker`) runs a runner with the same duties; however many run,
each duty is done by one of them at a time. A duty is guarded by a lease in Redis
(`agentqueue:<prefix>:maintenance:<duty>`): redis-py's `Lock`, taken with SET NX PX and a random
token, renewed while held (`reacquire`, a compare-and-set in Lua) and released on stop (a
compare-and-delete). The holder runs a pass every `interval_s` and keeps the lease between
passes; the others try to take it now and then. If the holder dies its lease runs out after
`lease_s` and another process takes the duty over.

A holder that fails to renew in time (Redis away longer than the lease) stops its pass, since
another process may hold the duty by then, and competes for the lease again. Duties must
therefore tolerate a pass cut short, and a rare overlap of two passes (repair writes only
compare-and-set).

The duties themselves are listed in `maintenance.duties`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, LockNotOwnedError

from agentqueue.engine.connection import REDIS_FAILURES

log = logging.getLogger("agentqueue.maintenance")

# Giving a lease up failed: not ours any more, or Redis away.
_RELEASE_FAILURES: tuple[type[Exception], ...] = (LockError, TimeoutError, *REDIS_FAILURES)
# On stop, how long giving a lease up may take before it is left to run out.
RELEASE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Duty:
    """A periodic job of maintenance: `run` is one pass, every `interval_s` seconds."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[object]]


def lease_key(prefix: str, duty: str) -> str:
    return f"agentqueue:{prefix}:maintenance:{duty}"


class MaintenanceRunner:
    """Runs each duty while this process holds its lease (see the module's docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        duties: list[Duty],
        *,
        prefix: str,
        lease_s: float = 30.0,
    ) -> None:
        names = [duty.name for duty in duties]
        if len(set(names)) != len(names):
            raise ValueError(f"duty names must differ: {names}")
        self.client = client
        self.duties = duties
        self.prefix = prefix
        self.lease_s = lease_s
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._compete(duty), name=f"maintenance-{duty.name}")
                       for duty in self.duties]

    async def stop(self) -> None:
        """Stop every duty (a pass in progress is cancelled) and give up the leases held."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _compete(self, duty: Duty) -> None:
        """Take the duty's lease whenever it is free, and do the duty while holding it."""
        lock = Lock(self.client, lease_key(self.prefix, duty.name), timeout=self.lease_s,
                    thread_local=False)
        # A free lease is taken within this long (a dead holder's: once it has run out).
        retry_s = min(duty.interval_s, self.lease_s / 3)
        while True:
            try:
                held = await lock.acquire(blocking=False, token=secrets.token_hex(16))
            except Exception as exc:  # Redis away: try again later; the duty must not die
                log.warning("Maintenance %r: could not reach Redis for its lease: %s",
                            duty.name, exc)
                held = False
            if not held:
                await asyncio.sleep(retry_s)
                continue
            log.info("Maintenance %r: this process does it now", duty.name)
            try:
                await self._hold(duty, lock)
            finally:
                await _release(lock)
            log.warning("Maintenance %r: lease lost; competing for it again", duty.name)

    async def _hold(self, duty: Duty, lock: Lock) -> None:
        """Do the duty's passes while renewing its lease; return when the lease is lost."""
        passes = asyncio.create_task(_passes(duty), name=f"maintenance-{duty.name}-passes")
        try:
            await self._renew(duty, lock)
        finally:
            passes.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await passes

    async def _renew(self, duty: Duty, lock: Lock) -> None:
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                # Back to the full lease, if still ours; bounded, since a hung Redis must not
                # keep this process doing the duty past its lease.
                async with asyncio.timeout(self.lease_s / 3):
                    await lock.reacquire()
                renewed = time.monotonic()
            except LockNotOwnedError:
                return
            except Exception as exc:  # Redis away: keep trying while the lease lasts
                if time.monotonic() - renewed >= self.lease_s:
                    return  # ran out meanwhile: someone else may hold it now
                log.warning("Maintenance %r: could not renew its lease: %s", duty.name, exc)


async def _passes(duty: Duty) -> None:
    while True:
        try:
            await duty.run()
        except Exception as exc:  # Redis or the database away: try again next round
            log.warning("Maintenance %r failed: %s", duty.name, exc)
        await asyncio.sleep(duty.interval_s)


async def _release(lock: Lock) -> None:
    """Give the lease up so another process takes the duty at once (not after it runs out)."""
    try:
        async with asyncio.timeout(RELEASE_TIMEOUT_S):
            await lock.release()
    except _RELEASE_FAILURES:
        pass  # not ours any more, or Redis away: it runs out on its own
