"""The retention job inside the real app: supervised like the meeting clock, a failing run is
logged and retried (with backoff), and the next one does the work; the app stops it cleanly."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from aiohttp import web

from server.app import create_app
from server.config import Settings
from server.ops import retention


async def test_a_failing_run_is_retried_and_the_job_survives(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    calls: list[str] = []
    done = asyncio.Event()

    async def flaky(sessionmaker: Any, settings: Settings, now: dt.datetime | None = None) -> dict[str, Any]:
        if not calls:
            calls.append("failed")
            raise OSError("the database is not reachable")
        calls.append("ran")
        done.set()
        return await real(sessionmaker, settings, now)

    real = retention.purge
    monkeypatch.setattr(retention, "purge", flaky)
    monkeypatch.setattr(retention, "FIRST_RUN_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(retention, "RETRY_FIRST_SECONDS", 0.05)
    app: web.Application = create_app(settings)
    await aiohttp_client(app)
    await asyncio.wait_for(done.wait(), 30)
    health = app[retention.RETENTION]
    for _ in range(300):  # the successful run is finishing: its purge is real
        if not health.failures:
            break
        await asyncio.sleep(0.1)
    assert calls == ["failed", "ran"]
    assert health.failures == 0  # recovered, and still running (no third call needed)
