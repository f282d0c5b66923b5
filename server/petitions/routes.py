"""URLs of the petitions feature (API now; pages are added by ``views``)."""

from __future__ import annotations

from aiohttp import web

from server.petitions import api


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/kiosk/petitions", api.file_petition)
    r.add_post("/api/v1/kiosk/petitions/status", api.check_status)
    r.add_get("/api/v1/kiosk/petitions/public", api.list_public)
    r.add_get("/api/v1/kiosk/petitions/public/{petition_id}", api.get_public)
    r.add_post("/api/v1/kiosk/petitions/public/{petition_id}/support", api.support)

    r.add_get("/api/v1/petitions", api.list_petitions)
    r.add_post("/api/v1/petitions/bulk-answer", api.bulk_answer)
    r.add_get("/api/v1/petitions/{petition_id}", api.get_petition)
    r.add_post("/api/v1/petitions/{petition_id}/actions", api.act)
    r.add_get("/api/v1/petitions/{petition_id}/notes", api.list_notes)
    r.add_post("/api/v1/petitions/{petition_id}/notes", api.add_note)
    r.add_get("/api/v1/petitions/{petition_id}/events", api.list_events)
    r.add_get("/api/v1/petitions/{petition_id}/media/{media_id}", api.get_media)
