"""The dashboard at /admin/queues in a real browser (Debian's chromium, headless, driven by
Playwright; no browser download): a non-admin is refused, an admin logs in with a key, opens a
failed job, retries it and watches it complete; schedules list with their next runs; the
usage page draws its chart; /docs and
/redoc render with every request off the service refused. Screenshots of the main pages go to
`build/screenshots/` (or `$AGENTQUEUE_SCREENSHOTS`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import agentqueue
from tests.support.service import create_key, delete_service_keys, serve_env
from tests.support.waiting import eventually

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(shutil.which("chromium") is None,
                                reason="needs Debian's chromium (make test installs it)")
SHOTS = Path(os.environ.get("AGENTQUEUE_SCREENSHOTS")
             or Path(__file__).resolve().parents[2] / "build" / "screenshots")

# A job type that fails until the test says otherwise (a file it creates): a failed job the
# dashboard's Retry then completes.
FLAKY_APP = '''
import os
from pathlib import Path

from pydantic import BaseModel

import agentqueue

app = agentqueue.App()


class Flaky(BaseModel):
    n: int


@app.job("flaky", attempts=1)
async def flaky(ctx, data: Flaky) -> dict:
    if not Path(os.environ["FLAKY_MARKER"]).exists():
        raise RuntimeError("the upstream is down")
    return {"fixed": True, "n": data.n}
'''


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go; the flaky App written beside the test's data."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    (tmp_path / "flaky_app.py").write_text(FLAKY_APP)
    return SHOTS


async def test_an_admin_retries_a_failed_job_from_the_dashboard(
    tmp_path: Path, shots: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=30_000)  # the page polls every 2 s; a loaded machine is slow
    marker = tmp_path / "fixed"
    env = serve_env(tmp_path / "data", AI_PROVIDER="builtin", FLAKY_MARKER=str(marker))
    admin = create_key(env, "--user", "ops", "--org", "acme", "--admin")
    user = create_key(env, "--user", "alice", "--org", "acme")
    try:
        with agentqueue("serve --app flaky_app.py:app", env, tmp_path / "serve.log",
                        cwd=tmp_path) as service:
            await service.wait_healthy()
            async with httpx.AsyncClient(base_url=service.base_url, timeout=30, headers={
                    "Authorization": f"Bearer {user}"}) as http:
                created = await http.post("/api/jobs", json={"type": "flaky", "data": {"n": 7}})
                assert created.status_code == 201, created.text
                job_id = created.json()["id"]  # seed 001's "<queue>:<id>"

                async def failed() -> Any:
                    job = (await http.get(f"/api/jobs/{job_id}")).json()  # noqa: B023
                    return job if job["status"] == "failed" else None

                await eventually(failed, what="the flaky job to fail")
                nightly = await http.post("/api/schedules", json={
                    "id": "nightly", "type": "flaky", "data": {"n": 1}, "cron": "0 3 * * *",
                    "tz": "Europe/Paris"})
                assert nightly.status_code == 201, nightly.text
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                           headless=True)
                try:
                    page = await browser.new_page(viewport={"width": 1280, "height": 900})
                    await page.goto(f"{service.base_url}/admin/queues")
                    # Not an admin: refused, and asked for another key.
                    await page.fill("#key", user)
                    await page.click("#login")
                    await expect(page.locator("form.login")).to_contain_text("admins")
                    await page.fill("#key", admin)
                    await page.click("#login")
                    card = page.locator("section[data-queue=jobs]")
                    await expect(card.locator(".chip.s-failed")).to_contain_text("1")
                    await page.screenshot(path=str(shots / "overview.png"), full_page=True)

                    await card.locator(".chip.s-failed").click()
                    row = page.locator(f"tr[data-job='jobs/{job_id.split(':')[-1]}']")
                    await expect(row).to_contain_text("the upstream is down")
                    await page.screenshot(path=str(shots / "jobs.png"), full_page=True)
                    await row.click()
                    await expect(page.locator("#error")).to_contain_text("the upstream is down")
                    await page.screenshot(path=str(shots / "job-failed.png"), full_page=True)

                    marker.touch()
                    page.on("dialog", lambda dialog: dialog.accept())
                    await page.click("button[data-action=retry]")
                    # The open page follows the job without a reload.
                    await expect(page.locator("h1 + div .chip.s-completed, .row .chip.s-completed")
                                 .first).to_be_visible(timeout=30_000)
                    await expect(page.locator("#result")).to_contain_text('"fixed": true')
                    timeline = page.locator(".timeline")
                    await expect(timeline).to_contain_text("retried by hand")
                    await page.screenshot(path=str(shots / "job-completed.png"), full_page=True)

                    await page.click("header a[data-nav=schedules]")
                    schedule = page.locator("tr[data-schedule=nightly]")
                    await expect(schedule).to_contain_text("0 3 * * * (Europe/Paris)")
                    await expect(schedule).to_contain_text("alice")
                    await page.screenshot(path=str(shots / "schedules.png"), full_page=True)

                    await page.click("header a[data-nav=usage]")
                    await expect(page.locator("#usage-chart svg rect").first).to_be_attached()
                    await page.screenshot(path=str(shots / "usage.png"), full_page=True)

                    # The API docs render with no internet: Swagger UI lists the operations,
                    # ReDoc its menu, from assets the service serves.
                    offline = await browser.new_page()
                    await offline.route(lambda url: not url.startswith(service.base_url),
                                        lambda route: route.abort())
                    await offline.goto(f"{service.base_url}/docs")
                    await expect(offline.locator(".opblock-summary-path").first).to_be_visible()
                    await expect(offline.locator("body")).to_contain_text("/agent/queue/chat")
                    await offline.screenshot(path=str(shots / "docs.png"))
                    await offline.goto(f"{service.base_url}/redoc")
                    await expect(offline.locator("body")).to_contain_text("/agent/queue/chat")
                    await offline.screenshot(path=str(shots / "redoc.png"))
                finally:
                    await browser.close()
        assert "Traceback" not in service.log()
    finally:
        await delete_service_keys(env)
