"""The OpenAPI 3.1 document of Maeul's JSON API, served at ``/api/v1/openapi.json``.

It assembles every domain's declarations (each domain's ``openapi_spec``, written in the vocabulary
of ``server.openapi.spec``) into one document; ``server.routes`` mounts ``openapi_json``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from server.auth.openapi_spec import account_endpoints, session_endpoints
from server.auth.roles import PUBLIC
from server.duty.openapi_spec import duty_endpoints
from server.kiosks.openapi_spec import kiosk_endpoints
from server.meetings.openapi_spec import meeting_endpoints
from server.notices.openapi_spec import notice_endpoints
from server.openapi.spec import Endpoint, obj, ref
from server.petitions.openapi_spec import petition_endpoints
from server.rooms.openapi_spec import room_endpoints
from server.routing import allow
from server.validation import MAX_ID

JSON = "application/json"
_PARAM = re.compile(r"{([a-z_]+)}")
_ID_SCHEMA: Mapping[str, Any] = MappingProxyType({"type": "integer", "minimum": 1, "maximum": MAX_ID})


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


def all_endpoints() -> tuple[Endpoint, ...]:
    """Every domain's endpoints, in the document's order."""
    return (
        session_endpoints()
        + kiosk_endpoints()
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
