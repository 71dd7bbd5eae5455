"""Webhook jobs over the real service: internal destinations and forbidden headers are refused
with a 400 by default, and reach a local receiver only when an operator allows its network."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.http_receiver import Receiver, receiving
from tests.support.processes import agentqueue
from tests.support.service import create_key, delete_service_keys, serve_env
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving(Receiver("127.0.0.1")) as r:
        yield r


async def serve(tmp: Path, **settings: str) -> AsyncIterator[httpx.AsyncClient]:
    env = serve_env(tmp / "data", **settings)
    key = create_key(env, "--user", "alice", "--org", "acme")
    with agentqueue("serve", env, tmp / "serve.log") as proc:
        await proc.wait_healthy()
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=30,
                                     headers={"Authorization": f"Bearer {key}"}) as http:
            yield http
    await delete_service_keys(env)


@pytest.fixture(scope="module")
async def default(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    async for http in serve(tmp_path_factory.mktemp("default")):
        yield http


@pytest.fixture(scope="module")
async def allowing(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    async for http in serve(tmp_path_factory.mktemp("allowing"),
                            WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32"):
        yield http


async def submit(http: httpx.AsyncClient, **data: Any) -> httpx.Response:
    return await http.post("/api/jobs", json={"type": "webhook", "data": data})


async def test_internal_destinations_are_refused_at_the_api(default, receiver) -> None:
    port = receiver.port
    for url in [receiver.url, f"http://localhost:{port}/hook", f"http://[::1]:{port}/hook",
                "http://169.254.169.254/latest/meta-data/", f"http://2130706433:{port}/hook",
                "http://[::ffff:a9fe:a9fe]/", "http://10.0.0.7/hook", "http://redis:6379/",
                "http://metadata.google.internal/computeMetadata/v1/"]:
        answer = await submit(default, url=url)
        assert answer.status_code == 400, (url, answer.text)
        message = answer.json()["message"]
        assert message.startswith("data.url: destination ") and "is not allowed" in message
        # One field, one message: the text is not cut at its own "; " and prefixed again.
        assert "; data." not in message
        assert message.endswith("an operator can allow internal networks with "
                                "WEBHOOK_ALLOWED_NETWORKS")
    assert receiver.received == []


async def test_other_schemes_and_forbidden_headers_are_refused_at_the_api(default) -> None:
    url = "https://hooks.example.com/in"
    answer = await submit(default, url="file:///etc/passwd")
    assert answer.status_code == 400 and "data.url" in answer.json()["message"]
    for name in ("Host", "Transfer-Encoding", "Content-Length", "Cookie",
                 "X-Agentqueue-Signature", "X-Forwarded-For"):
        answer = await submit(default, url=url, headers={name: "x"})
        assert answer.status_code == 400, (name, answer.text)
        assert answer.json()["message"].startswith(f"data.headers: {name!r} may not be set")
    answer = await submit(default, url=url, headers={"X-Note": "a\r\nX-Injected: 1"})
    assert answer.status_code == 400 and "no line breaks" in answer.json()["message"]


async def test_a_public_destination_with_custom_headers_is_accepted(default) -> None:
    answer = await submit(default, url="https://hooks.example.com/in",
                          headers={"X-Tenant": "acme", "Authorization": "Bearer t"})
    assert answer.status_code == 201, answer.text


async def test_an_allowed_network_is_delivered_to_and_only_it(allowing, receiver) -> None:
    refused = await submit(allowing, url="http://169.254.169.254/latest/meta-data/")
    assert refused.status_code == 400
    created = await submit(allowing, url=receiver.url, event="ping")
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]

    async def completed() -> dict[str, Any] | None:
        body: dict[str, Any] = (await allowing.get(f"/api/jobs/{job_id}")).json()
        return body if body["status"] in ("completed", "failed") else None

    job = await eventually(completed, what="the webhook to be delivered")
    assert job["status"] == "completed", job
    assert [h["x-agentqueue-event"] for h, _ in receiver.received] == ["ping"]
