"""The meetings JSON API, pages, exports and calendar feeds over real HTTP (both databases)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp.test_utils import TestClient
from icalendar import Calendar
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import transaction
from server.meetings import service
from tests.conftest import World, login
from tests.meetings.conftest import START, KioskRef, admin_principal, make_kiosk

SEOUL = ZoneInfo("Asia/Seoul")


async def as_kiosk(
    client: TestClient, kiosk: KioskRef, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    """Call as the kiosk agent does: bearer token, no cookies."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        async with agent.request(method, client.make_url(path), headers=kiosk.headers, **kwargs) as response:
            raw = await response.read()
            if response.content_type == "application/json":
                return response.status, json.loads(raw)
            return response.status, raw


def meeting_body(world: World, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "마을 안길 정비 회의",
        "purpose": "안길 포장",
        "starts_at": START.isoformat(),
        "ends_at": (START + dt.timedelta(hours=1)).isoformat(),
        "chair_id": world.official_id,
        "village_ids": [world.village_ids[0], world.village_ids[1]],
        "join_mode": "auto",
    }
    body.update(overrides)
    return body


async def test_api_schedules_validates_and_refuses_by_role(
    client: TestClient, world: World, kiosk_a: KioskRef
) -> None:
    csrf = await login(client, "official")
    response = await client.post("/api/v1/meetings", json=meeting_body(world), headers={"X-CSRF-Token": csrf})
    assert response.status == 403

    await client.post("/logout", data={"csrf_token": csrf})
    csrf = await login(client, "admin")
    headers = {"X-CSRF-Token": csrf}
    naive = meeting_body(world, starts_at="2030-03-05T10:00:00")
    response = await client.post("/api/v1/meetings", json=naive, headers=headers)
    assert response.status == 400 and (await response.json())["error"]["code"] == "validation_failed"
    backwards = meeting_body(world, ends_at=(START - dt.timedelta(hours=1)).isoformat())
    response = await client.post("/api/v1/meetings", json=backwards, headers=headers)
    assert response.status == 400 and (await response.json())["error"]["code"] == "ends_before_start"
    response = await client.post("/api/v1/meetings", json=meeting_body(world, extra=1), headers=headers)
    assert response.status == 400

    response = await client.post("/api/v1/meetings", json=meeting_body(world), headers=headers)
    assert response.status == 201, await response.text()
    body = await response.json()
    meeting_id = body["meeting"]["id"]
    assert body["villages_without_kiosk"] == [world.village_ids[1]]

    response = await client.post(
        f"/api/v1/meetings/{meeting_id}/transitions", json={"action": "end"}, headers=headers
    )
    assert response.status == 409
    error = (await response.json())["error"]
    assert (error["code"], error["message"], error["details"]) == (
        "illegal_meeting_transition",
        "cannot end a scheduled meeting",
        {"from_status": "scheduled", "action": "end"},
    )
    for title in ("첫째", "둘째", "셋째"):
        response = await client.post(
            f"/api/v1/meetings/{meeting_id}/agenda", json={"title": title}, headers=headers
        )
        assert response.status == 201
    items = (await response.json())["meeting"]["agenda"]
    response = await client.patch(
        f"/api/v1/meetings/{meeting_id}/agenda/{items[2]['id']}", json={"position": 1}, headers=headers
    )
    assert [i["title"] for i in (await response.json())["meeting"]["agenda"]] == ["셋째", "첫째", "둘째"]
    response = await client.delete(f"/api/v1/meetings/{meeting_id}/agenda/{items[0]['id']}", headers=headers)
    assert [(i["position"], i["title"]) for i in (await response.json())["meeting"]["agenda"]] == [
        (1, "셋째"),
        (2, "둘째"),
    ]

    response = await client.post(
        f"/api/v1/meetings/{meeting_id}/transitions", json={"action": "start"}, headers=headers
    )
    assert response.status == 200 and (await response.json())["meeting"]["status"] == "live"
    response = await client.patch(
        f"/api/v1/meetings/{meeting_id}", json={"village_ids": [world.village_ids[0]]}, headers=headers
    )
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "meeting_live_limited"


