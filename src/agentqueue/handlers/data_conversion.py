"""Seed 001's `data-conversion` job type: CSV ↔ JSON ↔ JSONL, streaming, from an uploaded file
(`fileId`, see `POST /api/files`) or a file under the operator's DATA_CONVERSION_ROOTS
(`filePath`, seed 001's field), to an output file its owner downloads
(`GET /api/jobs/{id}/output`). Defined on its own registry as a user defines a job type."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from agentqueue.config import Settings
from agentqueue.context import Context
from agentqueue.conversion import excel
from agentqueue.conversion.convert import BadRowError, Conversion, OnBadRow, Options
from agentqueue.conversion.files import FILE_ID, FileStore, Owner
from agentqueue.conversion.formats import CONTENT_TYPES, Format, InputError, format_of
from agentqueue.conversion.paths import PathRefused, parse_roots, resolve
from agentqueue.engine.worker import PermanentJobError
from agentqueue.handlers.builtin import jobs_queue
from agentqueue.records.views import JobOwner
from agentqueue.registry import JobRegistry

DATA_CONVERSION = "data-conversion"
# Rows per step in the worker thread; progress is reported between steps, at most every
# PROGRESS_EVERY_S seconds (and at the end).
STEP_ROWS = 20_000
PROGRESS_EVERY_S = 0.5
Delimiter = str

T = TypeVar("T")

jobs = JobRegistry()


def file_store(settings: Settings) -> FileStore:
    return FileStore(settings.data_dir,
                     timedelta(hours=settings.data_conversion_retention_hours))


def owner_pair(owner: JobOwner | None) -> Owner:
    return (owner.user_id, owner.org_id) if owner is not None else ("", None)


class DataConversionInput(BaseModel):
    """What to convert (`fileId` or `filePath`, one of them) to what."""

    model_config = ConfigDict(extra="forbid", strict=True)

    fileId: str | None = Field(None, description="an id from POST /api/files (yours)")
    filePath: str | None = Field(
        None, max_length=4096,
        description="a file under DATA_CONVERSION_ROOTS (relative: to the first root)")
    inputFormat: Format | None = Field(
        None, description="default: from the file's name (.csv, .json, .jsonl, .ndjson, .xlsx)")
    outputFormat: Format
    onBadRow: OnBadRow = Field(
        "fail", description="fail: the job fails at the first bad row, naming its line; skip: "
                            "bad rows are left out and listed in the result (the first 100)")
    delimiter: Delimiter = Field(",", min_length=1, max_length=1,
                                 description="the CSV input's delimiter")
    outputDelimiter: Delimiter = Field(",", min_length=1, max_length=1,
                                       description="the CSV output's delimiter")
    columns: list[str] | None = Field(
        None, min_length=1, max_length=10_000,
        description="the CSV output's columns, in order; default: the first row's fields")
    inferTypes: bool = Field(False, description="CSV input: numbers, true/false and empty "
                                                "cells (null) as JSON values, not strings")
    options: dict[str, Any] | None = Field(
        None, description="seed 001's shape ({filePath, options: {...}}): any of the fields "
                          "above but fileId and filePath, nested")
    userId: str | None = Field(None, max_length=200)
    organizationId: str | None = Field(None, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _nested_options(cls, data: Any) -> Any:
        """Seed 001's example nests the options (`data: {filePath, options: {...}}`)."""
        if not isinstance(data, dict) or not isinstance(data.get("options"), dict):
            return data
        options = data["options"]
        for name in options:
            if name in ("fileId", "filePath", "options", "userId", "organizationId"):
                raise ValueError(f"options.{name}: not an option (give it beside options)")
            if name in data:
                raise ValueError(f"options.{name}: given twice (in options and beside it)")
        return {**{k: v for k, v in data.items() if k != "options"}, **options}

    @field_validator("filePath")
    @classmethod
    def _readable(cls, path: str | None, info: ValidationInfo) -> str | None:
        settings = (info.context or {}).get("settings")
        if path is not None and isinstance(settings, Settings):
            try:
                resolve(path, parse_roots(settings.data_conversion_roots))
            except PathRefused as exc:
                raise ValueError(str(exc)) from None
        return path

    @field_validator("fileId")
    @classmethod
    def _uploaded(cls, file_id: str | None, info: ValidationInfo) -> str | None:
        if file_id is None:
            return None
        if not FILE_ID.match(file_id):
            raise ValueError("no such file (an id from POST /api/files)")
        context = info.context or {}
        settings, owner = context.get("settings"), context.get("owner")
        # The owner is known where the API checks a submission; the worker checks again.
        if (isinstance(settings, Settings) and isinstance(owner, JobOwner)
                and file_store(settings).upload(owner_pair(owner), file_id) is None):
            raise ValueError("no such file (an id from POST /api/files)")
        return file_id

    @field_validator("columns")
    @classmethod
    def _unique(cls, columns: list[str] | None) -> list[str] | None:
        if columns is not None and len(set(columns)) != len(columns):
            raise ValueError("columns must be unique")
        return columns

    @model_validator(mode="after")
    def _one_source(self, info: ValidationInfo) -> DataConversionInput:
        if (self.fileId is None) == (self.filePath is None):
            raise ValueError("give fileId (an uploaded file) or filePath, one of them")
        name = self.filePath
        if name is None and self.inputFormat is None:
            context = info.context or {}
            settings, owner = context.get("settings"), context.get("owner")
            if isinstance(settings, Settings) and isinstance(owner, JobOwner):
                assert self.fileId is not None
                found = file_store(settings).upload(owner_pair(owner), self.fileId)
                name = found.name if found else None
        if name is not None:
            check_formats(self.inputFormat or format_of(name), self.outputFormat)
        return self


