"""Telling every connected page that the server is going away (SIGTERM: a restart or an upgrade).

aiohttp runs ``on_shutdown`` after it stopped listening and before it waits for open requests.
Each socket gets ``server_restarting``; then every engine.io connection is closed. Without that a
websocket is an open request aiohttp waits for (socket.io's ping timeout, 20 s) while the halls
sit in a meeting nobody serves. The close is a transport close, not a socket.io "disconnect"
packet, so clients reconnect by themselves; the notice tells them to try again at once and often
instead of backing off, and the meeting pages rejoin as soon as the server answers again.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from server.keys import SIO
from server.signaling.events import ServerRestarting, emit

log = logging.getLogger(__name__)

EVENT = ServerRestarting.NAME
#: Time for the notice to leave the send queues before the connections close.
FLUSH_SECONDS = 0.3


async def announce_restart(app: web.Application) -> None:
    sio = app[SIO]
    sockets = list(sio.eio.sockets.values())
    if not sockets:
        return
    await emit(sio, ServerRestarting())
    await asyncio.sleep(FLUSH_SECONDS)
    # Each socket sends engine.io's CLOSE packet and forgets its participant (the hub's disconnect).
    await asyncio.gather(*(s.close(wait=True) for s in sockets), return_exceptions=True)
    for s in sockets:
        # engine.io's own way to end a websocket's writer (it does the same when the reader ends):
        # the writer then closes the websocket at once. Otherwise it waits for the client, which
        # (python-socketio) may only notice at the ping timeout.
        s.queue.put_nowait(None)
    log.info("server stopping: pages told to reconnect, sockets closed", extra={"sockets": len(sockets)})
