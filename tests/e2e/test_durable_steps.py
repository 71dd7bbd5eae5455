"""Durable steps across a killed worker: a real `agentqueue worker` is SIGKILLed between the
steps of an agent run (after its side-effecting tool ran, while the next tool waits); the job's
re-run replays the provider call and the tool call it finished and carries on, so the stand-in
OpenAI server sees each call once and the tool's side effect happens once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.e2e.test_resilience import env, fake_openai
from tests.support.examples import REPO
from tests.support.fake_openai import FakeOpenAI, completion, function_call, text_completion
from tests.support.processes import agentqueue as agentqueue_process
from tests.support.waiting import eventually

__all__ = ["env", "fake_openai"]  # fixtures shared with the resilience tests
APP = "tests.support.durable_app:app"


async def test_a_worker_killed_between_steps_neither_pays_nor_sends_twice(
    env: dict[str, str], fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch
) -> None:
    env = {**env, "DURABLE_TEST_DIR": str(tmp_path)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    fake_openai.script(
        completion(tool_calls=[function_call("c1", "send_note", {"text": "invoice paid"}),
                               function_call("c2", "wait_for_go", {})],
                   prompt_tokens=10, completion_tokens=5, model="gpt-4o-mini"),
        text_completion("Noted and done.", prompt_tokens=30, completion_tokens=4,
                        model="gpt-4o-mini"),
    )
    from tests.support.durable_app import app  # settings from the env set above

    try:
        job = await app.enqueue("durable-agent", {"message": "Send the note, then wait."})
        with agentqueue_process(f"worker {APP}", env, tmp_path / "worker-1.log",
                                cwd=REPO) as worker:
            await eventually(lambda: _exists(tmp_path / "waiting"), timeout=60,
                             what="the run to reach its second tool")
            worker.signal(signal.SIGKILL)
            worker.wait_exit()
        assert _sent(tmp_path) == ["invoice paid"]
        (tmp_path / "go").touch()
        with agentqueue_process(f"worker {APP}", env, tmp_path / "worker-2.log", cwd=REPO):
            result = await job.wait(timeout=60)
        assert result["response"] == "Noted and done."
        assert result["tools"] == ["send_note", "wait_for_go"]
        assert result["attempt"] == 2  # the killed run spent one attempt
        assert fake_openai.count() == 2  # each provider call once: the first was replayed
        assert _sent(tmp_path) == ["invoice paid"]  # the side effect happened once
        # The re-run was given what the first run finished, not a request made again.
        second = fake_openai.requests[1].body["messages"]
        assert [m["role"] for m in second] == ["user", "assistant", "tool", "tool"]
    finally:
        await app.close()


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)


def _sent(directory: Path) -> list[str]:
    return (directory / "sent.log").read_text().splitlines()
