"""SIGTERM of the real server process: every connected socket is told ``server_restarting`` and
then closed by the server (a transport close, so clients reconnect by themselves), and the process
exits 0. Before, sockets learnt nothing and were only cut when the process finally exited."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.faults_restart.test_restart_media import in_thread
from tests.petitions.live import prepare

pytestmark = pytest.mark.network


async def test_sigterm_tells_every_socket_and_closes_it(tmp_path: Path) -> None:
    server = in_thread(lambda: prepare(tmp_path))
    await asyncio.to_thread(server.start)
    events: list[tuple[str, Any, Any]] = []
    sockets = [socketio.AsyncClient(reconnection=False) for _ in range(2)]
    try:
        for sock in sockets:
            sock.on("server_restarting", lambda data=None, s=sock: events.append(("restarting", s, data)))
            sock.on("disconnect", lambda *args, s=sock: events.append(("disconnect", s, None)))
            await sock.connect(
                server.base_url, auth={"token": server.seeded.kiosk_token}, transports=["websocket"]
            )
        assert server.process is not None
        server.process.terminate()
        assert await asyncio.to_thread(server.process.wait, 60) == 0
        server.process = None
        await asyncio.sleep(0.5)
    finally:
        for sock in sockets:
            if sock.connected:
                await sock.disconnect()
        await asyncio.to_thread(server.stop)
    for sock in sockets:
        mine = [(kind, data) for kind, s, data in events if s is sock]
        # Told first, with what to do, then closed.
        assert mine == [("restarting", {"reconnect": "now"}), ("disconnect", None)], mine
