"""`LOG_FORMAT=json`: every line of `agentqueue serve` is a JSON object, and a job's lines say
which job, queue and type they are about."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.processes import agentqueue
from tests.support.service import serve_env
from tests.support.waiting import eventually


async def test_json_lines_carry_the_job(tmp_path: Path) -> None:
    env = serve_env(tmp_path / "data", LOG_FORMAT="json", AI_PROVIDER="builtin")
    with agentqueue("serve", env, tmp_path / "serve.log") as service:
        await service.wait_healthy()
        async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
            queued = await http.post("/agent/queue/chat", json={"message": "Calculate 1 + 1"})
            job_id = queued.json()["jobId"]

            async def job_lines() -> list[dict] | None:  # type: ignore[type-arg]
                entries = [json.loads(line) for line in service.log().splitlines()]
                about = [e for e in entries if f"Job {job_id} " in e["message"]]
                done = any(e["message"].startswith(f"Job {job_id} completed successfully")
                           for e in about)
                return about if done else None

            lines = await eventually(job_lines, what="the job's completion line")
    # The worker's own lines and the handler's (seed 000's processor logger) alike.
    assert {e["logger"] for e in lines} >= {"agentqueue.jobs", "AgentQueueProcessor"}
    for entry in lines:
        assert {"time", "level", "logger"} <= set(entry)
        assert (entry["job_id"], entry["queue"], entry["job_type"]) == (
            job_id, "agent-queue", "chat")
