"""Adding many jobs, or a flow's tree of jobs, at once: one MULTI/EXEC of the package's own add
scripts, on one server and on a Redis Cluster alike.

The bullmq package's `Queue.addBulk` and `FlowProducer.add` queue the scripts' EVALSHA on a
transactional pipeline, which redis-py's cluster pipeline refuses outright ("Calling pipelined
function evalsha is blocked when running redis in cluster mode"). Here the package still builds
every call (keys, msgpack'd arguments: the same wire format as its single `add`); a stand-in
client records them instead of sending them, and they go out as raw EVALSHA commands in one
transaction. On a cluster that transaction is legal when every key is in one slot, which a
hash-tagged prefix (`{bull}`) guarantees for all queues sharing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from bullmq import Job
from bullmq.scripts import Scripts
from redis.exceptions import NoScriptError


@dataclass(frozen=True)
class ScriptCall:
    sha: str
    numkeys: int
    keys_and_args: tuple[Any, ...]


class _Recorder:
    """Takes the place of a client for the package's script objects: keeps their EVALSHA."""

    def __init__(self) -> None:
        self.calls: list[ScriptCall] = []

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> None:
        self.calls.append(ScriptCall(sha, numkeys, keys_and_args))


@dataclass(frozen=True)
class BulkEntry:
    """One job to add: the queue's scripts, the job, and whether it is a flow's parent."""

    scripts: Scripts
    job: Job
    parent: bool = False


async def add_atomically(client: redis.Redis, entries: Sequence[BulkEntry]) -> list[str]:
    """Add every entry's job in one MULTI/EXEC, in order; the ids Redis gave them (a job whose
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
    await _load_missing(client, {call.sha for call in recorder.calls}, sources)
    results = await _transaction(client, recorder.calls)
    missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:
        # Flushed since we looked (a failover to a server that never had them): those
        # commands did nothing. Load and send just them.
        await _load_missing(client, {recorder.calls[i].sha for i in missing}, sources)
        for i, result in zip(missing, await _transaction(
                client, [recorder.calls[i] for i in missing]), strict=True):
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


async def _load_missing(client: redis.Redis, shas: set[str], sources: dict[str, str]) -> None:
    ordered = sorted(shas)
    # On a cluster both go to every primary: the one holding the queue's slot included.
    for sha, exists in zip(ordered, await client.script_exists(*ordered), strict=True):
        if not exists:
            await client.script_load(sources[sha])


async def _transaction(client: redis.Redis, calls: list[ScriptCall]) -> list[Any]:
    async with client.pipeline(transaction=True) as pipe:
        for call in calls:
            # execute_command, not evalsha(): the cluster pipeline blocks only the method.
            pipe.execute_command("EVALSHA", call.sha, call.numkeys, *call.keys_and_args)
        return list(await pipe.execute(raise_on_error=False))
