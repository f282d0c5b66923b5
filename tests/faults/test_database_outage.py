"""PostgreSQL stopped for 20 s (``pg_ctl stop -m immediate``) under a real server process with five
kiosks filing requests, and a meeting that comes due during the outage.

Every filing gets an answer: 201, or 503 with Retry-After and a Korean message; never a 500, never
a hang. Every 201 is in the database afterwards. The meeting clock survives, logs the streak once,
opens the meeting within 5 s of the database's return, and SIGTERM afterwards exits 0.
Prints the figures for the issue's closing note (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from server.auth.models import Account
from server.auth.roles import Principal, Role
from server.db import close_engine, create_engine, make_sessionmaker, transaction, utcnow
from server.meetings import service as meetings
from server.meetings.models import Meeting
from server.petitions.models import Petition
from tests.conftest import _pg_execute
from tests.petitions.conftest import BASIC
from tests.petitions.live import LiveServer, prepare
from tests.pg import PostgresServer, running_postgres

OUTAGE_SECONDS = 20.0
KIOSKS = 5
PAUSE_SECONDS = 0.25  # between one kiosk's filings
LIVE_WITHIN_SECONDS = 5.0


@dataclass
class Answer:
    sent: float
    status: int  # -1: no HTTP answer at all (refused, reset, timed out)
    retry_after: str | None
    body: Any


async def _file_until(stop: asyncio.Event, base_url: str, token: str, answers: list[Answer]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout) as http:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                async with http.post(f"{base_url}/api/v1/kiosk/petitions", json=BASIC, headers=headers) as r:
                    raw = await r.read()
                    body = json.loads(raw) if r.content_type == "application/json" else raw.decode()
                    answers.append(Answer(sent, r.status, r.headers.get("Retry-After"), body))
            except (aiohttp.ClientError, TimeoutError) as exc:
                answers.append(Answer(sent, -1, None, repr(exc)))
            await asyncio.sleep(PAUSE_SECONDS)


async def _schedule_meeting_due_in(database_url: str, seconds: float) -> int:
    engine = create_engine(database_url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            rows = (await session.execute(select(Account.username, Account.id))).all()
            ids = {name: id_ for name, id_ in rows}
            start = utcnow() + dt.timedelta(seconds=seconds)
            result = await meetings.schedule_meeting(
                session,
                Principal(Role.ADMIN, ids["admin"], "관리자"),
                meetings.MeetingDraft(
                    title="정전 중 회의",
                    starts_at=start,
                    ends_at=start + dt.timedelta(hours=1),
                    chair_id=ids["official"],
                ),
            )
            return result.meeting.id
    finally:
        await close_engine(engine)


async def _meeting_status(database_url: str, meeting_id: int) -> str | None:
    engine = create_engine(database_url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            return await session.scalar(select(Meeting.status).where(Meeting.id == meeting_id))
    except OSError:
        return None
    finally:
        await close_engine(engine)


async def _stored_receipts(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            return set((await session.scalars(select(Petition.receipt_no))).all())
    finally:
        await close_engine(engine)


async def _get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


async def _seconds_until_live(database_url: str, meeting_id: int, since: float) -> float:
    deadline = since + 60
    while time.monotonic() < deadline:
        if await _meeting_status(database_url, meeting_id) == "live":
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    raise AssertionError("the meeting never went live after the database came back")


def _log_lines(server: LiveServer) -> list[dict[str, Any]]:
    lines = []
    for raw in (server.data_dir / "server.log").read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            lines.append({"level": "raw", "msg": raw})
    return lines


async def _outage(pg: PostgresServer, server: LiveServer, database_url: str) -> dict[str, Any]:
    tokens = [server.seeded.kiosk_token, *server.seeded.extra_kiosk_tokens]
    answers: list[Answer] = []
    stop = asyncio.Event()
    loops = [asyncio.create_task(_file_until(stop, server.base_url, t, answers)) for t in tokens]
    await asyncio.sleep(3)
    meeting_id = await _schedule_meeting_due_in(database_url, 4)  # due 4 s into the outage
    down_at = time.monotonic()
    await asyncio.to_thread(pg.stop, "immediate", check=True)
    await asyncio.sleep(OUTAGE_SECONDS / 2)
    ready_during = await _get_json(server.base_url + "/readyz")
    await asyncio.sleep(down_at + OUTAGE_SECONDS - time.monotonic())
    await asyncio.to_thread(pg.start)
    up_at = time.monotonic()
    live_after = await _seconds_until_live(database_url, meeting_id, up_at)
    await asyncio.sleep(3)  # filings go on after the return
    stop.set()
    await asyncio.gather(*loops)
    ready_after = await _get_json(server.base_url + "/readyz")
    return {
        "answers": answers,
        "down_at": down_at,
        "up_at": up_at,
        "live_after": live_after,
        "ready_during": ready_during,
        "ready_after": ready_after,
    }


async def test_filing_and_the_meeting_clock_through_a_database_outage(tmp_path: Path) -> None:
    with running_postgres(durable_commits=True) as pg:
        await _pg_execute(pg.url, 'CREATE DATABASE "maeul"')
        database_url = f"{pg.url}/maeul"
        server = await asyncio.to_thread(
            prepare, tmp_path, database_url=database_url, extra_kiosks=KIOSKS - 1
        )
        server.env.update(MAEUL_LOG_LEVEL="INFO", MAEUL_LOG_JSON="true", MAEUL_KIOSK_FILINGS_PER_HOUR="10000")
        await asyncio.to_thread(server.start)
        try:
            run = await _outage(pg, server, database_url)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(server.process.wait, 30)
        finally:
            server.stop()
        stored = await _stored_receipts(database_url)

    answers: list[Answer] = run["answers"]
    by_status: dict[int, int] = {}
    for answer in answers:
        by_status[answer.status] = by_status.get(answer.status, 0) + 1
    during = [a for a in answers if run["down_at"] <= a.sent < run["up_at"]]
    errors_500 = [a for a in answers if a.status >= 500 and a.status != 503]
    unanswered = [a for a in answers if a.status == -1]
    acknowledged = {a.body["petition"]["receipt_no"] for a in answers if a.status == 201}
    lost = acknowledged - stored
    first_ok = min((a.sent for a in answers if a.status == 201 and a.sent >= run["up_at"]), default=None)
    back_after = None if first_ok is None else first_ok - run["up_at"]
    print(
        f"\nFIGURES database outage {OUTAGE_SECONDS:.0f} s, {KIOSKS} kiosks filing: "
        f"answers {by_status}; 500s {len(errors_500)}; "
        f"requests without an answer {len(unanswered)}; acknowledged {len(acknowledged)}, lost {len(lost)}; "
        f"first successful filing {back_after:.2f} s after the database returned; "
        f"meeting due during the outage live {run['live_after']:.2f} s after; SIGTERM exit code {exit_code}"
        if back_after is not None
        else f"\nFIGURES no filing succeeded after the outage: {by_status}"
    )

    assert errors_500 == [], errors_500[:3]
    assert unanswered == [], unanswered[:3]
    assert lost == set()
    refused = [a for a in during if a.status == 503]
    assert refused, f"the outage was not seen: {by_status}"
    for answer in refused:
        assert answer.retry_after is not None and int(answer.retry_after) > 0
        assert answer.body["error"]["code"] == "database_unavailable"
        assert "데이터베이스" in answer.body["error"]["display"]
    assert back_after is not None and back_after < 10
    assert run["live_after"] <= LIVE_WITHIN_SECONDS
    status, ready = run["ready_during"]
    assert status == 503 and ready["database"] == "unreachable"
    status, ready = run["ready_after"]
    assert status == 200 and ready["clock"]["status"] == "ok", ready
    assert exit_code == 0

    logs = _log_lines(server)
    clock_errors = [e for e in logs if e.get("level") == "error" and "meeting clock" in e.get("msg", "")]
    assert len(clock_errors) == 1, clock_errors  # once per streak, not once per tick
    assert any(e.get("level") == "info" and "meeting clock works again" in e["msg"] for e in logs)
    assert not [e for e in logs if e.get("msg") in ("unhandled error", "request failed")]
