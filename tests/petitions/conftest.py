"""Fixtures for the petitions feature: enrolled kiosks, real recorded clips, API helpers."""

from __future__ import annotations

import io
import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import World
from tests.kiosk_ref import KioskRef as Kiosk
from tests.kiosk_ref import make_kiosk


def write_voice_clip(path: Path, seconds: float = 2.0, *, live: bool = True) -> Path:
    """A real Opus/WebM clip like a browser's MediaRecorder writes (``live`` = no duration header)."""
    rate = 48000
    out = av.open(str(path), "w", format="webm", options={"live": "1"} if live else {})
    stream = out.add_stream("libopus", rate=rate, layout="mono")
    frame_size = stream.codec_context.frame_size or 960
    total = int(seconds * rate)
    t = 0
    while t < total:
        k = min(frame_size, total - t)
        frame = av.AudioFrame(format="s16", layout="mono", samples=k)
        samples = [int(6000 * math.sin(2 * math.pi * 330 * i / rate)) for i in range(t, t + k)]
        frame.planes[0].update(struct.pack(f"<{k}h", *samples))
        frame.sample_rate, frame.pts = rate, t
        for packet in stream.encode(frame):
            out.mux(packet)
        t += k
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


@pytest.fixture(scope="session")
def voice_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_voice_clip(tmp_path_factory.mktemp("clips") / "voice.webm", 2.0).read_bytes()


@pytest.fixture
async def kiosk(world: World, sessionmaker: Callable[[], AsyncSession]) -> Kiosk:
    return await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")


@pytest.fixture
async def other_kiosk(world: World, sessionmaker: Callable[[], AsyncSession]) -> Kiosk:
    return await make_kiosk(sessionmaker, world.village_ids[1], "다른 마을회관")


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


async def kiosk_call(
    client: TestClient, kiosk: Kiosk, method: str, path: str, *, json_body: Any = None, data: Any = None
) -> Reply:
    """Call as the kiosk agent does: bearer token, no cookies."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        async with agent.request(
            method, client.make_url(path), headers=kiosk.headers, json=json_body, data=data
        ) as response:
            raw = await response.read()
            body = json.loads(raw) if raw and response.content_type == "application/json" else raw
            return Reply(response.status, body, dict(response.headers))


def petition_form(
    fields: dict[str, Any], media: bytes | None = None, photos: list[bytes] = ()
) -> aiohttp.FormData:  # type: ignore[assignment]
    form = aiohttp.FormData()
    form.add_field("petition", json.dumps(fields), content_type="application/json")
    if media is not None:
        form.add_field("media", io.BytesIO(media), filename="message.webm", content_type="audio/webm")
    for photo in photos:
        form.add_field("photo", io.BytesIO(photo), filename="photo.jpg", content_type="image/jpeg")
    return form


BASIC = {
    "petition_type": "grievance",
    "title": "마을 앞 가로등이 고장났어요",
    "body": "밤에 너무 어두워서 다니기 무서워요.",
    "phone": "010-1234-5678",
    "name": "홍길동",
    "is_public": False,
}


async def file_json(client: TestClient, kiosk: Kiosk, **overrides: Any) -> Reply:
    body = dict(BASIC, **overrides)
    return await kiosk_call(client, kiosk, "POST", "/api/v1/kiosk/petitions", json_body=body)


async def official_json_call(
    client: TestClient, csrf: str, method: str, path: str, body: Any = None
) -> Reply:
    response = await client.request(method, path, json=body, headers={"X-CSRF-Token": csrf})
    raw = await response.read()
    parsed = json.loads(raw) if raw and response.content_type == "application/json" else raw
    return Reply(response.status, parsed, dict(response.headers))
