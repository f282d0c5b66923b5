"""A meeting's record for reading and taking away: the record page, its JSON and CSV, the recording
files, and the iCalendar feeds of officials and kiosks."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging

from aiohttp import web

from server.auth.roles import Role
from server.db import transaction, utcnow
from server.errors import NotFound
from server.geo.models import Village
from server.keys import SESSIONMAKER, SETTINGS
from server.meetings import ics, service
from server.meetings import recordings as meeting_recordings
from server.meetings.record import record_csv_rows, record_data
from server.rendering import render
from server.routing import allow, principal_of
from server.spreadsheet import formula_safe
from server.validation import path_id

log = logging.getLogger(__name__)


@allow(Role.ADMIN, Role.OFFICIAL)
async def recording_file(request: web.Request) -> web.StreamResponse:
    """One recording file (WebM), for those who may see the meeting's record; Range requests work."""
    meeting_id, recording_id = path_id(request, "meeting_id"), path_id(request, "recording_id")
    async with transaction(request.app[SESSIONMAKER]) as session:
        await service.get_visible(session, principal_of(request), meeting_id)
        recordings = await meeting_recordings.recordings_of(session, meeting_id)
        recording = next((r for r in recordings if r.id == recording_id), None)
        if recording is None:
            raise NotFound("no such recording", code="recording_not_found")
        relative = recording.path
    data_dir = request.app[SETTINGS].data_dir.resolve()
    path = (data_dir / relative).resolve()
    if not path.is_relative_to(data_dir) or not path.is_file():
        raise NotFound("the recording file is missing", code="recording_not_found")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "video/webm",
            "Content-Disposition": f'inline; filename="{path.name}"',
            "Cache-Control": "private, no-store",
        },
    )


def _ics_response(body: bytes, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, max-age=300",
        },
    )


@allow(Role.ADMIN, Role.OFFICIAL)
async def official_ics(request: web.Request) -> web.Response:
    principal = principal_of(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        meetings = await service.feed_for_official(session, principal.id)
        body = ics.build_calendar(
            meetings,
            name=f"마을 회의 · {principal.display_name}",
            now=utcnow(),
            base_url=f"{request.scheme}://{request.host}",
            link_prefix="/meetings/",
        )
    return _ics_response(body, "meetings.ics")


@allow(Role.KIOSK)
async def kiosk_ics(request: web.Request) -> web.Response:
    principal = principal_of(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        meetings = await service.feed_for_village(session, principal.village_id or 0)
        village = await session.get(Village, principal.village_id or 0)
        name = f"마을 회의 · {village.full_name_ko if village else principal.display_name}"
        body = ics.build_calendar(meetings, name=name, now=utcnow(), base_url="", link_prefix=None)
    return _ics_response(body, "meetings.ics")


@allow(Role.ADMIN, Role.OFFICIAL)
async def record_page(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await service.get_visible(session, principal_of(request), path_id(request, "meeting_id"))
        data = await record_data(session, meeting, principal_of(request))
        return render(request, "meetings/record.html", {"record": data, "meeting": meeting})


@allow(Role.ADMIN, Role.OFFICIAL)
async def record_json(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await service.get_visible(session, principal_of(request), path_id(request, "meeting_id"))
        data = await record_data(session, meeting, principal_of(request))
    body = json.dumps(data, default=_json_default, ensure_ascii=False, indent=2)
    return web.Response(
        text=body,
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="meeting-{meeting.id}-record.json"'},
    )


@allow(Role.ADMIN, Role.OFFICIAL)
async def record_csv(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await service.get_visible(session, principal_of(request), path_id(request, "meeting_id"))
        data = await record_data(session, meeting, principal_of(request))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in record_csv_rows(data):
        # Titles, minutes, names and petition titles are typed by people: no cell runs as a formula.
        writer.writerow([formula_safe(cell) for cell in row])
    # A byte-order mark so that spreadsheet programs open the Korean text as UTF-8.
    return web.Response(
        body=("\ufeff" + buffer.getvalue()).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="meeting-{meeting.id}-record.csv"'},
    )


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
