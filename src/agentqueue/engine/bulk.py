"""Adding many jobs, or a flow's tree of jobs, at once: one MULTI/EXEC of the package's own add
scripts, on one server and on a Redis Cluster alike.

The bullmq package's `Queue.addBulk` and `FlowProducer.add` queue the scripts' EVALSHA on a
transactional pipeline, which redis-py's cluster pipeline refuses outright ("Calling pipelined
function evalsha is blocked when running redis in cluster mode"). Here the package still builds
every call (keys, msgpack'd arguments: the same wire format as its single `add`); a stand-in
client records them instead of sending them, and they go out as raw EVALSHA commands in one
transaction. On a cluster that transaction is legal when every key is in one slot, which a
hash-tagged prefix (`{bull}`) guarantees for all queues sharing it. It is sent with a plain
pipeline to the primary holding that slot: redis-py's own transactional cluster pipeline runs
each queued command through a new thread and event loop, blocking ours ~1 ms per job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from bullmq import Job
from bullmq.scripts import Scripts
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ExecAbortError,
    MovedError,
    NoScriptError,
    TryAgainError,
)

# Answers meaning the slot is elsewhere or moving: the transaction did nothing; try again with
# a fresh map of slots.
_REROUTE = (AskError, ClusterDownError, ExecAbortError, MovedError, TryAgainError)
_REROUTE_ATTEMPTS = 3


# An EVALSHA as the package's scripts make it: (sha, numkeys, *keys, *args).
ScriptCall = tuple[Any, ...]


class _Recorder:
    """Takes the place of a client for the package's script objects: keeps their EVALSHA."""

    def __init__(self) -> None:
        self.calls: list[ScriptCall] = []

    async def evalsha(self, *sha_numkeys_keys_and_args: Any) -> None:
        self.calls.append(sha_numkeys_keys_and_args)


@dataclass(frozen=True)
class BulkEntry:
    """One job to add: the queue's scripts, the job, and whether it is a flow's parent."""

    scripts: Scripts
    job: Job
    parent: bool = False


class AtomicAdder:
    """Adds jobs in one MULTI/EXEC through `client` (one server, Sentinel's primary, or the
    primary of a cluster holding the jobs' slot). Close it to close its clients of nodes."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._nodes: dict[str, redis.Redis] = {}  # cluster: a plain client per primary
        self._loaded: set[str] = set()  # scripts known to be on the server(s)

    async def add(self, entries: Sequence[BulkEntry]) -> list[str]:
        """Add every entry's job, in order, all or none; the ids Redis gave them (a job whose
        deduplication id another holds answers that job's id, as `add` does)."""
        if not entries:
            return []
        recorder = _Recorder()
        for entry in entries:
            if entry.parent:
                await entry.scripts.addParentJob(entry.job, recorder)
            else:
                await entry.scripts.addJob(entry.job, recorder)
        sources = {command.sha: command.script
                   for connection in {id(e.scripts.redisConnection): e.scripts.redisConnection
                                      for e in entries}.values()
                   for command in connection.commands.values()}
        await self._load({call[0] for call in recorder.calls}, sources)
        results = await self._transaction(recorder.calls)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            # Flushed since we loaded them (a failover to a server that never had them): those
            # commands did nothing. Load and send just them.
            self._loaded.clear()
            await self._load({recorder.calls[i][0] for i in missing}, sources)
            again = await self._transaction([recorder.calls[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        ids: list[str] = []
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, Exception):
                raise result
            if isinstance(result, int) and result < 0:
                raise entry.scripts.finishedErrors({
                    "code": result, "parentKey": entry.job.parentKey, "command": "addJob"})
            entry.job.id = str(result)
            ids.append(str(result))
        return ids

    async def _load(self, shas: set[str], sources: dict[str, str]) -> None:
        unknown = sorted(shas - self._loaded)
        if not unknown:
            return
        # On a cluster both go to every primary: the one holding the jobs' slot included.
        for sha, exists in zip(unknown, await self.client.script_exists(*unknown), strict=True):
            if not exists:
                await self.client.script_load(sources[sha])
        self._loaded.update(unknown)

    async def _transaction(self, calls: list[ScriptCall]) -> list[Any]:
        if not isinstance(self.client, RedisCluster):
            return await _transaction(self.client, calls)
        cluster: RedisCluster = self.client
        key = calls[0][2]  # the first key: every key of the calls is in its slot
        for attempt in range(_REROUTE_ATTEMPTS):
            await cluster.initialize()  # connects the first time; a no-op after
            node = cluster.get_node_from_key(key)
            assert node is not None
            try:
                return await _transaction(self._node_client(node), calls)
            except _REROUTE:
                if attempt == _REROUTE_ATTEMPTS - 1:
                    raise
                await cluster.nodes_manager.initialize()  # a new map of slots
        raise AssertionError("unreachable")  # pragma: no cover

    def _node_client(self, node: ClusterNode) -> redis.Redis:
        if node.name not in self._nodes:
            pool = redis.ConnectionPool(connection_class=node.connection_class,
                                        **node.connection_kwargs)
            self._nodes[node.name] = redis.Redis.from_pool(pool)
        return self._nodes[node.name]

    async def close(self) -> None:
        for client in self._nodes.values():
            await client.aclose()
        self._nodes.clear()


async def _transaction(client: redis.Redis, calls: list[ScriptCall]) -> list[Any]:
    async with client.pipeline(transaction=True) as pipe:
        for call in calls:
            pipe.execute_command("EVALSHA", *call)
        return list(await pipe.execute(raise_on_error=False))
