"""The OpenAPI document at /api/v1/openapi.json covers exactly the /api/v1 routes the app serves.

Every (method, path) the router serves under /api/v1 is documented, nothing is documented that the
app does not serve, and each operation's ``x-roles`` are the roles of its handler's ``@allow``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.routing import allowed_roles
from tests.conftest import make_settings

# The document does not describe itself.
SELF = ("GET", "/api/v1/openapi.json")

Route = tuple[str, str]


def _api_routes(app: web.Application) -> dict[Route, frozenset[str]]:
    """(METHOD, path template) -> roles of every /api/v1 route, without aiohttp's HEAD twins of GETs."""
    routes: dict[Route, frozenset[str]] = {}
    for route in app.router.routes():
        if route.resource is None or route.method == "HEAD":
            continue
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if not path or not (path == "/api/v1" or path.startswith("/api/v1/")):
            continue
        roles = allowed_roles(route.handler)
        routes[(route.method, path)] = frozenset(str(r) for r in roles or ())
    return routes


def _documented(document: dict[str, Any]) -> dict[Route, frozenset[str]]:
    return {
        (method.upper(), path): frozenset(operation["x-roles"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


async def _served_and_documented(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], tmp_path: Path
) -> tuple[dict[Route, frozenset[str]], dict[Route, frozenset[str]]]:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/maeul.db", tmp_path))
    client = await aiohttp_client(app)
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    served = _api_routes(app)
    assert served.pop(SELF, None) is not None
    return served, _documented(document)


async def test_every_api_route_is_documented_and_nothing_else(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    served, documented = await _served_and_documented(aiohttp_client, tmp_path)
    # A sanity floor: the walk over the router really found the API (not an empty set).
    assert len(served) > 50
    undocumented = sorted(set(served) - set(documented))
    assert not undocumented, f"routes missing from the OpenAPI document: {undocumented}"
    unserved = sorted(set(documented) - set(served))
    assert not unserved, f"documented but not served: {unserved}"


async def test_documented_roles_are_the_handlers_roles(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    served, documented = await _served_and_documented(aiohttp_client, tmp_path)
    wrong = {
        route: {"documented": sorted(documented[route]), "allow": sorted(roles)}
        for route, roles in served.items()
        if route in documented and documented[route] != roles
    }
    assert not wrong, f"x-roles differ from @allow: {wrong}"


async def test_rooms_are_documented(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/maeul.db", tmp_path))
    client = await aiohttp_client(app)
    document = await (await client.get("/api/v1/openapi.json")).json()
    paths = document["paths"]
    still = paths["/api/v1/rooms/{room_id}/stills/{participant_id}"]["get"]
    assert set(still["responses"]["200"]["content"]) == {"image/jpeg"}
    parameters = {p["name"]: p["schema"] for p in still["parameters"]}
    assert parameters["room_id"]["type"] == "integer"
    assert parameters["participant_id"]["type"] == "string"
    create = paths["/api/v1/admin/rooms"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateRoomInput"
    }
    assert "201" in create["responses"]
    invite = paths["/api/v1/admin/rooms/{room_id}/invitations"]["post"]
    assert invite["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InviteInput"
    }
    assert document["components"]["schemas"]["CreateRoomInput"]["additionalProperties"] is False
