"""Receipt numbers residents can read aloud, and the PIN that goes with them.

A receipt number looks like ``강진-2026-00123``: the county, the year of receipt in Asia/Seoul, and a
sequence that restarts every year, shown with five digits. Past 99,999 in a year the number simply
grows a digit (``강진-2026-100000``, up to seven digits: ten million a year). Residents keep the
short numbers they know, and a stolen kiosk token cannot use up the year's numbers: at the filing
limit (``MAEUL_KIOSK_FILINGS_PER_HOUR``, 30) one kiosk files at most 262,800 a year, so it would
take some forty stolen tokens filing non-stop for a year, long after they were noticed and revoked.

Residents type it back on a kiosk keypad or read it to an official over the phone, so parsing
forgives spaces, missing hyphens, full-width digits, ASCII spellings of the prefix and plain digits
(``202600123``).

The 4-digit PIN lets a resident without an account look up a petition. Ten thousand PINs are
trivially brute-forced offline, so the stored hash uses Argon2id (memory-hard and slow) and accepts
an optional server-side pepper: with the pepper kept outside the database, a leaked table alone is
not enough to recover PINs. Online guessing is throttled elsewhere (per receipt number and per
client), which is the real protection for a 4-digit secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from argon2 import low_level
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.petitions.deadlines import SEOUL

RECEIPT_PREFIX = "강진"
# What a keypad or a romanising official may type instead of 강진 (compared case-insensitively).
ASCII_PREFIXES = ("GANGJIN", "KANGJIN", "GJ")
SEQ_DIGITS = 5  # shown at least this wide (zero-padded)
MAX_SEQ_DIGITS = 7
MAX_SEQ = 10**MAX_SEQ_DIGITS - 1
MIN_YEAR = 2000
MAX_YEAR = 9999
PIN_LENGTH = 4

_SEPARATORS = re.compile(r"[\s\-_./·‐‑–—]+")
_EXAMPLE = f"{RECEIPT_PREFIX}-2026-00123"


def receipt_year(received_at: datetime) -> int:
    """The receipt year: the calendar year in Asia/Seoul (a petition at 23:30 UTC on 31 December is
    already in the next year in Korea)."""
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    return received_at.astimezone(SEOUL).year


def format_receipt(year: int, seq: int) -> str:
    """``format_receipt(2026, 123) == "강진-2026-00123"``."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"year {year} is out of range {MIN_YEAR}..{MAX_YEAR}")
    if not 1 <= seq <= MAX_SEQ:
        raise ValueError(f"sequence {seq} is out of range 1..{MAX_SEQ}")
    return f"{RECEIPT_PREFIX}-{year:04d}-{seq:0{SEQ_DIGITS}d}"


def _strip_prefix(text: str) -> str:
    if text.startswith(RECEIPT_PREFIX):
        return text[len(RECEIPT_PREFIX) :]
    upper = text.upper()
    for prefix in ASCII_PREFIXES:  # longest first, so "GANGJIN" is not read as "G" + junk
        if upper.startswith(prefix):
            return text[len(prefix) :]
    return text


def _long_seq(digits: str) -> bool:
    """A number past 99,999: six or seven digits, never with a leading zero (those are never
    issued, so ``2026001234`` stays a typo instead of quietly naming receipt 1234)."""
    return SEQ_DIGITS < len(digits) <= MAX_SEQ_DIGITS and not digits.startswith("0")


