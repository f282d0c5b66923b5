"""A bench client process hosting many synthetic aiortc peers.

Publishing peers send a pre-encoded looping 640x360 15 fps VP8 clip (packed by
aiortc's sender without encoding, so publisher CPU stays low) and a live Opus
tone (aiortc's encoder, so RFC 6464 audio levels are sent and the SFU's
loudness/speaker logic runs). Receive slots never decode: each slot's receiver
is replaced (the testkit's mechanism, ``aiortc_internals.intercept_receive``)
by a counter of RTP packets and VP8 frames (marker bits).

For the end-to-end delay, a publisher stamps ``time.monotonic()`` for every
RTP packet it hands to its DTLS transport (before SRTP), keyed by a CRC of
the payload, which the SFU forwards unchanged; receivers stamp arrival (after
SRTP) with the same key. CLOCK_MONOTONIC is shared by all processes of the
machine, so the orchestrator joins the two sides.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import Connection
from typing import Any

from .common import LOOPBACK, Handler, proc_cpu_seconds, rtp_payload, run_child

FPS = 15
MAX_KEYS = 300_000


@dataclass
class PeerSpec:
    pid: str
    video: bool = False  # publish the VP8 clip
    amplitude: int | None = None  # publish an Opus tone (None: no audio)
    video_slots: int = 0
    audio_slots: int = 0
    role: str = "subscriber"  # for the MediaRelay server: publisher/subscriber


class Recorder:
    def __init__(self) -> None:
        self.on = False
        self.sent: list[tuple[int, float]] = []
        self.received: list[tuple[int, float]] = []


def serve(conn: Connection, clip: list[tuple[bytes, bool]], server_port: int) -> None:
    run_child(conn, lambda: _setup(clip, server_port))


async def _setup(clip: list[tuple[bytes, bool]], server_port: int) -> Handler:
    import aiohttp
    import av
    from aiortc import (
        MediaStreamTrack,
        RTCBundlePolicy,
        RTCConfiguration,
        RTCPeerConnection,
        RTCSessionDescription,
    )
    from aiortc.mediastreams import MediaStreamError

    from server.sfu import aiortc_internals as ai
    from tests.sfu.sfu_testkit import SyntheticAudio

    rec = Recorder()
    url = f"http://{LOOPBACK}:{server_port}/offer"
    session = aiohttp.ClientSession()
    peers: dict[str, Any] = {}
    import os

    class PreEncodedVideo(MediaStreamTrack):
        """Loops pre-encoded VP8 frames at 15 fps; aiortc packs them without encoding."""

        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self._n = 0
            self._start: float | None = None

        async def recv(self) -> Any:
            if self.readyState != "live":
                raise MediaStreamError
            loop = asyncio.get_running_loop()
            if self._start is None:
                self._start = loop.time()
            await asyncio.sleep(max(0.0, self._start + self._n / FPS - loop.time()))
            data, _key = clip[self._n % len(clip)]
            pkt = av.Packet(data)
            pkt.pts = self._n * (90000 // FPS)
            pkt.time_base = Fraction(1, 90000)
            self._n += 1
            return pkt

    class SlotCounter:
        def __init__(self, transceiver: Any) -> None:
            self.t = transceiver
            self.kind = transceiver.kind
            self.packets = 0
            self.frames = 0

        async def start(self, transport: Any, parameters: Any) -> None:
            ai.register_rtp_receiver(transport, self, parameters)

        async def _handle_rtp_packet(self, packet: Any, arrival_time_ms: int) -> None:
            self.packets += 1
            if self.kind == "video":
                if packet.marker:
                    self.frames += 1
                if rec.on and len(rec.received) < MAX_KEYS:
                    rec.received.append((zlib.crc32(packet.payload), time.monotonic()))

        async def _handle_rtcp_packet(self, packet: Any) -> None:
            pass

        def _handle_disconnect(self) -> None:
            pass

    class Peer:
        def __init__(self, spec: PeerSpec) -> None:
            self.spec = spec
            self.pc = RTCPeerConnection(
                RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
            )
            self.counters: list[SlotCounter] = []
            if spec.amplitude is not None:
                self.pc.addTransceiver(SyntheticAudio(spec.amplitude), direction="sendonly")
            for _ in range(spec.audio_slots):
                self.pc.addTransceiver("audio", direction="recvonly")
            if spec.video:
                self.pc.addTransceiver(PreEncodedVideo(), direction="sendonly")
            for _ in range(spec.video_slots):
                self.pc.addTransceiver("video", direction="recvonly")
            for t in self.pc.getTransceivers():
                if t.direction == "recvonly":
                    c = SlotCounter(t)
                    self.counters.append(c)
                    ai.intercept_receive(t.receiver, c.start)

        def _stamp_sends(self) -> None:
            dtls = self.pc.getTransceivers()[0].sender.transport
            original = dtls._send_rtp

            async def send_rtp(data: bytes) -> None:
                if rec.on and len(rec.sent) < MAX_KEYS:
                    payload = rtp_payload(data)
                    if payload is not None:
                        rec.sent.append((zlib.crc32(payload), time.monotonic()))
                await original(data)

            dtls._send_rtp = send_rtp

        async def connect(self) -> None:
            offer = await self.pc.createOffer()
            ai.gather_on(self.pc, [LOOPBACK])
            await self.pc.setLocalDescription(offer)
            if self.spec.video:
                self._stamp_sends()
            body = {"pid": self.spec.pid, "sdp": self.pc.localDescription.sdp, "role": self.spec.role}
            async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=30)) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"offer of {self.spec.pid}: HTTP {resp.status} {await resp.text()}")
                answer = (await resp.json())["sdp"]
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

        def counts(self) -> dict[str, tuple[str, int, int]]:
            return {c.t.mid: (c.kind, c.packets, c.frames) for c in self.counters}

    async def join(specs: list[PeerSpec]) -> dict[str, Any]:
        sem = asyncio.Semaphore(6)

        async def one(spec: PeerSpec) -> None:
            async with sem:
                p = Peer(spec)
                peers[spec.pid] = p
                await p.connect()

        results = await asyncio.gather(*(one(s) for s in specs), return_exceptions=True)
        errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        return {"joined": len(specs) - len(errors), "errors": errors}

    async def handler(msg: tuple[Any, ...]) -> Any:
        cmd = msg[0]
        if cmd == "join":
            return await join([PeerSpec(**d) for d in msg[1]])
        if cmd == "snapshot":
            # msg[1]: record keys from now on (True) or stop recording (False)
            out = {
                "t": time.monotonic(),
                "cpu": proc_cpu_seconds(os.getpid()),
                "peers": {pid: p.counts() for pid, p in peers.items()},
                "states": {pid: p.pc.connectionState for pid, p in peers.items()},
                "sent": rec.sent,
                "received": rec.received,
            }
            rec.sent, rec.received = [], []
            rec.on = bool(msg[1])
            return out
        if cmd == "stop":
            await asyncio.wait_for(
                asyncio.gather(*(p.pc.close() for p in peers.values()), return_exceptions=True), 20
            )
            await session.close()
            return {"ok": True}
        raise ValueError(f"unknown command {cmd!r}")

    return handler
