"""The system-history sampler on both databases: its rows, the hourly roll-up, the charts read back
from them, and a loop that outlives any failure."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.background import FailureStreak, finish_or_cancel
from server.db import transaction, utcnow
from server.kiosks.fleet import record_heartbeat
from server.ops import sampler
from server.ops.history import DAY, MONTH, charts
from server.ops.live import LiveParticipant, LiveRoom, LiveState
from server.ops.models import HallSample, SystemSample
from server.timeutil import to_local
from tests.conftest import World
from tests.foundation.test_supervision import FailsFirst, _one_streak_logged
from tests.kiosk_ref import make_kiosk


def participant(pid: str, kind: str, hall: str, mode: str = "video", bytes_out: int = 0) -> LiveParticipant:
    return LiveParticipant(
        room_id="7",
        participant_id=pid,
        kind=kind,
        hall=hall,
        mode=mode,
        bars=3 if mode == "video" else 1,
        downlink_kbps=None,
        packets_out=0,
        bytes_out=bytes_out,
        retransmitted=0,
        nacks_sent=0,
        plis_sent=0,
    )


def meeting(*people: LiveParticipant) -> LiveState:
    return LiveState((LiveRoom("7", tuple(people), 0),))


async def test_a_sample_is_one_row_plus_one_per_hall_in_a_meeting(
    world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")
    await make_kiosk(sessionmaker, world.village_ids[1], "사당리 마을회관")  # enrolled, silent
    state = meeting(
        participant("k1", "kiosk", "남성리", "audio_only"),
        participant("k2", "kiosk", "사당리", "video"),
        participant("a1", "official", "김민원"),
    )
    at = utcnow()
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await record_heartbeat(session, kiosk.id, {"camera": True}, "0.1.0")
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await sampler.take_sample(session, state, 123_000.0, at)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        rows = (await session.scalars(select(SystemSample))).all()
        halls = {h.hall: h for h in (await session.scalars(select(HallSample))).all()}
    assert len(rows) == 1
    row = rows[0]
    assert row.at == at.replace(second=0, microsecond=0)
    assert (row.minutes, row.rooms, row.participants, row.forwarded_bps, row.kiosks_online) == (
        1,
        1.0,
        3.0,
        123_000.0,
        1.0,
    )
    assert set(halls) == {"남성리", "사당리"}  # officials are no village hall
    assert (halls["남성리"].present_minutes, halls["남성리"].weak_minutes) == (1.0, 1.0)
    assert (halls["사당리"].present_minutes, halls["사당리"].weak_minutes) == (1.0, 0.0)


def test_the_bitrate_counts_a_rejoined_participant_from_zero() -> None:
    meter = sampler.BitrateMeter()
    assert meter.rate(meeting(participant("k1", "kiosk", "남성리", bytes_out=1000)), 0.0) == 0.0
    # 60 s later: k1 sent 7,500 bytes more; a1 joined and sent 1,500.
    later = meeting(
        participant("k1", "kiosk", "남성리", bytes_out=8500),
        participant("a1", "official", "김", bytes_out=1500),
    )
    assert meter.rate(later, 60.0) == pytest.approx((7500 + 1500) * 8 / 60)
    # k1 rejoined: its counter restarted at 600 bytes (not -7,900).
    rejoined = meeting(
        participant("k1", "kiosk", "남성리", bytes_out=600),
        participant("a1", "official", "김", bytes_out=1500),
    )
    assert meter.rate(rejoined, 120.0) == pytest.approx(600 * 8 / 60)


async def test_old_minutes_roll_up_to_weighted_hours_and_charts_read_both(
    world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    now = utcnow()
    # Three days ago, 90 minutes from a whole hour: 60 minutes in one hour, 30 in the next.
    start = (now - dt.timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        for minute in range(90):
            first_hour = minute < 60
            state = meeting(
                participant("k1", "kiosk", "남성리", "low_video" if minute % 3 == 0 else "video"),
                *([participant("a1", "official", "김민원")] if first_hour else []),
            )
            await sampler.take_sample(
                session, state, 100_000.0 if first_hour else 40_000.0, start + dt.timedelta(minutes=minute)
            )
        # And one fresh minute, which stays as it is.
        await sampler.take_sample(
            session, meeting(participant("k2", "kiosk", "사당리", "audio_only")), 0.0, now
        )
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        assert await sampler.roll_up(session, now) == 90
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        assert await sampler.roll_up(session, now) == 0  # nothing folded twice
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        rows = (await session.scalars(select(SystemSample).order_by(SystemSample.at))).all()
        halls = (await session.scalars(select(HallSample).order_by(HallSample.at, HallSample.hall))).all()
        month = await charts(session, MONTH, now)
        day = await charts(session, DAY, now)
    assert [(r.at, r.minutes, r.participants, r.forwarded_bps) for r in rows[:2]] == [
        (start, 60, 2.0, 100_000.0),
        (start + dt.timedelta(hours=1), 30, 1.0, 40_000.0),
    ]
    assert rows[2].minutes == 1 and rows[2].at == now.replace(second=0, microsecond=0)
    assert [(h.hall, h.minutes, h.present_minutes, h.weak_minutes) for h in halls[:2]] == [
        ("남성리", 60, 60.0, 20.0),
        ("남성리", 30, 30.0, 10.0),
    ]
    # The 30-day chart: that day's bucket is the minute-weighted mean of both hours (not of the rows).
    label = to_local(start).strftime("%m/%d")
    same_day = to_local(start + dt.timedelta(hours=1)).date() == to_local(start).date()
    by_label = {bar.label: bar.value for bar in month.participants}
    assert by_label[label] == (round((60 * 2 + 30 * 1) / 90) if same_day else 2)
    weak = {bar.label: bar.value for bar in month.weak_minutes}
    assert weak == {"남성리": 30, "사당리": 1}
    # The 24-hour chart holds only the fresh minute.
    assert {bar.label: bar.value for bar in day.weak_minutes} == {"사당리": 1}
    assert sum(bar.value for bar in day.participants) == 1


async def test_ancient_hours_are_deleted(world: World, sessionmaker: Callable[[], AsyncSession]) -> None:
    now = utcnow()
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        for days in (10, 500):
            session.add(
                SystemSample(
                    at=now - dt.timedelta(days=days),
                    minutes=60,
                    rooms=1,
                    participants=2,
                    forwarded_bps=1,
                    kiosks_online=1,
                )
            )
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await sampler.roll_up(session, now)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        kept = (await session.scalars(select(SystemSample))).all()
    assert [round((now - r.at).total_seconds() / 86400) for r in kept] == [10]


async def test_the_sampler_survives_any_exception_and_reports_the_streak_once(
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="server.ops.sampler")
    monkeypatch.setattr(sampler, "tick", FailsFirst(sampler.tick, 3, KeyError("something nobody expected")))
    monkeypatch.setattr(sampler, "RETRY_FIRST_SECONDS", 0.01)
    monkeypatch.setattr(sampler, "_until_next_minute", lambda _now: 0.05)
    stop = asyncio.Event()
    health = FailureStreak("the system-history sampler", logging.getLogger("server.ops.sampler"))
    task = asyncio.get_running_loop().create_task(sampler._loop(client.app, stop, health, 0.0))

    async def rows() -> int:
        async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
            return await sampler.sample_count(session)

    for _ in range(200):
        if await rows():
            break
        await asyncio.sleep(0.05)
    stop.set()
    await finish_or_cancel(task, 5.0)
    assert await rows() >= 1
    _one_streak_logged(caplog, "server.ops.sampler", 3)


async def test_two_workers_rows_add_up_and_the_fleet_is_not_counted_twice(
    world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    """Each worker samples its own rooms; the page and the roll-up speak for the whole server."""
    now = utcnow()
    old = (now - dt.timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        for at in (old, old + dt.timedelta(minutes=1), now):
            for people, bps in ((2, 100_000.0), (3, 50_000.0)):  # worker 1, worker 2
                session.add(
                    SystemSample(
                        at=sampler.floor_minute(at),
                        minutes=1,
                        rooms=1,
                        participants=people,
                        forwarded_bps=bps,
                        kiosks_online=4,
                    )
                )
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        assert await sampler.roll_up(session, now) == 4
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        hour = (await session.scalars(select(SystemSample).where(SystemSample.minutes > 1))).one()
        day = await charts(session, DAY, now)
        month = await charts(session, MONTH, now)
    assert (hour.at, hour.minutes, hour.rooms, hour.participants, hour.forwarded_bps, hour.kiosks_online) == (
        old,
        2,
        2.0,
        5.0,
        150_000.0,
        4.0,
    )
    assert day.participants[-1].value == 5 and day.kiosks_online[-1].value == 4
    assert day.forwarded_kbps[-1].value == 150
    assert max(bar.value for bar in month.participants) == 5
    assert max(bar.value for bar in month.kiosks_online) == 4


async def test_two_roll_ups_at_once_fold_each_minute_once(
    world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    """Two workers' roll-ups racing: the minutes are deleted with RETURNING before the hours are
    written, so the loser finds nothing left and no hour is written twice."""
    now = utcnow()
    old = (now - dt.timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        for minute in range(30):
            state = meeting(participant("k1", "kiosk", "남성리", "audio_only"))
            await sampler.take_sample(session, state, 1000.0, old + dt.timedelta(minutes=minute))

    async def roll() -> int:
        async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
            return await sampler.roll_up(session, now)

    assert sorted(await asyncio.gather(roll(), roll())) == [0, 30]
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        rows = (await session.scalars(select(SystemSample))).all()
        halls = (await session.scalars(select(HallSample))).all()
    assert [(r.at, r.minutes) for r in rows] == [(old, 30)]
    assert [(h.hall, h.minutes, h.weak_minutes) for h in halls] == [("남성리", 30, 30.0)]
