"""``run.py backup`` and ``run.py verify-backup``: a consistent snapshot of a running Maeul.

A snapshot is a directory::

    manifest.json          written last: a directory without it is not a snapshot
    database.sqlite3       SQLite's online backup API (a consistent copy while the server writes)
      or database.pgdump   ``pg_dump -Fc`` (one transaction: consistent as well)
    media/…                residents' recorded messages, photos, notices' media
    recordings/…           meeting recordings

The database is copied first, then the files. A stored file gets its final name before the row
that names it is committed (``petitions.storage.commit_file``) and is never rewritten, so every
file the copied database names is already there when the files are copied; files of filings that
arrive later are copied too but nothing in the snapshot refers to them.

The manifest lists every file with its size and SHA-256; ``verify`` names each file that is
missing, truncated or altered. The secret key is not part of a snapshot: keep it with the
configuration (a stolen backup disk should not carry it).
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.engine import make_url

from server import migrate
from server.config import Settings
from server.db import PRIVATE_SUBDIRS, sqlite_path
from server.durable import fsync_dir
from server.errors import MaeulError

log = logging.getLogger(__name__)

FORMAT = "maeul-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
CHUNK = 1024 * 1024
# Media uploads still being received: not part of any request yet.
SKIPPED_DIRS = ("media/tmp",)


class BackupError(MaeulError):
    """A snapshot could not be taken, checked or restored; the message says what to do."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the snapshot, POSIX separators
    size: int
    sha256: str


