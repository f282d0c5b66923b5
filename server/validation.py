"""Input validation: JSON bodies and forms into pydantic models, errors as structured 400s."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.errors import BadRequest, PayloadTooLarge

M = TypeVar("M", bound=BaseModel)

MAX_JSON_BYTES = 64 * 1024


class Input(BaseModel):
    """Base for request bodies: unknown fields are an error, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def _details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or None, "problem": err["type"], "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(
            "the request body is not valid", code="validation_failed", details=_details(exc)
        ) from exc


async def json_body(request: web.Request, model: type[M]) -> M:
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"JSON bodies are limited to {MAX_JSON_BYTES} bytes")
    if request.content_type != "application/json":
        raise BadRequest("send the body as application/json", code="unsupported_media_type")
    raw = await request.content.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"JSON bodies are limited to {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", code="malformed_json")
    return validate(model, data)


async def form_body(request: web.Request, model: type[M], *, ignore: tuple[str, ...] = ("csrf_token",)) -> M:
    form = await request.post()
    data = {key: value for key, value in form.items() if key not in ignore and isinstance(value, str)}
    return validate(model, data)


MAX_ID = 2**31 - 1

#: A database id in a request body: bounded, so a huge number is a 400 and not a database overflow.
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def is_id(raw: str, *, max_digits: int = 10) -> bool:
    """A positive database id written in ASCII digits. (``str.isdigit`` alone accepts '²' and
    other Unicode digits that ``int`` then refuses: a 500 instead of a 400.)"""
    return raw.isascii() and raw.isdigit() and len(raw) <= max_digits and 0 < int(raw) <= MAX_ID


def path_id(request: web.Request, name: str) -> int:
    """The integer id in the URL's ``{name}``, or a structured 400."""
    raw = request.match_info[name]
    if not is_id(raw):
        raise BadRequest(f"{name} must be a positive integer", code=f"invalid_{name}")
    return int(raw)
