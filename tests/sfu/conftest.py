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


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    """A blank page on loopback for the browser tests (getUserMedia needs a secure context:
    http://127.0.0.1 is one)."""
    from tests.sfu.sdp_corpus.capture import blank_page

    async with blank_page() as url:
        yield url
