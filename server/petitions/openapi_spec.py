"""OpenAPI declarations of the petitions API (see ``server.openapi.spec``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from server.openapi.spec import (
    Endpoint,
    array,
    boolean,
    enum,
    envelope,
    extended,
    integer,
    listing,
    number,
    obj,
    ref,
    string,
)
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


def _public_petition() -> dict[str, Any]:
    """What anybody may see of a public petition (no personal data)."""
    return obj(
        {
            "id": integer(),
            "petition_type": string(),
            "petition_type_label": string(),
            "status": enum("received", "in_progress", "info_requested", "transferred", "answered", "closed"),
            "status_label": string(),
            "title": string(),
            "village": string(),
            "department": string(null=True),
            "received_at": string(),
            "due_at": string(),
            "deadline_state": enum("on_time", "due_soon", "overdue"),
            "support_count": integer(),
            "body_text": string(),
            "answer": string(null=True),
            "answered_at": string(null=True),
        },
        required=("id", "status", "title", "due_at", "deadline_state"),
    )


def _resident_petition() -> dict[str, Any]:
    """What the resident who filed it sees (with the receipt number and PIN)."""
    return extended(
        _public_petition(),
        {
            "receipt_no": string(),
            "is_public": boolean(),
            "info_request": string(null=True),
            "extension_reason": string(null=True),
        },
        required=("receipt_no",),
    )


def _official_petition() -> dict[str, Any]:
    media = obj(
        {
            "id": integer(),
            "kind": enum("message", "photo"),
            "content_type": string(),
            "size_bytes": integer(),
            "duration_s": number(null=True),
            "has_video": boolean(),
            "url": string(),
        }
    )
    return extended(
        _resident_petition(),
        {
            "department_id": integer(null=True),
            "village_id": integer(),
            "kiosk_id": integer(null=True),
            "assignee_id": integer(null=True),
            "info_requests_count": integer(),
            "extended": boolean(),
            "resident_name": string(null=True),
            "resident_phone": string(description="masked (010-****-1234) unless the caller handles it"),
            "personal_data_masked": boolean(),
            "media": array(media),
            "allowed_actions": array(string()),
        },
    )


def _multipart_file() -> dict[str, Any]:
    """A kiosk's petition with its recorded message and photos."""
    binary = string(contentMediaType="application/octet-stream")
    return {
        "schema": obj(
            {
                "petition": ref("FileInput"),
                "media": {
                    **binary,
                    "description": "Recorded voice/video message (WebM/Ogg/MP4, ≤ 3 minutes, ≤ 40 MB)",
                },
                "photo": {**array(binary), "maxItems": 3, "description": "JPEG/PNG/WebP photos, ≤ 8 MB each"},
            },
            required=("petition",),
        ),
        "encoding": {"petition": {"contentType": "application/json"}},
    }


