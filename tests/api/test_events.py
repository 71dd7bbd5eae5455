"""Server-Sent Events over a real `agentqueue serve`: a job's stream shows its streamed text in
order, then its result, then ends; `Last-Event-ID` resumes with nothing lost or repeated; a
caller's stream tells only their own jobs; someone else's job is a 404 as `GET` answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.push import ANSWER, Pushed, PushService, deltas_text, push_service, sse
from tests.support.service import delete_service_keys


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PushService]:
    async with push_service(tmp_path_factory.mktemp("data"),
                            tmp_path_factory.mktemp("logs") / "serve.log") as svc:
        svc.fake.pace = 0.01
        yield svc
    await delete_service_keys(svc.env)


async def read_all(events: AsyncIterator[Pushed]) -> list[Pushed]:
    return [event async for event in events]


async def test_a_jobs_stream_shows_its_text_as_it_streams_then_its_result_and_ends(
        service: PushService) -> None:
    service.fake.hold()  # the answer waits until the stream is open
    job = await service.create("alice")
    async with service.http("alice") as http, sse(http, f"/api/jobs/{job}/events") as events:
        first = await anext(events)
        assert first.event == "job-update" and first.data["id"] == job
        assert first.data["status"] in ("pending", "active")
        service.fake.release()
        rest = await read_all(events)
    assert deltas_text(rest) == ANSWER
    offsets = [e.data["offset"] for e in rest if e.event == "job-delta"]
    assert offsets == sorted(offsets) and offsets[0] == 0
    last = rest[-1]
    assert last.event == "job-completed" and last.data["status"] == "completed"
    assert last.data["result"]["content"] == ANSWER
    assert [e.event for e in rest].count("job-completed") == 1
    ids = [first.id, *(e.id for e in rest)]
    assert len(set(ids)) == len(ids)


async def test_last_event_id_resumes_with_nothing_lost_or_repeated(
        service: PushService) -> None:
    service.fake.hold()
    job = await service.create("alice")
    seen: list[Pushed] = []
    async with service.http("alice") as http:
        async with sse(http, f"/api/jobs/{job}/events") as events:
            seen.append(await anext(events))
            service.fake.release()
            async for event in events:
                seen.append(event)
                if event.event == "job-delta" and len(seen) >= 4:
                    break  # the connection drops mid-answer
        async with sse(http, f"/api/jobs/{job}/events", last_event_id=seen[-1].id) as events:
            seen += await read_all(events)
        # Resumed after its outcome: nothing more to tell, and EventSource is told to stop.
        again = await http.get(f"/api/jobs/{job}/events",
                               headers={"Last-Event-ID": seen[-1].id})
        assert again.status_code == 204
    assert deltas_text(seen) == ANSWER
    assert [e.event for e in seen].count("job-completed") == 1
    assert seen[-1].event == "job-completed"


async def test_a_finished_jobs_stream_tells_its_outcome_and_ends(service: PushService) -> None:
    job = await service.create("alice")
    async with service.http("alice") as http:
        async with sse(http, f"/api/jobs/{job}/events") as events:
            told = await read_all(events)
        while told[-1].event != "job-completed":  # it may still have been running
            async with sse(http, f"/api/jobs/{job}/events") as events:
                told = await read_all(events)
    assert told[-1].data["result"]["content"] == ANSWER


async def test_someone_elses_job_is_not_found_exactly_as_get_answers(
        service: PushService) -> None:
    job = await service.create("alice")
    async with service.http("bob") as bob:
        theirs = await bob.get(f"/api/jobs/{job}/events")
        get = await bob.get(f"/api/jobs/{job}")
        queue = job.split(":")[0]
        missing = await bob.get(f"/api/jobs/{queue}:999999999/events")
    assert theirs.status_code == get.status_code == missing.status_code == 404
    assert theirs.json() == get.json()
    assert missing.json()["message"] == theirs.json()["message"].replace(
        job.split(":")[1], "999999999")


async def test_a_callers_stream_tells_their_jobs_and_nothing_of_anyone_elses(
        service: PushService) -> None:
    async with service.http("bob") as http, sse(http, "/api/jobs/events") as events:
        alices = await service.create("alice", "alice's secret question")
        bobs = await service.create("bob")
        told: list[Pushed] = []
        async for event in events:
            told.append(event)
            if event.event == "job-completed" and event.data["id"] == bobs:
                break
    about = {e.data["id"] for e in told}
    assert about == {bobs}, about
    kinds = [e.event for e in told]
    assert kinds[0] == "job-created" and "job-delta" in kinds
    assert deltas_text(told) == ANSWER
    assert alices not in str([e.data for e in told])


async def test_eventsource_can_authenticate_with_a_query_token(service: PushService) -> None:
    job = await service.create("alice")
    async with service.http(None) as anonymous:
        refused = await anonymous.get(f"/api/jobs/{job}/events")
        assert refused.status_code == 401
        async with sse(anonymous, f"/api/jobs/{job}/events",
                       params={"token": service.keys["alice"]}) as events:
            assert (await anext(events)).data["id"] == job


async def test_a_bad_last_event_id_is_a_400(service: PushService) -> None:
    job = await service.create("alice")
    async with service.http("alice") as http:
        answer = await http.get(f"/api/jobs/{job}/events", headers={"Last-Event-ID": "nope"})
    assert answer.status_code == 400 and "Last-Event-ID" in answer.json()["message"]


# Each seed's own create route, its job path, and how its answer names the job.
SEED_JOBS = [
    ("/agent/queue/chat", {"message": "tell me"}, "/agent/queue/job/{id}", "jobId"),
    ("/v1/jobs/summarize", {"text": "A long text to summarize. It has two sentences."},
     "/v1/jobs/{id}", "id"),
    ("/ai/queue", {"message": "tell me"}, "/ai/jobs/{id}", "jobId"),
]


@pytest.mark.parametrize(("create", "body", "path", "field"), SEED_JOBS,
                         ids=["seed-000", "seed-003", "seed-004"])
async def test_every_seeds_job_path_streams_its_events_to_its_owner_only(
        service: PushService, create: str, body: dict[str, str], path: str,
        field: str) -> None:
    async with service.http("alice") as alice:
        created = await alice.post(create, json=body)
        assert created.status_code in (200, 201, 202), created.text
        job_path = path.format(id=created.json()[field])
        async with sse(alice, f"{job_path}/events") as events:
            seen = await read_all(events)
    assert seen[-1].event in ("job-completed", "job-failed"), [e.event for e in seen]
    assert len({e.id for e in seen}) == len(seen)
    async with service.http("bob") as bob:
        theirs = await bob.get(f"{job_path}/events")
        get = await bob.get(job_path)
    assert theirs.status_code == get.status_code == 404
    assert theirs.json() == get.json()
