"""Redis commands of concurrent callers sent together: one pipeline, one write, one read.

Under load the API's requests each make a few small Redis calls (a throttle count, a rate-limit
hit, an id, an add). Sent one by one, each costs a pooled connection, a write, a wake-up and a
read, and that per-call cost, not Redis, was a large part of a submission's CPU. A
`CommandCoalescer` queues the commands callers make while a pipeline is under way and sends them
all in the next one (non-transactional: commands run in order, each answered on its own), the
way `agentqueue.records.batching` group-commits SQL writes: no timer, a lone caller goes at
once, and under load a pipeline holds what arrived during the previous one.

Nothing changes for a caller: it awaits its own answers, a command Redis refuses raises its own
`ResponseError`, a pipeline that fails (Redis unreachable, a timeout) raises that error in every
caller it held, and `watch_sends` still tells whether the caller's commands may have reached
Redis. On a Redis Cluster, commands are sent one by one (a cluster pipeline cannot carry
EVALSHA, and the callers' keys are in many slots).
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import NoScriptError

from agentqueue.engine.connection import is_cluster, note_sent, watch_sends

# A command as redis-py's `execute_command` takes it: ("INCR", key), ("EVALSHA", sha, 1, key…).
Command = tuple[Any, ...]
# A group's answers (an error in place of a refused command's), and whether its pipeline may
# have reached Redis.
_Answers = tuple[list[Any], bool]

_MAX_COMMANDS = 1000
_coalescers: weakref.WeakKeyDictionary[redis.Redis, CommandCoalescer] = (
    weakref.WeakKeyDictionary())


def coalescer_for(client: redis.Redis) -> CommandCoalescer:
    """The one coalescer of `client` (made on first use), so every part of a process that
    shares a client shares its pipelines too."""
    coalescer = _coalescers.get(client)
    if coalescer is None:
        coalescer = _coalescers[client] = CommandCoalescer(client)
    return coalescer


class Script:
    """A Lua script run through a coalescer: EVALSHA, loaded again if Redis lacks it."""

    def __init__(self, coalescer: CommandCoalescer, source: str) -> None:
        self.coalescer = coalescer
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def command(self, keys: Sequence[Any], args: Sequence[Any]) -> Command:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        return await self.coalescer.call(*self.command(keys, args))


class _Group:
    """One caller's commands, consecutive in a pipeline, and where their answers go."""

    __slots__ = ("commands", "future")

    def __init__(self, commands: list[Command], future: asyncio.Future[_Answers]) -> None:
        self.commands = commands
        self.future = future


class CommandCoalescer:
    """Sends the commands concurrent callers make in shared pipelines (see the module)."""

    def __init__(self, client: redis.Redis, *, max_commands: int = _MAX_COMMANDS) -> None:
        self.client = client
        self.max_commands = max_commands
        self._cluster = is_cluster(client)
        self._waiting: list[_Group] = []
        self._runner: asyncio.Task[None] | None = None
        self._scripts: dict[str, Script] = {}
        self._sources: dict[str, str] = {}  # sha -> source, for scripts Redis lacks
        self.pipelines = 0  # how many pipelines went out, and how many commands (figures)
        self.sent = 0

    def script(self, source: str) -> Script:
        """`source` as a script run through this coalescer (made once per source)."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = Script(self, source)
            self._sources[script.sha] = source
        return script

    async def call(self, *command: Any) -> Any:
        """One command's answer; its error raised."""
        (answer,) = await self.group([command])
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def group(self, commands: list[Command]) -> list[Any]:
        """The answers of `commands`, sent one after another in the same pipeline; a command
        Redis refused has its error in its place. A pipeline failing as a whole raises."""
        if self._cluster:
            return await self._one_by_one(commands)
        loop = asyncio.get_running_loop()
        runner = self._runner
        if runner is not None and (runner.done() or runner.get_loop() is not loop):
            # The loop that ran the last pipeline has gone (a sync caller's `asyncio.run`).
            self._runner = None
            self._waiting = [g for g in self._waiting if g.future.get_loop() is loop]
        future: asyncio.Future[_Answers] = loop.create_future()
        future.add_done_callback(_retrieve)
        self._waiting.append(_Group(commands, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="redis-coalesce")
        # A caller that gives up does not take its commands out of a pipeline under way.
        try:
            answers, may_have_sent = await asyncio.shield(future)
        except _Failed as failed:
            note_sent(failed.may_have_sent)
            raise failed.error from None
        note_sent(may_have_sent)
        return answers

    async def _one_by_one(self, commands: list[Command]) -> list[Any]:
        answers: list[Any] = []
        for command in commands:
            try:
                answers.append(await self._execute(command))
            except redis.ResponseError as exc:
                answers.append(exc)
        return answers

    async def _execute(self, command: Command) -> Any:
        try:
            return await self.client.execute_command(*command)
        except NoScriptError:
            await self.client.script_load(self._sources[command[1]])
            return await self.client.execute_command(*command)

    async def _run(self) -> None:
        try:
            while self._waiting:
                take = size = 0
                for waiting in self._waiting:
                    if take and size + len(waiting.commands) > self.max_commands:
                        break
                    take += 1
                    size += len(waiting.commands)
                batch = self._waiting[:take]
                del self._waiting[:take]
                await self._send(batch)
        finally:
            self._runner = None

    async def _send(self, batch: list[_Group]) -> None:
        commands = [command for group in batch for command in group.commands]
        self.pipelines += 1
        self.sent += len(commands)
        with watch_sends(self.client) as watch:
            try:
                answers = await self._pipeline(commands)
                missing = [i for i, a in enumerate(answers) if isinstance(a, NoScriptError)]
                if missing:
                    # Redis lost its scripts (a restart, a failover): those commands did
                    # nothing. Load the scripts and send just them again.
                    for sha in {commands[i][1] for i in missing}:
                        await self.client.script_load(self._sources[sha])
                    again = await self._pipeline([commands[i] for i in missing])
                    for i, answer in zip(missing, again, strict=True):
                        answers[i] = answer
            except BaseException as exc:
                for group in batch:
                    if group.future.done():
                        continue
                    if isinstance(exc, Exception):
                        group.future.set_exception(_Failed(exc, watch.may_have_sent))
                    else:
                        group.future.cancel()
                if not isinstance(exc, Exception):
                    raise
                return
        start = 0
        for group in batch:
            end = start + len(group.commands)
            if not group.future.done():
                group.future.set_result((answers[start:end], watch.may_have_sent))
            start = end

    async def _pipeline(self, commands: list[Command]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute(raise_on_error=False))


class _Failed(Exception):
    """A pipeline's error on its way to a caller, with whether the pipeline may have sent."""

    def __init__(self, error: Exception, may_have_sent: bool) -> None:
        super().__init__(error)
        self.error = error
        self.may_have_sent = may_have_sent


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark the error seen: a caller that gave up (cancelled) never reads it."""
    if not future.cancelled():
        future.exception()
