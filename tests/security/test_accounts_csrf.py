"""Issue 12 item 8: a logged-in browser's CSRF token is bound to its login session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config import Settings
from server.csrf import CSRF_COOKIE
from tests.conftest import World, login, page_csrf

ClientFactory = Callable[..., Awaitable[TestClient]]


async def test_a_planted_cookie_with_the_attackers_own_token_is_refused(
    client: TestClient, world: World, settings: Settings, aiohttp_client: ClientFactory
) -> None:
    # The attacker visits the site anonymously and keeps the nonce cookie and its token.
    attacker = await aiohttp_client(create_app(settings))
    attacker_token = await page_csrf(attacker)
    attacker_nonce = attacker.session.cookie_jar.filter_cookies(attacker.make_url("/"))[CSRF_COOKIE].value

    victim_token = await login(client, "admin")
    # ... and plants that nonce in the logged-in victim's browser (a sibling subdomain can).
    client.session.cookie_jar.update_cookies({CSRF_COOKIE: attacker_nonce}, client.make_url("/"))
    body = {"village_id": world.village_ids[0], "label": "공격"}
    forged = await client.post("/api/v1/admin/kiosks", json=body, headers={"X-CSRF-Token": attacker_token})
    assert forged.status == 403
    assert (await forged.json())["error"]["code"] == "csrf_failed"
    assert victim_token != attacker_token


async def test_the_sessions_own_token_works_and_dies_with_the_session(
    client: TestClient, world: World
) -> None:
    token = await login(client, "admin")
    body = {"village_id": world.village_ids[0], "label": "정상"}
    accepted = await client.post("/api/v1/admin/kiosks", json=body, headers={"X-CSRF-Token": token})
    assert accepted.status == 201
    # Log in again in the same browser: a new session, so the old page's token no longer works.
    await login(client, "admin")
    stale = await client.post("/api/v1/admin/kiosks", json=body, headers={"X-CSRF-Token": token})
    assert stale.status == 403