def petition_endpoints() -> tuple[Endpoint, ...]:
    kiosk = partial(Endpoint, roles=KIOSK, tag="kiosk petitions")
    staff = partial(Endpoint, roles=STAFF, tag="petitions")
    admin = partial(Endpoint, roles=ADMIN, tag="admin")
    public, resident, official = _public_petition(), _resident_petition(), _official_petition()
    note = obj({"id": integer(), "author": string(), "text": string(), "created_at": string(null=True)})
    event = obj(
        {
            "id": integer(),
            "at": string(),
            "actor": string(),
            "actor_role": string(),
            "action": string(),
            "details": {"type": "object"},
        }
    )
    template = obj(
        {"id": integer(), "title": string(), "body": string(), "department_id": integer(null=True)}
    )
    department = obj({"id": integer(), "name_ko": string(), "name_en": string(), "is_active": boolean()})
    one_petition = "/api/v1/petitions/{petition_id}"
    public_petitions = "/api/v1/kiosk/petitions/public"
    return (
        kiosk(
            "post",
            "/api/v1/kiosk/petitions",
            "File a petition from a kiosk (JSON, or multipart with a recorded message). An "
            "Idempotency-Key header (a UUID made by the kiosk) makes resends answer with the same "
            "receipt and PIN (header Idempotent-Replayed: true); the same key with another request is 409",
            request=FileInput,
            multipart=_multipart_file(),
            status=201,
            response=obj(
                {"petition": resident, "pin": string(pattern="^[0-9]{4}$")}, required=("petition", "pin")
            ),
        ),
        kiosk(
            "post",
            "/api/v1/kiosk/petitions/status",
            "Check a petition with its receipt number and PIN (throttled)",
            request=StatusCheckInput,
            response=envelope("petition", resident),
        ),
        kiosk(
            "post",
            "/api/v1/kiosk/petitions/withdraw",
            "The resident withdraws (취하) a petition with its receipt number and PIN (throttled)",
            request=StatusCheckInput,
            response=envelope("petition", resident),
        ),
        kiosk(
            "get",
            public_petitions,
            "Public petitions (no personal data)",
            response=listing("petitions", public),
        ),
        kiosk(
            "get",
            public_petitions + "/{petition_id}",
            "One public petition (no personal data)",
            response=envelope("petition", public),
        ),
        kiosk(
            "post",
            public_petitions + "/{petition_id}/support",
            "Support (공감) once per kiosk visit (the visit token from /api/v1/kiosk/visits)",
            request=SupportInput,
            status=201,
            response=envelope("support_count", integer()),
        ),
        kiosk(
            "post",
            "/api/v1/kiosk/visits",
            "Start a resident's visit: a server-issued token, one support per request per visit (rationed)",
            status=201,
            response=envelope("visit", string()),
        ),
        staff(
            "get",
            "/api/v1/petitions",
            "Petitions the caller may see, earliest deadline first (personal data masked)",
            query=ListQuery,
            response=listing("petitions", official),
        ),
        staff(
            "post",
            "/api/v1/petitions/bulk-answer",
            "Answer several petitions with one text (all or nothing)",
            request=BulkAnswerBody,
            response=listing("answered", integer()),
        ),
        staff(
            "get",
            one_petition,
            "One petition (unmasked for the handling department)",
            response=envelope("petition", official),
        ),
        staff(
            "post",
            one_petition + "/actions",
            "Apply a status-machine action (illegal moves: 409)",
            request=ActionBody,
            response=envelope("petition", official),
        ),
        staff("get", one_petition + "/notes", "Internal notes", response=listing("notes", note)),
        staff(
            "post",
            one_petition + "/notes",
            "Add an internal note",
            request=NoteBody,
            status=201,
            response=envelope("note", note),
        ),
        staff("get", one_petition + "/events", "Audit trail", response=listing("events", event)),
        staff(
            "get",
            one_petition + "/media/{media_id}",
            "A recorded message or photo",
            binary_response="application/octet-stream",
        ),
        staff(
            "get",
            "/api/v1/answer-templates",
            "Saved answers usable by the caller",
            response=listing("templates", template),
        ),
        staff(
            "post",
            "/api/v1/answer-templates",
            "Save an answer template",
            request=TemplateBody,
            status=201,
            response=envelope("template", template),
        ),
        admin("get", "/api/v1/admin/departments", "Departments", response=listing("departments", department)),
        admin(
            "post",
            "/api/v1/admin/departments",
            "Add a department",
            request=DepartmentBody,
            status=201,
            response=envelope("department", department),
        ),
        admin(
            "patch",
            "/api/v1/admin/departments/{department_id}",
            "Rename or (de)activate a department",
            request=DepartmentPatch,
            response=envelope("department", department),
        ),
        admin(
            "get",
            "/api/v1/admin/petitions/stats",
            "Statistics: by village and type, median time to answer, overdue rate",
            response=obj(
                {
                    "by_village": array(),
                    "by_type": array(),
                    "median_hours_to_answer": number(null=True),
                    "overdue_rate": number(null=True),
                    "total": integer(),
                }
            ),
        ),
    )
