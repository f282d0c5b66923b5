"""`python -m kiosk headless`: joins its village's meeting in a running server by itself, its
test pattern and tone reach an aiortc subscriber through the SFU, it receives the others' media,
and it comes back by itself after the meeting ends and a new one opens."""

from __future__ import annotations

import asyncio
from array import array
from pathlib import Path

import av
import pytest
import socketio
from aiohttp.test_utils import TestClient

from kiosk.headless import HeadlessKiosk
from kiosk.media import open_source
from kiosk.speaker import SpeakerMixer
from rtc.tuning import WeakLinkTuning
from tests.conftest import World
from tests.signaling.signaling_kit import Admin, Participant, base_url, session_cookie, wait_until

pytestmark = pytest.mark.network


async def test_headless_kiosk_joins_and_its_media_reaches_a_subscriber(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    admin = await Admin(client, world).login()
    kiosk_id, token = await admin.kiosk("사당리 마을회관")
    other_id, _ = await admin.kiosk("월남리 마을회관", village=1)
    speakers: list[SpeakerMixer] = []

    def speaker() -> SpeakerMixer:
        speakers.append(SpeakerMixer(str(tmp_path / f"hall-{len(speakers)}.wav")))
        return speakers[-1]

    headless = HeadlessKiosk(
        base_url(client),
        token,
        lambda: open_source("testsrc"),
        host_addresses=["127.0.0.1"],
        poll_interval=0.2,
        speaker=speaker,
        # This test is about the path, not the picture-size adaptation (tests/rtc/test_tuning.py and the
        # link lab cover that): keep the camera's 640x360, which a bandwidth estimate dipping on a
        # CPU-starved CI machine would otherwise shrink to 320x240 (the likely cause of one CI timeout).
        tuning=WeakLinkTuning(small_below_bitrate=0),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(headless.run(stop))
    official = Participant("official", client, cookie=await session_cookie(client, "official"))
    try:
        # A meeting the kiosk is not invited to is ignored.
        await admin.room("다른 마을 회의", account_ids=[world.official_id], kiosk_ids=[other_id])
        await asyncio.sleep(1)
        assert headless.stats.meetings_joined == 0

        room_id = await admin.room("사당리 주민 회의", account_ids=[world.official_id], kiosk_ids=[kiosk_id])
        await wait_until(lambda: headless.stats.current_room == room_id, 20, "headless kiosk joins by itself")
        await official.connect()
        await official.join(room_id)
        await official.publish(60, 3000, video_slots=9)
        kiosk_pid = f"k{kiosk_id}"  # participant ids: k<kiosk id>, a<account id>
        await wait_until(
            lambda: (
                official._slot(kiosk_pid, "video") is not None
                and official.peer is not None
                and official.peer.log(official._slot(kiosk_pid, "video")).size == (640, 360)
                and official.video_frames(kiosk_pid) >= 10
                and official.hears(kiosk_pid)
            ),
            30,
            "the kiosk's video (640x360) and audio at the official",
        )
        await wait_until(
            lambda: sum(headless.stats.frames_received.values()) >= 20, 30, "the kiosk receives the video"
        )
        await wait_until(
            lambda: speakers[0].samples_written >= 3 * 48000, 30, "3 s of the hall's loudspeaker"
        )

        # The meeting ends; the next one is joined without any touch.
        await admin.post(f"/api/v1/admin/rooms/{room_id}/close")
        await wait_until(lambda: headless.stats.current_room is None, 20, "kiosk leaves a closed meeting")
        second = await admin.room("두 번째 회의", account_ids=[world.official_id], kiosk_ids=[kiosk_id])
        await wait_until(lambda: headless.stats.current_room == second, 30, "kiosk joins the next meeting")
        assert headless.stats.meetings_joined == 2
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await official.close()
    # The official's tone (amplitude 3000) came out of the hall's loudspeaker: a real WAV with sound.
    with av.open(str(tmp_path / "hall-0.wav")) as wav:
        samples = array("h")
        for frame in wav.decode(audio=0):
            samples.frombytes(bytes(frame.planes[0])[: frame.samples * 2])
    assert len(samples) >= 3 * 48000
    loud = sum(1 for value in samples if abs(value) > 1000)
    assert loud > 48000  # at least a second's worth of clearly audible samples


class _WatchedKiosk(HeadlessKiosk):
    """The headless kiosk, with a handle on its sockets (to lose one, as a congested link would)."""

    sockets: list[socketio.AsyncClient]

    def _socket(self) -> socketio.AsyncClient:
        sock = super()._socket()
        self.sockets.append(sock)
        return sock


async def test_a_lost_socket_is_resumed_on_the_same_peer_connection(client: TestClient, world: World) -> None:
    admin = await Admin(client, world).login()
    kiosk_id, token = await admin.kiosk("사당리 마을회관")
    headless = _WatchedKiosk(
        base_url(client),
        token,
        lambda: open_source("testsrc"),
        host_addresses=["127.0.0.1"],
        poll_interval=0.2,
    )
    headless.sockets = []
    stop = asyncio.Event()
    task = asyncio.create_task(headless.run(stop))
    official = Participant("official", client, cookie=await session_cookie(client, "official"))
    kiosk_pid = f"k{kiosk_id}"
    try:
        room_id = await admin.room("사당리 주민 회의", account_ids=[world.official_id], kiosk_ids=[kiosk_id])
        await wait_until(lambda: headless.stats.current_room == room_id, 20, "headless kiosk joins by itself")
        await official.connect()
        await official.join(room_id)
        await official.publish(60, 3000, video_slots=9)
        await wait_until(
            lambda: official.video_frames(kiosk_pid) >= 10, 30, "the kiosk's video at the official"
        )

        # The kiosk's socket is lost without a goodbye (its transport just goes away).
        ws = headless.sockets[-1].eio.ws
        assert ws is not None
        await ws.close()
        await wait_until(lambda: headless.stats.resumes == 1, 20, "the kiosk to resume")
        assert headless.stats.drops == 0 and headless.stats.meetings_joined == 1  # no new peer connection
        assert len(headless.sockets) == 1  # the same socket object, reconnected
        frames = official.video_frames(kiosk_pid)
        await wait_until(
            lambda: official.video_frames(kiosk_pid) >= frames + 10, 20, "its video keeps coming"
        )
        await wait_until(
            lambda: (
                [(p["id"], p["state"]) for p in official.participants if p["id"] == kiosk_pid]
                == [(kiosk_pid, "connected")]
            ),
            10,
            "the official sees it connected again",
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await official.close()
