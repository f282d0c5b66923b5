"""Every URL of Maeul: each domain mounts its own (its ``routes.setup_routes``); here are only the
landing pages and probes, the OpenAPI document and the static files. Each handler declares its roles
with ``@allow``."""

from __future__ import annotations

from aiohttp import web

from server.auth import routes as auth_routes
from server.duty import routes as duty_routes
from server.kiosks import routes as kiosks_routes
from server.meetings import routes as meetings_routes
from server.notices import routes as notices_routes
from server.openapi import document as openapi_document
from server.ops import routes as ops_routes
from server.petitions import routes as petitions_routes
from server.rendering import STATIC_DIR
from server.rooms import routes as rooms_routes
from server.views import areas, health


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", areas.index)
    r.add_get("/healthz", health.healthz)
    r.add_get("/readyz", health.readyz)
    r.add_get("/official", areas.official_home)
    r.add_get("/admin", areas.admin_home)
    r.add_get("/api/v1/openapi.json", openapi_document.openapi_json)

    auth_routes.setup_routes(app)
    kiosks_routes.setup_routes(app)
    petitions_routes.setup_routes(app)
    notices_routes.setup_routes(app)
    duty_routes.setup_routes(app)
    rooms_routes.setup_routes(app)
    meetings_routes.setup_routes(app)
    ops_routes.setup_routes(app)

    r.add_static("/static/", STATIC_DIR, append_version=True, name="static")
