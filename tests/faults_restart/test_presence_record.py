"""A restart is on the record (SQLite and PostgreSQL): presences a stopped server left open end at
the last time media was seen, at the next start and before anybody can rejoin; the rejoin shows the
gap and counts an interruption; while serving, flowing media keeps ``last_seen_at`` fresh."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config import Settings
from server.db import transaction, utcnow
from server.meetings import attendance as meeting_attendance
from server.meetings import presence
from server.meetings.models import Attendance
from tests.conftest import World
from tests.kiosk_ref import KioskRef
from tests.meetings.conftest import live_meeting, official_principal
from tests.signaling.signaling_kit import Participant, session_cookie, wait_until


async def _rows(sessionmaker: Any, meeting_id: int) -> list[Attendance]:
    async with transaction(sessionmaker) as session:
        return list(await meeting_attendance.attendance_of(session, meeting_id))


async def test_a_restart_ends_open_presences_at_last_seen_and_the_rejoin_shows_the_gap(
    world: World,
    sessionmaker: Any,
    kiosk_a: KioskRef,
    settings: Settings,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    live = await live_meeting(sessionmaker, world, invite_other_official=False)
    now = utcnow()
    joined, seen = now - dt.timedelta(minutes=10), now - dt.timedelta(seconds=40)
    async with transaction(sessionmaker) as session:
        # What a killed server leaves behind: the hall seen 40 s ago, the chair's media never seen.
        await meeting_attendance.record_join(session, live.meeting_id, kiosk_a.principal, at=joined)
        await meeting_attendance.record_join(session, live.meeting_id, official_principal(world), at=joined)
        await session.flush()
    async with transaction(sessionmaker) as session:
        await presence.mark_seen(session, [presence.Seen(live.room_id, kiosk_a.principal)], seen)

    await aiohttp_client(create_app(settings))  # the next start
    rows = {r.kind: r for r in await _rows(sessionmaker, live.meeting_id)}
    assert rows["kiosk"].left_at == seen
    assert rows["official"].left_at == joined  # never seen: no attendance claimed

    async with transaction(sessionmaker) as session:  # the hall is back
        await meeting_attendance.record_join(session, live.meeting_id, kiosk_a.principal, at=now)
    presences = await _rows(sessionmaker, live.meeting_id)
    totals = {
        t.kind: t
        for t in meeting_attendance.attendance_totals(presences, until=now + dt.timedelta(minutes=1))
    }
    assert totals["kiosk"].interruptions == 1
    assert totals["kiosk"].gap_seconds == 40
    # Present for the 9:20 before the stop and the minute since, not for the outage.
    assert totals["kiosk"].present_seconds == 9 * 60 + 20 + 60


async def test_marks_touch_only_open_presences_of_those_seen(
    world: World, sessionmaker: Any, kiosk_a: KioskRef, kiosk_b: KioskRef
) -> None:
    live = await live_meeting(sessionmaker, world, villages=(0, 1), invite_other_official=False)
    other = await live_meeting(
        sessionmaker, world, title="다른 회의", villages=(0,), invite_other_official=False
    )
    t0 = utcnow() - dt.timedelta(minutes=5)
    async with transaction(sessionmaker) as session:
        for meeting_id in (live.meeting_id, other.meeting_id):
            await meeting_attendance.record_join(session, meeting_id, kiosk_a.principal, at=t0)
        await meeting_attendance.record_join(session, live.meeting_id, kiosk_b.principal, at=t0)
        await meeting_attendance.record_leave(
            session, live.meeting_id, kiosk_b.principal, at=t0 + dt.timedelta(minutes=1)
        )
    mark = utcnow()
    async with transaction(sessionmaker) as session:
        await presence.mark_seen(
            session,
            [presence.Seen(live.room_id, kiosk_a.principal), presence.Seen(live.room_id, kiosk_b.principal)],
            mark,
        )
    here = {r.kiosk_id: r for r in await _rows(sessionmaker, live.meeting_id)}
    assert here[kiosk_a.id].last_seen_at == mark
    assert here[kiosk_b.id].last_seen_at is None  # it had left: its end stays where it was
    (elsewhere,) = await _rows(sessionmaker, other.meeting_id)
    assert elsewhere.last_seen_at is None  # another meeting's room was not seen


@pytest.mark.network
async def test_flowing_media_keeps_last_seen_fresh(
    client: TestClient, world: World, sessionmaker: Any, kiosk_a: KioskRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = await live_meeting(sessionmaker, world, invite_other_official=False)
    chair = await Participant("chair", client, cookie=await session_cookie(client, "official")).connect()
    hall = await Participant("hall", client, token=kiosk_a.token).connect()
    try:
        await chair.join(live.room_id)
        await hall.join(live.room_id)
        await chair.publish(60, 3000, video_slots=9)
        await hall.publish(170, 3000, video_slots=2)
        assert hall.pid
        await wait_until(lambda: chair.sees(hall.pid, 170), 20, "media flows")  # type: ignore[arg-type]
        marks: list[dt.datetime] = []
        for _ in range(2):  # two marks in a row: it keeps following the media
            deadline = asyncio.get_running_loop().time() + presence.SEEN_INTERVAL_S * 4
            while asyncio.get_running_loop().time() < deadline:
                rows = {r.kind: r for r in await _rows(sessionmaker, live.meeting_id)}
                seen = rows.get("kiosk") and rows["kiosk"].last_seen_at
                if seen and (not marks or seen > marks[-1]):
                    marks.append(seen)
                    break
                await asyncio.sleep(0.2)
        assert len(marks) == 2, marks
        assert all(rows[k].last_seen_at is not None for k in ("kiosk", "official"))
    finally:
        for p in (chair, hall):
            await p.close()


async def test_a_late_end_of_the_previous_run_spares_this_runs_presences(
    world: World, sessionmaker: Any, kiosk_a: KioskRef, kiosk_b: KioskRef
) -> None:
    """The database was down at start-up: the previous run's presences are ended once it is back,
    but a hall seen since the start (it rejoined, continuing its open row) or joined since stays."""
    live = await live_meeting(sessionmaker, world, villages=(0, 1), invite_other_official=False)
    started = utcnow()
    before, since = started - dt.timedelta(minutes=5), started + dt.timedelta(seconds=5)
    async with transaction(sessionmaker) as session:
        await meeting_attendance.record_join(session, live.meeting_id, kiosk_a.principal, at=before)
        await meeting_attendance.record_join(session, live.meeting_id, kiosk_b.principal, at=before)
        await meeting_attendance.record_join(session, live.meeting_id, official_principal(world), at=since)
    async with transaction(sessionmaker) as session:
        await presence.mark_seen(session, [presence.Seen(live.room_id, kiosk_a.principal)], before)
        await presence.mark_seen(session, [presence.Seen(live.room_id, kiosk_b.principal)], since)
    async with transaction(sessionmaker) as session:
        assert await presence.end_presences_at_last_seen(session, before=started) == 1
    rows = {(r.kiosk_id, r.account_id): r for r in await _rows(sessionmaker, live.meeting_id)}
    assert rows[(kiosk_a.id, None)].left_at == before  # the previous run's, ended at its last media
    assert rows[(kiosk_b.id, None)].left_at is None  # seen since the start: this run's
    assert rows[(None, world.official_id)].left_at is None  # joined since the start
