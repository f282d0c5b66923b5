"""OpenAPI declarations of the petitions API (see ``server.openapi``)."""

from __future__ import annotations

from typing import Any

from server.openapi import Endpoint, obj, ref
from server.petitions.api import ListQuery
from server.petitions.schemas import (
    ActionBody,
    BulkAnswerBody,
    DepartmentBody,
    DepartmentPatch,
    FileInput,
    NoteBody,
    StatusCheckInput,
    SupportInput,
    TemplateBody,
)

KIOSK = ("kiosk",)
STAFF = ("official", "admin")
ADMIN = ("admin",)

_S = {"type": "string"}
_NS = {"type": ["string", "null"]}
_I = {"type": "integer"}
_NI = {"type": ["integer", "null"]}

PUBLIC_PETITION = obj(
    {
        "id": _I,
        "petition_type": _S,
        "petition_type_label": _S,
        "status": {
            "type": "string",
            "enum": ["received", "in_progress", "info_requested", "transferred", "answered", "closed"],
        },
        "status_label": _S,
        "title": _S,
        "village": _S,
        "department": _NS,
        "received_at": _S,
        "due_at": _S,
        "deadline_state": {"type": "string", "enum": ["on_time", "due_soon", "overdue"]},
        "support_count": _I,
        "body_text": _S,
        "answer": _NS,
        "answered_at": _NS,
    },
    required=("id", "status", "title", "due_at", "deadline_state"),
)
RESIDENT_PETITION = {
    "allOf": [
        PUBLIC_PETITION,
        obj(
            {
                "receipt_no": _S,
                "is_public": {"type": "boolean"},
                "info_request": _NS,
                "extension_reason": _NS,
            },
            required=("receipt_no",),
        ),
    ]
}
MEDIA = obj(
    {
        "id": _I,
        "kind": {"type": "string", "enum": ["message", "photo"]},
        "content_type": _S,
        "size_bytes": _I,
        "duration_s": {"type": ["number", "null"]},
        "has_video": {"type": "boolean"},
        "url": _S,
    }
)
OFFICIAL_PETITION = {
    "allOf": [
        RESIDENT_PETITION,
        obj(
            {
                "department_id": _NI,
                "village_id": _I,
                "kiosk_id": _NI,
                "assignee_id": _NI,
                "info_requests_count": _I,
                "extended": {"type": "boolean"},
                "resident_name": _NS,
                "resident_phone": {
                    "type": "string",
                    "description": "masked (010-****-1234) unless the caller handles it",
                },
                "personal_data_masked": {"type": "boolean"},
                "media": {"type": "array", "items": MEDIA},
                "allowed_actions": {"type": "array", "items": _S},
            }
        ),
    ]
}
NOTE = obj({"id": _I, "author": _S, "text": _S, "created_at": _NS})
EVENT = obj({"id": _I, "at": _S, "actor": _S, "actor_role": _S, "action": _S, "details": {"type": "object"}})
TEMPLATE = obj({"id": _I, "title": _S, "body": _S, "department_id": _NI})
DEPARTMENT = obj({"id": _I, "name_ko": _S, "name_en": _S, "is_active": {"type": "boolean"}})

MULTIPART_FILE: dict[str, Any] = {
    "schema": obj(
        {
            "petition": ref("FileInput"),
            "media": {
                "type": "string",
                "contentMediaType": "application/octet-stream",
                "description": "Recorded voice/video message (WebM/Ogg/MP4, ≤ 3 minutes, ≤ 40 MB)",
            },
            "photo": {
                "type": "array",
                "maxItems": 3,
                "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                "description": "JPEG/PNG/WebP photos, ≤ 8 MB each",
            },
        },
        required=("petition",),
    ),
    "encoding": {"petition": {"contentType": "application/json"}},
}


def _wrap(key: str, schema: Any) -> dict[str, Any]:
    return obj({key: schema}, required=(key,))


