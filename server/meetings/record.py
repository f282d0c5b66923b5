"""The record of a meeting as plain data: the record page, its JSON download and its CSV download
all come from ``record_data`` so that they cannot disagree."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal
from server.db import utcnow
from server.meetings import agenda as meeting_agenda
from server.meetings import attendance as meeting_attendance
from server.meetings import recordings as meeting_recordings
from server.meetings import service
from server.meetings.models import Meeting
from server.petitions.workflow import PetitionStatus
from server.timeutil import format_local


async def record_data(session: AsyncSession, meeting: Meeting, viewer: Principal) -> dict[str, Any]:
    """The record as ``viewer`` may read it: a linked request the viewer may not see (another
    department's) shows its receipt number, status and outcome, not its title."""
    presences = await meeting_attendance.attendance_of(session, meeting.id)
    until = meeting.ended_at or min(utcnow(), meeting.ends_at)
    totals = meeting_attendance.attendance_totals(presences, until=until)
    petition_ids = {p.petition_id for item in meeting.agenda for p in item.petitions}
    petitions = await service.petitions_by_id(session, petition_ids)
    visible = await meeting_agenda.visible_petition_ids(session, viewer, petition_ids)
    account_ids = {meeting.chair_id, *(o.account_id for o in meeting.officials)}
    account_ids |= {i.presenter_id for i in meeting.agenda if i.presenter_id is not None}
    account_ids |= {a.owner_id for i in meeting.agenda for a in i.actions if a.owner_id is not None}
    names = await service.account_names(session, account_ids)
    villages = await service.village_names(session, {v.village_id for v in meeting.villages})
    recordings = await meeting_recordings.recordings_of(session, meeting.id)
    return {
        "meeting": {
            "id": meeting.id,
            "title": meeting.title,
            "purpose": meeting.purpose,
            "status": meeting.status,
            "starts_at": meeting.starts_at,
            "ends_at": meeting.ends_at,
            "started_at": meeting.started_at,
            "ended_at": meeting.ended_at,
            "cancelled_at": meeting.cancelled_at,
            "cancel_reason": meeting.cancel_reason,
            "record_closed_at": meeting.record_closed_at,
            "chair": names.get(meeting.chair_id, ""),
            "officials": [names.get(o.account_id, "") for o in meeting.officials],
            "villages": [villages.get(v.village_id, "") for v in meeting.villages],
        },
        "attendance": [
            {
                "kind": t.kind,
                "name": t.name,
                "first_joined_at": t.first_joined_at,
                "last_left_at": t.last_left_at,
                "present_minutes": round(t.present_seconds / 60),
                "gap_seconds": t.gap_seconds,
                "interruptions": t.interruptions,
                "residents_count": t.residents_count,
            }
            for t in totals
        ],
        "agenda": [
            {
                "id": item.id,
                "position": item.position,
                "title": item.title,
                "planned_minutes": item.planned_minutes,
                "presenter": names.get(item.presenter_id) if item.presenter_id else None,
                "notes": item.notes,
                "decisions": item.decisions,
                "actions": [
                    {
                        "text": a.text,
                        "owner": names.get(a.owner_id) if a.owner_id else None,
                        "due_date": a.due_date,
                    }
                    for a in item.actions
                ],
                "petitions": [
                    {
                        "id": link.petition_id,
                        "receipt_no": petitions[link.petition_id].receipt_no,
                        "title": petitions[link.petition_id].title if link.petition_id in visible else "",
                        "hidden": link.petition_id not in visible,
                        "status": petitions[link.petition_id].status,
                        "status_ko": PetitionStatus(petitions[link.petition_id].status).label_ko,
                        "outcome": link.outcome,
                        "outcome_detail": link.outcome_detail,
                    }
                    for link in item.petitions
                    if link.petition_id in petitions
                ],
            }
            for item in meeting.agenda
        ],
        "recordings": [
            {
                "id": r.id,
                "participant": r.participant,
                "path": r.path,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "marks": [_chapter(m) for m in r.marks],
            }
            for r in recordings
        ],
    }


def _chapter(mark: dict[str, Any]) -> dict[str, Any]:
    """A recording mark as a chapter: its label and where it is in the file (seconds, m:ss)."""
    offset = max(0.0, float(mark.get("offset") or 0.0))
    minutes, seconds = divmod(int(offset), 60)
    label = str(mark.get("label", ""))
    return {"label": label, "offset": round(offset, 3), "clock": f"{minutes}:{seconds:02d}"}


def _t(value: dt.datetime | None) -> str:
    return format_local(value, "%Y-%m-%d %H:%M:%S") if value else ""


def record_csv_rows(data: dict[str, Any]) -> Iterator[list[str]]:
    """One flat table: ``section, no, title, detail, who, when`` (times in Asia/Seoul)."""
    m = data["meeting"]
    yield ["section", "no", "title", "detail", "who", "when"]
    yield [
        "meeting",
        str(m["id"]),
        m["title"],
        m["purpose"],
        m["chair"],
        f"{_t(m['starts_at'])} - {_t(m['ends_at'])}",
    ]
    for village in m["villages"]:
        yield ["invited_village", "", village, "", "", ""]
    for official in m["officials"]:
        yield ["invited_official", "", official, "", "", ""]
    for i, row in enumerate(data["attendance"], start=1):
        detail = (
            f"{row['present_minutes']} min; gaps {row['gap_seconds']} s; interruptions {row['interruptions']}"
        )
        if row["residents_count"] is not None:
            detail += f"; residents {row['residents_count']}"
        yield [
            "attendance",
            str(i),
            row["name"],
            detail,
            row["kind"],
            f"{_t(row['first_joined_at'])} - {_t(row['last_left_at'])}",
        ]
    for item in data["agenda"]:
        no = str(item["position"])
        yield ["agenda", no, item["title"], f"{item['planned_minutes']} min", item["presenter"] or "", ""]
        if item["notes"]:
            yield ["notes", no, item["title"], item["notes"], "", ""]
        if item["decisions"]:
            yield ["decision", no, item["title"], item["decisions"], "", ""]
        for action in item["actions"]:
            due = action["due_date"].isoformat() if action["due_date"] else ""
            yield ["action_item", no, action["text"], "", action["owner"] or "", due]
        for p in item["petitions"]:
            outcome = p["outcome"] or ""
            yield [
                "petition",
                no,
                f"{p['receipt_no']} {p['title']}".strip(),
                f"{p['status']} {outcome}".strip(),
                "",
                "",
            ]
    for r in data["recordings"]:
        yield [
            "recording",
            "",
            r["participant"],
            r["path"],
            "",
            f"{_t(r['started_at'])} - {_t(r['ended_at'])}",
        ]
