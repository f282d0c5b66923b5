"""County notices: a notice for two villages reaches those kiosks and no other, and its
delivery report fills in as they show it."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from tests.conftest import World, enrolled_kiosk, login


async def _kiosk(sessionmaker: Any, village_id: int, label: str) -> str:
    return (await enrolled_kiosk(sessionmaker, village_id, label))[1]


async def _as_kiosk(client: TestClient, token: str, method: str, path: str) -> Any:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        response = await http.request(
            method, client.make_url(path), headers={"Authorization": f"Bearer {token}"}
        )
        body = await response.read()
        return response.status, body


def _window(hours_from: float = -1, hours_to: float = 24) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    return {
        "starts_at": (now + dt.timedelta(hours=hours_from)).isoformat(),
        "ends_at": (now + dt.timedelta(hours=hours_to)).isoformat(),
    }


async def test_notice_reaches_its_two_villages_only_and_delivery_is_reported(
    client: TestClient, world: World, sessionmaker: Any
) -> None:
    v1, v2, v3 = world.village_ids[:3]
    a = await _kiosk(sessionmaker, v1, "A")
    b = await _kiosk(sessionmaker, v2, "B")
    c = await _kiosk(sessionmaker, v3, "C")
    csrf = await login(client, "official")
    response = await client.post(
        "/api/v1/notices",
        json={
            "title": "벼 수매 안내",
            "body": "11월 30일 마을회관 앞 <b>수매</b>",
            "village_ids": [v1, v2],
            **_window(),
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 201, await response.text()
    notice_id = (await response.json())["notice"]["id"]

    for token in (a, b):
        status, body = await _as_kiosk(client, token, "GET", "/api/v1/kiosk/notices")
        assert status == 200
        assert [n["id"] for n in json.loads(body)["notices"]] == [notice_id]
    status, body = await _as_kiosk(client, c, "GET", "/api/v1/kiosk/notices")
    assert json.loads(body)["notices"] == []
    status, _ = await _as_kiosk(client, c, "POST", f"/api/v1/kiosk/notices/{notice_id}/shown")
    assert status == 404  # another village cannot even confirm it exists

    report = await (await client.get(f"/api/v1/notices/{notice_id}/deliveries")).json()
    assert sorted(r["village_id"] for r in report["deliveries"]) == [v1, v2]
    assert all(r["first_shown_at"] is None for r in report["deliveries"])

    for _ in range(2):
        status, _ = await _as_kiosk(client, a, "POST", f"/api/v1/kiosk/notices/{notice_id}/shown")
        assert status == 200
    report = await (await client.get(f"/api/v1/notices/{notice_id}/deliveries")).json()
    by_village = {r["village_id"]: r for r in report["deliveries"]}
    assert by_village[v1]["times_shown"] == 2 and by_village[v1]["first_shown_at"]
    assert by_village[v2]["times_shown"] == 0 and by_village[v2]["first_shown_at"] is None

    page = await (await client.get(f"/official/notices/{notice_id}")).text()
    assert "키오스크 2대 중 1대에 표시되었습니다" in page
    assert "아직 표시 안 됨" in page


async def test_kiosk_home_shows_current_notices_as_text(
    client: TestClient, world: World, sessionmaker: Any
) -> None:
    token = await _kiosk(sessionmaker, world.village_ids[0], "A")
    csrf = await login(client, "official")
    await client.post(
        "/api/v1/notices",
        json={"title": "<script>alert(1)</script>", "body": "모두에게", **_window()},
        headers={"X-CSRF-Token": csrf},
    )
    await client.post(
        "/api/v1/notices",
        json={"title": "다음 주 알림", "body": "아직", **_window(hours_from=48, hours_to=72)},
        headers={"X-CSRF-Token": csrf},
    )
    status, body = await _as_kiosk(client, token, "GET", "/kiosk")
    html = body.decode()
    assert status == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "군청에서 알려드립니다" in html and "소리로 듣기" in html
    assert "다음 주 알림" not in html  # not yet in its window


async def test_bad_notices_are_refused(client: TestClient, world: World) -> None:
    csrf = await login(client, "official")
    cases = [
        ({"title": "x", "body": "y", **_window(2, 1)}, "invalid_window"),
        ({"title": "x", "body": "y", **_window(-48, -24)}, "window_in_past"),
        ({"title": "x", "body": "y", "village_ids": [999999], **_window()}, "unknown_village"),
        ({"title": "", "body": "y", **_window()}, "validation_failed"),
        ({"title": "x", "body": "y", "villages": [1], **_window()}, "validation_failed"),
    ]
    for payload, code in cases:
        response = await client.post("/api/v1/notices", json=payload, headers={"X-CSRF-Token": csrf})
        assert response.status == 400, payload
        assert (await response.json())["error"]["code"] == code


async def test_form_with_image_and_withdrawal(client: TestClient, world: World, sessionmaker: Any) -> None:
    token = await _kiosk(sessionmaker, world.village_ids[0], "A")
    csrf = await login(client, "official")
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
        b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
    )

    def form(payload: bytes, name: str) -> aiohttp.FormData:
        data = aiohttp.FormData()
        now = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=9)))
        data.add_field("csrf_token", csrf)
        data.add_field("title", "사진 알림")
        data.add_field("body", "사진을 보세요")
        data.add_field("starts_at", (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
        data.add_field("ends_at", (now + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
        data.add_field("village_ids", str(world.village_ids[0]))
        data.add_field("media", io.BytesIO(payload), filename=name)
        return data

    bad = await client.post(
        "/official/notices", data=form(b"not an image at all" * 10, "x.png"), allow_redirects=False
    )
    assert bad.status == 400
    response = await client.post("/official/notices", data=form(png, "dot.png"), allow_redirects=False)
    assert response.status == 303
    notice_id = int(response.headers["Location"].rsplit("/", 1)[1])

    status, body = await _as_kiosk(client, token, "GET", f"/kiosk/notices/{notice_id}/media")
    assert status == 200 and body == png
    await client.post(f"/official/notices/{notice_id}/withdraw", data={"csrf_token": csrf})
    status, _ = await _as_kiosk(client, token, "GET", f"/kiosk/notices/{notice_id}/media")
    assert status == 404


async def test_only_the_author_or_an_admin_withdraws_a_notice(
    client: TestClient, aiohttp_client: Any, world: World, sessionmaker: Any
) -> None:
    token = await _kiosk(sessionmaker, world.village_ids[0], "A")
    author_csrf = await login(client, "official")
    other = await aiohttp_client(client.server)
    other_csrf = await login(other, "official2")
    admin = await aiohttp_client(client.server)
    admin_csrf = await login(admin, "admin")

    async def post_notice() -> int:
        response = await client.post(
            "/api/v1/notices",
            json={
                "title": "벼 수매 안내",
                "body": "마을회관 앞",
                "village_ids": [world.village_ids[0]],
                **_window(),
            },
            headers={"X-CSRF-Token": author_csrf},
        )
        assert response.status == 201, await response.text()
        return int((await response.json())["notice"]["id"])

    async def shown_on_kiosk(notice_id: int) -> bool:
        _, body = await _as_kiosk(client, token, "GET", "/api/v1/kiosk/notices")
        return notice_id in [n["id"] for n in json.loads(body)["notices"]]

    first = await post_notice()
    # Another official: no button, and the form post is refused; the notice stays on the kiosks.
    page = await (await other.get(f"/official/notices/{first}")).text()
    assert f"/official/notices/{first}/withdraw" not in page
    refused = await other.post(
        f"/official/notices/{first}/withdraw", data={"csrf_token": other_csrf}, allow_redirects=False
    )
    assert refused.status == 403
    assert await shown_on_kiosk(first)
    # The author can.
    assert (
        f"/official/notices/{first}/withdraw" in await (await client.get(f"/official/notices/{first}")).text()
    )
    done = await client.post(
        f"/official/notices/{first}/withdraw", data={"csrf_token": author_csrf}, allow_redirects=False
    )
    assert done.status == 303 and not await shown_on_kiosk(first)
    # An administrator can withdraw anybody's.
    second = await post_notice()
    by_admin = await admin.post(
        f"/official/notices/{second}/withdraw", data={"csrf_token": admin_csrf}, allow_redirects=False
    )
    assert by_admin.status == 303 and not await shown_on_kiosk(second)
