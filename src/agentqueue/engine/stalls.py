"""A stalled job's re-run spends one of its attempts, as a failed run does.

A job "stalls" when its worker stops mid-run (killed, out of memory, lost its lock): BullMQ's
stalled-job check puts it back in the queue and counts the stall in the job's `stc` field, apart
from its attemptsMade (`atm`), and fails it once `stc` passes the worker's `maxStalledCount`,
whatever the job's `attempts`. Users expect `attempts` to bound every run, crashed or failed: a
job with attempts=3 whose worker is killed twice runs a third time; killed three times, it fails.

So when a worker picks up a job whose `stc` has grown since the job last ran, it adds those
stalls to `atm` (BullMQ's retry decision and backoff then see them as spent attempts) and
remembers how many it added in a field of our own, so a stall is never counted twice. `stc`
itself is left alone: an operator's `maxStalledCount` keeps its BullMQ meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as redis

# Our field in the job's hash: how many of its stalls are already counted in `atm`. BullMQ
# (Python and Node) ignores fields it does not know.
STALLS_COUNTED_FIELD = "aq:stalls-counted"

# KEYS[1]: the job's hash. ARGV[1]: the job's attempts.
# Returns {stalls not counted before, attemptsMade now, 1 if no attempt is left for this run}.
_COUNT_STALLS = f"""
local stalled = tonumber(redis.call("HGET", KEYS[1], "stc") or "0")
local counted = tonumber(redis.call("HGET", KEYS[1], "{STALLS_COUNTED_FIELD}") or "0")
local made = tonumber(redis.call("HGET", KEYS[1], "atm") or "0")
local new = stalled - counted
if new ~= 0 then
  redis.call("HSET", KEYS[1], "{STALLS_COUNTED_FIELD}", stalled)
end
if new <= 0 then
  return {{0, made, 0}}
end
local exhausted = 0
local add = new
if made + new >= tonumber(ARGV[1]) then
  -- Every attempt is spent: this run fails at once, and failing it counts the last stall.
  exhausted = 1
  add = new - 1
end
made = redis.call("HINCRBY", KEYS[1], "atm", add)
return {{new, made, exhausted}}
"""


@dataclass(frozen=True)
class StallCount:
    stalls: int  # times the job's worker stopped since it last ran (0: not a re-run)
    attempts_made: int  # the job's attemptsMade, stalls included
    exhausted: bool  # no attempt left: fail the job instead of running it


class StallCounter:
    def __init__(self, client: redis.Redis, *, prefix: str, queue: str) -> None:
        self._key_prefix = f"{prefix}:{queue}:"
        self._script = client.register_script(_COUNT_STALLS)

    async def count(self, job_id: str, attempts: int) -> StallCount:
        """Add the job's uncounted stalls to its attemptsMade (call with the job's lock held)."""
        new, made, exhausted = await self._script(
            keys=[self._key_prefix + job_id], args=[max(1, attempts)]
        )
        return StallCount(int(new), int(made), bool(int(exhausted)))
