"""A schedule's runs are found by their job ids (`repeat:<schedule id>:<ms>`), on SQLite and
PostgreSQL, with LIKE's wildcards in a schedule id taken literally."""

from __future__ import annotations

from agentqueue.records.store import Records
from tests.records.test_records import Clock, new_job


async def test_runs_of_one_schedule_newest_first(records: Records, clock: Clock) -> None:
    for job_id in ("repeat:daily:1000", "repeat:daily:2000", "repeat:daily-2:1000",
                   "repeat:dai_y:1000", "repeat:d%:1000", "7"):
        clock.advance(seconds=1)
        await new_job(records, job_id, queue="jobs")
    page, total = await records.list_jobs(queues=["jobs"], job_id_prefix="repeat:daily:")
    assert [r.job_id for r in page] == ["repeat:daily:2000", "repeat:daily:1000"] and total == 2
    page, total = await records.list_jobs(job_id_prefix="repeat:dai_y:")
    assert [r.job_id for r in page] == ["repeat:dai_y:1000"] and total == 1
    page, _ = await records.list_jobs(job_id_prefix="repeat:d%:")
    assert [r.job_id for r in page] == ["repeat:d%:1000"]
