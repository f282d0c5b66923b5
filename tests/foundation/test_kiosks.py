"""Kiosk enrollment (one-time code → device token) and revocation, over HTTP and socket.io."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
import socketio
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import transaction
from server.kiosks.models import Kiosk
from tests.conftest import World, login, page_csrf


async def _create_kiosk(client: TestClient, world: World, label: str = "남성리 마을회관") -> dict[str, Any]:
    token = await login(client, "admin")
    response = await client.post(
        "/api/v1/admin/kiosks",
        json={"village_id": world.village_ids[0], "label": label},
        headers={"X-CSRF-Token": token},
    )
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def _enroll(client: TestClient, code: str) -> Any:
    """Enroll as the kiosk agent would: a separate client with no cookies."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        response = await agent.post(client.make_url("/api/v1/kiosk/enroll"), json={"code": code})
        await response.read()
        return response


async def _as_kiosk(client: TestClient, token: str, path: str = "/api/v1/me") -> Any:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        response = await agent.get(client.make_url(path), headers={"Authorization": f"Bearer {token}"})
        await response.read()
        return response


async def test_enrollment_gives_a_working_token_and_code_is_one_time(
    client: TestClient, world: World, sessionmaker: Any
) -> None:
    created = await _create_kiosk(client, world)
    response = await _enroll(client, created["enrollment_code"].lower().replace("-", " "))
    assert response.status == 201
    body = await response.json()
    token = body["token"]
    me = await _as_kiosk(client, token)
    assert me.status == 200
    assert (await me.json())["role"] == "kiosk"

    again = await _enroll(client, created["enrollment_code"])
    assert again.status == 401
    assert (await again.json())["error"]["code"] == "enrollment_code_refused"

    async with transaction(sessionmaker) as session:
        kiosk = await session.get(Kiosk, body["kiosk"]["id"])
        assert kiosk is not None
        # Only hashes are stored.
        assert kiosk.token_hash and token not in kiosk.token_hash
        assert kiosk.enrollment_code_hash is None
        assert kiosk.last_seen_at is not None


async def test_expired_code_is_refused(client: TestClient, world: World, sessionmaker: Any) -> None:
    created = await _create_kiosk(client, world)
    async with transaction(sessionmaker) as session:
        await session.execute(
            update(Kiosk)
            .where(Kiosk.id == created["kiosk"]["id"])
            .values(enrollment_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    response = await _enroll(client, created["enrollment_code"])
    assert response.status == 401


async def test_revoked_kiosk_token_is_refused(client: TestClient, world: World) -> None:
    created = await _create_kiosk(client, world)
    admin_csrf = await page_csrf(client, "/admin")
    token = (await (await _enroll(client, created["enrollment_code"])).json())["token"]
    assert (await _as_kiosk(client, token)).status == 200

    revoke = await client.post(
        f"/api/v1/admin/kiosks/{created['kiosk']['id']}/revoke", headers={"X-CSRF-Token": admin_csrf}
    )
    assert revoke.status == 200
    refused = await _as_kiosk(client, token)
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "invalid_token"


async def test_kiosk_browser_enrolls_by_page_and_is_locked_out_after_revocation(
    client: TestClient, world: World, sessionmaker: Any
) -> None:
    created = await _create_kiosk(client, world)
    client.session.cookie_jar.clear()
    page = await client.get(f"/kiosk/enroll?code={created['enrollment_code']}")
    assert created["enrollment_code"] in await page.text()
    csrf = await page_csrf(client, "/kiosk/enroll")
    response = await client.post(
        "/kiosk/enroll", data={"code": created["enrollment_code"], "csrf_token": csrf}, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == "/kiosk"
    assert "maeul_kiosk" in response.cookies
    assert created["enrollment_code"] not in response.headers["Location"]
    home = await client.get("/kiosk")
    assert home.status == 200
    assert "무엇을 도와드릴까요" in await home.text()

    async with transaction(sessionmaker) as session:
        await session.execute(
            update(Kiosk).where(Kiosk.id == created["kiosk"]["id"]).values(revoked_at=dt.datetime.now(dt.UTC))
        )
    locked = await client.get("/kiosk")
    assert locked.status == 401
    assert "등록되어 있지 않습니다" in await locked.text()


async def test_revocation_closes_open_socket_connections(
    client: TestClient, world: World, sessionmaker: Any
) -> None:
    created = await _create_kiosk(client, world)
    admin_csrf = await page_csrf(client, "/admin")
    token = (await (await _enroll(client, created["enrollment_code"])).json())["token"]

    sock = socketio.AsyncClient(reconnection=False)
    revoked = asyncio.Event()
    disconnected = asyncio.Event()
    sock.on("revoked", lambda data: revoked.set())
    sock.on("disconnect", lambda *args: disconnected.set())
    base = str(client.make_url("/")).rstrip("/")
    await sock.connect(base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    try:
        who = await sock.call("whoami", {}, timeout=10)
        assert who["role"] == "kiosk"

        response = await client.post(
            f"/api/v1/admin/kiosks/{created['kiosk']['id']}/revoke", headers={"X-CSRF-Token": admin_csrf}
        )
        assert response.status == 200
        await asyncio.wait_for(disconnected.wait(), 10)
        assert revoked.is_set()
    finally:
        await sock.disconnect()

    # And it cannot come back.
    again = socketio.AsyncClient(reconnection=False)
    try:
        await again.connect(base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        raise AssertionError("a revoked kiosk could open a socket")
    except socketio.exceptions.ConnectionError:
        pass
    finally:
        await again.disconnect()


async def test_socket_without_credentials_is_refused(client: TestClient, world: World) -> None:
    sock = socketio.AsyncClient(reconnection=False)
    base = str(client.make_url("/")).rstrip("/")
    try:
        await sock.connect(base, transports=["websocket"], wait_timeout=10)
        raise AssertionError("an anonymous socket was accepted")
    except socketio.exceptions.ConnectionError:
        pass
    finally:
        await sock.disconnect()


async def test_admin_page_lists_and_revokes_kiosks(
    client: TestClient, world: World, sessionmaker: Any
) -> None:
    created = await _create_kiosk(client, world)
    await _enroll(client, created["enrollment_code"])
    csrf = await page_csrf(client, "/admin/kiosks")
    page = await (await client.get("/admin/kiosks")).text()
    assert "남성리 마을회관" in page and "등록됨" in page
    response = await client.post(
        f"/admin/kiosks/{created['kiosk']['id']}/revoke", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert response.status == 303
    async with transaction(sessionmaker) as session:
        session: AsyncSession
        kiosk = await session.scalar(select(Kiosk).where(Kiosk.id == created["kiosk"]["id"]))
        assert kiosk is not None and kiosk.revoked_at is not None
