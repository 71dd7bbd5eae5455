"""Adding many jobs, or a flow's tree of jobs, at once: one MULTI/EXEC of the package's own add
scripts, on one server and on a Redis Cluster alike.

The bullmq package's `Queue.addBulk` and `FlowProducer.add` queue the scripts' EVALSHA on a
transactional pipeline, which redis-py's cluster pipeline refuses outright ("Calling pipelined
function evalsha is blocked when running redis in cluster mode"). Here the package still builds
every call (keys, msgpack'd arguments: the same wire format as its single `add`); a stand-in
client records them instead of sending them, and they go out as raw EVALSHA commands in one
transaction. On a cluster that transaction is legal when every key is in one slot, which a
hash-tagged prefix (`{bull}`) guarantees for all queues sharing it (`connection.transaction`
sends it to the primary holding that slot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from bullmq import Job
from bullmq.scripts import Scripts
from redis.exceptions import NoScriptError

from agentqueue.engine.connection import REROUTED, transaction

# A slot being moved is tried again this many times, with a fresh map of slots each time.
_REROUTE_ATTEMPTS = 3


# An EVALSHA as the package's scripts make it: (sha, numkeys, *keys, *args).
ScriptCall = tuple[Any, ...]


class _Recorder:
    """Takes the place of a client for the package's script objects: keeps their EVALSHA."""

    def __init__(self) -> None:
        self.calls: list[ScriptCall] = []

    async def evalsha(self, *sha_numkeys_keys_and_args: Any) -> None:
        self.calls.append(sha_numkeys_keys_and_args)


async def add_command(scripts: Scripts, job: Job) -> tuple[ScriptCall, str]:
    """The EVALSHA the package's single add of `job` sends (its sha, keys and msgpack'd
    arguments), to send on a pipeline of one's own; and the script's source, for a server
    that lacks it."""
    recorder = _Recorder()
    await scripts.addJob(job, recorder)
    (call,) = recorder.calls
    source = next(command.script for command in scripts.redisConnection.commands.values()
                  if command.sha == call[0])
    return call, source


@dataclass(frozen=True)
class BulkEntry:
    """One job to add: the queue's scripts, the job, and whether it is a flow's parent."""

    scripts: Scripts
    job: Job
    parent: bool = False


class AtomicAdder:
    """Adds jobs in one MULTI/EXEC through `client` (one server, Sentinel's primary, or the
    primary of a cluster holding the jobs' slot)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
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
        key = str(calls[0][2])  # the first key: every key of the calls is in its slot
        for attempt in range(_REROUTE_ATTEMPTS):
            try:
                async with transaction(self.client, key) as pipe:
                    for call in calls:
                        # execute_command: a cluster pipeline blocks the evalsha() method.
                        pipe.execute_command("EVALSHA", *call)
                    return list(await pipe.execute(raise_on_error=False))
            except REROUTED:
                if attempt == _REROUTE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
