"""Scheduled meetings and their record.

A meeting is scheduled by an administrator with a chair (an official), invited officials and invited
villages (every active kiosk of an invited village is invited). Its status moves
``scheduled → live → ended`` or ``scheduled → cancelled``; the record (minutes) stays editable after
the meeting until it is closed (``record_closed_at``), which is when decisions reach the linked
petitions. When a meeting starts it opens a ``rooms`` room (``room_id``) for the media plane.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import Base, CreatedAtMixin
from server.meetings.workflow import MeetingStatus

STATUSES = tuple(MeetingStatus)
JOIN_MODES = ("auto", "touch")  # kiosks join by themselves at start time, or with one touch
LOBBY_MODES = ("wait", "auto_admit")  # kiosks wait to be admitted, or invited ones are let in


class Meeting(CreatedAtMixin, Base):
    __tablename__ = "meetings"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'live', 'ended', 'cancelled')", name="status"),
        CheckConstraint("join_mode IN ('auto', 'touch')", name="join_mode"),
        CheckConstraint("lobby_mode IN ('wait', 'auto_admit')", name="lobby_mode"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[dt.datetime] = mapped_column(index=True)
    ends_at: Mapped[dt.datetime]
    chair_id: Mapped[int] = mapped_column(ForeignKey("auth_accounts.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(12), default=MeetingStatus.SCHEDULED.value)
    join_mode: Mapped[str] = mapped_column(String(12), default="touch")
    lobby_mode: Mapped[str] = mapped_column(String(12), default="auto_admit")
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("auth_accounts.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    record_closed_at: Mapped[dt.datetime | None]
    # Bumped on every change that calendar clients must see (iCalendar SEQUENCE).
    sequence: Mapped[int] = mapped_column(default=0)
    # A legal hold's reason: the retention job keeps this meeting's recordings while it is set.
    retention_hold: Mapped[str | None] = mapped_column(Text)

    officials: Mapped[list[MeetingOfficial]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="MeetingOfficial.id"
    )
    villages: Mapped[list[MeetingVillage]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="MeetingVillage.id"
    )
    agenda: Mapped[list[AgendaItem]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AgendaItem.position"
    )


class MeetingOfficial(Base):
    """An invited official (the chair is invited by being the chair)."""

    __tablename__ = "meeting_officials"
    __table_args__ = (
        UniqueConstraint("meeting_id", "account_id", name="uq_meeting_officials_meeting_account"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("auth_accounts.id", ondelete="CASCADE"), index=True)


class MeetingVillage(Base):
    """An invited village: its kiosks are invited."""

    __tablename__ = "meeting_villages"
    __table_args__ = (
        UniqueConstraint("meeting_id", "village_id", name="uq_meeting_villages_meeting_village"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("geo_villages.id", ondelete="RESTRICT"), index=True)


class AgendaItem(Base):
    """One item of the agenda, at ``position`` 1..n (kept dense by the service), with its minutes."""

    __tablename__ = "meeting_agenda_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    planned_minutes: Mapped[int] = mapped_column(default=10)
    presenter_id: Mapped[int | None] = mapped_column(ForeignKey("auth_accounts.id", ondelete="SET NULL"))
    notes: Mapped[str] = mapped_column(Text, default="")
    decisions: Mapped[str] = mapped_column(Text, default="")

    petitions: Mapped[list[AgendaPetition]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AgendaPetition.id"
    )
    actions: Mapped[list[ActionItem]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ActionItem.id"
    )


class AgendaPetition(Base):
    """A petition discussed under an agenda item, and what closing the record did to it."""

    __tablename__ = "meeting_agenda_petitions"
    __table_args__ = (
        UniqueConstraint("agenda_item_id", "petition_id", name="uq_meeting_agenda_petitions_item_petition"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agenda_item_id: Mapped[int] = mapped_column(
        ForeignKey("meeting_agenda_items.id", ondelete="CASCADE"), index=True
    )
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    # Filled when the record is closed: "answered", "skipped" (and why), or "proposed" (the decision
    # went to the handling department as a DecisionProposal; "answered" once it confirms).
    outcome: Mapped[str | None] = mapped_column(String(12))
    outcome_detail: Mapped[str | None] = mapped_column(Text)


PROPOSAL_STATUSES = ("proposed", "confirmed", "dismissed")


class DecisionProposal(CreatedAtMixin, Base):
    """A meeting's decision on a petition whose department the closing official does not belong to:
    the handling department confirms it (the petition is then answered with it) or dismisses it."""

    __tablename__ = "meeting_decision_proposals"
    __table_args__ = (CheckConstraint("status IN ('proposed', 'confirmed', 'dismissed')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agenda_petition_id: Mapped[int] = mapped_column(
        ForeignKey("meeting_agenda_petitions.id", ondelete="CASCADE"), unique=True
    )
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    answer: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="proposed", index=True)
    proposed_by: Mapped[int | None] = mapped_column(ForeignKey("auth_accounts.id", ondelete="SET NULL"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("auth_accounts.id", ondelete="SET NULL"))
    decided_at: Mapped[dt.datetime | None]


class ActionItem(CreatedAtMixin, Base):
    """Something to do after the meeting: what, who, by when."""

    __tablename__ = "meeting_action_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    agenda_item_id: Mapped[int] = mapped_column(
        ForeignKey("meeting_agenda_items.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("auth_accounts.id", ondelete="SET NULL"))
    due_date: Mapped[dt.date | None] = mapped_column(Date)


class Attendance(Base):
    """One continuous presence of a participant. A rejoin within the grace period continues the same
    row and appends the interruption to ``gaps`` ([left ISO, rejoined ISO] pairs)."""

    __tablename__ = "meeting_attendance"
    __table_args__ = (
        CheckConstraint("kind IN ('official', 'kiosk')", name="kind"),
        CheckConstraint("(account_id IS NULL) <> (kiosk_id IS NULL)", name="one_participant"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("auth_accounts.id", ondelete="SET NULL"))
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosk_devices.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(120))
    joined_at: Mapped[dt.datetime]
    left_at: Mapped[dt.datetime | None]
    gap_seconds: Mapped[int] = mapped_column(default=0)
    gaps: Mapped[list[Any]] = mapped_column(JSON, default=list)
    residents_count: Mapped[int | None]
    # While open: the last time the participant's media was seen (written every few seconds), so a
    # presence left open by a crashed server can be ended when it really ended.
    last_seen_at: Mapped[dt.datetime | None]


class Recording(Base):
    """A recording file of a meeting (written by the recorder), with agenda-item marks
    (``[{"agenda_item_id": …, "at": ISO}]``). ``path`` is relative to ``settings.data_dir``."""

    __tablename__ = "meeting_recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    participant: Mapped[str] = mapped_column(String(120))
    path: Mapped[str] = mapped_column(String(400))
    started_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
    marks: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Set by the retention job before it deletes the file; the row goes once the file is gone.
    purged_at: Mapped[dt.datetime | None]
