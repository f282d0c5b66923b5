"""Kiosk visits: the server-issued token that 공감 (support) is counted on.

A resident's visit at the kiosk (from the first touch to the idle reset) gets one token from the
server; a request takes one support per visit (``petition_supports`` is unique on the petition and
the visit). The token is ``<kiosk id>.<issued unix time>.<random>.<HMAC>``: the server needs no
table to check it, a page cannot invent one, and one kiosk's token is worthless at another.
Before, the count was keyed on an id the page chose itself, so a script could support a request
any number of times.

A stolen device token can still ask for visits, so they are rationed like filings: at most
``VISITS_PER_HOUR`` per kiosk (a resident every two minutes, more than a village hall sees), which
bounds what one kiosk can add to any request's count.
"""

from __future__ import annotations

import datetime as dt
import hmac
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.secrets import new_token, sign
from server.db import transaction
from server.errors import BadRequest, TooManyRequests
from server.petitions import throttle

VISIT_LIFETIME = dt.timedelta(minutes=30)
VISITS_PER_HOUR = 30
VISIT_PATTERN = r"^[0-9]{1,10}\.[0-9]{1,12}\.[A-Za-z0-9_-]{16,24}\.[0-9a-f]{32}$"


def _signature(secret: str, payload: str) -> str:
    return sign(secret, "kiosk-visit:" + payload)[:32]


async def issue(sessionmaker: async_sessionmaker[AsyncSession], secret: str, kiosk_id: int) -> str:
    """A new visit token for ``kiosk_id``, or TooManyRequests past ``VISITS_PER_HOUR``."""
    limit = throttle.Limit(f"visit:kiosk:{kiosk_id}", VISITS_PER_HOUR, dt.timedelta(hours=1))
    async with transaction(sessionmaker) as session:
        refused = await throttle.reserve(session, [limit])
        if refused is not None:
            raise TooManyRequests(
                "this kiosk has started too many visits this hour",
                retry_after=refused.retry_after,
                code="visits_rate_limited",
            )
    payload = f"{kiosk_id}.{int(time.time())}.{new_token(12)}"
    return f"{payload}.{_signature(secret, payload)}"


def visit_id(secret: str, kiosk_id: int, token: str, now: float | None = None) -> str:
    """The visit's random part (what a support is stored under) if ``token`` is a live visit of
    ``kiosk_id``; BadRequest (``invalid_visit``) otherwise."""
    payload, _, signature = token.rpartition(".")
    parts = payload.split(".")
    if len(parts) != 3 or not hmac.compare_digest(signature, _signature(secret, payload)):
        raise BadRequest("not a visit this server issued", code="invalid_visit")
    owner, issued, nonce = parts
    age = (time.time() if now is None else now) - int(issued)
    if owner != str(kiosk_id) or not 0 <= age <= VISIT_LIFETIME.total_seconds():
        raise BadRequest("the visit is over or belongs to another kiosk", code="invalid_visit")
    return "visit:" + nonce