def pg_tool(name: str) -> str:
    """The newest installed PostgreSQL client program (Debian keeps them per version under
    /usr/lib/postgresql; pg_dump must be at least as new as the server)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    which = shutil.which(name)
    if which:
        return which
    raise BackupError(f"{name} is not installed: install Debian's postgresql-client package")


def run_pg_tool(name: str, database_url: str, *args: str, failed: str) -> None:
    """Run pg_dump or pg_restore against the database of ``database_url``; BackupError(``failed``
    and the tool's own words) when it fails. The password goes in PGPASSWORD, never on the command
    line (other users can read command lines)."""
    url = make_url(database_url)
    connection = ["--host", url.host or "localhost", "--port", str(url.port or 5432)]
    if url.username:
        connection += ["--username", url.username]
    connection += ["--dbname", url.database or "postgres"]
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    # The program is found in Debian's fixed folders and the arguments are ours, not user input.
    done = subprocess.run(  # noqa: S603
        [pg_tool(name), *connection, *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BackupError(f"{failed}: {done.stderr.strip()[-1000:]}")


def safe_relative(path: str) -> PurePosixPath:
    """A manifest path as a relative path inside the snapshot; refuses anything that escapes."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or not pure.parts or ".." in pure.parts or "\\" in path:
        raise BackupError(f"the manifest names a file outside the snapshot: {path!r}")
    return pure


def copy_hashed(source: Path, target: Path) -> FileEntry:
    """Copy a file durably, hashing the bytes written (a file still growing, like a live recording,
    is copied as far as it was when read)."""
    digest = hashlib.sha256()
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, open(target, "wb") as out:
        while chunk := src.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return FileEntry("", size, digest.hexdigest())


def hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _data_files(data_dir: Path) -> Iterator[tuple[Path, str]]:
    for area in PRIVATE_SUBDIRS:
        root = data_dir / area
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(data_dir).as_posix()
            if path.is_file() and not any(relative.startswith(s + "/") for s in SKIPPED_DIRS):
                yield path, relative


def _snapshot_sqlite(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupError(f"the SQLite database {source} does not exist")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        out = sqlite3.connect(target)
        try:
            # Copies in steps, restarting when the server writes between steps: the result is one
            # consistent state of the database, never a torn one.
            src.backup(out, pages=1024)
        finally:
            out.close()
    finally:
        src.close()
    with open(target, "rb+") as f:
        os.fsync(f.fileno())


def _snapshot_postgres(database_url: str, target: Path) -> None:
    run_pg_tool(
        "pg_dump",
        database_url,
        "--format=custom",
        "--no-owner",
        "--no-privileges",
        "--file",
        str(target),
        failed="pg_dump failed",
    )
    with open(target, "rb+") as f:
        os.fsync(f.fileno())


def _prepare_destination(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} is not empty: back up into a new directory (one per snapshot)")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)


def backup(settings: Settings, dest: Path, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Take a snapshot into ``dest`` (absent or empty); return the manifest. On any failure
    (a full disk, pg_dump refusing) what was written is removed and BackupError says why."""
    _prepare_destination(dest)
    try:
        return _write_snapshot(settings, dest, now or dt.datetime.now(dt.UTC))
    except (OSError, sqlite3.Error, BackupError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f" writing {exc.filename}" if isinstance(exc, OSError) and exc.filename else ""
        raise BackupError(
            f"backup failed{where}: {reason}; the incomplete snapshot in {dest} was removed"
            " (no snapshot was made)"
        ) from exc


def _write_snapshot(settings: Settings, dest: Path, now: dt.datetime) -> dict[str, Any]:
    revisions = migrate.current_revisions(settings.database_url)
    database = sqlite_path(settings.database_url)
    if database is not None:
        kind, name = "sqlite", SQLITE_FILE
        _snapshot_sqlite(database, dest / name)
    else:
        kind, name = "postgresql", PG_FILE
        _snapshot_postgres(settings.database_url, dest / name)
    size, sha = hash_file(dest / name)
    files = [FileEntry(name, size, sha)]
    for source, relative in _data_files(settings.data_dir):
        try:
            entry = copy_hashed(source, dest / relative)
        except FileNotFoundError as exc:
            if exc.filename == str(source):
                continue  # removed since listed (a purge); nothing in the snapshot names it
            raise
        files.append(FileEntry(relative, entry.size, entry.sha256))
    for folder in {(dest / f.path).parent for f in files}:
        fsync_dir(folder)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created_at": now.isoformat(),
        "database": {"kind": kind, "file": name, "revisions": list(revisions)},
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files],
    }
    partial = dest / (MANIFEST + ".partial")
    with open(partial, "w", encoding="utf-8") as out:
        json.dump(manifest, out, ensure_ascii=False, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, dest / MANIFEST)  # the snapshot exists from this rename on
    fsync_dir(dest)
    log.info("backup written", extra={"files": len(files), "bytes": sum(f.size for f in files)})
    return manifest


def load_manifest(snapshot: Path) -> dict[str, Any]:
    path = snapshot / MANIFEST
    if not path.is_file():
        raise BackupError(
            f"{snapshot} has no {MANIFEST}: it is not a Maeul snapshot, or the backup did not finish"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupError(f"{path} is damaged: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a Maeul backup manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise BackupError(
            f"{path} has format version {manifest.get('version')!r}; this Maeul reads {FORMAT_VERSION}"
        )
    return manifest


def verify(snapshot: Path) -> dict[str, Any]:
    """Check every file against the manifest; raise BackupError naming each missing, truncated,
    altered or unexpected file. Returns the manifest when the snapshot is whole."""
    manifest = load_manifest(snapshot)
    problems: list[str] = []
    listed: set[str] = set()
    try:
        entries = [
            (safe_relative(str(e["path"])), int(e["size"]), str(e["sha256"])) for e in manifest["files"]
        ]
        database = manifest["database"]
        kind, db_file = database["kind"], database["file"]
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"{snapshot / MANIFEST} is damaged: {exc!r}") from exc
    if kind not in ("sqlite", "postgresql") or db_file not in {p.as_posix() for p, _s, _h in entries}:
        problems.append("the manifest names no database file")
    for relative, size, sha in entries:
        listed.add(relative.as_posix())
        path = snapshot / relative
        if not path.is_file():
            problems.append(f"missing: {relative}")
            continue
        actual_size, actual_sha = hash_file(path)
        if actual_size < size:
            problems.append(f"truncated: {relative} ({actual_size} of {size} bytes)")
        elif actual_size != size:
            problems.append(f"wrong size: {relative} ({actual_size} bytes, manifest says {size})")
        elif actual_sha != sha:
            problems.append(f"altered: {relative} (SHA-256 differs from the manifest)")
    for path in sorted(snapshot.rglob("*")):
        name = path.relative_to(snapshot).as_posix()
        if path.is_file() and name != MANIFEST and name not in listed:
            problems.append(f"not in the manifest: {name}")
    if problems:
        raise BackupError(f"snapshot {snapshot} is damaged:\n  " + "\n  ".join(problems))
    return manifest
