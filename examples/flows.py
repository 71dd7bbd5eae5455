"""A flow (a parent job that runs once its children have finished) and a dead letter replayed.

Run a worker for it, then this file (both need the same REDIS_URL and database):

    agentqueue worker examples.flows:app      # from the repository's root
    python examples/flows.py
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

import agentqueue

app = agentqueue.App()  # settings from the environment, as the service's


class Region(BaseModel):
    region: str
    sales: list[float] = []


@app.job("region-total", queue="jobs", attempts=2, backoff="fixed", backoff_ms=100)
async def region_total(ctx: agentqueue.Context, data: Region) -> dict[str, object]:
    if not data.sales:
        raise ValueError(f"no sales figures for {data.region}")
    return {"region": data.region, "total": sum(data.sales)}


class Report(BaseModel):
    title: str = "sales"


@app.job("sales-report", queue="jobs")
async def sales_report(ctx: agentqueue.Context, data: Report) -> dict[str, object]:
    # The children's results, by "<queue>:<job id>"; failures of those it may ignore.
    totals = list((await ctx.children_results()).values())
    missing = await ctx.children_failures()
    regions = {t["region"]: t["total"] for t in sorted(totals, key=lambda t: t["region"])}
    return {"title": data.title, "regions": regions, "grand_total": sum(regions.values()),
            "missing": len(missing)}


async def main() -> None:
    run = await app.enqueue_flow(agentqueue.Flow("sales-report", {"title": "Q3"}, children=[
        agentqueue.Flow("region-total", {"region": "north", "sales": [120.0, 80.5]}),
        agentqueue.Flow("region-total", {"region": "south", "sales": [99.5]}),
        agentqueue.Flow("region-total", {"region": "west"}, on_failure="ignore"),
    ], options={"owner": "example-user"}))
    print(f"report: {await run.job.wait(timeout=60)}")

    # The west total spent its attempts: a dead letter. Replay it with the figures.
    west = run.children[2].job
    print(f"dead letter {west.queue}:{west.id}: {await west.error()} "
          f"({await west.attempts()} attempts)")  # app.dead_letters() lists them all
    again = await app.replay(west.queue, west.id, data={"region": "west", "sales": [10.0]})
    print(f"west replayed: {await again.wait(timeout=60)}")
    await app.close()


if __name__ == "__main__":
    asyncio.run(main())
