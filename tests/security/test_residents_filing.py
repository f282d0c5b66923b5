"""Issue 12 item 14: per-kiosk filing limits, and a receipt number space a stolen kiosk token
cannot use up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.db import transaction, utcnow
from server.petitions import receipts
from server.petitions.models import PetitionCounter
from server.petitions.service import next_receipt_seq
from tests.conftest import World, make_settings
from tests.kiosk_ref import make_kiosk
from tests.petitions.conftest import file_json, kiosk_call

ClientFactory = Callable[..., Awaitable[TestClient]]


async def limited_client(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path, per_hour: int
) -> TestClient:
    return await aiohttp_client(
        create_app(make_settings(db_url, tmp_path / "data", kiosk_filings_per_hour=per_hour))
    )


async def test_a_kiosk_files_at_most_its_hourly_limit_even_all_at_once(
    aiohttp_client: ClientFactory,
    db_url: str,
    tmp_path: Path,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
) -> None:
    client = await limited_client(aiohttp_client, db_url, tmp_path, per_hour=3)
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    other = await make_kiosk(sessionmaker, world.village_ids[1])

    replies = await asyncio.gather(*(file_json(client, kiosk, title=f"요청 {n}") for n in range(10)))

    assert sorted(r.status for r in replies) == [201] * 3 + [429] * 7
    refused = next(r for r in replies if r.status == 429)
    assert refused.body["error"]["code"] == "filing_rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    # The kiosk shows what to do, in Korean.
    assert "마을회관" in refused.body["error"]["display"]
    # Another village hall is not held back by this one.
    assert (await file_json(client, other)).status == 201


async def test_refused_input_does_not_use_up_the_limit(
    aiohttp_client: ClientFactory,
    db_url: str,
    tmp_path: Path,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
) -> None:
    client = await limited_client(aiohttp_client, db_url, tmp_path, per_hour=2)
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    for _ in range(3):
        assert (await file_json(client, kiosk, phone="12345")).status == 400
    assert [(await file_json(client, kiosk)).status for _ in range(3)] == [201, 201, 429]


async def test_receipt_numbers_grow_a_digit_instead_of_running_out(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    year = receipts.receipt_year(utcnow())
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await next_receipt_seq(session, year)  # the year's counter row
        await session.execute(
            update(PetitionCounter).where(PetitionCounter.year == year).values(last_seq=99_999)
        )

    filed = await file_json(client, kiosk)

    assert filed.status == 201, filed.body
    receipt = filed.body["petition"]["receipt_no"]
    assert receipt == f"강진-{year}-100000"
    # The resident can type it back on the keypad (digits only) and read her request.
    checked = await kiosk_call(
        client,
        kiosk,
        "POST",
        "/api/v1/kiosk/petitions/status",
        json_body={"receipt_no": f"{year}100000", "pin": filed.body["pin"]},
    )
    assert checked.status == 200 and checked.body["petition"]["receipt_no"] == receipt
