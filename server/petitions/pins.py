"""PIN hashing settings and the database-backed throttle for receipt + PIN checks.

A check *reserves* its attempt before any PIN is verified (``throttle.reserve``: one conditional
UPDATE per key, all in one transaction), so however many checks arrive at once, at most ``limit``
of them get a reservation; the rest answer 429 with Retry-After without looking at the PIN.
(Checking a failure counter *after* verifying, as before, let 30 simultaneous guesses through.)

Three keys, so a PIN can be guessed neither on one receipt nor sprayed across many:

* ``receipt:<year>-<seq>`` — guesses at one receipt, from any kiosk (5 per 15 minutes);
* ``kiosk:<id>`` — guesses by one kiosk across all receipts (a stolen device token);
* ``all`` — guesses across the whole receipt space, from every kiosk together.

A right PIN gives its kiosk and county-wide attempt back, so villages checking their own receipts
never use up those budgets; a receipt's own count keeps every attempt (a resident who checks her
receipt a sixth time within 15 minutes waits like a guesser would). A
receipt that does not exist costs an Argon2 hash with the same parameters as a real check, so
neither the answer nor its time tells an attacker which receipt numbers are issued.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.config import Settings
from server.db import transaction
from server.errors import Forbidden, TooManyRequests
from server.petitions import receipts, service, throttle
from server.petitions.models import Petition
from server.petitions.receipts import PinHashParams
from server.petitions.throttle import Limit

log = logging.getLogger(__name__)

# What a missing receipt's check hashes: same cost as verifying a real PIN hash.
DUMMY_PIN = "0000"


@dataclass(frozen=True)
class PinLimits:
    """How many wrong guesses each key allows. A resident mistypes a few times at most; a kiosk's
    whole village rarely more than a handful an hour; the county's ~100 kiosks together even less
    often reach the county-wide cap. With these figures a sprayed PIN (one guess per receipt, each
    a 1 in 10,000 chance) is expected to hit about once in two weeks county-wide, and the spray
    also locks status checks out for everyone, which the warning log makes visible at once."""

    per_receipt: int = 5
    receipt_window: dt.timedelta = dt.timedelta(minutes=15)
    per_kiosk: int = 10
    kiosk_window: dt.timedelta = dt.timedelta(hours=1)
    county_wide: int = 30
    county_window: dt.timedelta = dt.timedelta(hours=1)

    def keys(self, kiosk_id: int, year: int, seq: int) -> list[Limit]:
        """The three limits of one check, in one fixed order (``all`` < ``kiosk:`` < ``receipt:``)
        so that concurrent checks lock the rows in the same order and never deadlock."""
        return [
            Limit("all", self.county_wide, self.county_window),
            Limit(f"kiosk:{kiosk_id}", self.per_kiosk, self.kiosk_window),
            Limit(f"receipt:{year}-{seq}", self.per_receipt, self.receipt_window),
        ]


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


async def reserve(session: AsyncSession, limits: list[Limit], now: dt.datetime | None = None) -> None:
    """Take one attempt on every limit, or raise TooManyRequests (the caller's transaction then
    rolls back, so a refused check takes nothing from the other keys either)."""
    refused = await throttle.reserve(session, limits, now)
    if refused is None:
        return
    if refused.limit.key == "all":
        log.warning("county-wide PIN guess limit reached; status checks refused for a while")
    raise TooManyRequests(
        "too many wrong PINs; try again later", retry_after=refused.retry_after, code="pin_locked"
    )


async def give_back(session: AsyncSession, limits: list[Limit]) -> None:
    """After a right PIN: the kiosk's and the county's attempt is returned, so a village checking
    its own receipts never uses up those budgets. The receipt's own count stays: at most
    ``per_receipt`` PINs are ever verified per receipt per window, right or wrong."""
    await throttle.give_back(session, [limit.key for limit in limits if not limit.key.startswith("receipt:")])


def verify_or_dummy(pin: str, stored_hash: str | None, *, pepper: bytes, params: PinHashParams) -> bool:
    """Verify ``pin`` against ``stored_hash``; with no hash (no such receipt) spend the same Argon2
    work on a dummy and answer False. Blocking: run it in a thread."""
    if stored_hash is None:
        receipts.hash_pin(pin if receipts.is_pin(pin) else DUMMY_PIN, pepper=pepper, params=params)
        return False
    try:
        return receipts.verify_pin(pin, stored_hash, pepper=pepper)
    except ValueError:
        log.error("stored PIN hash is damaged; the check is refused")
        return False


async def check_receipt_pin(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    kiosk_id: int,
    receipt_no: str,
    pin: str,
    limits: PinLimits | None = None,
) -> Petition:
    """The petition behind ``receipt_no`` if ``pin`` opens it. Raises TooManyRequests when a limit
    is used up, Forbidden ("receipt number or PIN wrong", one answer for both) otherwise, and
    ValueError for text that is not a receipt number at all."""
    year, seq = receipts.parse_receipt(receipt_no)
    keys = (limits or PinLimits()).keys(kiosk_id, year, seq)
    async with transaction(sessionmaker) as session:
        await reserve(session, keys)
        petition = await service.find_by_receipt(session, receipt_no)
    stored = petition.pin_hash if petition is not None else None
    ok = await asyncio.to_thread(
        verify_or_dummy, pin, stored, pepper=pin_pepper(settings), params=pin_params(settings)
    )
    if not ok or petition is None:
        raise Forbidden("the receipt number or the PIN is wrong", code="pin_mismatch")
    async with transaction(sessionmaker) as session:
        await give_back(session, keys)
    return petition