def parse_receipt(text: str) -> tuple[int, int]:
    """Parse a receipt number as typed or spoken back; return ``(year, seq)``.

    Accepted: ``강진-2026-00123``, ``강진 2026 123``, ``강진202600123``, ``GJ-2026-00123``,
    ``gangjin2026-123``, ``2026-00123``, ``202600123`` (9 to 11 digits when there is no separator:
    the year, then the number with its zeros), ``강진-2026-100000``.
    """
    if not isinstance(text, str):
        raise TypeError("receipt number must be a string")
    normalized = unicodedata.normalize("NFKC", text).strip()
    if not normalized:
        raise ValueError(f"receipt number is empty; expected something like {_EXAMPLE}")
    body = _strip_prefix(normalized)
    groups = [g for g in _SEPARATORS.split(body) if g]
    if not groups or not all(g.isascii() and g.isdigit() for g in groups):
        raise ValueError(f"receipt number {text!r} is not valid; expected something like {_EXAMPLE}")
    if len(groups) == 1:
        digits = groups[0]
        if len(digits) != 4 + SEQ_DIGITS and not _long_seq(digits[4:]):
            raise ValueError(
                f"receipt number {text!r} has {len(digits)} digits; expected 4 for the year and "
                f"{SEQ_DIGITS} for the number, like {_EXAMPLE}"
            )
        year_text, seq_text = digits[:4], digits[4:]
    elif (
        len(groups) == 2
        and len(groups[0]) == 4
        and (1 <= len(groups[1]) <= SEQ_DIGITS or _long_seq(groups[1]))
    ):
        year_text, seq_text = groups
    else:
        raise ValueError(f"receipt number {text!r} is not valid; expected something like {_EXAMPLE}")
    year, seq = int(year_text), int(seq_text)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"receipt number {text!r} has an impossible year {year}")
    if seq < 1:
        raise ValueError(f"receipt number {text!r} has sequence 0, which is never issued")
    return year, seq


# --- PINs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PinHashParams:
    """Argon2id cost. The default is RFC 9106's second recommended option (64 MiB, 3 passes)."""

    time_cost: int = 3
    memory_cost_kib: int = 64 * 1024
    parallelism: int = 4
    hash_len: int = 32


DEFAULT_PIN_HASH_PARAMS = PinHashParams()


def generate_pin() -> str:
    """A uniformly random 4-digit PIN (leading zeros kept)."""
    return f"{secrets.randbelow(10**PIN_LENGTH):0{PIN_LENGTH}d}"


def generate_salt() -> bytes:
    return secrets.token_bytes(16)


def is_pin(pin: object) -> bool:
    """True for exactly four ASCII digits."""
    return isinstance(pin, str) and len(pin) == PIN_LENGTH and pin.isascii() and pin.isdigit()


def _secret(pin: str, pepper: bytes | None) -> bytes:
    if pepper is None:
        return pin.encode("ascii")
    return hmac.new(pepper, pin.encode("ascii"), hashlib.sha256).digest()


def hash_pin(
    pin: str,
    salt: bytes | None = None,
    *,
    pepper: bytes | None = None,
    params: PinHashParams = DEFAULT_PIN_HASH_PARAMS,
) -> str:
    """Hash a PIN for storage; returns a self-describing ``$argon2id$...`` string (salt included).

    ``salt`` defaults to 16 fresh random bytes; pass one only for reproducible tests.
    """
    if not is_pin(pin):
        raise ValueError(f"a PIN is exactly {PIN_LENGTH} digits")
    if salt is None:
        salt = generate_salt()
    if len(salt) < 8:
        raise ValueError("salt must be at least 8 bytes")
    encoded = low_level.hash_secret(
        _secret(pin, pepper),
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_cost_kib,
        parallelism=params.parallelism,
        hash_len=params.hash_len,
        type=low_level.Type.ID,
    )
    return encoded.decode("ascii")


def verify_pin(pin: str, stored_hash: str, *, pepper: bytes | None = None) -> bool:
    """True if ``pin`` matches ``stored_hash``. A malformed PIN is simply wrong (False); a malformed
    stored hash is a data error and raises ValueError."""
    if not stored_hash.startswith("$argon2id$"):
        raise ValueError("stored PIN hash is not an Argon2id hash")
    if not is_pin(pin):
        return False
    try:
        return low_level.verify_secret(stored_hash.encode("ascii"), _secret(pin, pepper), low_level.Type.ID)
    except VerifyMismatchError:
        return False
    except (InvalidHashError, VerificationError) as exc:
        # Anything but a mismatch ("Decoding failed", bad parameters) means the stored value is damaged.
        raise ValueError(f"stored PIN hash is malformed: {exc}") from exc
