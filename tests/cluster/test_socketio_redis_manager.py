"""run.py web's socket.io Redis manager closes the Redis client and pub/sub that python-socketio
replaces on a reconnect (server/signaling/redis_manager.py), against a real redis-server."""

from __future__ import annotations

import asyncio
import inspect

import socketio.async_redis_manager

from server.signaling.redis_manager import RedisManager
from tests.cluster.parts import RedisServer


def test_python_socketio_reconnects_through_redis_connect() -> None:
    # What the manager relies on: every reconnect goes through _redis_connect, which replaces
    # both the client and the pub/sub (python-socketio 5.x).
    cls = socketio.async_redis_manager.AsyncRedisManager
    assert "self._redis_connect()" in inspect.getsource(cls._redis_listen_with_retries)
    assert "self._redis_connect()" in inspect.getsource(cls._publish)
    connect = inspect.getsource(cls._redis_connect)
    assert "self.redis = " in connect and "self.pubsub = self.redis.pubsub(" in connect


async def test_a_reconnect_closes_the_client_and_pubsub_it_replaces(redis_server: RedisServer) -> None:
    manager = RedisManager(redis_server.url, channel="maeul:test")
    manager._redis_connect()
    assert not manager._closing  # nothing replaced at the first connect
    first_redis, first_pubsub = manager.redis, manager.pubsub
    await first_pubsub.subscribe("maeul:test")
    assert first_pubsub.connection is not None

    manager._redis_connect()  # what python-socketio does after an outage
    assert manager.redis is not first_redis and manager.pubsub is not first_pubsub
    await asyncio.gather(*manager._closing)
    assert first_pubsub.connection is None  # closed, not left to the garbage collector
    assert not first_redis.connection_pool._in_use_connections

    # the new client and pub/sub work
    await manager.pubsub.subscribe("maeul:test")
    assert await manager.redis.publish("maeul:test", "hello") == 1
    await manager.pubsub.aclose()
    await manager.redis.aclose()


async def test_a_client_replaced_while_redis_is_down_is_closed_without_an_error(
    redis_server: RedisServer,
) -> None:
    manager = RedisManager(redis_server.url, channel="maeul:test")
    manager._redis_connect()
    await manager.pubsub.subscribe("maeul:test")
    stale = manager.pubsub
    redis_server.kill()
    manager._redis_connect()
    await asyncio.gather(*manager._closing)  # no exception escapes the closing task
    assert stale.connection is None
    redis_server.start()
    await manager.pubsub.subscribe("maeul:test")
    assert await manager.redis.publish("maeul:test", "back") == 1
    await manager.pubsub.aclose()
    await manager.redis.aclose()
