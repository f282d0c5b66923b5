"""OpenAPI declarations of the rooms API (see ``server.openapi.spec``): the admin's rooms, the caller's
invitations, and a participant's still picture."""

from __future__ import annotations

from functools import partial
from typing import Any

from server.openapi.spec import (
    Endpoint,
    boolean,
    envelope,
    extended,
    ids,
    integer,
    listing,
    obj,
    string,
    timestamp,
)
from server.rooms.service import TITLE_MAX
from server.rooms.views import CreateRoomInput, InviteInput

ADMIN = ("admin",)
MEMBERS = ("official", "admin", "kiosk")


def _room() -> dict[str, Any]:
    """A room as ``server.rooms.views.room_json`` writes it."""
    return obj(
        {
            "id": integer(),
            "title": string(minLength=1, maxLength=TITLE_MAX),
            "created_by": integer(null=True, description="the creating account (null: none)"),
            "created_at": timestamp(null=True),
            "closed_at": timestamp(null=True),
            "open": boolean(),
            "invited_account_ids": ids(),
            "invited_kiosk_ids": ids(),
        },
        required=("id", "title", "created_by", "created_at", "closed_at", "open"),
    )


def _participant_id() -> dict[str, Any]:
    """``server.signaling.names.participant_id``: 'k' + kiosk id or 'a' + account id."""
    return string(pattern="^[ak][0-9]{1,63}$", maxLength=64)


def room_endpoints() -> tuple[Endpoint, ...]:
    endpoint = partial(Endpoint, tag="rooms")
    room = _room()
    listed_room = extended(
        room,
        {"participants_here": integer(minimum=0, description="in this worker")},
        required=("participants_here",),
    )
    my_room = obj(
        {
            "id": integer(),
            "title": string(),
            "url": string(description="the meeting page: /rooms/{id} or /kiosk/rooms/{id}"),
        },
        required=("id", "title", "url"),
    )
    one_room = "/api/v1/admin/rooms/{room_id}"
    return (
        endpoint(
            "get",
            "/api/v1/rooms/mine",
            "Open rooms the caller is invited to (admins: every open room)",
            MEMBERS,
            response=listing("rooms", my_room),
        ),
        endpoint(
            "get",
            "/api/v1/rooms/{room_id}/stills/{participant_id}",
            "A participant's latest still picture, for a caller in the same room (404 until one is sent)",
            MEMBERS,
            binary_response="image/jpeg",
            binary_description="The JPEG (Cache-Control: no-store)",
            path_schemas={"participant_id": _participant_id()},
        ),
        endpoint(
            "get",
            "/api/v1/admin/rooms",
            "List rooms, open first, with how many participants are in each",
            ADMIN,
            response=listing("rooms", listed_room),
        ),
        endpoint(
            "post",
            "/api/v1/admin/rooms",
            "Create a room and invite accounts and kiosks",
            ADMIN,
            request=CreateRoomInput,
            status=201,
            response=envelope("room", room),
        ),
        endpoint(
            "post",
            one_room + "/invitations",
            "Invite more accounts and kiosks to an open room (409 when closed)",
            ADMIN,
            request=InviteInput,
            response=envelope("room", room),
        ),
        endpoint(
            "post",
            one_room + "/close",
            "Close a room (idempotent); everybody in it is told and disconnected",
            ADMIN,
            response=envelope("room", room),
        ),
    )
