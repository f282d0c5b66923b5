"""Weak-link tuning of the headless kiosk's aiortc peer connection.

Stock aiortc 1.16.0 falls apart on a 300 kbit/s hall link with 5 % loss (issue #7): its
VP8 encoder never goes below 250 kbit/s and rebuilds itself (a keyframe) on every REMB
change over 10 %; it makes a keyframe on every PLI and retransmits every NACKed packet
without limit; its receiver re-NACKs everything missing in the last 128 packets on every
new gap, and its jitter buffer (512 packets) waits forever for a lost packet, freezing
video for 15-20 s. This module is the only place the kiosk changes aiortc's behaviour,
always *per instance* (one sender/receiver of one peer connection, nothing
process-wide), through these internals (pinned to the same aiortc version as
:mod:`rtc.aiortc_internals`, each checked by tests/rtc/test_tuning.py):

- ``RTCRtpSender._RTCRtpSender__encoder``: left ``None`` by aiortc until the first frame;
  we put our encoder there when the sender starts (``send``), so the sender uses it.
- ``RTCRtpSender._send_keyframe`` / ``_retransmit`` (called through ``self.``): shadowed
  to throttle keyframes and to limit retransmissions; ``__force_keyframe``,
  ``__rtp_history`` and ``__rtt`` are read/written as aiortc does.
- ``Vp8Encoder``: its ``encode`` rebuilds the libvpx context when ``target_bitrate``
  moved >10 % and sizes the rate buffer from ``_Vp8Encoder__target_bitrate``;
  ``OpusEncoder.codec`` is an unopened PyAV context we may still configure.
- ``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer`` / ``__nack_generator`` replaced by
  ours; ``_send_rtcp_nack`` / ``_send_rtcp_pli`` (called through ``self.``) shadowed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import RTP_HISTORY_SIZE

from rtc import aiortc_internals as ai
from rtc.codecs import vp8
from rtc.keyframes import KeyframeThrottle, MinInterval
from rtc.retransmit import RetransmitGate
from rtc.rtputil import PacedNackList, nack_runs


@dataclass
class WeakLinkTuning:
    """Knobs of the kiosk's media on weak links (bit/s and seconds)."""

    video_min_bitrate: int = 60_000
    video_max_bitrate: int = 500_000
    video_start_bitrate: int = 300_000
    #: Below this target the camera is encoded at ``small_size`` (fewer bits per pixel to spend).
    small_below_bitrate: int = 280_000
    small_size: tuple[int, int] = (320, 240)
    #: Rebuilding the encoder costs a keyframe: at most one rebuild per this many seconds,
    #: unless the target halves.
    rebuild_min_interval: float = 4.0
    keyframe_min_interval: float = 1.0
    pli_min_interval: float = 1.0
    nack_max_retries: int = 3
    nack_max_age: float = 1.0
    #: An incomplete video frame older than this is dropped (and a keyframe asked for).
    jitter_max_wait: float = 0.4
    retransmit_max_per_packet: int = 2
    retransmit_budget: float = 0.15
    #: Opus rate; lowered to the server's ``maxaveragebitrate`` once the answer is known.
    opus_bitrate: int = 24_000
    consent_interval: float = 5.0
    consent_timeout: float = 60.0
    #: Counters, for logs and tests.
    stats: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n


# --- encoders -------------------------------------------------------------------------------


