"""The kiosk agent: keeps the browser on the kiosk page and reports health.

Two loops: the supervisor relaunches the browser when its process dies or its page stops
answering (with a growing pause between attempts, so a broken install does not spin), and the
heartbeat reports device health every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp

from kiosk import client
from kiosk.health import Health, camera_present, free_disk_mb, microphone_present

log = logging.getLogger(__name__)


class BrowserHandle(Protocol):
    def alive(self) -> bool: ...

    async def responsive(self, timeout: float = 5) -> bool: ...

    async def stop(self) -> None: ...


Launcher = Callable[[], Awaitable[BrowserHandle]]


@dataclass(frozen=True)
class SupervisorPolicy:
    check_interval: float = 5.0
    # Consecutive failed page checks before the browser counts as hung.
    unresponsive_checks: int = 3
    min_backoff: float = 1.0
    max_backoff: float = 60.0


class BrowserSupervisor:
    def __init__(self, launcher: Launcher, policy: SupervisorPolicy) -> None:
        self._launcher = launcher
        self._policy = policy
        self.launches = 0
        self.current: BrowserHandle | None = None

    def browser_alive(self) -> bool:
        return self.current is not None and self.current.alive()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self._policy.min_backoff
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.current = await self._launcher()
                    self.launches += 1
                except Exception:
                    log.exception("browser launch failed")
                    self.current = None
                else:
                    await self._watch(self.current, stop)
                    await self.current.stop()
                    if not stop.is_set():
                        log.warning("browser restarting", extra={"launches": self.launches})
                # A browser that ran a good while resets the pause; a crash loop backs off.
                if time.monotonic() - started > self._policy.max_backoff:
                    backoff = self._policy.min_backoff
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, self._policy.max_backoff)
        finally:
            if self.current is not None:
                await self.current.stop()

    async def _watch(self, browser: BrowserHandle, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            if not browser.alive():
                log.warning("browser process ended")
                return
            if await browser.responsive():
                failures = 0
            else:
                failures += 1
                if failures >= self._policy.unresponsive_checks:
                    log.warning("browser page not answering")
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._policy.check_interval)


async def heartbeat_loop(
    server_url: str,
    token: str,
    supervisor: BrowserSupervisor,
    state_dir: Path,
    stop: asyncio.Event,
    interval: float = 10.0,
) -> None:
    async with aiohttp.ClientSession(timeout=client.TIMEOUT, cookie_jar=aiohttp.DummyCookieJar()) as http:
        while not stop.is_set():
            health = Health(
                camera=camera_present(),
                microphone=microphone_present(),
                browser_alive=supervisor.browser_alive(),
                rtt_ms=await client.round_trip_ms(http, server_url),
                free_disk_mb=free_disk_mb(state_dir),
            )
            try:
                await client.send_heartbeat(http, server_url, token, health)
            except (client.ServerError, aiohttp.ClientError, TimeoutError) as exc:
                # The link may be down; keep the kiosk running and try again next beat.
                log.warning("heartbeat failed", extra={"error": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