async def test_uninvited_kiosk_and_official_are_refused(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession], kiosk_a: KioskRef
) -> None:
    stranger = await make_kiosk(sessionmaker, world.village_ids[4], "먼 마을회관")
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        result = await service.schedule_meeting(
            session,
            admin_principal(world),
            service.MeetingDraft(
                title="회의",
                starts_at=START,
                ends_at=START + dt.timedelta(hours=1),
                chair_id=world.official_id,
                village_ids=(world.village_ids[0],),
            ),
        )
        meeting_id = result.meeting.id

    status, body = await as_kiosk(client, kiosk_a, "GET", f"/api/v1/meetings/{meeting_id}/admission")
    assert status == 409 and body["error"]["code"] == "meeting_not_live"  # invited, not started yet
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        meeting = await service.get_meeting(session, meeting_id)
        await service.start_meeting(session, admin_principal(world), meeting)
        room_id = meeting.room_id
    status, body = await as_kiosk(client, kiosk_a, "GET", f"/api/v1/meetings/{meeting_id}/admission")
    assert status == 200 and body == {"may_join": True, "room_id": room_id, "url": f"/kiosk/rooms/{room_id}"}
    status, body = await as_kiosk(client, stranger, "GET", f"/api/v1/meetings/{meeting_id}/admission")
    assert status == 403 and body["error"]["code"] == "not_invited"
    status, _ = await as_kiosk(client, stranger, "GET", f"/kiosk/meetings/{meeting_id}/join")
    assert status == 403
    status, body = await as_kiosk(client, kiosk_a, "GET", "/api/v1/kiosk/meetings")
    assert (
        status == 200 and [m["id"] for m in body["meetings"]] == [meeting_id] and body["meetings"][0]["live"]
    )
    status, body = await as_kiosk(client, stranger, "GET", "/api/v1/kiosk/meetings")
    assert body["meetings"] == []

    await login(client, "official2")  # not invited
    assert f"/meetings/{meeting_id}/record" not in await (await client.get("/official/meetings")).text()
    assert (await client.get(f"/api/v1/meetings/{meeting_id}/admission")).status == 403
    assert (await client.get(f"/api/v1/meetings/{meeting_id}")).status == 404
    assert (await client.get(f"/meetings/{meeting_id}/record")).status == 404
    assert (await client.get(f"/meetings/{meeting_id}/record.csv")).status == 404
    assert (await client.get(f"/meetings/{meeting_id}/join", allow_redirects=False)).status == 403

    await login(client, "official")  # the chair
    response = await client.get(f"/meetings/{meeting_id}/join", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == f"/rooms/{room_id}"
    assert (await client.get(f"/meetings/{meeting_id}/record")).status == 200
    mine = await (await client.get("/official/meetings")).text()
    assert f"/meetings/{meeting_id}/record" in mine and f"/meetings/{meeting_id}/join" in mine


async def test_calendar_feeds_have_seoul_times_and_cancellations(
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    kiosk_a: KioskRef,
    kiosk_b: KioskRef,
) -> None:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        admin = admin_principal(world)
        kept = await service.schedule_meeting(
            session,
            admin,
            service.MeetingDraft(
                title="벼 수매 회의",
                starts_at=START,
                ends_at=START + dt.timedelta(minutes=90),
                chair_id=world.official_id,
                village_ids=(world.village_ids[0],),
            ),
        )
        dropped = await service.schedule_meeting(
            session,
            admin,
            service.MeetingDraft(
                title="취소된 회의",
                starts_at=START + dt.timedelta(days=1),
                ends_at=START + dt.timedelta(days=1, hours=1),
                chair_id=world.other_official_id,
                official_ids=(world.official_id,),
                village_ids=(world.village_ids[0], world.village_ids[1]),
            ),
        )
        await service.cancel_meeting(session, admin, dropped.meeting, "태풍")
        kept_id, dropped_id = kept.meeting.id, dropped.meeting.id

    assert (await client.get("/official/meetings.ics", allow_redirects=False)).status in (302, 303, 401)
    await login(client, "official")
    response = await client.get("/official/meetings.ics")
    assert response.status == 200 and response.content_type == "text/calendar"
    calendar = Calendar.from_ical(await response.read())
    events = {str(e["uid"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {f"meeting-{kept_id}@maeul.gangjin", f"meeting-{dropped_id}@maeul.gangjin"}
    kept_event = events[f"meeting-{kept_id}@maeul.gangjin"]
    start = kept_event.decoded("dtstart")
    assert kept_event["dtstart"].params["TZID"] == "Asia/Seoul"
    assert start == START and start.utcoffset() == dt.timedelta(hours=9)
    assert (start.hour, start.minute) == (10, 0)  # 10:00 on Gangjin's clock
    assert kept_event.decoded("dtend") == START + dt.timedelta(minutes=90)
    assert str(kept_event["summary"]) == "벼 수매 회의" and str(kept_event["status"]) == "CONFIRMED"
    cancelled = events[f"meeting-{dropped_id}@maeul.gangjin"]
    assert str(cancelled["status"]) == "CANCELLED" and int(cancelled["sequence"]) == 1
    assert any(tz["tzid"] == "Asia/Seoul" for tz in calendar.walk("VTIMEZONE"))

    status, raw = await as_kiosk(client, kiosk_b, "GET", "/kiosk/meetings.ics")
    assert status == 200
    uids = [str(e["uid"]) for e in Calendar.from_ical(raw).walk("VEVENT")]
    assert uids == [f"meeting-{dropped_id}@maeul.gangjin"]
    status, raw = await as_kiosk(client, kiosk_a, "GET", "/kiosk/meetings.ics")
    assert len(Calendar.from_ical(raw).walk("VEVENT")) == 2


async def test_admin_pages_record_and_exports(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession], kiosk_a: KioskRef
) -> None:
    csrf = await login(client, "admin")
    response = await client.get("/admin/meetings")
    assert response.status == 200 and "회의 예약" in await response.text()
    form = aiohttp.FormData()
    for key, value in (
        ("csrf_token", csrf),
        ("title", "경로당 난방 회의"),
        ("purpose", "겨울 난방비"),
        ("starts_at", "2030-03-05T10:00"),
        ("ends_at", "2030-03-05T09:00"),
        ("chair_id", str(world.official_id)),
        ("village_ids", str(world.village_ids[0])),
        ("join_mode", "touch"),
        ("lobby_mode", "wait"),
    ):
        form.add_field(key, value)
    response = await client.post("/admin/meetings", data=form, allow_redirects=False)
    assert response.status == 400 and "종료 시각은 시작 시각보다 늦어야" in await response.text()
    response = await client.post(
        "/admin/meetings",
        data={
            "csrf_token": csrf,
            "title": "경로당 난방 회의",
            "starts_at": "2030-03-05T10:00",
            "ends_at": "2030-03-05T11:30",
            "chair_id": str(world.official_id),
            "village_ids": str(world.village_ids[0]),
            "join_mode": "touch",
            "lobby_mode": "wait",
        },
        allow_redirects=False,
    )
    assert response.status == 303
    location = response.headers["Location"]
    meeting_id = int(location.rsplit("/", 1)[1])
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        meeting = await service.get_meeting(session, meeting_id)
        assert meeting.starts_at == START  # the form's time is read as Asia/Seoul
        assert meeting.ends_at == START + dt.timedelta(minutes=90)
    for title in ("난방비 지원", "경로당 보일러"):
        response = await client.post(
            f"/admin/meetings/{meeting_id}/agenda",
            data={"csrf_token": csrf, "title": title},
            allow_redirects=False,
        )
        assert response.status == 303
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        second = (await service.get_meeting(session, meeting_id)).agenda[1].id
    response = await client.post(
        f"/admin/meetings/{meeting_id}/agenda/{second}/up", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert response.status == 303
    page = await (await client.get(location)).text()
    assert page.index("경로당 보일러") < page.index("난방비 지원")
    for step in ("start", "end"):
        response = await client.post(
            f"/admin/meetings/{meeting_id}/{step}", data={"csrf_token": csrf}, allow_redirects=False
        )
        assert response.status == 303
    response = await client.post(
        f"/admin/meetings/{meeting_id}/agenda/{second}/minutes",
        data={"csrf_token": csrf, "notes": "보일러 교체 필요", "decisions": "12월에 교체"},
        allow_redirects=False,
    )
    assert response.status == 303
    response = await client.post(
        f"/admin/meetings/{meeting_id}/start", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert response.status == 409 and "지금 회의 상태에서는 할 수 없는" in await response.text()

    record = await client.get(f"/meetings/{meeting_id}/record")
    text = await record.text()
    assert record.status == 200 and "12월에 교체" in text and "경로당 난방 회의" in text
    response = await client.get(f"/meetings/{meeting_id}/record.csv")
    csv_text = (await response.read()).decode("utf-8-sig")
    assert response.status == 200 and "decision,1,경로당 보일러,12월에 교체" in csv_text
    response = await client.get(f"/meetings/{meeting_id}/record.json")
    data = json.loads(await response.read())
    assert data["agenda"][0]["decisions"] == "12월에 교체"
    assert data["meeting"]["starts_at"] == START.isoformat()


async def test_openapi_declarations_match_the_routes(client: TestClient) -> None:
    from server.meetings.openapi_spec import meeting_endpoints
    from server.openapi.document import build_document

    document = build_document(meeting_endpoints())
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    routes = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if (
            path
            and route.method != "HEAD"
            and route.handler.__module__ == "server.meetings.api"
            and path.startswith("/api/")
        ):
            routes.add((route.method, path))
    assert documented == routes
