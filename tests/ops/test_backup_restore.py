"""``run.py backup`` while a real server keeps filing requests, ``run.py restore`` somewhere new,
and a server started on the restored copy: every request acknowledged before the snapshot began,
its recorded message and a meeting's recording come back byte-identical. On SQLite (the online
backup API) and PostgreSQL (pg_dump -Fc)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest

from tests.conftest import _pg_execute
from tests.ops.backup_steps import (
    Filing,
    file_request,
    operator,
    read_back,
    register_recording,
    run_async,
    server_on,
    table_rows,
)
from tests.petitions.conftest import write_voice_clip
from tests.petitions.live import prepare


def _target_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    if db_backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / name / 'data' / 'maeul.db'}"
    base: str = request.getfixturevalue("pg_base_url")
    database = f"{name}_{tmp_path.name[-20:].lower().replace('-', '_')}"
    asyncio.run(_pg_execute(base, f'DROP DATABASE IF EXISTS "{database}"', f'CREATE DATABASE "{database}"'))
    return f"{base}/{database}"


def test_backup_while_filing_then_restore_elsewhere(
    empty_db_url: str, db_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    clips = [write_voice_clip(tmp_path / f"clip{i}.webm", 1.0 + i / 4).read_bytes() for i in range(4)]
    source = prepare(tmp_path / "source", database_url=empty_db_url)
    source.env |= {"MAEUL_KIOSK_FILINGS_PER_HOUR": "10000", "MAEUL_MIN_FREE_MB": "0"}
    meeting_id, recording_id = run_async(lambda: register_recording(empty_db_url, source.data_dir, clips[3]))
    snapshot = tmp_path / "snapshot"

    async def filing_and_backup() -> tuple[list[Filing], float, float]:
        filings = [await file_request(source, f"백업 전 요청 {i}", clips[i % 3]) for i in range(3)]
        stop = asyncio.Event()

        async def keep_filing() -> None:
            n = 0
            while not stop.is_set():
                clip = clips[n % 3] if n % 2 else None
                filings.append(await file_request(source, f"백업 중 요청 {n}", clip))
                n += 1

        loop = asyncio.ensure_future(keep_filing())
        await asyncio.sleep(0.3)
        began = time.monotonic()
        done = await asyncio.to_thread(operator, source.env, "backup", "--to", str(snapshot))
        ended = time.monotonic()
        await asyncio.sleep(0.3)
        stop.set()
        await loop
        assert done.returncode == 0, done.stderr
        return filings, began, ended

    source.start()
    try:
        filings, began, ended = asyncio.run(filing_and_backup())
    finally:
        source.stop()
    before = [f for f in filings if f.acked_at < began]
    # Filings kept arriving while the snapshot was taken: the backup did not stop the server.
    assert len(before) >= 4 and any(began < f.acked_at < ended for f in filings), (
        len(filings),
        len(before),
    )
    assert operator(source.env, "verify-backup", str(snapshot)).returncode == 0

    target_url = _target_url(db_backend, request, tmp_path, "restored")
    target = server_on(source, target_url, tmp_path / "restored" / "data")
    done = operator(target.env, "restore", "--from", str(snapshot))
    assert done.returncode == 0, done.stderr

    # The database rows of every request acknowledged before the snapshot are identical.
    ids = [f.petition_id for f in before]
    source_rows = run_async(lambda: table_rows(empty_db_url, "petitions", ids))
    assert len(source_rows) == len(ids)
    assert run_async(lambda: table_rows(target_url, "petitions", ids)) == source_rows

    target.start()  # waits for GET /healthz
    try:
        seen = asyncio.run(read_back(target, ids))
        for filing, (petition, media) in zip(before, seen, strict=True):
            assert (petition["title"], petition["receipt_no"]) == (filing.title, filing.receipt_no)
            assert media == filing.clip
    finally:
        target.stop()
    restored = target.data_dir / "recordings" / str(meeting_id) / "a2-0.webm"
    assert hashlib.sha256(restored.read_bytes()).digest() == hashlib.sha256(clips[3]).digest()
    assert run_async(lambda: table_rows(target_url, "meeting_recordings", [recording_id])) == run_async(
        lambda: table_rows(empty_db_url, "meeting_recordings", [recording_id])
    )
