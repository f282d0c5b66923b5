"""A kiosk's ``last_seen_at`` is written in batches, not by every request (issue 16 item 4).

Written per kiosk at most every 30 s, a county filing at 3/s paid one more fsynced commit on
nearly every filing (the authentication's transaction). Now the first sighting of a kiosk is
written at once, later ones are kept in the sessionmaker's ``Sightings`` and written for every
kiosk in one statement at most every ``SEEN_EVERY``. These tests count the writes and read the
stored values back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import shared_state, transaction, utcnow
from server.kiosks.models import Kiosk
from server.kiosks.service import SIGHTINGS_KEY, Sightings, principal_for_token
from tests.conftest import World
from tests.kiosk_ref import KioskRef, make_kiosk

Maker = Callable[[], AsyncSession]
LONG_AGO = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def _stored(sessionmaker: Maker, kiosk_id: int) -> dt.datetime | None:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        kiosk = await session.get(Kiosk, kiosk_id)
        assert kiosk is not None
        return kiosk.last_seen_at


async def _authenticate(sessionmaker: Maker, kiosk: KioskRef) -> None:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        assert await principal_for_token(session, kiosk.token) is not None


async def _kiosks_seen_long_ago(sessionmaker: Maker, world: World, count: int) -> list[KioskRef]:
    kiosks = [await make_kiosk(sessionmaker, world.village_ids[0], f"회관 {n}") for n in range(count)]
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await session.execute(update(Kiosk).values(last_seen_at=LONG_AGO))
    return kiosks


async def test_a_new_kiosk_is_seen_at_once(sessionmaker: Maker, world: World) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    before = utcnow()
    await _authenticate(sessionmaker, kiosk)
    seen = await _stored(sessionmaker, kiosk.id)
    assert seen is not None and seen >= before


async def test_sightings_are_written_together_at_most_every_interval(
    sessionmaker: Maker, world: World
) -> None:
    kiosks = await _kiosks_seen_long_ago(sessionmaker, world, 3)
    async with sessionmaker() as session:
        sightings = shared_state(session, SIGHTINGS_KEY, lambda: Sightings(dt.timedelta(hours=1)))
    assert sightings is not None

    # The first due sighting is written at once (nothing was written for an interval)...
    started = utcnow()
    await _authenticate(sessionmaker, kiosks[0])
    first = await _stored(sessionmaker, kiosks[0].id)
    assert first is not None and first >= started
    # ...the next ones wait for the interval: no write per request.
    await _authenticate(sessionmaker, kiosks[1])
    await _authenticate(sessionmaker, kiosks[2])
    assert await _stored(sessionmaker, kiosks[1].id) == LONG_AGO
    assert await _stored(sessionmaker, kiosks[2].id) == LONG_AGO

    # Once the interval has passed, the next request writes every pending sighting in one go,
    # each kiosk with the time it was last seen (not the time of the write).
    sightings.every = dt.timedelta(0)
    noted = dict(sightings._pending)
    assert set(noted) == {k.id for k in kiosks[1:]}
    await _authenticate(sessionmaker, kiosks[0])  # seen recently itself: writes the others'
    for kiosk in kiosks[1:]:
        assert await _stored(sessionmaker, kiosk.id) == noted[kiosk.id]
    assert sightings._pending == {}


async def test_a_kiosk_seen_recently_is_not_noted(sessionmaker: Maker, world: World) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    await _authenticate(sessionmaker, kiosk)  # first sighting: written
    async with sessionmaker() as session:
        sightings = shared_state(session, SIGHTINGS_KEY, Sightings)
    assert sightings is not None
    await _authenticate(sessionmaker, kiosk)
    assert sightings._pending == {}
