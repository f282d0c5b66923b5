"""OpenAPI declarations of the notices API (see ``server.openapi.spec``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from server.notices.views import NoticeInput
from server.openapi.spec import (
    Endpoint,
    boolean,
    envelope,
    ids,
    integer,
    listing,
    obj,
    string,
    timestamp,
)

KIOSK = ("kiosk",)
STAFF = ("official", "admin")


def _notice() -> dict[str, Any]:
    """A notice as ``server.notices.views`` writes it."""
    return obj(
        {
            "id": integer(),
            "title": string(),
            "body": string(),
            "starts_at": timestamp(),
            "ends_at": timestamp(),
            "all_villages": boolean(),
            "village_ids": ids(),
            # A text-only notice has no media: null is one of the values, not just an allowed type.
            "media_kind": {**string(null=True), "enum": ["image", "video", None]},
            "media_url": string(null=True),
            "withdrawn": boolean(),
        },
        required=("id", "title", "body", "starts_at", "ends_at", "all_villages"),
    )


def _delivery() -> dict[str, Any]:
    """One kiosk's record of showing a notice."""
    return obj(
        {
            "kiosk_id": integer(),
            "village_id": integer(),
            "village": string(),
            "first_shown_at": string(null=True),
            "times_shown": integer(),
        },
        required=("kiosk_id", "village_id", "times_shown"),
    )


def notice_endpoints() -> tuple[Endpoint, ...]:
    endpoint = partial(Endpoint, tag="notices")
    notice = _notice()
    return (
        endpoint("get", "/api/v1/notices", "All notices", STAFF, response=listing("notices", notice)),
        endpoint(
            "post",
            "/api/v1/notices",
            "Post a text notice to chosen villages (none = all)",
            STAFF,
            request=NoticeInput,
            status=201,
            response=envelope("notice", notice),
        ),
        endpoint(
            "get",
            "/api/v1/notices/{notice_id}/deliveries",
            "Which kiosks showed a notice, and when",
            STAFF,
            response=listing("deliveries", _delivery()),
        ),
        endpoint(
            "get",
            "/api/v1/kiosk/notices",
            "Notices this kiosk's village should show now",
            KIOSK,
            response=listing("notices", notice),
        ),
        endpoint(
            "post",
            "/api/v1/kiosk/notices/{notice_id}/shown",
            "Report that this kiosk showed a notice",
            KIOSK,
            response=envelope("times_shown", integer()),
        ),
    )
