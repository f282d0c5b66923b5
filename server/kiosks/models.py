"""Kiosk devices."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import Base, CreatedAtMixin
from server.geo.models import Village


class Kiosk(CreatedAtMixin, Base):
    """A touch-screen kiosk in a village hall.

    Life cycle: created with a one-time enrollment code (hash stored, expires) → enrolled (the code
    is exchanged for a device token; only the token's hash is stored and the code is cleared) →
    revoked (refused at once everywhere). Re-enrolling issues a new code and invalidates the token.
    """

    __tablename__ = "kiosk_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("geo_villages.id", ondelete="RESTRICT"), index=True)
    label: Mapped[str] = mapped_column(String(80))
    enrollment_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrollment_expires_at: Mapped[dt.datetime | None]
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrolled_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    last_seen_at: Mapped[dt.datetime | None]
    # The agent's latest heartbeat: device health as reported (camera, microphone, browser, RTT,
    # free disk) and its version. Online/offline is derived from last_heartbeat_at, not stored.
    last_heartbeat_at: Mapped[dt.datetime | None]
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    agent_version: Mapped[str | None] = mapped_column(String(32))

    village: Mapped[Village] = relationship(lazy="joined")

    @property
    def is_active(self) -> bool:
        return self.token_hash is not None and self.revoked_at is None
