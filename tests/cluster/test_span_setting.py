"""The span settings (``MAEUL_ROOM_SPAN_CPU``, ``MAEUL_ROOM_SPAN_CAP``; docs/scale.md "Cascade")
reach ``run.py web``: a web app in the ``web`` role with two SFU workers (in the test's process,
a real redis-server), an official and a village hall joined through its signaling with real
aiortc peers. With a cap of one participant per worker, the room spans both workers and the media
crosses the pipe between them both ways; without a span setting, the same call stays on one."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.cluster.worker import SfuWorker
from server.config import Settings
from server.errors import ConfigError
from tests.cluster.parts import RedisServer, in_process_worker
from tests.conftest import World
from tests.signaling.conftest import people  # noqa: F401  (the fixture)
from tests.signaling.two_party import live_call


def test_the_span_settings_are_parsed_and_checked() -> None:
    base = {"MAEUL_SECRET_KEY": "x" * 40}
    plain = Settings.from_env(base)
    assert (plain.room_span_cpu, plain.room_span_cap) == (None, None)  # a room stays on one worker
    both = Settings.from_env(base | {"MAEUL_ROOM_SPAN_CPU": " 0.7 ", "MAEUL_ROOM_SPAN_CAP": "120"})
    assert (both.room_span_cpu, both.room_span_cap) == (0.7, 120)
    for bad in ("much", "-0.1", "65", "nan", "inf"):
        with pytest.raises(ConfigError, match="MAEUL_ROOM_SPAN_CPU"):
            Settings.from_env(base | {"MAEUL_ROOM_SPAN_CPU": bad})
    for bad in ("0", "1.5", "many"):
        with pytest.raises(ConfigError, match="MAEUL_ROOM_SPAN_CAP"):
            Settings.from_env(base | {"MAEUL_ROOM_SPAN_CAP": bad})


@pytest.fixture
async def workers(redis_server: RedisServer) -> AsyncIterator[dict[str, SfuWorker]]:
    async with contextlib.AsyncExitStack() as stack:
        yield {wid: await stack.enter_async_context(in_process_worker(redis_server.url, wid)) for wid in "12"}


@pytest.fixture(params=[1, None], ids=["cap-1", "no-span"])
def span_cap(request: pytest.FixtureRequest) -> int | None:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def client(
    settings: Settings,
    redis_server: RedisServer,
    span_cap: int | None,
    workers: dict[str, SfuWorker],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> TestClient:
    """``run.py web`` with MAEUL_ROOM_SPAN_CAP=``span_cap`` (the fixtures the signaling kit uses
    take this one)."""
    web_settings = dataclasses.replace(settings, redis_url=redis_server.url, room_span_cap=span_cap)
    return await aiohttp_client(create_app(web_settings, role="web"))


@pytest.mark.network
@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_a_web_process_spans_a_room_as_its_settings_say(
    span_cap: int | None,
    client: TestClient,
    workers: dict[str, SfuWorker],
    world: World,
    people: Callable[..., Any],  # noqa: F811
) -> None:
    # (live_call waits until each side decodes the other's test pattern)
    room_id, official, kiosk = await live_call(client, world, people, "태풍 대비 회의", (50, 170))
    room = str(room_id)
    local = {  # per worker that has the room: its own participants (not those piped in)
        wid: sorted(set(w.sfu._room(room).participants) - w.sfu._room(room).piped)
        for wid, w in workers.items()
        if room in w.sfu.room_ids
    }
    assert kiosk.pid and official.pid
    if span_cap is None:
        assert sorted(local.values()) == [sorted([kiosk.pid, official.pid])], local
    else:  # one participant on each worker: the media crossed the pipe both ways
        assert sorted(local.values()) == sorted([[kiosk.pid], [official.pid]]), local
