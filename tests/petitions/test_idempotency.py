"""A resident never files twice: the kiosk's ``Idempotency-Key`` makes every resend of one filing
answer with the same receipt and PIN, also when the duplicates race (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from server.config import Settings
from server.db import transaction
from server.petitions import pins
from server.petitions.filing import seal_pin, unseal_pin
from server.petitions.models import FilingKey, Petition, PetitionMedia
from tests.petitions.conftest import BASIC, Kiosk, Reply, kiosk_call, petition_form

FILE = "/api/v1/kiosk/petitions"


async def send(
    client: TestClient, kiosk: Kiosk, key: str | None, *, media: bytes | None = None, **fields: Any
) -> Reply:
    """One send as the kiosk page makes it (multipart), with its idempotency key."""
    headers = dict(kiosk.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    body = dict(BASIC, **fields)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        async with agent.post(
            client.make_url(FILE), headers=headers, data=petition_form(body, media=media)
        ) as response:
            raw = await response.read()
            return Reply(response.status, json.loads(raw), dict(response.headers))


async def petitions_count(sessionmaker: Any) -> int:
    async with transaction(sessionmaker) as session:
        return int(await session.scalar(select(func.count()).select_from(Petition)) or 0)


def stored_files(settings: Settings) -> list[Path]:
    return [p for p in (settings.media_dir / "petitions").rglob("*") if p.is_file()]


async def pin_accepted(client: TestClient, kiosk: Kiosk, receipt_no: str, pin: str) -> bool:
    checked = await kiosk_call(
        client, kiosk, "POST", FILE + "/status", json_body={"receipt_no": receipt_no, "pin": pin}
    )
    return checked.status == 200


async def test_resend_after_a_lost_answer_gets_the_same_receipt_and_pin(
    client: TestClient, kiosk: Kiosk, voice_clip: bytes, sessionmaker: Any, settings: Settings
) -> None:
    key = str(uuid.uuid4())
    first = await send(client, kiosk, key, media=voice_clip, body="")
    again = await send(client, kiosk, key, media=voice_clip, body="")
    assert first.status == again.status == 201, (first.body, again.body)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.body["petition"]["receipt_no"] == first.body["petition"]["receipt_no"]
    assert again.body["pin"] == first.body["pin"]
    assert await pin_accepted(client, kiosk, first.body["petition"]["receipt_no"], again.body["pin"])
    assert await petitions_count(sessionmaker) == 1
    # One message on disk, and no temporary upload of the resend left behind.
    assert len(stored_files(settings)) == 1
    assert not any((settings.media_dir / "tmp").iterdir())


async def test_concurrent_duplicates_file_once(
    client: TestClient, kiosk: Kiosk, voice_clip: bytes, sessionmaker: Any, settings: Settings
) -> None:
    key = uuid.uuid4().hex
    replies = await asyncio.gather(*(send(client, kiosk, key, media=voice_clip) for _ in range(6)))
    assert [r.status for r in replies] == [201] * 6, [r.body for r in replies]
    assert len({r.body["petition"]["receipt_no"] for r in replies}) == 1
    assert len({r.body["pin"] for r in replies}) == 1
    assert sum("Idempotent-Replayed" in r.headers for r in replies) == 5
    assert await petitions_count(sessionmaker) == 1
    async with transaction(sessionmaker) as session:
        media = await session.scalar(select(func.count()).select_from(PetitionMedia))
    assert media == 1
    assert len(stored_files(settings)) == 1
    assert not any((settings.media_dir / "tmp").iterdir())
    # A later filing still gets the next receipt number: the losers gave theirs back.
    later = await send(client, kiosk, str(uuid.uuid4()))
    first_seq = int(replies[0].body["petition"]["receipt_no"].rsplit("-", 1)[1])
    assert int(later.body["petition"]["receipt_no"].rsplit("-", 1)[1]) == first_seq + 1


async def test_the_key_is_scoped_per_kiosk(
    client: TestClient, kiosk: Kiosk, other_kiosk: Kiosk, sessionmaker: Any
) -> None:
    key = str(uuid.uuid4())
    mine = await send(client, kiosk, key)
    theirs = await send(client, other_kiosk, key)
    assert mine.status == theirs.status == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.body["petition"]["receipt_no"] != theirs.body["petition"]["receipt_no"]
    assert await petitions_count(sessionmaker) == 2


async def test_a_key_reused_for_another_request_is_refused(
    client: TestClient, kiosk: Kiosk, sessionmaker: Any
) -> None:
    key = str(uuid.uuid4())
    assert (await send(client, kiosk, key, body="가로등이 꺼졌어요")).status == 201
    other = await send(client, kiosk, key, body="버스 시간을 알고 싶어요")
    assert other.status == 409
    assert other.body["error"]["code"] == "idempotency_key_reused"
    assert await petitions_count(sessionmaker) == 1


async def test_without_a_key_each_send_files(client: TestClient, kiosk: Kiosk, sessionmaker: Any) -> None:
    assert (await send(client, kiosk, None)).status == 201
    assert (await send(client, kiosk, None)).status == 201
    assert await petitions_count(sessionmaker) == 2


async def test_malformed_keys_are_refused(client: TestClient, kiosk: Kiosk, sessionmaker: Any) -> None:
    for key in ("short", "x" * 129, "has space in it 1234", "키" * 20):
        reply = await send(client, kiosk, key)
        assert reply.status == 400, key
        assert reply.body["error"]["code"] == "invalid_idempotency_key"
    assert await petitions_count(sessionmaker) == 0


async def test_the_database_keeps_neither_the_key_nor_the_pin(
    client: TestClient, kiosk: Kiosk, sessionmaker: Any, settings: Settings
) -> None:
    key = str(uuid.uuid4())
    filed = await send(client, kiosk, key)
    async with transaction(sessionmaker) as session:
        row = (await session.scalars(select(FilingKey))).one()
    assert key not in row.key_hash and row.kiosk_id == kiosk.id
    pepper = pins.pin_pepper(settings)
    assert unseal_pin(row.pin_sealed, key, pepper) == filed.body["pin"]
    # The pad depends on the key (and the server's pepper), not only on the PIN.
    assert len({seal_pin("0000", str(uuid.uuid4()), pepper) for _ in range(20)}) > 1
    assert len({seal_pin("0000", key, bytes([i])) for i in range(20)}) > 1
