"""`/docs` and `/redoc` load every asset from the service itself: they render on a machine
without internet (before, Swagger UI came from a CDN and the page stayed blank offline)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from agentqueue.api.app import create_app
from agentqueue.config import Settings

LOCAL = ("127.0.0.1", 50000)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_need_nothing_from_the_internet(
    redis_url: str, prefix: str, tmp_path: Path, page: str
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=tmp_path)
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=LOCAL)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            html = (await http.get(page)).text
            assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
            assets += re.findall(r"""(?:url|spec-url): *["']([^"']+)["']""", html)
            assert assets and not [a for a in assets if re.match(r"(https?:)?//", a)], assets
            sizes = {}
            for asset in assets:
                answer = await http.get(asset)
                assert answer.status_code == 200, asset
                sizes[asset] = len(answer.content)
            scripts = [a for a in assets if a.endswith(".js")]
            assert scripts and all(sizes[a] > 100_000 for a in scripts)  # the UI itself
