"""Which requests the free-space guard (MAEUL_MIN_FREE_MB) stops: multipart uploads larger than a
text request. Here the guard asks for more free space than any disk has, so it always refuses."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.config import Settings
from tests.conftest import World
from tests.kiosk_ref import make_kiosk
from tests.petitions.conftest import BASIC

NO_DISK_IS_THAT_LARGE_MB = 1024 * 1024  # 1 TiB


def _form(media: bytes | None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("petition", json.dumps(BASIC), content_type="application/json")
    if media is not None:
        form.add_field("media", io.BytesIO(media), filename="message.webm", content_type="audio/webm")
    return form


async def test_only_media_uploads_are_refused_while_the_disk_is_low(
    settings: Settings,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    low = dataclasses.replace(settings, min_free_mb=NO_DISK_IS_THAT_LARGE_MB)
    client = await aiohttp_client(create_app(low))
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])

    media = await client.post(
        "/api/v1/kiosk/petitions", data=_form(b"\x1a\x45\xdf\xa3" * 40000), headers=kiosk.headers
    )
    assert media.status == 507
    error = (await media.json())["error"]
    assert error["code"] == "media_storage_low" and "저장 공간이 부족" in error["display"]

    text = await client.post("/api/v1/kiosk/petitions", data=_form(None), headers=kiosk.headers)
    assert text.status == 201, await text.text()
    assert (await client.post("/api/v1/kiosk/petitions", json=BASIC, headers=kiosk.headers)).status == 201

    # A large body that is not an upload (a socket.io polling message) is not the guard's business.
    polling = await client.post(
        "/socket.io/?EIO=4&transport=polling",
        data=b"4" + b"x" * 90000,
        headers={"Content-Type": "text/plain"},
    )
    assert polling.status != 507
