"""Fixtures of the signaling tests: socket.io participants that close themselves afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.signaling.signaling_kit import Participant, session_cookie


@pytest.fixture
async def people(client: TestClient) -> AsyncIterator[Callable[..., Any]]:
    made: list[Participant] = []

    async def make(name: str, *, token: str | None = None, username: str | None = None) -> Participant:
        cookie = await session_cookie(client, username) if username else None
        p = Participant(name, client, token=token, cookie=cookie)
        made.append(p)
        return await p.connect()

    yield make
    for p in made:
        await p.close()
