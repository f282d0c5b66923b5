"""The agent's HTTP calls to the Maeul server."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import aiohttp

from kiosk.health import Health

TIMEOUT = aiohttp.ClientTimeout(total=15)


class ServerError(Exception):
    """The server refused or could not be reached; the message is safe to show."""


async def _json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except (aiohttp.ContentTypeError, ValueError):
        return {}


async def enroll(server_url: str, code: str) -> dict[str, Any]:
    """Exchange a one-time code for the device token; returns the server's JSON."""
    async with aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.DummyCookieJar()) as http:
        try:
            async with http.post(f"{server_url}/api/v1/kiosk/enroll", json={"code": code}) as response:
                body = await _json(response)
                if response.status != 201:
                    message = body.get("error", {}).get("message", response.reason)
                    raise ServerError(f"enrollment refused ({response.status}): {message}")
                return dict(body)
        except aiohttp.ClientError as exc:
            raise ServerError(f"cannot reach {server_url}: {exc}") from exc


async def round_trip_ms(http: aiohttp.ClientSession, server_url: str) -> float | None:
    started = time.perf_counter()
    try:
        async with http.get(f"{server_url}/healthz") as response:
            await response.read()
            if response.status != 200:
                return None
    except (aiohttp.ClientError, TimeoutError):
        return None
    return round((time.perf_counter() - started) * 1000, 1)


async def send_heartbeat(http: aiohttp.ClientSession, server_url: str, token: str, health: Health) -> None:
    async with http.post(
        f"{server_url}/api/v1/kiosk/heartbeat",
        json=asdict(health),
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        if response.status != 200:
            body = await _json(response)
            raise ServerError(f"heartbeat refused ({response.status}): {body.get('error', {}).get('code')}")
