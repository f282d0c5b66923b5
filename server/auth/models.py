"""Accounts, login sessions and login throttling."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import Base, CreatedAtMixin
from server.org.models import Department


class Account(CreatedAtMixin, Base):
    """An official or administrator who logs in from a browser."""

    __tablename__ = "auth_accounts"
    __table_args__ = (CheckConstraint("role IN ('official', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_departments.id", ondelete="SET NULL"), index=True
    )
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Triage: may route requests that no department has yet (granted by an admin; admins always may).
    can_triage: Mapped[bool] = mapped_column(default=False, server_default=false())
    last_login_at: Mapped[dt.datetime | None]

    department: Mapped[Department | None] = relationship(lazy="joined")


class LoginSession(CreatedAtMixin, Base):
    """A browser login. The cookie holds a random key; only its SHA-256 is stored, so a
    leaked database cannot be replayed as cookies. Deleting the row logs the browser out."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie key
    account_id: Mapped[int] = mapped_column(ForeignKey("auth_accounts.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]

    account: Mapped[Account] = relationship(lazy="joined")


class LoginThrottle(Base):
    """Failed-login counter per key (``pair:<name>@<addr>`` and ``ip:<addr>``; see
    ``service.ThrottlePolicy``); in the database so every server process shares it.
    ``window_started_at`` is the time of the key's latest attempt."""

    __tablename__ = "auth_login_throttle"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[dt.datetime]
    locked_until: Mapped[dt.datetime | None]
