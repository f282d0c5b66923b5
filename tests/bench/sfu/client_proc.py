"""A bench client process hosting many synthetic aiortc peers.

Publishing peers send a pre-encoded looping 640x360 15 fps VP8 clip (packed by
aiortc's sender without encoding) and a pre-encoded looping Opus tone with an
RFC 6464 audio level per peer (so the SFU's loudness/speaker logic runs),
keeping the clients' CPU low: they share the 2 cores with the server.

Receive slots never decode. Every slot's receiver is replaced (the testkit's
mechanism, ``aiortc_internals.intercept_receive``), and packets are counted
even earlier, on the peer's ICE transport: the RTP header is not encrypted by
SRTP, so the SSRC (-> slot, from the answer's a=ssrc lines) and the marker bit
(= last packet of a VP8 frame) are read there, and the datagram is dropped
without SRTP decryption. Only a few "sampled" peers per process pass their
video packets on (decrypt + parse) to record payload keys for the delay.

For the end-to-end delay, a publisher stamps ``time.monotonic()`` for every
RTP packet it hands to its DTLS transport (before SRTP), keyed by a CRC of
the payload, which the SFU forwards unchanged; receivers stamp arrival (after
SRTP) with the same key. CLOCK_MONOTONIC is shared by all processes of the
machine, so the orchestrator joins the two sides.
"""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import Connection
from typing import Any

from .common import LOOPBACK, Handler, proc_cpu_seconds, rtp_payload, run_child

FPS = 15
MAX_KEYS = 300_000
SAMPLED_PEERS = 3  # receiving peers per process whose video is decrypted for the e2e delay


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

    opus_loop = _encode_opus_loop()

    class SilentTrack(MediaStreamTrack):
        """Placeholder track for the audio sender; its frames are never pulled."""

        kind = "audio"

        async def recv(self) -> Any:
            await asyncio.sleep(3600)
            raise MediaStreamError

    def send_preencoded_audio(sender: Any, amplitude: int) -> None:
        """Make ``sender`` send the pre-encoded Opus loop every 20 ms with this
        peer's audio level, instead of pulling and encoding frames (instance-level
        override of aiortc 1.16's ``RTCRtpSender._next_encoded_frame``)."""
        from aiortc.rtcrtpsender import RTCEncodedFrame

        # dBov of a sine of this amplitude (RMS = amplitude / sqrt 2)
        rms = amplitude / math.sqrt(2)
        level = -127 if amplitude <= 0 else max(-127, round(20 * math.log10(rms / 32768)))
        state = {"n": 0, "start": None}

        async def next_encoded_frame(codec: Any) -> Any:
            loop = asyncio.get_running_loop()
            if state["start"] is None:
                state["start"] = loop.time()
            n = state["n"]
            await asyncio.sleep(max(0.0, state["start"] + n * 0.02 - loop.time()))
            state["n"] = n + 1
            return RTCEncodedFrame([opus_loop[n % len(opus_loop)]], n * 960, level)

        sender._next_encoded_frame = next_encoded_frame

    class SlotCounter:
        def __init__(self, transceiver: Any) -> None:
            self.t = transceiver
            self.kind = transceiver.kind
            self.packets = 0  # counted on the ICE transport (see Peer._count_on_ice)
            self.frames = 0

        async def start(self, transport: Any, parameters: Any) -> None:
            ai.register_rtp_receiver(transport, self, parameters)

        async def _handle_rtp_packet(self, packet: Any, arrival_time_ms: int) -> None:
            # only sampled peers' video gets here (decrypted and parsed)
            if rec.on and len(rec.received) < MAX_KEYS:
                rec.received.append((zlib.crc32(packet.payload), time.monotonic()))

        async def _handle_rtcp_packet(self, packet: Any) -> None:
            pass

        def _handle_disconnect(self) -> None:
            pass

    class Peer:
        def __init__(self, spec: PeerSpec, sampled: bool) -> None:
            self.spec = spec
            self.sampled = sampled
            self.pc = RTCPeerConnection(
                RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
            )
            self.counters: list[SlotCounter] = []
            if spec.amplitude is not None:
                t = self.pc.addTransceiver(SilentTrack(), direction="sendonly")
                send_preencoded_audio(t.sender, spec.amplitude)
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
            if self.counters:
                self._count_on_ice(answer)

        def _count_on_ice(self, answer: str) -> None:
            by_mid = {c.t.mid: c for c in self.counters}
            by_ssrc: dict[int, SlotCounter] = {}
            for media in ai.SessionDescription.parse(answer).media:
                c = by_mid.get(media.rtp.muxId)
                if c is not None:
                    for info in media.ssrc:
                        by_ssrc[info.ssrc] = c
            ice = self.pc.getTransceivers()[0].receiver.transport.transport
            original = ice._recv
            sampled = self.sampled

            async def recv() -> bytes:
                while True:
                    data = await original()
                    if 127 < data[0] < 192 and len(data) >= 12 and not 192 <= data[1] <= 208:
                        c = by_ssrc.get(int.from_bytes(data[8:12], "big"))
                        if c is not None:
                            c.packets += 1
                            if c.kind == "video":
                                if data[1] & 0x80:
                                    c.frames += 1
                                if sampled:
                                    return data  # decrypted by DTLS/SRTP -> SlotCounter
                            continue  # counted; no decryption
                    return data

            ice._recv = recv

        def counts(self) -> dict[str, tuple[str, int, int]]:
            return {c.t.mid: (c.kind, c.packets, c.frames) for c in self.counters}

    async def join(specs: list[PeerSpec]) -> dict[str, Any]:
        sem = asyncio.Semaphore(6)

        async def one(spec: PeerSpec) -> None:
            async with sem:
                receiving = spec.video_slots > 0
                sampled = receiving and sum(1 for q in peers.values() if q.sampled) < SAMPLED_PEERS
                p = Peer(spec, sampled)
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


def _encode_opus_loop(seconds: float = 1.0) -> list[bytes]:
    """Opus payloads of a 440 Hz tone, 20 ms each, encoded once with aiortc's encoder."""
    import av
    from aiortc.codecs.opus import OpusEncoder

    from tests.sfu.sfu_testkit import SyntheticAudio

    tone = SyntheticAudio(8000)._data  # 960 s16 mono samples
    enc = OpusEncoder()
    out: list[bytes] = []
    for n in range(int(seconds / 0.02)):
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(tone)
        frame.sample_rate = 48000
        frame.pts = n * 960
        frame.time_base = Fraction(1, 48000)
        payloads, _ts = enc.encode(frame)
        out.extend(payloads)
    return out
