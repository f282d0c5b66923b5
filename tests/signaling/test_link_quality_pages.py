"""What the pages learn about weak links: the SFU's LinkQualityChanged reaches the hall's own page
(``link_quality``, its three bars) and everybody's participant list (the chair sees which hall is
degraded); while a hall receives sound only, the pages are asked for still pictures, which the
hall then fetches over HTTP — only from inside the room."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import aiohttp
import av
import pytest
from aiohttp.test_utils import TestClient

from server.keys import ROOM_HUB
from server.sfu import LinkQualityChanged
from tests.conftest import World
from tests.signaling.signaling_kit import Admin, Participant, base_url, wait_until

pytestmark = pytest.mark.network


def jpeg(width: int = 64, height: int = 36) -> bytes:
    """A real JPEG picture (encoded by FFmpeg's MJPEG encoder)."""
    out = io.BytesIO()
    with av.open(out, "w", format="mjpeg") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        frame = av.VideoFrame(width, height, "yuvj420p")
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


async def fetch(client: TestClient, token: str, path: str) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        async with agent.get(base_url(client) + path, headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status, await r.read(), r.content_type


async def test_link_quality_reaches_the_pages_and_stills_flow_while_a_hall_is_on_sound_only(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    admin = await Admin(client, world).login()
    kiosk_id, token = await admin.kiosk("남성리 마을회관")
    _outsider_id, outsider_token = await admin.kiosk("동성리 마을회관", village=1)
    room_id = await admin.room("마을 안전 회의", account_ids=[world.official_id], kiosk_ids=[kiosk_id])
    official: Participant = await people("official", username="official")
    kiosk: Participant = await people("kiosk", token=token)
    await official.join(room_id)
    ack = await kiosk.join(room_id)
    assert ack["stills_wanted"] is False
    hub = client.app[ROOM_HUB]

    # The SFU finds the hall's downlink too thin for video.
    await hub._on_sfu_event(LinkQualityChanged(str(room_id), kiosk.pid, 1, "audio_only", 90, 4.0))  # type: ignore[arg-type]
    await wait_until(lambda: kiosk.got("link_quality"), 10, "the hall's own page told")
    assert kiosk.got("link_quality")[-1] == {
        "bars": 1,
        "mode": "audio_only",
        "downlink_kbps": 90,
        "loss_pct": 4.0,
    }
    await wait_until(
        lambda: any(
            p["id"] == kiosk.pid and p["link"] == {"bars": 1, "mode": "audio_only"}
            for p in official.participants
        ),
        10,
        "the chair sees the hall degraded",
    )
    await wait_until(lambda: official.got("stills_wanted") == [{"wanted": True}], 10, "stills asked for")

    # The official's page sends a still; the hall fetches it, an outsider cannot.
    picture = jpeg()
    assert (await official.call("still", {"jpeg": picture})) == {"ok": True}
    status, body, kind = await fetch(client, token, f"/api/v1/rooms/{room_id}/stills/{official.pid}")
    assert (status, body, kind) == (200, picture, "image/jpeg")
    status, _, _ = await fetch(client, outsider_token, f"/api/v1/rooms/{room_id}/stills/{official.pid}")
    assert status == 404
    status, _, _ = await fetch(client, token, f"/api/v1/rooms/{room_id}/stills/{kiosk.pid}")
    assert status == 404  # the hall has sent none
    status, _, _ = await fetch(client, token, f"/api/v1/rooms/{room_id}/stills/../x")
    assert status in (400, 404)

    # Bad pictures are refused with a reason; the room carries on.
    assert (await official.call("still", {"jpeg": b"GIF89a"}))["error"]["code"] == "invalid_payload"
    big = picture[:3] + bytes(70 * 1024)
    assert (await official.call("still", {"jpeg": big}))["error"]["code"] == "still_too_large"
    assert (await official.call("still", {"jpeg": "not bytes"}))["error"]["code"] == "invalid_payload"

    # The link recovers: video again, no more stills needed.
    await hub._on_sfu_event(LinkQualityChanged(str(room_id), kiosk.pid, 3, "video", 900, 0.0))  # type: ignore[arg-type]
    await wait_until(
        lambda: official.got("stills_wanted")[-1] == {"wanted": False}, 10, "stills no longer wanted"
    )
    assert kiosk.got("link_quality")[-1]["bars"] == 3
