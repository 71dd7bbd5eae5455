"""data-conversion over HTTP, as a user does it against a running `agentqueue serve`: upload a
file, submit a job at `/api/jobs`, poll its progress, download the output; files and outputs
are their owner's (404 for anyone else); paths only under DATA_CONVERSION_ROOTS."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from agentqueue.conversion.files import FileStore
from tests.support.processes import AgentqueueProcess, agentqueue
from tests.support.service import create_key, delete_service_keys, serve_env
from tests.support.waiting import eventually

CSV_TEXT = 'id,name,note\r\n1,Zoë 🎉,"says ""hi"", then\nleaves"\r\n2,李,\r\n'
UPLOAD_MAX = 64 * 1024


def write_large(path: Path) -> None:
    """A CSV that takes the worker seconds to convert."""
    with open(path, "w", encoding="utf-8") as large:
        large.write("id,name,note\n")
        large.writelines(f'{i},Zoë {i},"a, b ""c"""\n' for i in range(1_500_000))


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("shared")
    (root / "people.csv").write_text(CSV_TEXT, encoding="utf-8")
    outside = tmp_path_factory.mktemp("private") / "secret.csv"
    outside.write_text("secret\n42\n")
    os.symlink(outside, root / "escape.csv")
    write_large(root / "large.csv")
    data = tmp_path_factory.mktemp("data")
    env = serve_env(data, DATA_CONVERSION_ROOTS=str(root),
                    MAX_BODY_BYTES="4096", DATA_CONVERSION_MAX_UPLOAD_BYTES=str(UPLOAD_MAX))
    keys = {
        "alice": create_key(env, "--user", "alice", "--org", "acme"),
        "bob": create_key(env, "--user", "bob", "--org", "acme"),
        "root": create_key(env, "--user", "root", "--org", "ops", "--admin"),
    }
    with agentqueue("serve", env, tmp_path_factory.mktemp("logs") / "serve.log") as proc:
        await proc.wait_healthy()
        yield {"proc": proc, "keys": keys, "outside": outside, "data": data}
    await delete_service_keys(env)


def client(service: dict[str, Any], who: str) -> httpx.AsyncClient:
    proc: AgentqueueProcess = service["proc"]
    return httpx.AsyncClient(base_url=proc.base_url, timeout=30,
                             headers={"Authorization": f"Bearer {service['keys'][who]}"})


