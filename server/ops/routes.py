"""Operations URLs: the Prometheus scrape and the IT admin's system page."""

from __future__ import annotations

from aiohttp import web

from server.ops import views


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/metrics", views.metrics_endpoint)
    r.add_get("/admin/system", views.system_page)
