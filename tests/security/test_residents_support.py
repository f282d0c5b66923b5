"""Issue 12 item 9: 공감 is counted once per server-issued kiosk visit, not on an id the page
chooses, and one kiosk cannot mint visits without end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.petitions import visits
from tests.conftest import World
from tests.kiosk_ref import KioskRef, make_kiosk
from tests.petitions.conftest import Reply, file_json, kiosk_call


async def start_visit(client: TestClient, kiosk: KioskRef) -> Reply:
    return await kiosk_call(client, kiosk, "POST", "/api/v1/kiosk/visits")


async def support(client: TestClient, kiosk: KioskRef, petition_id: int, body: object) -> Reply:
    url = f"/api/v1/kiosk/petitions/public/{petition_id}/support"
    return await kiosk_call(client, kiosk, "POST", url, json_body=body)


async def test_a_made_up_visit_id_counts_nothing(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    petition_id = (await file_json(client, kiosk, is_public=True)).body["petition"]["id"]
    # What used to work: any random id the page liked, as many as it liked.
    for n in range(5):
        made_up = await support(client, kiosk, petition_id, {"session_id": f"inflate-{n:012d}"})
        assert made_up.status == 400
    visit = (await start_visit(client, kiosk)).body["visit"]
    forged = visit.rsplit(".", 1)[0] + "." + "0" * 32
    assert (await support(client, kiosk, petition_id, {"visit": forged})).body["error"][
        "code"
    ] == "invalid_visit"
    assert (await support(client, kiosk, petition_id, {"visit": visit})).body["support_count"] == 1


async def test_a_visit_supports_a_request_once_even_all_at_once(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    petition_id = (await file_json(client, kiosk, is_public=True)).body["petition"]["id"]
    visit = (await start_visit(client, kiosk)).body["visit"]
    replies = await asyncio.gather(
        *(support(client, kiosk, petition_id, {"visit": visit}) for _ in range(10))
    )
    assert sorted(r.status for r in replies) == [201] + [409] * 9


async def test_a_visit_belongs_to_its_kiosk_and_ends(
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    other = await make_kiosk(sessionmaker, world.village_ids[1])
    petition_id = (await file_json(client, kiosk, is_public=True)).body["petition"]["id"]
    visit = (await start_visit(client, kiosk)).body["visit"]
    assert (await support(client, other, petition_id, {"visit": visit})).status == 400
    later = visits.time.time() + visits.VISIT_LIFETIME.total_seconds() + 1
    monkeypatch.setattr(visits.time, "time", lambda: later)
    assert (await support(client, kiosk, petition_id, {"visit": visit})).status == 400


async def test_one_kiosk_gets_a_bounded_number_of_visits(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    replies = await asyncio.gather(*(start_visit(client, kiosk) for _ in range(visits.VISITS_PER_HOUR + 5)))
    assert sorted(r.status for r in replies) == [201] * visits.VISITS_PER_HOUR + [429] * 5
    other = await make_kiosk(sessionmaker, world.village_ids[1])
    assert (await start_visit(client, other)).status == 201
