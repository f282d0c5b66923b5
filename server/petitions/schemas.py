"""Request bodies (pydantic) and JSON views of petitions.

Three views of a petition: ``public_json`` (other kiosks: no personal fields), ``resident_json``
(the resident with receipt + PIN) and ``official_json`` (personal data masked unless ``personal``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator

from server.petitions import masking
from server.petitions.deadlines import PetitionType
from server.petitions.models import Petition, PetitionEvent, PetitionMedia, PetitionNote
from server.petitions.visits import VISIT_PATTERN
from server.petitions.workflow import Action, PetitionStatus
from server.validation import Id, Input

PetitionTypeName = Literal["question_procedure", "question_law", "suggestion", "grievance", "simple"]
StatusName = Literal["received", "in_progress", "info_requested", "transferred", "answered", "closed"]
ActionName = Literal[
    "assign",
    "request_info",
    "supplement",
    "answer",
    "close",
    "transfer",
    "receive",
    "extend",
    "reopen",
    "withdraw",
]


class FileInput(Input):
    """What a kiosk sends to file a petition (JSON, or the ``petition`` part of a multipart body)."""

    petition_type: PetitionTypeName
    department_id: int | None = Field(default=None, gt=0, le=2**31 - 1)
    title: str = Field(default="", max_length=200)
    body: str = Field(default="", max_length=5000)
    phone: str = Field(min_length=7, max_length=20)
    name: str | None = Field(default=None, max_length=60)
    is_public: bool = False

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        try:
            return masking.normalize_phone(value)
        except ValueError as exc:
            raise ValueError("not a Korean phone number") from exc

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return value or None


class StatusCheckInput(Input):
    receipt_no: str = Field(min_length=1, max_length=40)
    pin: str = Field(pattern=r"^[0-9]{4}$")


class SupportInput(Input):
    # A token from POST /api/v1/kiosk/visits (see petitions/visits.py), never one the page made up.
    visit: str = Field(min_length=1, max_length=120, pattern=VISIT_PATTERN)


class ActionBody(Input):
    action: ActionName
    assignee_id: int | None = Field(default=None, gt=0, le=2**31 - 1)
    department_id: int | None = Field(default=None, gt=0, le=2**31 - 1)
    reason: str | None = Field(default=None, max_length=2000)
    extension_days: int | None = Field(default=None, ge=1, le=90)
    answer: str | None = Field(default=None, max_length=10000)


class BulkAnswerBody(Input):
    petition_ids: list[Id] = Field(min_length=1, max_length=100)
    answer: str = Field(min_length=1, max_length=10000)


class NoteBody(Input):
    text: str = Field(min_length=1, max_length=5000)


class TemplateBody(Input):
    title: str = Field(min_length=1, max_length=120)
    body: str = Field(min_length=1, max_length=10000)
    department_id: int | None = Field(default=None, gt=0, le=2**31 - 1)


class DepartmentBody(Input):
    name_ko: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=120)


class DepartmentPatch(Input):
    name_ko: str | None = Field(default=None, min_length=1, max_length=60)
    name_en: str | None = Field(default=None, min_length=1, max_length=120)
    is_active: bool | None = None


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def safe_mask_phone(phone: str) -> str:
    try:
        return masking.mask_phone(phone)
    except ValueError:
        return "***"


def safe_mask_name(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return masking.mask_name(name)
    except ValueError:
        return "*"


def media_json(petition: Petition, media: PetitionMedia) -> dict[str, Any]:
    return {
        "id": media.id,
        "kind": media.kind,
        "content_type": media.content_type,
        "size_bytes": media.size_bytes,
        "duration_s": media.duration_s,
        "has_video": media.has_video,
        "url": f"/api/v1/petitions/{petition.id}/media/{media.id}",
    }


def _common(petition: Petition, deadline: str) -> dict[str, Any]:
    status = PetitionStatus(petition.status)
    ptype = PetitionType(petition.petition_type)
    return {
        "id": petition.id,
        "petition_type": ptype.value,
        "petition_type_label": ptype.label_ko,
        "status": status.value,
        "status_label": status.label_ko,
        "title": petition.title,
        "village": petition.village.full_name_ko,
        "department": petition.department.name_ko if petition.department else None,
        "received_at": _iso(petition.received_at),
        "due_at": _iso(petition.due_at),
        "deadline_state": deadline,
        "support_count": petition.support_count,
    }


def public_json(petition: Petition, deadline: str) -> dict[str, Any]:
    body = _common(petition, deadline)
    body.update(body_text=petition.body, answer=petition.answer_text, answered_at=_iso(petition.answered_at))
    return body


def resident_json(petition: Petition, deadline: str) -> dict[str, Any]:
    body = public_json(petition, deadline)
    body.update(
        receipt_no=petition.receipt_no,
        is_public=petition.is_public,
        info_request=petition.info_request_text
        if petition.status == PetitionStatus.INFO_REQUESTED.value
        else None,
        extension_reason=petition.extension_reason,
    )
    return body


def official_json(
    petition: Petition, deadline: str, *, personal: bool, actions: list[str] | None = None
) -> dict[str, Any]:
    body = resident_json(petition, deadline)
    body.update(
        department_id=petition.department_id,
        village_id=petition.village_id,
        kiosk_id=petition.kiosk_id,
        assignee_id=petition.assignee_id,
        info_requests_count=petition.info_requests_count,
        extended=petition.extended,
        resident_name=petition.resident_name if personal else safe_mask_name(petition.resident_name),
        resident_phone=masking.format_phone(petition.resident_phone)
        if personal
        else safe_mask_phone(petition.resident_phone),
        personal_data_masked=not personal,
        media=[media_json(petition, m) for m in petition.media],
    )
    if actions is not None:
        body["allowed_actions"] = actions
    return body


def note_json(note: PetitionNote) -> dict[str, Any]:
    return {"id": note.id, "author": note.author_name, "text": note.text, "created_at": _iso(note.created_at)}


def event_json(event: PetitionEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": _iso(event.at),
        "actor": event.actor,
        "actor_role": event.actor_role,
        "action": event.action,
        "details": event.details,
    }


ACTIONS = tuple(a.value for a in Action)
