"""Accounts, logins, sessions and login throttling. Takes sessions and plain values; never a request."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Account, LoginSession, LoginThrottle
from server.auth.roles import Principal, Role
from server.auth.secrets import Passwords, new_token, token_hash
from server.db import utcnow
from server.errors import BadRequest, Conflict, TooManyRequests

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int
    lockout: dt.timedelta
    # Failures older than this no longer count toward a lockout.
    window: dt.timedelta = dt.timedelta(minutes=15)


async def create_account(
    session: AsyncSession,
    passwords: Passwords,
    *,
    username: str,
    password: str,
    display_name: str,
    role: Role,
    department_id: int | None = None,
) -> Account:
    username = username.strip().lower()
    if not username or len(username) > 64:
        raise BadRequest("username must be 1-64 characters", code="invalid_username")
    if role not in (Role.OFFICIAL, Role.ADMIN):
        raise BadRequest("accounts are officials or admins", code="invalid_role")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"password must be at least {MIN_PASSWORD_LENGTH} characters", code="weak_password")
    if await session.scalar(select(Account.id).where(Account.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken", code="username_taken")
    account = Account(
        username=username,
        display_name=display_name,
        password_hash=passwords.hash(password),
        role=role.value,
        department_id=department_id,
    )
    session.add(account)
    await session.flush()
    log.info("account created", extra={"account_id": account.id, "role": role.value})
    return account


async def authenticate(
    session: AsyncSession,
    passwords: Passwords,
    policy: ThrottlePolicy,
    *,
    username: str,
    password: str,
    client_ip: str,
    now: dt.datetime | None = None,
) -> Account | None:
    """Check a login; None for a wrong username or password.

    Refuses (TooManyRequests) while the username or the client address is locked out, and counts
    failures per both, so neither one password tried on every account nor one account tried from
    many machines gets far. The caller commits also when this returns None: the failure count
    must stick."""
    now = now or utcnow()
    username = username.strip().lower()
    keys = [f"user:{username}", f"ip:{client_ip}"]
    await _refuse_if_locked(session, keys, now)
    account = await session.scalar(select(Account).where(Account.username == username))
    ok = passwords.verify(account.password_hash if account else None, password)
    if not ok or account is None or not account.is_active:
        await _record_failure(session, keys, policy, now)
        log.info("login failed", extra={"client_ip": client_ip})
        return None
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys[0]))
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash(password)
    account.last_login_at = now
    return account


async def _refuse_if_locked(session: AsyncSession, keys: list[str], now: dt.datetime) -> None:
    rows = (await session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))).all()
    locked = [row.locked_until for row in rows if row.locked_until and row.locked_until > now]
    if locked:
        retry_after = math.ceil((max(locked) - now).total_seconds())
        raise TooManyRequests(
            "too many failed logins; try again later", retry_after=retry_after, code="login_locked"
        )


async def _record_failure(
    session: AsyncSession, keys: list[str], policy: ThrottlePolicy, now: dt.datetime
) -> None:
    for key in keys:
        row = await session.get(LoginThrottle, key)
        if row is None:
            row = LoginThrottle(key=key, failures=0, window_started_at=now)
            session.add(row)
        elif now - row.window_started_at > policy.window:
            row.failures, row.window_started_at, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures >= policy.max_failures:
            row.locked_until = now + policy.lockout
            log.warning("login locked", extra={"throttle_kind": key.split(":", 1)[0]})


async def start_session(session: AsyncSession, account: Account, lifetime: dt.timedelta) -> str:
    """Create a login session; returns the cookie key (shown once, stored only as a hash)."""
    key = new_token()
    now = utcnow()
    session.add(
        LoginSession(id=token_hash(key), account_id=account.id, expires_at=now + lifetime, last_seen_at=now)
    )
    return key


async def principal_for_session(session: AsyncSession, cookie_key: str) -> Principal | None:
    now = utcnow()
    row = await session.get(LoginSession, token_hash(cookie_key))
    if row is None or row.expires_at <= now or not row.account.is_active:
        return None
    # Touch at most once a minute: a page load should not always be a database write.
    if now - row.last_seen_at > dt.timedelta(minutes=1):
        row.last_seen_at = now
    account = row.account
    return Principal(
        role=Role(account.role),
        id=account.id,
        display_name=account.display_name,
        department_id=account.department_id,
        session_id=row.id,
    )


async def end_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(LoginSession).where(LoginSession.id == session_id))
