"""OpenAPI declarations of the kiosks API (see ``server.openapi.spec``): enrollment, the agent's
heartbeat, and the admin's fleet."""

from __future__ import annotations

from functools import partial
from typing import Any

from server.auth.roles import PUBLIC
from server.kiosks.views import CreateKioskInput, EnrollInput, HeartbeatInput
from server.openapi.spec import Endpoint, boolean, envelope, integer, listing, obj, string


def _kiosk() -> dict[str, Any]:
    """A kiosk as the admin API and enrollment return it."""
    return obj(
        {
            "id": integer(),
            "label": string(),
            "village_id": integer(),
            "village": string(),
            "enrolled_at": string(null=True),
            "revoked_at": string(null=True),
            "last_seen_at": string(null=True),
            "active": boolean(),
        },
        required=("id", "label", "village_id", "active"),
    )


def kiosk_endpoints() -> tuple[Endpoint, ...]:
    kiosks = partial(Endpoint, tag="kiosks")
    kiosk = _kiosk()
    return (
        kiosks(
            "post",
            "/api/v1/kiosk/enroll",
            "Exchange a one-time enrollment code for a device token",
            (PUBLIC,),
            request=EnrollInput,
            status=201,
            response=obj({"token": string(), "kiosk": kiosk}, required=("token", "kiosk")),
        ),
        kiosks("get", "/api/v1/admin/kiosks", "List kiosks", ("admin",), response=listing("kiosks", kiosk)),
        kiosks(
            "post",
            "/api/v1/admin/kiosks",
            "Create a kiosk and its one-time enrollment code",
            ("admin",),
            request=CreateKioskInput,
            status=201,
            response=obj(
                {"kiosk": kiosk, "enrollment_code": string(), "expires_at": string()},
                required=("kiosk", "enrollment_code"),
            ),
        ),
        kiosks(
            "post",
            "/api/v1/admin/kiosks/{kiosk_id}/revoke",
            "Revoke a kiosk at once",
            ("admin",),
            response=envelope("kiosk", kiosk),
        ),
        kiosks(
            "post",
            "/api/v1/kiosk/heartbeat",
            "The kiosk agent's health report (every few seconds)",
            ("kiosk",),
            request=HeartbeatInput,
            response=envelope("status", string()),
        ),
    )
