"""The retention job with a moved clock (``purge(now=…)``), on SQLite and PostgreSQL: names and
phones go 90 days after a request closes, its recorded messages after a year, its audit trail
after two, meeting recordings three years after they were made; a legal hold stops all of it; a
run interrupted halfway loses nothing and the next run finishes it; each run leaves a record."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal, Role
from server.config import Settings
from server.db import transaction, utcnow
from server.errors import BadRequest, NotFound
from server.meetings import recordings as meeting_recordings
from server.meetings import service as meetings
from server.meetings.models import Recording
from server.ops import retention
from server.petitions.models import Petition, PetitionEvent, PetitionMedia
from tests.conftest import login
from tests.world_seed import World

DAY = dt.timedelta(days=1)
_seq = itertools.count(1)


async def _petition(
    session: AsyncSession, world: World, settings: Settings, closed_at: dt.datetime | None
) -> int:
    n = next(_seq)
    petition = Petition(
        receipt_no=f"2026-{n:05d}",
        receipt_year=2026,
        receipt_seq=n,
        village_id=world.village_ids[0],
        department_id=world.department_ids[0],
        petition_type="grievance",
        status="closed" if closed_at else "received",
        title="마을 앞 가로등이 고장났어요",
        body="밤에 너무 어두워요.",
        resident_name="박순자",
        resident_phone="01012345678",
        pin_hash="x",
        received_at=(closed_at or utcnow()) - 5 * DAY,
        due_at=(closed_at or utcnow()) + 9 * DAY,
        closed_at=closed_at,
    )
    session.add(petition)
    await session.flush()
    name = f"petitions/2026/retention-{petition.id}.webm"
    (settings.media_dir / "petitions" / "2026").mkdir(parents=True, exist_ok=True)
    (settings.media_dir / name).write_bytes(b"voice of a resident %d" % petition.id)
    session.add(
        PetitionMedia(
            petition_id=petition.id,
            kind="voice",
            storage_name=name,
            content_type="audio/webm",
            size_bytes=20,
            sha256="0" * 64,
        )
    )
    session.add(
        PetitionEvent(
            petition_id=petition.id,
            at=petition.received_at,
            actor="kiosk",
            actor_role="kiosk",
            action="filed",
            details={},
        )
    )
    return petition.id


async def _meeting_with_recording(
    session: AsyncSession, world: World, settings: Settings, at: dt.datetime
) -> int:
    scheduled = await meetings.schedule_meeting(
        session,
        Principal(Role.ADMIN, world.admin_id, "관리자"),
        meetings.MeetingDraft(
            title="주민 설명회", starts_at=at, ends_at=at + dt.timedelta(hours=1), chair_id=world.official_id
        ),
    )
    mid = scheduled.meeting.id
    folder = settings.data_dir / "recordings" / str(mid)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a2-0.webm").write_bytes(b"meeting recording")
    await meeting_recordings.register_recording(
        session, mid, participant="김민원", path=f"recordings/{mid}/a2-0.webm", started_at=at, ended_at=at
    )
    return mid


async def _state(sessionmaker: Callable[[], AsyncSession], settings: Settings, pid: int) -> dict[str, Any]:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        p = await session.get(Petition, pid)
        assert p is not None
        media = (await session.scalars(select(PetitionMedia).where(PetitionMedia.petition_id == pid))).all()
        events = await session.scalar(select(func.count()).where(PetitionEvent.petition_id == pid))
        return {
            "name": p.resident_name,
            "phone": p.resident_phone,
            "media_rows": len(media),
            "file": (settings.media_dir / f"petitions/2026/retention-{pid}.webm").exists(),
            "events": events,
        }


async def _recording_left(
    sessionmaker: Callable[[], AsyncSession], settings: Settings, mid: int
) -> tuple[int, bool]:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        rows = await session.scalar(select(func.count()).where(Recording.meeting_id == mid))
    return int(rows or 0), (settings.data_dir / "recordings" / str(mid) / "a2-0.webm").exists()


async def test_purge_follows_the_periods_and_respects_holds(
    settings: Settings, sessionmaker: Callable[[], AsyncSession], world: World
) -> None:
    t0 = utcnow().replace(microsecond=0)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        closed = await _petition(session, world, settings, t0)
        held = await _petition(session, world, settings, t0)
        still_open = await _petition(session, world, settings, None)
        kept_meeting = await _meeting_with_recording(session, world, settings, t0)
        held_meeting = await _meeting_with_recording(session, world, settings, t0)
        await retention.set_hold(session, "petition", held, "감사원 감사 진행 중 (2026-감사-12)")
        await retention.set_hold(session, "meeting", held_meeting, "소송 증거 보전")
    full = {"name": "박순자", "phone": "01012345678", "media_rows": 1, "file": True, "events": 1}

    summary = await retention.purge(sessionmaker, settings, now=t0 + 89 * DAY)  # type: ignore[arg-type]
    assert (summary["contacts"], summary["messages"], summary["recordings"]) == ([], [], [])
    assert await _state(sessionmaker, settings, closed) == full

    # What goes in the next 30 days, seen 70 days after closing: the closed request's contact.
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        due = await retention.preview(session, settings, t0 + 70 * DAY)
    assert [(d.kind, d.target_id, d.due_at) for d in due] == [("contact", closed, t0 + 90 * DAY)]

    await retention.purge(sessionmaker, settings, now=t0 + 91 * DAY)  # type: ignore[arg-type]
    assert await _state(sessionmaker, settings, closed) == full | {"name": None, "phone": ""}
    assert await _state(sessionmaker, settings, held) == full
    assert await _state(sessionmaker, settings, still_open) == full

    await retention.purge(sessionmaker, settings, now=t0 + 366 * DAY)  # type: ignore[arg-type]
    assert await _state(sessionmaker, settings, closed) == {
        "name": None,
        "phone": "",
        "media_rows": 0,
        "file": False,
        "events": 1,
    }
    await retention.purge(sessionmaker, settings, now=t0 + 1096 * DAY)  # type: ignore[arg-type]
    assert (await _state(sessionmaker, settings, closed))["events"] == 0
    assert await _recording_left(sessionmaker, settings, kept_meeting) == (0, False)
    assert await _recording_left(sessionmaker, settings, held_meeting) == (1, True)
    assert await _state(sessionmaker, settings, held) == full
    assert await _state(sessionmaker, settings, still_open) == full

    # The hold lifted: the next run catches up with everything overdue.
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await retention.set_hold(session, "petition", held, None)
        await retention.set_hold(session, "meeting", held_meeting, None)
    summary = await retention.purge(sessionmaker, settings, now=t0 + 1097 * DAY)  # type: ignore[arg-type]
    assert summary["contacts"] == [held] and len(summary["messages"]) == 1 and len(summary["recordings"]) == 1
    assert (await _state(sessionmaker, settings, held))["file"] is False
    assert await _recording_left(sessionmaker, settings, held_meeting) == (0, False)

    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        runs = await retention.recent_runs(session)
    # Each run left its record; records older than the audit period went with the audit trail.
    assert all(r.finished_at is not None and r.summary["finished"] for r in runs)
    assert [r.started_at for r in runs] == [t0 + 1097 * DAY, t0 + 1096 * DAY]
    assert [r.summary["runs_removed"] for r in runs] == [1, 2]
    assert runs[0].summary["contacts"] == [held]


async def test_an_interrupted_purge_is_finished_by_the_next_run(
    settings: Settings,
    sessionmaker: Callable[[], AsyncSession],
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t0 = utcnow().replace(microsecond=0)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        pids = [await _petition(session, world, settings, t0) for _ in range(3)]
    real_unlink = retention._unlink_inside
    calls: list[str] = []

    def crash_after_second_file(root: Path, relative: str) -> None:
        calls.append(relative)
        real_unlink(root, relative)
        if len(calls) == 2:  # the file is gone, its row not yet: the worst moment to stop
            raise OSError("power cut")

    monkeypatch.setattr(retention, "_unlink_inside", crash_after_second_file)
    with pytest.raises(OSError, match="power cut"):
        await retention.purge(sessionmaker, settings, now=t0 + 400 * DAY)  # type: ignore[arg-type]
    states = [await _state(sessionmaker, settings, pid) for pid in pids]
    # Two files went, but the batch's row deletions were rolled back with the crash: every row is
    # still there and still marked, so the database never names a file as kept that is gone for
    # good without saying so, and the next run knows what to finish.
    assert [(s["file"], s["media_rows"]) for s in states] == [(False, 1), (False, 1), (True, 1)]
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        marked = await session.scalar(select(func.count()).where(PetitionMedia.purged_at.is_not(None)))
    assert marked == 3

    monkeypatch.setattr(retention, "_unlink_inside", real_unlink)
    summary = await retention.purge(sessionmaker, settings, now=t0 + 400 * DAY)  # type: ignore[arg-type]
    assert len(summary["messages"]) == 3
    for pid in pids:
        assert await _state(sessionmaker, settings, pid) == {
            "name": None,
            "phone": "",
            "media_rows": 0,
            "file": False,
            "events": 1,
        }
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        runs = await retention.recent_runs(session)
    assert [r.summary["finished"] for r in runs] == [True, False]  # the interrupted run says so


async def test_a_hold_placed_between_marking_and_deleting_keeps_the_files(
    settings: Settings,
    sessionmaker: Callable[[], AsyncSession],
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t0 = utcnow().replace(microsecond=0)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        pid = await _petition(session, world, settings, t0)

    async def hold_then_delete(sessions: Any, media_dir: Path) -> list[int]:
        async with transaction(sessions) as session:
            await retention.set_hold(session, "petition", pid, "수사기관 보존 요청")
        return await real(sessions, media_dir)

    real = retention._delete_marked_media
    monkeypatch.setattr(retention, "_delete_marked_media", hold_then_delete)
    summary = await retention.purge(sessionmaker, settings, now=t0 + 400 * DAY)  # type: ignore[arg-type]
    assert summary["messages"] == []
    state = await _state(sessionmaker, settings, pid)
    assert (state["media_rows"], state["file"]) == (1, True)


async def test_hold_needs_a_reason_and_an_existing_target(
    settings: Settings, sessionmaker: Callable[[], AsyncSession], world: World
) -> None:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        pid = await _petition(session, world, settings, None)
        with pytest.raises(BadRequest):
            await retention.set_hold(session, "petition", pid, "   ")
        with pytest.raises(BadRequest):
            await retention.set_hold(session, "account", pid, "이유")
        with pytest.raises(NotFound):
            await retention.set_hold(session, "meeting", 999999, "이유")


async def test_an_erased_request_still_opens_for_officials(
    settings: Settings, sessionmaker: Callable[[], AsyncSession], world: World, client: TestClient
) -> None:
    t0 = utcnow().replace(microsecond=0)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        pid = await _petition(session, world, settings, t0)
    await retention.purge(sessionmaker, settings, now=t0 + 400 * DAY)  # type: ignore[arg-type]
    await login(client, "official")  # of the request's department: sees the phone unmasked
    response = await client.get(f"/api/v1/petitions/{pid}")
    assert response.status == 200, await response.text()
    petition = (await response.json())["petition"]
    assert (petition["resident_phone"], petition["media"]) == ("", [])
    page = await client.get(f"/official/requests/{pid}")
    assert page.status == 200
    assert "01012345678" not in await page.text()
