"""Who was in a meeting and for how long: presences opened and closed as participants join and
leave (a reconnect within ``REJOIN_GRACE`` continues the same presence), the residents counted in a
hall, and the totals the record shows. The background task that keeps presences honest across
restarts is ``presence.py``.

Functions take the caller's ``AsyncSession`` and never commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.roles import Principal, Role
from server.db import transaction, utcnow
from server.errors import BadRequest, Conflict, Forbidden
from server.meetings.models import (
    Attendance,
)
from server.meetings.service import meeting_for_room

log = logging.getLogger(__name__)


# A participant who comes back within this time continues the same presence (a reconnect).
REJOIN_GRACE = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class ParticipantTotal:
    kind: str
    account_id: int | None
    kiosk_id: int | None
    name: str
    first_joined_at: dt.datetime
    last_left_at: dt.datetime | None
    present_seconds: int
    gap_seconds: int
    interruptions: int
    residents_count: int | None


def _participant_filter(principal: Principal) -> Any:
    if principal.role is Role.KIOSK:
        return Attendance.kiosk_id == principal.id
    return Attendance.account_id == principal.id


async def record_join(
    session: AsyncSession,
    meeting_id: int,
    principal: Principal,
    *,
    at: dt.datetime | None = None,
    name: str | None = None,
    grace: dt.timedelta = REJOIN_GRACE,
) -> Attendance:
    """A participant's media connection came up. Idempotent (a second join while present changes
    nothing); a rejoin within ``grace`` of the last leave continues that presence and notes the gap."""
    at = at or utcnow()
    latest = await session.scalar(
        select(Attendance)
        .where(Attendance.meeting_id == meeting_id, _participant_filter(principal))
        .order_by(Attendance.joined_at.desc(), Attendance.id.desc())
        .limit(1)
        .with_for_update()
    )
    if latest is not None and latest.left_at is None:
        return latest
    if latest is not None and latest.left_at is not None and dt.timedelta(0) <= at - latest.left_at <= grace:
        gap = int((at - latest.left_at).total_seconds())
        latest.gaps = [*latest.gaps, [latest.left_at.isoformat(), at.isoformat()]]
        latest.gap_seconds += gap
        latest.left_at = None
        await session.flush()
        log.info(
            "meeting rejoin",
            extra={"meeting_id": meeting_id, "participant": principal.audit_label, "gap_s": gap},
        )
        return latest
    is_kiosk = principal.role is Role.KIOSK
    presence = Attendance(
        meeting_id=meeting_id,
        kind="kiosk" if is_kiosk else "official",
        account_id=None if is_kiosk else principal.id,
        kiosk_id=principal.id if is_kiosk else None,
        name=(name or principal.display_name)[:120],
        joined_at=at,
        gap_seconds=0,
        gaps=[],
    )
    session.add(presence)
    await session.flush()
    log.info("meeting join", extra={"meeting_id": meeting_id, "participant": principal.audit_label})
    return presence


async def record_leave(
    session: AsyncSession, meeting_id: int, principal: Principal, *, at: dt.datetime | None = None
) -> Attendance | None:
    """A participant's media connection went away. Idempotent: without an open presence, nothing."""
    at = at or utcnow()
    presence = await session.scalar(
        select(Attendance)
        .where(
            Attendance.meeting_id == meeting_id, _participant_filter(principal), Attendance.left_at.is_(None)
        )
        .order_by(Attendance.id.desc())
        .limit(1)
        .with_for_update()
    )
    if presence is None:
        return None
    presence.left_at = max(at, presence.joined_at)
    await session.flush()
    log.info("meeting leave", extra={"meeting_id": meeting_id, "participant": principal.audit_label})
    return presence


