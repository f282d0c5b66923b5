"""The system-history sampler: once a minute, one row of what this worker is doing (and one per
village hall in a meeting), so /admin/system can chart the last 24 hours and 30 days without a
Prometheus server.

Rows older than ``MINUTE_ROWS_KEPT`` are rolled up to one per hour, and hourly rows older than
``HOUR_ROWS_KEPT`` are deleted: about 3,000 minute rows and 9,000 hour rows per worker at most.

Like the meeting clock, the sampler must outlive whatever a tick raises (a database that refuses
connections): a failure is logged once per streak (``FailureStreak``) and the next minute tries
again. A missed minute is a gap in the chart, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.background import FailureStreak, finish_or_cancel
from server.db import transaction, utcnow
from server.keys import SAMPLER, SESSIONMAKER
from server.kiosks.fleet import fleet
from server.ops.history import Figures, merge_workers
from server.ops.live import LiveState, app_live_state
from server.ops.models import HallSample, SystemSample

log = logging.getLogger(__name__)

TICK_SECONDS = 60.0
STOP_SECONDS = 10.0
RETRY_FIRST_SECONDS = 5.0
RETRY_CAP_SECONDS = 60.0
MINUTE_ROWS_KEPT = dt.timedelta(hours=48)
HOUR_ROWS_KEPT = dt.timedelta(days=400)


def floor_minute(at: dt.datetime) -> dt.datetime:
    return at.replace(second=0, microsecond=0)


def floor_hour(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)


@dataclass
class BitrateMeter:
    """Forwarded bit/s between two samples, from the SFU's per-participant byte counters.

    A participant's counter starts again at zero when it rejoins (a new SFU participant), so a
    counter smaller than the last one seen counts from zero rather than as a negative rate."""

    _last: dict[tuple[str, str], int] = field(default_factory=dict)
    _last_at: float | None = None

    def rate(self, state: LiveState, now: float) -> float:
        current = {(p.room_id, p.participant_id): p.bytes_out for p in state.participants}
        sent = 0
        for key, total in current.items():
            before = self._last.get(key, 0)
            sent += total - before if total >= before else total
        elapsed = now - self._last_at if self._last_at is not None else None
        self._last, self._last_at = current, now
        if not elapsed or elapsed <= 0:
            return 0.0  # the first sample has nothing to compare with
        return sent * 8 / elapsed


async def take_sample(
    session: AsyncSession, state: LiveState, bitrate_bps: float, at: dt.datetime
) -> SystemSample:
    """Write this minute's row (and one per village hall whose kiosk is in a meeting)."""
    kiosks_online = sum(1 for e in await fleet(session, at) if e.online)
    participants = state.participants
    row = SystemSample(
        at=floor_minute(at),
        minutes=1,
        rooms=float(len(state.rooms)),
        participants=float(len(participants)),
        forwarded_bps=float(bitrate_bps),
        kiosks_online=float(kiosks_online),
    )
    session.add(row)
    halls: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p in participants:
        if p.kind == "kiosk":
            halls[p.hall][0] += 1
            halls[p.hall][1] += int(p.weak)
    for hall, (present, weak) in sorted(halls.items()):
        session.add(
            HallSample(
                at=row.at,
                minutes=1,
                hall=hall[:120],
                present_minutes=float(present),
                weak_minutes=float(weak),
            )
        )
    await session.flush()
    return row


