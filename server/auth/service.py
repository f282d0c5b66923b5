"""Accounts, logins, sessions and login throttling. Takes sessions and plain values; never a request."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Account, LoginSession, LoginThrottle
from server.auth.roles import Principal, Role
from server.auth.secrets import Passwords, new_token, token_hash
from server.db import UtcDateTime, utcnow
from server.errors import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests
from server.petitions.sql import insert_ignoring_conflicts

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class ThrottlePolicy:
    """Login throttling by (account, address) with growing delays.

    Failures are counted per ``pair:<username>@<address>`` and, for one address trying many
    accounts, per ``ip:<address>``. Past ``max_failures`` (``address_failures`` for the address)
    each failure locks that key for ``base_delay`` doubled per further failure, up to ``lockout``.
    An account is never locked for everyone: someone guessing from one machine delays only
    themselves, and the official at her own desk still logs in. Counts are forgotten after
    ``forget_after`` without a failure, or on a successful login; an admin can unlock at once."""

    max_failures: int
    lockout: dt.timedelta
    base_delay: dt.timedelta = dt.timedelta(seconds=30)
    address_failures: int = 20
    forget_after: dt.timedelta = dt.timedelta(hours=1)

    def delay(self, failures: int, threshold: int) -> dt.timedelta | None:
        """How long a key with ``failures`` is locked (None below its ``threshold``)."""
        if failures < threshold:
            return None
        doublings = min(failures - threshold, 20)
        return min(self.base_delay * (2**doublings), self.lockout)


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
    check_password_rules(password)
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


def _pair_key(username: str, client_ip: str) -> str:
    return f"pair:{username}@{client_ip}"


def _pair_username(key: str) -> str:
    return key.removeprefix("pair:").rsplit("@", 1)[0]


def _address_key(client_ip: str) -> str:
    return f"ip:{client_ip}"


def _throttle_keys(policy: ThrottlePolicy, username: str, client_ip: str) -> list[tuple[str, int]]:
    # Sorted by key, so concurrent logins lock the rows in one order.
    return sorted(
        [
            (_address_key(client_ip), policy.address_failures),
            (_pair_key(username, client_ip), policy.max_failures),
        ]
    )


def _username(text: str) -> str:
    return text.strip().lower()


async def reserve_login_attempt(
    session: AsyncSession,
    policy: ThrottlePolicy,
    *,
    username: str,
    client_ip: str,
    now: dt.datetime | None = None,
) -> None:
    """Count this attempt as a failure *before* the password is checked (a right password gives
    it back), or raise TooManyRequests while the (account, address) pair or the address is
    locked. Each count is one conditional UPDATE, so simultaneous attempts cannot all slip past
    the limit; commit this transaction before checking the password."""
    now = now or utcnow()
    at = literal(now, UtcDateTime())
    for key, threshold in _throttle_keys(policy, _username(username), client_ip):
        await session.execute(
            insert_ignoring_conflicts(session, LoginThrottle).values(
                key=key, failures=0, window_started_at=now
            )
        )
        idle = LoginThrottle.window_started_at <= now - policy.forget_after
        failures = await session.scalar(
            update(LoginThrottle)
            .where(
                LoginThrottle.key == key,
                or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
            )
            .values(failures=case((idle, 1), else_=LoginThrottle.failures + 1), window_started_at=at)
            .returning(LoginThrottle.failures)
        )
        if failures is None:
            locked_until = await session.scalar(
                select(LoginThrottle.locked_until).where(LoginThrottle.key == key)
            )
            wait = (locked_until - now) if locked_until is not None else policy.base_delay
            raise TooManyRequests(
                "too many failed logins; try again later",
                retry_after=max(1, math.ceil(wait.total_seconds())),
                code="login_locked",
            )
        delay = policy.delay(failures, threshold)
        if delay is not None:
            # Still inside this transaction's row lock: the next attempt sees the lock.
            await session.execute(
                update(LoginThrottle).where(LoginThrottle.key == key).values(locked_until=now + delay)
            )
            log.warning(
                "login throttled", extra={"throttle_kind": key.split(":", 1)[0], "delay_s": delay.seconds}
            )


async def authenticate(
    session: AsyncSession,
    passwords: Passwords,
    policy: ThrottlePolicy,
    *,
    username: str,
    password: str,
    client_ip: str,
) -> Account | None:
    """Check a login whose attempt ``reserve_login_attempt`` has counted; None for a wrong username
    or password (the failure then stays counted). A right password clears its pair's count and
    gives the address its attempt back."""
    username = _username(username)
    account = await session.scalar(select(Account).where(Account.username == username))
    ok = passwords.verify(account.password_hash if account else None, password)
    if not ok or account is None or not account.is_active:
        log.info("login failed", extra={"client_ip": client_ip})
        return None
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == _pair_key(username, client_ip)))
    await session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == _address_key(client_ip), LoginThrottle.failures > 0)
        .values(failures=LoginThrottle.failures - 1)
    )
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash(password)
    account.last_login_at = utcnow()
    return account


async def unlock_account(session: AsyncSession, account_id: int) -> int:
    """Lift every login delay on the account (an admin's act); returns how many were lifted."""
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found", code="account_not_found")
    candidates = await session.scalars(
        select(LoginThrottle.key).where(
            LoginThrottle.key.startswith(_pair_key(account.username, ""), autoescape=True)
        )
    )
    # An address never contains "@", so the username is everything before the last one (the
    # prefix alone would also match a user named "<username>@...").
    keys = [key for key in candidates if _pair_username(key) == account.username]
    if keys:
        await session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))
    log.info("account unlocked", extra={"account_id": account_id})
    return len(keys)


