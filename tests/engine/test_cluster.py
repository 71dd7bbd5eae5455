"""The queue on a Redis Cluster of three masters that this module starts on loopback ports:
jobs added one by one, in bulk and as a flow; a worker running them in priority order, delayed
ones later; cancelling an active job; following a job's events from Python; and the service
(`agentqueue serve`) taking chats over HTTP and completing them.

Each test's queues use a hash-tagged prefix of their own (`{aqtest-…}`): every key of a queue
in one slot, as BullMQ's scripts need; the module's cluster goes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis
from pydantic import BaseModel
from redis.exceptions import RedisClusterException

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.engine.context import JobContext
from agentqueue.engine.queue import CANCELLED_REASON, CancelOutcome, JobQueue, QueueDefaults
from agentqueue.engine.worker import WorkerOptions, WorkerRuntime, standard_middleware
from agentqueue.services import build_workers
from tests.support.processes import agentqueue as agentqueue_process
from tests.support.processes import free_port
from tests.support.redis_servers import needs_redis_server, redis_cluster, slot_primary
from tests.support.waiting import eventually
from tests.support.workers import finished

pytestmark = needs_redis_server

OPTIONS = WorkerOptions(concurrency=4, job_timeout_s=20, lock_duration_ms=2000,
                        stalled_interval_ms=1000, reconnect_delay_ms=100)


@pytest.fixture(scope="module")
def cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as ports:
        yield ports


@pytest.fixture
def cluster_url(cluster_nodes: list[int]) -> str:
    return f"redis+cluster://127.0.0.1:{cluster_nodes[0]}"


@pytest.fixture
def tagged_prefix() -> str:
    return "{aqtest-" + uuid.uuid4().hex[:10] + "}"


@pytest.fixture
async def cluster_client(cluster_url: str) -> AsyncIterator[redis.Redis]:
    client = connect(cluster_url)
    yield client
    await client.aclose()


@pytest.fixture
async def start(cluster_url: str, tagged_prefix: str) -> AsyncIterator[Any]:
    """`await start(queue, {"name": handler}, concurrency=…)`: a worker on the cluster with
    the engine's standard middleware (cancellation included), stopped after the test."""
    started: list[WorkerRuntime] = []

    async def run(queue: str, handlers: dict[str, Any], *, concurrency: int = 4) -> None:
        options = WorkerOptions(**{**OPTIONS.__dict__, "concurrency": concurrency})
        worker = WorkerRuntime(queue, cluster_url, prefix=tagged_prefix, options=options,
                               middleware=standard_middleware(options))
        for name, handler in handlers.items():
            worker.register(name, handler)
        started.append(worker)
        await worker.start()

    yield run
    for worker in started:
        await worker.stop(grace_s=0)


class Number(BaseModel):
    n: int


def queue_on(client: redis.Redis, prefix: str, name: str = "q") -> JobQueue:
    return JobQueue(name, client, prefix=prefix, defaults=QueueDefaults(backoff_ms=50))


def test_on_a_cluster_the_prefix_is_tagged_by_default_and_an_untagged_one_refused() -> None:
    cluster = {"REDIS_URL": "redis://127.0.0.1:7000", "REDIS_CLUSTER": "true"}
    settings = Settings(**cluster)  # type: ignore[arg-type]
    assert settings.queue_prefix == "{bull}"
    assert settings.external_redis_url == "redis+cluster://127.0.0.1:7000"
    assert Settings(**cluster, QUEUE_PREFIX="{jobs}").queue_prefix == "{jobs}"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"has no hash tag.*like \{jobs\}"):
        Settings(**cluster, QUEUE_PREFIX="jobs")  # type: ignore[arg-type]


async def test_a_queue_refuses_an_untagged_prefix_on_a_cluster(
    cluster_client: redis.Redis,
) -> None:
    with pytest.raises(ValueError, match="has no hash tag"):
        JobQueue("q", cluster_client, prefix="bull")


async def test_jobs_added_alone_and_in_bulk_run_on_a_cluster(
    cluster_client: redis.Redis, tagged_prefix: str, start: Any
) -> None:
    queue = queue_on(cluster_client, tagged_prefix)
    ran: list[tuple[str, Any]] = []

    async def work(ctx: JobContext) -> str:
        ran.append((ctx.id, ctx.data))
        return f"done {ctx.data['n']}"

    first = await queue.add("work", {"n": 0})
    bulk = await queue.add_bulk([("work", {"n": n}) for n in range(1, 50)]
                                + [("work", {"n": 50}, {"priority": 3, "attempts": 1})])
    assert [first, *bulk] == [str(n) for n in range(1, 52)]  # one id counter, in order
    assert (await queue.counts())["waiting"] == 51
    await start("q", {"work": work})
    last = await finished(queue, bulk[-1])
    assert (last.state, last.result, last.max_attempts) == ("completed", "done 50", 1)
    await eventually(lambda: _completed(queue, 51), what="every job to complete")
    assert sorted(n["n"] for _, n in ran) == list(range(51))


