"""Issue 12 items 10 and 13: officials change their password; admins deactivate accounts (which
ends their sessions at once), grant triage and lift login delays."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config import Settings
from tests.conftest import TEST_PASSWORD, World, login, page_csrf
from tests.petitions.conftest import official_json_call
from tests.signaling.signaling_kit import Participant, session_cookie

ClientFactory = Callable[..., Awaitable[TestClient]]
NEW_PASSWORD = "새-비밀번호-2026-long"


async def try_login(client: TestClient, username: str, password: str) -> int:
    token = await page_csrf(client)
    data = {"username": username, "password": password, "csrf_token": token}
    return (await client.post("/login", data=data, allow_redirects=False)).status


async def test_an_official_changes_her_password_and_her_other_logins_end(
    client: TestClient, world: World, settings: Settings, aiohttp_client: ClientFactory
) -> None:
    elsewhere = await aiohttp_client(create_app(settings))
    await login(elsewhere, "official")
    csrf = await login(client, "official")
    assert (await client.get("/account/password")).status == 200

    async def submit(current: str, new: str) -> int:
        data = {"current_password": current, "new_password": new, "csrf_token": csrf}
        return (await client.post("/account/password", data=data, allow_redirects=False)).status

    assert await submit("wrong password", NEW_PASSWORD) == 403
    assert await submit(TEST_PASSWORD, "short") == 400
    assert await submit(TEST_PASSWORD, TEST_PASSWORD) == 400
    assert await submit(TEST_PASSWORD, NEW_PASSWORD) == 303
    # This browser stays logged in; the other one is logged out.
    assert (await client.get("/api/v1/me")).status == 200
    assert (await elsewhere.get("/api/v1/me")).status == 401
    assert await try_login(elsewhere, "official", TEST_PASSWORD) == 401
    assert await try_login(elsewhere, "official", NEW_PASSWORD) == 303


async def test_the_password_api_needs_the_current_password(client: TestClient, world: World) -> None:
    csrf = await login(client, "admin")
    path = "/api/v1/me/password"
    wrong = await official_json_call(
        client, csrf, "POST", path, {"current_password": "nope", "new_password": NEW_PASSWORD}
    )
    assert wrong.status == 403 and wrong.body["error"]["code"] == "wrong_current_password"
    done = await official_json_call(
        client, csrf, "POST", path, {"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert done.status == 200


async def test_deactivating_an_account_ends_its_sessions_at_once(
    client: TestClient, world: World, settings: Settings, aiohttp_client: ClientFactory
) -> None:
    official = await aiohttp_client(create_app(settings))
    await login(official, "official")
    assert (await official.get("/api/v1/me")).status == 200
    csrf = await login(client, "admin")
    path = f"/api/v1/admin/accounts/{world.official_id}/actions"

    done = await official_json_call(client, csrf, "POST", path, {"action": "deactivate"})
    assert done.status == 200 and done.body["account"]["active"] is False
    assert (await official.get("/api/v1/me")).status == 401
    assert await try_login(official, "official", TEST_PASSWORD) == 401

    back = await official_json_call(client, csrf, "POST", path, {"action": "activate"})
    assert back.body["account"]["active"] is True
    assert await try_login(official, "official", TEST_PASSWORD) == 303

    myself = await official_json_call(
        client, csrf, "POST", f"/api/v1/admin/accounts/{world.admin_id}/actions", {"action": "deactivate"}
    )
    assert myself.status == 409 and myself.body["error"]["code"] == "cannot_deactivate_self"
    page = await client.post(
        f"/admin/accounts/{world.official_id}",
        data={"action": "deactivate", "csrf_token": csrf},
        allow_redirects=False,
    )
    assert page.status == 303
    assert "비활성화됨" in await (await client.get("/admin/accounts")).text()


async def test_an_admin_lifts_login_delays(
    client: TestClient, world: World, settings: Settings, aiohttp_client: ClientFactory
) -> None:
    official = await aiohttp_client(create_app(settings))
    for _ in range(5):
        assert await try_login(official, "official", "wrong password") == 401
    assert await try_login(official, "official", TEST_PASSWORD) == 429
    csrf = await login(client, "admin")
    listing = await official_json_call(client, csrf, "GET", "/api/v1/admin/accounts")
    delayed = {a["username"] for a in listing.body["accounts"] if a["login_delayed_until"]}
    assert delayed == {"official"}
    path = f"/api/v1/admin/accounts/{world.official_id}/actions"
    assert (await official_json_call(client, csrf, "POST", path, {"action": "unlock"})).status == 200
    assert await try_login(official, "official", TEST_PASSWORD) == 303


async def test_only_admins_manage_accounts_and_triage_is_for_officials(
    client: TestClient, world: World
) -> None:
    csrf = await login(client, "official")
    assert (await client.get("/admin/accounts", allow_redirects=False)).status == 403
    path = f"/api/v1/admin/accounts/{world.other_official_id}/actions"
    assert (await official_json_call(client, csrf, "POST", path, {"action": "deactivate"})).status == 403
    await client.post("/logout", data={"csrf_token": csrf})
    admin = await login(client, "admin")
    granted = await official_json_call(client, admin, "POST", path, {"action": "grant_triage"})
    assert granted.status == 200 and granted.body["account"]["can_triage"] is True
    to_admin = await official_json_call(
        client, admin, "POST", f"/api/v1/admin/accounts/{world.admin_id}/actions", {"action": "grant_triage"}
    )
    assert to_admin.status == 400
    bad = await official_json_call(client, admin, "POST", path, {"action": "delete"})
    assert bad.status == 400


async def test_deactivation_closes_the_accounts_sockets_at_once(
    world: World, settings: Settings, aiohttp_client: ClientFactory
) -> None:
    # Only the push from the deactivation can close it in time: the periodic re-check is slow here.
    slow = replace(settings, socket_recheck_seconds=300)
    client = await aiohttp_client(create_app(slow))
    page = await Participant("official", client, cookie=await session_cookie(client, "official")).connect()
    bystander = await Participant(
        "official2", client, cookie=await session_cookie(client, "official2")
    ).connect()
    try:
        csrf = await login(client, "admin")
        path = f"/api/v1/admin/accounts/{world.official_id}/actions"
        assert (await official_json_call(client, csrf, "POST", path, {"action": "deactivate"})).status == 200
        await asyncio.wait_for(page.disconnected.wait(), 10)
        assert bystander.sock.connected
    finally:
        await page.close()
        await bystander.close()
