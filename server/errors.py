"""Maeul's one error tree. Domain code raises these; one middleware maps them to replies.

::

    MaeulError
    ├── ConfigError                 start-up: a setting is missing or malformed (never an HTTP reply)
    └── AppError                    anything a request can run into; carries status + stable code
        ├── BadRequest              400  malformed input (bad JSON, unknown field, wrong type)
        ├── AuthenticationRequired  401  no valid session / device token
        ├── Forbidden               403  authenticated, but the role may not do this
        │   └── CsrfFailed          403  unsafe request without a valid CSRF token
        ├── NotFound                404
        ├── Conflict                409  state does not allow it (e.g. code already used)
        ├── PayloadTooLarge         413
        ├── TooManyRequests         429  throttled (login, PIN); carries retry_after seconds
        ├── ServiceUnavailable      503  a dependency (the database) is down; carries retry_after
        └── InsufficientStorage     507  the disk is full, or too low for new media (MAEUL_MIN_FREE_MB)

API requests (``/api/…`` or ``Accept: application/json``) get
``{"error": {"code": …, "message": …, "details": …}}``; pages get a friendly localized page.
``message`` is an English sentence for logs and developers; pages translate ``code`` instead.
Errors a resident or an official must act on also carry ``display``: what to do, in the request's
language (Korean first), in the JSON body (``error.display``) and on the page.

``outage_error(exc)`` tells a database outage or a full disk apart from a bug, whatever form the
driver gave it (SQLAlchemy, asyncpg, sqlite3, or a bare ``OSError`` from a failed connect).
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc


def _(message: str) -> str:
    """Marks a message for the catalogs (babel extracts ``_``); translated when shown."""
    return message


class MaeulError(Exception):
    """Root of every error Maeul raises on purpose."""


class ConfigError(MaeulError):
    """A setting is missing or malformed; raised at start-up with a message for the operator."""


class AppError(MaeulError):
    status: int = 500
    code: str = "internal_error"
    # What the person in front of the screen should do (an English msgid, translated when shown).
    display: str | None = None
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class AuthenticationRequired(AppError):
    status = 401
    code = "authentication_required"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class CsrfFailed(Forbidden):
    code = "csrf_failed"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, details={"retry_after": retry_after})
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
    retry_after = 5


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    display = _(
        "The server cannot reach its database for a moment. Please wait a little and try again; "
        "if it keeps happening, call the county office."
    )

    def __init__(self, message: str = "the database is not reachable") -> None:
        super().__init__(message)


class InsufficientStorage(AppError):
    status = 507
    code = "disk_full"
    display = _("The server's storage is full, so this could not be saved. Please tell the county office.")


class MediaStorageLow(InsufficientStorage):
    code = "media_storage_low"
    display = _(
        "The server is low on storage, so recorded messages and pictures cannot be received now. "
        "Please send your request as text, or try again later."
    )


# SQLSTATEs of a server that cannot be reached or is going away (class 08: connection exception,
# 57P01-57P03: shutdown, crash, starting up) or that has no connection slot left.
_UNREACHABLE_SQLSTATE_PREFIXES = ("08", "57P")
_UNREACHABLE_SQLSTATES = frozenset({"53300"})
_DISK_FULL_SQLSTATE = "53100"
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_DRIVER_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3")
_CLOSED_CONNECTION_TEXT = ("connection was closed", "connection is closed", "connection has been closed")


def outage_error(exc: BaseException) -> AppError | None:
    """The reply for an exception that means "the disk is full" (507) or "the database is not
    reachable" (503), or None for anything else (a bug: 500).

    A bare ``OSError`` counts as a database outage only when it came out of the database driver
    (asyncpg raises ``ConnectionRefusedError`` from its connect unwrapped); a full disk counts
    wherever it happened (an upload, SQLite's journal, PostgreSQL's own disk).
    """
    chain = list(_chain(exc))
    if any(_is_disk_full(e) for e in chain):
        return InsufficientStorage(f"the disk is full ({type(exc).__name__})")
    if any(_is_unreachable(e) for e in chain):
        return DatabaseUnavailable()
    return None


def describe(exc: BaseException) -> str:
    """One short line for the log: the driver's own message, never SQLAlchemy's wrapper text,
    which quotes the statement's parameters (a resident's name and phone number in a filing)."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else None
    inner = orig if isinstance(orig, BaseException) else exc
    text = str(inner).strip()
    return f"{type(inner).__name__}: {text.splitlines()[0][:200] if text else ''}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo.extend(
            [orig if isinstance(orig, BaseException) else None, current.__cause__, current.__context__]
        )


def _sqlstate(exc: BaseException) -> str:
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return code if isinstance(code, str) else ""


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
        return True
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return True
    return _sqlstate(exc) == _DISK_FULL_SQLSTATE or "database or disk is full" in str(exc)


def _is_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True
    if isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
        return True
    state = _sqlstate(exc)
    if state.startswith(_UNREACHABLE_SQLSTATE_PREFIXES) or state in _UNREACHABLE_SQLSTATES:
        return True
    if isinstance(exc, sa_exc.DBAPIError) and any(t in str(exc).lower() for t in _CLOSED_CONNECTION_TEXT):
        return True
    return isinstance(exc, (OSError, TimeoutError)) and _raised_in_driver(exc.__traceback__)


def _raised_in_driver(tb: TracebackType | None) -> bool:
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False
