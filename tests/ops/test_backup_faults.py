"""Backups that must fail, and fail clearly: a full disk under the snapshot (a small tmpfs in a
mount namespace of its own, as tests/faults does), a restore into a target that holds data, and a
truncated, altered or unfinished snapshot, which verify-backup names and restore refuses."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.config import PROJECT_ROOT
from server.ops import backup
from tests.ops.backup_steps import operator, server_on
from tests.petitions.live import LiveServer, prepare

TMPFS = "2m"


@pytest.fixture
def source(empty_db_url: str, tmp_path: Path) -> LiveServer:
    """A seeded database and data directory with a resident's message 3 MiB large."""
    server = prepare(tmp_path / "source", database_url=empty_db_url)
    folder = server.data_dir / "media" / "petitions" / "2026"
    folder.mkdir(parents=True)
    (folder / "message.webm").write_bytes(os.urandom(3 * 1024 * 1024))
    (folder / "photo.jpg").write_bytes(os.urandom(4096))
    return server


def test_backup_to_a_full_disk_is_a_clear_error_and_leaves_no_snapshot(
    source: LiveServer, tmp_path: Path
) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    script = (
        f'mount -t tmpfs -o size={TMPFS} tmpfs "$0" || exit 99\n'
        f'"{sys.executable}" run.py backup --to "$0/snap"; echo "backup_rc=$?"\n'
        'echo "left=$(ls -A "$0")"\n'
        f'"{sys.executable}" run.py verify-backup "$0/snap"; echo "verify_rc=$?"\n'
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, str(mount)],
        cwd=PROJECT_ROOT,
        env=source.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "backup_rc=1" in lines, done.stdout + done.stderr
    assert "No space left on device" in done.stderr and "no snapshot was made" in done.stderr, done.stderr
    assert "left=" in lines  # the half-written snapshot is gone
    assert "verify_rc=1" in lines
    assert "has no manifest.json" in done.stderr


def _snapshot(source: LiveServer, tmp_path: Path) -> Path:
    snapshot = tmp_path / "snapshot"
    done = operator(source.env, "backup", "--to", str(snapshot))
    assert done.returncode == 0, done.stderr
    return snapshot


def _restore_target(source: LiveServer, tmp_path: Path, empty_db_url: str) -> LiveServer:
    # A fresh data directory on the source's database would be "not empty" already; for damaged
    # snapshots the refusal must come first (before any emptiness check), so any target does.
    return server_on(source, empty_db_url, tmp_path / "elsewhere" / "data")


def test_restore_into_a_target_holding_data_is_refused(
    source: LiveServer, tmp_path: Path, empty_db_url: str
) -> None:
    snapshot = _snapshot(source, tmp_path)
    # The source itself: its media and its tables.
    done = operator(source.env, "restore", "--from", str(snapshot))
    assert done.returncode == 1
    assert "refusing to restore into a target that is not empty" in done.stderr
    assert "media/petitions/2026/message.webm" in done.stderr
    # A new data directory but the source's (migrated) database: still refused, by its tables.
    target = _restore_target(source, tmp_path, empty_db_url)
    done = operator(target.env, "restore", "--from", str(snapshot))
    assert done.returncode == 1 and "table " in done.stderr, done.stderr
    assert not any(p.is_file() for p in (target.data_dir / "media").rglob("*"))


@pytest.mark.parametrize("damage", ["truncated", "altered", "missing", "unfinished"])
def test_damaged_snapshot_is_named_by_verify_and_refused_by_restore(
    source: LiveServer, tmp_path: Path, empty_db_url: str, damage: str
) -> None:
    snapshot = _snapshot(source, tmp_path)
    assert operator(source.env, "verify-backup", str(snapshot)).returncode == 0
    message = snapshot / "media" / "petitions" / "2026" / "message.webm"
    if damage == "truncated":
        os.truncate(message, 1000)
        expected = "truncated: media/petitions/2026/message.webm (1000 of 3145728 bytes)"
    elif damage == "altered":
        with open(message, "r+b") as f:
            f.seek(2_000_000)
            byte = f.read(1)
            f.seek(2_000_000)
            f.write(bytes([byte[0] ^ 0xFF]))
        expected = "altered: media/petitions/2026/message.webm"
    elif damage == "missing":
        db_file = next(p for p in snapshot.iterdir() if p.name.startswith("database."))
        db_file.unlink()
        expected = f"missing: {db_file.name}"
    else:
        (snapshot / "manifest.json").unlink()  # as a backup killed before it finished leaves it
        expected = "has no manifest.json"
    done = operator(source.env, "verify-backup", str(snapshot))
    assert done.returncode == 1 and expected in done.stderr, done.stderr
    target = server_on(
        source, f"sqlite+aiosqlite:///{tmp_path / 'elsewhere' / 'maeul.db'}", tmp_path / "elsewhere"
    )
    shutil.rmtree(target.data_dir, ignore_errors=True)
    done = operator(target.env, "restore", "--from", str(snapshot))
    assert done.returncode == 1 and expected in done.stderr, done.stderr
    assert not any(p.is_file() and p.stat().st_size for p in target.data_dir.rglob("*")), "restore wrote data"


def test_an_interrupted_restore_is_finished_by_running_it_again(
    source: LiveServer, tmp_path: Path, db_backend: str
) -> None:
    if db_backend != "sqlite":
        pytest.skip("the marker and the files behave alike on both; the database step is the same call")
    snapshot = _snapshot(source, tmp_path)
    target = server_on(source, f"sqlite+aiosqlite:///{tmp_path / 'again' / 'maeul.db'}", tmp_path / "again")
    # What a restore killed while copying leaves: its marker and a half-copied message.
    half = target.data_dir / "media" / "petitions" / "2026" / "message.webm"
    half.parent.mkdir(parents=True)
    half.write_bytes((snapshot / "media/petitions/2026/message.webm").read_bytes()[:1000])
    without_marker = operator(target.env, "restore", "--from", str(snapshot))
    assert without_marker.returncode == 1 and "not empty" in without_marker.stderr
    (target.data_dir / ".restore-in-progress").write_text("restoring\n")
    done = operator(target.env, "restore", "--from", str(snapshot))
    assert done.returncode == 0, done.stderr
    assert half.read_bytes() == (snapshot / "media/petitions/2026/message.webm").read_bytes()
    assert not (target.data_dir / ".restore-in-progress").exists()


def test_a_manifest_naming_files_outside_the_snapshot_is_refused(tmp_path: Path) -> None:
    """A tampered manifest must not make restore read (or verify hash) files elsewhere."""
    snapshot = tmp_path / "snap"
    snapshot.mkdir()
    (snapshot / "database.sqlite3").write_bytes(b"")
    for bad in ("../../etc/passwd", "/etc/passwd", "media/../../x"):
        (snapshot / "manifest.json").write_text(
            json.dumps(
                {
                    "format": backup.FORMAT,
                    "version": backup.FORMAT_VERSION,
                    "database": {"kind": "sqlite", "file": "database.sqlite3", "revisions": []},
                    "files": [
                        {"path": "database.sqlite3", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()},
                        {"path": bad, "size": 1, "sha256": "0" * 64},
                    ],
                }
            )
        )
        with pytest.raises(backup.BackupError, match="outside the snapshot"):
            backup.verify(snapshot)
