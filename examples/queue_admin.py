"""Managing a queue, in the style of seed 004's BullMQ calls: add jobs with options, count them,
list them by state, pause and resume, hear the queue's events, clean and empty.

Run a worker for it, then this file (both need the same REDIS_URL and database):

    agentqueue worker examples.queue_admin:app     # from the repository's root
    python examples/queue_admin.py
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

import agentqueue

app = agentqueue.App()  # settings from the environment, as the service's


class Thumbnail(BaseModel):
    image: str = Field(min_length=1)
    width: int = Field(200, ge=16, le=4096)


@app.job("thumbnail", queue="images", attempts=2, timeout=30)
async def thumbnail(ctx: agentqueue.Context, data: Thumbnail) -> dict[str, str]:
    if not data.image.endswith((".jpg", ".png")):
        # No retry can fix this: fail at once (seed 004's job.failedReason says why).
        raise agentqueue.PermanentJobError(f"{data.image} is not an image")
    await ctx.progress(100)
    return {"thumbnail": f"{data.image.rsplit('.', 1)[0]}-{data.width}.png"}


async def main() -> None:
    images = app.queue("images")

    # queue.pause(): workers take nothing new, so the jobs below wait where we can see them.
    await images.pause()
    print(f"paused: {await images.is_paused()}")
    since = await images.last_event_id()  # hear every event from here on

    # queue.add(name, data, opts): priority 0-10 (higher first), delay in milliseconds.
    cat = await app.enqueue("thumbnail", {"image": "cat.jpg"}, priority=3)
    dog = await app.enqueue("thumbnail", {"image": "dog.png", "width": 64}, priority=9)
    notes = await app.enqueue("thumbnail", {"image": "notes.txt"})
    await app.enqueue("thumbnail", {"image": "tomorrow.jpg"}, delay_ms=86_400_000)

    counts = await images.counts()  # queue.getJobCounts()
    print(f"paused jobs: {counts.paused}, delayed: {counts.delayed}")
    # The order they will run in: the most urgent first.
    print("waiting to run:", [view.data["image"] for view in await images.jobs("paused")])

    await images.resume()  # queue.resume()
    print(f"paused: {await images.is_paused()}")
    print("cat:", await cat.wait(timeout=60))
    print("dog:", await dog.wait(timeout=60))
    try:
        await notes.wait(timeout=60)
    except agentqueue.JobFailed as failure:
        print("notes failed:", failure.reason)

    # queue.getCompleted() / queue.getFailed(): newest first, with results and reasons.
    print("completed:", sorted(view.result["thumbnail"] for view in await images.completed()))
    print("failed:", [(view.data["image"], view.failed_reason)
                      for view in await images.failed()])

    # The queue's events (seed 004's queue.on('completed' | 'failed' | …)), from any worker.
    finished = 0
    async for event in images.events("completed", "failed", after=since):
        print(f"event: {event.event}:",
              event.returnvalue if event.event == "completed" else event.failed_reason)
        finished += 1
        if finished == 3:
            break

    # queue.clean(grace, status): finished jobs leave Redis; their records keep the history.
    removed = await images.clean(0, "completed")
    print(f"cleaned {len(removed)} completed jobs; completed now: {await images.completed()}")
    # queue.empty(): what never ran is cancelled.
    print(f"emptied {len(await images.empty())} job(s); counts now {await images.counts()}")
    await app.close()


if __name__ == "__main__":
    asyncio.run(main())
