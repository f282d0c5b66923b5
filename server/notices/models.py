"""Notices, their target villages, and per-kiosk delivery reports."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import Base, CreatedAtMixin


class Notice(CreatedAtMixin, Base):
    """A notice from the county. Shown on kiosks of its villages (or all) within its window."""

    __tablename__ = "notice_notices"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="window"),
        CheckConstraint("media_kind IN ('image', 'video') OR media_kind IS NULL", name="media_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    all_villages: Mapped[bool] = mapped_column(default=False, server_default=false())
    media_kind: Mapped[str | None] = mapped_column(String(8))
    media_type: Mapped[str | None] = mapped_column(String(40))
    media_storage_name: Mapped[str | None] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey("auth_accounts.id", ondelete="RESTRICT"), index=True)
    withdrawn_at: Mapped[dt.datetime | None]

    targets: Mapped[list[NoticeTarget]] = relationship(lazy="selectin", cascade="all, delete-orphan")


class NoticeTarget(Base):
    __tablename__ = "notice_targets"

    notice_id: Mapped[int] = mapped_column(
        ForeignKey("notice_notices.id", ondelete="CASCADE"), primary_key=True
    )
    village_id: Mapped[int] = mapped_column(
        ForeignKey("geo_villages.id", ondelete="RESTRICT"), primary_key=True
    )


class NoticeDelivery(Base):
    """A kiosk showed a notice: first and latest time, and how often (the county's delivery report)."""

    __tablename__ = "notice_deliveries"
    __table_args__ = (UniqueConstraint("notice_id", "kiosk_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notice_notices.id", ondelete="CASCADE"), index=True)
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosk_devices.id", ondelete="CASCADE"), index=True)
    first_shown_at: Mapped[dt.datetime]
    last_shown_at: Mapped[dt.datetime]
    times_shown: Mapped[int] = mapped_column(default=1)
