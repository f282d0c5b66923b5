"""The system page's history: one row per minute while recent, rolled up to one per hour later.

Each row says how many minutes it covers (1, or up to 60 once rolled up), so a chart's bucket of
any width is the ``minutes``-weighted mean of the rows in it, whatever their resolution.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base


class SystemSample(Base):
    """This worker's live state at one minute (or the mean of an hour's minutes)."""

    __tablename__ = "ops_system_samples"
    __table_args__ = (Index("ix_ops_system_samples_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime]  # start of the minute or hour the row covers
    minutes: Mapped[int] = mapped_column(Integer)  # 1 for a fresh sample, the count once rolled up
    rooms: Mapped[float] = mapped_column(Float)
    participants: Mapped[float] = mapped_column(Float)
    forwarded_bps: Mapped[float] = mapped_column(Float)  # bits per second sent to participants
    kiosks_online: Mapped[float] = mapped_column(Float)


class HallSample(Base):
    """Minutes a village hall's kiosk spent in meetings, and how many of them on a weak link."""

    __tablename__ = "ops_hall_samples"
    __table_args__ = (Index("ix_ops_hall_samples_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime]
    minutes: Mapped[int] = mapped_column(Integer)  # rows this one stands for (as above)
    hall: Mapped[str] = mapped_column(String(120))
    present_minutes: Mapped[float] = mapped_column(Float)
    weak_minutes: Mapped[float] = mapped_column(Float)  # of those, sound only or low video
