"""The one hook signaling calls into: count each meeting event by name and result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from server.keys import METRICS

EventHandler = Callable[[str, Any], Awaitable[dict[str, Any]]]


def counted_event(app: web.Application, name: str, handler: EventHandler) -> EventHandler:
    """Wrap a registered event handler (which already turns every failure into an error ack) so
    its result is counted in ``maeul_socket_events_total{event, result}``."""

    async def run(sid: str, data: Any = None) -> dict[str, Any]:
        ack = await handler(sid, data)
        metrics = app.get(METRICS)
        if metrics is not None:
            metrics.count_socket_event(name, ack)
        return ack

    return run
