"""Packet-level forwarding: one :class:`InboundStream` per published track and
one :class:`OutStream` per subscriber receive slot.

Both register themselves on aiortc's DTLS transport in place of aiortc's
RTCRtpReceiver/RTCRtpSender (see aiortc_internals), so they see decrypted,
parsed RTP/RTCP and never decode anything. An InboundStream forwards each
packet synchronously (no queue, no extra task) to the OutStreams currently
assigned to it; each OutStream rewrites SSRC, payload type, sequence number,
timestamp and header extensions for its subscriber and sends the packet on
the subscriber's transport.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal, NamedTuple

from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)

from rtc import aiortc_internals as ai
from rtc.codecs import opus as opus_codec
from rtc.codecs import vp8
from rtc.keyframes import KeyframeThrottle
from rtc.retransmit import RetransmitGate
from rtc.rtputil import (
    PacedNackList,
    ReceiveStatistics,
    RtpHeaderLayout,
    abs_send_time_now,
    level_octet,
    nack_runs,
    ntp_now,
    seq_add,
)
from rtc.seq_rewriter import SeqRewriter
from rtc.transport_cc import TRANSPORT_CC_URI, TransportFeedback

from .config import SfuConfig
from .pacer import Pacer
from .simulcast import DROP, SWITCHED, LayerSwitch

logger = logging.getLogger(__name__)

Kind = Literal["audio", "video"]

#: A read-only observer of every RTP packet an InboundStream accepts (the
#: recorder, see recording.py). Called synchronously in the receive loop, so it
#: must be cheap and must not block; exceptions are logged and the tap removed.
RtpTap = Callable[["InboundStream", ai.RtpPacket], None]

#: Bytes of a plain RTP header, for byte counters (extensions are not counted).
RTP_HEADER_BYTES = 12
#: A subscriber's REMB older than this no longer describes its link (seconds).
REMB_FRESH_S = 5.0
#: Padding the SFU sends to probe a subscriber's line: the largest an RTP padding can be (its
#: length is one octet), and at most this many packets at once (prober.py sends every 40 ms).
PADDING_PACKET_BYTES = 255
MAX_PADDING_BURST = 16
#: Round-trip time assumed until RTCP has measured one (seconds).
DEFAULT_RTT = 0.1
#: Output sequence numbers a subscriber may still NACK (resend counts older than this go).
RETRANSMIT_WINDOW = 512


class Departure(NamedTuple):
    """What every copy of one packet is sent with, worked out once per packet and not once
    per subscriber: the copies of a fan-out leave together, in the UDP mux's one ``sendmmsg``
    at the end of the loop turn, so one abs-send-time is as true of each as its own would be
    (a paced copy is stamped again as it leaves the pacer)."""

    now: float  #: time.monotonic()
    abs_send_time: int  #: the abs-send-time extension's value (rtputil.abs_send_time_now)
    level: int  #: the packet's audio-level octet, -1 for none (rtputil.level_octet)

    @classmethod
    def of(cls, packet: ai.RtpPacket, now: float | None = None) -> Departure:
        return cls(
            time.monotonic() if now is None else now,
            abs_send_time_now(),
            level_octet(packet.extensions.audio_level),
        )


def _media_codecs(codecs: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
    return [c for c in codecs if c.name.lower() not in ("rtx", "red", "ulpfec")]


class _TaskOwner:
    """Keeps references to the small fire-and-forget send tasks so they can be cancelled."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def uplink_estimate(
    remb: ai.RemoteBitrateEstimator | None, packet: ai.RtpPacket, arrival_time_ms: int
) -> int | None:
    """Feed one received video packet to the publisher's uplink estimator (abs-send-time based,
    as REMB); the new estimate in bit/s when the estimator has one."""
    if remb is None or packet.extensions.abs_send_time is None:
        return None
    estimate = remb.add(
        arrival_time_ms=arrival_time_ms,
        abs_send_time=packet.extensions.abs_send_time,
        payload_size=len(packet.payload) + packet.padding_size,
        ssrc=packet.ssrc,
    )
    return None if estimate is None else estimate[0]


