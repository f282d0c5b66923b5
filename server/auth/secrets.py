"""Random tokens, their stored hashes, and argon2 password hashing."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token (256 bits by default) for cookies and device tokens."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """What we store for a high-entropy token: a plain SHA-256 is enough (no brute force possible),
    and it lets us look the row up by hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_enrollment_code() -> str:
    """A one-time enrollment code an installer can type on a kiosk: 4 groups of 4 from an
    alphabet without look-alike characters (0/O, 1/I/L). ~80 bits."""
    alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
    raw = "".join(secrets.choice(alphabet) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def normalize_enrollment_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def sign(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class Passwords:
    """argon2id hashing; parameters come from settings so tests can make it cheap."""

    def __init__(self, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verifying against this when the user does not exist keeps the timing of "no such user"
        # and "wrong password" alike.
        self._dummy_hash = self._hasher.hash(new_token())

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return (
                self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
