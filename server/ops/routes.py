"""Operations URLs: the Prometheus scrape and the IT admin's system page."""

from __future__ import annotations

from aiohttp import web

from server.ops import retention_views, views


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/metrics", views.metrics_endpoint)
    r.add_get("/admin/system", views.system_page)
    r.add_get("/admin/retention", retention_views.retention_page)
    r.add_post("/admin/retention/holds", retention_views.hold_submit)
