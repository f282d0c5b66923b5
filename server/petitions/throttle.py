"""Attempt counters in the database, reserved atomically before the work they limit.

One row per key in ``petition_pin_throttle`` (``PinThrottle``: the table began with PIN checks
and now also counts filings). ``reserve`` takes one attempt on each limit with a conditional
UPDATE (``... SET attempts = attempts + 1 WHERE attempts < limit OR window expired RETURNING``);
the database serialises those updates (a row lock on PostgreSQL, the write lock on SQLite), so
however many requests arrive at once, no more than ``limit`` get through a window. Checking a
counter and bumping it in two steps, as before, let simultaneous requests all pass the check.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import case, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db import UtcDateTime, transaction, utcnow
from server.errors import TooManyRequests, _
from server.petitions.models import PinThrottle
from server.petitions.sql import insert_ignoring_conflicts


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
        # Create the row if missing (a concurrent first attempt is not an error).
        await session.execute(
            insert_ignoring_conflicts(session, PinThrottle).values(
                key=limit.key, failures=0, window_started_at=now
            )
        )
        expired = PinThrottle.window_started_at <= now - limit.window
        taken = await session.scalar(
            update(PinThrottle)
            .where(PinThrottle.key == limit.key, or_(expired, PinThrottle.failures < limit.attempts))
            .values(
                failures=case((expired, 1), else_=PinThrottle.failures + 1),
                window_started_at=case((expired, at), else_=PinThrottle.window_started_at),
            )
            .returning(PinThrottle.failures)
        )
        if taken is None:
            started = await session.scalar(
                select(PinThrottle.window_started_at).where(PinThrottle.key == limit.key)
            )
            wait = (started + limit.window - now) if started is not None else limit.window
            # A concurrent caller may have started the window with a ``now`` a little later than
            # ours: the wait never exceeds the window itself.
            return Refused(limit, max(1, math.ceil(min(wait, limit.window).total_seconds())))
    return None


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


async def reserve_filing(sessionmaker: async_sessionmaker[AsyncSession], limit: Limit) -> None:
    """Reserve one filing before the request body is read, or raise FilingRateLimited (429)."""
    async with transaction(sessionmaker) as session:
        refused = await reserve(session, [limit])
        if refused is not None:
            raise FilingRateLimited(
                "this kiosk has filed too many requests this hour", retry_after=refused.retry_after
            )


async def return_filing(sessionmaker: async_sessionmaker[AsyncSession], limit: Limit) -> None:
    """A reserved filing that filed nothing new (refused input, or a resend) does not count."""
    async with transaction(sessionmaker) as session:
        await give_back(session, [limit.key])
