"""/metrics reads the media plane at scrape time: a real two-party meeting over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.keys import ROOM_HUB
from tests.conftest import World
from tests.ops.test_metrics_dashboard import dashboard_metrics, exported_series
from tests.ops.test_metrics_endpoint import sample
from tests.signaling.conftest import people  # noqa: F401  (the fixture)
from tests.signaling.two_party import live_call

pytestmark = pytest.mark.network

LUMA_OFFICIAL, LUMA_KIOSK = 50, 170


async def test_metrics_show_the_live_meeting_and_its_socket_events(
    client: TestClient,
    world: World,
    people: Callable[..., Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    room_id, official, kiosk = await live_call(
        client, world, people, "마을 안전 회의", (LUMA_OFFICIAL, LUMA_KIOSK)
    )
    refused = await kiosk.call("mute", {"kind": "nonsense"})
    assert "error" in refused
    code = refused["error"]["code"]

    text = await (await client.get("/metrics")).text()
    room, kiosk_pid, official_pid = str(room_id), kiosk.pid, official.pid
    assert kiosk_pid and official_pid
    assert sample(text, "maeul_rooms") == 1
    assert sample(text, "maeul_participants", kind="kiosk") == 1
    assert sample(text, "maeul_participants", kind="official") == 1
    for pid in (kiosk_pid, official_pid):
        assert (sample(text, "maeul_forwarded_bytes_total", room=room, participant=pid) or 0) > 0
        assert (sample(text, "maeul_forwarded_packets_total", room=room, participant=pid) or 0) > 0
        for name in ("maeul_retransmitted_packets_total", "maeul_nacks_sent_total", "maeul_plis_sent_total"):
            assert sample(text, name, room=room, participant=pid) is not None, name
    modes = [
        sample(text, "maeul_participants_by_link_mode", mode=m) or 0
        for m in ("video", "low_video", "audio_only")
    ]
    assert sum(modes) == 2
    assert sample(text, "maeul_socket_events_total", event="join", result="ok") == 2
    assert sample(text, "maeul_socket_events_total", event="offer", result="ok") == 2
    assert sample(text, "maeul_socket_events_total", event="mute", result=code) == 1
    assert sample(text, "maeul_recording_bytes", room=room) == 0
    # Every metric docs/grafana-maeul.json queries is in this scrape.
    assert sorted(dashboard_metrics() - exported_series(text)) == []

    # A recording's bytes grow on the gauge while it runs (its files are written as media arrive).
    hub = client.app[ROOM_HUB]
    await hub.start_recording(room, tmp_path / "recordings", "녹화 시작")

    async def recorded() -> float:
        return sample(await (await client.get("/metrics")).text(), "maeul_recording_bytes", room=room) or 0

    for _ in range(100):
        if await recorded() > 10_000:
            break
        await asyncio.sleep(0.1)
    grown = await recorded()
    assert grown > 10_000
    files, _marks = await hub.stop_recording(room)
    assert files
    # What the gauge saw was on disk: files only grow until they are finished.
    assert grown <= sum(path.stat().st_size for path in (tmp_path / "recordings").iterdir())
    assert await recorded() == 0  # nothing records any more

    await kiosk.close()
    await official.close()
