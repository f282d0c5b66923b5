"""Names shared by the signaling modules: socket.io rooms (participant ids are
:mod:`server.auth.participant_ids`)."""

from __future__ import annotations


def socket_room(room_id: str) -> str:
    """The socket.io room of everybody in one live room."""
    return f"room:{room_id}"


def chair_room(room_id: str) -> str:
    """The socket.io room of the people chairing a room's meeting (they get the lobby)."""
    return f"chair:{room_id}"
