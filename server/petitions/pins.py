"""PIN hashing settings and the database-backed throttle for receipt + PIN checks.

Keys: ``kiosk:<id>`` (one kiosk guessing many receipts) and ``receipt:<year>-<seq>`` (many kiosks
guessing one receipt). After ``MAX_FAILURES`` failures within ``WINDOW`` a key is locked for
``LOCKOUT``; checks on a locked key answer 429 with Retry-After, without looking at the PIN.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.config import Settings
from server.db import utcnow
from server.errors import TooManyRequests
from server.petitions.models import PinThrottle
from server.petitions.receipts import PinHashParams
from server.petitions.sql import insert_ignoring_conflicts

MAX_FAILURES = 5
WINDOW = dt.timedelta(minutes=15)
LOCKOUT = dt.timedelta(minutes=15)


# Argon2id cost of a PIN hash: deliberately lighter than for passwords (receipts.py's default is
# 64 MiB x 3 passes, ~0.4 s on the county's 2-core server, paid on every filing and status check).
# A 4-digit PIN has 10^4 values, so if the table *and* the pepper leak no Argon2 cost saves it
# (10^4 x 0.4 s is about an hour on one core); if only the table leaks, the pepper (derived from the
# secret key, never stored in the database) already makes offline guessing impossible. Online
# guessing is stopped by the throttle below. So the cost buys little here and the latency is real.
PIN_TIME_COST = 1
PIN_MEMORY_KIB = 4096


def pin_params(settings: Settings) -> PinHashParams:
    """Argon2id cost for PINs: ``PIN_*`` above, or the installation's password cost if that is
    lower (tests lower it)."""
    return PinHashParams(
        time_cost=min(PIN_TIME_COST, settings.argon2_time_cost),
        memory_cost_kib=min(PIN_MEMORY_KIB, settings.argon2_memory_kib),
        parallelism=1,
    )


def pin_pepper(settings: Settings) -> bytes:
    """A pepper derived from the secret key, which is not stored in the database."""
    return hmac.new(settings.secret_key.get().encode(), b"petition-pin-pepper", hashlib.sha256).digest()


async def refuse_if_locked(session: AsyncSession, keys: list[str], now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    rows = (await session.scalars(select(PinThrottle).where(PinThrottle.key.in_(keys)))).all()
    waits = [r.locked_until - now for r in rows if r.locked_until is not None and r.locked_until > now]
    if waits:
        retry = max(1, math.ceil(max(waits).total_seconds()))
        raise TooManyRequests("too many wrong PINs; try again later", retry_after=retry, code="pin_locked")


async def record_failure(session: AsyncSession, keys: list[str], now: dt.datetime | None = None) -> None:
    """Count one failure on every key; the ``MAX_FAILURES``-th locks the key."""
    now = now or utcnow()
    for key in keys:
        # Create the row if missing (a concurrent first failure is not an error), then lock it.
        await session.execute(
            insert_ignoring_conflicts(session, PinThrottle).values(key=key, failures=0, window_started_at=now)
        )
        row = await session.get(PinThrottle, key, with_for_update=True, populate_existing=True)
        assert row is not None
        if now - row.window_started_at > WINDOW:
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        if row.failures >= MAX_FAILURES:
            row.locked_until = now + LOCKOUT
            row.failures = 0
            row.window_started_at = now
    await session.flush()


async def clear(session: AsyncSession, key: str) -> None:
    row = await session.get(PinThrottle, key)
    if row is not None:
        await session.delete(row)
