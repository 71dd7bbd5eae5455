"""Stored workflow definitions on SQLite and PostgreSQL: written, read back as written (JSON
steps, aware UTC times), listed per organization newest first, replaced, deleted."""

from __future__ import annotations

from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from agentqueue.records.workflows import WorkflowStore

STEPS = [{"id": "a", "type": "summarize", "input": {"text": {"$ref": "input.text"}},
          "dependsOn": [], "onFailure": "skip"}]


async def test_workflows_are_kept_listed_replaced_and_deleted(records: Records) -> None:
    store = WorkflowStore(records)
    alice = await store.create(name="first", description=None, steps=STEPS,
                               owner=JobOwner(user_id="alice", org_id="acme"))
    carol = await store.create(name="other", description="theirs", steps=STEPS,
                               owner=JobOwner(user_id="carol", org_id="other"))
    solo = await store.create(name="solo", description=None, steps=STEPS,
                              owner=JobOwner(user_id="dan", org_id=None))
    found = await store.get(alice.id)
    assert found == alice and found.steps == STEPS
    assert found.owner == JobOwner(user_id="alice", org_id="acme")
    assert found.created_at.utcoffset() is not None
    assert [w.id for w in await store.listed("acme")] == [alice.id]
    assert [w.id for w in await store.listed(None)] == [solo.id]
    assert {w.id for w in await store.listed(None, every_org=True)} == {
        alice.id, carol.id, solo.id}

    changed = await store.replace(alice.id, name="renamed", description="now",
                                  steps=[{**STEPS[0], "id": "b"}])
    assert changed is not None and changed.name == "renamed" and changed.steps[0]["id"] == "b"
    assert (await store.get(alice.id)) == changed
    assert await store.replace("wf_missing", name="x", description=None, steps=STEPS) is None

    assert await store.delete(alice.id) is True
    assert await store.get(alice.id) is None
    assert await store.delete(alice.id) is False
