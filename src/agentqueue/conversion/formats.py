"""Readers and writers of each format, one row (a JSON object) at a time.

A reader yields `Row`s: the record, or the reason it is bad, with the line it starts on (CSV,
JSONL; None for a JSON array's items: the streaming parser gives no positions) and its number
among the data rows. A writer takes records and says why it cannot write one (a field the CSV
header does not have).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

import orjson

Format = Literal["csv", "json", "jsonl", "xlsx"]
FORMATS: tuple[Format, ...] = ("csv", "json", "jsonl", "xlsx")
EXTENSIONS: dict[str, Format] = {".csv": "csv", ".json": "json", ".jsonl": "jsonl",
                                 ".ndjson": "jsonl", ".xlsx": "xlsx"}
CONTENT_TYPES: dict[Format, str] = {
    "csv": "text/csv; charset=utf-8", "json": "application/json",
    "jsonl": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
# The longest JSONL line read as one record: a longer one is a bad row, never a huge buffer.
MAX_LINE_BYTES = 16 * 1024 * 1024
# CSV's own bound on one field (the csv module's default): an unclosed quote cannot swallow
# the rest of the file into memory.
MAX_FIELD_CHARS = 128 * 1024


class InputError(Exception):
    """The input cannot be read at all (not an array, not UTF-8, a repeated header): the job
    fails, whatever the bad-row option says."""


@dataclass(slots=True)
class Row:
    number: int  # 1-based among the data rows (the CSV header is not one)
    line: int | None
    record: dict[str, Any] | None
    error: str | None = None


def format_of(name: str) -> Format | None:
    """The format a file name says (`.csv`, `.json`, `.jsonl` or `.ndjson`), or None."""
    lowered = name.lower()
    return next((fmt for ext, fmt in EXTENSIONS.items() if lowered.endswith(ext)), None)


# -- reading ------------------------------------------------------------------------------------


def _infer(value: str) -> Any:
    """A CSV cell as the JSON value it spells: integers, decimals, true/false; empty → null."""
    if value == "":
        return None
    if value in ("true", "false"):
        return value == "true"
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    return number if number == number and number not in (float("inf"), float("-inf")) else value


def read_csv(stream: IO[str], *, delimiter: str = ",", infer_types: bool = False) -> Iterator[Row]:
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(stream, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"line 1: header is not valid CSV: {exc}") from None
    if header is None:
        return
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(f"line 1: the header repeats the column {name!r}")
        seen.add(name)
    number, line = 0, reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            yield Row(number, line, None, f"not valid CSV: {exc}")
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        if not fields:  # a blank line is no row
            continue
        number += 1
        if len(fields) != len(header):
            yield Row(number, start, None,
                      f"expected {len(header)} fields, found {len(fields)}")
            continue
        values: list[Any] = [_infer(f) for f in fields] if infer_types else fields
        yield Row(number, start, dict(zip(header, values, strict=True)))


class Stopped(Exception):
    """The conversion was stopped (its job cancelled) part-way."""


def count_csv(stream: IO[str], *, delimiter: str = ",",
              stop: Callable[[], bool] = lambda: False) -> int:
    """The data rows `read_csv` would yield, bad ones included, without building them (the
    first pass, for progress's total); `stop` is asked every 64k rows whether to give up."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(stream, delimiter=delimiter, strict=True)
    rows = 0
    while True:
        try:
            for fields in reader:
                if fields:
                    rows += 1
                    if not rows & 0xFFFF and stop():
                        raise Stopped
            return max(rows - 1, 0)  # the header is no data row
        except csv.Error:
            rows += 1


def _loads(text: bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # orjson refuses integers past 64 bits, which JSON allows; json reads them (and
        # refuses NaN, as orjson does).
        return json.loads(text, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_jsonl(stream: IO[bytes]) -> Iterator[Row]:
    number, line = 0, 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        line += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip to the end of that line
                raw = stream.readline(MAX_LINE_BYTES)
            number += 1
            yield Row(number, line, None, f"line longer than {MAX_LINE_BYTES} bytes")
            continue
        if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        number += 1
        try:
            value = _loads(raw)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError too
            yield Row(number, line, None, f"not valid JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield Row(number, line, None, f"not a JSON object but {_kind(value)}")
            continue
        yield Row(number, line, value)


def read_json(stream: IO[bytes]) -> Iterator[Row]:
    """The items of a top-level JSON array, parsed one at a time (ijson's C backend)."""
    import ijson

    head = _first_significant(stream)
    if head == b"":
        return  # an empty file: no rows
    if head != b"[":
        raise InputError("a JSON input is an array of objects ([{...}, ...])")
    number = 0
    try:
        for item in ijson.items(stream, "item", use_float=True):
            number += 1
            if isinstance(item, dict):
                yield Row(number, None, item)
            else:
                yield Row(number, None, None, f"not a JSON object but {_kind(item)}")
    except ijson.JSONError as exc:
        raise InputError(f"not valid JSON after item {number}: {exc}") from None


def _first_significant(stream: IO[bytes]) -> bytes:
    """The first byte that is not whitespace (or a BOM; b"" at the end), the stream left where
    the document starts (after the BOM)."""
    start = stream.tell()
    bom = stream.read(3) == b"\xef\xbb\xbf"
    stream.seek(start + 3 if bom else start)
    begin = stream.tell()
    while chunk := stream.read(65536):
        text = chunk.lstrip()
        if text:
            stream.seek(begin)
            return text[:1]
    stream.seek(begin)
    return b""


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


# -- writing ------------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer past 64 bits
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Writer:
    """Writes records to a text stream; `write` returns why a record cannot be written, or None."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.stream: IO[str] = stream  # type: ignore[assignment] # None: a writer of its own

    def write(self, record: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def close(self) -> None:
        """Write what ends the document."""


class JsonlWriter(Writer):
    def write(self, record: dict[str, Any]) -> str | None:
        self.stream.write(dumps(record) + "\n")
        return None


class JsonWriter(Writer):
    """A JSON array, one item per line, written as it goes."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.count = 0

    def write(self, record: dict[str, Any]) -> str | None:
        self.stream.write("[\n" if self.count == 0 else ",\n")
        self.stream.write(dumps(record))
        self.count += 1
        return None

    def close(self) -> None:
        self.stream.write("[]\n" if self.count == 0 else "\n]\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dumps(value)  # numbers and booleans as JSON spells them; arrays, objects as JSON


class CsvWriter(Writer):
    """A header (the given columns, or the first record's fields), then a line per record;
    a record with a field outside the header is refused (fields it lacks are left empty)."""

    def __init__(self, stream: IO[str], *, delimiter: str = ",",
                 columns: list[str] | None = None) -> None:
        super().__init__(stream)
        self.writer = csv.writer(stream, delimiter=delimiter, lineterminator="\r\n")
        self.columns = columns
        self._known = set(columns) if columns else set()
        if columns:
            self.writer.writerow(columns)

    def write(self, record: dict[str, Any]) -> str | None:
        if self.columns is None:
            self.columns = list(record)
            self._known = set(self.columns)
            self.writer.writerow(self.columns)
        extra = [k for k in record if k not in self._known]
        if extra:
            return f"fields not in the CSV header: {', '.join(map(repr, extra[:5]))}"
        self.writer.writerow([_cell(record.get(c)) for c in self.columns])
        return None
