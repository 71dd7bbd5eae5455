"""A real browser's `EventSource` (Debian's chromium, headless, driven by Playwright; no browser
download) shows a streamed answer arriving piece by piece, then the job's result."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest

from tests.support.push import ANSWER, PushService, push_service
from tests.support.service import delete_service_keys

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(shutil.which("chromium") is None,
                                reason="needs Debian's chromium (make test installs it)")

# What a page of the user's would do: show the answer as it streams, then the outcome.
PAGE_SCRIPT = """([url]) => {
  window.answer = document.createElement("pre");
  document.body.replaceChildren(window.answer);
  window.seen = [];
  const source = new EventSource(url);
  source.addEventListener("job-update", () => window.opened = true);
  source.addEventListener("job-delta", (e) => {
    window.answer.textContent += JSON.parse(e.data).text;
    window.seen.push(window.answer.textContent.length);
  });
  source.addEventListener("job-completed", (e) => {
    window.result = JSON.parse(e.data).result.content;
    source.close();
  });
}"""


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PushService]:
    async with push_service(tmp_path_factory.mktemp("data"),
                            tmp_path_factory.mktemp("logs") / "serve.log") as svc:
        svc.fake.pace = 0.02
        yield svc
    await delete_service_keys(svc.env)


async def test_an_eventsource_page_shows_a_streamed_answer_arriving(
        service: PushService) -> None:
    from playwright.async_api import async_playwright

    service.fake.hold()
    job = await service.create("alice")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = await browser.new_page()
            # Any page of the API's origin: EventSource is same-origin here.
            await page.goto(f"{service.proc.base_url}/agent/queue/health")
            url = f"/api/jobs/{job}/events?token={service.keys['alice']}"
            await page.evaluate(PAGE_SCRIPT, [url])
            await page.wait_for_function("window.opened === true", timeout=30_000)
            service.fake.release()
            await page.wait_for_function("window.result !== undefined", timeout=60_000)
            shown = await page.text_content("pre")
            seen = await page.evaluate("window.seen")
            result = await page.evaluate("window.result")
        finally:
            await browser.close()
    assert shown == result == ANSWER
    # It arrived in pieces, each adding to what was shown.
    assert len(seen) > 5 and seen == sorted(seen) and seen[-1] == len(ANSWER)
