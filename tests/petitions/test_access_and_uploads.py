"""Who sees what (kiosks, departments, admins), support, and refused uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from server.db import transaction
from server.petitions.models import Petition
from tests.conftest import World, login
from tests.petitions.conftest import (
    Kiosk,
    file_json,
    kiosk_call,
    official_json_call,
    petition_form,
    write_voice_clip,
)


async def test_no_kiosk_reads_a_private_request_without_receipt_and_pin(
    client: TestClient, world: World, kiosk: Kiosk, other_kiosk: Kiosk
) -> None:
    private = await file_json(client, kiosk, is_public=False)
    public = await file_json(client, kiosk, is_public=True, title="공개 민원")
    private_id, public_id = private.body["petition"]["id"], public.body["petition"]["id"]

    for who in (kiosk, other_kiosk):
        listing = await kiosk_call(client, who, "GET", "/api/v1/kiosk/petitions/public")
        assert [p["id"] for p in listing.body["petitions"]] == [public_id]
        assert (
            await kiosk_call(client, who, "GET", f"/api/v1/kiosk/petitions/public/{private_id}")
        ).status == 404
        # Official endpoints are not for kiosks at all.
        assert (await kiosk_call(client, who, "GET", f"/api/v1/petitions/{private_id}")).status == 403
        assert (await kiosk_call(client, who, "GET", "/api/v1/petitions")).status == 403

    shown = (
        await kiosk_call(client, other_kiosk, "GET", f"/api/v1/kiosk/petitions/public/{public_id}")
    ).body["petition"]
    # Timestamps are left out of the search: their microseconds can spell "5678" by chance.
    text = repr({key: value for key, value in shown.items() if not key.endswith("_at")})
    for personal in ("홍길동", "홍*동", "5678", "01012345678", "receipt_no", "pin"):
        assert personal not in text
    # Another kiosk's receipt without the PIN is refused.
    wrong = await kiosk_call(
        client,
        other_kiosk,
        "POST",
        "/api/v1/kiosk/petitions/status",
        json_body={
            "receipt_no": private.body["petition"]["receipt_no"],
            "pin": "0000" if private.body["pin"] != "0000" else "1111",
        },
    )
    assert wrong.status == 403


async def test_support_once_per_kiosk_visit(
    client: TestClient, world: World, kiosk: Kiosk, other_kiosk: Kiosk
) -> None:
    public = await file_json(client, kiosk, is_public=True)
    private = await file_json(client, kiosk, is_public=False)
    url = f"/api/v1/kiosk/petitions/public/{public.body['petition']['id']}/support"

    async def visit() -> str:
        reply = await kiosk_call(client, other_kiosk, "POST", "/api/v1/kiosk/visits")
        assert reply.status == 201
        return str(reply.body["visit"])

    visit_a, visit_b = await visit(), await visit()
    first = await kiosk_call(client, other_kiosk, "POST", url, json_body={"visit": visit_a})
    assert first.status == 201 and first.body["support_count"] == 1
    twice = await kiosk_call(client, other_kiosk, "POST", url, json_body={"visit": visit_a})
    assert twice.status == 409 and twice.body["error"]["code"] == "already_supported"
    second = await kiosk_call(client, other_kiosk, "POST", url, json_body={"visit": visit_b})
    assert second.body["support_count"] == 2
    hidden = await kiosk_call(
        client,
        other_kiosk,
        "POST",
        f"/api/v1/kiosk/petitions/public/{private.body['petition']['id']}/support",
        json_body={"visit": visit_a},
    )
    assert hidden.status == 404
    bad = await kiosk_call(client, other_kiosk, "POST", url, json_body={"visit": "x"})
    assert bad.status == 400


async def test_officials_see_their_department_and_unrouted_only(
    client: TestClient, world: World, kiosk: Kiosk
) -> None:
    mine = (await file_json(client, kiosk, department_id=world.department_ids[0])).body["petition"]["id"]
    theirs = (await file_json(client, kiosk, department_id=world.department_ids[1])).body["petition"]["id"]
    unrouted = (await file_json(client, kiosk)).body["petition"]["id"]

    csrf = await login(client, "official")
    listing = await official_json_call(client, csrf, "GET", "/api/v1/petitions")
    assert sorted(p["id"] for p in listing.body["petitions"]) == sorted([mine, unrouted])
    assert (await official_json_call(client, csrf, "GET", f"/api/v1/petitions/{theirs}")).status == 404
    assert (
        await official_json_call(client, csrf, "GET", f"/api/v1/petitions/{theirs}/media/1")
    ).status == 404
    assert (
        await official_json_call(
            client, csrf, "POST", f"/api/v1/petitions/{theirs}/actions", {"action": "assign"}
        )
    ).status == 404
    # Personal data: unmasked only in the single view of the handling department.
    detail = (await official_json_call(client, csrf, "GET", f"/api/v1/petitions/{mine}")).body["petition"]
    assert detail["resident_phone"] == "010-1234-5678" and detail["resident_name"] == "홍길동"
    unrouted_detail = (await official_json_call(client, csrf, "GET", f"/api/v1/petitions/{unrouted}")).body[
        "petition"
    ]
    assert (
        unrouted_detail["resident_phone"] == "010-****-5678" and unrouted_detail["resident_name"] == "홍*동"
    )
    # Only triage routes an unrouted request (tests/security/test_residents_triage.py).
    taken = await official_json_call(
        client, csrf, "POST", f"/api/v1/petitions/{unrouted}/actions", {"action": "assign"}
    )
    assert taken.status == 403 and taken.body["error"]["code"] == "triage_only"

    await client.post("/logout", data={"csrf_token": csrf})
    admin_csrf = await login(client, "admin")
    everything = await official_json_call(client, admin_csrf, "GET", "/api/v1/petitions")
    assert sorted(p["id"] for p in everything.body["petitions"]) == sorted([mine, theirs, unrouted])
    assert all("****" in p["resident_phone"] for p in everything.body["petitions"])
    filtered = await official_json_call(
        client, admin_csrf, "GET", f"/api/v1/petitions?department_id={world.department_ids[1]}"
    )
    assert [p["id"] for p in filtered.body["petitions"]] == [theirs]
    bad = await official_json_call(client, admin_csrf, "GET", "/api/v1/petitions?status=nope")
    assert bad.status == 400 and bad.body["error"]["code"] == "validation_failed"


async def test_truncated_or_non_media_uploads_are_refused(
    client: TestClient,
    world: World,
    kiosk: Kiosk,
    voice_clip: bytes,
    tmp_path: Path,
    sessionmaker: Any,
    settings: Any,
) -> None:
    fields = {"petition_type": "simple", "phone": "01012345678"}
    cases = {
        "media_truncated": voice_clip[: len(voice_clip) * 2 // 3],
        "media_not_media": b"%PDF-1.7 this is not a recording" * 10,
    }
    for code, payload in cases.items():
        reply = await kiosk_call(
            client, kiosk, "POST", "/api/v1/kiosk/petitions", data=petition_form(fields, media=payload)
        )
        assert reply.status == 400, (code, reply.body)
        assert reply.body["error"]["code"] == code
    photo = await kiosk_call(
        client,
        kiosk,
        "POST",
        "/api/v1/kiosk/petitions",
        data=petition_form(dict(fields, body="사진"), photos=[b"GIF89a not allowed"]),
    )
    assert photo.status == 400 and photo.body["error"]["code"] == "photo_not_image"
    empty = await kiosk_call(client, kiosk, "POST", "/api/v1/kiosk/petitions", json_body=fields)
    assert empty.status == 400 and empty.body["error"]["code"] == "text_or_message_required"
    bad_phone = await kiosk_call(
        client, kiosk, "POST", "/api/v1/kiosk/petitions", json_body=dict(fields, body="x", phone="12345678")
    )
    assert bad_phone.status == 400 and bad_phone.body["error"]["details"][0]["field"] == "phone"
    too_long = write_voice_clip(tmp_path / "long.webm", 181.0)
    long_reply = await kiosk_call(
        client,
        kiosk,
        "POST",
        "/api/v1/kiosk/petitions",
        data=petition_form(fields, media=too_long.read_bytes()),
    )
    assert long_reply.status == 400 and long_reply.body["error"]["code"] == "media_too_long"

    # Nothing was stored: no rows, and no files left behind.
    async with transaction(sessionmaker) as session:
        assert await session.scalar(select(func.count(Petition.id))) == 0
    leftovers = [p for p in settings.media_dir.rglob("*") if p.is_file()]
    assert leftovers == []


async def test_a_valid_photo_is_kept(
    client: TestClient, world: World, kiosk: Kiosk, sessionmaker: Any
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    fields = {"petition_type": "simple", "phone": "01012345678", "body": "사진을 보세요"}
    reply = await kiosk_call(
        client, kiosk, "POST", "/api/v1/kiosk/petitions", data=petition_form(fields, photos=[png])
    )
    assert reply.status == 201, reply.body
    csrf = await login(client, "admin")
    detail = await official_json_call(
        client, csrf, "GET", f"/api/v1/petitions/{reply.body['petition']['id']}"
    )
    media = detail.body["petition"]["media"]
    assert [(m["kind"], m["content_type"]) for m in media] == [("photo", "image/png")]
