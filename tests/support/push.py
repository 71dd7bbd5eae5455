"""Push clients for tests: an SSE reader (httpx-sse), and one `agentqueue serve` with a local
OpenAI stand-in that streams its answers, API keys for two users and an admin."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from tests.support.fake_openai import FakeOpenAI, text_completion
from tests.support.processes import AgentqueueProcess, agentqueue
from tests.support.service import create_key, serve_env

ANSWER = "Streamed answers arrive word by word, in order, and nothing is lost on the way."


@dataclass(frozen=True)
class Pushed:
    event: str
    id: str
    data: Any


@dataclass
class PushService:
    proc: AgentqueueProcess
    keys: dict[str, str]
    env: dict[str, str]
    fake: FakeOpenAI

    def http(self, who: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return httpx.AsyncClient(base_url=self.proc.base_url, headers=headers, timeout=30)

    async def create(self, who: str, message: str = "tell me") -> str:
        async with self.http(who) as http:
            created = await http.post("/api/jobs", json={
                "type": "generate-completion", "data": {"message": message}})
        assert created.status_code == 201, created.text
        job_id: str = created.json()["id"]
        return job_id


def answering_fake(answer: str = ANSWER) -> FakeOpenAI:
    return FakeOpenAI(reply=lambda _: text_completion(answer))


def push_env(data_dir: Path, fake: FakeOpenAI, **settings: str) -> dict[str, str]:
    return serve_env(data_dir, OPENAI_API_KEY="sk-test-not-a-real-key",
                     OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="fake-model",
                     AI_PROVIDER="openai", **settings)


def user_keys(env: dict[str, str]) -> dict[str, str]:
    """Keys of two users of one organization and of an admin."""
    return {
        "alice": create_key(env, "--user", "alice", "--org", "acme"),
        "bob": create_key(env, "--user", "bob", "--org", "acme"),
        "root": create_key(env, "--user", "root", "--org", "ops", "--admin"),
    }


@asynccontextmanager
async def push_service(data_dir: Path, log: Path, **settings: str
                       ) -> AsyncIterator[PushService]:
    with answering_fake().running() as fake:
        env = push_env(data_dir, fake, **settings)
        keys = user_keys(env)
        with agentqueue("serve", env, log) as proc:
            await proc.wait_healthy()
            yield PushService(proc, keys, env, fake)


@asynccontextmanager
async def sse(http: httpx.AsyncClient, path: str, *, last_event_id: str | None = None,
              params: dict[str, str] | None = None) -> AsyncIterator[AsyncIterator[Pushed]]:
    """The events of an SSE stream, as they come."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with aconnect_sse(http, "GET", path, headers=headers, params=params,
                            timeout=httpx.Timeout(30, read=60)) as source:
        source.response.raise_for_status()

        async def events() -> AsyncIterator[Pushed]:
            async for message in source.aiter_sse():
                yield Pushed(message.event, message.id, json.loads(message.data))

        yield events()


def deltas_text(events: list[Pushed]) -> str:
    return "".join(e.data["text"] for e in events if e.event == "job-delta")
