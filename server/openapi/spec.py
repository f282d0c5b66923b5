"""The vocabulary of Maeul's OpenAPI declarations: ``Endpoint`` and the JSON-schema builders.

Each domain's ``openapi_spec`` module declares its endpoints as an immutable tuple of ``Endpoint``
(method, path, summary, roles, request model, response schema) built from this module; request
bodies and query strings come from the same pydantic models the handlers validate with, so the
document cannot drift from the validation. ``server.openapi.document`` assembles the document.

This module is a leaf: it imports no domain and nothing else from ``server`` (a test holds that),
so every domain's spec can import it and the aggregator can import every domain's spec without an
import circle.

Every builder returns a fresh plain dict: a schema several endpoints share is then neither a
module-level mutable value nor something ``json.dumps`` cannot serialise (a ``MappingProxyType``
nested in a response would break ``/api/v1/openapi.json``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel


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


def _scalar(name: str, null: bool, keywords: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": [name, "null"] if null else name, **keywords}


def string(*, null: bool = False, **keywords: Any) -> dict[str, Any]:
    """A string (``null=True``: or null); keywords add e.g. ``pattern`` or ``description``."""
    return _scalar("string", null, keywords)


def integer(*, null: bool = False, **keywords: Any) -> dict[str, Any]:
    return _scalar("integer", null, keywords)


def number(*, null: bool = False) -> dict[str, Any]:
    return _scalar("number", null, {})


def boolean() -> dict[str, Any]:
    return _scalar("boolean", False, {})


def timestamp(*, null: bool = False) -> dict[str, Any]:
    """An ISO 8601 date-time string."""
    return string(null=null, format="date-time")


def enum(*values: str) -> dict[str, Any]:
    """A string that is one of ``values``."""
    return {"type": "string", "enum": list(values)}


def array(items: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An array of ``items`` (None: of anything)."""
    return {"type": "array"} if items is None else {"type": "array", "items": dict(items)}


def envelope(key: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The usual response body: ``{key: schema}``, the key required."""
    return obj({key: dict(schema)}, required=(key,))


def listing(key: str, items: Mapping[str, Any]) -> dict[str, Any]:
    """A list response: ``{key: [items...]}``, the key required."""
    return envelope(key, array(items))


def extended(
    base: Mapping[str, Any], properties: Mapping[str, Any], *, required: Iterable[str] = ()
) -> dict[str, Any]:
    """``base`` with more properties (a view of a resource that shows more of it)."""
    return {"allOf": [dict(base), obj(properties, required=required)]}


def ids() -> dict[str, Any]:
    """A list of database ids."""
    return array(integer())
