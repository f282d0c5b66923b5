"""Upgrades on a database holding data: a database built at the first revision and filled as the
county would have filled it (at each revision that added a domain), then ``run.py migrate`` to
head, one step back and up again, on SQLite and PostgreSQL, losing nothing: every row and every
value that existed before is still there. And the server refuses a database newer than its code."""

from __future__ import annotations

import datetime as dt
import functools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from server import migrate
from server.db import close_engine, create_engine
from tests.ops.backup_steps import operator, run_async
from tests.petitions.live import free_port

T0 = dt.datetime(2026, 3, 2, 0, 30, tzinfo=dt.UTC)

# Realistic rows, added at the revision whose schema first has their table. Columns not named get
# a plain value of their type (see _complete), so the fixture keeps up with NOT NULL columns.
STEPS: list[tuple[str, dict[str, list[dict[str, Any]]]]] = [
    (
        "0001",
        {
            "geo_divisions": [{"id": 1, "name_ko": "강진읍", "name_en": "Gangjin-eup", "kind": "eup"}],
            "geo_villages": [
                {"id": 1, "division_id": 1, "name_ko": "남성리"},
                {"id": 2, "division_id": 1, "name_ko": "서성리"},
            ],
            "org_departments": [
                {"id": 1, "name_ko": "민원과", "name_en": "Civil Affairs", "is_active": True}
            ],
            "auth_accounts": [
                {"id": 1, "username": "admin", "display_name": "관리자", "role": "admin", "is_active": True},
                {
                    "id": 2,
                    "username": "kim",
                    "display_name": "김민원",
                    "role": "official",
                    "department_id": 1,
                    "is_active": True,
                    "last_login_at": T0,
                },
            ],
            "kiosk_devices": [
                {
                    "id": 1,
                    "village_id": 1,
                    "label": "남성리 마을회관",
                    "token_hash": "a" * 64,
                    "enrolled_at": T0,
                }
            ],
        },
    ),
    (
        "0002",
        {
            "petitions": [
                {
                    "id": n,
                    "receipt_no": f"2026-{n:05d}",
                    "receipt_year": 2026,
                    "receipt_seq": n,
                    "village_id": 1,
                    "kiosk_id": 1,
                    "petition_type": "grievance",
                    "department_id": 1,
                    "status": status,
                    "title": title,
                    "body": "밤에 너무 어두워서 다니기 무서워요.",
                    "resident_name": "박순자",
                    "resident_phone": "010-1234-5678",
                    "pin_hash": "argon2$" + "p" * 40,
                    "received_at": T0 + dt.timedelta(days=n),
                    "due_at": T0 + dt.timedelta(days=n + 14),
                    "closed_at": T0 + dt.timedelta(days=n + 3) if status == "closed" else None,
                    "answer_text": "수리했습니다." if status == "closed" else None,
                }
                for n, status, title in (
                    (1, "closed", "마을 앞 가로등이 고장났어요"),
                    (2, "received", "버스 정류장 지붕이 샙니다"),
                    (3, "in_progress", "경로당 난방이 안 돼요"),
                )
            ],
            "petition_events": [
                {
                    "id": 1,
                    "petition_id": 1,
                    "at": T0,
                    "actor": "kiosk 1",
                    "actor_role": "kiosk",
                    "action": "filed",
                    "details": {"via": "kiosk"},
                },
            ],
            "petition_media": [
                {
                    "id": 1,
                    "petition_id": 1,
                    "kind": "voice",
                    "storage_name": "petitions/2026/ab.webm",
                    "content_type": "audio/webm",
                    "size_bytes": 48213,
                    "sha256": "c" * 64,
                    "duration_s": 12.5,
                }
            ],
            "petition_notes": [
                {"id": 1, "petition_id": 3, "author_id": 2, "author_name": "김민원", "text": "현장 확인"}
            ],
        },
    ),
    (
        "0007",
        {
            "meetings": [
                {
                    "id": 1,
                    "title": "마을 안길 포장 설명회",
                    "purpose": "주민 의견 수렴",
                    "starts_at": T0,
                    "ends_at": T0 + dt.timedelta(hours=1),
                    "chair_id": 2,
                    "status": "ended",
                    "join_mode": "touch",
                    "lobby_mode": "auto_admit",
                    "started_at": T0,
                    "ended_at": T0 + dt.timedelta(minutes=50),
                }
            ],
            "meeting_recordings": [
                {
                    "id": 1,
                    "meeting_id": 1,
                    "participant": "김민원",
                    "path": "recordings/1/a2-0.webm",
                    "started_at": T0,
                    "ended_at": T0 + dt.timedelta(minutes=50),
                    "marks": [{"label": "1", "at": "x"}],
                }
            ],
            "meeting_attendance": [
                {
                    "id": 1,
                    "meeting_id": 1,
                    "kind": "kiosk",
                    "kiosk_id": 1,
                    "name": "남성리 마을회관",
                    "joined_at": T0,
                    "gaps": [],
                    "residents_count": 7,
                }
            ],
        },
    ),
]