async def _locked_account(session: AsyncSession, account_id: int) -> Account | None:
    # ``of=Account``: PostgreSQL cannot lock the outer-joined department the relationship loads.
    return await session.scalar(select(Account).where(Account.id == account_id).with_for_update(of=Account))


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"password must be at least {MIN_PASSWORD_LENGTH} characters", code="weak_password")


async def change_password(
    session: AsyncSession,
    passwords: Passwords,
    principal: Principal,
    *,
    current_password: str,
    new_password: str,
) -> int:
    """An official or admin changes her own password; the current one is required (a browser left
    logged in is not enough). Every other session of the account ends, as after a suspected leak;
    returns how many ended."""
    account = await _locked_account(session, principal.id)
    if account is None or not account.is_active or not principal.is_account:
        raise NotFound("no such account", code="account_not_found")
    if not passwords.verify(account.password_hash, current_password):
        raise Forbidden("the current password is wrong", code="wrong_current_password")
    check_password_rules(new_password)
    if passwords.verify(account.password_hash, new_password):
        raise BadRequest("the new password is the current one", code="password_unchanged")
    account.password_hash = passwords.hash(new_password)
    others = delete(LoginSession).where(LoginSession.account_id == account.id)
    if principal.session_id is not None:
        others = others.where(LoginSession.id != principal.session_id)
    ended = await session.execute(others)
    log.info("password changed", extra={"account_id": account.id})
    return int(getattr(ended, "rowcount", 0) or 0)


@dataclass(frozen=True)
class AccountEnded:
    """What ``deactivate_account`` did, for the caller to finish outside the database (the
    signaling hub closes the account's sockets: ``server.signaling.guard.end_account_sockets``)."""

    account_id: int
    sessions_ended: int


async def deactivate_account(session: AsyncSession, actor: Principal, account_id: int) -> AccountEnded:
    """An admin deactivates an account: it can no longer log in and every login session of it
    ends now (the session rows are deleted, so the next request of any of its browsers is
    anonymous). The caller then closes its sockets with ``AccountEnded.account_id``."""
    if actor.role is not Role.ADMIN:
        raise Forbidden("only an admin deactivates accounts")
    if actor.id == account_id:
        raise Conflict("an admin cannot deactivate her own account", code="cannot_deactivate_self")
    account = await _locked_account(session, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found", code="account_not_found")
    account.is_active = False
    ended = await session.execute(delete(LoginSession).where(LoginSession.account_id == account_id))
    count = int(getattr(ended, "rowcount", 0) or 0)
    log.warning("account deactivated; sessions ended", extra={"account_id": account_id, "sessions": count})
    return AccountEnded(account_id, count)


async def set_account_flags(
    session: AsyncSession, account_id: int, *, active: bool | None = None, can_triage: bool | None = None
) -> Account:
    """Reactivate an account or grant/withdraw triage (deactivation is ``deactivate_account``)."""
    account = await _locked_account(session, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found", code="account_not_found")
    if active:
        account.is_active = True
    if can_triage is not None:
        if can_triage and account.role != Role.OFFICIAL.value:
            raise BadRequest(
                "triage is granted to officials (admins always have it)", code="triage_for_officials"
            )
        account.can_triage = can_triage
    log.info("account changed", extra={"account_id": account_id, "active": active, "can_triage": can_triage})
    return account


@dataclass(frozen=True)
class AccountRow:
    account: Account
    locked_until: dt.datetime | None  # the latest login delay on any of its (account, address) pairs


async def list_accounts(session: AsyncSession, now: dt.datetime | None = None) -> list[AccountRow]:
    now = now or utcnow()
    accounts = (await session.scalars(select(Account).order_by(Account.role, Account.username))).all()
    locks = (
        await session.execute(
            select(LoginThrottle.key, LoginThrottle.locked_until).where(
                LoginThrottle.key.startswith("pair:"), LoginThrottle.locked_until > now
            )
        )
    ).all()
    latest: dict[str, dt.datetime] = {}
    for key, until in locks:
        username = _pair_username(key)
        if until is not None and (username not in latest or until > latest[username]):
            latest[username] = until
    return [AccountRow(a, latest.get(a.username)) for a in accounts]


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
        can_triage=account.can_triage,
    )


async def end_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(LoginSession).where(LoginSession.id == session_id))
