"""Excel workbooks (.xlsx) with openpyxl, in its streaming modes: read-only reading yields one
row at a time, write-only writing keeps rows in a temporary file, never the sheet in memory.

openpyxl is the optional `excel` extra (`pip install 'agentqueue[excel]'`); without it, xlsx
is refused at submission, naming the extra.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from agentqueue.conversion.formats import InputError, Row, Stopped, Writer, dumps

# Excel's own bound: 1,048,576 rows a sheet, the header included.
MAX_SHEET_ROWS = 1_048_576
MISSING = "xlsx needs openpyxl: pip install 'agentqueue[excel]'"


def available() -> bool:
    return importlib.util.find_spec("openpyxl") is not None


def _sheet_rows(stream: IO[bytes]) -> Iterator[tuple[Any, ...]]:
    """The first sheet's rows as values (formulas as their last computed value)."""
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InputError(f"not an Excel workbook (.xlsx): {exc}") from None
    try:
        yield from book.worksheets[0].iter_rows(values_only=True)
    finally:
        book.close()


def _value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return value


def _trim(values: tuple[Any, ...]) -> list[Any]:
    """A row without its trailing empty cells (read-only sheets pad rows to the widest)."""
    end = len(values)
    while end and values[end - 1] is None:
        end -= 1
    return list(values[:end])


def read_xlsx(stream: IO[bytes]) -> Iterator[Row]:
    """The first sheet: a header row, then a record per row; `line` is the sheet's row."""
    rows = _sheet_rows(stream)
    header: list[str] | None = None
    number = 0
    for line, values in enumerate(rows, start=1):
        cells = _trim(values)
        if header is None:
            if not cells:
                continue  # rows before the header
            if any(c is None for c in cells):
                raise InputError(f"row {line}: a header cell is empty")
            header = [str(_value(c)) for c in cells]
            if len(set(header)) != len(header):
                raise InputError(f"row {line}: the header repeats a column")
            continue
        if not cells:
            continue
        number += 1
        if len(cells) > len(header):
            yield Row(number, line, None, f"expected {len(header)} cells, found {len(cells)}")
            continue
        cells += [None] * (len(header) - len(cells))
        yield Row(number, line, {k: _value(v) for k, v in zip(header, cells, strict=True)})


def count_xlsx(stream: IO[bytes], stop: Callable[[], bool]) -> int:
    rows = 0
    for values in _sheet_rows(stream):
        if any(v is not None for v in values):
            rows += 1
            if not rows & 0xFFFF and stop():
                raise Stopped
    return max(rows - 1, 0)


class XlsxWriter(Writer):
    """One sheet: a header (the given columns, or the first record's fields), then a row per
    record; arrays and objects as JSON text. Saved to `path` by `close`."""

    def __init__(self, path: Path, *, columns: list[str] | None = None) -> None:
        from openpyxl import Workbook

        super().__init__(None)
        self.path = path
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet("data")
        self.columns = columns
        self._known = set(columns or ())
        self.rows = 0
        if columns:
            self._append(columns)

    def _append(self, values: list[Any]) -> None:
        if self.rows >= MAX_SHEET_ROWS:
            raise InputError(f"an Excel sheet holds at most {MAX_SHEET_ROWS:,} rows")
        self.sheet.append(values)
        self.rows += 1

    def write(self, record: dict[str, Any]) -> str | None:
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        if self.columns is None:
            self.columns = list(record)
            self._known = set(self.columns)
            self._append(self.columns)
        extra = [k for k in record if k not in self._known]
        if extra:
            return f"fields not in the header: {', '.join(map(repr, extra[:5]))}"
        cells = [v if v is None or isinstance(v, str | int | float) else dumps(v)
                 for v in (record.get(c) for c in self.columns)]
        # Checked first: openpyxl's write-only sheet is a generator that an error in `append`
        # ends for good.
        if any(isinstance(c, str) and ILLEGAL_CHARACTERS_RE.search(c) for c in cells):
            return "holds control characters an Excel cell cannot store"
        self._append(cells)
        return None

    def close(self) -> None:
        self.book.save(self.path)
