"""OpenAPI declarations of the meetings API (see ``server.openapi``).

Hook-up (one line in ``server.openapi.all_endpoints``, owned by the foundation): add
``meeting_endpoints()`` from this module to the tuple it returns."""

from __future__ import annotations

from typing import Any

from server.meetings.views import (
    ActionItemInput,
    AgendaInput,
    AgendaPatch,
    MeetingInput,
    MeetingPatch,
    MinutesInput,
    ResidentsInput,
    TransitionInput,
)
from server.openapi import Endpoint, obj

_ID = {"type": "integer"}
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_ACTION = obj(
    {
        "id": _ID,
        "text": {"type": "string"},
        "owner_id": {"type": ["integer", "null"]},
        "due_date": {"type": ["string", "null"]},
    },
    required=("id", "text"),
)
_ITEM = obj(
    {
        "id": _ID,
        "position": _ID,
        "title": {"type": "string"},
        "planned_minutes": _ID,
        "presenter_id": {"type": ["integer", "null"]},
        "petition_ids": {"type": "array", "items": _ID},
        "notes": {"type": "string"},
        "decisions": {"type": "string"},
        "actions": {"type": "array", "items": _ACTION},
    },
    required=("id", "position", "title"),
)
_MEETING = obj(
    {
        "id": _ID,
        "title": {"type": "string"},
        "purpose": {"type": "string"},
        "status": {"type": "string", "enum": ["scheduled", "live", "ended", "cancelled"]},
        "starts_at": _TIME,
        "ends_at": _TIME,
        "chair_id": _ID,
        "official_ids": {"type": "array", "items": _ID},
        "village_ids": {"type": "array", "items": _ID},
        "join_mode": {"type": "string", "enum": ["auto", "touch"]},
        "lobby_mode": {"type": "string", "enum": ["wait", "auto_admit"]},
        "room_id": {"type": ["integer", "null"]},
        "started_at": _TIME_OR_NULL,
        "ended_at": _TIME_OR_NULL,
        "cancelled_at": _TIME_OR_NULL,
        "record_closed_at": _TIME_OR_NULL,
        "agenda": {"type": "array", "items": _ITEM},
    },
    required=("id", "title", "status", "starts_at", "ends_at", "chair_id"),
)
_ONE = obj({"meeting": _MEETING}, required=("meeting",))
_SCHEDULED = obj(
    {"meeting": _MEETING, "villages_without_kiosk": {"type": "array", "items": _ID}},
    required=("meeting", "villages_without_kiosk"),
)
_OUTCOME = obj(
    {
        "petition_id": _ID,
        "receipt_no": {"type": "string"},
        "outcome": {"type": "string"},
        "detail": {"type": "string"},
    },
    required=("petition_id", "outcome"),
)
STAFF = ("official", "admin")
ADMIN = ("admin",)


def _e(method: str, path: str, summary: str, roles: tuple[str, ...], **kwargs: Any) -> Endpoint:
    return Endpoint(method, path, summary, roles, tag="meetings", **kwargs)


def meeting_endpoints() -> tuple[Endpoint, ...]:
    base = "/api/v1/meetings"
    item = base + "/{meeting_id}/agenda/{item_id}"
    return (
        _e(
            "get",
            base,
            "Meetings (admins: all; officials: the ones they chair or are invited to)",
            STAFF,
            response=obj({"meetings": {"type": "array", "items": _MEETING}}, required=("meetings",)),
        ),
        _e("post", base, "Schedule a meeting", ADMIN, request=MeetingInput, status=201, response=_SCHEDULED),
        _e("get", base + "/{meeting_id}", "One meeting (404 when not invited)", STAFF, response=_ONE),
        _e(
            "patch",
            base + "/{meeting_id}",
            "Edit a meeting (live: end time only)",
            ADMIN,
            request=MeetingPatch,
            response=_SCHEDULED,
        ),
        _e(
            "post",
            base + "/{meeting_id}/transitions",
            "Start, end, cancel, or close the record",
            STAFF,
            request=TransitionInput,
            response=obj(
                {"meeting": _MEETING, "petitions": {"type": "array", "items": _OUTCOME}},
                required=("meeting",),
            ),
        ),
        _e(
            "post",
            base + "/{meeting_id}/recording/start",
            "Start recording the live meeting (chair or admin; 409 if not live or already recording)",
            STAFF,
            response=obj({"recording": {"type": "boolean"}}, required=("recording",)),
        ),
        _e(
            "post",
            base + "/{meeting_id}/recording/stop",
            "Stop recording; the files are registered for the record (409 if not recording)",
            STAFF,
            response=obj(
                {
                    "recording": {"type": "boolean"},
                    "files": {
                        "type": "array",
                        "items": obj(
                            {
                                "id": _ID,
                                "participant": {"type": "string"},
                                "duration": {"type": "number"},
                                "has_audio": {"type": "boolean"},
                                "has_video": {"type": "boolean"},
                                "url": {"type": "string"},
                            },
                            required=("id", "participant", "url"),
                        ),
                    },
                },
                required=("recording", "files"),
            ),
        ),
        _e(
            "post",
            base + "/{meeting_id}/agenda",
            "Add an agenda item (or one from a petition)",
            STAFF,
            request=AgendaInput,
            status=201,
            response=obj({"item_id": _ID, "meeting": _MEETING}, required=("item_id", "meeting")),
        ),
        _e("patch", item, "Edit or move an agenda item", STAFF, request=AgendaPatch, response=_ONE),
        _e("delete", item, "Remove an agenda item", STAFF, response=_ONE),
        _e(
            "put",
            item + "/minutes",
            "Notes and decisions of an item",
            STAFF,
            request=MinutesInput,
            response=_ONE,
        ),
        _e(
            "post",
            item + "/actions",
            "Add an action item",
            STAFF,
            request=ActionItemInput,
            status=201,
            response=obj({"action_item_id": _ID}, required=("action_item_id",)),
        ),
        _e(
            "get",
            base + "/{meeting_id}/admission",
            "May the caller join now? (403 uninvited, 409 not live)",
            ("official", "admin", "kiosk"),
            response=obj(
                {"may_join": {"type": "boolean"}, "room_id": _ID, "url": {"type": "string"}},
                required=("may_join", "room_id", "url"),
            ),
        ),
        _e(
            "put",
            base + "/{meeting_id}/residents",
            "Residents in front of the kiosk",
            ("kiosk",),
            request=ResidentsInput,
            response=obj({"residents_count": _ID}, required=("residents_count",)),
        ),
        _e(
            "get",
            "/api/v1/kiosk/meetings",
            "The kiosk village's upcoming meetings",
            ("kiosk",),
            response=obj(
                {
                    "meetings": {
                        "type": "array",
                        "items": obj(
                            {
                                "id": _ID,
                                "title": {"type": "string"},
                                "when": {"type": "string"},
                                "live": {"type": "boolean"},
                            }
                        ),
                    }
                },
                required=("meetings",),
            ),
        ),
    )
