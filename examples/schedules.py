"""Schedules of a job type of your own: one by cron in New York, one every half second with a
limit, its runs followed to the end.

Run a worker for it, then this file (both need the same REDIS_URL and database):

    agentqueue worker examples.schedules:app       # from the repository's root
    python examples/schedules.py
"""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from pydantic import BaseModel

import agentqueue

app = agentqueue.App()  # settings from the environment, as the service's


class Ping(BaseModel):
    target: str


@app.job("ping", queue="jobs", attempts=1)
async def ping(ctx: agentqueue.Context, data: Ping) -> dict[str, str]:
    return {"pinged": data.target, "run": ctx.id}


async def main() -> None:
    owner = agentqueue.Owner(user_id="example-user", org_id="example-org")
    weekly = await app.schedule("ping", {"target": "weekly-report"}, cron="0 9 * * 1",
                                tz="America/New_York", schedule_id="monday-ping", owner=owner)
    new_york = ZoneInfo("America/New_York")
    print("monday-ping next runs:",
          [run.astimezone(new_york).strftime("%a %H:%M") for run in weekly.next_runs(3)])

    await app.schedule("ping", {"target": "health"}, every_ms=500, limit=3,
                       schedule_id="quick-ping", owner=owner)
    while True:  # a worker runs the three runs, half a second apart
        runs = await app.schedule_runs("quick-ping")
        statuses = [await run.status() for run in runs]
        if statuses == ["completed"] * 3:
            break
        await asyncio.sleep(0.2)
    print("quick-ping runs:", [(await run.result())["pinged"] for run in reversed(runs)])
    print("quick-ping next run:", (await app.get_schedule("quick-ping")).next_run)
    for schedule_id in ("monday-ping", "quick-ping"):
        await app.remove_schedule(schedule_id)
    await app.close()


if __name__ == "__main__":
    asyncio.run(main())