async def set_residents_count(
    session: AsyncSession, meeting_id: int, kiosk: Principal, count: int
) -> Attendance:
    """How many residents sit in front of the kiosk (entered by the kiosk operator)."""
    if kiosk.role is not Role.KIOSK:
        raise Forbidden("only a kiosk reports its residents", code="not_a_kiosk")
    if not 0 <= count <= 500:
        raise BadRequest("residents count must be 0-500", code="invalid_residents_count")
    presence = await session.scalar(
        select(Attendance)
        .where(Attendance.meeting_id == meeting_id, Attendance.kiosk_id == kiosk.id)
        .order_by(Attendance.id.desc())
        .limit(1)
    )
    if presence is None:
        raise Conflict("the kiosk has not joined this meeting", code="not_present")
    presence.residents_count = count
    await session.flush()
    return presence


async def record_room_join(
    session: AsyncSession, room_id: int, principal: Principal, *, at: dt.datetime | None = None
) -> Attendance | None:
    """For the hub: a join in a room; recorded if a meeting owns the room, else nothing."""
    meeting = await meeting_for_room(session, room_id)
    return None if meeting is None else await record_join(session, meeting.id, principal, at=at)


async def record_room_leave(
    session: AsyncSession, room_id: int, principal: Principal, *, at: dt.datetime | None = None
) -> Attendance | None:
    """For the hub: a leave (or a dropped connection) in a room owned by a meeting."""
    meeting = await meeting_for_room(session, room_id)
    return None if meeting is None else await record_leave(session, meeting.id, principal, at=at)


async def record_room_presence(
    sessionmaker: async_sessionmaker[AsyncSession],
    room_id: int,
    principal: Principal,
    *,
    present: bool,
    at: dt.datetime | None = None,
) -> None:
    """One call for the signaling hub, in its own transaction: ``present=True`` when a participant's
    media connection is up in ``room_id``, ``False`` when it left or was dropped. A room that no
    meeting owns is ignored; a database failure is logged and never breaks the media plane."""
    try:
        async with transaction(sessionmaker) as session:
            if present:
                await record_room_join(session, room_id, principal, at=at)
            else:
                await record_room_leave(session, room_id, principal, at=at)
    except SQLAlchemyError:
        extra = {"room_id": room_id, "participant": principal.audit_label}
        log.exception("attendance not recorded", extra=extra)


async def attendance_of(session: AsyncSession, meeting_id: int) -> Sequence[Attendance]:
    stmt = (
        select(Attendance)
        .where(Attendance.meeting_id == meeting_id)
        .order_by(Attendance.joined_at, Attendance.id)
    )
    return (await session.scalars(stmt)).all()


def attendance_totals(presences: Sequence[Attendance], *, until: dt.datetime) -> list[ParticipantTotal]:
    """Per participant: time present (gaps excluded), gaps, interruptions (open presences count
    up to ``until``)."""
    grouped: dict[tuple[str, int | None, int | None], list[Attendance]] = {}
    for p in presences:
        grouped.setdefault((p.kind, p.account_id, p.kiosk_id), []).append(p)
    totals = []
    for (kind, account_id, kiosk_id), rows in grouped.items():
        present = 0
        gaps = 0
        interruptions = 0
        for row in rows:
            end = row.left_at or max(until, row.joined_at)
            present += int((end - row.joined_at).total_seconds()) - row.gap_seconds
            gaps += row.gap_seconds
            interruptions += len(row.gaps)
        lefts = [r.left_at for r in rows]
        counts = [r.residents_count for r in rows if r.residents_count is not None]
        totals.append(
            ParticipantTotal(
                kind=kind,
                account_id=account_id,
                kiosk_id=kiosk_id,
                name=rows[-1].name,
                first_joined_at=min(r.joined_at for r in rows),
                last_left_at=None if any(left is None for left in lefts) else max(lefts),  # type: ignore[type-var]
                present_seconds=max(present, 0),
                gap_seconds=gaps,
                interruptions=interruptions + len(rows) - 1,
                residents_count=max(counts) if counts else None,
            )
        )
    return sorted(totals, key=lambda t: (t.kind != "official", t.first_joined_at))
