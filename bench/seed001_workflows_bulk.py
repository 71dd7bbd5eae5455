"""What seed 001's `bulk-operation` and `workflow-execution` cost, through the public API.

    python bench/seed001_workflows_bulk.py [--items 5000] [--steps 10]

Uses REDIS_URL if set, else starts an embedded Valkey in a temporary directory; records on
SQLite in a temporary directory. One worker (concurrency 8) as `agentqueue worker` builds it.
Measured, one run each:
- bulk: one `bulk-operation` job over `--items` items of a no-op type (chunks of 100, 8 at a
  time), from enqueue to its result: items/s, next to the same items enqueued as `--items`
  jobs of their own (50 enqueues in flight) and waited for (the alternative the bulk type's
  docs weigh: each job is a record and a Redis job);
- workflow: a chain of `--steps` no-op steps, each taking the previous result: seconds per
  step (queueing the step as a child job, running it, and the workflow waking up again).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.engine.embedded import EmbeddedValkey
from agentqueue.services import build_workers
from agentqueue.serving import serve


class Value(BaseModel):
    n: int = 0


def make_app(settings: Settings) -> agentqueue.App:
    app = agentqueue.App(settings=settings)

    @app.job("bench-noop")
    async def noop(ctx: agentqueue.JobContext, data: Value) -> dict[str, int]:
        return {"n": data.n + 1}

    return app


async def measure(redis_url: str, items: int, steps: int, data_dir: Path) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=data_dir,
        QUEUE_CONCURRENCY=8)
    app = make_app(settings)
    app.install()
    backend = await app._backend()
    group = build_workers(settings, redis_url, ["jobs"], records=backend.records,
                          registry=app.types())
    await group.start()
    try:
        start = time.perf_counter()
        job = await app.enqueue("bulk-operation", {
            "jobType": "bench-noop", "items": [{"n": i} for i in range(items)],
            "concurrency": 8})
        result: dict[str, Any] = await job.wait(timeout=3600)
        bulk_s = time.perf_counter() - start
        assert result["succeeded"] == items, result

        start = time.perf_counter()
        gate = asyncio.Semaphore(50)  # 50 submissions in flight: their records share commits

        async def enqueue(n: int) -> agentqueue.Job:
            async with gate:
                return await app.enqueue("bench-noop", {"n": n})

        await asyncio.gather(*(enqueue(i) for i in range(items)))
        enqueued_s = time.perf_counter() - start
        # Done when their records say so (the bulk job's own is the one more).
        deadline = time.monotonic() + 3600
        while (await backend.records.counts())["completed"] < items + 1:
            if time.monotonic() > deadline:
                raise TimeoutError("the jobs did not finish in time")
            await asyncio.sleep(0.01)
        jobs_s = time.perf_counter() - start

        chain = [{"id": "s0", "type": "bench-noop", "input": {"n": 0}}] + [
            {"id": f"s{i}", "type": "bench-noop",
             "input": {"n": {"$ref": f"steps.s{i - 1}.result.n"}}} for i in range(1, steps)]
        start = time.perf_counter()
        flow = await app.enqueue("workflow-execution",
                                 {"workflow": {"name": "chain", "steps": chain}})
        done = await flow.wait(timeout=3600)
        workflow_s = time.perf_counter() - start
        assert done["steps"][f"s{steps - 1}"]["result"] == {"n": steps}, done
    finally:
        await group.stop(5)
        await app.close()
        serve(None)
        conn = connect(redis_url)
        keys = [k async for k in conn.scan_iter(match=f"*{prefix}*", count=1000)]
        if keys:
            await conn.delete(*keys)
        await conn.aclose()
    print("what,figure")
    print(f"bulk-operation,{items} items in {bulk_s:.2f} s: {items / bulk_s:,.0f} items/s")
    print(f"one job per item,{items} jobs in {jobs_s:.2f} s: {items / jobs_s:,.0f} jobs/s "
          f"(enqueueing alone: {enqueued_s:.2f} s)")
    print(f"workflow chain,{steps} steps in {workflow_s:.2f} s: "
          f"{workflow_s / steps:.3f} s per step")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("REDIS_URL")
        server = None
        if not url:
            server = EmbeddedValkey(Path(tmp) / "valkey")
            url = await server.start()
        try:
            await measure(url, args.items, args.steps, Path(tmp) / "data")
        finally:
            if server is not None:
                await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
