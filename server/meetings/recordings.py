"""A meeting's recordings: the files the hub's recorder finished are registered for the record
(with their chapter marks and the participants' names), and listed for the record page.

Functions take the caller's ``AsyncSession`` and never commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtc.recorded import Mark, RecordedFile
from server.auth.participant_ids import account_participant_id, kiosk_participant_id, parse_participant_id
from server.errors import BadRequest
from server.kiosks.models import Kiosk
from server.meetings.models import (
    Recording,
)
from server.meetings.service import account_names, get_meeting, meeting_for_room

log = logging.getLogger(__name__)


async def register_recording(
    session: AsyncSession,
    meeting_id: int,
    *,
    participant: str,
    path: str,
    started_at: dt.datetime,
    ended_at: dt.datetime | None = None,
    marks: Sequence[dict[str, Any]] = (),
) -> Recording:
    """Register a recording file written by the recorder (``path`` relative to the data directory)."""
    await get_meeting(session, meeting_id)
    if path.startswith("/") or ".." in path.split("/"):
        raise BadRequest("a recording path is relative to the data directory", code="invalid_recording_path")
    if ended_at is not None and ended_at < started_at:
        raise BadRequest("a recording ends after it starts", code="invalid_recording_times")
    recording = Recording(
        meeting_id=meeting_id,
        participant=participant[:120],
        path=path,
        started_at=started_at,
        ended_at=ended_at,
        marks=list(marks),
    )
    session.add(recording)
    await session.flush()
    return recording


async def _participant_names(session: AsyncSession, pids: set[str]) -> dict[str, str]:
    """Display names for SFU participant ids (``a<account id>``, ``k<kiosk id>``)."""
    parsed = [known for pid in pids if (known := parse_participant_id(pid)) is not None]
    account_ids = {i for kind, i in parsed if kind == "a"}
    kiosk_ids = {i for kind, i in parsed if kind == "k"}
    names = {account_participant_id(i): n for i, n in (await account_names(session, account_ids)).items()}
    if kiosk_ids:
        for kiosk in (await session.scalars(select(Kiosk).where(Kiosk.id.in_(kiosk_ids)))).all():
            names[kiosk_participant_id(kiosk.id)] = kiosk.label
    return names


async def register_room_recording(
    session: AsyncSession,
    room_id: int,
    files: Sequence[RecordedFile],
    marks: Sequence[Mark],
    data_dir: Path,
) -> tuple[int | None, list[dict[str, Any]]]:
    """Register every file of a finished room recording for the meeting that owns the room; returns
    (meeting id, one summary per registered file). A room without a meeting registers nothing."""
    meeting = await meeting_for_room(session, room_id)
    if meeting is None:
        log.warning("recording of a room without a meeting", extra={"room_id": room_id, "files": len(files)})
        return None, []
    marked = [({"label": m.label, "at": m.at.isoformat(), "offset": round(m.offset, 3)}, m.at) for m in marks]
    names = await _participant_names(session, {f.participant_id for f in files})
    registered: list[dict[str, Any]] = []
    for f in files:
        try:
            relative = f.path.relative_to(data_dir).as_posix()  # the hub records under data_dir
        except ValueError:
            log.error("recording outside the data directory", extra={"path": str(f.path)})
            continue
        name = names.get(f.participant_id, f.participant_id)
        recording = await register_recording(
            session,
            meeting.id,
            participant=name,
            path=relative,
            started_at=f.started_at,
            ended_at=f.ended_at,
            marks=[m for m, at in marked if at <= f.ended_at],
        )
        registered.append(
            {
                "id": recording.id,
                "participant": name,
                "duration": round(f.duration, 3),
                "has_audio": f.has_audio,
                "has_video": f.has_video,
                "url": f"/meetings/{meeting.id}/recordings/{recording.id}",
            }
        )
    log.info("meeting recording registered", extra={"meeting_id": meeting.id, "files": len(registered)})
    return meeting.id, registered


async def recordings_of(session: AsyncSession, meeting_id: int) -> Sequence[Recording]:
    stmt = (
        select(Recording)
        .where(Recording.meeting_id == meeting_id)
        .order_by(Recording.started_at, Recording.id)
    )
    return (await session.scalars(stmt)).all()
