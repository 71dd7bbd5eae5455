"""The Python API's dead letters (`App.dead_letters`, `App.replay`, `App.replay_dead_letters`):
the core's (`agentqueue.core.dead_letters`) as the App's own code sees them, every owner's.

Python code holding the App is the operator's: it sees every owner's dead letters, as an admin
does over HTTP (filter by `owner` to see one's)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agentqueue.core import dead_letters as core
from agentqueue.core.dead_letters import DeadLetter, ReplayOutcome
from agentqueue.errors import UnknownJobType

if TYPE_CHECKING:
    from agentqueue.app import App
    from agentqueue.backend import Backend


@dataclass(frozen=True)
class _Operator:
    """The App's code: sees every job, as an admin."""

    user_id: str = ""
    org_id: str | None = None
    is_admin: bool = True
    is_org_admin: bool = False

    def can_see(self, owner_user_id: str, owner_org_id: str | None) -> bool:
        return True


OPERATOR = _Operator()


async def _opened(app: App) -> Backend:
    """The backend with every queue the App knows opened (a dead letter's stack is read from
    its queue)."""
    from agentqueue.services import queue_names

    backend = await app._backend()
    for name in queue_names(app.settings, app.types()):
        backend.queue(name)
    return backend


async def list_letters(app: App, queue: str | None, job_type: str | None, limit: int,
                       offset: int) -> list[DeadLetter]:
    backend = await _opened(app)
    if queue is not None:
        backend.queue(queue)
    letters, _ = await core.list_dead_letters(backend, OPERATOR, queue=queue, job_type=job_type,
                                              limit=limit, offset=offset)
    return letters


def _checked(app: App, type_name: str, data: BaseModel | dict[str, Any] | None) -> Any:
    if data is None:
        return None
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", by_alias=True)
    definition = app.types().get(type_name)
    if definition is None:
        raise UnknownJobType(f"unknown job type {type_name!r}: cannot check the new data")
    return definition.validate(data, app._validation_context()).model_dump(mode="json",
                                                                           by_alias=True)


async def replay_one(app: App, queue: str, job_id: str,
                     data: BaseModel | dict[str, Any] | None) -> None:
    backend = await _opened(app)
    backend.queue(queue)
    letter = await core.get_dead_letter(backend, OPERATOR, queue, job_id)
    await core.replay(backend, OPERATOR, queue, job_id, data=_checked(app, letter.type, data))


async def replay_many(app: App, jobs: Iterable[tuple[str, str]] | None, queue: str | None,
                      job_type: str | None, data: BaseModel | dict[str, Any] | None,
                      limit: int) -> list[ReplayOutcome]:
    backend = await _opened(app)
    if jobs is None:
        letters = await list_letters(app, queue, job_type, limit, 0)
        refs = [(x.queue, x.job_id) for x in letters]
        types = {x.ref: x.type for x in letters}
    else:
        refs = list(jobs)
        types = {}
        for q, job_id in refs:
            backend.queue(q)
            record = await backend.records.get(q, job_id)
            if record is not None:
                types[f"{q}:{job_id}"] = record.type
    outcomes = []
    for q, job_id in refs:
        ref = f"{q}:{job_id}"
        checked = _checked(app, types[ref], data) if ref in types else None
        outcomes.extend(await core.replay_many(backend, OPERATOR, [(q, job_id)], data=checked))
    return outcomes