async def finished(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = (await http.get(f"/api/jobs/{job_id}")).json()
        return job if job["status"] in ("completed", "failed") else None

    return await eventually(probe, timeout=60, what=f"job {job_id} to finish")


async def upload(http: httpx.AsyncClient, name: str, content: bytes) -> dict[str, Any]:
    answer = await http.post("/api/files", params={"name": name}, content=content)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def convert(http: httpx.AsyncClient, **data: Any) -> dict[str, Any]:
    created = await http.post("/api/jobs", json={"type": "data-conversion", "data": data})
    assert created.status_code == 201, created.text
    return await finished(http, created.json()["id"])


async def test_upload_convert_poll_and_download(service: dict[str, Any]) -> None:
    async with client(service, "alice") as http:
        # Larger than MAX_BODY_BYTES (4096): uploads have their own limit.
        content = (CSV_TEXT + "".join(f"{i},row {i},\r\n" for i in range(3, 400))).encode()
        assert len(content) > 4096
        stored = await upload(http, "people.csv", content)
        assert stored["bytes"] == len(content) and stored["format"] == "csv"
        assert (await http.get(f"/api/files/{stored['id']}")).json() == stored

        job = await convert(http, fileId=stored["id"], outputFormat="json")
        assert job["status"] == "completed", job
        assert job["id"].startswith("jobs:")
        assert job["progress"]["percentage"] == 100
        result = job["result"]
        assert result["rows"] == result["rowsTotal"] == 399
        assert result["output"]["name"] == "people.json"

        download = await http.get(result["output"]["url"])
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/json"
        assert 'filename="people.json"' in download.headers["content-disposition"]
        rows = download.json()
        assert rows[:2] == [{"id": "1", "name": "Zoë 🎉", "note": 'says "hi", then\nleaves'},
                            {"id": "2", "name": "李", "note": ""}]
        assert len(rows) == 399 and len(download.content) == result["output"]["bytes"]


async def test_json_round_trips_through_jsonl_and_csv(service: dict[str, Any]) -> None:
    records = [{"k": "a,b", "v": 'q"uote', "n": "line\nbreak"}, {"k": "ü", "v": "", "n": "—"}]
    async with client(service, "alice") as http:
        stored = await upload(http, "in.json", json.dumps(records).encode())
        to_jsonl = await convert(http, fileId=stored["id"], outputFormat="jsonl")
        jsonl = (await http.get(to_jsonl["result"]["output"]["url"])).content
        assert [json.loads(line) for line in jsonl.splitlines()] == records
        again = await upload(http, "in.jsonl", jsonl)
        to_csv = await convert(http, fileId=again["id"], outputFormat="csv")
        text = (await http.get(to_csv["result"]["output"]["url"])).text
        assert list(csv.DictReader(io.StringIO(text, newline=""))) == records


async def test_an_empty_upload_converts_to_an_empty_array(service: dict[str, Any]) -> None:
    async with client(service, "alice") as http:
        stored = await upload(http, "empty.csv", b"")
        job = await convert(http, fileId=stored["id"], outputFormat="json")
        assert job["result"]["rows"] == 0
        assert (await http.get(job["result"]["output"]["url"])).json() == []


async def test_a_file_under_the_roots_by_path(service: dict[str, Any]) -> None:
    async with client(service, "alice") as http:
        job = await convert(http, filePath="people.csv", outputFormat="jsonl")
        lines = (await http.get(job["result"]["output"]["url"])).text.splitlines()
        assert json.loads(lines[1]) == {"id": "2", "name": "李", "note": ""}


@pytest.mark.parametrize(("data", "message"), [
    ({"filePath": "../private/secret.csv", "outputFormat": "json"},
     "data.filePath: must not contain '..'"),
    ({"filePath": "escape.csv", "outputFormat": "json"}, "data.filePath: is outside"),
    ({"filePath": "people.csv", "outputFormat": "csv"}, "the input is csv already"),
    ({"filePath": "people.csv", "outputFormat": "parquet"}, "data.outputFormat"),
    ({"filePath": "nothing.csv", "outputFormat": "json"}, "data.filePath: no such file"),
    ({"fileId": "0" * 32, "outputFormat": "json"}, "data.fileId: no such file"),
    ({"outputFormat": "json"}, "give fileId (an uploaded file) or filePath"),
    ({"filePath": "people.csv", "outputFormat": "json", "colums": ["a"]},
     "data.colums: unknown field"),
])
async def test_submissions_that_can_never_succeed_answer_400(
        service: dict[str, Any], data: dict[str, Any], message: str) -> None:
    async with client(service, "alice") as http:
        answer = await http.post("/api/jobs", json={"type": "data-conversion", "data": data})
        assert answer.status_code == 400, answer.text
        assert message in answer.json()["message"]


async def test_an_absolute_path_outside_the_roots_is_refused(service: dict[str, Any]) -> None:
    async with client(service, "alice") as http:
        answer = await http.post("/api/jobs", json={"type": "data-conversion", "data": {
            "filePath": str(service["outside"]), "outputFormat": "json"}})
        assert answer.status_code == 400 and "outside" in answer.json()["message"]


async def test_files_and_outputs_are_their_owners(service: dict[str, Any]) -> None:
    async with client(service, "alice") as alice, client(service, "bob") as bob:
        stored = await upload(alice, "mine.csv", b"a\n1\n")
        job = await convert(alice, fileId=stored["id"], outputFormat="jsonl")
        url = job["result"]["output"]["url"]
        # Bob, of the same organization: none of it exists for him.
        assert (await bob.get(url)).status_code == 404
        assert (await bob.get(f"/api/files/{stored['id']}")).status_code == 404
        assert (await bob.delete(f"/api/files/{stored['id']}")).status_code == 404
        used = await bob.post("/api/jobs", json={"type": "data-conversion", "data": {
            "fileId": stored["id"], "outputFormat": "json"}})
        assert used.status_code == 400 and "no such file" in used.json()["message"]
        assert (await alice.get(url)).text == '{"a":"1"}\n'
        assert (await alice.delete(f"/api/files/{stored['id']}")).status_code == 204
        assert (await alice.get(f"/api/files/{stored['id']}")).status_code == 404
    async with client(service, "root") as admin:  # admins see every job, as for /api/jobs
        assert (await admin.get(url)).status_code == 200


async def test_bad_rows_fail_by_line_or_are_listed(service: dict[str, Any]) -> None:
    async with client(service, "alice") as http:
        stored = await upload(http, "bad.jsonl", b'{"a": 1}\nnot json\n{"a": 2}\n')
        failed = await convert(http, fileId=stored["id"], outputFormat="csv")
        assert failed["status"] == "failed" and "line 2: not valid JSON" in failed["error"]
        assert failed["attempts"] == 1  # the same input would fail again: no retry
        no_output = await http.get(f"/api/jobs/{failed['id']}/output")
        assert no_output.status_code == 409 and "failed" in no_output.json()["message"]
        skipped = await convert(http, fileId=stored["id"], outputFormat="csv", onBadRow="skip")
        assert skipped["result"]["skipped"] == 1
        assert skipped["result"]["badRows"][0]["line"] == 2
        assert (await http.get(skipped["result"]["output"]["url"])).text == "a\r\n1\r\n2\r\n"


async def test_upload_limits_and_names(service: dict[str, Any]) -> None:
    async with client(service, "alice") as http:
        too_big = await http.post("/api/files", params={"name": "big.csv"},
                                  content=b"x" * (UPLOAD_MAX + 1))
        assert too_big.status_code == 413
        nameless = await http.post("/api/files", content=b"a\n")
        assert nameless.status_code == 400 and "name" in nameless.json()["message"]
        slashed = await http.post("/api/files", params={"name": "../x.csv"}, content=b"a\n")
        assert slashed.status_code == 400
        other = (await http.post("/api/jobs", json={"type": "sentiment",
                                                   "data": {"text": "fine"}})).json()
        assert (await http.get(f"/api/jobs/{other['id']}/output")).status_code == 404


async def test_cancel_stops_a_conversion_and_leaves_no_file(service: dict[str, Any]) -> None:
    async with client(service, "alice") as http:
        created = await http.post("/api/jobs", json={"type": "data-conversion", "data": {
            "filePath": "large.csv", "outputFormat": "json"}})
        job_id = created.json()["id"]

        async def active() -> bool:
            return bool((await http.get(f"/api/jobs/{job_id}")).json()["status"] == "active")

        await eventually(active, timeout=60, what="the conversion to start")
        cancelled = await http.patch(f"/api/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        job = await finished_or_cancelled(http, job_id)
        assert job["status"] == "cancelled" and job["result"] is None
        assert (await http.get(f"/api/jobs/{job_id}/output")).status_code == 409
        queue, _, number = job_id.partition(":")
        store = FileStore(service["data"], timedelta(days=1))
        assert not store.output_path(("alice", "acme"), queue, number, "json").exists()
        assert not list(store.base.rglob("*.part"))


async def finished_or_cancelled(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = (await http.get(f"/api/jobs/{job_id}")).json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    return await eventually(probe, timeout=60, what=f"job {job_id} to stop")


async def test_csv_to_an_excel_workbook_and_back(service: dict[str, Any]) -> None:
    async with client(service, "alice") as http:
        job = await convert(http, filePath="people.csv", outputFormat="xlsx")
        download = await http.get(job["result"]["output"]["url"])
        assert download.headers["content-type"] == (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        sheet = openpyxl.load_workbook(io.BytesIO(download.content)).worksheets[0]
        assert list(sheet.iter_rows(values_only=True)) == [
            ("id", "name", "note"), ("1", "Zoë 🎉", 'says "hi", then\nleaves'), ("2", "李", None)]
        stored = await upload(http, "people.xlsx", download.content)
        back = await convert(http, fileId=stored["id"], outputFormat="jsonl")
        lines = (await http.get(back["result"]["output"]["url"])).text.splitlines()
        assert json.loads(lines[1]) == {"id": "2", "name": "李", "note": None}
