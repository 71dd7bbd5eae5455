"""Seed 001's WebSocket gateway: Socket.IO namespace `/jobs`, and a plain WebSocket at `/jobs`.

    const socket = io("http://localhost:3000/jobs", {query: {userId}, auth: {token}});
    socket.on("job-update", (job) => …);  socket.emit("subscribe-job", jobId, (ack) => …);

    ws://localhost:3000/jobs?token=<key>   frames {"event": "job-update", "data": {...}}

NestJS gateways speak Socket.IO by default (served here by python-socketio at `/socket.io/`,
namespace `/jobs`); NestJS's plain WebSocket adapter sends `{"event", "data"}` frames, as the
plain socket does. Both tell, for every job the caller may see (own jobs; an org admin's
organization; an admin's all): `job-created`, `job-update`, `job-completed`, `job-failed`, with
the job as `GET /api/jobs/:id` shows it. `subscribe-job` (a job id, or `{"jobId"}`) answers
`{"success": true, "job": …}`, or for a job the caller may not see exactly what `GET` answers
(`{"success": false, "statusCode": 404, "message": "Job … not found"}`), and from then on also
sends that job's streamed text (`job-delta`); `unsubscribe-job` stops it.

Authentication is the HTTP API's: an API key or JWT as the handshake's `auth.token`, the query's
`token`, or an `Authorization: Bearer` header (protected mode: none needed from loopback). A
`userId` in the query narrows what the socket hears to that user's jobs; it never widens it.
Every API process reads the queues' Redis streams itself (`agentqueue.push`), so a socket
hears jobs created through any process and run by any worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs

import socketio
from fastapi import APIRouter, FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from agentqueue.api.auth import Principal, current_principal
from agentqueue.api.errors import ApiError
from agentqueue.api.events import EVENT_NAMES, event_data, event_json, with_query_token
from agentqueue.api.jobs import find_for
from agentqueue.api.push_jobs import JobSnapshots
from agentqueue.config import Settings
from agentqueue.core.errors import JobNotFound
from agentqueue.push import Feed, PushEvent, PushHub

log = logging.getLogger("agentqueue.gateway")
NAMESPACE = "/jobs"
SOCKETIO_PATH = "socket.io"

router = APIRouter()


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def authenticate(scope: Scope, token: str | None) -> Principal:
    """The caller of a socket, as the HTTP API would see a request with this scope (its
    headers, its client address) and `token` as its bearer token; `Refused` if none."""
    headers = list(scope.get("headers", []))
    if token and not any(name == b"authorization" for name, _ in headers):
        headers.append((b"authorization", f"Bearer {token}".encode()))
    request = with_query_token(Request({**scope, "type": "http", "method": "GET",
                                        "headers": headers}))
    try:
        return await current_principal(request)
    except HTTPException as exc:
        raise Refused(exc.status_code, str(exc.detail)) from None


class Watcher:
    """One socket's view: what it hears of the caller's feed, and the jobs it subscribed to
    (their streamed text too)."""

    def __init__(self, app: FastAPI, principal: Principal, only_user: str | None) -> None:
        self.app = app
        self.principal = principal
        self.only_user = only_user
        self.watched: set[str] = set()
        hub: PushHub = app.state.push
        # Narrowed by `only_user` here rather than in the feed: a subscribed job of another
        # user (an admin's) is still heard.
        self.feed: Feed = hub.feed(principal)

    def wants(self, event: PushEvent) -> bool:
        ref = f"{event.queue}:{event.job_id}"
        if ref in self.watched:
            return True
        if event.kind == "delta":
            return False
        return self.only_user is None or event.job.get("userId") == self.only_user

    async def subscribe(self, data: Any) -> dict[str, Any]:
        ref = data.get("jobId") if isinstance(data, dict) else data
        if not isinstance(ref, str | int) or not str(ref):
            return {"success": False, "statusCode": 400,
                    "message": "subscribe-job takes a job id, or {\"jobId\": <id>}"}
        ref = str(ref)
        services = self.app.state.services
        try:
            queue, job_id, _ = await find_for(services, self.principal, ref)
            snapshot = await JobSnapshots(services).snapshot(queue, job_id)
        except (ApiError, JobNotFound) as exc:
            return {"success": False, "statusCode": 404, "message": exc.message}
        if snapshot is None:
            return {"success": False, "statusCode": 404, "message": f"Job {ref} not found"}
        self.watched.add(ref)
        return {"success": True, "job": snapshot.body}

    def unsubscribe(self, data: Any) -> dict[str, Any]:
        ref = data.get("jobId") if isinstance(data, dict) else data
        self.watched.discard(str(ref))
        return {"success": True}


# -- Socket.IO ---------------------------------------------------------------------------------


class SocketGateway:
    """The Socket.IO server of an app (namespace `/jobs`) and its sockets' feeds."""

    def __init__(self, app: FastAPI, allowed_origins: list[str]) -> None:
        self.app = app
        # Same-origin browsers, clients that send no Origin (Node, Python), and those
        # configured (PUSH_ALLOWED_ORIGINS).
        self.server = socketio.AsyncServer(
            async_mode="asgi", cors_allowed_origins=allowed_origins or None, logger=False,
            engineio_logger=False)
        self.watchers: dict[str, Watcher] = {}
        self.pumps: dict[str, asyncio.Task[None]] = {}
        on = self.server.on
        on("connect", namespace=NAMESPACE)(self.connect)
        on("disconnect", namespace=NAMESPACE)(self.disconnect)
        on("subscribe-job", namespace=NAMESPACE)(self.subscribe_job)
        on("unsubscribe-job", namespace=NAMESPACE)(self.unsubscribe_job)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        scope: Scope = environ["asgi.scope"]
        query = parse_qs(scope.get("query_string", b"").decode())
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = await authenticate(scope, token)
        except Refused as exc:
            # The client's connect_error: `err.message`, and `err.data` as the HTTP API's body.
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"statusCode": exc.status, "message": exc.message}) from None
        watcher = Watcher(self.app, principal, (query.get("userId") or [None])[0])
        await watcher.feed.__aenter__()  # from the moment it connects: nothing after is missed
        self.watchers[sid] = watcher
        self.pumps[sid] = asyncio.create_task(self._pump(sid, watcher))

    async def _pump(self, sid: str, watcher: Watcher) -> None:
        try:
            while (event := await watcher.feed.next()) is not None:
                if watcher.wants(event):
                    await self.server.emit(EVENT_NAMES[event.kind], event_data(event), to=sid,
                                           namespace=NAMESPACE)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("push to a Socket.IO client failed")
            await self.server.disconnect(sid, namespace=NAMESPACE)
        finally:
            await watcher.feed.__aexit__(None, None, None)

    async def disconnect(self, sid: str, *_: Any) -> None:
        self.watchers.pop(sid, None)
        task = self.pumps.pop(sid, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def subscribe_job(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self.watchers[sid].subscribe(data)

    async def unsubscribe_job(self, sid: str, data: Any = None) -> dict[str, Any]:
        return self.watchers[sid].unsubscribe(data)

    async def close(self) -> None:
        for sid in list(self.pumps):
            await self.disconnect(sid)


class SocketIOMount:
    """`/socket.io/` to the Socket.IO server, everything else (lifespan too) to the app."""

    def __init__(self, app: ASGIApp, server: socketio.AsyncServer) -> None:
        self.app = app
        self.socketio = socketio.ASGIApp(server, socketio_path=SOCKETIO_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"].startswith(
                f"/{SOCKETIO_PATH}/"):
            await self.socketio(scope, receive, send)
        else:
            await self.app(scope, receive, send)


# -- plain WebSocket (NestJS's WsAdapter frames) -----------------------------------------------


def _same_origin(websocket: WebSocket, allowed: list[str]) -> bool:
    """A browser's page may open a socket to any host: only its own origin (or one configured)
    may use this one's credentials (protected mode, above all). Clients that send no Origin
    (not browsers) are not affected."""
    origin = websocket.headers.get("origin")
    if origin is None or "*" in allowed or origin in allowed:
        return True
    host = websocket.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


@router.websocket("/jobs")
async def plain_socket(websocket: WebSocket) -> None:
    app: FastAPI = websocket.app
    if not _same_origin(websocket, app.state.push_origins):
        await websocket.close(code=1008, reason="origin not allowed")
        return
    try:
        principal = await authenticate(websocket.scope, websocket.query_params.get("token"))
    except Refused as exc:
        await websocket.close(code=1008, reason=exc.message[:120])
        return
    await websocket.accept()
    watcher = Watcher(app, principal, websocket.query_params.get("userId"))

    async def send(event: str, data: Any) -> None:
        await websocket.send_text(json.dumps({"event": event, "data": data},
                                             separators=(",", ":")))

    async def push(event: PushEvent) -> None:
        # The job's JSON is encoded once for every subscriber: spliced into the frame.
        name = json.dumps(EVENT_NAMES[event.kind])
        await websocket.send_text(f'{{"event":{name},"data":{event_json(event)}}}')

    async def pump() -> None:
        try:
            while (event := await watcher.feed.next()) is not None:
                if watcher.wants(event):
                    await push(event)
        except (asyncio.CancelledError, WebSocketDisconnect):
            raise
        except Exception:
            log.exception("push to a WebSocket client failed")
            with contextlib.suppress(Exception):
                await websocket.close(code=1011)

    async with watcher.feed:  # from the moment it connects: nothing after is missed
        pumping = asyncio.create_task(pump())
        try:
            while True:
                raw = await websocket.receive_text()
                try:
                    message = json.loads(raw)
                    name, data = message["event"], message.get("data")
                except (ValueError, KeyError, TypeError):
                    await send("error", {"statusCode": 400,
                                         "message": 'frames are {"event": ..., "data": ...}'})
                    continue
                if name == "subscribe-job":
                    await send(name, await watcher.subscribe(data))
                elif name == "unsubscribe-job":
                    await send(name, watcher.unsubscribe(data))
                else:
                    await send("error", {"statusCode": 400, "message": (
                        f"unknown event {name!r}: this socket takes subscribe-job and "
                        "unsubscribe-job")})
        except WebSocketDisconnect:
            pass
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumping


# -- the gateway's own port (GATEWAY_PORT) -----------------------------------------------------


class OwnPort:
    """A second uvicorn server of the same app on another port, inside the first's lifespan
    (the app's state is shared; the main server handles signals and the lifespan)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, lifespan="off",
                                                    log_config=None))
        # The main server catches SIGTERM/SIGINT; this one is stopped by its lifespan.
        self.server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign, assignment]
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()  # the port is taken: say so
                raise RuntimeError(f"the gateway could not serve port {self.server.config.port}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


async def serve_gateway_port(app: FastAPI, settings: Settings) -> OwnPort | None:
    """With GATEWAY_PORT set (and not PORT itself), the app on that port too."""
    port = settings.gateway_port
    if port is None or port == settings.port:
        return None
    own = OwnPort(app, settings.host, port)
    await own.start()
    log.info("WebSocket gateway also on port %d", port)
    return own
