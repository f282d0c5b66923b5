"""Stopping the server lets its background work finish what it has in hand instead of cancelling
it mid-way: a cancel that lands inside a database write loses the write and leaves the pooled
connection busy (asyncpg: "another operation is in progress"), which the next user then hits."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.db import transaction, utcnow
from server.keys import ROOM_HUB, SFU
from server.meetings import clock, service
from server.sfu.events import ActiveSpeakerChanged
from tests.conftest import World, logged_errors
from tests.gate import Gate
from tests.meetings.conftest import scheduled_meeting


async def test_the_meeting_clock_finishes_its_tick_when_the_server_stops(
    client: TestClient,
    world: World,
    sessionmaker: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate, real_tick = Gate(), clock.tick

    async def held_tick(app: Any) -> None:
        await gate.hold()
        await real_tick(app)

    monkeypatch.setattr(clock, "tick", held_tick)
    async with transaction(sessionmaker) as session:
        meeting_id = (
            await scheduled_meeting(session, world, starts_at=utcnow() - dt.timedelta(minutes=1))
        ).id
    await asyncio.wait_for(gate.reached.wait(), 10)
    stopping = asyncio.ensure_future(client.close())
    await asyncio.sleep(0.2)  # the stop is under way while the tick is held
    assert not stopping.done()
    gate.opened.set()
    await asyncio.wait_for(stopping, 20)
    # The tick that was running when the stop came did its work: the due meeting was opened.
    async with transaction(sessionmaker) as session:
        assert (await service.get_meeting(session, meeting_id)).status == "live"
    assert logged_errors(caplog) == []


async def test_the_meeting_hub_finishes_the_sfu_events_it_has_when_the_server_stops(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hub, gate, handled = client.app[ROOM_HUB], Gate(), []

    async def held_handler(event: Any) -> None:
        await gate.hold()
        handled.append(event)

    monkeypatch.setattr(hub, "_on_sfu_event", held_handler)
    events = [ActiveSpeakerChanged("1", "a1"), ActiveSpeakerChanged("1", None)]
    for event in events:
        client.app[SFU]._emit(event)
    await asyncio.wait_for(gate.reached.wait(), 10)
    stopping = asyncio.ensure_future(client.close())
    await asyncio.sleep(0.2)
    assert not stopping.done()
    gate.opened.set()
    await asyncio.wait_for(stopping, 20)
    assert handled == events
    assert logged_errors(caplog) == []
