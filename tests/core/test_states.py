"""One mapping from core states and record statuses to each seed's status names."""

from __future__ import annotations

from agentqueue.core import states

CORE = ("waiting", "prioritized", "waiting-children", "delayed", "paused", "active",
        "completed", "failed", "cancelled")
RECORD = ("pending", "queued", "active", "completed", "failed", "cancelled")


def test_core_states_read_as_each_seed_names_them() -> None:
    # The table of DESIGN.md ("Job model"), column by column.
    assert {s: states.of_state(s).seed000 for s in CORE} == {
        "waiting": "waiting", "prioritized": "waiting", "waiting-children": "waiting",
        "delayed": "delayed", "paused": "paused", "active": "active",
        "completed": "completed", "failed": "failed", "cancelled": "failed"}
    assert {states.of_state(s).seed001 for s in CORE[:5]} == {"pending"}
    assert states.of_state("cancelled").seed001 == "cancelled"
    assert [states.of_state(s).seed002 for s in ("waiting", "active", "cancelled")] == [
        "queued", "running", "failed"]
    assert [states.of_state(s).seed003 for s in ("prioritized", "active", "completed",
                                                 "cancelled")] == [
        "QUEUED", "PROCESSING", "SUCCEEDED", "FAILED"]


def test_a_waiting_job_with_a_priority_reads_as_waiting_in_seed_004() -> None:
    # Every job agentqueue queues has a priority, so BullMQ keeps its waiting jobs in
    # "prioritized"; seed 004 knows waiting, active, completed, failed, delayed.
    assert states.of_state("prioritized").seed004 == "waiting"
    assert states.of_state("cancelled").seed004 == "failed"
    assert states.of_state("delayed").seed004 == "delayed"
    assert states.shown("prioritized") == "waiting"


def test_records_read_as_the_seed_statuses() -> None:
    assert {r: states.of_record(r).seed000 for r in RECORD} == {
        "pending": "waiting", "queued": "waiting", "active": "active",
        "completed": "completed", "failed": "failed", "cancelled": "failed"}
    assert {r: states.of_record(r).seed001 for r in RECORD} == {
        "pending": "pending", "queued": "pending", "active": "active",
        "completed": "completed", "failed": "failed", "cancelled": "cancelled"}
    assert {r: states.of_record(r).seed003 for r in RECORD} == {
        "pending": "QUEUED", "queued": "QUEUED", "active": "PROCESSING",
        "completed": "SUCCEEDED", "failed": "FAILED", "cancelled": "FAILED"}
    # Seed 002's lifecycle: pending (recorded, not yet queued) → queued → running → …
    assert {r: states.of_record(r).seed002 for r in RECORD} == {
        "pending": "pending", "queued": "queued", "active": "running",
        "completed": "completed", "failed": "failed", "cancelled": "failed"}
    assert states.record_statuses_named("seed002", "pending") == ["pending"]
    assert states.record_statuses_named("seed002", "queued") == ["queued"]
    assert states.state_of_record("queued") == "waiting"
    assert states.state_of_record("cancelled") == "cancelled"


def test_status_filters_cover_every_state_and_record_named_so() -> None:
    assert states.record_statuses_named("seed000", "waiting") == ["pending", "queued"]
    assert states.record_statuses_named("seed000", "failed") == ["failed", "cancelled"]
    assert states.record_statuses_named("seed000", "delayed") == []  # only Redis knows
    assert states.states_named("seed000", "delayed") == ["delayed"]
    assert states.states_named("seed000", "paused") == ["paused"]
    assert states.record_statuses_named("seed001", "pending") == ["pending", "queued"]
    assert states.record_statuses_named("seed001", "cancelled") == ["cancelled"]


def test_tally_counts_records_under_the_seed_names() -> None:
    counts = {"pending": 1, "queued": 2, "active": 3, "failed": 4, "cancelled": 5}
    assert states.tally("seed000", counts) == {
        "waiting": 3, "delayed": 0, "paused": 0, "active": 3, "awaiting_approval": 0,
        "completed": 0, "failed": 9}
    assert states.tally("seed001", counts) == {
        "pending": 3, "active": 3, "awaiting_approval": 0, "completed": 0, "failed": 4,
        "cancelled": 5}


def test_a_job_parked_for_approval_reads_as_awaiting_approval_everywhere() -> None:
    names = states.of_record("awaiting")
    assert (names.seed000, names.seed001, names.seed002, names.seed003, names.seed004) == (
        "awaiting_approval", "awaiting_approval", "awaiting_approval", "AWAITING_APPROVAL",
        "awaiting_approval")
    assert states.record_statuses_named("seed001", "awaiting_approval") == ["awaiting"]
