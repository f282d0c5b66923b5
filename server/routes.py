"""Every URL of Maeul in one table. Each handler declares its roles with ``@allow``."""

from __future__ import annotations

from aiohttp import web

from server.auth import accounts
from server.auth import views as auth_views
from server.duty import routes as duty_routes
from server.kiosks import views as kiosk_views
from server.meetings import routes as meetings_routes
from server.notices import routes as notices_routes
from server.petitions import routes as petitions_routes
from server.rendering import STATIC_DIR
from server.rooms import routes as rooms_routes
from server.views import areas, health


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", areas.index)
    r.add_get("/healthz", health.healthz)
    r.add_get("/readyz", health.readyz)
    r.add_get("/login", auth_views.login_page)
    r.add_post("/login", auth_views.login_submit)
    r.add_post("/logout", auth_views.logout)
    r.add_get("/official", areas.official_home)
    r.add_get("/admin", areas.admin_home)
    r.add_get("/admin/kiosks", kiosk_views.admin_kiosks_page)
    r.add_post("/admin/kiosks/{kiosk_id}/revoke", kiosk_views.admin_revoke_kiosk)
    r.add_post("/admin/kiosks/{kiosk_id}/enrollment", kiosk_views.admin_reenroll_kiosk)
    r.add_get("/kiosk", kiosk_views.kiosk_home)
    r.add_get("/kiosk/enroll", kiosk_views.enroll_page)
    r.add_post("/kiosk/enroll", kiosk_views.enroll_submit)

    r.add_post("/api/v1/session", auth_views.api_login)
    r.add_delete("/api/v1/session", auth_views.api_logout)
    r.add_get("/api/v1/me", auth_views.api_me)
    r.add_post("/api/v1/kiosk/enroll", kiosk_views.api_enroll)
    r.add_post("/api/v1/kiosk/heartbeat", kiosk_views.api_heartbeat)
    r.add_get("/api/v1/admin/kiosks", kiosk_views.api_list_kiosks)
    r.add_post("/api/v1/admin/kiosks", kiosk_views.api_create_kiosk)
    r.add_post("/api/v1/admin/kiosks/{kiosk_id}/revoke", kiosk_views.api_revoke_kiosk)

    accounts.setup_routes(app)
    petitions_routes.setup_routes(app)
    notices_routes.setup_routes(app)
    duty_routes.setup_routes(app)
    rooms_routes.setup_routes(app)
    meetings_routes.setup_routes(app)

    r.add_static("/static/", STATIC_DIR, append_version=True, name="static")
