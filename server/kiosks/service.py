"""Kiosk enrollment, device-token authentication and revocation."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal, Role
from server.auth.secrets import new_enrollment_code, new_token, normalize_enrollment_code, token_hash
from server.db import shared_state, utcnow
from server.errors import AuthenticationRequired, BadRequest, Conflict, NotFound
from server.geo.models import Division, Village
from server.kiosks.models import Kiosk
from server.meetings.models import Meeting, MeetingVillage
from server.meetings.workflow import MeetingStatus
from server.rooms import service as rooms
from server.rooms.models import Room

log = logging.getLogger(__name__)

# How far a kiosk's stored ``last_seen_at`` may lag its last authenticated request. The column is
# shown to county IT in the kiosk list; whether a kiosk is online comes from its heartbeats.
SEEN_EVERY = dt.timedelta(seconds=30)
# The key of the ``Sightings`` in a sessionmaker's shared state (``server.db.shared_state``).
SIGHTINGS_KEY = "kiosk_sightings"


class Sightings:
    """Kiosks seen since their ``last_seen_at`` was last written, kept in memory and written for
    all of them in one statement at most every ``SEEN_EVERY``.

    Why: written per kiosk (every 30 s each), a county filing at 3/s wrote one kiosk's
    ``last_seen_at`` in nearly every request, in the authentication's own transaction: one more
    fsynced commit per filing on SQLite, and one more turn of its single write lock (issue 16
    item 4). Batched, that is one such commit every 30 s for the whole county. The bound on the
    lag stays ``SEEN_EVERY`` while requests come in; sightings not yet written when the server
    stops are lost, which costs the kiosk list at most that much of "last seen"."""

    def __init__(self, every: dt.timedelta = SEEN_EVERY) -> None:
        self.every = every
        self._pending: dict[int, dt.datetime] = {}
        self._written_at: dt.datetime | None = None

    def note(self, kiosk_id: int, at: dt.datetime) -> None:
        self._pending[kiosk_id] = at

    def take_due(self, now: dt.datetime) -> dict[int, dt.datetime]:
        """The sightings to write now (and forget), or none if the last write is too recent."""
        if not self._pending or (self._written_at is not None and now - self._written_at < self.every):
            return {}
        due, self._pending, self._written_at = self._pending, {}, now
        return due


@dataclass(frozen=True)
class IssuedCode:
    kiosk: Kiosk
    code: str  # shown once to the installer; only its hash is stored
    expires_at: dt.datetime


def _code_hash(code: str) -> str:
    return token_hash("enroll:" + normalize_enrollment_code(code))


async def create_kiosk(
    session: AsyncSession, *, village_id: int, label: str, code_lifetime: dt.timedelta
) -> IssuedCode:
    if await session.get(Village, village_id) is None:
        raise NotFound(f"village {village_id} does not exist", code="village_not_found")
    label = label.strip()
    if not 1 <= len(label) <= 80:
        raise BadRequest("label must be 1-80 characters", code="invalid_label")
    kiosk = Kiosk(village_id=village_id, label=label)
    session.add(kiosk)
    await session.flush()
    await session.refresh(kiosk, attribute_names=["village"])
    return await issue_enrollment_code(session, kiosk, code_lifetime)


async def issue_enrollment_code(
    session: AsyncSession, kiosk: Kiosk, code_lifetime: dt.timedelta
) -> IssuedCode:
    """A fresh one-time code. (Re-)enrolling replaces any device token: the old device is out."""
    code = new_enrollment_code()
    expires_at = utcnow() + code_lifetime
    kiosk.enrollment_code_hash = _code_hash(code)
    kiosk.enrollment_expires_at = expires_at
    kiosk.token_hash = None
    kiosk.enrolled_at = None
    kiosk.revoked_at = None
    await session.flush()
    log.info("kiosk enrollment code issued", extra={"kiosk_id": kiosk.id})
    return IssuedCode(kiosk=kiosk, code=code, expires_at=expires_at)


async def enroll(session: AsyncSession, code: str) -> tuple[Kiosk, str]:
    """Exchange a one-time code for a device token (returned once; only its hash is kept)."""
    normalized = normalize_enrollment_code(code)
    if len(normalized) != 16:
        raise BadRequest("an enrollment code has 16 letters and digits", code="invalid_enrollment_code")
    kiosk = await session.scalar(select(Kiosk).where(Kiosk.enrollment_code_hash == _code_hash(normalized)))
    # One message for unknown, used and expired codes: a guesser learns nothing.
    refused = AuthenticationRequired(
        "enrollment code is unknown, used or expired", code="enrollment_code_refused"
    )
    if kiosk is None or kiosk.enrollment_expires_at is None:
        raise refused
    if kiosk.enrollment_expires_at <= utcnow():
        raise refused
    token = new_token()
    kiosk.token_hash = token_hash(token)
    kiosk.enrollment_code_hash = None
    kiosk.enrollment_expires_at = None
    kiosk.enrolled_at = utcnow()
    kiosk.revoked_at = None
    await session.flush()
    log.info("kiosk enrolled", extra={"kiosk_id": kiosk.id})
    await invite_to_live_meetings(session, kiosk)
    return kiosk, token


async def invite_to_live_meetings(session: AsyncSession, kiosk: Kiosk) -> list[int]:
    """Invite a kiosk that was just enrolled (or re-enrolled) to the rooms of its village's live
    meetings, as a meeting's start invites the kiosks active then; without it a kiosk that comes in
    during a meeting is admitted but never told of the room, and its agent never joins."""
    room_ids = (
        await session.scalars(
            select(Meeting.room_id)
            .join(MeetingVillage, MeetingVillage.meeting_id == Meeting.id)
            .join(Room, Room.id == Meeting.room_id)
            .where(
                Meeting.status == MeetingStatus.LIVE,
                MeetingVillage.village_id == kiosk.village_id,
                Room.closed_at.is_(None),
            )
            .order_by(Meeting.room_id)
        )
    ).all()
    invited = [room_id for room_id in room_ids if room_id is not None]
    for room_id in invited:
        await rooms.invite(session, room_id, rooms.Invitees(kiosk_ids=(kiosk.id,)))
        log.info("kiosk invited to a live meeting", extra={"kiosk_id": kiosk.id, "room_id": room_id})
    return invited


async def revoke(session: AsyncSession, kiosk_id: int) -> Kiosk:
    kiosk = await session.get(Kiosk, kiosk_id)
    if kiosk is None:
        raise NotFound(f"kiosk {kiosk_id} does not exist", code="kiosk_not_found")
    if kiosk.revoked_at is not None:
        raise Conflict(f"kiosk {kiosk_id} is already revoked", code="kiosk_already_revoked")
    kiosk.revoked_at = utcnow()
    kiosk.enrollment_code_hash = None
    kiosk.enrollment_expires_at = None
    await session.flush()
    log.warning("kiosk revoked", extra={"kiosk_id": kiosk.id})
    return kiosk


async def principal_for_token(session: AsyncSession, token: str) -> Principal | None:
    """The kiosk a device token belongs to, or None if unknown or revoked. Looked up on every
    request, so a revocation takes effect at once.

    Only the columns a principal needs, in one joined SELECT: every kiosk request (each filing)
    runs it, and loading the whole kiosk (its health JSON) with its village and division as ORM
    objects cost about as much CPU on the event loop as the filing's own statements."""
    row = (
        await session.execute(
            select(
                Kiosk.id,
                Kiosk.village_id,
                Kiosk.revoked_at,
                Kiosk.last_seen_at,
                Division.name_ko,
                Village.name_ko,
            )
            .join(Village, Village.id == Kiosk.village_id)
            .join(Division, Division.id == Village.division_id)
            .where(Kiosk.token_hash == token_hash(token))
        )
    ).one_or_none()
    if row is None:
        return None
    kiosk_id, village_id, revoked_at, last_seen_at, division_name, village_name = row
    if revoked_at is not None:  # (the token matched, so it is set: ``Kiosk.is_active``)
        return None
    await _seen(session, kiosk_id, last_seen_at, utcnow())
    return Principal(
        role=Role.KIOSK,
        id=kiosk_id,
        display_name=f"{division_name} {village_name}",  # ``Village.full_name_ko``
        village_id=village_id,
    )


