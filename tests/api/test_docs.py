"""`/docs` and `/redoc` load every asset from the service itself: they render on a machine
without internet (before, Swagger UI came from a CDN and the page stayed blank offline)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.app_api import in_process_api


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_need_nothing_from_the_internet(
    redis_url: str, prefix: str, tmp_path: Path, page: str
) -> None:
    async with in_process_api(redis_url, prefix, tmp_path) as (http, _):
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
