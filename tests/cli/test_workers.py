"""`agentqueue workers`: the service's worker process, per queue (and, directly, its pid)."""

from __future__ import annotations

from tests.cli.conftest import Run, Service
from tests.cli.ops_app import QUEUE


def test_the_services_worker_is_listed(ops_service: Service, cli: Run, mode: str) -> None:
    found = cli("workers", "--json").json()
    assert found["queues"][QUEUE] == 1
    if mode == "direct":
        [process] = [w for w in found["workers"] if QUEUE in w["queues"]]
        assert process["pid"] == ops_service.process.proc.pid
    table = cli("workers")
    assert table.code == 0 and QUEUE in table.stdout
