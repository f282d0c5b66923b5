"""OpenAPI declarations of the duty-call API (see ``server.openapi``)."""

from __future__ import annotations

from server.duty.views import AvailabilityInput
from server.openapi import Endpoint, obj

_CALL = obj(
    {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": ["ringing", "answered", "missed", "cancelled"]},
        "ring_until": {"type": "string", "format": "date-time"},
        "room_url": {"type": ["string", "null"]},
        "village": {"type": "string"},
    },
    required=("id", "status", "ring_until"),
)
_ONE = obj({"call": _CALL}, required=("call",))
STAFF = ("official", "admin")


def duty_endpoints() -> tuple[Endpoint, ...]:
    return (
        Endpoint(
            "post",
            "/api/v1/duty/availability",
            "Go on or off duty (take kiosk calls)",
            STAFF,
            request=AvailabilityInput,
            tag="duty",
            response=obj({"available": {"type": "boolean"}}, required=("available",)),
        ),
        Endpoint(
            "get",
            "/api/v1/duty/ringing",
            "Kiosk calls ringing for this official",
            STAFF,
            tag="duty",
            response=obj(
                {"available": {"type": "boolean"}, "calls": {"type": "array", "items": _CALL}},
                required=("available", "calls"),
            ),
        ),
        Endpoint(
            "post",
            "/api/v1/duty/calls/{call_id}/answer",
            "Answer a call (the first answer wins)",
            STAFF,
            tag="duty",
            response=_ONE,
        ),
        Endpoint(
            "post",
            "/api/v1/kiosk/duty-calls",
            "Ring the officials on duty",
            ("kiosk",),
            status=201,
            tag="duty",
            response=_ONE,
        ),
        Endpoint(
            "get",
            "/api/v1/kiosk/duty-calls/{call_id}",
            "This kiosk's call",
            ("kiosk",),
            tag="duty",
            response=_ONE,
        ),
        Endpoint(
            "post",
            "/api/v1/kiosk/duty-calls/{call_id}/cancel",
            "Stop ringing",
            ("kiosk",),
            tag="duty",
            response=_ONE,
        ),
    )
