"""The app's pages as the router lists them, for the accessibility tests: a new page is checked
without anyone remembering to add it."""

from __future__ import annotations

import re
from collections.abc import Mapping

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

from server.app import create_app
from server.config import Settings

# Routes that answer with a file or a download, not a page (matched against the path and, for a
# route such as /kiosk/{feed:meetings\.ics}, its pattern too).
FILES = re.compile(r"\.(csv|json|ics)\b|/media$|/recordings/\{")


def router_pages(settings: Settings) -> list[str]:
    """Every GET route that serves a page, path parameters kept as ``{name}`` placeholders."""
    paths = set()
    for route in create_app(settings).router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        regex = info["pattern"].pattern if "pattern" in info else ""
        if route.method == "GET" and path and not FILES.search(path + regex):
            paths.add(path)
    return sorted(paths)


def filled(path: str, ids: Mapping[str, int | None]) -> str:
    """``path`` with each ``{name}`` replaced by ``ids[name]`` (a KeyError names a new parameter)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


async def axe_violations(page: Page) -> list[str]:
    """One line per axe-core violation on the page as it is now (rule, impact, first targets)."""
    results = await Axe().run(page)
    return [
        f"{page.url}: axe {v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']][:3]}"
        for v in results.response["violations"]
    ]