def petition_endpoints() -> tuple[Endpoint, ...]:
    many = {"type": "array", "items": OFFICIAL_PETITION}
    return (
        Endpoint(
            "post",
            "/api/v1/kiosk/petitions",
            "File a petition from a kiosk (JSON, or multipart with a recorded message)",
            KIOSK,
            request=FileInput,
            multipart=MULTIPART_FILE,
            status=201,
            tag="kiosk petitions",
            response=obj(
                {"petition": RESIDENT_PETITION, "pin": {"type": "string", "pattern": "^[0-9]{4}$"}},
                required=("petition", "pin"),
            ),
        ),
        Endpoint(
            "post",
            "/api/v1/kiosk/petitions/status",
            "Check a petition with its receipt number and PIN (throttled)",
            KIOSK,
            request=StatusCheckInput,
            response=_wrap("petition", RESIDENT_PETITION),
            tag="kiosk petitions",
        ),
        Endpoint(
            "get",
            "/api/v1/kiosk/petitions/public",
            "Public petitions (no personal data)",
            KIOSK,
            response=_wrap("petitions", {"type": "array", "items": PUBLIC_PETITION}),
            tag="kiosk petitions",
        ),
        Endpoint(
            "get",
            "/api/v1/kiosk/petitions/public/{petition_id}",
            "One public petition (no personal data)",
            KIOSK,
            response=_wrap("petition", PUBLIC_PETITION),
            tag="kiosk petitions",
        ),
        Endpoint(
            "post",
            "/api/v1/kiosk/petitions/public/{petition_id}/support",
            "Support (공감) once per kiosk session",
            KIOSK,
            request=SupportInput,
            status=201,
            response=_wrap("support_count", _I),
            tag="kiosk petitions",
        ),
        Endpoint(
            "get",
            "/api/v1/petitions",
            "Petitions the caller may see, earliest deadline first (personal data masked)",
            STAFF,
            query=ListQuery,
            response=_wrap("petitions", many),
            tag="petitions",
        ),
        Endpoint(
            "post",
            "/api/v1/petitions/bulk-answer",
            "Answer several petitions with one text (all or nothing)",
            STAFF,
            request=BulkAnswerBody,
            response=_wrap("answered", {"type": "array", "items": _I}),
            tag="petitions",
        ),
        Endpoint(
            "get",
            "/api/v1/petitions/{petition_id}",
            "One petition (unmasked for the handling department)",
            STAFF,
            response=_wrap("petition", OFFICIAL_PETITION),
            tag="petitions",
        ),
        Endpoint(
            "post",
            "/api/v1/petitions/{petition_id}/actions",
            "Apply a status-machine action (illegal moves: 409)",
            STAFF,
            request=ActionBody,
            response=_wrap("petition", OFFICIAL_PETITION),
            tag="petitions",
        ),
        Endpoint(
            "get",
            "/api/v1/petitions/{petition_id}/notes",
            "Internal notes",
            STAFF,
            response=_wrap("notes", {"type": "array", "items": NOTE}),
            tag="petitions",
        ),
        Endpoint(
            "post",
            "/api/v1/petitions/{petition_id}/notes",
            "Add an internal note",
            STAFF,
            request=NoteBody,
            status=201,
            response=_wrap("note", NOTE),
            tag="petitions",
        ),
        Endpoint(
            "get",
            "/api/v1/petitions/{petition_id}/events",
            "Audit trail",
            STAFF,
            response=_wrap("events", {"type": "array", "items": EVENT}),
            tag="petitions",
        ),
        Endpoint(
            "get",
            "/api/v1/petitions/{petition_id}/media/{media_id}",
            "A recorded message or photo",
            STAFF,
            binary_response="application/octet-stream",
            tag="petitions",
        ),
        Endpoint(
            "get",
            "/api/v1/answer-templates",
            "Saved answers usable by the caller",
            STAFF,
            response=_wrap("templates", {"type": "array", "items": TEMPLATE}),
            tag="petitions",
        ),
        Endpoint(
            "post",
            "/api/v1/answer-templates",
            "Save an answer template",
            STAFF,
            request=TemplateBody,
            status=201,
            response=_wrap("template", TEMPLATE),
            tag="petitions",
        ),
        Endpoint(
            "get",
            "/api/v1/admin/departments",
            "Departments",
            ADMIN,
            response=_wrap("departments", {"type": "array", "items": DEPARTMENT}),
            tag="admin",
        ),
        Endpoint(
            "post",
            "/api/v1/admin/departments",
            "Add a department",
            ADMIN,
            request=DepartmentBody,
            status=201,
            response=_wrap("department", DEPARTMENT),
            tag="admin",
        ),
        Endpoint(
            "patch",
            "/api/v1/admin/departments/{department_id}",
            "Rename or (de)activate a department",
            ADMIN,
            request=DepartmentPatch,
            response=_wrap("department", DEPARTMENT),
            tag="admin",
        ),
        Endpoint(
            "get",
            "/api/v1/admin/petitions/stats",
            "Statistics: by village and type, median time to answer, overdue rate",
            ADMIN,
            response=obj(
                {
                    "by_village": {"type": "array"},
                    "by_type": {"type": "array"},
                    "median_hours_to_answer": {"type": ["number", "null"]},
                    "overdue_rate": {"type": ["number", "null"]},
                    "total": _I,
                }
            ),
            tag="admin",
        ),
    )
