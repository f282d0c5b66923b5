"""Rooms: create, invite, close, list; and the one admission rule (``may_join``).

``may_join`` is deliberately the only place that decides whether a principal may enter a room, so
the scheduled-meetings feature can replace it without touching signaling.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Account
from server.auth.roles import Principal, Role
from server.db import utcnow
from server.errors import BadRequest, Conflict, NotFound
from server.kiosks.models import Kiosk
from server.rooms.models import Room, RoomInvitation

log = logging.getLogger(__name__)

TITLE_MAX = 120


@dataclass(frozen=True)
class Invitees:
    account_ids: tuple[int, ...] = ()
    kiosk_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class MemberInfo:
    """How a participant is shown to the others: a name, and the village for kiosks."""

    kind: str  # "kiosk" | "official"
    name: str
    village: str | None


async def create_room(session: AsyncSession, creator: Principal, title: str, invitees: Invitees) -> Room:
    title = title.strip()
    if not 1 <= len(title) <= TITLE_MAX:
        raise BadRequest(f"title must be 1-{TITLE_MAX} characters", code="invalid_title")
    room = Room(title=title, created_by=creator.id if creator.is_account else None)
    session.add(room)
    await session.flush()
    await _add_invitations(session, room, invitees)
    await session.refresh(room, ["invitations"])
    log.info("room created", extra={"room_id": room.id, "actor": creator.audit_label})
    return room


async def _add_invitations(session: AsyncSession, room: Room, invitees: Invitees) -> None:
    account_ids = sorted(set(invitees.account_ids))
    kiosk_ids = sorted(set(invitees.kiosk_ids))
    if account_ids:
        found = set(
            (
                await session.scalars(
                    select(Account.id).where(Account.id.in_(account_ids), Account.is_active.is_(True))
                )
            ).all()
        )
        if missing := [i for i in account_ids if i not in found]:
            raise NotFound(f"no active accounts {missing}", code="account_not_found")
    if kiosk_ids:
        found = set(
            (
                await session.scalars(
                    select(Kiosk.id).where(Kiosk.id.in_(kiosk_ids), Kiosk.revoked_at.is_(None))
                )
            ).all()
        )
        if missing := [i for i in kiosk_ids if i not in found]:
            raise NotFound(f"no active kiosks {missing}", code="kiosk_not_found")
    existing = (await session.scalars(select(RoomInvitation).where(RoomInvitation.room_id == room.id))).all()
    have_accounts = {i.account_id for i in existing}
    have_kiosks = {i.kiosk_id for i in existing}
    for account_id in account_ids:
        if account_id not in have_accounts:
            session.add(RoomInvitation(room_id=room.id, account_id=account_id))
    for kiosk_id in kiosk_ids:
        if kiosk_id not in have_kiosks:
            session.add(RoomInvitation(room_id=room.id, kiosk_id=kiosk_id))
    await session.flush()


async def invite(session: AsyncSession, room_id: int, invitees: Invitees) -> Room:
    room = await get_room(session, room_id)
    if not room.is_open:
        raise Conflict("the room is closed", code="room_closed")
    await _add_invitations(session, room, invitees)
    await session.refresh(room, ["invitations"])
    return room


async def get_room(session: AsyncSession, room_id: int) -> Room:
    room = await session.get(Room, room_id)
    if room is None:
        raise NotFound(f"room {room_id} does not exist", code="room_not_found")
    return room


async def close_room(session: AsyncSession, room_id: int, actor: Principal) -> Room:
    room = await get_room(session, room_id)
    if room.closed_at is None:
        room.closed_at = utcnow()
        log.info("room closed", extra={"room_id": room.id, "actor": actor.audit_label})
    return room


async def list_rooms(session: AsyncSession, *, include_closed: bool = True) -> Sequence[Room]:
    query = select(Room).order_by(Room.closed_at.is_not(None), Room.id.desc())
    if not include_closed:
        query = query.where(Room.closed_at.is_(None))
    return (await session.scalars(query)).all()


def _invitation_filter(principal: Principal) -> object:
    if principal.role is Role.KIOSK:
        return RoomInvitation.kiosk_id == principal.id
    return RoomInvitation.account_id == principal.id


async def may_join(session: AsyncSession, principal: Principal, room: Room) -> bool:
    """May this principal enter this room? (Today: invited, or an administrator; the room open.)

    The single admission rule of meetings; scheduled meetings will replace it."""
    if not room.is_open:
        return False
    if principal.role is Role.ADMIN:
        return True
    found = await session.scalar(
        select(RoomInvitation.id).where(RoomInvitation.room_id == room.id, _invitation_filter(principal))  # type: ignore[arg-type]
    )
    return found is not None


async def open_rooms_for(session: AsyncSession, principal: Principal) -> Sequence[Room]:
    """Open rooms the principal is invited to (admins: every open room)."""
    query = select(Room).where(Room.closed_at.is_(None)).order_by(Room.id.desc())
    if principal.role is not Role.ADMIN:
        query = query.where(
            Room.id.in_(select(RoomInvitation.room_id).where(_invitation_filter(principal)))  # type: ignore[arg-type]
        )
    return (await session.scalars(query)).all()


async def member_info(session: AsyncSession, principal: Principal) -> MemberInfo:
    if principal.role is Role.KIOSK:
        kiosk = await session.get(Kiosk, principal.id)
        village = kiosk.village.full_name_ko if kiosk is not None else principal.display_name
        name = kiosk.label if kiosk is not None else principal.display_name
        return MemberInfo(kind="kiosk", name=name, village=village)
    return MemberInfo(kind="official", name=principal.display_name, village=None)


async def invitee_names(
    session: AsyncSession, rooms: Iterable[Room]
) -> tuple[dict[int, str], dict[int, str]]:
    """Display names of invited accounts and kiosks (for the admin page)."""
    account_ids = {i.account_id for r in rooms for i in r.invitations if i.account_id is not None}
    kiosk_ids = {i.kiosk_id for r in rooms for i in r.invitations if i.kiosk_id is not None}
    accounts: dict[int, str] = {}
    kiosks: dict[int, str] = {}
    if account_ids:
        for a in (await session.scalars(select(Account).where(Account.id.in_(account_ids)))).all():
            accounts[a.id] = a.display_name
    if kiosk_ids:
        for k in (await session.scalars(select(Kiosk).where(Kiosk.id.in_(kiosk_ids)))).all():
            kiosks[k.id] = f"{k.label} ({k.village.full_name_ko})"
    return accounts, kiosks
