"""Notice URLs."""

from __future__ import annotations

from aiohttp import web

from server.notices import views


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/official/notices", views.notices_page)
    r.add_post("/official/notices", views.notices_submit)
    r.add_get("/official/notices/{notice_id}", views.notice_page)
    r.add_post("/official/notices/{notice_id}/withdraw", views.notice_withdraw)
    r.add_get("/official/notices/{notice_id}/media", views.official_media)
    r.add_get("/kiosk/notices/{notice_id}/media", views.kiosk_media)
    r.add_get("/api/v1/notices", views.api_list_notices)
    r.add_post("/api/v1/notices", views.api_post_notice)
    r.add_get("/api/v1/notices/{notice_id}/deliveries", views.api_deliveries)
    r.add_get("/api/v1/kiosk/notices", views.api_kiosk_notices)
    r.add_post("/api/v1/kiosk/notices/{notice_id}/shown", views.api_kiosk_shown)