def _plain(column: sa.Column[Any]) -> Any:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return 0
    if isinstance(kind, sa.Float | sa.Numeric):
        return 0.0
    if isinstance(kind, sa.DateTime):
        return T0
    if isinstance(kind, sa.Date):
        return T0.date()
    if isinstance(kind, sa.JSON):
        return {}
    return "-"


def _insert(connection: Connection, rows_by_table: dict[str, list[dict[str, Any]]]) -> None:
    metadata = sa.MetaData()
    for name, rows in rows_by_table.items():
        table = sa.Table(name, metadata, autoload_with=connection)
        for row in rows:
            complete = {
                c.name: _plain(c)
                for c in table.columns
                if not c.nullable
                and c.server_default is None
                and c.name not in row
                and c.autoincrement is not True
            }
            connection.execute(table.insert().values(**complete, **row))


def _dump(connection: Connection) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    metadata = sa.MetaData()
    metadata.reflect(connection)
    dump: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    for table in metadata.sorted_tables:
        if table.name == "alembic_version":
            continue
        key = list(table.primary_key.columns) or list(table.columns)
        rows = connection.execute(sa.select(table)).mappings()
        dump[table.name] = {
            tuple(r[c.name] for c in key): {k: _normal(v) for k, v in r.items()} for r in rows
        }
    return dump


def _normal(value: Any) -> Any:
    # SQLite hands back naive datetimes; PostgreSQL aware ones. Same instant either way.
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


async def _run(url: str, work: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await close_engine(engine)


def _migrate(url: str, *args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAEUL_")} | {
        "MAEUL_ENV": "test",
        "MAEUL_SECRET_KEY": "upgrade-test-" + "u" * 40,
        "MAEUL_DATABASE_URL": url,
        "MAEUL_HOST": "127.0.0.1",
        "MAEUL_PORT": str(free_port()),
    }
    if data_dir is not None:
        env["MAEUL_DATA_DIR"] = str(data_dir)
    # A server that wrongly starts is stopped by the timeout (and the test fails).
    return operator(env, *args, timeout=120)


def _lost(before: dict[str, Any], after: dict[str, Any]) -> Iterator[str]:
    for table, rows in before.items():
        if table not in after:
            yield f"table {table} is gone"
            continue
        for key, row in rows.items():
            now = after[table].get(key)
            if now is None:
                yield f"{table} {key} is gone"
                continue
            for column, value in row.items():
                if now.get(column, "<dropped>") != value:
                    yield f"{table} {key} {column}: {value!r} -> {now.get(column, '<dropped>')!r}"


def test_migrate_a_filled_first_revision_database_to_head_down_and_up(empty_db_url: str) -> None:
    for revision, rows in STEPS:
        migrate.upgrade(empty_db_url, revision)
        run_async(functools.partial(_run, empty_db_url, functools.partial(_insert, rows_by_table=rows)))
    before = run_async(lambda: _run(empty_db_url, _dump))
    assert sum(len(r) for r in before.values()) >= 15

    done = _migrate(empty_db_url, "migrate")
    assert done.returncode == 0, done.stderr
    at_head = run_async(lambda: _run(empty_db_url, _dump))
    assert list(_lost(before, at_head)) == []

    script = ScriptDirectory.from_config(migrate.alembic_config(empty_db_url))
    head = script.get_current_head()
    assert head is not None
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    done = _migrate(empty_db_url, "migrate", "--downgrade", previous)
    assert done.returncode == 0, done.stderr
    assert migrate.current_revisions(empty_db_url) == (previous,)
    assert list(_lost(before, run_async(lambda: _run(empty_db_url, _dump)))) == []

    done = _migrate(empty_db_url, "migrate")
    assert done.returncode == 0, done.stderr
    assert migrate.current_revisions(empty_db_url) == (head,)
    # Back at head: everything, including what the last revision added, is as it was.
    assert list(_lost(at_head, run_async(lambda: _run(empty_db_url, _dump)))) == []


def test_server_refuses_a_database_newer_than_its_code(db_url: str, tmp_path: Path) -> None:
    async def from_the_future(url: str) -> None:
        await _run(url, lambda c: c.execute(sa.text("UPDATE alembic_version SET version_num = '0999'")))

    run_async(lambda: from_the_future(db_url))
    for args in (["serve"], ["serve", "--no-migrate"], ["migrate"]):
        done = _migrate(db_url, *args, data_dir=tmp_path)
        assert done.returncode == 1, (args, done.stdout, done.stderr[-2000:])
        assert "schema revision 0999, which this version of Maeul does not know" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert "serving at" not in done.stdout