async def _completed(queue: JobQueue, n: int) -> bool:
    return (await queue.counts())["completed"] == n


async def test_a_flow_runs_its_parent_after_its_children_across_queues(
    cluster_client: redis.Redis, tagged_prefix: str, start: Any
) -> None:
    parents, children = queue_on(cluster_client, tagged_prefix, "parents"), queue_on(
        cluster_client, tagged_prefix, "children")
    order: list[str] = []

    async def child(ctx: JobContext) -> int:
        order.append(ctx.name)
        return int(ctx.data["n"]) * 10

    async def parent(ctx: JobContext) -> str:
        order.append(ctx.name)
        return "children done"

    tree = await parents.add_flow({
        "name": "parent", "queueName": "parents", "data": {},
        "children": [{"name": f"child-{n}", "queueName": "children", "data": {"n": n}}
                     for n in (1, 2)],
    })
    parent_id = str(tree["job"].id)
    assert (await parents.get(parent_id)).state == "waiting-children"  # type: ignore[union-attr]
    await start("children", {"child-1": child, "child-2": child})
    await start("parents", {"parent": parent})
    view = await finished(parents, parent_id)
    assert (view.state, view.result) == ("completed", "children done")
    assert sorted(order[:2]) == ["child-1", "child-2"] and order[2] == "parent"
    assert [(await finished(children, str(c["job"].id))).result
            for c in tree["children"]] == [10, 20]


async def test_a_worker_on_a_cluster_takes_jobs_by_priority_and_delayed_ones_later(
    cluster_client: redis.Redis, tagged_prefix: str, start: Any
) -> None:
    queue = queue_on(cluster_client, tagged_prefix)
    order: list[str] = []

    async def work(ctx: JobContext) -> None:
        order.append(ctx.data["label"])

    # Last in priority too, so the order does not depend on when its delay ends.
    delayed = await queue.add("work", {"label": "delayed"}, delay=300, priority=10)
    assert (await queue.get(delayed)).state == "delayed"  # type: ignore[union-attr]
    for label, priority in (("low", 9), ("high", 1), ("middle", 5)):
        await queue.add("work", {"label": label}, priority=priority)
    await start("q", {"work": work}, concurrency=1)
    await finished(queue, delayed)
    assert order == ["high", "middle", "low", "delayed"]


async def test_cancelling_an_active_job_on_a_cluster_stops_it(
    cluster_client: redis.Redis, tagged_prefix: str, start: Any
) -> None:
    queue = queue_on(cluster_client, tagged_prefix)
    running, stopped = asyncio.Event(), asyncio.Event()

    async def long(ctx: JobContext) -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    await start("q", {"long": long})
    job_id = await queue.add("long", {}, attempts=3)
    await asyncio.wait_for(running.wait(), 20)
    # Heard on the cancel channel (pub/sub through the cluster), not by polling.
    assert await queue.cancel(job_id) is CancelOutcome.REQUESTED
    assert stopped.is_set()
    view = await finished(queue, job_id)
    assert (view.state, view.failed_reason, view.attempts_made) == (
        "failed", CANCELLED_REASON, 1)
    pending = await queue.add("long", {}, delay=60_000)
    assert await queue.cancel(pending) is CancelOutcome.CANCELLED
    assert (await queue.get(pending)).state == "cancelled"  # type: ignore[union-attr]


async def test_an_app_on_a_cluster_enqueues_and_waits_on_the_events_stream(
    cluster_url: str, cluster_nodes: list[int], tagged_prefix: str, tmp_path: Path
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        REDIS_URL=f"redis://127.0.0.1:{cluster_nodes[1]}", REDIS_CLUSTER="true",
        QUEUE_PREFIX=tagged_prefix, AGENTQUEUE_DATA_DIR=str(tmp_path / "data"),
        AI_PROVIDER="builtin")
    app = agentqueue.App(settings=settings, builtin=False)

    @app.job("double", queue="numbers")
    async def double(ctx: agentqueue.Context, data: Number) -> int:
        await ctx.progress(current=1, total=2, message="halfway")
        return data.n * 2

    backend = await app._backend()
    group = build_workers(settings, settings.external_redis_url or "", records=backend.records,
                          registry=app.types())
    await group.start()
    try:
        jobs = await app.enqueue_many([("double", {"n": n}) for n in range(5)])
        assert [await job.wait(timeout=30) for job in jobs] == [0, 2, 4, 6, 8]
    finally:
        await group.stop(5)
        await app.close()


