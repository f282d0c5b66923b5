"""Rooms over HTTP: the admin's API and page, who may see which room, the meeting pages."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestClient

from tests.conftest import World, login, page_csrf
from tests.signaling.signaling_kit import Admin


async def _as_kiosk(client: TestClient, token: str, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        response = await agent.get(client.make_url(path), headers={"Authorization": f"Bearer {token}"})
        return response.status, await response.text()


async def test_admin_api_creates_invites_lists_and_closes_rooms(client: TestClient, world: World) -> None:
    admin = await Admin(client, world).login()
    kiosk_id, token = await admin.kiosk("남성리 마을회관")
    other_kiosk, other_token = await admin.kiosk("다른 마을회관", village=1)
    room_id = await admin.room("  안전 회의  ", account_ids=[world.official_id], kiosk_ids=[kiosk_id])

    listed = (await (await client.get("/api/v1/admin/rooms")).json())["rooms"]
    assert listed[0]["id"] == room_id and listed[0]["title"] == "안전 회의" and listed[0]["open"]
    assert listed[0]["invited_account_ids"] == [world.official_id]
    assert listed[0]["invited_kiosk_ids"] == [kiosk_id]
    assert listed[0]["participants_here"] == 0

    # The invited kiosk sees the room (with its kiosk URL); another kiosk does not.
    status, body = await _as_kiosk(client, token, "/api/v1/rooms/mine")
    assert status == 200 and f'"/kiosk/rooms/{room_id}"' in body
    status, body = await _as_kiosk(client, other_token, "/api/v1/rooms/mine")
    assert status == 200 and '"rooms": []' in body
    assert (await _as_kiosk(client, other_token, f"/kiosk/rooms/{room_id}"))[0] == 403
    status, page = await _as_kiosk(client, token, f"/kiosk/rooms/{room_id}")
    assert status == 200 and "data-meeting" in page and "안전 회의" in page

    # Inviting later works, repeats are harmless, unknown invitees are refused.
    invited = await admin.post(
        f"/api/v1/admin/rooms/{room_id}/invitations", {"kiosk_ids": [other_kiosk, kiosk_id]}
    )
    assert sorted(invited["room"]["invited_kiosk_ids"]) == sorted([kiosk_id, other_kiosk])
    refused = await admin.post(f"/api/v1/admin/rooms/{room_id}/invitations", {"kiosk_ids": [999]}, status=404)
    assert refused["error"]["code"] == "kiosk_not_found"
    bad = await admin.post("/api/v1/admin/rooms", {"title": ""}, status=400)
    assert bad["error"]["code"] == "validation_failed"

    closed = await admin.post(f"/api/v1/admin/rooms/{room_id}/close")
    assert closed["room"]["open"] is False and closed["room"]["closed_at"]
    status, body = await _as_kiosk(client, token, "/api/v1/rooms/mine")
    assert '"rooms": []' in body
    assert (await _as_kiosk(client, token, f"/kiosk/rooms/{room_id}"))[0] == 410
    again = await admin.post(
        f"/api/v1/admin/rooms/{room_id}/invitations", {"kiosk_ids": [kiosk_id]}, status=409
    )
    assert again["error"]["code"] == "room_closed"


async def test_officials_cannot_manage_rooms_and_see_only_their_invitations(
    client: TestClient, world: World
) -> None:
    admin = await Admin(client, world).login()
    mine = await admin.room("내 회의", account_ids=[world.official_id])
    other = await admin.room("남의 회의", account_ids=[world.other_official_id])
    client.session.cookie_jar.clear()
    csrf = await login(client, "official")
    assert (await client.get("/api/v1/admin/rooms")).status == 403
    created = await client.post("/api/v1/admin/rooms", json={"title": "x"}, headers={"X-CSRF-Token": csrf})
    assert created.status == 403
    assert (await client.get("/admin/rooms")).status == 403
    rooms = (await (await client.get("/api/v1/rooms/mine")).json())["rooms"]
    assert rooms == [{"id": mine, "title": "내 회의", "url": f"/rooms/{mine}"}]
    assert (await client.get(f"/rooms/{mine}")).status == 200
    refused = await client.get(f"/rooms/{other}")
    assert refused.status == 403
    assert (await client.get("/rooms/424242")).status == 404


async def test_admin_page_creates_and_closes_a_room(client: TestClient, world: World) -> None:
    admin = await Admin(client, world).login()
    kiosk_id, _token = await admin.kiosk("남성리 마을회관")
    csrf = await page_csrf(client, "/admin/rooms")
    page = await (await client.get("/admin/rooms")).text()
    assert "회의실" in page and "남성리 마을회관" in page and "김민원" in page
    form = aiohttp.FormData()
    for key, value in (
        ("csrf_token", csrf),
        ("title", "이장 회의"),
        ("account_ids", str(world.official_id)),
        ("account_ids", str(world.other_official_id)),
        ("kiosk_ids", str(kiosk_id)),
    ):
        form.add_field(key, value)
    response = await client.post("/admin/rooms", data=form, allow_redirects=False)
    assert response.status == 303
    rooms = (await (await client.get("/api/v1/admin/rooms")).json())["rooms"]
    assert rooms[0]["title"] == "이장 회의"
    assert sorted(rooms[0]["invited_account_ids"]) == sorted([world.official_id, world.other_official_id])
    assert rooms[0]["invited_kiosk_ids"] == [kiosk_id]
    page = await (await client.get("/admin/rooms")).text()
    assert "이장 회의" in page and "김민원" in page and "남성리 마을회관 (" in page
    empty = await client.post("/admin/rooms", data={"csrf_token": csrf, "title": " "}, allow_redirects=False)
    assert empty.status == 400
    closed = await client.post(
        f"/admin/rooms/{rooms[0]['id']}/close", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert closed.status == 303
    rooms = (await (await client.get("/api/v1/admin/rooms")).json())["rooms"]
    assert rooms[0]["open"] is False
