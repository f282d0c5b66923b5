"""OpenAPI declarations of the duty-call API (see ``server.openapi.spec``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from server.duty.views import AvailabilityInput
from server.openapi.spec import (
    Endpoint,
    array,
    boolean,
    enum,
    envelope,
    integer,
    obj,
    string,
    timestamp,
)

KIOSK = ("kiosk",)
STAFF = ("official", "admin")


def _call() -> dict[str, Any]:
    """A duty call as ``server.duty.views`` writes it."""
    return obj(
        {
            "id": integer(),
            "status": enum("ringing", "answered", "missed", "cancelled"),
            "ring_until": timestamp(),
            "room_url": string(null=True),
            "village": string(),
        },
        required=("id", "status", "ring_until"),
    )


def duty_endpoints() -> tuple[Endpoint, ...]:
    endpoint = partial(Endpoint, tag="duty")
    call = _call()
    one_call = envelope("call", call)
    kiosk_call = "/api/v1/kiosk/duty-calls/{call_id}"
    return (
        endpoint(
            "post",
            "/api/v1/duty/availability",
            "Go on or off duty (take kiosk calls)",
            STAFF,
            request=AvailabilityInput,
            response=envelope("available", boolean()),
        ),
        endpoint(
            "get",
            "/api/v1/duty/ringing",
            "Kiosk calls ringing for this official",
            STAFF,
            response=obj({"available": boolean(), "calls": array(call)}, required=("available", "calls")),
        ),
        endpoint(
            "post",
            "/api/v1/duty/calls/{call_id}/answer",
            "Answer a call (the first answer wins)",
            STAFF,
            response=one_call,
        ),
        endpoint(
            "post",
            "/api/v1/kiosk/duty-calls",
            "Ring the officials on duty",
            KIOSK,
            status=201,
            response=one_call,
        ),
        endpoint("get", kiosk_call, "This kiosk's call", KIOSK, response=one_call),
        endpoint("post", kiosk_call + "/cancel", "Stop ringing", KIOSK, response=one_call),
    )
