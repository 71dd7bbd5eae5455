"""The fine-tuning client with the official SDK against a local server speaking OpenAI's files
and fine-tuning protocol; the checks on training examples."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from agentqueue.ai import fine_tuning as ft
from agentqueue.ai.providers.base import ProviderError
from tests.support.fake_openai_fine_tuning import FakeFineTuning


def chat(n: int) -> dict[str, object]:
    return {"messages": [{"role": "system", "content": "You are terse."},
                         {"role": "user", "content": f"question {n}"},
                         {"role": "assistant", "content": f"answer {n}"}]}


EXAMPLES = [chat(n) for n in range(10)]


@pytest.fixture
def fake() -> Iterator[FakeFineTuning]:
    with FakeFineTuning().running() as server:
        yield server


async def test_upload_create_and_follow_to_the_fine_tuned_model(fake: FakeFineTuning) -> None:
    client = ft.FineTuningClient(api_key="sk-test", base_url=fake.base_url)
    try:
        file_id = await client.upload(EXAMPLES, "train.jsonl")
        created = await client.create(model="gpt-4o-mini-2024-07-18", training_file=file_id,
                                      suffix="faq", hyperparameters={"n_epochs": 2})
        messages: list[str] = []
        statuses: list[str] = []

        async def on_event(event: ft.RemoteEvent) -> None:
            messages.append(event.message)

        async def on_status(job: ft.RemoteJob) -> None:
            statuses.append(job.status)

        done = await ft.follow(client, created.id, on_event, on_status,
                               backoff=ft.Backoff(start=0.01, ceiling=0.05))
    finally:
        await client.aclose()
    assert fake.uploaded_examples() == EXAMPLES
    assert fake.jobs[created.id].body["hyperparameters"] == {"n_epochs": 2}
    assert done.status == "succeeded"
    assert done.fine_tuned_model == f"ft:gpt-4o-mini-2024-07-18:org-fake:faq:{created.id}"
    assert statuses[-1] == "succeeded" and "running" in statuses
    # Every event once, oldest first, although the API lists newest first.
    assert messages[0] == f"Created fine-tuning job: {created.id}"
    assert [m for m in messages if m.startswith("Step")] == [
        f"Step {n}/3: training loss=0.5" for n in (1, 2, 3)]
    assert messages[-1] == "The job has successfully completed"
    assert len(messages) == len(set(messages))


async def test_a_refused_request_is_not_retryable_and_names_the_endpoint(
    fake: FakeFineTuning,
) -> None:
    client = ft.FineTuningClient(api_key="sk-secret-key", base_url=fake.base_url)
    try:
        with pytest.raises(ProviderError) as caught:
            await client.create(model="gpt-4o-mini", training_file="file-missing")
    finally:
        await client.aclose()
    assert not caught.value.retryable
    assert "HTTP 400: training_file not found" in str(caught.value)
    assert fake.base_url in str(caught.value) and "sk-secret-key" not in str(caught.value)


def test_ten_examples_are_the_minimum() -> None:
    assert len(ft.check_examples(EXAMPLES)) == 10
    with pytest.raises(ft.TrainingDataError, match="9 given; fine-tuning needs at least 10"):
        ft.check_examples(EXAMPLES[:9])


@pytest.mark.parametrize(("example", "problem"), [
    ({"prompt": "x", "completion": "y"}, r"examples\[3\]: an example is an object with a "
                                         "`messages` list"),
    ({"messages": [{"role": "user", "content": "hi"}]}, r"examples\[3\]: no assistant message"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, r"examples\[3\]: messages\[0\] needs a "
                                                         "role"),
    ({"messages": [{"role": "assistant"}]}, r"examples\[3\]: messages\[0\] has no content"),
])
def test_a_bad_example_is_named(example: dict[str, object], problem: str) -> None:
    examples = [*EXAMPLES[:3], example, *EXAMPLES[3:]]
    with pytest.raises(ft.TrainingDataError, match=problem):
        ft.check_examples(examples)


def test_jsonl_text_is_read_line_by_line() -> None:
    text = "\n".join(json.dumps(e) for e in EXAMPLES[:2]) + "\n\n"
    assert ft.parse_jsonl(text) == EXAMPLES[:2]
    with pytest.raises(ft.TrainingDataError, match="line 2: not valid JSON"):
        ft.parse_jsonl('{"messages": []}\n{oops\n')


def test_backoff_grows_while_idle_and_resets_on_activity() -> None:
    backoff = ft.Backoff(start=1.0, factor=2.0, ceiling=5.0)
    assert [backoff.next(False) for _ in range(4)] == [1.0, 2.0, 4.0, 5.0]
    assert backoff.next(True) == 1.0