class TunedVp8Encoder(Vp8Encoder):
    """aiortc's VP8 encoder with a lower floor, fewer rebuilds, and a small picture when thin."""

    def __init__(self, tuning: WeakLinkTuning) -> None:
        super().__init__()
        self._tuning = tuning
        self._wanted = tuning.video_start_bitrate
        self._applied = tuning.video_start_bitrate
        self._applied_at = -1e9
        self._small = self._applied < tuning.small_below_bitrate
        self._Vp8Encoder__target_bitrate = self._applied

    @property
    def target_bitrate(self) -> int:
        return self._applied

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        t = self._tuning
        self._wanted = max(t.video_min_bitrate, min(int(bitrate), t.video_max_bitrate))

    def encode(self, frame: av.frame.Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        now = time.monotonic()
        t = self._tuning
        change = abs(self._wanted - self._applied) / self._applied
        halved = self._wanted <= self._applied / 2
        if change > 0.1 and (halved or now - self._applied_at >= t.rebuild_min_interval):
            self._applied = self._wanted
            self._applied_at = now
            self._Vp8Encoder__target_bitrate = self._applied
            t.count("encoder_rebuilds")
            # hysteresis between the two sizes
            if self._applied < t.small_below_bitrate:
                self._small = True
            elif self._applied > t.small_below_bitrate * 1.3:
                self._small = False
        assert isinstance(frame, av.VideoFrame)
        width, height = t.small_size
        if self._small and frame.width > width:
            pts, time_base = frame.pts, frame.time_base
            frame = frame.reformat(width=width, height=height, format="yuv420p")
            frame.pts, frame.time_base = pts, time_base
        return super().encode(frame, force_keyframe)


def tuned_opus_encoder(bitrate: int) -> OpusEncoder:
    encoder = OpusEncoder()
    encoder.codec.bit_rate = bitrate
    # In-band FEC sized for a lossy link; the context opens on the first frame.
    encoder.codec.options = {"application": "voip", "fec": "1", "packet_loss": "10"}
    return encoder


# --- sender ---------------------------------------------------------------------------------


def tune_sender(sender: RTCRtpSender, tuning: WeakLinkTuning) -> None:
    original_send = sender.send
    gate = RetransmitGate(
        max_per_packet=tuning.retransmit_max_per_packet,
        budget_share=tuning.retransmit_budget,
        window=RTP_HISTORY_SIZE,
    )

    async def send(parameters: RTCRtpSendParameters) -> None:
        codec = parameters.codecs[0].mimeType.lower() if parameters.codecs else ""
        if getattr(sender, "_RTCRtpSender__encoder") is None:  # noqa: B009
            if codec == "video/vp8":
                sender._RTCRtpSender__encoder = TunedVp8Encoder(tuning)  # type: ignore[attr-defined]
            elif codec == "audio/opus":
                sender._RTCRtpSender__encoder = tuned_opus_encoder(tuning.opus_bitrate)  # type: ignore[attr-defined]
        await original_send(parameters)

    def force_keyframe() -> None:
        sender._RTCRtpSender__force_keyframe = True  # type: ignore[attr-defined]
        tuning.count("keyframes")

    # aiortc makes a keyframe on every PLI; each is 5-10x a delta frame.
    keyframes = KeyframeThrottle(tuning.keyframe_min_interval, force_keyframe)

    def send_keyframe() -> None:
        if keyframes.request() == "deferred":
            tuning.count("keyframes_deferred")

    original_retransmit = sender._retransmit

    async def retransmit(sequence_number: int) -> None:
        now = time.monotonic()
        rtt = getattr(sender, "_RTCRtpSender__rtt", None) or 0.1  # noqa: B009
        if not gate.may_resend(sequence_number, now, rtt):
            tuning.count("retransmit_refused")
            return
        history = getattr(sender, "_RTCRtpSender__rtp_history")  # noqa: B009
        packet = history.get(sequence_number % RTP_HISTORY_SIZE)
        if packet is None or packet.sequence_number != sequence_number:
            return
        encoder = getattr(sender, "_RTCRtpSender__encoder", None)  # noqa: B009
        estimate = getattr(encoder, "target_bitrate", None) or tuning.video_start_bitrate
        if not gate.take(sequence_number, 12 + len(packet.payload), now, estimate):
            tuning.count("retransmit_refused")
            return
        tuning.count("retransmitted")
        await original_retransmit(sequence_number)

    sender.send = send  # type: ignore[method-assign]
    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
    sender._retransmit = retransmit  # type: ignore[method-assign]


# --- receiver -------------------------------------------------------------------------------


class TimeBoundedJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, but a frame that cannot be completed within ``max_wait``
    seconds is dropped (with everything before the next frame start) instead of stalling
    the video until the buffer overflows; the caller then asks for a keyframe."""

    def __init__(self, capacity: int, max_wait: float, tuning: WeakLinkTuning) -> None:
        super().__init__(capacity=capacity, is_video=True)
        self._max_wait = max_wait
        self._tuning = tuning
        self._stalled_since: float | None = None

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if frame is not None or not self._has_hole():
            self._stalled_since = None
            return pli_flag, frame
        now = time.monotonic()
        if self._stalled_since is None:
            self._stalled_since = now
        if now - self._stalled_since < self._max_wait:
            return pli_flag, None
        # Give up on the incomplete frame(s): skip to the next frame start after the hole.
        skip = self._next_frame_start()
        if skip is None:
            return pli_flag, None
        self.remove(skip)
        self._tuning.count("frames_dropped")
        self._stalled_since = None
        return True, self._remove_frame(packet.sequence_number)

    def _has_hole(self) -> bool:
        if self._origin is None:
            return False
        seen_gap = False
        for count in range(self._capacity):
            present = self._packets[(self._origin + count) % self._capacity] is not None
            if not present:
                seen_gap = True
            elif seen_gap:
                return True
        return False

    def _next_frame_start(self) -> int | None:
        """Offset from the origin of the first frame-start packet after the first hole."""
        assert self._origin is not None
        seen_gap = False
        for count in range(1, self._capacity):
            p = self._packets[(self._origin + count) % self._capacity]
            if p is None:
                seen_gap = True
            elif seen_gap and (d := vp8.PayloadDescriptor.parse(p.payload)) is not None and d.frame_start:
                return count
        return None


class _PacedNacks:
    """Stands in for aiortc's NackGenerator: ``add`` says whether to NACK, ``missing`` what."""

    def __init__(self, tuning: WeakLinkTuning, rtt: Any) -> None:
        self._list = PacedNackList(max_retries=tuning.nack_max_retries, max_age_s=tuning.nack_max_age)
        self._rtt = rtt
        self._due: list[int] = []
        self.max_seq: int | None = None

    def add(self, packet: Any) -> bool:
        now = time.monotonic()
        self._list.received(packet.sequence_number, now)
        self.max_seq = self._list.max_seq
        self._due = self._list.due(now, self._rtt()) if self._list.missing else []
        return bool(self._due)

    @property
    def missing(self) -> set[int]:
        return set(self._due)


def tune_receiver(receiver: RTCRtpReceiver, tuning: WeakLinkTuning, rtt: Any) -> None:
    """Tune a *video* receiver (audio has no NACK and a 16-packet buffer in aiortc)."""
    receiver._RTCRtpReceiver__jitter_buffer = TimeBoundedJitterBuffer(  # type: ignore[attr-defined]
        128, tuning.jitter_max_wait, tuning
    )
    nacks = _PacedNacks(tuning, rtt)
    receiver._RTCRtpReceiver__nack_generator = nacks  # type: ignore[attr-defined]
    original_pli = receiver._send_rtcp_pli
    plis = MinInterval(tuning.pli_min_interval)

    async def send_rtcp_nack(media_ssrc: int, lost: list[int]) -> None:
        # one RTCP packet per run: aiortc cannot pack a NACK across the 65535 -> 0 wrap
        ssrc = getattr(receiver, "_RTCRtpReceiver__rtcp_ssrc", None)  # noqa: B009
        if ssrc is None:
            return
        tuning.count("nacks", len(lost))
        for run in nack_runs(lost, nacks.max_seq or 0):
            packet = ai.RtcpRtpfbPacket(fmt=ai.RTCP_RTPFB_NACK, ssrc=ssrc, media_ssrc=media_ssrc, lost=run)
            await receiver._send_rtcp(packet)

    async def send_rtcp_pli(media_ssrc: int) -> None:
        now = time.monotonic()
        if not plis.allow(now):
            tuning.count("pli_suppressed")
            return
        tuning.count("pli")
        await original_pli(media_ssrc)

    receiver._send_rtcp_nack = send_rtcp_nack  # type: ignore[method-assign]
    receiver._send_rtcp_pli = send_rtcp_pli  # type: ignore[method-assign]


# --- whole peer connection ------------------------------------------------------------------


def sender_rtt(pc: RTCPeerConnection) -> float | None:
    """Round-trip time aiortc's senders measured from RTCP (seconds)."""
    values = [getattr(t.sender, "_RTCRtpSender__rtt", None) for t in pc.getTransceivers()]  # noqa: B009
    found = [v for v in values if v is not None]
    return min(found) if found else None


def tune_peer_connection(pc: RTCPeerConnection, tuning: WeakLinkTuning) -> None:
    """Tune every transceiver of ``pc`` (call after adding them, before negotiating)."""
    for t in pc.getTransceivers():
        if t.sender.track is not None:
            tune_sender(t.sender, tuning)
        if t.kind == "video":
            tune_receiver(t.receiver, tuning, lambda: sender_rtt(pc))
    ai.tune_consent(pc, tuning.consent_interval, tuning.consent_timeout)


def opus_bitrate_from_answer(sdp: str) -> int | None:
    """The ``maxaveragebitrate`` the server asked for in its answer, if any."""
    for line in sdp.splitlines():
        if line.startswith("a=fmtp:") and "maxaveragebitrate=" in line:
            for param in line.split(" ", 1)[1].split(";"):
                key, _, value = param.strip().partition("=")
                if key == "maxaveragebitrate" and value.isdigit():
                    return int(value)
    return None
