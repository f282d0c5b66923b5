"""Builders for the JSON schemas the features' OpenAPI declarations repeat (see ``server.openapi``).

Every builder returns a fresh plain dict: a schema several endpoints share is then neither a
module-level mutable value nor something ``json.dumps`` cannot serialise (a ``MappingProxyType``
nested in a response would break ``/api/v1/openapi.json``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from server.openapi import obj


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
