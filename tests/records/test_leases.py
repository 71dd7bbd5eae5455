"""Leases and compare-and-set on job records, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from agentqueue.records import Records
from tests.records.test_records import Clock, new_job


async def test_a_leased_record_is_no_repair_candidate_until_the_lease_runs_out(
    records: Records, clock: Clock
) -> None:
    lease = clock.now + timedelta(seconds=30)
    await new_job(records, "1", status="pending", lease_until=lease)
    clock.advance(seconds=10)
    assert await records.in_status_since(["pending"], clock.now) == []
    clock.advance(seconds=30)
    assert [r.job_id for r in await records.in_status_since(["pending"], clock.now)] == ["1"]


async def test_claim_is_a_compare_and_set_and_release_ends_only_its_own_lease(
    records: Records, clock: Clock
) -> None:
    created = await new_job(records, "1", status="pending")
    first = clock.now + timedelta(seconds=30)
    claimed = await records.claim("ai-jobs", "1", version=created.version, status="queued",
                                  lease_until=first)
    assert claimed is not None and claimed.status == "queued"
    assert claimed.version == created.version + 1 and claimed.submitting_until == first
    # A second writer that read the record before the claim loses.
    assert await records.claim("ai-jobs", "1", version=created.version, status="queued",
                               lease_until=first) is None
    assert not await records.mark("ai-jobs", "1", "failed", error="x",
                                  expect_version=created.version)
    assert not await records.release("ai-jobs", "1", first + timedelta(seconds=1))
    assert await records.release("ai-jobs", "1", first)
    record = await records.get("ai-jobs", "1")
    assert record is not None and record.status == "queued" and record.submitting_until is None


async def test_a_finished_record_opens_again_only_by_claim(
    records: Records, clock: Clock
) -> None:
    await new_job(records, "1")
    await records.mark("ai-jobs", "1", "active", attempt=1)
    await records.mark("ai-jobs", "1", "completed", attempt=1, result="ok")
    # A late "will retry" event, or any writer without a claim, leaves it finished.
    assert await records.mark("ai-jobs", "1", "queued", attempt=1, message="will retry")
    done = await records.get("ai-jobs", "1")
    assert done is not None and done.status == "completed" and done.finished_at is not None
    again = await records.claim("ai-jobs", "1", version=done.version, status="queued",
                                attempt=0, lease_until=clock.now, message="retried by hand")
    assert again is not None and again.status == "queued" and again.finished_at is None
    assert again.attempts_made == 0


async def test_delete_with_a_version_spares_a_record_that_moved_on(records: Records) -> None:
    created = await new_job(records, "1", status="pending")
    await records.mark("ai-jobs", "1", "queued")
    assert not await records.delete_job("ai-jobs", "1", version=created.version)
    assert await records.get("ai-jobs", "1") is not None
    assert await records.delete_job("ai-jobs", "1", version=created.version + 1)
    assert await records.get("ai-jobs", "1") is None
