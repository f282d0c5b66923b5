"""The real parts the scale-out tests stand on: redis-server answers the client library Maeul uses,
goes away and comes back empty; nginx spreads requests over its upstream, passes the forwarding
headers, upgrades websockets, and steps over a web process that is down."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.cluster.conftest import NginxFactory
from tests.cluster.parts import Nginx, RedisServer, probe_app, running_redis
from tests.pg import free_port

pytestmark = pytest.mark.network


async def test_redis_answers_stops_and_restarts_empty(redis_server: RedisServer) -> None:
    # A connection pooled before a restart is dead; without retry_on_error redis-py raises on its
    # first use after the restart instead of reconnecting (the control plane must set this too).
    client = aioredis.Redis.from_url(
        redis_server.url,
        socket_timeout=2,
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )
    try:
        assert await client.ping() is True
        await client.set("maeul:probe", "1")
        assert await client.get("maeul:probe") == b"1"

        redis_server.kill()
        assert not redis_server.running
        with pytest.raises(RedisConnectionError):
            await client.ping()

        redis_server.start()
        # Same socket, persistence off: the server is back and knows nothing of before.
        assert await client.ping() is True
        assert await client.get("maeul:probe") is None

        redis_server.restart()
        assert await client.ping() is True
    finally:
        await client.aclose()


async def test_redis_over_tcp_on_loopback() -> None:
    with running_redis(tcp=True) as server:
        client = aioredis.Redis.from_url(server.tcp_url, socket_timeout=2)
        try:
            assert await client.ping() is True
        finally:
            await client.aclose()


@pytest.fixture
async def backend_runners() -> AsyncIterator[list[web.AppRunner]]:
    runners: list[web.AppRunner] = []
    yield runners
    for runner in runners:
        await runner.cleanup()


async def _serve_unix(name: str, path: Path, runners: list[web.AppRunner]) -> web.AppRunner:
    runner = web.AppRunner(probe_app(name))
    await runner.setup()
    await web.UnixSite(runner, str(path)).start()
    runners.append(runner)
    return runner


async def _serve_port(name: str, port: int, runners: list[web.AppRunner]) -> web.AppRunner:
    runner = web.AppRunner(probe_app(name))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    runners.append(runner)
    return runner


async def test_nginx_proxies_http_and_websocket_to_every_backend(
    nginx_factory: NginxFactory, backend_runners: list[web.AppRunner]
) -> None:
    # A short path: a unix socket path must fit in 108 bytes.
    proxy_dir = Path(tempfile.mkdtemp(prefix="maeul-web-", dir="/tmp"))
    sock = proxy_dir / "web-a.sock"
    port_b = free_port()
    await _serve_unix("a", sock, backend_runners)
    runner_b = await _serve_port("b", port_b, backend_runners)
    proxy = await asyncio.to_thread(nginx_factory, [sock, port_b])

    async with aiohttp.ClientSession() as session:
        seen = set()
        # Requests without a room hash on their random request id: spread, not in turn, so ask
        # until both answered (40 tries: 2**-39 that one backend takes them all).
        for _ in range(40):
            if seen == {"a", "b"}:
                break
            async with session.get(f"{proxy.url}/whoami", headers={"X-Forwarded-For": "203.0.113.9"}) as resp:
                assert resp.status == 200
                body = await resp.json()
            seen.add(body["backend"])
            # nginx appends the address it saw to what the client wrote; Maeul reads right to left.
            assert body["forwarded_for"] == "203.0.113.9, 127.0.0.1"
            assert body["forwarded_proto"] == "http"
            # The Host the client sent, port included (maeul-proxy.conf: engine.io compares it with Origin).
            assert body["host"] == f"127.0.0.1:{proxy.port}"
        assert seen == {"a", "b"}

        async with session.ws_connect(f"{proxy.url}/socket.io/") as ws:
            await ws.send_str("hello")
            reply = await asyncio.wait_for(ws.receive_str(), 5)
            assert reply.endswith(":hello") and reply.split(":")[0] in {"a", "b"}

        # A web process that is down: nginx takes the next one rather than answer 502.
        await runner_b.cleanup()
        backend_runners.remove(runner_b)
        for _ in range(4):
            async with session.get(f"{proxy.url}/whoami") as resp:
                assert resp.status == 200
                assert (await resp.json())["backend"] == "a"

    proxy.stop()
    assert not proxy.running
    shutil.rmtree(proxy_dir, ignore_errors=True)


async def test_nginx_kill_takes_its_workers_down(
    nginx_factory: NginxFactory, backend_runners: list[web.AppRunner]
) -> None:
    port = free_port()
    await _serve_port("a", port, backend_runners)
    proxy = await asyncio.to_thread(nginx_factory, [port])
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{proxy.url}/whoami") as resp:
            assert resp.status == 200
        proxy.kill()
        # No orphaned worker is left answering on the port.
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"{proxy.url}/whoami") as resp:
                pass


def test_nginx_refuses_an_empty_upstream() -> None:
    proxy = Nginx([])
    try:
        with pytest.raises(ValueError, match="at least one backend"):
            proxy.start()
    finally:
        proxy.remove()


async def test_nginx_set_backends_reloads_the_upstream(
    nginx_factory: NginxFactory, backend_runners: list[web.AppRunner]
) -> None:
    port_a, port_b = free_port(), free_port()
    await _serve_port("a", port_a, backend_runners)
    await _serve_port("b", port_b, backend_runners)
    proxy = await asyncio.to_thread(nginx_factory, [port_a])
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{proxy.url}/whoami") as resp:
            assert (await resp.json())["backend"] == "a"
        await asyncio.to_thread(proxy.set_backends, [port_b])
        # The reload is asynchronous: old workers finish, new ones take the new upstream.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        backend = "a"
        while backend != "b" and loop.time() < deadline:
            async with session.get(f"{proxy.url}/whoami") as resp:
                backend = (await resp.json())["backend"]
            await asyncio.sleep(0.05)
        assert backend == "b"
        for _ in range(3):
            async with session.get(f"{proxy.url}/whoami") as resp:
                assert (await resp.json())["backend"] == "b"
