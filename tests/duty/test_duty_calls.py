"""Calling the county office: the call rings only officials on duty, the first to answer gets a
room with the kiosk, a second answer is refused, and an unanswered call turns into 'missed'."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.db import transaction
from server.rooms import service as rooms
from server.rooms.models import Room
from tests.conftest import World, enrolled_kiosk, login, make_settings

_kiosk = enrolled_kiosk


async def _kiosk_call(client: TestClient, token: str, method: str, path: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        response = await http.request(
            method, client.make_url(path), headers={"Authorization": f"Bearer {token}"}
        )
        return response.status, await response.json()


@pytest.fixture
async def two_officials(aiohttp_client: Any, client: TestClient) -> TestClient:
    """A second browser (another official) on the same server."""
    return await aiohttp_client(client.server)


async def test_first_on_duty_official_answers_and_gets_a_room_with_the_kiosk(
    client: TestClient, two_officials: TestClient, world: World, sessionmaker: Any
) -> None:
    kiosk_id, token = await _kiosk(sessionmaker, world.village_ids[0])
    first_csrf = await login(client, "official")
    second_csrf = await login(two_officials, "official2")
    assert (
        await client.post(
            "/api/v1/duty/availability", json={"available": True}, headers={"X-CSRF-Token": first_csrf}
        )
    ).status == 200

    status, body = await _kiosk_call(client, token, "POST", "/api/v1/kiosk/duty-calls")
    assert status == 201 and body["call"]["status"] == "ringing"
    call_id = body["call"]["id"]
    # Calling again while ringing keeps the same call (a double tap is not two calls).
    _, again = await _kiosk_call(client, token, "POST", "/api/v1/kiosk/duty-calls")
    assert again["call"]["id"] == call_id

    ringing = await (await client.get("/api/v1/duty/ringing")).json()
    assert [c["id"] for c in ringing["calls"]] == [call_id] and ringing["calls"][0]["village"]
    # Not on duty: this page does not ring.
    assert (await (await two_officials.get("/api/v1/duty/ringing")).json())["calls"] == []

    await two_officials.post(
        "/api/v1/duty/availability", json={"available": True}, headers={"X-CSRF-Token": second_csrf}
    )
    answered = await client.post(f"/api/v1/duty/calls/{call_id}/answer", headers={"X-CSRF-Token": first_csrf})
    assert answered.status == 200
    room_url = (await answered.json())["call"]["room_url"]
    late = await two_officials.post(
        f"/api/v1/duty/calls/{call_id}/answer", headers={"X-CSRF-Token": second_csrf}
    )
    assert late.status == 409 and (await late.json())["error"]["code"] == "call_taken"

    status, body = await _kiosk_call(client, token, "GET", f"/api/v1/kiosk/duty-calls/{call_id}")
    assert body["call"]["status"] == "answered"
    room_id = int(body["call"]["room_url"].rsplit("/", 1)[1])
    assert room_url == f"/rooms/{room_id}"
    async with transaction(sessionmaker) as session:
        room = await session.get(Room, room_id)
        assert room is not None and room.is_open
        invited = {(i.account_id, i.kiosk_id) for i in room.invitations}
        assert invited == {(world.official_id, None), (None, kiosk_id)}
        assert not await rooms.may_join(session, _official2(world), room)
    assert (await (await two_officials.get("/api/v1/duty/ringing")).json())["calls"] == []


def _official2(world: World) -> Any:
    from server.auth.roles import Principal, Role

    return Principal(role=Role.OFFICIAL, id=world.other_official_id, display_name="박안전")


async def test_unanswered_call_is_missed_and_cannot_be_answered_late(
    aiohttp_client: Any, db_url: str, tmp_path: Path, world: World, sessionmaker: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings(db_url, tmp_path, duty_ring_seconds=1)))
    _, token = await _kiosk(sessionmaker, world.village_ids[0])
    csrf = await login(client, "official")
    await client.post("/api/v1/duty/availability", json={"available": True}, headers={"X-CSRF-Token": csrf})
    _, body = await _kiosk_call(client, token, "POST", "/api/v1/kiosk/duty-calls")
    call_id = body["call"]["id"]
    await asyncio.sleep(1.5)
    _, body = await _kiosk_call(client, token, "GET", f"/api/v1/kiosk/duty-calls/{call_id}")
    assert body["call"]["status"] == "missed"
    late = await client.post(f"/api/v1/duty/calls/{call_id}/answer", headers={"X-CSRF-Token": csrf})
    assert late.status == 409 and (await late.json())["error"]["code"] == "call_missed"
    # Another kiosk cannot read this kiosk's call.
    _, other = await _kiosk(sessionmaker, world.village_ids[1])
    status, _ = await _kiosk_call(client, other, "GET", f"/api/v1/kiosk/duty-calls/{call_id}")
    assert status == 404


async def test_cancel_and_bad_input(client: TestClient, world: World, sessionmaker: Any) -> None:
    _, token = await _kiosk(sessionmaker, world.village_ids[0])
    _, body = await _kiosk_call(client, token, "POST", "/api/v1/kiosk/duty-calls")
    status, body = await _kiosk_call(
        client, token, "POST", f"/api/v1/kiosk/duty-calls/{body['call']['id']}/cancel"
    )
    assert status == 200 and body["call"]["status"] == "cancelled"
    csrf = await login(client, "official")
    bad = await client.post(
        "/api/v1/duty/availability", json={"available": "yes"}, headers={"X-CSRF-Token": csrf}
    )
    assert bad.status == 400
    missing = await client.post("/api/v1/duty/calls/abc/answer", headers={"X-CSRF-Token": csrf})
    assert missing.status == 400
    # Kiosks cannot answer, officials cannot ring.
    status, _ = await _kiosk_call(client, token, "POST", "/api/v1/duty/calls/1/answer")
    assert status == 403
    assert (await client.post("/api/v1/kiosk/duty-calls", headers={"X-CSRF-Token": csrf})).status == 403


async def test_only_an_official_on_duty_answers_a_ringing_call(
    client: TestClient, two_officials: TestClient, world: World, sessionmaker: Any
) -> None:
    _, token = await _kiosk(sessionmaker, world.village_ids[0])
    on_duty_csrf = await login(client, "official")
    off_duty_csrf = await login(two_officials, "official2")

    async def on_duty(available: bool) -> None:
        response = await client.post(
            "/api/v1/duty/availability", json={"available": available}, headers={"X-CSRF-Token": on_duty_csrf}
        )
        assert response.status == 200

    async def answer(browser: TestClient, csrf: str) -> Any:
        return await browser.post(f"/api/v1/duty/calls/{call_id}/answer", headers={"X-CSRF-Token": csrf})

    await on_duty(True)
    _, body = await _kiosk_call(client, token, "POST", "/api/v1/kiosk/duty-calls")
    call_id = body["call"]["id"]

    refused = await answer(two_officials, off_duty_csrf)
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "not_on_duty"
    _, still = await _kiosk_call(client, token, "GET", f"/api/v1/kiosk/duty-calls/{call_id}")
    assert still["call"]["status"] == "ringing"
    # Off duty again: the official who was on duty cannot take it either.
    await on_duty(False)
    assert (await answer(client, on_duty_csrf)).status == 403
    await on_duty(True)
    taken = await answer(client, on_duty_csrf)
    assert taken.status == 200 and (await taken.json())["call"]["status"] == "answered"
