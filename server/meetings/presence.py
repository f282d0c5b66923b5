"""Attendance across server restarts: a restart is on the record.

Presences are opened and closed from the media plane (``attendance.record_join``/``record_leave``),
but a server that is killed (SIGKILL, power cut, OOM) never sees its participants leave: their
rows stay open, and when the halls come back after the restart their rejoin would simply continue
them, as if nothing had happened. So:

* while the server runs, every ``SEEN_INTERVAL_S`` each open presence whose media is flowing gets
  ``last_seen_at = now`` (one UPDATE per live meeting: cheap);
* at start-up, before the server answers anyone, presences left open by the previous run end at
  their ``last_seen_at`` (or at their join if media was never seen); if the database is down then,
  as soon as it answers (only rows neither joined nor seen since the start). A clean stop does
  the same after a last "seen" mark, so it needs no special case;
* the halls' rejoin then either continues the presence with a gap (within the rejoin grace) or
  opens a new one: either way the record shows the gap and counts the interruption.

A ``last_seen_at`` is at most ``SEEN_INTERVAL_S`` behind the real end of media, which is the
precision of the record across a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal, Role
from server.background import FailureStreak
from server.db import transaction, utcnow
from server.keys import ROOM_HUB, SESSIONMAKER
from server.meetings.models import Attendance, Meeting

log = logging.getLogger(__name__)

SEEN_INTERVAL_S = 3.0
#: Media older than this is not "seen" (audio arrives every ≤ 400 ms even in silence, with DTX).
MEDIA_FRESH_S = 3.0


@dataclass(frozen=True)
class Seen:
    room_id: int
    principal: Principal


async def end_presences_at_last_seen(session: AsyncSession, *, before: dt.datetime | None = None) -> int:
    """End open presences at the last time their media was seen (their join if never): what a
    server that stopped, cleanly or not, knows of when each participant really left. ``before``:
    only presences neither joined nor seen since then (the previous run's, once this run serves)."""
    stmt = select(Attendance).where(Attendance.left_at.is_(None))
    if before is not None:
        stmt = stmt.where(
            Attendance.joined_at < before,
            or_(Attendance.last_seen_at.is_(None), Attendance.last_seen_at < before),
        )
    rows = (await session.scalars(stmt.with_for_update())).all()
    for row in rows:
        row.left_at = max(row.last_seen_at or row.joined_at, row.joined_at)
    await session.flush()
    return len(rows)


async def mark_seen(session: AsyncSession, seen: Iterable[Seen], at: dt.datetime) -> None:
    """``last_seen_at = at`` on the open presences of these participants (rooms no meeting owns
    are ignored)."""
    by_room: dict[int, list[Principal]] = {}
    for item in seen:
        by_room.setdefault(item.room_id, []).append(item.principal)
    if not by_room:
        return
    meetings = (
        await session.execute(select(Meeting.id, Meeting.room_id).where(Meeting.room_id.in_(by_room)))
    ).all()
    for meeting_id, room_id in meetings:
        principals = by_room.get(room_id) if room_id is not None else None
        if not principals:
            continue
        kiosks = [p.id for p in principals if p.role is Role.KIOSK]
        accounts = [p.id for p in principals if p.role is not Role.KIOSK]
        await session.execute(
            update(Attendance)
            .where(
                Attendance.meeting_id == meeting_id,
                Attendance.left_at.is_(None),
                or_(Attendance.kiosk_id.in_(kiosks), Attendance.account_id.in_(accounts)),
            )
            .values(last_seen_at=at)
        )


def media_seen(app: web.Application) -> list[Seen]:
    """Participants hosted here whose media reached the SFU within ``MEDIA_FRESH_S`` (also those
    whose socket is lost but whose media still flows)."""
    hub = app[ROOM_HUB]
    members = [m for m in hub.members.values() if m.connected]
    members += [g.member for g in hub.ghosts() if g.media]
    seen = []
    for member in members:
        age = hub.media_age(member.room_id, member.pid)
        if age is not None and age < MEDIA_FRESH_S:
            seen.append(Seen(int(member.room_id), member.principal))
    return seen


async def _mark(app: web.Application) -> None:
    seen = media_seen(app)
    if seen:
        async with transaction(app[SESSIONMAKER]) as session:
            await mark_seen(session, seen, utcnow())


async def _end_all(app: web.Application, when: str, before: dt.datetime | None = None) -> None:
    async with transaction(app[SESSIONMAKER]) as session:
        ended = await end_presences_at_last_seen(session, before=before)
    if ended:
        log.info("open presences ended at the last time media was seen (%s)", when, extra={"ended": ended})


async def _end_previous_run(app: web.Application, started: dt.datetime) -> bool:
    """True once the previous run's presences are ended. Refreshes this run's marks first, so a
    hall that rejoined (and so continued its open presence) meanwhile is not ended with them."""
    try:
        await _mark(app)
        await _end_all(app, "previous run", before=started)
    except Exception:
        log.debug("previous run's presences not ended yet", exc_info=True)
        return False
    return True


async def _loop(
    app: web.Application, stop: asyncio.Event, health: FailureStreak, started: dt.datetime, ended: bool
) -> None:
    while not stop.is_set():
        if not ended:  # the database was down at start-up
            ended = await _end_previous_run(app, started)
        try:
            await _mark(app)
        except Exception as exc:  # a database outage: the next mark may well succeed
            health.failed(exc)
        else:
            health.succeeded()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SEEN_INTERVAL_S)


async def presence_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: end the previous run's presences (before the server answers anyone, unless
    the database is down then: later, as soon as it is back), mark media as seen while serving,
    and end the presences at the last mark when the server stops. Register it after the hub."""
    started = utcnow()
    ended = await _end_previous_run(app, started)
    if not ended:
        log.warning("the previous run's open presences will be ended once the database answers")
    stop = asyncio.Event()
    health = FailureStreak("attendance last-seen marks", log)
    task = asyncio.get_running_loop().create_task(
        _loop(app, stop, health, started, ended), name="presence-seen"
    )
    try:
        yield
    finally:
        stop.set()
        await task  # it stops between marks, never inside a database write
        try:
            await _mark(app)
            await _end_all(app, "server stopping")
        except Exception:  # the database may be what is down; the next start ends them then
            log.warning("presences not ended at shutdown; the next start will end them", exc_info=True)