async def _seen(
    session: AsyncSession, kiosk_id: int, last_seen_at: dt.datetime | None, now: dt.datetime
) -> None:
    """Record a kiosk's request in ``last_seen_at``: at once the first time (a new kiosk shows as
    seen at once), else through the sessionmaker's ``Sightings``, whose due batch any kiosk's
    request writes."""
    sightings = shared_state(session, SIGHTINGS_KEY, Sightings)
    stale = last_seen_at is None or now - last_seen_at > SEEN_EVERY
    if sightings is None or last_seen_at is None:
        if stale:
            await _write_seen(session, {kiosk_id: now})
        return
    if stale:
        sightings.note(kiosk_id, now)
    due = sightings.take_due(now)
    if due:
        await _write_seen(session, due)


async def _write_seen(session: AsyncSession, seen: dict[int, dt.datetime]) -> None:
    # One executemany in this (the authentication's) transaction, for every kiosk seen since the
    # last write; Core, so a kiosk deleted meanwhile matches no row and is no error.
    table = cast(Table, Kiosk.__table__)
    await session.execute(
        update(table).where(table.c.id == bindparam("kiosk_id")).values(last_seen_at=bindparam("seen")),
        [{"kiosk_id": kiosk_id, "seen": at} for kiosk_id, at in sorted(seen.items())],
    )
