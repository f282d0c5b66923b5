"""A bench client process hosting many synthetic aiortc peers.

Publishing peers send a pre-encoded looping 640x360 15 fps VP8 clip and a
pre-encoded looping Opus tone with an RFC 6464 audio level per peer (so the
SFU's loudness/speaker logic runs), through a lean RTP loop of the bench (see
``LeanSender``) instead of aiortc's encoder/sender, keeping the clients' CPU
low: they share the 2 cores with the server.

Receive slots never decode. Every slot's receiver is replaced (the testkit's
mechanism, ``aiortc_internals.intercept_receive``), and packets are counted
even earlier, where aioice hands a datagram to its ICE connection: the RTP
header is not encrypted by SRTP, so the SSRC (-> slot, from the answer's a=ssrc lines) and the marker bit
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
import os
import random
import struct
import time
import zlib
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import Connection
from typing import Any

from .common import LOOPBACK, Handler, proc_cpu_seconds, rtp_payload, run_child

FPS = 15
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
AST_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
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
    from aiortc import (
        MediaStreamTrack,
        RTCBundlePolicy,
        RTCConfiguration,
        RTCPeerConnection,
        RTCSessionDescription,
    )
    from aiortc.mediastreams import MediaStreamError

    from rtc import aiortc_internals as ai

    rec = Recorder()
    url = f"http://{LOOPBACK}:{server_port}/offer"
    session = aiohttp.ClientSession()
    peers: dict[str, Any] = {}

    opus_loop = _encode_opus_loop()
    clip_frames = [data for data, _key in clip]

    class Placeholder(MediaStreamTrack):
        """Track given to a sending transceiver so the SDP says sendonly; never pulled,
        because the sender's start is intercepted by :class:`LeanSender`."""

        def __init__(self, kind: str) -> None:
            super().__init__()
            self.kind = kind

        async def recv(self) -> Any:
            await asyncio.sleep(3600)
            raise MediaStreamError

    class LeanSender:
        """Sends a publisher's pre-encoded media as RTP through its peer connection.

        aiortc negotiates ICE/DTLS/SRTP as usual, but the sender's start is
        intercepted (``aiortc_internals.intercept_send``, as the SFU does) and this
        loop builds each RTP packet itself (12-byte header + one-byte header
        extensions mid, abs-send-time and, for audio, the RFC 6464 level), then
        SRTP-protects and sends it on the transport. Same wire format as aiortc's
        RTCRtpSender, at a fraction of its Python cost per packet, so the clients
        leave more of the 2 cores to the server. Keyframe requests are ignored:
        the looping clip has a keyframe every 2 s.
        """

        def __init__(self, sender: Any, kind: str, level_dbov: int | None = None) -> None:
            self._ssrc = ai.sender_ssrc(sender)  # name required by aiortc's RtpRouter
            self.kind = kind
            self.level = None if level_dbov is None else min(127, -level_dbov)
            self.task: asyncio.Task[None] | None = None
            ai.intercept_send(sender, self.start)

        async def start(self, transport: Any, parameters: Any) -> None:
            codecs = [c for c in parameters.codecs if c.name.lower() not in ("rtx", "red", "ulpfec")]
            self.pt = codecs[0].payloadType
            ids = {e.uri: e.id for e in parameters.headerExtensions}
            mid = parameters.muxId.encode()
            self.mid_ext = b""
            if mid and ids.get(MID_URI):
                self.mid_ext = bytes([ids[MID_URI] << 4 | (len(mid) - 1)]) + mid
            self.ast_id = ids.get(AST_URI)
            self.level_id = ids.get(LEVEL_URI)
            self.transport = transport
            ai.register_rtp_sender(transport, self, parameters)
            self.task = asyncio.get_running_loop().create_task(self.run())

        async def _handle_rtcp_packet(self, packet: Any) -> None:
            pass  # RR/REMB/PLI from the SFU: nothing to adapt in a pre-encoded loop

        def _packet(self, marker: bool, seq: int, ts: int, payload: bytes) -> bytes:
            ext = self.mid_ext
            if self.ast_id:
                ntp = int((time.time() + 2208988800) * 4294967296)
                ext += bytes([self.ast_id << 4 | 2]) + ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")
            if self.level is not None and self.level_id:
                ext += bytes([self.level_id << 4, self.level])
            ext += b"\0" * (-len(ext) % 4)
            head = struct.pack(
                "!BBHIIHH",
                0x90,
                (0x80 if marker else 0) | self.pt,
                seq,
                ts,
                self._ssrc,
                0xBEDE,
                len(ext) // 4,
            )
            return head + ext + payload

        async def run(self) -> None:
            from aiortc.codecs.vpx import Vp8Encoder

            loop = asyncio.get_running_loop()
            seq = random.getrandbits(16)
            ts0 = random.getrandbits(32)
            picture_id = random.getrandbits(15)
            start = loop.time()
            period = 1 / FPS if self.kind == "video" else 0.02
            n = 0
            try:
                while True:
                    await asyncio.sleep(max(0.0, start + n * period - loop.time()))
                    if self.kind == "video":
                        payloads = Vp8Encoder._packetize(clip_frames[n % len(clip_frames)], picture_id)
                        picture_id = (picture_id + 1) & 0x7FFF
                        ts = (ts0 + n * (90000 // FPS)) & 0xFFFFFFFF
                    else:
                        payloads = [opus_loop[n % len(opus_loop)]]
                        ts = (ts0 + n * 960) & 0xFFFFFFFF
                    last = len(payloads) - 1
                    for i, payload in enumerate(payloads):
                        await ai.send_rtp(self.transport, self._packet(i == last, seq, ts, payload))
                        seq = (seq + 1) & 0xFFFF
                    n += 1
            except ConnectionError:
                pass

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
            self.senders: list[LeanSender] = []
            if spec.amplitude is not None:
                t = self.pc.addTransceiver(Placeholder("audio"), direction="sendonly")
                # dBov of a sine of this amplitude (RMS = amplitude / sqrt 2)
                rms = spec.amplitude / math.sqrt(2)
                level = -127 if rms <= 0 else max(-127, round(20 * math.log10(rms / 32768)))
                self.senders.append(LeanSender(t.sender, "audio", level))
            for _ in range(spec.audio_slots):
                self.pc.addTransceiver("audio", direction="recvonly")
            if spec.video:
                t = self.pc.addTransceiver(Placeholder("video"), direction="sendonly")
                self.senders.append(LeanSender(t.sender, "video"))
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
            sampled = self.sampled

            def tap(data: bytes) -> bool:
                c = by_ssrc.get(int.from_bytes(data[8:12], "big"))
                if c is None:
                    return False
                c.packets += 1
                if c.kind == "video":
                    if data[1] & 0x80:
                        c.frames += 1
                    if sampled:
                        return False  # decrypted by DTLS/SRTP -> SlotCounter
                return True  # counted; no decryption

            # count as the datagram arrives and drop, before any parse, queue or task
            ai.tap_protected_rtp(self.pc, tap)

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
            for p in peers.values():
                for snd in p.senders:
                    if snd.task is not None:
                        snd.task.cancel()
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
