"""``run.py restore --from DIR``: a verified snapshot into an EMPTY data directory and database.

Restoring over live data would mix two histories, so a target holding any media, recording or
table is refused. The snapshot is verified first (a damaged one is refused before anything is
written), files are copied and checked again against the manifest as they are written, and the
database comes last. A marker file says a restore is under way: if one is interrupted, running it
again continues into the same target instead of refusing it as not empty.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from server.config import Settings
from server.db import PRIVATE_SUBDIRS, close_engine, create_engine, sqlite_path
from server.durable import fsync_dir
from server.ops.backup import (
    BackupError,
    copy_hashed,
    run_pg_tool,
    safe_relative,
    verify,
)

MARKER = ".restore-in-progress"


def _sqlite_tables(path: Path) -> list[str]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    finally:
        conn.close()


async def _pg_tables_async(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await close_engine(engine)


def _pg_tables(database_url: str) -> list[str]:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _pg_tables_async(database_url)).result()


def _refuse_non_empty(settings: Settings, kind: str) -> None:
    database = sqlite_path(settings.database_url)
    if (database is None) != (kind == "postgresql"):
        raise BackupError(
            f"this snapshot holds a {kind} database but MAEUL_DATABASE_URL names a"
            f" {'PostgreSQL' if database is None else 'SQLite'} one: point it at an empty database"
            " of the snapshot's kind"
        )
    occupied = [
        path.relative_to(settings.data_dir).as_posix()
        for area in PRIVATE_SUBDIRS
        for path in sorted((settings.data_dir / area).rglob("*"))
        if path.is_file()
    ][:5]
    tables = _sqlite_tables(database) if database is not None else _pg_tables(settings.database_url)
    if occupied or tables:
        what = ", ".join([*occupied, *(f"table {t}" for t in tables[:5])])
        raise BackupError(
            f"refusing to restore into a target that is not empty ({what}): restore into a new data"
            " directory (MAEUL_DATA_DIR) and an empty database (MAEUL_DATABASE_URL)"
        )


def _restore_sqlite(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".restoring")
    copy_hashed(source, partial)
    for stale in (target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
        stale.unlink(missing_ok=True)  # of the empty database being replaced
    os.replace(partial, target)
    fsync_dir(target.parent)


def _restore_postgres(source: Path, database_url: str) -> None:
    run_pg_tool(
        "pg_restore",
        database_url,
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        str(source),
        failed="pg_restore failed (nothing was restored)",
    )


def restore(settings: Settings, snapshot: Path) -> dict[str, Any]:
    """Restore ``snapshot`` into the settings' data directory and database; return its manifest."""
    manifest = verify(snapshot)
    database = manifest["database"]
    marker = settings.data_dir / MARKER
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        _refuse_non_empty(settings, str(database["kind"]))
        marker.write_text(f"restoring {snapshot}\n", encoding="utf-8")
    for entry in manifest["files"]:
        relative = safe_relative(str(entry["path"]))
        if relative.as_posix() == database["file"]:
            continue
        written = copy_hashed(snapshot / relative, settings.data_dir / relative)
        if written.sha256 != entry["sha256"]:
            raise BackupError(f"{relative} changed while it was restored; run verify-backup")
    for folder in {(settings.data_dir / str(e["path"])).parent for e in manifest["files"]}:
        if folder.is_dir():
            fsync_dir(folder)
    source = snapshot / str(database["file"])
    sqlite_target = sqlite_path(settings.database_url)
    if sqlite_target is not None:
        _restore_sqlite(source, sqlite_target)
    else:
        _restore_postgres(source, settings.database_url)
    marker.unlink()
    return manifest
