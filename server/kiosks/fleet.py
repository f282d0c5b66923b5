"""Kiosk fleet status: heartbeats in, online/offline out (derived, never stored)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import utcnow
from server.errors import NotFound
from server.kiosks.models import Kiosk

# A kiosk whose agent has been silent this long is flagged for county IT.
OFFLINE_AFTER = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class FleetEntry:
    kiosk: Kiosk
    online: bool
    silent_for: dt.timedelta | None  # since the last heartbeat; None if there never was one


async def record_heartbeat(
    session: AsyncSession, kiosk_id: int, health: dict[str, Any], agent_version: str
) -> Kiosk:
    kiosk = await session.get(Kiosk, kiosk_id)
    if kiosk is None:
        raise NotFound("kiosk not found", code="kiosk_not_found")
    now = utcnow()
    kiosk.last_heartbeat_at = now
    kiosk.last_seen_at = now
    kiosk.health = health
    kiosk.agent_version = agent_version
    return kiosk


def status_of(kiosk: Kiosk, now: dt.datetime) -> FleetEntry:
    if kiosk.last_heartbeat_at is None:
        return FleetEntry(kiosk, online=False, silent_for=None)
    silent = now - kiosk.last_heartbeat_at
    return FleetEntry(kiosk, online=kiosk.is_active and silent <= OFFLINE_AFTER, silent_for=silent)


async def fleet(session: AsyncSession, now: dt.datetime | None = None) -> list[FleetEntry]:
    now = now or utcnow()
    kiosks = (await session.scalars(select(Kiosk).order_by(Kiosk.id))).all()
    return [status_of(kiosk, now) for kiosk in kiosks]
