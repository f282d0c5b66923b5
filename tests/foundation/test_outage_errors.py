"""``outage_error`` tells a database outage (503) and a full disk (507) from a bug (500), in the
forms the drivers really raise them."""

from __future__ import annotations

import errno
import sqlite3

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from server.errors import DatabaseUnavailable, InsufficientStorage, describe, outage_error
from tests.pg import free_port


def _raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback from our own code (not from a driver)."""
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - handed back to the test
        return caught


async def test_a_refused_connect_from_asyncpg_is_a_database_outage() -> None:
    # asyncpg raises the socket's ConnectionRefusedError unwrapped: only its origin tells.
    with pytest.raises(OSError) as refused:
        await asyncpg.connect(host="127.0.0.1", port=free_port(), user="postgres", ssl=False)
    assert isinstance(outage_error(refused.value), DatabaseUnavailable)


def test_the_same_os_error_from_our_own_code_is_a_bug() -> None:
    assert outage_error(_raised(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))) is None
    assert outage_error(_raised(ValueError("nope"))) is None
    assert outage_error(_raised(sa_exc.NoResultFound("no row"))) is None


@pytest.mark.parametrize(
    "exc",
    [
        sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        sa_exc.DBAPIError("SELECT 1", {}, Exception("x"), connection_invalidated=True),
        sa_exc.DBAPIError("SELECT 1", {}, Exception("connection was closed in the middle of operation")),
        sa_exc.InterfaceError("SELECT 1", {}, asyncpg.ConnectionDoesNotExistError("gone")),
        sa_exc.DBAPIError("SELECT 1", {}, asyncpg.CannotConnectNowError("the database is starting up")),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        sa_exc.TimeoutError("QueuePool limit reached"),
    ],
)
def test_database_outages(exc: BaseException) -> None:
    error = outage_error(_raised(exc))
    assert isinstance(error, DatabaseUnavailable)
    assert (error.status, error.code, error.retry_after) == (503, "database_unavailable", 5)


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        sa_exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full")),
        sa_exc.DBAPIError("INSERT", {}, asyncpg.DiskFullError("could not extend file")),
    ],
)
def test_a_full_disk_is_not_a_database_outage(exc: BaseException) -> None:
    error = outage_error(_raised(exc))
    assert isinstance(error, InsufficientStorage)
    assert (error.status, error.code) == (507, "disk_full")


def test_a_full_disk_found_behind_a_wrapping_error() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("writing the upload failed") from inner
    except RuntimeError as outer:
        assert isinstance(outage_error(outer), InsufficientStorage)


def test_the_log_line_of_an_outage_never_quotes_the_statement_parameters() -> None:
    error = sa_exc.OperationalError(
        "INSERT INTO petitions (resident_phone) VALUES ($1)",
        ("010-1234-5678",),
        sqlite3.OperationalError("database or disk is full"),
    )
    assert "010-1234-5678" in str(error)  # SQLAlchemy's own text does
    assert describe(error) == "OperationalError: database or disk is full"
    assert describe(ConnectionRefusedError(111, "Connect call failed")) == (
        "ConnectionRefusedError: [Errno 111] Connect call failed"
    )
