"""Trained models in SQL, on SQLite and PostgreSQL: saved per owner, seen only by their
organization (or, without one, by their user), replaced when the job that trained them saves
again, deleted by their owners only."""

from __future__ import annotations

from agentqueue.records import JobOwner, Records
from agentqueue.records.trained_models import TrainedModels

ALICE = JobOwner(user_id="alice", org_id="acme")
BOB = JobOwner(user_id="bob", org_id="acme")
EVE = JobOwner(user_id="eve", org_id="evil")
CAROL = JobOwner(user_id="carol")
PARAMS = {"kind": "logistic-regression", "embeddingModel": "all-MiniLM-L6-v2",
          "labels": ["a", "b"], "coef": [[0.25, -1.5]], "intercept": [0.125]}


async def _save(store: TrainedModels, owner: JobOwner, job: str) -> str:
    saved = await store.save(owner, source_job=job, kind="logistic-regression",
                             labels=["a", "b"], params=PARAMS,
                             metrics={"accuracy": 0.9, "counts": {"a": 5, "b": 5}}, name="m")
    return saved.id


async def test_a_model_is_its_organizations_and_nobody_elses(records: Records) -> None:
    store = TrainedModels(records.engine)
    model_id = await _save(store, ALICE, "jobs:1")

    found = await store.get(BOB, model_id)  # same organization
    assert found is not None
    assert found.params == PARAMS and found.labels == ["a", "b"]
    assert found.metrics["counts"] == {"a": 5, "b": 5}
    assert await store.get(EVE, model_id) is None
    assert await store.get(CAROL, model_id) is None
    assert await store.list_models(EVE) == []
    assert [m.id for m in await store.list_models(BOB)] == [model_id]

    assert not await store.delete(EVE, model_id)
    assert await store.get(ALICE, model_id) is not None
    assert await store.delete(BOB, model_id)
    assert await store.get(ALICE, model_id) is None


async def test_without_an_organization_a_model_is_its_users_alone(records: Records) -> None:
    store = TrainedModels(records.engine)
    model_id = await _save(store, CAROL, "jobs:2")
    assert await store.get(CAROL, model_id) is not None
    assert await store.get(JobOwner(user_id="dave"), model_id) is None
    # The same user id inside an organization is someone else.
    assert await store.get(JobOwner(user_id="carol", org_id="acme"), model_id) is None


async def test_the_job_that_trained_a_model_saving_again_replaces_it(records: Records) -> None:
    store = TrainedModels(records.engine)
    first = await _save(store, ALICE, "jobs:3")
    again = await _save(store, ALICE, "jobs:3")  # a retried job
    other = await _save(store, ALICE, "jobs:4")
    assert again == first and other != first
    assert sorted(m.id for m in await store.list_models(ALICE)) == sorted([first, other])


async def test_an_id_of_another_form_names_no_model(records: Records) -> None:
    store = TrainedModels(records.engine)
    await _save(store, ALICE, "jobs:5")
    for wrong in ("tm_\x00", "x" * 500, "' or 1=1 --", ""):
        assert await store.get(ALICE, wrong) is None
        assert not await store.delete(ALICE, wrong)
