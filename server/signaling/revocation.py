"""Close a revoked (or re-enrolled) kiosk's open sockets immediately."""

from __future__ import annotations

import logging

import socketio

from server.auth.participant_ids import kiosk_participant_id
from server.signaling.guard import end_principal_sockets

log = logging.getLogger(__name__)


def kiosk_room(kiosk_id: int) -> str:
    """The socket.io room every socket of one kiosk is in (for a message queue across processes)."""
    return f"kiosk:{kiosk_id}"


async def disconnect_kiosk(sio: socketio.AsyncServer, kiosk_id: int) -> int:
    """Disconnect every socket of a kiosk in this process (each is told ``revoked`` first); returns
    how many were closed. Other processes close theirs within ``MAEUL_SOCKET_RECHECK_SECONDS``
    (their sweep finds the token refused)."""
    closed = await end_principal_sockets(sio, kiosk_participant_id(kiosk_id))
    if closed:
        log.warning("revoked kiosk disconnected", extra={"kiosk_id": kiosk_id, "sockets": closed})
    return closed
