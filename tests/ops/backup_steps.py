"""Steps shared by the backup tests: a real server filing requests, a registered recording, the
operator's commands (``run.py backup|restore|verify-backup``) run as real processes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime as dt
import io
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from sqlalchemy import select, text

from server.auth.models import Account
from server.auth.roles import Principal, Role
from server.config import PROJECT_ROOT
from server.db import close_engine, create_engine, make_sessionmaker, transaction, utcnow
from server.meetings import recordings as meeting_recordings
from server.meetings import service as meetings
from tests.petitions.live import PASSWORD, LiveServer, free_port

T = TypeVar("T")


def run_async(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a loop of its own (the caller may be inside pytest-asyncio's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()  # type: ignore[arg-type]


def operator(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python run.py ARGS`` as the operator runs it, with ``env`` as its whole environment."""
    return subprocess.run(
        [sys.executable, "run.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Filing:
    title: str
    clip: bytes | None
    acked_at: float  # time.monotonic() when the 201 arrived
    petition_id: int
    receipt_no: str


async def file_request(server: LiveServer, title: str, clip: bytes | None) -> Filing:
    form = aiohttp.FormData()
    fields = {
        "petition_type": "grievance",
        "phone": "010-2222-3333",
        "title": title,
        "body": "마을 안길이 파였어요.",
    }
    form.add_field("petition", json.dumps(fields), content_type="application/json")
    if clip is not None:
        form.add_field("media", io.BytesIO(clip), filename="m.webm", content_type="audio/webm")
    headers = {"Authorization": f"Bearer {server.seeded.kiosk_token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.base_url + "/api/v1/kiosk/petitions", data=form, headers=headers) as response,
    ):
        body = await response.json()
        assert response.status == 201, body
    return Filing(title, clip, time.monotonic(), body["petition"]["id"], body["petition"]["receipt_no"])


async def register_recording(database_url: str, data_dir: Path, clip: bytes) -> tuple[int, int]:
    """A meeting with one recording file registered through the meetings service, as the
    recorder does when a room's recording ends; returns (meeting id, recording id)."""
    engine = create_engine(database_url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            ids = {
                name: id_ for name, id_ in (await session.execute(select(Account.username, Account.id))).all()
            }
            start = utcnow() - dt.timedelta(hours=1)
            scheduled = await meetings.schedule_meeting(
                session,
                Principal(Role.ADMIN, ids["admin"], "관리자"),
                meetings.MeetingDraft(
                    title="마을 안길 포장 설명회",
                    starts_at=start,
                    ends_at=start + dt.timedelta(hours=1),
                    chair_id=ids["official"],
                ),
            )
            meeting_id = scheduled.meeting.id
            folder = data_dir / "recordings" / str(meeting_id)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "a2-0.webm").write_bytes(clip)
            recording = await meeting_recordings.register_recording(
                session,
                meeting_id,
                participant="김민원",
                path=f"recordings/{meeting_id}/a2-0.webm",
                started_at=start,
                ended_at=start + dt.timedelta(minutes=30),
            )
            return meeting_id, recording.id
    finally:
        await close_engine(engine)


async def table_rows(database_url: str, table: str, ids: list[int]) -> list[tuple[Any, ...]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))  # noqa: S608 - our names
            return [tuple(r) for r in rows if r[0] in ids]
    finally:
        await close_engine(engine)


def server_on(source: LiveServer, database_url: str, data_dir: Path) -> LiveServer:
    """A second server process, same secret, on another data directory and database."""
    port = free_port()
    env = source.env | {
        "MAEUL_DATABASE_URL": database_url,
        "MAEUL_DATA_DIR": str(data_dir),
        "MAEUL_PORT": str(port),
    }
    return dataclasses.replace(
        source, base_url=f"http://127.0.0.1:{port}", database_url=database_url, data_dir=data_dir, env=env
    )


async def read_back(server: LiveServer, petition_ids: list[int]) -> list[tuple[dict[str, Any], bytes | None]]:
    """Each request as an admin sees it through the API, with its first media file's bytes."""
    found: list[tuple[dict[str, Any], bytes | None]] = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            server.base_url + "/api/v1/session", json={"username": "admin", "password": PASSWORD}
        ) as response:
            assert response.status == 201, await response.text()
        for petition_id in petition_ids:
            async with http.get(f"{server.base_url}/api/v1/petitions/{petition_id}") as response:
                assert response.status == 200, await response.text()
                petition = (await response.json())["petition"]
            media = None
            if petition["media"]:
                async with http.get(server.base_url + petition["media"][0]["url"]) as response:
                    assert response.status == 200
                    media = await response.read()
            found.append((petition, media))
    return found
