"""Conversions between every pair of formats, on real files: quoting, unicode, empty input,
bad rows (skipped or failing) with their line numbers."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from itertools import permutations
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from agentqueue.conversion.convert import (
    MAX_LISTED_BAD_ROWS,
    BadRowError,
    Conversion,
    Options,
    Report,
)
from agentqueue.conversion.formats import FORMATS, Format, InputError

# Values that break naive writers: delimiters, quotes and line ends inside fields; non-ASCII.
RECORDS = [
    {"name": "Ada", "city": "London, UK", "note": 'said "hi"\nthen left'},
    {"name": "Zoë 🎉", "city": "Zürich", "note": ""},
    {"name": "李", "city": "北京", "note": "tab\there;semi"},
]


def write(path: Path, fmt: Format, records: list[dict[str, Any]]) -> Path:
    if fmt == "xlsx":
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        if records:
            sheet.append(list(records[0]))
        for record in records:
            sheet.append(list(record.values()))
        book.save(path)
    elif fmt == "csv":
        with open(path, "w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                        encoding="utf-8")
    else:
        path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def read(path: Path, fmt: Format) -> list[dict[str, Any]]:
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(path).worksheets[0]
        rows = [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]
        return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    text = path.read_text(encoding="utf-8")
    if fmt == "csv":
        return list(csv.DictReader(text.splitlines(keepends=True)))
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line]
    loaded: list[dict[str, Any]] = json.loads(text)
    return loaded


def convert(source: Path, input_format: Format, output_format: Format,
            step: int = 2, **options: Any) -> tuple[Path, Report, int]:
    target = source.with_name(f"out-{source.stem}.{output_format}")
    conversion = Conversion(source, input_format, target, output_format, Options(**options))
    with conversion:
        total = conversion.count_rows()
        while not conversion.done:
            conversion.step(step)
        conversion.finish()
    return target, conversion.report, total


@pytest.mark.parametrize(("src", "dst"), list(permutations(FORMATS, 2)),
                         ids=lambda f: str(f))
def test_every_pair_keeps_every_value(tmp_path: Path, src: Format, dst: Format) -> None:
    source = write(tmp_path / f"in.{src}", src, RECORDS)
    target, report, total = convert(source, src, dst)
    expected = RECORDS
    if src == "xlsx" and dst != "csv":  # an empty Excel cell is null (CSV writes it empty)
        expected = [{k: v or None for k, v in r.items()} for r in RECORDS]
    assert read(target, dst) == expected
    assert (report.rows, report.skipped, total) == (3, 0, 3)


@pytest.mark.parametrize("src", FORMATS)
@pytest.mark.parametrize("dst", FORMATS)
def test_an_empty_file_converts_to_an_empty_document(tmp_path: Path, src: Format,
                                                     dst: Format) -> None:
    if src == dst:
        return
    source = tmp_path / f"empty.{src}"
    if src == "xlsx":
        write(source, src, [])  # a workbook with an empty sheet
    else:
        source.write_bytes(b"")
    target, report, total = convert(source, src, dst)
    assert (report.rows, total) == (0, 0)
    if dst == "xlsx":
        assert list(openpyxl.load_workbook(target).worksheets[0].iter_rows()) == []
    else:
        assert target.read_text() == {"json": "[]\n", "jsonl": "", "csv": ""}[dst]


def test_a_header_alone_is_no_rows(tmp_path: Path) -> None:
    source = tmp_path / "header.csv"
    source.write_text("a,b\r\n")
    target, report, _ = convert(source, "csv", "json")
    assert json.loads(target.read_text()) == [] and report.rows == 0


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    source = tmp_path / "excel.csv"
    source.write_bytes("\ufeffid,name\r\n1,Å\r\n".encode())
    target, _, _ = convert(source, "csv", "jsonl")
    assert read(target, "jsonl") == [{"id": "1", "name": "Å"}]


def test_csv_cells_as_json_values_when_asked(tmp_path: Path) -> None:
    source = tmp_path / "typed.csv"
    source.write_text("n,x,ok,empty,word,nan\n42,1.5,true,,007x,NaN\n")
    target, _, _ = convert(source, "csv", "json", infer_types=True)
    assert read(target, "json") == [{"n": 42, "x": 1.5, "ok": True, "empty": None,
                                     "word": "007x", "nan": "NaN"}]
    plain, _, _ = convert(source, "csv", "jsonl")
    assert read(plain, "jsonl")[0]["n"] == "42"


def test_nested_json_values_become_json_text_in_csv(tmp_path: Path) -> None:
    source = write(tmp_path / "nested.jsonl", "jsonl", [
        {"id": 1, "tags": ["a", "b"], "meta": {"k": None}, "ok": False, "none": None},
        {"id": 2, "big": None},
    ])
    target, report, _ = convert(source, "jsonl", "csv", on_bad_row="skip")
    rows = read(target, "csv")
    assert rows == [{"id": "1", "tags": '["a","b"]', "meta": '{"k":null}', "ok": "false",
                     "none": ""}]
    assert report.bad_rows == [{"line": 2, "row": 2,
                                "error": "fields not in the CSV header: 'big'"}]


def test_csv_columns_chosen_and_delimiters(tmp_path: Path) -> None:
    source = tmp_path / "semi.csv"
    source.write_text("a;b;c\n1;2;3\n")
    target, _, _ = convert(source, "csv", "jsonl", delimiter=";")
    assert read(target, "jsonl") == [{"a": "1", "b": "2", "c": "3"}]
    back, _, _ = convert(target, "jsonl", "csv", columns=["c", "a", "b"],
                         output_delimiter="\t")
    assert back.read_text().splitlines() == ["c\ta\tb", "3\t1\t2"]


def test_bad_csv_rows_are_skipped_with_the_line_they_start_on(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text('id,text\n1,"two\nlines"\n2\n3,ok\n4,too,many\n\n5,"unclosed\n')
    target, report, total = convert(source, "csv", "jsonl", on_bad_row="skip")
    assert [r["id"] for r in read(target, "jsonl")] == ["1", "3"]
    assert total == 5 and report.rows == 2 and report.skipped == 3
    assert [(b["line"], b["row"]) for b in report.bad_rows] == [(4, 2), (6, 4), (8, 5)]
    assert report.bad_rows[0]["error"] == "expected 2 fields, found 1"
    assert "not valid CSV" in report.bad_rows[2]["error"]


def test_bad_jsonl_lines_are_named_by_line(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"a": 1}\n\n{"a": \n[1, 2]\n"text"\n{"a": NaN}\n{"a": 2}\n')
    target, report, _ = convert(source, "jsonl", "json", on_bad_row="skip")
    assert read(target, "json") == [{"a": 1}, {"a": 2}]
    assert [b["line"] for b in report.bad_rows] == [3, 4, 5, 6]
    assert report.bad_rows[1]["error"] == "not a JSON object but an array"


def test_json_items_that_are_not_objects_are_named_by_item(tmp_path: Path) -> None:
    source = tmp_path / "mixed.json"
    source.write_text('[{"a": 1}, 2, {"a": -1.5e3}]')
    target, report, _ = convert(source, "json", "jsonl", on_bad_row="skip")
    assert read(target, "jsonl") == [{"a": 1}, {"a": -1500.0}]
    assert report.bad_rows == [{"line": None, "row": 2, "error": "not a JSON object but a number"}]


def test_failing_on_a_bad_row_names_its_line_and_leaves_no_output(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("a,b\n1,2\n3\n")
    with pytest.raises(BadRowError, match="line 3: expected 2 fields, found 1"):
        convert(source, "csv", "json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_listed_bad_rows_are_capped_and_all_are_counted(tmp_path: Path) -> None:
    source = tmp_path / "many.jsonl"
    source.write_text("[]\n" * (MAX_LISTED_BAD_ROWS + 5) + '{"ok": 1}\n')
    _, report, _ = convert(source, "jsonl", "csv", step=1000, on_bad_row="skip")
    assert report.skipped == MAX_LISTED_BAD_ROWS + 5 and report.rows == 1
    assert len(report.bad_rows) == MAX_LISTED_BAD_ROWS
    assert report.as_dict()["badRowsTruncated"] is True


@pytest.mark.parametrize(("name", "content", "message"), [
    ("object.json", '{"a": 1}', "array of objects"),
    ("broken.json", '[{"a": 1}, {"a": ', "not valid JSON after item 1"),
    ("twice.csv", "a,a\n1,2\n", "repeats the column 'a'"),
])
def test_input_that_cannot_be_read_fails_whatever_the_option(
        tmp_path: Path, name: str, content: str, message: str) -> None:
    source = tmp_path / name
    source.write_text(content)
    fmt: Format = "json" if name.endswith(".json") else "csv"
    with pytest.raises(InputError, match=message):
        convert(source, fmt, "jsonl" if fmt != "jsonl" else "csv", on_bad_row="skip")


def test_text_that_is_not_utf8_fails_the_conversion(tmp_path: Path) -> None:
    source = tmp_path / "latin1.csv"
    source.write_bytes("a\nZoë\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        convert(source, "csv", "json", on_bad_row="skip")


def test_excel_cells_keep_their_types_and_rows_their_sheet_row(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["when", "n", "ok", "name"])
    sheet.append([datetime(2024, 5, 1, 12, 30), 3, True, "Zoë"])
    sheet.append([])  # an empty row is no row
    sheet.append([None, 1.5, False, None, "stray"])
    sheet.append([None, None, None, "only a name"])
    book.save(tmp_path / "typed.xlsx")
    target, report, total = convert(tmp_path / "typed.xlsx", "xlsx", "jsonl", on_bad_row="skip")
    assert read(target, "jsonl") == [
        {"when": "2024-05-01T12:30:00", "n": 3, "ok": True, "name": "Zoë"},
        {"when": None, "n": None, "ok": None, "name": "only a name"}]
    assert total == 3
    assert report.bad_rows == [{"line": 4, "row": 2, "error": "expected 4 cells, found 5"}]


def test_nested_values_and_control_characters_in_excel_output(tmp_path: Path) -> None:
    source = write(tmp_path / "odd.jsonl", "jsonl", [
        {"a": [1, 2], "b": {"c": None}}, {"a": "bell\u0007", "b": None}, {"a": 5, "b": "ok"}])
    target, report, _ = convert(source, "jsonl", "xlsx", on_bad_row="skip")
    assert read(target, "xlsx") == [{"a": "[1,2]", "b": '{"c":null}'}, {"a": 5, "b": "ok"}]
    assert report.bad_rows[0]["line"] == 2 and "control characters" in report.bad_rows[0]["error"]


def test_a_file_that_is_not_a_workbook_fails(tmp_path: Path) -> None:
    source = tmp_path / "fake.xlsx"
    source.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not an Excel workbook"):
        convert(source, "xlsx", "csv", on_bad_row="skip")


def test_a_json_array_after_much_whitespace_and_a_bom(tmp_path: Path) -> None:
    source = tmp_path / "spaced.json"
    source.write_bytes(b"\xef\xbb\xbf" + b" \n" * 50_000 + b'[{"a": "\xc3\xa9"}]')
    target, report, total = convert(source, "json", "jsonl")
    assert read(target, "jsonl") == [{"a": "é"}] and total == 1
