"""The meeting clock, the hub's SFU-event pump and the socket sweep outlive any exception: the
first failure of a streak is one ERROR (with its traceback), the rest are quiet, the recovery is
one INFO line, and the work goes on. /readyz reports a clock that stopped ticking."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.background import finish_or_cancel
from server.config import Settings
from server.db import transaction, utcnow
from server.keys import ROOM_HUB, SFU
from server.meetings import clock, service
from server.sfu.events import ActiveSpeakerChanged
from server.signaling.guard import SocketSessions
from server.views import health
from tests.conftest import World
from tests.gate import Gate
from tests.meetings.conftest import scheduled_meeting
from tests.signaling.signaling_kit import wait_until


def _records(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and r.levelno == level]


def _one_streak_logged(caplog: pytest.LogCaptureFixture, logger: str, failures: int) -> None:
    errors = _records(caplog, logger, logging.ERROR)
    assert len(errors) == 1 and errors[0].exc_info is not None, errors  # one ERROR, with its traceback
    recovered = [r.getMessage() for r in _records(caplog, logger, logging.INFO)]
    assert any(f"works again after {failures} failures" in m for m in recovered), recovered


class FailsFirst:
    """Stands in for ``real``: raises ``error`` on the first ``times`` calls, then calls it."""

    def __init__(self, real: Callable[..., Awaitable[Any]], times: int, error: Exception) -> None:
        self.real, self.times, self.error, self.calls = real, times, error, 0

    async def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return await self.real(*args)


async def test_the_clock_survives_any_exception_and_reports_the_streak_once(
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="server.meetings.clock")
    # Not a database error: the old clock caught only those, and died.
    monkeypatch.setattr(clock, "tick", FailsFirst(clock.tick, 3, KeyError("something nobody expected")))
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        due = await scheduled_meeting(session, world, starts_at=utcnow() - dt.timedelta(minutes=1))
        meeting_id = due.id

    async def is_live() -> bool:
        async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
            return (await service.get_meeting(session, meeting_id)).status == "live"

    for _ in range(300):
        if await is_live():
            break
        await asyncio.sleep(0.1)
    assert await is_live()
    _one_streak_logged(caplog, "server.meetings.clock", 3)


async def test_readyz_reports_a_clock_that_stopped_ticking(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200, body
    assert body["clock"]["status"] == "ok" and body["database"] == "ok" and body["disk"]["status"] == "ok"

    gate = Gate()

    async def stuck_tick(app: Any) -> None:
        await gate.hold()

    monkeypatch.setattr(clock, "tick", stuck_tick)
    monkeypatch.setattr(health, "CLOCK_STALE_SECONDS", 1.0)
    await asyncio.wait_for(gate.reached.wait(), 10)
    await asyncio.sleep(1.5)
    stalled = await client.get("/readyz")
    body = await stalled.json()
    assert stalled.status == 503 and body["clock"]["status"] == "stalled", body
    assert body["clock"]["seconds_since_tick"] >= 1.0
    gate.opened.set()


async def test_the_event_pump_reports_a_streak_once_and_carries_on(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server.signaling.room_hub")
    hub, handled = client.app[ROOM_HUB], []
    real = hub._on_sfu_event

    async def handler(event: Any) -> None:
        if event.participant_id == "fails":
            raise OSError("the database went away")
        handled.append(event)
        await real(event)

    monkeypatch.setattr(hub, "_on_sfu_event", handler)
    for _ in range(4):
        client.app[SFU]._emit(ActiveSpeakerChanged("1", "fails"))
    client.app[SFU]._emit(ActiveSpeakerChanged("1", "works"))
    await wait_until(lambda: len(handled) == 1, 10, "the pump to carry on after the failures")
    _one_streak_logged(caplog, "server.signaling.room_hub", 4)


async def test_the_socket_sweep_survives_a_failing_sweep(
    settings: Settings,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="server.signaling.guard")
    sweep = FailsFirst(SocketSessions.sweep, 2, RuntimeError("a bug in one sweep"))
    monkeypatch.setattr(SocketSessions, "sweep", lambda self: sweep(self))
    await aiohttp_client(create_app(dataclasses.replace(settings, socket_recheck_seconds=1)))
    await wait_until(lambda: sweep.calls >= 3, 15, "the sweep to run again after two failures")
    _one_streak_logged(caplog, "server.signaling.guard", 2)


async def test_a_background_task_that_died_does_not_fail_the_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def dies() -> None:
        raise OSError("connect call failed")

    task = asyncio.get_running_loop().create_task(dies(), name="doomed")
    await asyncio.sleep(0)
    await finish_or_cancel(task, 1.0)  # the old shutdown re-raised this: exit code 1
    assert [r.getMessage() for r in _records(caplog, "server.background", logging.ERROR)] == [
        "background task doomed had died"
    ]
