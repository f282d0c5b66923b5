"""Every web process's live state, shared through Redis, so that /admin/system on any of them shows
the meetings of all (issue 17).

nginx pins each room's signaling to one web process (docs/scale.md), and a web process knows the
participants, halls and links only of the rooms it holds. So each web process publishes its own
:class:`~server.ops.live.LiveState` every ``WEB_REFRESH_S`` under ``maeul:live:<web id>``, with
the liveness record's TTL (a process that dies drops out of the page within 3 s), and the system
page merges this process's fresh state with the others' (at most a second old).

/metrics stays per process: Prometheus scrapes every web process and sums, so exporting the
others' rooms again would count them twice.

With Redis away the page shows this process's rooms and says that the others' cannot be read;
the sharing loop logs the first failure of a streak and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from redis.exceptions import RedisError

from server.background import FailureStreak, finish_or_cancel
from server.cluster.plane import MEDIA
from server.cluster.registry import WEB_REFRESH_S
from server.cluster.remote import RemoteSfu
from server.errors import describe
from server.ops.live import LiveState, app_live_state, merged, state_from_json, state_to_json

log = logging.getLogger(__name__)

#: How long shutdown waits for a share under way before it cancels it.
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class ClusterLive:
    """What the system page shows: the merged state, and whether every live web process's part
    could be read (False: Redis away, or a record unreadable; this process's rooms are in)."""

    state: LiveState
    complete: bool


def _remote(app: web.Application) -> RemoteSfu | None:
    plane = app.get(MEDIA)
    return plane if isinstance(plane, RemoteSfu) else None


async def cluster_live_state(app: web.Application) -> ClusterLive:
    own = app_live_state(app) or LiveState(())
    remote = _remote(app)
    if remote is None:  # run.py serve: one process holds everything
        return ClusterLive(own, True)
    try:
        # (no wait_for of our own: the client's timeouts bound it, registry.connect, and a
        # command cancelled half-way would leave its connection out of the pool)
        shared = await remote.registry.shared_live()
    except (RedisError, OSError) as exc:
        log.warning("system page: the other web processes' live state is unreadable: %s", describe(exc))
        return ClusterLive(own, False)
    states, complete = [own], True
    for web_id, text in sorted(shared.items()):
        if web_id == remote.web_id:
            continue  # our own, fresher above
        try:
            states.append(state_from_json(text))
        except ValueError as exc:
            log.warning("system page: web process %s shared an unreadable live state: %s", web_id, exc)
            complete = False
    return ClusterLive(merged(states), complete)


async def _share(app: web.Application, remote: RemoteSfu, stop: asyncio.Event, health: FailureStreak) -> None:
    while not stop.is_set():
        state = app_live_state(app)
        if state is not None:
            try:
                await remote.registry.share_live(remote.web_id, state_to_json(state))
            except (RedisError, OSError) as exc:
                health.failed(exc)
            else:
                health.succeeded()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WEB_REFRESH_S)


async def live_share_ctx(app: web.Application) -> AsyncIterator[None]:
    """``run.py web``: publish this process's live state until shutdown, then withdraw it."""
    remote = _remote(app)
    if remote is None:
        yield
        return
    health = FailureStreak("sharing the live state", log)
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(_share(app, remote, stop, health), name="ops-live-share")
    yield
    # Told to stop between two shares, not cancelled inside one: a Redis command cancelled
    # half-way leaves its connection out of the pool, never closed.
    stop.set()
    await finish_or_cancel(task, STOP_SECONDS)
    try:
        await remote.registry.unshare_live(remote.web_id)
    except (RedisError, OSError) as exc:  # it expires by itself
        log.info("live state not withdrawn: %s", describe(exc))
