"""Petitions (민원) filed at village kiosks: the request, its media, support, notes, audit trail.

Receipt numbers come from ``PetitionCounter`` (one row per year, incremented in the filing
transaction). Deadline state (overdue / due soon) is computed on read; ``due_at`` is stored because it
is fixed at receipt (and moved only by an extension or a pause for more information).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, false, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import Base, CreatedAtMixin
from server.geo.models import Village
from server.org.models import Department


class PetitionCounter(Base):
    """Last receipt sequence issued per receipt year (Asia/Seoul)."""

    __tablename__ = "petition_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(default=0)


class Petition(CreatedAtMixin, Base):
    __tablename__ = "petitions"
    __table_args__ = (
        UniqueConstraint("receipt_year", "receipt_seq", name="uq_petitions_receipt_year_seq"),
        Index("ix_petitions_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_no: Mapped[str] = mapped_column(String(20), unique=True)
    receipt_year: Mapped[int]
    receipt_seq: Mapped[int]
    village_id: Mapped[int] = mapped_column(ForeignKey("geo_villages.id", ondelete="RESTRICT"), index=True)
    kiosk_id: Mapped[int | None] = mapped_column(
        ForeignKey("kiosk_devices.id", ondelete="SET NULL"), index=True
    )
    petition_type: Mapped[str] = mapped_column(String(32))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_departments.id", ondelete="RESTRICT"), index=True
    )
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("auth_accounts.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="received")
    info_requests_count: Mapped[int] = mapped_column(default=0)
    info_request_text: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[dt.datetime | None]
    extended: Mapped[bool] = mapped_column(default=False, server_default=false())
    extension_reason: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    resident_name: Mapped[str | None] = mapped_column(String(60))
    resident_phone: Mapped[str] = mapped_column(String(20))
    pin_hash: Mapped[str] = mapped_column(String(255))
    is_public: Mapped[bool] = mapped_column(default=False, server_default=false())
    received_at: Mapped[dt.datetime]
    due_at: Mapped[dt.datetime]
    answer_text: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[dt.datetime | None]
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("auth_accounts.id", ondelete="SET NULL"))
    closed_at: Mapped[dt.datetime | None]
    support_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # Retention (server/ops/retention.py): a legal hold's reason stops every purge of this request;
    # contact_purged_at is when the resident's name and phone were erased.
    retention_hold: Mapped[str | None] = mapped_column(Text)
    contact_purged_at: Mapped[dt.datetime | None]

    village: Mapped[Village] = relationship(lazy="joined")
    department: Mapped[Department | None] = relationship(lazy="joined")
    media: Mapped[list[PetitionMedia]] = relationship(
        back_populates="petition", order_by="PetitionMedia.id", lazy="selectin"
    )


class PetitionMedia(CreatedAtMixin, Base):
    """A file attached to a petition: the recorded message (``message``) or a photo (``photo``).
    ``storage_name`` is relative to ``settings.media_dir``."""

    __tablename__ = "petition_media"

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    storage_name: Mapped[str] = mapped_column(String(200), unique=True)
    content_type: Mapped[str] = mapped_column(String(60))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    duration_s: Mapped[float | None]
    has_video: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Set by the retention job before it deletes the file; the row goes once the file is gone.
    purged_at: Mapped[dt.datetime | None]

    petition: Mapped[Petition] = relationship(back_populates="media")


class PetitionSupport(CreatedAtMixin, Base):
    """공감: one per kiosk visit. ``session_id`` holds ``visit:<random>`` from a server-issued visit
    token (``petitions/visits.py``), never an id the page chose."""

    __tablename__ = "petition_supports"
    __table_args__ = (UniqueConstraint("petition_id", "session_id", name="uq_petition_supports_session"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosk_devices.id", ondelete="SET NULL"))
    session_id: Mapped[str] = mapped_column(String(64))


class PetitionNote(CreatedAtMixin, Base):
    """An internal note between officials; never shown to residents."""

    __tablename__ = "petition_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("auth_accounts.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text)


class PetitionEvent(Base):
    """Append-only audit trail: who did what to which petition, when."""

    __tablename__ = "petition_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(40))
    actor_role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AnswerTemplate(CreatedAtMixin, Base):
    """A reusable answer; ``department_id`` NULL means every department may use it."""

    __tablename__ = "petition_answer_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_departments.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())


class FilingKey(CreatedAtMixin, Base):
    """A kiosk's idempotency key for one filing: a resend with the same key gets the same receipt.

    ``key_hash`` is the SHA-256 of the key (the key itself stays on the kiosk); the primary key
    (kiosk, key hash) is what makes concurrent duplicates file once. ``pin_sealed`` is the receipt's
    PIN one-time-padded with a pad only the key (and the server's pepper) can rebuild, so a resend
    shows the resident the PIN they were given, while the database alone reveals nothing.
    ``fingerprint`` is a hash of what was filed: the same key with a different request is refused.
    """

    __tablename__ = "petition_filing_keys"

    kiosk_id: Mapped[int] = mapped_column(
        ForeignKey("kiosk_devices.id", ondelete="CASCADE"), primary_key=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    pin_sealed: Mapped[str] = mapped_column(String(8))


class PinThrottle(Base):
    """Failed PIN checks per key (``kiosk:<id>`` and ``receipt:<no>``), shared by all processes."""

    __tablename__ = "petition_pin_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[dt.datetime]
    locked_until: Mapped[dt.datetime | None]
