"""Listings, counts and usage show a caller what `can_see` lets it see, over real records
(SQLite): a principal without an organization matches only jobs without one."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from agentqueue.api.auth import Principal, Role
from agentqueue.core.errors import JobNotFound
from agentqueue.core.lookup import find_job, scope_of
from agentqueue.engine.queue import JobQueue
from agentqueue.records.store import Records
from agentqueue.records.views import NO_OWNER, JobOwner

OWNERS = {
    "acme": JobOwner(user_id="alice", org_id="acme"),
    "globex": JobOwner(user_id="alice", org_id="globex"),
    "none": JobOwner(user_id="alice"),
    "bob": JobOwner(user_id="bob", org_id="acme"),
    # added by a plain BullMQ producer: every admin's, nobody else's
    "nobody": NO_OWNER,
}


@pytest.fixture
async def records(records: Records) -> Records:
    """The shared records database (tests/conftest.py), with OWNERS' jobs completed."""
    for job_id, owner in OWNERS.items():
        await records.create_job(queue="q", job_id=job_id, type="t", data={}, owner=owner)
        await records.mark("q", job_id, "completed", usage=(10, 5, 0.01))
    return records


def who(role: Role = "user", org: str | None = None, user: str = "alice") -> Principal:
    return Principal(user_id=user, org_id=org, role=role, via="jwt")


@pytest.mark.parametrize(
    ("principal", "visible"),
    [
        # a JWT with only `sub`: alice's jobs without an organization, not those in any org
        (who(), {"none"}),
        (who(role="org_admin"), {"none"}),
        (who(org="acme"), {"acme"}),
        (who(org="globex"), {"globex"}),
        (who(role="org_admin", org="acme", user="dana"), {"acme", "bob"}),
        (who(role="admin"), set(OWNERS)),
    ],
)
async def test_listings_counts_and_usage_match_can_see(
    records: Records, principal: Principal, visible: set[str]
) -> None:
    assert {j for j, o in OWNERS.items() if principal.can_see(o.user_id, o.org_id)} == visible

    scope = scope_of(principal)
    jobs, total = await records.list_jobs(limit=100, **scope)
    assert {j.job_id for j in jobs} == visible and total == len(visible)
    assert (await records.counts(**scope))["completed"] == len(visible)
    usage = await records.usage(**scope)
    assert sum(row.jobs for row in usage) == len(visible)
    assert sum(row.input_tokens for row in usage) == 10 * len(visible)


@dataclass
class Stores:
    records: Records
    queues: dict[str, JobQueue] = field(default_factory=dict)  # Redis dropped every job


@pytest.mark.parametrize("principal", [who(), who(org="acme"), who(role="admin")])
async def test_find_job_finds_only_what_the_viewer_may_see(
    records: Records, principal: Principal
) -> None:
    for job_id, owner in OWNERS.items():
        if principal.can_see(owner.user_id, owner.org_id):
            found = await find_job(Stores(records), principal, "q", job_id)
            assert found.record is not None and found.state == "completed"
        else:  # someone else's job reads as no job at all
            with pytest.raises(JobNotFound, match=f"^Job {job_id} not found$"):
                await find_job(Stores(records), principal, "q", job_id)
    with pytest.raises(JobNotFound, match="^Job 404 not found$"):
        await find_job(Stores(records), principal, "q", "404")
