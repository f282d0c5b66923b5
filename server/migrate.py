"""Run Alembic migrations from code (``run.py migrate``, start-up of ``make run``, tests), and
refuse a database that a newer Maeul has migrated past what this code knows."""

from __future__ import annotations

import asyncio
import concurrent.futures

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from server.config import PROJECT_ROOT
from server.db import close_engine, create_engine
from server.errors import ConfigError


class UnknownRevision(ConfigError):
    """The database is at a schema revision this code has no migration for (a newer Maeul)."""


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["skip_logging_config"] = True
    return cfg


def _read_revisions(connection: Connection) -> tuple[str, ...]:
    if not inspect(connection).has_table("alembic_version"):
        return ()
    return tuple(
        sorted(str(r) for r in connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    )


async def _current(database_url: str) -> tuple[str, ...]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_read_revisions)
    finally:
        await close_engine(engine)


def current_revisions(database_url: str) -> tuple[str, ...]:
    """The revisions recorded in the database (empty for a database never migrated). Blocking;
    runs its own event loop on a thread, so it may be called with or without a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _current(database_url)).result()


def check_known(database_url: str) -> None:
    """Raise UnknownRevision when the database is newer than this code: serving it (or migrating
    it) would run old code on a schema it does not understand."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = [rev for rev in current_revisions(database_url) if rev not in known]
    if unknown:
        raise UnknownRevision(
            f"the database is at schema revision {', '.join(unknown)}, which this version of Maeul"
            f" does not know (its newest is {script.get_current_head()}): a newer Maeul has upgraded"
            " it. Run that newer version, or restore a backup taken before the upgrade"
            " (run.py restore); this version refuses to start on it"
        )


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking: call from a thread when an event loop is running (env.py runs its own loop)."""
    check_known(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    check_known(database_url)
    command.downgrade(alembic_config(database_url), revision)
