"""OpenAPI declarations of the notices API (see ``server.openapi``)."""

from __future__ import annotations

from server.notices.views import NoticeInput
from server.openapi import Endpoint, obj

_NOTICE = obj(
    {
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "body": {"type": "string"},
        "starts_at": {"type": "string", "format": "date-time"},
        "ends_at": {"type": "string", "format": "date-time"},
        "all_villages": {"type": "boolean"},
        "village_ids": {"type": "array", "items": {"type": "integer"}},
        "media_kind": {"type": ["string", "null"], "enum": ["image", "video", None]},
        "media_url": {"type": ["string", "null"]},
        "withdrawn": {"type": "boolean"},
    },
    required=("id", "title", "body", "starts_at", "ends_at", "all_villages"),
)
_DELIVERY = obj(
    {
        "kiosk_id": {"type": "integer"},
        "village_id": {"type": "integer"},
        "village": {"type": "string"},
        "first_shown_at": {"type": ["string", "null"]},
        "times_shown": {"type": "integer"},
    },
    required=("kiosk_id", "village_id", "times_shown"),
)
STAFF = ("official", "admin")


def notice_endpoints() -> tuple[Endpoint, ...]:
    return (
        Endpoint(
            "get",
            "/api/v1/notices",
            "All notices",
            STAFF,
            tag="notices",
            response=obj({"notices": {"type": "array", "items": _NOTICE}}, required=("notices",)),
        ),
        Endpoint(
            "post",
            "/api/v1/notices",
            "Post a text notice to chosen villages (none = all)",
            STAFF,
            request=NoticeInput,
            status=201,
            tag="notices",
            response=obj({"notice": _NOTICE}, required=("notice",)),
        ),
        Endpoint(
            "get",
            "/api/v1/notices/{notice_id}/deliveries",
            "Which kiosks showed a notice, and when",
            STAFF,
            tag="notices",
            response=obj({"deliveries": {"type": "array", "items": _DELIVERY}}, required=("deliveries",)),
        ),
        Endpoint(
            "get",
            "/api/v1/kiosk/notices",
            "Notices this kiosk's village should show now",
            ("kiosk",),
            tag="notices",
            response=obj({"notices": {"type": "array", "items": _NOTICE}}, required=("notices",)),
        ),
        Endpoint(
            "post",
            "/api/v1/kiosk/notices/{notice_id}/shown",
            "Report that this kiosk showed a notice",
            ("kiosk",),
            tag="notices",
            response=obj({"times_shown": {"type": "integer"}}, required=("times_shown",)),
        ),
    )
