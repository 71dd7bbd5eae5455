"""One conversion, run in steps of a few thousand rows (each step in a worker thread, so the
event loop keeps renewing the job's lock and reporting progress between steps).

    with Conversion(source, "csv", target, "jsonl", options) as conversion:
        total = conversion.count_rows()       # a first pass, so progress has a total
        while not conversion.done:
            conversion.step(10_000)
    conversion.report()                       # rows written, bad rows (capped), …

Memory stays bounded whatever the file's size: one row at a time (and the csv module's and the
JSONL reader's bounds on one field or line).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from agentqueue.conversion.formats import (
    CsvWriter,
    Format,
    InputError,
    JsonlWriter,
    JsonWriter,
    Row,
    Stopped,
    Writer,
    count_csv,
    read_csv,
    read_json,
    read_jsonl,
)

OnBadRow = Literal["fail", "skip"]
# Skipped rows listed in the result at most (all are counted).
MAX_LISTED_BAD_ROWS = 100
BUFFER = 1024 * 1024


class BadRowError(Exception):
    """A bad row when the job was told to fail on one."""


@dataclass(frozen=True)
class Options:
    on_bad_row: OnBadRow = "fail"
    delimiter: str = ","
    output_delimiter: str = ","
    columns: list[str] | None = None
    infer_types: bool = False


@dataclass
class Report:
    rows: int = 0  # written
    read: int = 0  # data rows read, bad ones included
    skipped: int = 0
    bad_rows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "rowsRead": self.read, "skipped": self.skipped,
                "badRows": self.bad_rows, "badRowsTruncated": self.skipped > len(self.bad_rows)}


def where(row: Row) -> str:
    return f"line {row.line}" if row.line is not None else f"item {row.number}"


def _text(stream: IO[bytes]) -> IO[str]:
    # utf-8-sig: a byte-order mark (Excel writes one) is no part of the first column's name.
    # newline="": the csv module handles line ends itself, quoted ones included.
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


def rows_of(stream: IO[bytes], fmt: Format, options: Options) -> Iterator[Row]:
    if fmt == "xlsx":
        from agentqueue.conversion.excel import read_xlsx

        return read_xlsx(stream)
    if fmt == "csv":
        return read_csv(_text(stream), delimiter=options.delimiter,
                        infer_types=options.infer_types)
    if fmt == "jsonl":
        return read_jsonl(stream)
    return read_json(stream)


def count_rows(path: Path, fmt: Format, options: Options,
               stop: Callable[[], bool] = lambda: False) -> int:
    """The data rows in the file, bad ones included: the first pass, for progress's total
    (`stop` asked now and then whether to give up: `Stopped`)."""
    with open(path, "rb", buffering=BUFFER) as stream:
        try:
            if fmt == "csv":
                return count_csv(_text(stream), delimiter=options.delimiter, stop=stop)
            if fmt == "xlsx":
                from agentqueue.conversion.excel import count_xlsx

                return count_xlsx(stream, stop)
            rows = 0
            for _ in rows_of(stream, fmt, options):
                rows += 1
                if not rows & 0xFFFF and stop():
                    raise Stopped
            return rows
        except UnicodeDecodeError as exc:
            raise InputError(f"the input is not UTF-8 text: {exc.reason}") from None


class Conversion:
    """Reads `source` as `input_format`, writes `target` as `output_format` (to a temporary
    file beside it, moved into place by `finish`, so a failed run leaves no half file)."""

    def __init__(self, source: Path, input_format: Format, target: Path,
                 output_format: Format, options: Options) -> None:
        self.source, self.target = source, target
        self.input_format, self.output_format = input_format, output_format
        self.options = options
        self.report = Report()
        self.done = False
        # Set by `stop()` from another thread: the counting pass gives up at its next check.
        self._stop = threading.Event()
        self._partial = target.with_name(target.name + ".part")
        self._in: IO[bytes] | None = None
        self._out: IO[str] | None = None
        self._rows: Iterator[Row] | None = None
        self._writer: Writer | None = None

    def __enter__(self) -> Conversion:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._in = open(self.source, "rb", buffering=BUFFER)  # noqa: SIM115 - closed on exit
        self._rows = rows_of(self._in, self.input_format, self.options)
        if self.output_format == "xlsx":
            from agentqueue.conversion.excel import XlsxWriter

            self._writer = XlsxWriter(self._partial, columns=self.options.columns)
            return self
        self._out = open(self._partial, "w", encoding="utf-8", newline="",  # noqa: SIM115
                         buffering=BUFFER)
        self._writer = self._make_writer(self._out)
        return self

    def _make_writer(self, out: IO[str]) -> Writer:
        if self.output_format == "csv":
            return CsvWriter(out, delimiter=self.options.output_delimiter,
                             columns=self.options.columns)
        if self.output_format == "jsonl":
            return JsonlWriter(out)
        return JsonWriter(out)

    def count_rows(self) -> int:
        return count_rows(self.source, self.input_format, self.options, self._stop.is_set)

    def stop(self) -> None:
        self._stop.set()

    def step(self, max_rows: int) -> int:
        """Convert up to `max_rows` more rows; how many were read. At the end, `done`."""
        assert self._rows is not None and self._writer is not None
        taken = 0
        try:
            for row in self._rows:
                taken += 1
                self.report.read += 1
                error = row.error
                if row.record is not None:
                    error = self._writer.write(row.record)
                if error is None:
                    self.report.rows += 1
                else:
                    self._bad(row, error)
                if taken >= max_rows:
                    return taken
        except UnicodeDecodeError as exc:
            raise InputError(f"the input is not UTF-8 text (after data row "
                             f"{self.report.read}): {exc.reason}") from None
        self.done = True
        return taken

    def _bad(self, row: Row, error: str) -> None:
        if self.options.on_bad_row == "fail":
            raise BadRowError(f"{where(row)}: {error}")
        self.report.skipped += 1
        if len(self.report.bad_rows) < MAX_LISTED_BAD_ROWS:
            self.report.bad_rows.append({"line": row.line, "row": row.number, "error": error})

    def finish(self) -> int:
        """End the document and move it into place; its size in bytes."""
        assert self._writer is not None
        self._writer.close()
        if self._out is not None:
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
        os.replace(self._partial, self.target)
        return self.target.stat().st_size

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._in is not None:
            self._in.close()
        if self._out is not None and not self._out.closed:
            self._out.close()
        self._partial.unlink(missing_ok=True)

