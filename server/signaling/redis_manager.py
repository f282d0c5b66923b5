"""python-socketio's Redis client manager (``run.py web``: emits reach every web process), made to
close the Redis clients it replaces.

On each reconnect (its listener after a Redis outage, or a publish that failed) python-socketio
5.x makes a new Redis client and pub/sub in ``_redis_connect`` and drops the old ones without
closing them: their sockets stay open until the garbage collector finds them (a ResourceWarning
each), one set per web process per Redis outage. This closes them as they are replaced.
``tests/cluster/test_socketio_redis_manager.py`` pins the python-socketio behaviour this relies on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class RedisManager(socketio.AsyncRedisManager):
    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel)
        self._closing: set[asyncio.Task[None]] = set()  # held so the loop does not drop them

    def _redis_connect(self) -> None:
        stale = (self.redis, self.pubsub)
        super()._redis_connect()
        if stale == (None, None):
            return
        task = asyncio.get_running_loop().create_task(_close(*stale), name="socketio-redis-close")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _close(redis: Any, pubsub: Any) -> None:
    """Close a replaced client and its pub/sub; the server behind them may be gone, so a failure
    to say goodbye is expected and only logged."""
    try:
        if pubsub is not None:
            await pubsub.aclose()
        if redis is not None:
            await redis.aclose()
    except (RedisError, OSError) as exc:
        log.debug("closing a replaced socket.io Redis client: %r", exc)
