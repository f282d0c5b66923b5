"""Rooms and their invitations.

A room is opened by an administrator with a title, lists the officials and kiosks it invites, and is
closed (``closed_at``) when the meeting is over. Who is *in* a room right now is not stored here: that
lives in the SFU worker that hosts the room and is published as events.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import Base, CreatedAtMixin


class Room(CreatedAtMixin, Base):
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("auth_accounts.id", ondelete="SET NULL"))
    closed_at: Mapped[dt.datetime | None]

    invitations: Mapped[list[RoomInvitation]] = relationship(
        back_populates="room", cascade="all, delete-orphan", lazy="selectin", order_by="RoomInvitation.id"
    )

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class RoomInvitation(Base):
    """One invitee of a room: an official's account or a kiosk (exactly one of the two)."""

    __tablename__ = "room_invitations"
    __table_args__ = (
        CheckConstraint("(account_id IS NULL) <> (kiosk_id IS NULL)", name="one_invitee"),
        UniqueConstraint("room_id", "account_id", name="uq_room_invitations_room_account"),
        UniqueConstraint("room_id", "kiosk_id", name="uq_room_invitations_room_kiosk"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("auth_accounts.id", ondelete="CASCADE"), index=True
    )
    kiosk_id: Mapped[int | None] = mapped_column(
        ForeignKey("kiosk_devices.id", ondelete="CASCADE"), index=True
    )

    room: Mapped[Room] = relationship(back_populates="invitations")
