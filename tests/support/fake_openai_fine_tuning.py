"""A local HTTP server speaking OpenAI's files and fine-tuning wire protocol, for tests (the
stand-in the project allows for a remote paid API).

``POST /v1/files`` (multipart, as the SDK uploads) keeps the file; ``POST /v1/fine_tuning/jobs``
creates a job in ``validating_files``; each ``GET /v1/fine_tuning/jobs/{id}`` moves it one step
along ``statuses`` (adding an event per step, and a metrics event per training step while
``running``), so a follower sees the job progress as it polls, whatever its pace. With
``hold_running`` the job stays ``running`` until ``POST …/cancel``; with ``failure`` it ends
``failed`` with that message; ``unavailable_gets`` answers that many job reads with 503.
``GET …/events`` lists the events newest first, as OpenAI does. Every request is recorded
(method, path, headers).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

STATUSES = ("validating_files", "queued", "running", "running", "running", "succeeded")


@dataclass
class FakeJob:
    id: str
    model: str
    training_file: str
    suffix: str | None
    body: dict[str, Any]
    status: str = "validating_files"
    step: int = 0  # index into statuses
    training_step: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


class FakeFineTuning:
    def __init__(self, *, statuses: tuple[str, ...] = STATUSES, total_steps: int = 3,
                 hold_running: bool = False, failure: str | None = None) -> None:
        self.statuses = statuses
        self.total_steps = total_steps
        self.hold_running = hold_running
        self.failure = failure  # the error message of a job that ends "failed"
        # This many `GET …/jobs/{id}` are answered 503 (asking to retry at once) first: more
        # than the SDK's own retries makes the caller's attempt fail.
        self.unavailable_gets = 0
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[Recorded] = []
        self.cancelled = threading.Event()
        self.running_seen = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @contextmanager
    def running(self) -> Iterator[Self]:
        thread = threading.Thread(target=self._server.serve_forever,
                                  kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()

    def uploaded_examples(self) -> list[dict[str, Any]]:
        """The examples of every uploaded file, in upload order."""
        with self._lock:
            return [json.loads(line) for f in self.files.values()
                    for line in f["content"].decode().splitlines() if line.strip()]

    def paths(self, method: str | None = None) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests if method in (None, r.method)]

    # -- the protocol ----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        raw = handler.rfile.read(length) if length else b""
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(Recorded(method, handler.path,
                                          {k.lower(): v for k, v in handler.headers.items()}))
            headers: dict[str, str] = {}
            if method == "GET" and self.unavailable_gets and path.count("/") == 4:
                self.unavailable_gets -= 1
                status, body = 503, {"error": {"message": "overloaded, try again"}}
                headers["retry-after-ms"] = "1"
            else:
                status, body = self._route(method, path, handler.headers.get("Content-Type", ""),
                                           raw)
        payload = json.dumps(body).encode()
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(self, method: str, path: str, content_type: str,
               raw: bytes) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/files":
            return self._upload(content_type, raw)
        if parts[:3] == ["v1", "fine_tuning", "jobs"]:
            if method == "POST" and len(parts) == 3:
                return self._create(json.loads(raw or b"{}"))
            job = self.jobs.get(parts[3]) if len(parts) > 3 else None
            if job is None:
                return 404, {"error": {"message": "no such fine-tuning job"}}
            if method == "GET" and len(parts) == 4:
                self._advance(job)
                return 200, self._job_body(job)
            if method == "GET" and parts[4:] == ["events"]:
                return 200, {"object": "list", "data": list(reversed(job.events)),
                             "has_more": False}
            if method == "POST" and parts[4:] == ["cancel"]:
                job.status = "cancelled"
                self._event(job, "Fine-tuning job cancelled")
                self.cancelled.set()
                return 200, self._job_body(job)
        return 404, {"error": {"message": f"no route {method} {path}"}}

    def _upload(self, content_type: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True))
        if "file" not in fields or fields.get("purpose", (None, b""))[1] != b"fine-tune":
            return 400, {"error": {"message": "a file and purpose=fine-tune are required"}}
        filename, content = fields["file"]
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = {"filename": filename, "content": content}
        return 200, {"id": file_id, "object": "file", "bytes": len(content),
                     "created_at": int(time.time()), "filename": filename,
                     "purpose": "fine-tune", "status": "processed"}

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("training_file") not in self.files:
            return 400, {"error": {"message": "training_file not found", "param": "training_file"}}
        job = FakeJob(id=f"ftjob-{len(self.jobs) + 1}", model=body["model"],
                      training_file=body["training_file"], suffix=body.get("suffix"), body=body)
        self.jobs[job.id] = job
        self._event(job, f"Created fine-tuning job: {job.id}")
        return 200, self._job_body(job)

    def _advance(self, job: FakeJob) -> None:
        if job.status in ("succeeded", "failed", "cancelled"):
            return
        if job.status == "running" and self.hold_running:
            self.running_seen.set()
            return
        if job.status == "running" and job.training_step < self.total_steps:
            job.training_step += 1
            self._event(job, f"Step {job.training_step}/{self.total_steps}: training loss=0.5",
                        kind="metrics", data={"step": job.training_step,
                                              "total_steps": self.total_steps,
                                              "train_loss": 0.5})
            return
        job.step = min(job.step + 1, len(self.statuses) - 1)
        status = self.statuses[job.step]
        if status == "succeeded" and self.failure is not None:
            status = "failed"
        if status != job.status:
            job.status = status
            self._event(job, {"queued": "Fine-tuning job queued",
                              "running": "Fine-tuning job started",
                              "succeeded": "The job has successfully completed",
                              "failed": f"The job failed: {self.failure}"}.get(status, status))

    def _event(self, job: FakeJob, message: str, *, kind: str = "message",
               data: dict[str, Any] | None = None) -> None:
        job.events.append({"id": f"ftevent-{job.id}-{len(job.events) + 1}",
                           "object": "fine_tuning.job.event", "created_at": int(time.time()),
                           "level": "info", "message": message, "type": kind,
                           "data": data or {}})

    def _job_body(self, job: FakeJob) -> dict[str, Any]:
        done = job.status == "succeeded"
        suffix = f":{job.suffix}" if job.suffix else ""
        return {
            "id": job.id, "object": "fine_tuning.job", "created_at": int(time.time()),
            "model": job.model, "status": job.status, "training_file": job.training_file,
            "validation_file": None, "organization_id": "org-fake", "result_files": [],
            "hyperparameters": {"n_epochs": 3, "batch_size": 1,
                                "learning_rate_multiplier": 1.0},
            "seed": job.body.get("seed") or 42,
            "fine_tuned_model": f"ft:{job.model}:org-fake{suffix}:{job.id}" if done else None,
            "finished_at": int(time.time()) if done else None,
            "trained_tokens": 1234 if done else None,
            "error": ({"code": "invalid_training_file", "message": self.failure, "param": None}
                      if job.status == "failed" else None),
        }
