"""URLs of the petitions feature: kiosk and official pages, and the JSON API."""

from __future__ import annotations

from aiohttp import web

from server.petitions import admin, api, views


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/kiosk/request", views.kiosk_request_page)
    r.add_get("/kiosk/status", views.kiosk_status_page)
    r.add_get("/kiosk/public", views.kiosk_public_page)
    r.add_get("/official/requests", views.inbox_page)
    r.add_post("/official/requests/bulk-answer", views.bulk_answer_submit)
    r.add_get("/official/requests/{petition_id}", views.detail_page)
    r.add_post("/official/requests/{petition_id}/action", views.action_submit)
    r.add_post("/official/requests/{petition_id}/notes", views.note_submit)
    r.add_get("/admin/departments", admin.departments_page)
    r.add_post("/admin/departments", admin.departments_submit)
    r.add_get("/admin/answer-templates", admin.templates_page)
    r.add_post("/admin/answer-templates", admin.templates_submit)
    r.add_get("/admin/petitions/stats", admin.stats_page)
    r.add_get("/admin/petitions.csv", admin.export_petitions)

    r.add_post("/api/v1/kiosk/petitions", api.file_petition)
    r.add_post("/api/v1/kiosk/petitions/status", api.check_status)
    r.add_post("/api/v1/kiosk/petitions/withdraw", api.withdraw)
    r.add_get("/api/v1/kiosk/petitions/public", api.list_public)
    r.add_get("/api/v1/kiosk/petitions/public/{petition_id}", api.get_public)
    r.add_post("/api/v1/kiosk/petitions/public/{petition_id}/support", api.support)
    r.add_post("/api/v1/kiosk/visits", api.start_visit)

    r.add_get("/api/v1/petitions", api.list_petitions)
    r.add_post("/api/v1/petitions/bulk-answer", api.bulk_answer)
    r.add_get("/api/v1/petitions/{petition_id}", api.get_petition)
    r.add_post("/api/v1/petitions/{petition_id}/actions", api.act)
    r.add_get("/api/v1/petitions/{petition_id}/notes", api.list_notes)
    r.add_post("/api/v1/petitions/{petition_id}/notes", api.add_note)
    r.add_get("/api/v1/petitions/{petition_id}/events", api.list_events)
    r.add_get("/api/v1/petitions/{petition_id}/media/{media_id}", api.get_media)
    r.add_get("/api/v1/answer-templates", admin.api_templates)
    r.add_post("/api/v1/answer-templates", admin.api_add_template)
    r.add_get("/api/v1/admin/departments", admin.api_departments)
    r.add_post("/api/v1/admin/departments", admin.api_add_department)
    r.add_patch("/api/v1/admin/departments/{department_id}", admin.api_patch_department)
    r.add_get("/api/v1/admin/petitions/stats", admin.api_stats)