async def test_the_service_on_a_cluster_takes_chats_over_http_and_completes_them(
    cluster_nodes: list[int], tagged_prefix: str, tmp_path: Path
) -> None:
    env = {"REDIS_URL": f"redis://127.0.0.1:{cluster_nodes[2]}", "REDIS_CLUSTER": "true",
           "QUEUE_PREFIX": tagged_prefix, "PORT": str(free_port()), "AI_PROVIDER": "builtin",
           "AGENTQUEUE_DATA_DIR": str(tmp_path / "data")}
    with agentqueue_process("serve", env, tmp_path / "serve.log") as service:
        await service.wait_healthy()
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            ids = []
            for n in range(5):
                answer = await http.post("/agent/queue/chat",
                                         json={"message": f"Calculate {n}+{n}"})
                assert answer.status_code == 201, answer.text
                ids.append(answer.json()["jobId"])

            async def job(job_id: str) -> dict[str, Any] | None:
                found: dict[str, Any] = (await http.get(f"/agent/queue/job/{job_id}")).json()
                return found["job"] if found["job"]["status"] == "completed" else None

            results = [await eventually(lambda i=i: job(i), what=f"job {i}") for i in ids]
            assert [r["result"]["response"] for r in results] == [
                f"{n} + {n} = {2 * n}" for n in range(5)]
            stats = (await http.get("/agent/queue/stats")).json()["stats"]
            assert stats["completed"] == 5
    assert "Traceback" not in service.log(), service.log()


async def test_the_service_answers_503_when_its_cluster_is_down(tmp_path: Path) -> None:
    # A cluster of its own: this test takes it down. A cluster client's errors are not all
    # RedisErrors (RedisClusterException is a bare Exception): each must still read as "the
    # queue backend is unavailable", never as an internal error.
    (tmp_path / "cluster").mkdir()
    with redis_cluster(tmp_path / "cluster") as ports:
        env = {"REDIS_URL": f"redis://127.0.0.1:{ports[0]}", "REDIS_CLUSTER": "true",
               "QUEUE_PREFIX": "{aqtest-down}", "PORT": str(free_port()),
               "AI_PROVIDER": "builtin", "AGENTQUEUE_DATA_DIR": str(tmp_path / "data")}
        with agentqueue_process("serve", env, tmp_path / "serve.log") as service:
            await service.wait_healthy()
            for port in ports:
                with contextlib.suppress(redis.ConnectionError):
                    await redis.Redis(port=port).shutdown(nosave=True)
            async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
                for method, path, body in (("POST", "/agent/queue/chat", {"message": "Hi"}),
                                           ("GET", "/agent/queue/stats", None)):
                    answer = await http.request(method, path, json=body)
                    assert answer.status_code == 503, (path, answer.text)
                    assert "unavailable" in answer.json()["message"]
        assert "Traceback" not in service.log(), service.log()


async def test_a_worker_follows_its_queues_slot_to_the_new_primary_after_a_failover(
    tmp_path: Path, tagged_prefix: str
) -> None:
    # A cluster of its own, with a replica per primary: this test kills the queue's primary.
    (tmp_path / "cluster").mkdir()
    with redis_cluster(tmp_path / "cluster", replicas=1) as ports:
        url = f"redis+cluster://127.0.0.1:{ports[0]}"
        client = connect(url)
        queue = queue_on(client, tagged_prefix)
        worker = WorkerRuntime("q", url, prefix=tagged_prefix, options=OPTIONS,
                               middleware=standard_middleware(OPTIONS))

        async def work(ctx: JobContext) -> int:
            return int(ctx.data["n"]) * 2

        worker.register("work", work)
        await worker.start()
        try:
            before = await queue.add("work", {"n": 1})
            assert (await finished(queue, before)).result == 2
            key = f"{tagged_prefix}:q:marker"
            old = slot_primary(ports[0], key)
            with contextlib.suppress(redis.ConnectionError):
                await redis.Redis(port=old).shutdown(nosave=True)
            survivor = next(p for p in ports if p != old)

            async def promoted() -> int | None:
                new = slot_primary(survivor, key)
                return new if new != old else None

            await eventually(promoted, timeout=30, what="a replica promoted in its place")
            after = await eventually(lambda: _added(queue, {"n": 21}), timeout=30,
                                     what="the cluster taking jobs again")
            # The worker, whose connections went to the dead node, runs it on the new primary.
            assert (await finished(queue, after)).result == 42
        finally:
            await worker.stop(grace_s=0)
            await client.aclose()


async def _added(queue: JobQueue, data: dict[str, Any]) -> str | None:
    try:
        return await queue.add("work", data)
    except (redis.RedisError, RedisClusterException):
        return None
