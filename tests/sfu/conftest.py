"""Fixtures for the SFU tests. Every peer gathers on 127.0.0.1 only and no
STUN/TURN server is configured, so no packet leaves loopback; run them in a
loopback-only namespace anyway (see docs/sfu.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from server.sfu import Sfu, SfuConfig, SfuEvent
from tests.sfu.sfu_testkit import LOOPBACK, Client


@pytest.fixture
def events() -> list[SfuEvent]:
    return []


@pytest.fixture
async def sfu(events: list[SfuEvent]) -> AsyncIterator[Sfu]:
    s = Sfu(SfuConfig(host_addresses=tuple(LOOPBACK), ice_servers=(), pli_min_interval=1.0))
    s.subscribe(events.append)
    yield s
    await s.close()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., Client]]:
    clients: list[Client] = []

    def make(name: str, **kwargs: object) -> Client:
        c = Client(name, **kwargs)  # type: ignore[arg-type]
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()
