"""Who is on duty, and the kiosks' calls to them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, CreatedAtMixin


class DutyAvailability(Base):
    """An official who takes calls from the kiosks right now (one row per official who ever
    toggled; ``available`` is the switch on their page)."""

    __tablename__ = "duty_availability"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("auth_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    available: Mapped[bool]
    updated_at: Mapped[dt.datetime]


class DutyCall(CreatedAtMixin, Base):
    """One call from a kiosk. ``ringing`` until an official answers (a room is made for the two
    of them), the kiosk gives up, or the ring time runs out (``missed``, set when next read)."""

    __tablename__ = "duty_calls"
    __table_args__ = (
        CheckConstraint("status IN ('ringing', 'answered', 'missed', 'cancelled')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosk_devices.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="ringing")
    ring_until: Mapped[dt.datetime]
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("auth_accounts.id", ondelete="SET NULL"))
    answered_at: Mapped[dt.datetime | None]
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))
