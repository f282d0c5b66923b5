"""Names shared by the signaling modules: socket.io rooms and participant ids."""

from __future__ import annotations

from server.auth.roles import Principal, Role


def socket_room(room_id: str) -> str:
    """The socket.io room of everybody in one meeting room."""
    return f"meeting:{room_id}"


def chair_room(room_id: str) -> str:
    """The socket.io room of the people chairing a meeting (they get the lobby)."""
    return f"chair:{room_id}"


def participant_id(principal: Principal) -> str:
    """One id per device/account: a newer join of the same kiosk or account replaces the older."""
    return f"k{principal.id}" if principal.role is Role.KIOSK else f"a{principal.id}"
