"""Files for data conversion (seed 001's `data-conversion` jobs): upload one, look it up,
delete it, and download a finished job's output. Every file is its uploader's (user,
organization); someone else's file id, or the output of a job the caller cannot see, answers
404 as if absent.

An upload is the request body itself (any content type), streamed to disk: a 1 GB file never
sits in memory, and no multipart parser is needed (`curl --data-binary @file.csv`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from agentqueue.api.access import Caller, ServicesDep
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError
from agentqueue.api.jobs import find_for
from agentqueue.api.openapi import error_responses
from agentqueue.conversion.files import StoredFile
from agentqueue.conversion.formats import CONTENT_TYPES, FORMATS, format_of
from agentqueue.core import states
from agentqueue.handlers.data_conversion import DATA_CONVERSION, file_store, owner_pair
from agentqueue.records.views import JobOwner

router = APIRouter(tags=["background jobs (seed 001)"], route_class=EdgeRoute)
UPLOAD_PATH = "/api/files"
WRITE_CHUNK = 1024 * 1024


class FileOut(BaseModel):
    id: str
    name: str
    bytes: int
    format: str | None  # what its name says, as data-conversion reads it
    createdAt: str


def _out(found: StoredFile) -> FileOut:
    return FileOut(id=found.id, name=found.name, bytes=found.bytes,
                   format=format_of(found.name), createdAt=found.created_at)


def _owner(caller: Caller) -> tuple[str, str | None]:
    return owner_pair(JobOwner(user_id=caller.user_id, org_id=caller.org_id))


_BINARY_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post(UPLOAD_PATH, status_code=201, response_model=FileOut,
             responses=error_responses(413), openapi_extra=_BINARY_BODY)
async def upload(
    request: Request, services: ServicesDep, caller: Caller,
    name: Annotated[str, Query(min_length=1, max_length=255, pattern=r"^[^/\\]+$",
                               description="the file's name; its extension (.csv, .json, "
                                           ".jsonl) tells data-conversion its format")],
) -> FileOut:
    """Upload a file (the request body, up to DATA_CONVERSION_MAX_UPLOAD_BYTES) for
    data-conversion jobs: `{"fileId": id}` in their data."""
    store = file_store(services.settings)
    owner = _owner(caller)
    file_id, partial = await asyncio.to_thread(store.new_upload, owner)
    out = await asyncio.to_thread(open, partial, "wb")
    try:
        try:
            pending = bytearray()
            async for chunk in request.stream():
                pending += chunk
                if len(pending) >= WRITE_CHUNK:
                    await asyncio.to_thread(out.write, bytes(pending))
                    pending.clear()
            await asyncio.to_thread(out.write, bytes(pending))
            await asyncio.to_thread(os.fsync, out.fileno())
        finally:
            out.close()
        return _out(await asyncio.to_thread(store.commit, owner, file_id, name))
    except ClientDisconnect:
        raise ApiError(400, "body: the upload ended early") from None
    finally:
        partial.unlink(missing_ok=True)


@router.get(UPLOAD_PATH + "/{file_id}", response_model=FileOut)
async def get_file(file_id: str, services: ServicesDep, caller: Caller) -> FileOut:
    found = file_store(services.settings).upload(_owner(caller), file_id)
    if found is None:
        raise ApiError(404, f"File {file_id} not found")
    return _out(found)


@router.delete(UPLOAD_PATH + "/{file_id}", status_code=204)
async def delete_file(file_id: str, services: ServicesDep, caller: Caller) -> None:
    if not file_store(services.settings).delete_upload(_owner(caller), file_id):
        raise ApiError(404, f"File {file_id} not found")


@router.get("/api/jobs/{job_ref}/output", response_class=FileResponse,
            responses={**error_responses(409), 200: {"content": {
                CONTENT_TYPES[f].split(";")[0]: {} for f in FORMATS}}})
async def job_output(job_ref: str, services: ServicesDep, caller: Caller) -> FileResponse:
    """The output file of a finished data-conversion job (the caller's, as the job is)."""
    queue, job_id, found = await find_for(services, caller, job_ref)
    record = found.record
    assert record is not None
    if record.type != DATA_CONVERSION:
        raise ApiError(404, f"Job {job_ref} has no output file (it is a {record.type} job)")
    status = states.of_record(record.status).seed001
    result = record.result if isinstance(record.result, dict) else {}
    output = result.get("output")
    if status != "completed" or not isinstance(output, dict):
        raise ApiError(409, f"Job {job_ref} has no output yet: it is {status}")
    fmt = result.get("outputFormat")
    if fmt not in FORMATS:
        raise ApiError(404, f"Job {job_ref} has no output file")
    path = file_store(services.settings).output_path(
        owner_pair(JobOwner(user_id=record.user_id, org_id=record.org_id)), queue, job_id, fmt)
    if not path.is_file():
        hours = services.settings.data_conversion_retention_hours
        raise ApiError(404, f"Job {job_ref}'s output is gone (kept {hours:g} h)")
    return FileResponse(path, media_type=CONTENT_TYPES[fmt],
                        filename=str(output.get("name") or path.name))
