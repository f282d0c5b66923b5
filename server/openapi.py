"""The OpenAPI 3.1 document of Maeul's JSON API, served at ``/api/v1/openapi.json``.

Each feature declares its endpoints as an immutable tuple of ``Endpoint`` (method, path, summary,
roles, request model, response schema); request bodies and query strings come from the same
pydantic models the handlers validate with, so the document cannot drift from the validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from server.auth.roles import PUBLIC
from server.routing import allow

JSON = "application/json"
MAX_ID = 2**31 - 1
_PARAM = re.compile(r"{([a-z_]+)}")
_ID_SCHEMA: Mapping[str, Any] = MappingProxyType({"type": "integer", "minimum": 1, "maximum": MAX_ID})


def obj(properties: Mapping[str, Any] | None = None, *, required: Iterable[str] = ()) -> dict[str, Any]:
    """A JSON object schema (a small helper for response schemas)."""
    schema: dict[str, Any] = {"type": "object", "properties": dict(properties or {})}
    required = list(required)
    if required:
        schema["required"] = required
    return schema


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    roles: tuple[str, ...]
    request: type[BaseModel] | None = None
    response: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType(obj()))
    status: int = 200
    query: type[BaseModel] | None = None
    multipart: Mapping[str, Any] | None = None  # extra multipart/form-data body schema
    binary_response: str | None = None  # content type of a file response
    binary_description: str = "The file (Range requests are supported)"
    tag: str = "maeul"
    # Path parameters are database ids unless named here (e.g. a signaling participant id).
    path_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))


ERROR_SCHEMA: Mapping[str, Any] = MappingProxyType(
    obj(
        {
            "error": obj(
                {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {},
                    "request_id": {"type": ["string", "null"]},
                },
                required=("code", "message"),
            )
        },
        required=("error",),
    )
)
_ERRORS = {
    "400": "Invalid input (structured error)",
    "401": "Not authenticated",
    "403": "Not allowed (role or CSRF)",
    "404": "Not found",
    "409": "Conflict with the current state",
    "413": "Payload too large",
    "429": "Too many attempts (see Retry-After)",
}


def _security(roles: tuple[str, ...]) -> list[dict[str, list[str]]]:
    if PUBLIC in roles:
        return [{}]
    schemes: list[dict[str, list[str]]] = []
    if "kiosk" in roles:
        schemes += [{"deviceToken": []}, {"kioskCookie": []}]
    if "official" in roles or "admin" in roles:
        schemes.append({"sessionCookie": []})
    return schemes


def _query_parameters(model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _model_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return ref(model.__name__)


def _operation(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(endpoint.path_schemas.get(name, _ID_SCHEMA)),
        }
        for name in _PARAM.findall(endpoint.path)
    ]
    if endpoint.query is not None:
        parameters += _query_parameters(endpoint.query, components)
    if endpoint.method in ("post", "put", "patch", "delete") and PUBLIC not in endpoint.roles:
        parameters.append(
            {
                "name": "X-CSRF-Token",
                "in": "header",
                "required": False,
                "description": "Required with cookie authentication (from <meta name='csrf-token'>).",
                "schema": {"type": "string"},
            }
        )
    responses: dict[str, Any] = {}
    if endpoint.binary_response:
        responses[str(endpoint.status)] = {
            "description": endpoint.binary_description,
            "content": {
                endpoint.binary_response: {
                    "schema": {"type": "string", "contentMediaType": endpoint.binary_response}
                }
            },
        }
    else:
        responses[str(endpoint.status)] = {
            "description": "Success",
            "content": {JSON: {"schema": dict(endpoint.response)}},
        }
    for status, description in _ERRORS.items():
        responses[status] = {"description": description, "content": {JSON: {"schema": ref("Error")}}}
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": f"{endpoint.method}_{re.sub(r'[^a-z0-9]+', '_', endpoint.path.lower()).strip('_')}",
        "tags": [endpoint.tag],
        "security": _security(endpoint.roles),
        "x-roles": list(endpoint.roles),
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = parameters
    if endpoint.request is not None:
        content: dict[str, Any] = {JSON: {"schema": _model_ref(endpoint.request, components)}}
        if endpoint.multipart is not None:
            content["multipart/form-data"] = dict(endpoint.multipart)
        operation["requestBody"] = {"required": True, "content": content}
    return operation


def build_document(endpoints: Iterable[Endpoint]) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": dict(ERROR_SCHEMA)}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method] = _operation(endpoint, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Maeul API",
            "version": "1",
            "description": "Civic requests (민원) and kiosks of Gangjin County. Errors are "
            "{'error': {'code', 'message', 'details'}}.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "deviceToken": {"type": "http", "scheme": "bearer", "description": "A kiosk's device token"},
                "kioskCookie": {"type": "apiKey", "in": "cookie", "name": "maeul_kiosk"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "maeul_session"},
            },
        },
    }


def foundation_endpoints() -> tuple[Endpoint, ...]:
    """The foundation's API, described here so the document covers every /api/v1 endpoint."""
    from functools import partial

    from server.auth.views import LoginInput
    from server.kiosks.views import CreateKioskInput, EnrollInput, HeartbeatInput

    # Imported here: server.openapi_schemas builds on obj() from this module.
    from server.openapi_schemas import boolean, enum, envelope, integer, listing, string

    auth = partial(Endpoint, tag="auth")
    kiosks = partial(Endpoint, tag="kiosks")
    me = obj(
        {
            "role": enum("kiosk", "official", "admin"),
            "id": integer(),
            "display_name": string(),
            "department_id": integer(null=True),
        },
        required=("role", "id", "display_name"),
    )
    kiosk = obj(
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
    return (
        auth(
            "post",
            "/api/v1/session",
            "Log in (official or admin); sets the session cookie",
            (PUBLIC,),
            request=LoginInput,
            response=me,
            status=201,
        ),
        auth(
            "delete",
            "/api/v1/session",
            "Log out",
            ("official", "admin"),
            response=envelope("status", string()),
        ),
        auth("get", "/api/v1/me", "Who am I", ("kiosk", "official", "admin"), response=me),
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


def all_endpoints() -> tuple[Endpoint, ...]:
    from server.auth.openapi_spec import account_endpoints
    from server.duty.openapi_spec import duty_endpoints
    from server.meetings.openapi_spec import meeting_endpoints
    from server.notices.openapi_spec import notice_endpoints
    from server.petitions.openapi_spec import petition_endpoints
    from server.rooms.openapi_spec import room_endpoints

    return (
        foundation_endpoints()
        + account_endpoints()
        + petition_endpoints()
        + notice_endpoints()
        + duty_endpoints()
        + meeting_endpoints()
        + room_endpoints()
    )


@allow(PUBLIC)
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build_document(all_endpoints()))
