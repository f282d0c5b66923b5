"""OpenAPI declarations of the meetings API (see ``server.openapi.spec``).

Hook-up (one line in ``server.openapi.document.all_endpoints``): add
``meeting_endpoints()`` from this module to the tuple it returns."""

from __future__ import annotations

from functools import partial
from typing import Any

from server.meetings.views import (
    ActionItemInput,
    AgendaInput,
    AgendaPatch,
    MeetingInput,
    MeetingPatch,
    MinutesInput,
    ProposalDecision,
    ResidentsInput,
    TransitionInput,
)
from server.meetings.workflow import MeetingStatus
from server.openapi.spec import (
    Endpoint,
    array,
    boolean,
    enum,
    envelope,
    ids,
    integer,
    listing,
    number,
    obj,
    string,
    timestamp,
)

STAFF = ("official", "admin")
ADMIN = ("admin",)


def _meeting() -> dict[str, Any]:
    """``server.meetings.views.meeting_json``, with its agenda and each item's action items."""
    action = obj(
        {"id": integer(), "text": string(), "owner_id": integer(null=True), "due_date": string(null=True)},
        required=("id", "text"),
    )
    item = obj(
        {
            "id": integer(),
            "position": integer(),
            "title": string(),
            "planned_minutes": integer(),
            "presenter_id": integer(null=True),
            "petition_ids": ids(),
            "notes": string(),
            "decisions": string(),
            "actions": array(action),
        },
        required=("id", "position", "title"),
    )
    return obj(
        {
            "id": integer(),
            "title": string(),
            "purpose": string(),
            "status": enum(*MeetingStatus),
            "starts_at": timestamp(),
            "ends_at": timestamp(),
            "chair_id": integer(),
            "official_ids": ids(),
            "village_ids": ids(),
            "join_mode": enum("auto", "touch"),
            "lobby_mode": enum("wait", "auto_admit"),
            "room_id": integer(null=True),
            "started_at": timestamp(null=True),
            "ended_at": timestamp(null=True),
            "cancelled_at": timestamp(null=True),
            "record_closed_at": timestamp(null=True),
            "agenda": array(item),
        },
        required=("id", "title", "status", "starts_at", "ends_at", "chair_id"),
    )


def _recording_file() -> dict[str, Any]:
    return obj(
        {
            "id": integer(),
            "participant": string(),
            "duration": number(),
            "has_audio": boolean(),
            "has_video": boolean(),
            "url": string(),
        },
        required=("id", "participant", "url"),
    )


def meeting_endpoints() -> tuple[Endpoint, ...]:
    endpoint = partial(Endpoint, tag="meetings")
    meeting = _meeting()
    one = envelope("meeting", meeting)
    scheduled = obj(
        {"meeting": meeting, "villages_without_kiosk": ids()}, required=("meeting", "villages_without_kiosk")
    )
    outcome = obj(
        {"petition_id": integer(), "receipt_no": string(), "outcome": string(), "detail": string()},
        required=("petition_id", "outcome"),
    )
    kiosk_meeting = obj({"id": integer(), "title": string(), "when": string(), "live": boolean()})
    proposal = obj(
        {
            "id": integer(),
            "status": enum("proposed", "confirmed", "dismissed"),
            "answer": string(),
            "meeting_id": integer(),
            "meeting_title": string(),
            "petition_id": integer(),
            "receipt_no": string(),
            "petition_title": string(),
            "created_at": timestamp(null=True),
            "decided_at": timestamp(null=True),
        },
        required=("id", "status", "answer", "meeting_id", "petition_id"),
    )
    base = "/api/v1/meetings"
    one_meeting = base + "/{meeting_id}"
    item = one_meeting + "/agenda/{item_id}"
    return (
        endpoint(
            "get",
            base,
            "Meetings (admins: all; officials: the ones they chair or are invited to)",
            STAFF,
            response=listing("meetings", meeting),
        ),
        endpoint(
            "post", base, "Schedule a meeting", ADMIN, request=MeetingInput, status=201, response=scheduled
        ),
        endpoint("get", one_meeting, "One meeting (404 when not invited)", STAFF, response=one),
        endpoint(
            "patch",
            one_meeting,
            "Edit a meeting (live: end time only)",
            ADMIN,
            request=MeetingPatch,
            response=scheduled,
        ),
        endpoint(
            "post",
            one_meeting + "/transitions",
            "Start, end, cancel, or close the record",
            STAFF,
            request=TransitionInput,
            response=obj({"meeting": meeting, "petitions": array(outcome)}, required=("meeting",)),
        ),
        endpoint(
            "post",
            one_meeting + "/recording/start",
            "Start recording the live meeting (chair or admin; 409 if not live or already recording)",
            STAFF,
            response=envelope("recording", boolean()),
        ),
        endpoint(
            "post",
            one_meeting + "/recording/stop",
            "Stop recording; the files are registered for the record (409 if not recording)",
            STAFF,
            response=obj(
                {"recording": boolean(), "files": array(_recording_file())}, required=("recording", "files")
            ),
        ),
        endpoint(
            "post",
            one_meeting + "/agenda",
            "Add an agenda item (or one from a petition)",
            STAFF,
            request=AgendaInput,
            status=201,
            response=obj({"item_id": integer(), "meeting": meeting}, required=("item_id", "meeting")),
        ),
        endpoint("patch", item, "Edit or move an agenda item", STAFF, request=AgendaPatch, response=one),
        endpoint("delete", item, "Remove an agenda item", STAFF, response=one),
        endpoint(
            "put",
            item + "/minutes",
            "Notes and decisions of an item",
            STAFF,
            request=MinutesInput,
            response=one,
        ),
        endpoint(
            "post",
            item + "/actions",
            "Add an action item",
            STAFF,
            request=ActionItemInput,
            status=201,
            response=envelope("action_item_id", integer()),
        ),
        endpoint(
            "get",
            one_meeting + "/admission",
            "May the caller join now? (403 uninvited, 409 not live)",
            ("official", "admin", "kiosk"),
            response=obj(
                {"may_join": boolean(), "room_id": integer(), "url": string()},
                required=("may_join", "room_id", "url"),
            ),
        ),
        endpoint(
            "put",
            one_meeting + "/residents",
            "Residents in front of the kiosk",
            ("kiosk",),
            request=ResidentsInput,
            response=envelope("residents_count", integer()),
        ),
        endpoint(
            "get",
            "/api/v1/kiosk/meetings",
            "The kiosk village's upcoming meetings",
            ("kiosk",),
            response=listing("meetings", kiosk_meeting),
        ),
        endpoint(
            "get",
            "/api/v1/meeting-proposals",
            "Meeting decisions waiting for the caller's department to confirm",
            STAFF,
            response=listing("proposals", proposal),
        ),
        endpoint(
            "post",
            "/api/v1/meeting-proposals/{proposal_id}",
            "Confirm (answers the petition with the decision) or dismiss a proposed decision"
            " (404 unless the caller's department handles the petition; 409 if already decided)",
            STAFF,
            request=ProposalDecision,
            response=envelope("proposal", proposal),
        ),
    )
