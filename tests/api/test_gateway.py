"""Seed 001's WebSocket gateway over a real `agentqueue serve`: a real Node `socket.io-client`
(from the npm registry) follows a job from creation to completion on namespace `/jobs`; a
Python client does the same over the plain WebSocket `/jobs`; a second user's socket hears
nothing of the first user's jobs, whatever `userId` it names, and subscribing to someone else's
job is answered as `GET` answers it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.support.push import ANSWER, PushService, push_service
from tests.support.service import delete_service_keys
from tests.support.waiting import eventually

NODE_DIR = Path(__file__).parents[1] / "e2e" / "node-socketio"
needs_node = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="needs node and npm")


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PushService]:
    async with push_service(tmp_path_factory.mktemp("data"),
                            tmp_path_factory.mktemp("logs") / "serve.log") as svc:
        svc.fake.pace = 0.005
        yield svc
    await delete_service_keys(svc.env)


@pytest.fixture(scope="module")
def socketio_client() -> Path:
    if not (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"],
                       cwd=NODE_DIR, check=True, timeout=600, capture_output=True)
    return NODE_DIR / "follow.mjs"


class NodeSocket:
    """`follow.mjs`: a socket.io-client connected to the gateway, one JSON line per event."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.heard: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        assert line, "the socket.io client exited"
        message: dict[str, Any] = json.loads(line)
        self.heard.append(message)
        return message

    async def until(self, event: str, job: str | None = None) -> dict[str, Any]:
        while True:
            message = await self.next()
            data = message["data"]
            if message["event"] == event and (
                    job is None or (isinstance(data, dict) and data.get("id") == job)):
                return message

    async def command(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        await self.proc.stdin.drain()


async def node_socket(script: Path, base_url: str, user: str, token: str | None) -> NodeSocket:
    proc = await asyncio.create_subprocess_exec(
        "node", str(script), base_url, user, *([token] if token else []),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    return NodeSocket(proc)


async def close(socket: NodeSocket) -> None:
    if socket.proc.returncode is None:
        await socket.command("quit")
        await asyncio.wait_for(socket.proc.wait(), 30)


@needs_node
async def test_a_socketio_client_follows_a_job_from_creation_to_completion(
        service: PushService, socketio_client: Path) -> None:
    socket = await node_socket(socketio_client, service.proc.base_url, "alice",
                               service.keys["alice"])
    try:
        await socket.until("connected")
        service.fake.hold()
        job = await service.create("alice")
        created = await socket.until("job-created", job)
        assert created["data"]["status"] in ("pending", "active")  # as it is when told
        assert created["data"]["userId"] == "alice"
        await socket.command(f"subscribe {job}")
        ack = await socket.until("ack")
        assert ack["data"]["success"] is True and ack["data"]["job"]["id"] == job
        service.fake.release()
        done = await socket.until("job-completed", job)
    finally:
        await close(socket)
    assert done["data"]["status"] == "completed"
    assert done["data"]["result"]["content"] == ANSWER
    about_job = [m for m in socket.heard
                 if isinstance(m["data"], dict) and m["data"].get("id") == job]
    kinds = [m["event"] for m in about_job]
    assert "job-update" in kinds and kinds[-1] == "job-completed"
    assert any(m["data"].get("status") == "active" for m in about_job)
    assert "".join(m["data"]["text"] for m in about_job if m["event"] == "job-delta") == ANSWER


@needs_node
async def test_a_second_users_socket_hears_nothing_of_the_first_users_jobs(
        service: PushService, socketio_client: Path) -> None:
    # Bob names alice in the URL: it narrows what a socket hears, never widens it.
    bob = await node_socket(socketio_client, service.proc.base_url, "alice",
                            service.keys["bob"])
    try:
        await bob.until("connected")
        alices = await service.create("alice", "alice's secret")
        await bob.command(f"subscribe {alices}")
        refused = (await bob.until("ack"))["data"]
        async with service.http("bob") as http:
            get = (await http.get(f"/api/jobs/{alices}")).json()
        assert refused == {"success": False, "statusCode": 404, "message": get["message"]}
        async with service.http("alice") as http:
            async def finished() -> bool:
                return (await http.get(f"/api/jobs/{alices}")).json()["status"] == "completed"
            await eventually(finished, what="alice's job completed")
        # Bob's own job, heard once he subscribes to it, closes the window.
        bobs = await service.create("bob")
        await bob.command(f"subscribe {bobs}")
        await bob.until("job-completed", bobs)
    finally:
        await close(bob)
    assert alices not in json.dumps(bob.heard)
    assert "alice's secret" not in json.dumps(bob.heard)


@needs_node
async def test_a_socket_without_valid_credentials_is_refused(
        service: PushService, socketio_client: Path) -> None:
    socket = await node_socket(socketio_client, service.proc.base_url, "alice", "aq_bogus")
    refused = await socket.until("connect_error")
    assert refused["data"]["statusCode"] == 401
    assert await asyncio.wait_for(socket.proc.wait(), 30) == 2


async def test_a_plain_websocket_client_follows_a_job_in_nestjs_frames(
        service: PushService) -> None:
    url = service.proc.base_url.replace("http://", "ws://") + "/jobs"
    async with websockets.connect(f"{url}?token={service.keys['alice']}") as ws:
        service.fake.hold()
        job = await service.create("alice")
        await ws.send(json.dumps({"event": "subscribe-job", "data": {"jobId": job}}))
        frames: list[dict[str, Any]] = []
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
            frames.append(frame)
            if frame["event"] == "subscribe-job":
                assert frame["data"]["success"] is True
                service.fake.release()
            if frame["event"] == "job-completed" and frame["data"]["id"] == job:
                break
    kinds = [f["event"] for f in frames]
    assert kinds[0] == "job-created" and "job-update" in kinds
    assert frames[-1]["data"]["result"]["content"] == ANSWER
    assert "".join(f["data"]["text"] for f in frames if f["event"] == "job-delta") == ANSWER


async def test_a_plain_websocket_refuses_bad_credentials_and_bad_frames(
        service: PushService) -> None:
    url = service.proc.base_url.replace("http://", "ws://") + "/jobs"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{url}?token=aq_bogus"):
            pass
    assert refused.value.response.status_code == 403
    async with websockets.connect(url, additional_headers={
            "Authorization": f"Bearer {service.keys['bob']}"}) as ws:
        await ws.send("not json")
        error = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert error["event"] == "error" and error["data"]["statusCode"] == 400
