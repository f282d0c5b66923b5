"""URLs of rooms and meeting pages (mounted by ``server.routes``)."""

from __future__ import annotations

from aiohttp import web

from server.rooms import views


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/rooms", views.admin_rooms_page)
    r.add_post("/admin/rooms", views.admin_create_room)
    r.add_post("/admin/rooms/{room_id}/close", views.admin_close_room)
    r.add_get("/rooms/{room_id}", views.official_meeting_page)
    r.add_get("/kiosk/rooms/{room_id}", views.kiosk_meeting_page)
    r.add_get("/api/v1/rooms/mine", views.api_my_rooms)
    r.add_get("/api/v1/rooms/{room_id}/stills/{participant_id}", views.api_still)
    r.add_get("/api/v1/admin/rooms", views.api_list_rooms)
    r.add_post("/api/v1/admin/rooms", views.api_create_room)
    r.add_post("/api/v1/admin/rooms/{room_id}/invitations", views.api_invite)
    r.add_post("/api/v1/admin/rooms/{room_id}/close", views.api_close_room)