class InboundStream(_TaskOwner):
    """A track one participant publishes (audio or video), received by the SFU."""

    def __init__(
        self,
        *,
        kind: Kind,
        publisher_id: str,
        rtcp_ssrc: int,
        config: SfuConfig,
        on_disconnect: Callable[[], None],
        rtt: Callable[[], float | None] = lambda: None,
    ) -> None:
        super().__init__()
        self.kind: Kind = kind
        self.publisher_id = publisher_id
        self.outputs: list[OutStream] = []
        #: Recording taps (see :data:`RtpTap`); they also count as demand for the video.
        self.taps: list[RtpTap] = []
        #: Pipes to other SFUs (pipe.py): called like taps with every accepted packet of this
        #: stream (of this layer, for a simulcast layer), but no demand of their own.
        self.relays: list[RtpTap] = []
        #: Where RTCP to the publisher goes when its packets come through a pipe from another
        #: SFU (pipe.py; started with no transport) rather than from a DTLS transport.
        self.rtcp_sink: Callable[[bytes], None] | None = None
        #: Per pipe id (pipe.py): the layers (0 for a single-layer track) that subscribers on
        #: the SFU at its other end take; demand like a local slot's (video, layer pause).
        self.remote_layers: dict[str, frozenset[int]] = {}
        #: Per pipe id: the REMB its far end's subscribers of this track last sent (bit/s) and
        #: when (monotonic); a cap like a local subscriber's (see _remb_bitrate).
        self.remote_remb: dict[str, tuple[int, float]] = {}
        #: Simulcast: the published track this stream is a layer of (itself when it is the
        #: track), its layer index (None: not a layer) and the track's number of layers.
        self.track: InboundStream = self
        self.layer: int | None = None
        self.layer_count = 1
        #: Transport-wide congestion control with the publisher (rtc/transport_cc.py): the
        #: participant's feedback recorder, and the extension's id, when negotiated. The
        #: publisher then sets its rate by its own estimate; the SFU's REMB only caps it.
        self.transport_feedback: TransportFeedback | None = None
        self.transport_cc_id: int | None = None
        self._config = config
        self._rtcp_ssrc = rtcp_ssrc
        self._on_disconnect = on_disconnect
        self._transport: RTCDtlsTransport | None = None
        self._codecs: dict[int, RTCRtpCodecParameters] = {}
        self._opus_pts: set[int] = set()
        self._clock_rate = 90000 if kind == "video" else 48000
        self._media_ssrc: int | None = None
        self._stats: ReceiveStatistics | None = None
        self._rtt = rtt
        self._nack = self._new_nack_list() if kind == "video" else None
        self._remb = ai.RemoteBitrateEstimator() if kind == "video" else None
        self._remb_estimate: int | None = None
        self._cache: list[ai.RtpPacket | None] = [None] * config.nack_cache_size
        self._lsr = 0
        self._lsr_time: float | None = None
        self._rtcp_task: asyncio.Task[None] | None = None
        self._closed = False
        # keyframe requests (PLI), throttled per publisher
        self._keyframes = KeyframeThrottle(config.pli_min_interval, self._send_pli)
        self._pli_pending = False
        # loudness from the RFC 6464 audio-level extension, since last take_loudness()
        self._level_sum = 0.0
        self._level_count = 0
        # loss over the link-quality interval (see take_loss)
        self._lq_expected = 0
        self._lq_received = 0
        #: Loss on the way from the publisher (0..1, per our last receiver report): gaps we
        #: forward as they are, so a subscriber reports them as its own loss too.
        self.upstream_loss = 0.0
        self.last_packet_at: float | None = None
        # counters
        self.packets = 0
        self.bytes = 0
        self.plis_sent = 0
        self.nacks_sent = 0
        self.relay_time_total = 0.0
        #: Opus packets that were DTX / carried in-band FEC (see rtc/codecs/opus.py).
        self.opus_dtx_packets = 0
        self.opus_fec_packets = 0

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._transport is not None or (self.rtcp_sink is not None and self._rtcp_task is not None)

    async def start(
        self, transport: RTCDtlsTransport | None, parameters: RTCRtpReceiveParameters, register: bool = True
    ) -> None:
        """Called (through aiortc_internals.intercept_receive) once DTLS is up. A simulcast
        layer starts with ``register=False``: its track receives and hands packets over.
        ``transport`` None: fed by a pipe (pipe.py), with :attr:`rtcp_sink` set."""
        if self.started or self._closed:
            return
        self._transport = transport
        self._codecs = {c.payloadType: c for c in parameters.codecs if c.payloadType is not None}
        self._opus_pts = {pt for pt, c in self._codecs.items() if c.name.lower() == "opus"}
        media = _media_codecs(parameters.codecs)
        if media:
            self._clock_rate = media[0].clockRate
        if self.transport_cc_id is not None and register:
            # aiortc answered without it; the transport parses what a receiver's parameters name
            parameters.headerExtensions = [
                *parameters.headerExtensions,
                RTCRtpHeaderExtensionParameters(id=self.transport_cc_id, uri=TRANSPORT_CC_URI),
            ]
        if parameters.encodings and register:
            self._set_media_ssrc(parameters.encodings[0].ssrc)
        if register and transport is not None:
            ai.register_rtp_receiver(transport, self, parameters)
        self._rtcp_task = asyncio.get_running_loop().create_task(
            self._run_rtcp(), name=f"sfu-rtcp-in-{self.publisher_id}-{self.kind}"
        )
        if self._pli_pending:
            self.request_keyframe()

    async def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        for out in list(self.outputs):
            out.assign(None)
        self.taps = []
        self.relays = []
        self._keyframes.cancel()
        if self._transport is not None:
            ai.unregister_rtp_receiver(self._transport, self)
        if self._rtcp_task is not None:
            self._rtcp_task.cancel()
            await asyncio.gather(self._rtcp_task, return_exceptions=True)
            self._rtcp_task = None
        await self._cancel_tasks()
        self._cache = []
        self._transport = None

    # -- aiortc RtpReceiver protocol -----------------------------------------------------
    async def _handle_rtp_packet(self, packet: ai.RtpPacket, arrival_time_ms: int) -> None:
        if self._closed or packet.payload_type not in self._codecs:
            return
        t0 = time.perf_counter()
        if packet.ssrc != self._media_ssrc:
            # first packet, or the publisher restarted its stream with a new SSRC
            self._set_media_ssrc(packet.ssrc)
        self.packets += 1
        self.bytes += RTP_HEADER_BYTES + len(packet.payload) + packet.padding_size
        # The kernel's receive time (aiortc's own is taken when the loop gets to the packet:
        # after a busy stretch, the same late time for all that waited, which the delay-based
        # estimate reads as a congested uplink). A simulcast layer gets it from its track.
        if self.layer is None:
            arrival_time_ms = ai.receive_time_ms(self._transport, arrival_time_ms)
            self.record_transport_seq(packet)
        assert self._stats is not None
        self._stats.add(packet.sequence_number, packet.timestamp, arrival_time_ms / 1000.0)

        if (estimate := uplink_estimate(self._remb, packet, arrival_time_ms)) is not None:
            self._remb_estimate = estimate
        now = time.monotonic()
        self.last_packet_at = now
        nack = self._nack
        if nack is not None:
            nack.received(packet.sequence_number, now)
            if nack.missing:
                # loss between publisher and SFU: ask for a retransmission, paced by the RTT
                due = nack.due(now, self._rtt())
                if due:
                    self._spawn(self._send_rtcp(self._nack_packets(due)))
        if packet.payload_type in self._opus_pts:
            opus = opus_codec.inspect(packet.payload)
            self.opus_dtx_packets += opus.dtx
            self.opus_fec_packets += bool(opus.fec)
        level = packet.extensions.audio_level
        if level is not None:
            # (voice activity flag, level in -dBov 0..127); store loudness 127 - level
            self._level_sum += 127 - (level[1] & 0x7F)
            self._level_count += 1

        self._cache[packet.sequence_number % len(self._cache)] = packet
        for tap in tuple(self.taps):  # recording: copies the packet onto a queue, no I/O here
            try:
                tap(self, packet)
            except Exception:
                logger.exception("recording tap on %s/%s failed; tap removed", self.publisher_id, self.kind)
                if tap in self.taps:
                    self.taps.remove(tap)
        for relay in tuple(self.relays):  # pipes to other SFUs: one sendto each
            try:
                relay(self, packet)
            except Exception:
                logger.exception("pipe relay of %s/%s failed; relay removed", self.publisher_id, self.kind)
                if relay in self.relays:
                    self.relays.remove(relay)
        departure = Departure.of(packet, now)
        for out in tuple(self.outputs):
            try:
                out.forward(self, packet, departure)
            except Exception:  # never let one subscriber break the publisher's transport loop
                logger.exception("forwarding to %s failed", out.subscriber_id)
        self.relay_time_total += time.perf_counter() - t0

    async def _handle_rtcp_packet(self, packet: ai.AnyRtcpPacket) -> None:
        if isinstance(packet, ai.RtcpSrPacket):
            self._lsr = (packet.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF
            self._lsr_time = time.time()

    def record_transport_seq(self, packet: ai.RtpPacket) -> None:
        """Note the packet's transport-wide sequence number and kernel arrival time for the
        publisher's feedback (a simulcast track's layers are noted by the track)."""
        feedback = self.transport_feedback
        seq = packet.extensions.transport_sequence_number
        if feedback is None or seq is None:
            return
        arrival = ai.receive_time_us(self._transport)
        feedback.received(seq, arrival if arrival is not None else time.time_ns() // 1000, packet.ssrc)

    def _handle_disconnect(self) -> None:
        # The DTLS transport reported the peer gone (close_notify or socket error).
        if not self._closed:
            self._on_disconnect()

    # -- helpers ---------------------------------------------------------------------------
    def _new_nack_list(self) -> PacedNackList:
        c = self._config
        return PacedNackList(
            max_retries=c.nack_max_retries, max_age_s=c.nack_max_age, window=c.nack_cache_size
        )

    def _set_media_ssrc(self, ssrc: int) -> None:
        self._media_ssrc = ssrc
        self._stats = ReceiveStatistics(self._clock_rate)
        self._lq_expected = self._lq_received = 0
        if self._nack is not None:
            self._nack = self._new_nack_list()
        if self._pli_pending and self.started:
            self.request_keyframe()

    def cached(self, seq: int) -> ai.RtpPacket | None:
        if not self._cache:
            return None
        p = self._cache[seq % len(self._cache)]
        return p if p is not None and p.sequence_number == seq else None

    def take_loudness(self) -> float | None:
        """Mean loudness (0 silent .. 127 = 0 dBov) since the last call; None if no level data."""
        if not self._level_count:
            return None
        value = self._level_sum / self._level_count
        self._level_sum = 0.0
        self._level_count = 0
        return value

    def take_loss(self) -> tuple[int, int]:
        """(expected, received) packets since the last call, for the link quality."""
        if self._stats is None:
            return 0, 0
        expected = self._stats.expected - self._lq_expected
        received = self._stats.received - self._lq_received
        self._lq_expected = self._stats.expected
        self._lq_received = self._stats.received
        return max(0, expected), max(0, received)

    @property
    def wanted(self) -> bool:
        # A recording watches too: a recorded camera must not be paused. A slot paused
        # for an audio-only subscriber is no demand.
        return any(not o.paused for o in self.outputs) or bool(self.taps) or any(self.remote_layers.values())

    def request_keyframe(self, layer: int | None = None) -> None:
        """Ask the publisher for a keyframe (PLI), at most once per ``pli_min_interval``.
        ``layer``: of that simulcast layer only (a track with layers; ignored otherwise).

        A request inside the throttle window is deferred to its end rather than
        dropped, so a late joiner waits at most one interval.
        """
        if self.kind != "video" or self._closed:
            return
        if not self.started or self._media_ssrc is None:
            self._pli_pending = True
            return
        self._pli_pending = False
        self._keyframes.request()

    def _send_pli(self) -> None:
        if self._closed or self._media_ssrc is None:
            return
        self.plis_sent += 1
        pli = ai.RtcpPsfbPacket(fmt=ai.RTCP_PSFB_PLI, ssrc=self._rtcp_ssrc, media_ssrc=self._media_ssrc)
        self._spawn(self._send_rtcp([pli]))

    def _nack_packets(self, due: list[int]) -> list[ai.RtcpRtpfbPacket]:
        nack = self._nack
        assert nack is not None and self._media_ssrc is not None
        self.nacks_sent += 1
        media_ssrc = self._media_ssrc
        return [
            ai.RtcpRtpfbPacket(fmt=ai.RTCP_RTPFB_NACK, ssrc=self._rtcp_ssrc, media_ssrc=media_ssrc, lost=run)
            for run in nack_runs(due, nack.max_seq or 0)
        ]

    async def _send_rtcp(self, packets: list[Any]) -> None:
        await self.send_rtcp([bytes(p) for p in packets])

    async def send_rtcp(self, packets: list[bytes]) -> None:
        """Send serialized RTCP packets (one compound) to the publisher."""
        if self.rtcp_sink is not None and packets:
            self.rtcp_sink(b"".join(packets))
            return
        if self._transport is None or not packets:
            return
        try:
            await ai.send_rtp(self._transport, b"".join(packets))
        except ConnectionError:
            pass

    def _remb_bitrate(self) -> int | None:
        """Bitrate to announce to the publisher: our own estimate of the uplink,
        capped by the lowest estimate of the subscribers that take the video (so a
        slow subscriber slows the publisher down, as simulcast-less SFUs must; one
        switched to audio-only does not). A simulcast layer sends none: its track does."""
        if self.track is not self:
            return None
        values = [r for o in self.outputs if not o.paused and (r := o.fresh_remb()) is not None]
        now = time.monotonic()
        values += [r for r, at in self.remote_remb.values() if now - at <= REMB_FRESH_S]  # (pipe.py)
        if self._remb_estimate is not None and self.transport_feedback is None:
            values.append(self._remb_estimate)  # (with transport-wide feedback: its own)
        return min(values) if values else None

    async def _run_rtcp(self) -> None:
        while True:
            await asyncio.sleep(self._config.rtcp_interval * (0.5 + random.random()))
            if self._media_ssrc is None or self._stats is None or self._stats.base_seq is None:
                continue
            dlsr = 0
            if self._lsr_time is not None:
                delay = time.time() - self._lsr_time
                if 0 < delay < 65536:
                    dlsr = int(delay * 65536)
            packets: list[Any] = [
                ai.RtcpRrPacket(
                    ssrc=self._rtcp_ssrc,
                    reports=[
                        ai.RtcpReceiverInfo(
                            ssrc=self._media_ssrc,
                            fraction_lost=(fraction := self._stats.fraction_lost()),
                            packets_lost=self._stats.lost,
                            highest_sequence=self._stats.highest_sequence,
                            jitter=self._stats.jitter,
                            lsr=self._lsr if self._lsr_time is not None else 0,
                            dlsr=dlsr,
                        )
                    ],
                )
            ]
            self.upstream_loss = fraction / 256
            bitrate = self._remb_bitrate() if self.kind == "video" else None
            if bitrate is not None:
                packets.append(
                    ai.RtcpPsfbPacket(
                        fmt=ai.RTCP_PSFB_APP,
                        ssrc=self._rtcp_ssrc,
                        media_ssrc=0,
                        fci=ai.pack_remb_fci(int(bitrate), [self._media_ssrc]),
                    )
                )
            await self._send_rtcp(packets)


class OutStream(_TaskOwner):
    """One receive slot (m-line) of a subscriber; carries one publisher's track at a time."""

    def __init__(self, *, kind: Kind, mid: str, subscriber_id: str, ssrc: int, config: SfuConfig) -> None:
        super().__init__()
        self.kind: Kind = kind
        self.mid = mid
        self.subscriber_id = subscriber_id
        self._ssrc = ssrc  # name required by aiortc's RtpRouter (RtpSender protocol)
        self._config = config
        self._transport: RTCDtlsTransport | None = None
        self._ext_map = ai.HeaderExtensionsMap()
        self._pt = 0
        self._layout: RtpHeaderLayout | None = None  # set in start(), once the IDs are known
        self._direct: ai.DirectRtpSender | None = None  # set in start(), with the transport
        self._source: InboundStream | None = None
        #: The stream the current epoch's packets come from: the source, or one of its
        #: simulcast layers (NACKs are answered from its cache).
        self._from: InboundStream | None = None
        #: Which layer of a simulcast source this slot forwards (None: single-layer source).
        self.layers: LayerSwitch | None = None
        #: The subscriber's video pacer (pacer.py), shared by its video slots; None: unpaced.
        self.pacer: Pacer | None = None
        self._need_keyframe = kind == "video"
        # keeps the subscriber's numbering continuous across source switches
        self._numbering = SeqRewriter(90000 if kind == "video" else 48000)
        self._rtcp_task: asyncio.Task[None] | None = None
        self._closed = False
        self.remb: int | None = None
        self.remb_ssrcs: tuple[int, ...] = ()
        self.remb_at = 0.0
        #: No video forwarded (audio-only subscriber); see set_paused.
        self.paused = False
        #: Round-trip time to the subscriber from its RRs of our SRs (seconds).
        self.rtt: float | None = None
        self._sr_sent: dict[int, float] = {}  # SR NTP middle 32 bits -> monotonic send time
        self._rtx_gate = RetransmitGate(
            max_per_packet=config.retransmit_max_per_packet,
            budget_share=config.retransmit_budget,
            window=RETRANSMIT_WINDOW,
        )
        # counters
        self.packets = 0
        self.bytes = 0
        self.octets = 0  # payload octets, for RTCP SR
        self.retransmitted = 0
        self.nack_misses = 0
        self.keyframe_requests = 0
        self.remote_fraction_lost = 0
        self.remote_packets_lost = 0
        self.remote_report_at = 0.0
        self.retransmit_refused = 0
        #: Sequence numbers the subscriber asked to resend (its losses, as a probe sees them).
        self.nacked = 0
        #: Padding of the SFU's own (a probe of the subscriber's line, prober.py): part of
        #: ``bytes`` (the line carried it), not of the send rate (no picture is in it).
        self.padding_packets = 0
        self.padding_bytes = 0
        #: The last media packet sent ended a frame: padding may go in before the next one.
        self._frame_done = False
        #: (when, bytes) the send rate is next measured from, and the last measure.
        self._rate_sampled = (0.0, 0)
        self._rate = 0.0

    @property
    def source(self) -> InboundStream | None:
        return self._source

    @property
    def started(self) -> bool:
        return self._transport is not None

    async def start(self, transport: RTCDtlsTransport, parameters: RTCRtpSendParameters) -> None:
        """Called (through aiortc_internals.intercept_send) once DTLS is up."""
        if self._transport is not None or self._closed:
            return
        media = _media_codecs(parameters.codecs)
        if not media:
            return
        self._pt = media[0].payloadType or 0
        self._numbering.clock_rate = media[0].clockRate
        self._ext_map.configure(parameters)
        self._layout = RtpHeaderLayout(self._serialize_header)
        self._direct = ai.DirectRtpSender(transport)
        self._transport = transport
        ai.register_rtp_sender(transport, self, parameters)
        self._rtcp_task = asyncio.get_running_loop().create_task(
            self._run_rtcp(), name=f"sfu-rtcp-out-{self.subscriber_id}-{self.mid}"
        )
        if self._source is not None and self.kind == "video":
            self._source.request_keyframe(self.wanted_layer)

    async def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.assign(None)
        if self._rtcp_task is not None:
            self._rtcp_task.cancel()
            await asyncio.gather(self._rtcp_task, return_exceptions=True)
            self._rtcp_task = None
        await self._cancel_tasks()
        if self._transport is not None:
            ai.unregister_rtp_sender(self._transport, self)
            if self.packets:
                await self._send_rtcp([ai.RtcpByePacket(sources=[self._ssrc])])
            self._transport = None

    def assign(self, source: InboundStream | None) -> bool:
        """Switch this slot to ``source`` (None: idle). Returns True if it changed."""
        if source is self._source:
            return False
        if self._source is not None and self in self._source.outputs:
            self._source.outputs.remove(self)
        self._source = source
        self._from = None
        layered = source is not None and source.layer_count > 1
        self.layers = LayerSwitch(source.layer_count - 1) if source is not None and layered else None
        self._numbering.end_epoch()
        self._need_keyframe = self.kind == "video"
        self.remb = None
        if source is not None and not self._closed:
            source.outputs.append(self)
            if self.started and self.kind == "video" and not self.paused:
                self.keyframe_requests += 1
                source.request_keyframe(self.wanted_layer)
        return True

    @property
    def wanted_layer(self) -> int | None:
        """The simulcast layer this slot switches to or forwards (None: single-layer source)."""
        return self.layers.target if self.layers is not None else None

    def set_layer(self, layer: int) -> bool:
        """Forward ``layer`` of the simulcast source from its next keyframe on (asked for now,
        up or down: waiting for the publisher's own next keyframe could take seconds). True if
        the target changed."""
        switch = self.layers
        if switch is None or switch.target == layer:
            return False
        switch.target = layer
        switch.pending_since = time.monotonic()
        if self._source is not None and self.started and not self.paused:
            self.keyframe_requests += 1
            self._source.request_keyframe(layer)
        return True

    def set_temporal(self, temporal: int | None) -> bool:
        """Forward the temporal layers up to ``temporal`` (None: all) of the simulcast layer,
        from the next frame that allows it (:meth:`LayerSwitch.drops`); no keyframe needed.
        True if the choice changed."""
        switch = self.layers
        if switch is None or switch.temporal_target == temporal:
            return False
        switch.temporal_target = temporal
        return True

    def set_paused(self, paused: bool) -> None:
        """Stop (True) or resume forwarding. Resuming waits for a keyframe, which is
        requested; sequence numbers stay continuous for the subscriber."""
        if paused == self.paused:
            return
        self.paused = paused
        self.remb = None
        self._numbering.end_epoch()
        self._need_keyframe = self.kind == "video"
        if self.layers is not None:
            self.layers.current = None  # resume at a keyframe of the target layer
        if not paused and self._source is not None and self.started and self.kind == "video":
            self.keyframe_requests += 1
            self._source.request_keyframe(self.wanted_layer)

    def send_rate(self, now: float) -> float:
        """Bit/s forwarded to the subscriber, measured over at least half a second (the
        last measure until then)."""
        at, sent = self._rate_sampled
        media = self.bytes - self.padding_bytes
        if now - at >= 0.5:
            if at > 0:
                self._rate = (media - sent) * 8 / (now - at)
            self._rate_sampled = (now, media)
        return self._rate

    def fresh_remb(self) -> int | None:
        if self.remb is None or time.monotonic() - self.remb_at > REMB_FRESH_S:
            return None
        return self.remb

    # -- forwarding --------------------------------------------------------------------------
    def forward(
        self, source: InboundStream, packet: ai.RtpPacket, departure: Departure | None = None
    ) -> None:
        """Send ``packet`` of ``source`` to this subscriber now (synchronous: no await
        per subscriber per packet; the publisher's receive loop calls this for each, with the
        packet's one :class:`Departure`)."""
        if source.track is not self._source or self._transport is None or self.paused:
            return
        numbering = self._numbering
        layers = self.layers
        if layers is not None:
            verdict = layers.accept(source.layer, packet.payload)
            if verdict == DROP:
                return
            if verdict == SWITCHED:
                numbering.end_epoch()
                self._need_keyframe = False  # this packet starts the target's keyframe
        if not packet.payload and numbering.in_epoch and numbering.skip(packet.sequence_number):
            # Padding only: the publisher probing its own uplink (Chromium pads a layer up to
            # its estimate, and does so each time a layer is turned back on). Forwarded, it
            # probed every subscriber's line at the publisher's rate: a 300 kbit/s hall lost
            # 60-80 % of its packets and dropped to sound only. Left out; the numbering closes
            # the gap. (An out-of-order one already has its number: see LayerSwitch.media.)
            return
        if layers is not None and packet.payload and layers.drops(packet.payload):
            # a picture of a temporal layer this slot does not take (LayerSwitch.drops)
            if not numbering.in_epoch:
                return
            if numbering.skip(packet.sequence_number):
                layers.munger.drop(packet.payload)
                return
            dropped = layers.as_padding(packet)  # out of order: its number is taken
            if dropped is None:
                return
            packet = dropped
        if layers is not None:
            forwarded = layers.media(packet)  # padding: see LayerSwitch.media
            if forwarded is None:
                # not forwarded (a padding run cut short): the next packet sent begins a new
                # epoch right after the last one sent, so the subscriber sees no gap
                self._numbering.end_epoch()
                return
            packet = forwarded
        if departure is None:  # called outside a publisher's receive loop (tests)
            departure = Departure.of(packet)
        if not numbering.in_epoch:
            if self._need_keyframe:
                # Deltas before the first keyframe are undecodable: skip them.
                if not vp8.is_keyframe_start(packet.payload):
                    return
                self._need_keyframe = False
            numbering.begin(packet.sequence_number, packet.timestamp, departure.now)
            self._from = source
        elif not numbering.in_this_epoch(packet.sequence_number):
            return  # late packet from before this slot switched to the source
        self._send(packet, departure)

    def _serialize_header(self, abs_send_time: int, audio_level: tuple[bool, int] | None) -> bytes:
        """This slot's header as aiortc serializes it (for :class:`RtpHeaderLayout`)."""
        out = ai.RtpPacket(payload_type=self._pt, ssrc=self._ssrc)
        ext = out.extensions
        ext.mid = self.mid  # browsers demux BUNDLEd media by MID first
        ext.abs_send_time = abs_send_time  # the subscriber's BWE measures our send times
        ext.audio_level = audio_level
        return out.serialize(self._ext_map)

    def _rewrite(
        self, packet: ai.RtpPacket, seq: int, timestamp: int, payload: bytes, abs_send_time: int
    ) -> bytes:
        """The plain packet for this subscriber: our SSRC, PT, numbering and extensions."""
        assert self._layout is not None
        return self._layout.build(
            marker=packet.marker,
            seq=seq,
            timestamp=timestamp,
            abs_send_time=abs_send_time,
            audio_level=packet.extensions.audio_level,
            payload=payload,
            padding_size=packet.padding_size,
        )

    def _send(self, packet: ai.RtpPacket, departure: Departure, retransmission: bool = False) -> None:
        layout, direct, numbering = self._layout, self._direct, self._numbering
        assert layout is not None and direct is not None
        now, abs_send_time, level = departure
        seq = numbering.seq(packet.sequence_number)
        timestamp = numbering.timestamp(packet.timestamp)
        # (the munger numbers pictures: called exactly once per packet sent)
        payload = packet.payload if self.layers is None else self.layers.munger.munge(packet.payload)
        padding = packet.padding_size
        pacer = self.pacer
        try:
            # (a paced slot is video: its packets have the header without audio level)
            if pacer is None or pacer.take(layout.header_size + len(payload) + padding):
                # The common case, forwarding's per-subscriber step: the packet is written and
                # SRTP-protected in one C call.
                if not direct.send_written(
                    layout.writer, packet.marker, seq, timestamp, abs_send_time, level, payload, padding
                ):
                    # a TURN relay frames data in its own coroutine: aiortc's path, in order
                    self._spawn(self._send_rtp(self._rewrite(packet, seq, timestamp, payload, abs_send_time)))
            else:
                # (stamped again as it leaves the pacer: _transmit_paced)
                data = self._rewrite(packet, seq, timestamp, payload, abs_send_time)
                pacer.queue(self._transmit_paced, bytearray(data))
        except ConnectionError:
            return
        self.packets += 1
        self.bytes += RTP_HEADER_BYTES + len(packet.payload) + padding
        self.octets += len(packet.payload)
        if retransmission:
            self.retransmitted += 1
        else:
            numbering.sent(seq, timestamp, now)
            if packet.payload:
                self._frame_done = bool(packet.marker)

    def send_padding(self, size: int) -> int:
        """Send about ``size`` bytes of padding-only packets to the subscriber now (a probe of
        its line: prober.py); returns the bytes sent. Only between two frames of the picture
        forwarded (a padding packet must not split a frame's numbers), with nothing waiting in
        the pacer (libwebrtc's pacer pads only when no media waits either), and in whole
        packets of :data:`PADDING_PACKET_BYTES`. The packets are numbered in the slot's sequence
        (:meth:`SeqRewriter.insert`) and carry the last frame's timestamp, as libwebrtc's and
        LiveKit's padding does; receivers count them for their estimate and discard them."""
        if (
            self.kind != "video"
            or self.paused
            or self._closed
            or self._layout is None
            or not self._frame_done
            or not self._numbering.in_epoch
            or (self.pacer is not None and self.pacer.queued)
        ):
            return 0
        count = min(MAX_PADDING_BURST, size // PADDING_PACKET_BYTES)
        first = self._numbering.insert(count)
        if first is None:
            return 0
        timestamp = self._numbering.last_ts
        for i in range(count):
            data = self._layout.build(
                marker=0,
                seq=seq_add(first, i),
                timestamp=timestamp,
                abs_send_time=abs_send_time_now(),
                audio_level=None,
                payload=b"",
                padding_size=PADDING_PACKET_BYTES,
            )
            try:
                if self.pacer is None or self.pacer.take(len(data)):
                    self._transmit(data)
                else:
                    self.pacer.queue(self._transmit_paced, bytearray(data))
            except ConnectionError:
                return i * PADDING_PACKET_BYTES
            self.packets += 1
            self.bytes += RTP_HEADER_BYTES + PADDING_PACKET_BYTES
            self.padding_packets += 1
            self.padding_bytes += RTP_HEADER_BYTES + PADDING_PACKET_BYTES
        return count * PADDING_PACKET_BYTES

    def _transmit(self, data: bytes) -> None:
        assert self._direct is not None
        if not self._direct.send(data):
            # a TURN relay frames data in its own coroutine: aiortc's path, in order
            self._spawn(self._send_rtp(data))

    def _transmit_paced(self, data: bytearray) -> None:
        """A packet leaving the subscriber's pacer: stamped with the time it leaves."""
        if self._closed or self._direct is None:
            return
        assert self._layout is not None
        self._layout.restamp(data, abs_send_time_now())
        self._transmit(bytes(data))

    # -- aiortc RtpSender protocol: RTCP from the subscriber ----------------------------------
    async def _handle_rtcp_packet(self, packet: ai.AnyRtcpPacket) -> None:
        if isinstance(packet, ai.RtcpRtpfbPacket) and packet.fmt == ai.RTCP_RTPFB_NACK:
            await self._retransmit(packet.lost)
        elif isinstance(packet, ai.RtcpPsfbPacket) and packet.fmt in (ai.RTCP_PSFB_PLI, ai.RTCP_PSFB_FIR):
            # The subscriber lost the picture: relay the request to the publisher (throttled there).
            if self._source is not None and not self.paused:
                self.keyframe_requests += 1
                self._source.request_keyframe(self.wanted_layer)
        elif isinstance(packet, ai.RtcpPsfbPacket) and packet.fmt == ai.RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = ai.unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if self._ssrc in ssrcs:
                self.remb = bitrate
                self.remb_ssrcs = tuple(sorted(ssrcs))
                self.remb_at = time.monotonic()
        elif isinstance(packet, (ai.RtcpRrPacket, ai.RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == self._ssrc:
                    self.remote_fraction_lost = report.fraction_lost
                    self.remote_packets_lost = report.packets_lost
                    self.remote_report_at = time.monotonic()
                    self._update_rtt(report.lsr, report.dlsr)

    def _update_rtt(self, lsr: int, dlsr: int) -> None:
        sent = self._sr_sent.get(lsr)
        if sent is None or not dlsr:
            return
        rtt = time.monotonic() - sent - dlsr / 65536
        if 0 <= rtt < 10:
            self.rtt = rtt if self.rtt is None else 0.8 * self.rtt + 0.2 * rtt

    async def _retransmit(self, lost: list[int]) -> None:
        self.nacked += len(lost)
        source = self._from
        if source is None or not self._numbering.in_epoch or self._transport is None or self.paused:
            return
        now = time.monotonic()
        # Retransmissions may take retransmit_budget of the subscriber's estimate at most:
        # on a thin link they would otherwise crowd out the media (and the audio).
        estimate = self.fresh_remb() or 1_000_000
        rtt = self.rtt if self.rtt is not None else DEFAULT_RTT
        for out_seq in lost:
            src_seq = self._numbering.source_seq(out_seq)
            if src_seq is None:
                continue
            if not self._rtx_gate.may_resend(out_seq, now, rtt):
                self.retransmit_refused += 1
                continue
            packet = source.cached(src_seq)
            if packet is None:
                self.nack_misses += 1
                continue
            if not self._rtx_gate.take(out_seq, RTP_HEADER_BYTES + len(packet.payload), now, estimate):
                self.retransmit_refused += 1
                continue
            if self.layers is not None and self.layers.temporal is not None:
                tid = vp8.temporal_id(packet.payload)
                if tid is not None and tid > self.layers.temporal:
                    # sent as padding in its place (it came out of order: LayerSwitch.as_padding)
                    padding = self.layers.as_padding(packet)
                    if padding is None:
                        continue
                    packet = padding
            self._send(packet, Departure.of(packet, now), retransmission=True)

    async def _send_rtcp(self, packets: list[Any]) -> None:
        data = b"".join(bytes(p) for p in packets)
        if self._direct is not None:
            try:
                if self._direct.send_rtcp(data):  # synchronous, as the slot's RTP
                    return
            except ConnectionError:
                return
        await self._send_rtp(data)

    async def _send_rtp(self, data: bytes) -> None:
        if self._transport is None:
            return
        try:
            await ai.send_rtp(self._transport, data)
        except ConnectionError:
            pass

    async def _run_rtcp(self) -> None:
        c = self._config
        interval = c.audio_rtcp_interval if self.kind == "audio" else c.rtcp_interval
        while True:
            await asyncio.sleep(interval * (0.5 + random.random()))
            if not self.packets or self._numbering.last_seq is None:
                continue
            ntp = ntp_now()
            self._sr_sent[(ntp >> 16) & 0xFFFFFFFF] = time.monotonic()
            if len(self._sr_sent) > 8:
                del self._sr_sent[next(iter(self._sr_sent))]
            sr = ai.RtcpSrPacket(
                ssrc=self._ssrc,
                sender_info=ai.RtcpSenderInfo(
                    ntp_timestamp=ntp,
                    rtp_timestamp=self._numbering.timestamp_at(time.monotonic()),
                    packet_count=self.packets & 0xFFFFFFFF,
                    octet_count=self.octets & 0xFFFFFFFF,
                ),
            )
            await self._send_rtcp([sr])
