"""Redis commands batched per event-loop turn: what a busy worker sends, in few socket writes.

A worker at concurrency 50 finishes and fetches jobs in 50 coroutines at once. Sent one command
per pooled connection, each costs a socket write, a read and redis-py's Python packing, and the
profile of the bullmq package's Worker is mostly that (`socket.send` and `pack_command`). Here
every command issued in one turn of the event loop goes out in one write on one connection
(packed by hiredis, in C), and its replies are read back in order: auto-pipelining, as ioredis
offers Node. A few lanes take turns (each on a pooled connection per batch), so one batch
is on the wire while the next is gathered.

Only for commands whose reply is what the caller awaits (scripts, reads): no blocking commands
(they would hold a lane), no pub/sub.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import hiredis
import redis.asyncio as redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError, NoScriptError, ResponseError

_LANES = 2


class CommandChannel:
    def __init__(self, client: redis.Redis, *, lanes: int = _LANES) -> None:
        self._client = client
        self._lane_count = lanes
        self._packed: list[bytes] = []
        self._waiting: list[asyncio.Future[Any]] = []
        self._ready = asyncio.Event()
        self._lanes: list[asyncio.Task[None]] = []
        self._closed = False

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; the future resolves to its reply (or a ResponseError, raised)."""
        if self._closed:
            raise RuntimeError("the command channel is closed")
        if not self._lanes:
            self._lanes = [asyncio.create_task(self._lane(), name=f"redis-lane-{i}")
                           for i in range(self._lane_count)]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._packed.append(hiredis.pack_command(args))
        self._waiting.append(future)
        self._ready.set()
        return future

    async def evalsha(self, sha: str, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script by its sha, loading it first if the server lacks it (a restart or
        SCRIPT FLUSH forgets scripts)."""
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._client.script_load(script)
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)

    async def close(self) -> None:
        self._closed = True
        for lane in self._lanes:
            lane.cancel()
        for lane in self._lanes:
            with contextlib.suppress(asyncio.CancelledError):
                await lane
        self._lanes = []
        _fail(self._waiting, ConnectionError("the command channel is closed"))

    async def _lane(self) -> None:
        pool = self._client.connection_pool
        while True:
            await self._ready.wait()
            if not self._waiting:
                self._ready.clear()
                continue
            packed, waiting = self._packed, self._waiting
            self._packed, self._waiting = [], []
            self._ready.clear()
            try:  # a connection per batch: one that failed is reconnected by the pool
                connection: AbstractConnection = await pool.get_connection()
            except Exception as exc:  # Redis unreachable: this batch fails, callers retry
                _fail(waiting, exc)
                continue
            try:
                await self._round_trip(connection, packed, waiting)
            finally:
                await pool.release(connection)

    @staticmethod
    async def _round_trip(connection: AbstractConnection, packed: list[bytes],
                          waiting: list[asyncio.Future[Any]]) -> None:
        try:
            await connection.send_packed_command(b"".join(packed), check_health=False)
            for future in waiting:
                try:
                    reply = await connection.read_response()
                except ResponseError as exc:  # an error reply: the stream is still in step
                    if not future.done():
                        future.set_exception(exc)
                    continue
                if not future.done():
                    future.set_result(reply)
        except BaseException as exc:
            # Connection lost (or the lane cancelled) mid-batch: whether each command ran is
            # unknown to us; its caller decides. The connection reconnects on the next send.
            _fail(waiting, exc if isinstance(exc, Exception) else ConnectionError(str(exc)))
            with contextlib.suppress(Exception):
                await connection.disconnect()
            if not isinstance(exc, Exception):
                raise


def _fail(futures: list[asyncio.Future[Any]], exc: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(exc)
