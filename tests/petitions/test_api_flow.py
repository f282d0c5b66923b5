"""The issue's main flow through the HTTP API, on SQLite and PostgreSQL, with real recorded media."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.db import transaction
from server.petitions.deadlines import SEOUL, PetitionType, compute_due
from server.petitions.models import Petition, PetitionEvent, PetitionMedia
from tests.conftest import World, login
from tests.petitions.conftest import (
    Kiosk,
    file_json,
    kiosk_call,
    official_json_call,
    petition_form,
)

RECEIPT_RE = re.compile(r"^강진-\d{4}-\d{5}$")


async def test_kiosk_files_with_voice_official_answers_kiosk_reads_answer(
    client: TestClient, world: World, kiosk: Kiosk, voice_clip: bytes, sessionmaker: Any, settings: Any
) -> None:
    fields = {"petition_type": "suggestion", "phone": "01098765432", "department_id": world.department_ids[0]}
    filed = await kiosk_call(
        client, kiosk, "POST", "/api/v1/kiosk/petitions", data=petition_form(fields, media=voice_clip)
    )
    assert filed.status == 201, filed.body
    petition = filed.body["petition"]
    pin = filed.body["pin"]
    assert RECEIPT_RE.match(petition["receipt_no"])
    assert re.fullmatch(r"\d{4}", pin)
    assert petition["status"] == "received"
    assert petition["title"].endswith("음성 메시지")

    # The stored file is byte-identical to the upload and described by its probe.
    async with transaction(sessionmaker) as session:
        row = await session.scalar(select(Petition).where(Petition.id == petition["id"]))
        assert row is not None and row.pin_hash.startswith("$argon2id$") and pin not in row.pin_hash
        media = (
            await session.scalars(select(PetitionMedia).where(PetitionMedia.petition_id == row.id))
        ).one()
    stored = settings.media_dir / media.storage_name
    assert stored.read_bytes() == voice_clip
    assert media.sha256 == hashlib.sha256(voice_clip).hexdigest()
    assert media.content_type == "audio/webm" and 1.5 < (media.duration_s or 0) < 2.5

    # The official of the department sees it, unmasked in the single view, and plays the message.
    csrf = await login(client, "official")
    detail = await official_json_call(client, csrf, "GET", f"/api/v1/petitions/{petition['id']}")
    assert detail.status == 200
    assert detail.body["petition"]["resident_phone"] == "010-9876-5432"
    listing = await official_json_call(client, csrf, "GET", "/api/v1/petitions")
    assert [p["resident_phone"] for p in listing.body["petitions"]] == ["010-****-5432"]
    media_url = detail.body["petition"]["media"][0]["url"]
    played = await client.get(media_url)
    assert played.status == 200 and played.headers["Content-Type"] == "audio/webm"
    assert await played.read() == voice_clip
    ranged = await client.get(media_url, headers={"Range": "bytes=0-99"})
    assert ranged.status == 206 and await ranged.read() == voice_clip[:100]

    for action in ({"action": "assign"}, {"action": "answer", "answer": "다음 주에 가로등을 고치겠습니다."}):
        reply = await official_json_call(
            client, csrf, "POST", f"/api/v1/petitions/{petition['id']}/actions", action
        )
        assert reply.status == 200, reply.body
    assert reply.body["petition"]["status"] == "answered"

    # The resident checks with receipt number and PIN, typed loosely.
    receipt_digits = petition["receipt_no"].replace("강진-", "").replace("-", "")
    status = await kiosk_call(
        client,
        kiosk,
        "POST",
        "/api/v1/kiosk/petitions/status",
        json_body={"receipt_no": receipt_digits, "pin": pin},
    )
    assert status.status == 200, status.body
    assert status.body["petition"]["status"] == "answered"
    assert status.body["petition"]["answer"] == "다음 주에 가로등을 고치겠습니다."
    assert "resident_phone" not in status.body["petition"]

    async with transaction(sessionmaker) as session:
        events = (
            await session.scalars(
                select(PetitionEvent)
                .where(PetitionEvent.petition_id == petition["id"])
                .order_by(PetitionEvent.id)
            )
        ).all()
    assert [e.action for e in events] == ["file", "assign", "answer"]
    assert events[0].actor == f"kiosk:{kiosk.id}" and events[2].actor == f"official:{world.official_id}"


async def test_wrong_pin_is_refused_then_throttled_in_the_database(
    client: TestClient, world: World, kiosk: Kiosk
) -> None:
    filed = await file_json(client, kiosk)
    assert filed.status == 201
    receipt, pin = filed.body["petition"]["receipt_no"], filed.body["pin"]
    wrong = f"{(int(pin) + 1) % 10000:04d}"
    for _ in range(5):
        reply = await kiosk_call(
            client,
            kiosk,
            "POST",
            "/api/v1/kiosk/petitions/status",
            json_body={"receipt_no": receipt, "pin": wrong},
        )
        assert reply.status == 403 and reply.body["error"]["code"] == "pin_mismatch"
    locked = await kiosk_call(
        client, kiosk, "POST", "/api/v1/kiosk/petitions/status", json_body={"receipt_no": receipt, "pin": pin}
    )
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert locked.body["error"]["code"] == "pin_locked"


async def test_unknown_receipt_answers_like_a_wrong_pin(
    client: TestClient, world: World, kiosk: Kiosk
) -> None:
    reply = await kiosk_call(
        client,
        kiosk,
        "POST",
        "/api/v1/kiosk/petitions/status",
        json_body={"receipt_no": "강진-2026-99999", "pin": "1234"},
    )
    assert reply.status == 403 and reply.body["error"]["code"] == "pin_mismatch"


async def test_receipt_numbers_are_sequential_and_unique_under_concurrency(
    client: TestClient, world: World, kiosk: Kiosk, other_kiosk: Kiosk
) -> None:
    import asyncio

    replies = await asyncio.gather(
        *(file_json(client, kiosk if i % 2 else other_kiosk, title=f"동시 접수 {i}") for i in range(12))
    )
    assert all(r.status == 201 for r in replies), [r.body for r in replies if r.status != 201]
    seqs = sorted(int(r.body["petition"]["receipt_no"][-5:]) for r in replies)
    assert seqs == list(range(seqs[0], seqs[0] + 12))


async def test_due_at_of_a_request_filed_before_chuseok_2026(
    client: TestClient, world: World, kiosk: Kiosk, sessionmaker: Any
) -> None:
    """Filed Wed 2026-09-23 10:00 KST, a 7-day grievance: Chuseok (24-26 Sep), the weekend and
    the following holidays are skipped."""
    from server.auth.roles import Principal, Role
    from server.petitions import service

    received = dt.datetime(2026, 9, 23, 10, 0, tzinfo=SEOUL)
    async with transaction(sessionmaker) as session:
        principal = Principal(role=Role.KIOSK, id=kiosk.id, display_name="k", village_id=kiosk.village_id)
        new = service.NewPetition(
            PetitionType.GRIEVANCE, None, "추석 전 민원", "내용", "01012345678", None, False
        )
        petition = await service.file_petition(session, principal, new, "$argon2id$x", received_at=received)
        petition_id = petition.id
    csrf = await login(client, "admin")
    reply = await official_json_call(client, csrf, "GET", f"/api/v1/petitions/{petition_id}")
    due = dt.datetime.fromisoformat(reply.body["petition"]["due_at"]).astimezone(SEOUL)
    assert due == compute_due(received, PetitionType.GRIEVANCE)
    # Day 1 = Wed 23 Sep; 24-26 Chuseok, 27 Sun; 28 Sep-2 Oct are days 2-6; 3 Oct (National
    # Foundation Day, a Saturday), 4 Sun and 5 Oct (its substitute holiday) are skipped: day 7 is 6 Oct.
    assert due == dt.datetime(2026, 10, 6, 18, 0, tzinfo=SEOUL)
    assert reply.body["petition"]["receipt_no"].startswith("강진-2026-")