def check_formats(input_format: Format | None, output_format: Format) -> Format:
    if input_format is None:
        raise ValueError("inputFormat: the file's name does not say its format "
                         "(.csv, .json, .jsonl, .ndjson, .xlsx): give inputFormat")
    if input_format == output_format:
        raise ValueError(f"outputFormat: the input is {input_format} already")
    if "xlsx" in (input_format, output_format) and not excel.available():
        raise ValueError(excel.MISSING)
    return input_format


def source_of(data: DataConversionInput, settings: Settings, owner: Owner) -> tuple[Path, str]:
    """The file to read and its name, checked again when the job runs (the roots may have
    changed, the upload expired); `PermanentJobError` if it cannot be read."""
    try:
        if data.filePath is not None:
            path = resolve(data.filePath, parse_roots(settings.data_conversion_roots))
            return path, path.name
        assert data.fileId is not None
        found = file_store(settings).upload(owner, data.fileId)
        if found is None:
            raise PermanentJobError(f"fileId {data.fileId}: no such file (deleted after "
                                    f"{settings.data_conversion_retention_hours:g} h?)")
        return found.path, found.name
    except PathRefused as exc:
        raise PermanentJobError(f"filePath: {exc}") from None


async def in_thread(conversion: Conversion, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker thread. Cancelled (the job was), it first stops the conversion
    and waits for the thread to let go of the files, which the caller then closes."""
    future = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        conversion.stop()
        with contextlib.suppress(Exception):
            await future
        raise


@jobs.job(DATA_CONVERSION, queue=jobs_queue, timeout=6 * 3600)
async def data_conversion(ctx: Context, data: DataConversionInput) -> dict[str, Any]:
    owner = owner_pair(await ctx.owner())
    source, name = source_of(data, ctx.settings, owner)
    try:
        input_format = check_formats(data.inputFormat or format_of(name), data.outputFormat)
    except ValueError as exc:
        raise PermanentJobError(str(exc)) from None
    store = file_store(ctx.settings)
    store.prune(owner)
    target = store.output_path(owner, ctx.queue, ctx.id, data.outputFormat)
    options = Options(on_bad_row=data.onBadRow, delimiter=data.delimiter,
                      output_delimiter=data.outputDelimiter, columns=data.columns,
                      infer_types=data.inferTypes)
    conversion = Conversion(source, input_format, target, data.outputFormat, options)
    try:
        with conversion:
            await ctx.progress(0, 0, "Counting rows")
            total = await in_thread(conversion, conversion.count_rows)
            reported = 0.0
            while not conversion.done:
                await in_thread(conversion, conversion.step, STEP_ROWS)
                now = time.monotonic()
                if conversion.done or now - reported >= PROGRESS_EVERY_S:
                    reported = now
                    done = min(conversion.report.read, total)
                    await ctx.progress(done, total, f"Processing item {done} of {total}")
            size = await in_thread(conversion, conversion.finish)
    except (InputError, BadRowError) as exc:
        raise PermanentJobError(str(exc)) from None
    stem = Path(name).stem or "output"
    return {
        "inputFormat": input_format, "outputFormat": data.outputFormat,
        "rowsTotal": total, **conversion.report.as_dict(),
        "output": {"url": f"/api/jobs/{ctx.queue}:{ctx.id}/output",
                   "name": f"{stem}.{data.outputFormat}", "bytes": size,
                   "contentType": CONTENT_TYPES[data.outputFormat]},
    }
