"""URLs of the kiosks domain: the kiosk's home and enrollment, the agent's heartbeat, and the admin's
fleet (mounted by ``server.routes``)."""

from __future__ import annotations

from aiohttp import web

from server.kiosks import views


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/kiosks", views.admin_kiosks_page)
    r.add_post("/admin/kiosks/{kiosk_id}/revoke", views.admin_revoke_kiosk)
    r.add_post("/admin/kiosks/{kiosk_id}/enrollment", views.admin_reenroll_kiosk)
    r.add_get("/kiosk", views.kiosk_home)
    r.add_get("/kiosk/enroll", views.enroll_page)
    r.add_post("/kiosk/enroll", views.enroll_submit)

    r.add_post("/api/v1/kiosk/enroll", views.api_enroll)
    r.add_post("/api/v1/kiosk/heartbeat", views.api_heartbeat)
    r.add_get("/api/v1/admin/kiosks", views.api_list_kiosks)
    r.add_post("/api/v1/admin/kiosks", views.api_create_kiosk)
    r.add_post("/api/v1/admin/kiosks/{kiosk_id}/revoke", views.api_revoke_kiosk)
