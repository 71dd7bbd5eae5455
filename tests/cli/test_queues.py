"""`agentqueue queues [list] | pause | resume | clean` in both modes, against a real service."""

from __future__ import annotations

from typing import Any

from tests.cli.conftest import Run, one_line_error
from tests.cli.ops_app import SPARE


def spare(cli: Run) -> dict[str, Any]:
    found = {q["queue"]: q for q in cli("queues", "--json").json()}
    return dict(found[SPARE])


def test_counts_pause_resume_and_clean(cli: Run) -> None:
    assert cli("jobs", "submit", "noop", "--wait").code == 0
    before = spare(cli)
    assert before["completed"] >= 1 and before["paused"] is False
    table = cli("queues", "list")
    assert table.code == 0 and SPARE in table.stdout

    assert cli("queues", "pause", SPARE, "--json").json() == {"queue": SPARE, "paused": True}
    assert spare(cli)["paused"] is True
    queued = cli("jobs", "submit", "noop", "--json").json()
    assert spare(cli)["waiting"] >= 1  # paused: no worker takes it
    assert cli("jobs", "show", queued["id"], "--json").json()["status"] == "pending"
    assert cli("queues", "resume", SPARE).stdout.strip() == f"Resumed {SPARE}."
    assert cli("jobs", "wait", queued["id"], "--json").json()["status"] == "completed"

    cleaned = cli("queues", "clean", SPARE, "--older-than", "0", "--yes", "--json").json()
    assert cleaned["removed"] >= 2
    assert spare(cli)["completed"] == 0
    # Its record stays: the job is still there to look at.
    assert cli("jobs", "show", queued["id"], "--json").json()["status"] == "completed"


def test_clean_asks_for_confirmation_and_checks_its_input(cli: Run, mode: str) -> None:
    assert "--yes" in one_line_error(cli("queues", "clean", SPARE))
    assert "duration" in one_line_error(cli("queues", "clean", SPARE, "--older-than", "soon",
                                            "--yes"))
    assert "unknown queue" in one_line_error(cli("queues", "pause", "no-such-queue"))
    if mode == "remote":
        assert "direct mode" in one_line_error(
            cli("queues", "clean", SPARE, "--state", "waiting", "--yes"))
    else:
        cli("queues", "pause", SPARE)
        queued = cli("jobs", "submit", "noop", "--json").json()
        cleaned = cli("queues", "clean", SPARE, "--state", "waiting", "--older-than", "0",
                      "--yes", "--json").json()
        cli("queues", "resume", SPARE)
        assert queued["id"].split(":", 1)[1] in cleaned["ids"]
        assert cli("jobs", "show", queued["id"], "--json").json()["status"] == "cancelled"


def test_queue_actions_need_an_admin_key(ops_service: Any, cli: Run, mode: str) -> None:
    if mode == "direct":
        return  # whoever reaches Redis and the records is an admin
    refused = one_line_error(cli("queues", "pause", SPARE, key=ops_service.user_key))
    assert "403" in refused and "admin" in refused
