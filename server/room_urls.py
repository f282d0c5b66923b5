"""Where a caller opens a room's meeting page: kiosks have their own full-screen page."""

from __future__ import annotations

from server.auth.roles import Role


def room_url(role: Role, room_id: int) -> str:
    """The meeting page of ``room_id`` for a caller of ``role`` (kiosk or official/admin)."""
    prefix = "/kiosk/rooms/" if role is Role.KIOSK else "/rooms/"
    return f"{prefix}{room_id}"
