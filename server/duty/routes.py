"""Duty-call URLs."""

from __future__ import annotations

from aiohttp import web

from server.duty import views


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/kiosk/call", views.kiosk_call_page)
    r.add_post("/api/v1/duty/availability", views.api_availability)
    r.add_get("/api/v1/duty/ringing", views.api_ringing)
    r.add_post("/api/v1/duty/calls/{call_id}/answer", views.api_answer)
    r.add_post("/api/v1/kiosk/duty-calls", views.api_kiosk_start)
    r.add_get("/api/v1/kiosk/duty-calls/{call_id}", views.api_kiosk_call)
    r.add_post("/api/v1/kiosk/duty-calls/{call_id}/cancel", views.api_kiosk_cancel)