async def roll_up(session: AsyncSession, now: dt.datetime) -> int:
    """Fold minute rows older than ``MINUTE_ROWS_KEPT`` into hourly rows; drop ancient hours.

    The minute rows are deleted first, with RETURNING, and the hourly rows built from what the
    delete returned: two workers rolling up at once cannot both fold the same minutes (the second
    delete finds them gone), so no hour is counted twice. An hour that had a single sample looks
    like a minute row (``minutes == 1``) and is folded again into the same row: same figures, no
    harm. Returns the rows folded."""
    cutoff = floor_hour(now - MINUTE_ROWS_KEPT)
    await session.execute(delete(SystemSample).where(SystemSample.at < now - HOUR_ROWS_KEPT))
    await session.execute(delete(HallSample).where(HallSample.at < now - HOUR_ROWS_KEPT))
    gone = (
        await session.execute(
            delete(SystemSample)
            .where(SystemSample.minutes == 1, SystemSample.at < cutoff)
            .returning(
                SystemSample.at,
                SystemSample.rooms,
                SystemSample.participants,
                SystemSample.forwarded_bps,
                SystemSample.kiosks_online,
            )
        )
    ).all()
    minute_rows = [
        SystemSample(
            at=at, minutes=1, rooms=rooms, participants=people, forwarded_bps=bps, kiosks_online=kiosks
        )
        for at, rooms, people, bps, kiosks in gone
    ]
    # One figure per minute for the whole server first (each worker wrote its own row), then the
    # hour's mean of those minutes.
    by_hour: dict[dt.datetime, list[Figures]] = defaultdict(list)
    for at, figures in merge_workers(minute_rows).items():
        by_hour[floor_hour(at)].append(figures)
    for hour, minutes in sorted(by_hour.items()):
        count = len(minutes)
        session.add(
            SystemSample(
                at=hour,
                minutes=count,
                rooms=sum(m.rooms for m in minutes) / count,
                participants=sum(m.participants for m in minutes) / count,
                forwarded_bps=sum(m.forwarded_bps for m in minutes) / count,
                kiosks_online=sum(m.kiosks_online for m in minutes) / count,
            )
        )
    halls = (
        await session.execute(
            delete(HallSample)
            .where(HallSample.minutes == 1, HallSample.at < cutoff)
            .returning(HallSample.at, HallSample.hall, HallSample.present_minutes, HallSample.weak_minutes)
        )
    ).all()
    hall_hours: dict[tuple[dt.datetime, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for at, hall, present, weak in halls:
        totals = hall_hours[(floor_hour(at), hall)]
        totals[0] += 1
        totals[1] += present
        totals[2] += weak
    for (hour, hall), (folded, present, weak) in sorted(hall_hours.items()):
        session.add(
            HallSample(at=hour, minutes=int(folded), hall=hall, present_minutes=present, weak_minutes=weak)
        )
    await session.flush()
    return len(gone)


async def sample_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(SystemSample)) or 0)


async def tick(app: web.Application, meter: BitrateMeter) -> None:
    state = app_live_state(app) or LiveState(())
    bitrate = meter.rate(state, time.monotonic())
    now = utcnow()
    async with transaction(app[SESSIONMAKER]) as session:
        await take_sample(session, state, bitrate, now)
    async with transaction(app[SESSIONMAKER]) as session:
        await roll_up(session, now)


def _until_next_minute(now: dt.datetime) -> float:
    """Seconds to the start of the next minute, so each row's ``at`` is the minute it measured."""
    return 60.0 - now.second - now.microsecond / 1e6


async def _loop(app: web.Application, stop: asyncio.Event, health: FailureStreak, first_pause: float) -> None:
    meter = BitrateMeter()
    pause = first_pause
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        if stop.is_set():
            break
        try:
            await tick(app, meter)
        except Exception as exc:  # any failure: the next minute may well succeed
            health.failed(exc)
        else:
            health.succeeded()
        pause = health.backoff(RETRY_FIRST_SECONDS, RETRY_CAP_SECONDS) or _until_next_minute(utcnow())


async def sampler_ctx(app: web.Application) -> AsyncIterator[None]:
    stop = asyncio.Event()
    health = app[SAMPLER] = FailureStreak("the system-history sampler", log)
    task = asyncio.get_running_loop().create_task(
        _loop(app, stop, health, _until_next_minute(utcnow())), name="ops-sampler"
    )
    yield
    stop.set()  # between ticks, not inside one
    await finish_or_cancel(task, STOP_SECONDS)
