"""Start-up checks of the parts a scale-out process stands on: PostgreSQL and Redis.

A web process or SFU worker that starts against a database it cannot reach, a password that is
wrong, a schema that is not migrated, or a Redis URL that points nowhere would otherwise fail
later and vaguely (a 503 on the first request, a worker no one places rooms on). ``check`` finds
each of these at once and says, in one English log line per problem, what is wrong and what to
do; ``exit_status`` turns the list into the process's exit code (systemd then shows it).

Nothing here changes anything: no migration, no key written. Messages never carry a password.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import StrEnum

import asyncpg
import redis.asyncio as aioredis
from alembic.script import ScriptDirectory
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import make_url, text
from sqlalchemy.exc import ArgumentError

from server import migrate
from server.config import Settings
from server.db import close_engine, create_engine

log = logging.getLogger(__name__)

# How long one part may take to answer before it counts as not answering.
DEFAULT_TIMEOUT_SECONDS = 5.0
# sysexits.h: a part is down or unreachable (a restart may find it back), or the configuration
# itself is wrong (a restart will not help until an operator changes it).
EX_UNAVAILABLE = 69
EX_CONFIG = 78


class Part(StrEnum):
    POSTGRESQL = "postgresql"
    REDIS = "redis"


class Kind(StrEnum):
    NOT_CONFIGURED = "not_configured"  # the setting is missing, or names the wrong kind of server
    BAD_URL = "bad_url"  # the URL cannot be parsed
    UNREACHABLE = "unreachable"  # nothing accepts the connection (down, wrong host or port)
    NOT_ANSWERING = "not_answering"  # connected, or trying to, but no answer in time
    AUTH_FAILED = "auth_failed"  # the server refuses the credentials
    NO_DATABASE = "no_database"  # PostgreSQL: the database named in the URL does not exist
    SCHEMA = "schema"  # PostgreSQL: not at the schema revision this code needs
    REFUSED = "refused"  # the server answers but refuses what Maeul needs (read-only, bad db index)


# Problems that a restart of the process cannot fix: the operator must change something.
_CONFIG_KINDS = frozenset(
    {Kind.NOT_CONFIGURED, Kind.BAD_URL, Kind.AUTH_FAILED, Kind.NO_DATABASE, Kind.SCHEMA}
)


@dataclass(frozen=True)
class Problem:
    part: Part
    kind: Kind
    # One English sentence or two for the operator's log: what is wrong, where, what to do.
    message: str

    def __str__(self) -> str:
        return f"{self.part}: {self.message}"


async def check(
    settings: Settings,
    *,
    database: bool = True,
    redis: bool = True,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[Problem]:
    """Check PostgreSQL (reachable, credentials, schema at alembic head) and Redis (reachable,
    credentials, writable primary), concurrently; return every problem found, none when ready.
    ``database``/``redis`` leave a part out for a role that does not use it."""
    checks: list[Awaitable[list[Problem]]] = []
    if database:
        checks.append(_bounded(Part.POSTGRESQL, _check_postgresql(settings.database_url, timeout), timeout))
    if redis:
        checks.append(_bounded(Part.REDIS, _check_redis(settings.redis_url, timeout), timeout))
    results = await asyncio.gather(*checks)
    return [problem for found in results for problem in found]


def log_problems(problems: list[Problem], logger: logging.Logger = log) -> None:
    for problem in problems:
        logger.error(
            "preflight: %s", problem, extra={"part": str(problem.part), "problem": str(problem.kind)}
        )


def exit_status(problems: list[Problem]) -> int:
    """0 when ready; EX_CONFIG when any problem needs an operator; EX_UNAVAILABLE otherwise."""
    if not problems:
        return 0
    if any(problem.kind in _CONFIG_KINDS for problem in problems):
        return EX_CONFIG
    return EX_UNAVAILABLE


async def run(settings: Settings, *, database: bool = True, redis: bool = True) -> int:
    """Check, log what is wrong, and return the exit status for a process about to start."""
    problems = await check(settings, database=database, redis=redis)
    log_problems(problems)
    if not problems:
        log.info("preflight: ready")
    return exit_status(problems)


async def _bounded(part: Part, work: Awaitable[list[Problem]], timeout: float) -> list[Problem]:
    # The outer bound: a part whose connect or reply hangs (a firewall dropping packets, a
    # server stopped with SIGSTOP) must not hang the start-up with it.
    try:
        return await asyncio.wait_for(work, timeout * 2)
    except TimeoutError:
        return [Problem(part, Kind.NOT_ANSWERING, f"no answer within {timeout * 2:g} s")]


# PostgreSQL -----------------------------------------------------------------------------------


async def _check_postgresql(url: str, timeout: float) -> list[Problem]:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return [
            Problem(
                Part.POSTGRESQL,
                Kind.BAD_URL,
                "MAEUL_DATABASE_URL is not a database URL; expected "
                "postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE",
            )
        ]
    where = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() != "postgresql":
        return [
            Problem(
                Part.POSTGRESQL,
                Kind.NOT_CONFIGURED,
                f"MAEUL_DATABASE_URL is {where}; the web and sfu processes share one PostgreSQL: "
                "set MAEUL_DATABASE_URL=postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE",
            )
        ]
    engine = create_engine(url)
    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return [
            Problem(
                Part.POSTGRESQL,
                Kind.NOT_ANSWERING,
                f"{where} did not answer within {timeout:g} s: is the host right, and does a "
                "firewall drop the port?",
            )
        ]
    except Exception as exc:  # every failure becomes a message; none may escape
        return [_postgresql_problem(where, parsed.host, parsed.port, parsed.database, exc)]
    finally:
        await close_engine(engine)
    return await _check_schema(url, where)


def _postgresql_problem(
    where: str, host: str | None, port: int | None, database: str | None, exc: Exception
) -> Problem:
    cause = _root(exc, (asyncpg.PostgresError, OSError))
    address = f"{host or 'localhost'}:{port or 5432}"
    if isinstance(cause, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return Problem(
            Part.POSTGRESQL,
            Kind.AUTH_FAILED,
            f"{where} refused the login ({_first_line(cause)}): check the user and password in "
            "MAEUL_DATABASE_URL and the server's pg_hba.conf",
        )
    if isinstance(cause, asyncpg.InvalidCatalogNameError):
        return Problem(
            Part.POSTGRESQL,
            Kind.NO_DATABASE,
            f"the database {database!r} does not exist on {address}: create it "
            f"(createdb -O USER {database}), then run `run.py migrate`",
        )
    if isinstance(cause, asyncpg.CannotConnectNowError):
        return Problem(
            Part.POSTGRESQL,
            Kind.UNREACHABLE,
            f"PostgreSQL at {address} is starting up or shutting down ({_first_line(cause)})",
        )
    if isinstance(cause, socket.gaierror):
        return Problem(
            Part.POSTGRESQL,
            Kind.UNREACHABLE,
            f"cannot resolve the host {host!r} of MAEUL_DATABASE_URL ({cause.strerror})",
        )
    if isinstance(cause, OSError):
        return Problem(
            Part.POSTGRESQL,
            Kind.UNREACHABLE,
            f"cannot connect to PostgreSQL at {address} ({_os_detail(cause)}): is it running, "
            "listening on that address (listen_addresses), and is MAEUL_DATABASE_URL right?",
        )
    return Problem(Part.POSTGRESQL, Kind.UNREACHABLE, f"cannot use {where}: {_first_line(cause)}")


async def _check_schema(url: str, where: str) -> list[Problem]:
    heads = set(ScriptDirectory.from_config(migrate.alembic_config(url)).get_heads())
    try:
        # check_known holds the one message for a database a newer Maeul has migrated.
        await asyncio.to_thread(migrate.check_known, url)
        current = set(await asyncio.to_thread(migrate.current_revisions, url))
    except migrate.UnknownRevision as exc:
        return [Problem(Part.POSTGRESQL, Kind.SCHEMA, str(exc))]
    if not current:
        return [
            Problem(
                Part.POSTGRESQL,
                Kind.SCHEMA,
                f"{where} has no Maeul schema: run `run.py migrate` once (from one machine) first",
            )
        ]
    if current != heads:
        return [
            Problem(
                Part.POSTGRESQL,
                Kind.SCHEMA,
                f"{where} is at schema revision {', '.join(sorted(current))} but this version of "
                f"Maeul needs {', '.join(sorted(heads))}: run `run.py migrate` (from one machine), "
                "then start the processes",
            )
        ]
    return []


# Redis ----------------------------------------------------------------------------------------


async def _check_redis(url: str | None, timeout: float) -> list[Problem]:
    if url is None:
        return [
            Problem(
                Part.REDIS,
                Kind.NOT_CONFIGURED,
                "MAEUL_REDIS_URL is not set; the web and sfu processes share one Redis: set it, "
                "e.g. MAEUL_REDIS_URL=unix:///run/redis/redis-server.sock or redis://10.0.0.5:6379/0",
            )
        ]
    where = _redact_redis(url)
    try:
        # No retries: one clear answer now; the process manager retries the whole start.
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
    except ValueError as exc:
        return [Problem(Part.REDIS, Kind.BAD_URL, f"MAEUL_REDIS_URL {where} cannot be used: {exc}")]
    try:
        await client.ping()
        role = await client.execute_command("ROLE")
    except redis_errors.AuthenticationError as exc:
        return [_redis_auth_problem(where, exc)]
    except redis_errors.TimeoutError:
        return [
            Problem(
                Part.REDIS,
                Kind.NOT_ANSWERING,
                f"Redis at {where} did not answer within {timeout:g} s: is that really Redis's port?",
            )
        ]
    except redis_errors.ConnectionError as exc:
        # redis-py wraps a refused login (at connect: HELLO/AUTH) in a plain ConnectionError.
        refused_login = _root(exc, (redis_errors.AuthenticationError,))
        if isinstance(refused_login, redis_errors.AuthenticationError):
            return [_redis_auth_problem(where, refused_login)]
        # Likewise a refused SELECT of the URL's database number.
        refused = _root(exc, (redis_errors.ResponseError,))
        if isinstance(refused, redis_errors.ResponseError):
            return [_redis_refused_problem(where, refused)]
        return [_redis_connection_problem(where, exc)]
    except redis_errors.ResponseError as exc:
        if _first_line(exc).startswith("NOAUTH"):
            return [_redis_auth_problem(where, exc)]
        return [_redis_refused_problem(where, exc)]
    except redis_errors.RedisError as exc:
        return [
            Problem(
                Part.REDIS,
                Kind.REFUSED,
                f"{where} did not answer as Redis ({_first_line(exc)}): "
                "does MAEUL_REDIS_URL name another service?",
            )
        ]
    finally:
        await client.aclose()
    if role and role[0] not in (b"master", "master"):
        # A replica takes no writes: the worker registry and placement would fail on every change.
        return [
            Problem(
                Part.REDIS,
                Kind.REFUSED,
                f"Redis at {where} is a read-only replica; point MAEUL_REDIS_URL at the primary",
            )
        ]
    return []


def _redis_auth_problem(where: str, exc: Exception) -> Problem:
    detail = _first_line(exc)
    if detail.startswith(("NOAUTH", "HELLO must be called")):
        # Redis's own text here is a paragraph about the HELLO command.
        detail = "it needs a password and none was given"
    return Problem(
        Part.REDIS,
        Kind.AUTH_FAILED,
        f"Redis at {where} refused the credentials ({detail}): check the user and password "
        "in MAEUL_REDIS_URL (redis://USER:PASSWORD@HOST:6379/0) against requirepass or the ACL",
    )


def _redis_refused_problem(where: str, exc: Exception) -> Problem:
    return Problem(
        Part.REDIS,
        Kind.REFUSED,
        f"Redis at {where} refused ({_first_line(exc)}): check MAEUL_REDIS_URL (the database number "
        "must be below the server's `databases`, 16 by default)",
    )


def _redis_connection_problem(where: str, exc: Exception) -> Problem:
    cause = _root(exc, (OSError,))
    detail = _os_detail(cause) if isinstance(cause, OSError) else _first_line(exc)
    if isinstance(cause, socket.gaierror):
        return Problem(
            Part.REDIS, Kind.UNREACHABLE, f"cannot resolve the host of MAEUL_REDIS_URL {where} ({detail})"
        )
    return Problem(
        Part.REDIS,
        Kind.UNREACHABLE,
        f"cannot connect to Redis at {where} ({detail}): is redis-server running, and is "
        "MAEUL_REDIS_URL right (host, port or socket path)?",
    )


def _redact_redis(url: str) -> str:
    """The URL without its password: redis://user:secret@host → redis://user:***@host, and
    unix:///path?password=secret → unix:///path?password=***."""
    scheme, sep, rest = url.partition("://")
    rest = _PASSWORD_PARAM.sub(r"\1***", rest)
    if not sep or "@" not in rest.split("/", 1)[0]:
        return f"{scheme}{sep}{rest}"
    credentials, _, host = rest.partition("@")
    hidden = f"{credentials.split(':', 1)[0]}:***" if ":" in credentials else "***"
    return f"{scheme}://{hidden}@{host}"


_PASSWORD_PARAM = re.compile(r"([?&]password=)[^&]*")


# Helpers ---------------------------------------------------------------------------------------


def _root(exc: BaseException, types: tuple[type[BaseException], ...]) -> BaseException:
    """The first exception of ``types`` in the cause/context chain (drivers wrap the real one)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, types):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def _os_detail(exc: OSError) -> str:
    # asyncio's "Connect call failed ('127.0.0.1', 5432)" hides the reason; errno holds it.
    if exc.errno is not None and not isinstance(exc, socket.gaierror):
        return os.strerror(exc.errno)
    return exc.strerror or _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
