"""Attempt counters in the database, reserved atomically before the work they limit.

One row per key in ``petition_pin_throttle`` (``PinThrottle``: the table began with PIN checks
and now also counts filings). ``reserve`` takes one attempt on each limit with one conditional
upsert (``INSERT ... ON CONFLICT DO UPDATE SET attempts = attempts + 1 WHERE attempts < limit OR
window expired RETURNING``); the database serialises those updates (a row lock on PostgreSQL, the
write lock on SQLite), so however many requests arrive at once, no more than ``limit`` get
through a window. Checking a counter and bumping it in two steps, as before, let simultaneous
requests all pass the check.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import case, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import UtcDateTime, utcnow
from server.errors import TooManyRequests, _
from server.petitions.models import PinThrottle
from server.petitions.sql import dialect_insert


@dataclass(frozen=True)
class Limit:
    """At most ``attempts`` on ``key`` per ``window`` (the window starts at its first attempt)."""

    key: str
    attempts: int
    window: dt.timedelta


@dataclass(frozen=True)
class Refused:
    limit: Limit
    retry_after: int  # seconds until the limit's window ends


async def reserve(
    session: AsyncSession, limits: list[Limit], now: dt.datetime | None = None
) -> Refused | None:
    """Take one attempt on every limit, in order; return the first limit that is used up (the
    caller then raises, so its transaction rolls back and takes nothing from the other keys).

    Concurrent callers must pass their limits in one global order (sorted keys) so that they lock
    the rows in the same order and never deadlock."""
    now = now or utcnow()
    at = literal(now, UtcDateTime())
    for limit in limits:
        # One statement per limit (a filing takes it inside its transaction, where every statement
        # is held under the receipt counter's lock): the first attempt inserts the row; later ones
        # bump it only while the window has room, and a used-up limit returns no row.
        expired = PinThrottle.window_started_at <= now - limit.window
        upsert = dialect_insert(session, PinThrottle).values(key=limit.key, failures=1, window_started_at=now)
        taken = await session.scalar(
            upsert.on_conflict_do_update(
                index_elements=[PinThrottle.key],
                set_={
                    "failures": case((expired, 1), else_=PinThrottle.failures + 1),
                    "window_started_at": case((expired, at), else_=PinThrottle.window_started_at),
                },
                where=or_(expired, PinThrottle.failures < limit.attempts),
            ).returning(PinThrottle.failures)
        )
        if taken is None:
            return await used_up(session, limit, now) or Refused(limit, _seconds(limit.window))
    return None


async def used_up(session: AsyncSession, limit: Limit, now: dt.datetime | None = None) -> Refused | None:
    """Whether ``limit`` has no attempt left now, without taking one (a read: no lock, no write)."""
    now = now or utcnow()
    row = (
        await session.execute(
            select(PinThrottle.failures, PinThrottle.window_started_at).where(PinThrottle.key == limit.key)
        )
    ).one_or_none()
    if row is None or row.window_started_at <= now - limit.window or row.failures < limit.attempts:
        return None
    # A concurrent caller may have started the window with a ``now`` a little later than ours:
    # the wait never exceeds the window itself.
    return Refused(limit, _seconds(min(row.window_started_at + limit.window - now, limit.window)))


def _seconds(wait: dt.timedelta) -> int:
    return max(1, math.ceil(wait.total_seconds()))


async def give_back(session: AsyncSession, keys: list[str]) -> None:
    """Return one attempt on each key (the work it reserved for did not count)."""
    await session.execute(
        update(PinThrottle)
        .where(PinThrottle.key.in_(keys), PinThrottle.failures > 0)
        .values(failures=PinThrottle.failures - 1)
    )


# --- filings per kiosk --------------------------------------------------------------------------

FILING_WINDOW = dt.timedelta(hours=1)


class FilingRateLimited(TooManyRequests):
    code = "filing_rate_limited"
    display = _(
        "This village hall has sent many requests in the last hour, so this one cannot be received "
        "now. Please try again later, or call the county office."
    )


def filing_limit(kiosk_id: int, per_hour: int) -> Limit:
    """``MAEUL_KIOSK_FILINGS_PER_HOUR`` filings per kiosk: a stolen device token can neither flood
    the officials' inbox nor fill the disk with recorded messages (64 MiB each) at line speed."""
    return Limit(f"filing:kiosk:{kiosk_id}", per_hour, FILING_WINDOW)


async def reserve_filing(session: AsyncSession, limit: Limit) -> None:
    """Take one filing in the filing transaction (``session``), or raise FilingRateLimited (429).
    (``used_up`` only checks, for refusing before a recorded message is uploaded for nothing.)

    In the same transaction as the petition, so a filing that is refused, fails or turns out to
    be a resend rolls its reservation back with everything else, and a filing costs one commit
    (one fsync on SQLite) instead of a commit of its own for the reservation."""
    refused = await reserve(session, [limit])
    if refused is not None:
        raise rate_limited(refused)


def rate_limited(refused: Refused) -> FilingRateLimited:
    return FilingRateLimited(
        "this kiosk has filed too many requests this hour", retry_after=refused.retry_after
    )
