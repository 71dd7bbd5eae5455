"""Seed 001's `model-training` and `fine-tuning` job types through a running `agentqueue serve`,
over HTTP as a user would: a classifier trained, listed and used by `classify` by its id inside
its organization only; a fine-tune uploaded to, followed on and cancelled on a local server
speaking OpenAI's files and fine-tuning protocol; offline, fine-tuning refused at once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.fake_openai_fine_tuning import FakeFineTuning
from tests.support.processes import agentqueue
from tests.support.service import create_key, delete_service_keys, serve_env
from tests.support.waiting import eventually

TICKETS = {
    "billing": ["refund my order please", "I want my money back", "the charge was wrong",
                "return this item and refund me", "please reimburse the fee"],
    "bug": ["the app crashes on start", "error 500 when I log in", "the button does nothing",
            "it freezes after the update", "the login page is broken"],
    "question": ["how do I change my plan", "what are your opening hours",
                 "where can I find the docs", "can I add a teammate",
                 "is there a student discount"],
}
EXAMPLES = [{"text": t, "label": label} for label, texts in TICKETS.items() for t in texts]
CHATS = [{"messages": [{"role": "user", "content": f"What is {n} + {n}?"},
                       {"role": "assistant", "content": str(2 * n)}]} for n in range(12)]


async def _service(tmp: pytest.TempPathFactory, **settings: str) -> AsyncIterator[dict[str, Any]]:
    env = serve_env(tmp.mktemp("data"), **settings)
    keys = {"alice": create_key(env, "--user", "alice", "--org", "acme"),
            "bob": create_key(env, "--user", "bob", "--org", "acme"),
            "eve": create_key(env, "--user", "eve", "--org", "evil")}
    with agentqueue("serve", env, tmp.mktemp("logs") / "serve.log") as proc:
        await proc.wait_healthy()
        yield {"url": proc.base_url, "keys": keys}
    await delete_service_keys(env)


@pytest.fixture(scope="module")
async def offline(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    async for service in _service(tmp_path_factory, AI_PROVIDER="builtin"):
        yield service


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeFineTuning]:
    with FakeFineTuning().running() as server:
        yield server


@pytest.fixture(scope="module")
async def online(tmp_path_factory: pytest.TempPathFactory,
                 fake: FakeFineTuning) -> AsyncIterator[dict[str, Any]]:
    async for service in _service(tmp_path_factory, OPENAI_API_KEY="sk-test-fine-tuning",
                                  OPENAI_BASE_URL=fake.base_url):
        yield service


def as_user(service: dict[str, Any], who: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=service["url"], timeout=30,
                             headers={"Authorization": f"Bearer {service['keys'][who]}"})


async def submit(http: httpx.AsyncClient, job_type: str, data: dict[str, Any]) -> str:
    created = await http.post("/api/jobs", json={"type": job_type, "data": data})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def finished(http: httpx.AsyncClient, job_ref: str, timeout: float = 90) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = (await http.get(f"/api/jobs/{job_ref}")).json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    return await eventually(probe, timeout=timeout, interval=0.2, what=f"job {job_ref} to end")


# -- model-training ----------------------------------------------------------------------------


async def test_a_trained_classifier_serves_classify_in_its_organization_only(
    offline: dict[str, Any],
) -> None:
    async with as_user(offline, "alice") as alice, as_user(offline, "bob") as bob, \
            as_user(offline, "eve") as eve:
        job = await finished(alice, await submit(alice, "model-training", {
            "examples": EXAMPLES, "name": "tickets", "folds": 5}))
        assert job["status"] == "completed", job
        result = job["result"]
        assert result["counts"] == {"billing": 5, "bug": 5, "question": 5}
        assert result["folds"] == 5 and len(result["foldAccuracies"]) == 5
        assert result["accuracy"] >= 0.8
        assert result["labels"] == ["billing", "bug", "question"]
        model_id = result["modelId"]

        # A colleague in the same organization classifies with it, offline.
        used = await finished(bob, await submit(bob, "classify", {
            "text": "I was charged twice, I want a refund", "modelId": model_id}))
        assert used["status"] == "completed", used
        assert used["result"]["label"] == "billing"
        assert used["result"]["modelId"] == model_id
        assert used["result"]["provider"] == "builtin" and used["result"]["tokenUsed"] == 0

        # Another organization: as if there were no such model.
        refused = await eve.post("/api/jobs", json={"type": "classify", "data": {
            "text": "refund please", "modelId": model_id}})
        assert refused.status_code == 400
        assert f"data.modelId: unknown model '{model_id}'" in refused.json()["message"]
        seed003 = await eve.post("/v1/jobs/classify", json={"text": "refund please",
                                                             "modelId": model_id})
        assert seed003.status_code == 400
        assert "unknown model" in seed003.json()["message"]
        assert (await bob.post("/v1/jobs/classify", json={
            "text": "refund please", "modelId": model_id})).status_code == 201
        assert (await eve.get(f"/api/trained-models/{model_id}")).status_code == 404
        assert (await eve.get("/api/trained-models")).json()["models"] == []
        assert (await eve.delete(f"/api/trained-models/{model_id}")).status_code == 404

        listed = (await bob.get("/api/trained-models")).json()["models"]
        assert [m["id"] for m in listed] == [model_id]
        shown = (await alice.get(f"/api/trained-models/{model_id}")).json()
        assert shown["name"] == "tickets" and shown["metrics"]["accuracy"] == result["accuracy"]
        assert shown["trainedBy"] == job["id"] and "coef" not in str(shown)

        assert (await alice.delete(f"/api/trained-models/{model_id}")).status_code == 204
        gone = await alice.post("/api/jobs", json={"type": "classify", "data": {
            "text": "refund please", "modelId": model_id}})
        assert gone.status_code == 400


async def test_a_model_deleted_before_its_classify_job_runs_fails_it_at_once(
    offline: dict[str, Any],
) -> None:
    data = {"examples": EXAMPLES[:4] + EXAMPLES[5:9], "folds": 2}  # billing 4, bug 4
    async with as_user(offline, "alice") as alice:
        trained = await finished(alice, await submit(alice, "model-training", data))
        model_id = trained["result"]["modelId"]
        delayed = await alice.post("/api/jobs", json={"type": "classify", "delay": 3000, "data": {
            "text": "refund please", "modelId": model_id}})
        assert delayed.status_code == 201
        assert (await alice.delete(f"/api/trained-models/{model_id}")).status_code == 204
        job = await finished(alice, delayed.json()["id"])
    assert job["status"] == "failed"
    assert job["error"] == f"unknown model '{model_id}'" and job["attempts"] == 1


async def test_too_few_examples_per_label_are_refused_naming_the_minimum(
    offline: dict[str, Any],
) -> None:
    few = [e for e in EXAMPLES if e["label"] != "question"][:8]  # billing 5, bug 3
    async with as_user(offline, "alice") as alice:
        answer = await alice.post("/api/jobs", json={"type": "model-training",
                                                     "data": {"examples": few}})
        assert answer.status_code == 400
        message = answer.json()["message"]
        assert "5-fold cross-validation needs at least 5 examples per label ('bug' has 3)" \
            in message
        one_label = [{"text": f"t{n}", "label": "only"} for n in range(6)]
        answer = await alice.post("/api/jobs", json={"type": "model-training",
                                                     "data": {"examples": one_label}})
        assert answer.status_code == 400
        assert "at least 2 different labels" in answer.json()["message"]


# -- fine-tuning -------------------------------------------------------------------------------


async def test_offline_fine_tuning_is_refused_naming_the_setting(offline: dict[str, Any]) -> None:
    async with as_user(offline, "alice") as alice:
        answer = await alice.post("/api/jobs", json={"type": "fine-tuning",
                                                     "data": {"examples": CHATS}})
    assert answer.status_code == 400
    assert "OPENAI_API_KEY" in answer.json()["message"]


async def test_too_few_chat_examples_are_refused(online: dict[str, Any]) -> None:
    async with as_user(online, "alice") as alice:
        answer = await alice.post("/api/jobs", json={"type": "fine-tuning",
                                                     "data": {"examples": CHATS[:9]}})
    assert answer.status_code == 400
    assert "9 given; fine-tuning needs at least 10" in answer.json()["message"]


async def test_a_fine_tune_is_followed_to_its_model(online: dict[str, Any],
                                                  fake: FakeFineTuning) -> None:
    async with as_user(online, "alice") as alice:
        job = await finished(alice, await submit(alice, "fine-tuning", {
            "examples": CHATS, "model": "gpt-4o-mini-2024-07-18", "suffix": "sums",
            "hyperparameters": {"nEpochs": 2}}))
    assert job["status"] == "completed", job
    result = job["result"]
    remote = fake.jobs[result["fineTuningJobId"]]
    assert result["fineTunedModel"] == f"ft:gpt-4o-mini-2024-07-18:org-fake:sums:{remote.id}"
    assert result["examples"] == 12 and result["trainedTokens"] == 1234
    assert remote.body["hyperparameters"] == {"n_epochs": 2}
    assert fake.files[remote.training_file]["content"].decode().count("\n") == 12


async def test_cancelling_the_job_cancels_the_remote_fine_tune(online: dict[str, Any],
                                                               fake: FakeFineTuning) -> None:
    fake.hold_running, fake.running_seen = True, type(fake.running_seen)()
    try:
        async with as_user(online, "alice") as alice:
            job_ref = await submit(alice, "fine-tuning", {"examples": CHATS})

            async def held() -> bool:
                return fake.running_seen.is_set()

            await eventually(held, timeout=60, what="the remote fine-tune to run")

            async def reported() -> bool:
                job = (await alice.get(f"/api/jobs/{job_ref}")).json()
                return job["progress"]["message"] == "Fine-tuning job started"

            await eventually(reported, what="the remote job's events in the progress")
            assert (await alice.patch(f"/api/jobs/{job_ref}/cancel")).status_code == 200
            job = await finished(alice, job_ref)
    finally:
        fake.hold_running = False
    assert job["status"] == "cancelled"
    remote = [j for j in fake.jobs.values() if j.status == "cancelled"]
    assert len(remote) == 1
    assert f"/v1/fine_tuning/jobs/{remote[0].id}/cancel" in fake.paths("POST")


async def test_a_fine_tune_failing_there_fails_the_job_with_its_reason(
    online: dict[str, Any], fake: FakeFineTuning,
) -> None:
    fake.failure = "the training file has duplicate examples"
    try:
        async with as_user(online, "alice") as alice:
            job = await finished(alice, await submit(alice, "fine-tuning", {"examples": CHATS}))
    finally:
        fake.failure = None
    assert job["status"] == "failed"
    assert job["error"].endswith("failed: the training file has duplicate examples")
    assert job["attempts"] == 1  # no retry: trying again cannot help

    # The user fixed what was wrong there and retries: a new fine-tune, not the failed one.
    remote_jobs = len(fake.jobs)
    async with as_user(online, "alice") as alice:
        assert (await alice.post(f"/api/jobs/{job['id']}/retry")).status_code == 200
        again = await finished(alice, job["id"])
    assert again["status"] == "completed", again
    assert len(fake.jobs) == remote_jobs + 1
    assert again["result"]["fineTuningJobId"] == f"ftjob-{remote_jobs + 1}"


async def test_a_retried_job_follows_the_fine_tune_it_started_instead_of_another(
    online: dict[str, Any], fake: FakeFineTuning,
) -> None:
    files, remote_jobs = len(fake.files), len(fake.jobs)
    fake.unavailable_gets = 4  # the SDK tries 3 times: the first attempt fails
    async with as_user(online, "alice") as alice:
        job = await finished(alice, await submit(alice, "fine-tuning", {"examples": CHATS}))
    assert job["status"] == "completed", job
    assert job["attempts"] == 2
    assert (len(fake.files), len(fake.jobs)) == (files + 1, remote_jobs + 1)
    assert job["result"]["fineTuningJobId"] == f"ftjob-{remote_jobs + 1}"
