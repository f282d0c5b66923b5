"""Synthetic kiosk clients for the SFU tests: real aiortc peers on loopback.

Each client publishes (optionally) a 640x360 VP8 video whose flat background
luma identifies the publisher, and an Opus tone whose amplitude sets its
loudness; it offers a number of receive-only slots and records what it
decodes per slot (mid).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import av
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from kiosk.media import PacedVideo, ToneAudio
from rtc import aiortc_internals as ai
from rtc.tuning import WeakLinkTuning, tune_peer_connection
from server.sfu import ParticipantHandle, Sfu

LOOPBACK = ["127.0.0.1"]
WIDTH, HEIGHT = 640, 360


class SyntheticVideo(PacedVideo):
    """640x360 frames: flat background of luma ``luma`` (top half) and a
    moving dark bar (bottom half), so VP8 produces real delta frames."""

    def __init__(self, luma: int, fps: int = 10) -> None:
        super().__init__(WIDTH, HEIGHT, fps)
        self.luma = luma
        self._top = bytes([luma]) * (WIDTH * (HEIGHT // 2))

    def picture(self, n: int) -> bytes:
        x = (n * 16) % (WIDTH - 64)
        row = bytes([self.luma]) * x + bytes([16]) * 64 + bytes([self.luma]) * (WIDTH - 64 - x)
        return self._top + row * (HEIGHT - HEIGHT // 2)


# The headless kiosk's tone generator is the tests' synthetic voice too.
SyntheticAudio = ToneAudio


@dataclass
class SlotLog:
    frames: int = 0
    first_frame_at: float | None = None
    size: tuple[int, int] | None = None
    lumas: list[int] = field(default_factory=list)


class Client:
    """A kiosk/browser stand-in: one aiortc RTCPeerConnection to the SFU."""

    def __init__(
        self,
        name: str,
        *,
        luma: int | None = None,
        amplitude: int | None = None,
        video_slots: int = 0,
        audio_slots: int = 0,
        decode: bool = True,
        tuned: bool = False,
    ) -> None:
        self.name = name
        # max-bundle: with aiortc's default "balanced" policy a second m-line of
        # the same kind keeps a transport that BUNDLE later discards (aiortc quirk).
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.video_track = SyntheticVideo(luma) if luma is not None else None
        self.audio_track = SyntheticAudio(amplitude) if amplitude is not None else None
        if self.audio_track is not None:
            self.pc.addTransceiver(self.audio_track, direction="sendonly")
        for _ in range(audio_slots):
            self.pc.addTransceiver("audio", direction="recvonly")
        if self.video_track is not None:
            self.pc.addTransceiver(self.video_track, direction="sendonly")
        for _ in range(video_slots):
            self.pc.addTransceiver("video", direction="recvonly")
        if tuned:  # the headless kiosk's weak-link tuning (VP8 following REMB below 250 kbit/s...)
            tune_peer_connection(self.pc, WeakLinkTuning())
        self.logs: dict[str, SlotLog] = {}
        self.rtp_packets: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.handle: ParticipantHandle | None = None
        if decode:
            self.pc.on("track", self._on_track)
        else:
            self._count_packets_instead_of_decoding()

    def _count_packets_instead_of_decoding(self) -> None:
        # Counts RTP per mid with the same hook the SFU uses, so no decoder runs
        # in this client either (used by the "no decoder anywhere" test).
        for t in self.pc.getTransceivers():
            if t.direction != "recvonly":
                continue
            counter = _PacketCounter(self, t)
            ai.intercept_receive(t.receiver, counter.start)

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
        assert mid is not None
        log = self.logs.setdefault(mid, SlotLog())
        self._tasks.append(asyncio.get_running_loop().create_task(self._consume(track, log)))

    async def _consume(self, track: MediaStreamTrack, log: SlotLog) -> None:
        try:
            while True:
                frame = await track.recv()
                log.frames += 1
                if log.first_frame_at is None:
                    log.first_frame_at = time.monotonic()
                if isinstance(frame, av.VideoFrame):
                    log.size = (frame.width, frame.height)
                    plane = frame.planes[0]
                    data = bytes(plane)
                    # background sample from the top half
                    log.lumas.append(data[20 * plane.line_size + 20])
                    del log.lumas[:-5]
        except MediaStreamError:
            pass

    async def connect(self, handle: ParticipantHandle, addresses: list[str] = LOOPBACK) -> None:
        self.handle = handle
        offer = await self.pc.createOffer()
        ai.gather_on(self.pc, addresses)
        await self.pc.setLocalDescription(offer)
        answer = await handle.handle_offer(self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    def slot_of(self, publisher_id: str, kind: str) -> str | None:
        assert self.handle is not None
        kinds = {t.mid: t.kind for t in self.pc.getTransceivers()}
        for mid, pub in self.handle.slots().items():
            if pub == publisher_id and kinds.get(mid) == kind:
                return mid
        return None

    def log(self, mid: str | None) -> SlotLog:
        return self.logs.get(mid or "", SlotLog())

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.pc.close()


class _PacketCounter:
    def __init__(self, client: Client, transceiver: object) -> None:
        self.client = client
        self.transceiver = transceiver

    async def start(self, transport: object, parameters: object) -> None:
        ai.register_rtp_receiver(transport, self, parameters)  # type: ignore[arg-type]

    async def _handle_rtp_packet(self, packet: object, arrival_time_ms: int) -> None:
        mid = self.transceiver.mid  # type: ignore[attr-defined]
        self.client.rtp_packets[mid] = self.client.rtp_packets.get(mid, 0) + 1

    async def _handle_rtcp_packet(self, packet: object) -> None:
        pass

    def _handle_disconnect(self) -> None:
        pass


async def wait_until(cond: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    """Poll ``cond`` until true; fail after ``within`` seconds (generous, not a speed assertion)."""
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


LUMA = {"a": 50, "b": 110, "c": 170}


def close_to(value: int | None, expected: int, tolerance: int = 12) -> bool:
    return value is not None and abs(value - expected) <= tolerance


def sees_video(client: Client, publisher: str) -> bool:
    """The client decoded 640x360 frames from ``publisher`` (identified by luma)."""
    log = client.log(client.slot_of(publisher, "video"))
    return (
        log.frames >= 3
        and log.size == (640, 360)
        and bool(log.lumas)
        and close_to(log.lumas[-1], LUMA[publisher])
    )


def hears(client: Client, publisher: str) -> bool:
    return client.log(client.slot_of(publisher, "audio")).frames >= 25  # >= 0.5 s of audio


def server_pcs(sfu: Sfu, room_id: str) -> list[RTCPeerConnection]:
    room = sfu._room(room_id)
    return [p.peer_connection for p in room.participants.values() if p.peer_connection is not None]


async def join(sfu: Sfu, make_client: Callable[..., Client], name: str, **kw: object) -> Client:
    client = make_client(name, **kw)
    await client.connect(await sfu.admit("r", name))
    return client
