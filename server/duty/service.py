"""Duty availability and kiosk calls. The first official to answer wins (a conditional UPDATE, so
two officials on two server processes cannot both take the same call)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal
from server.db import utcnow
from server.duty.models import DutyAvailability, DutyCall
from server.errors import Conflict, Forbidden, NotFound
from server.kiosks.models import Kiosk
from server.rooms import service as rooms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallView:
    call: DutyCall
    village: str


async def set_available(session: AsyncSession, official: Principal, available: bool) -> None:
    row = await session.get(DutyAvailability, official.id)
    if row is None:
        session.add(DutyAvailability(account_id=official.id, available=available, updated_at=utcnow()))
    else:
        row.available, row.updated_at = available, utcnow()
    log.info("duty availability", extra={"actor": official.audit_label, "available": available})


async def is_available(session: AsyncSession, official: Principal) -> bool:
    row = await session.get(DutyAvailability, official.id)
    return bool(row and row.available)


async def _expire(session: AsyncSession, now: dt.datetime) -> None:
    await session.execute(
        update(DutyCall)
        .where(DutyCall.status == "ringing", DutyCall.ring_until <= now)
        .values(status="missed")
    )


async def start_call(session: AsyncSession, kiosk: Principal, ring_for: dt.timedelta) -> DutyCall:
    """Ring the officials on duty; a kiosk that is already ringing keeps its call."""
    now = utcnow()
    await _expire(session, now)
    ringing = await session.scalar(
        select(DutyCall).where(DutyCall.kiosk_id == kiosk.id, DutyCall.status == "ringing")
    )
    if ringing is not None:
        return ringing
    call = DutyCall(kiosk_id=kiosk.id, status="ringing", ring_until=now + ring_for)
    session.add(call)
    await session.flush()
    log.info("duty call ringing", extra={"call_id": call.id, "kiosk_id": kiosk.id})
    return call


async def kiosk_call(session: AsyncSession, kiosk: Principal, call_id: int) -> DutyCall:
    await _expire(session, utcnow())
    call = await session.scalar(select(DutyCall).where(DutyCall.id == call_id, DutyCall.kiosk_id == kiosk.id))
    if call is None:
        raise NotFound("no such call from this kiosk", code="call_not_found")
    return call


async def cancel(session: AsyncSession, kiosk: Principal, call_id: int) -> DutyCall:
    call = await kiosk_call(session, kiosk, call_id)
    if call.status == "ringing":
        call.status = "cancelled"
    return call


async def ringing_for(session: AsyncSession, official: Principal) -> list[CallView]:
    """Calls ringing now, for an official who is on duty (nobody else's page rings)."""
    if not await is_available(session, official):
        return []
    now = utcnow()
    await _expire(session, now)
    rows = await session.execute(
        select(DutyCall, Kiosk).join(Kiosk, Kiosk.id == DutyCall.kiosk_id).where(DutyCall.status == "ringing")
    )
    return [CallView(call, kiosk.village.full_name_ko) for call, kiosk in rows.all()]


def _on_duty(official: Principal) -> ColumnElement[bool]:
    """SQL condition: the official is on duty (part of the answer's UPDATE, so going off duty and
    answering cannot interleave)."""
    return exists().where(DutyAvailability.account_id == official.id, DutyAvailability.available.is_(True))


async def answer(session: AsyncSession, official: Principal, call_id: int) -> DutyCall:
    """Take a ringing call: only an official on duty, and only the first one."""
    now = utcnow()
    await _expire(session, now)
    taken = await session.execute(
        update(DutyCall)
        .where(DutyCall.id == call_id, DutyCall.status == "ringing", _on_duty(official))
        .values(status="answered", answered_by=official.id, answered_at=now)
    )
    call = await session.get(DutyCall, call_id, populate_existing=True)
    if call is None:
        raise NotFound("no such call", code="call_not_found")
    if taken.rowcount != 1 and call.status == "ringing":  # type: ignore[attr-defined]
        raise Forbidden("only an official on duty answers calls", code="not_on_duty")
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        code = "call_taken" if call.status == "answered" else f"call_{call.status}"
        raise Conflict("this call is no longer ringing", code=code)
    kiosk = await session.get(Kiosk, call.kiosk_id)
    assert kiosk is not None
    room = await rooms.create_room(
        session,
        official,
        f"군청 영상통화 · {kiosk.village.full_name_ko}",
        rooms.Invitees(account_ids=(official.id,), kiosk_ids=(kiosk.id,)),
    )
    call.room_id = room.id
    log.info(
        "duty call answered", extra={"call_id": call.id, "actor": official.audit_label, "room_id": room.id}
    )
    return call
