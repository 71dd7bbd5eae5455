"""Seed 002's task queue (`addTask`, `getQueueStats`, `pauseQueue`, `getJob`, `removeJob`,
`cleanupJobs`) with the sync calls, as a Flask or Django view or a plain script would use them:
no event loop needed.

Run a worker for it, then this file (both need the same REDIS_URL and database):

    agentqueue worker examples.agent_tasks:app     # from the repository's root
    python examples/agent_tasks.py
"""

from __future__ import annotations

from pydantic import BaseModel, Field

import agentqueue

app = agentqueue.App()  # settings from the environment, as the service's


class AgentTask(BaseModel):
    task_id: str = Field(min_length=1)
    title: str


@app.job("report-task", queue="reports", attempts=3, backoff="exponential",
         backoff_ms=2000)
async def run_task(ctx: agentqueue.Context, data: AgentTask) -> dict[str, str]:
    await ctx.log(f"running task {data.task_id}")
    return {"task_id": data.task_id, "report": f"done: {data.title}"}


def main() -> None:
    tasks = app.queue("reports")

    # addTask(taskId, priority, delay): priority 0-10, higher = more urgent; delay in ms.
    report = app.enqueue_sync("report-task", {"task_id": "task-1", "title": "Weekly report"},
                              priority=7, delay_ms=0)
    print("result:", report.wait_sync(timeout=60))

    # getQueueStats()
    stats = tasks.counts_sync()
    print(f"- Waiting: {stats.waiting}\n- Active: {stats.active}\n"
          f"- Completed: {stats.completed}\n- Failed: {stats.failed}\n"
          f"- Delayed: {stats.delayed}\n- Paused: {stats.paused}")

    # pauseQueue() / resumeQueue(): a task added meanwhile waits for the resume.
    tasks.pause_sync()
    later = app.enqueue_sync("report-task", {"task_id": "task-2", "title": "Cleanup"},
                             priority=2)
    print("while paused:", later.status_sync())
    # removeJob(jobId): a task that has not run is taken out (and its record cancelled).
    print("removed:", tasks.remove_sync(later.id), later.status_sync())
    tasks.resume_sync()

    # getJob(jobId): a handle, or None for an unknown id.
    job = tasks.get_sync(report.id)
    print("getJob:", job is not None and job.status_sync(), tasks.get_sync("no-such-task"))

    # cleanupJobs(): finished jobs older than a week leave Redis (their records stay).
    print("cleaned:", len(tasks.clean_sync(7 * 24 * 3600, "completed")))
    app.close_sync()


if __name__ == "__main__":
    main()
