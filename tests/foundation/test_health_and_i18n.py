"""Health check, the Korean-first login page and the English switch, translation coverage."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient
from babel.messages.extract import extract_from_dir

from server.app import create_app
from server.config import PROJECT_ROOT
from server.i18n import LOCALES_DIR, read_catalogs
from tests.conftest import World, make_settings


async def test_healthz_ok(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_reports_an_unreachable_database(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/db.sqlite", tmp_path)
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["database"] == "unreachable"


async def test_login_page_is_korean_first_with_english_switch(client: TestClient, world: World) -> None:
    korean = await (await client.get("/login")).text()
    assert '<html lang="ko">' in korean and "로그인" in korean
    english = await client.get("/login?lang=en")
    text = await english.text()
    assert '<html lang="en">' in text and "Log in" in text and "로그인" not in text
    # The choice sticks (cookie) on later pages.
    assert '<html lang="en">' in await (await client.get("/login")).text()


def test_every_message_has_a_korean_translation() -> None:
    method_map = [("server/**.py", "python"), ("web/templates/**.html", "jinja2")]
    ids = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(str(PROJECT_ROOT), method_map, keywords={"_": None})
    }
    catalog = read_catalogs(LOCALES_DIR / "ko" / "LC_MESSAGES", "ko")
    missing = sorted(i for i in ids if not (catalog.get(i) and catalog.get(i).string))
    assert missing == [], f"untranslated into Korean: {missing}"
