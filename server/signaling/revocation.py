"""Close a revoked kiosk's open sockets immediately."""

from __future__ import annotations

import logging

import socketio

log = logging.getLogger(__name__)


def kiosk_room(kiosk_id: int) -> str:
    """The socket.io room every socket of one kiosk is in."""
    return f"kiosk:{kiosk_id}"


async def disconnect_kiosk(sio: socketio.AsyncServer, kiosk_id: int) -> int:
    """Disconnect every socket of a kiosk in this process; returns how many were closed.
    (With several processes, socket.io's message queue carries the disconnect to the others.)"""
    room = kiosk_room(kiosk_id)
    sids = [sid for sid, _eio_sid in sio.manager.get_participants("/", room)]
    for sid in sids:
        await sio.emit("revoked", {"code": "kiosk_revoked", "message": "this kiosk was revoked"}, to=sid)
        await sio.disconnect(sid)
    if sids:
        log.warning("revoked kiosk disconnected", extra={"kiosk_id": kiosk_id, "sockets": len(sids)})
    return len(sids)
