"""OpenAPI declarations of the rooms API (see ``server.openapi``): the admin's rooms, the caller's
invitations, and a participant's still picture."""

from __future__ import annotations

from server.openapi import Endpoint, obj
from server.rooms.service import TITLE_MAX
from server.rooms.views import CreateRoomInput, InviteInput

ADMIN = ("admin",)
MEMBERS = ("official", "admin", "kiosk")

_ID = {"type": "integer"}
_IDS = {"type": "array", "items": _ID}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}

# ``server.rooms.views.room_json``
ROOM = obj(
    {
        "id": _ID,
        "title": {"type": "string", "minLength": 1, "maxLength": TITLE_MAX},
        "created_by": {"type": ["integer", "null"], "description": "the creating account (null: none)"},
        "created_at": _TIME_OR_NULL,
        "closed_at": _TIME_OR_NULL,
        "open": {"type": "boolean"},
        "invited_account_ids": _IDS,
        "invited_kiosk_ids": _IDS,
    },
    required=("id", "title", "created_by", "created_at", "closed_at", "open"),
)
LISTED_ROOM = {
    "allOf": [
        ROOM,
        obj(
            {"participants_here": {"type": "integer", "minimum": 0, "description": "in this worker"}},
            required=("participants_here",),
        ),
    ]
}
ONE_ROOM = obj({"room": ROOM}, required=("room",))
MY_ROOM = obj(
    {
        "id": _ID,
        "title": {"type": "string"},
        "url": {"type": "string", "description": "the meeting page: /rooms/{id} or /kiosk/rooms/{id}"},
    },
    required=("id", "title", "url"),
)
# ``server.signaling.names.participant_id``: 'k' + kiosk id or 'a' + account id.
PARTICIPANT_ID = {"type": "string", "pattern": "^[ak][0-9]{1,63}$", "maxLength": 64}


def room_endpoints() -> tuple[Endpoint, ...]:
    return (
        Endpoint(
            "get",
            "/api/v1/rooms/mine",
            "Open rooms the caller is invited to (admins: every open room)",
            MEMBERS,
            tag="rooms",
            response=obj({"rooms": {"type": "array", "items": MY_ROOM}}, required=("rooms",)),
        ),
        Endpoint(
            "get",
            "/api/v1/rooms/{room_id}/stills/{participant_id}",
            "A participant's latest still picture, for a caller in the same room (404 until one is sent)",
            MEMBERS,
            tag="rooms",
            binary_response="image/jpeg",
            binary_description="The JPEG (Cache-Control: no-store)",
            path_schemas={"participant_id": PARTICIPANT_ID},
        ),
        Endpoint(
            "get",
            "/api/v1/admin/rooms",
            "List rooms, open first, with how many participants are in each",
            ADMIN,
            tag="rooms",
            response=obj({"rooms": {"type": "array", "items": LISTED_ROOM}}, required=("rooms",)),
        ),
        Endpoint(
            "post",
            "/api/v1/admin/rooms",
            "Create a room and invite accounts and kiosks",
            ADMIN,
            request=CreateRoomInput,
            status=201,
            tag="rooms",
            response=ONE_ROOM,
        ),
        Endpoint(
            "post",
            "/api/v1/admin/rooms/{room_id}/invitations",
            "Invite more accounts and kiosks to an open room (409 when closed)",
            ADMIN,
            request=InviteInput,
            tag="rooms",
            response=ONE_ROOM,
        ),
        Endpoint(
            "post",
            "/api/v1/admin/rooms/{room_id}/close",
            "Close a room (idempotent); everybody in it is told and disconnected",
            ADMIN,
            tag="rooms",
            response=ONE_ROOM,
        ),
    )
