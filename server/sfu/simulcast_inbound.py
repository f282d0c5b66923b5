"""A published simulcast video track: one :class:`SimulcastInbound` registered on the
publisher's transport, demultiplexing into one :class:`~.relay.InboundStream` per layer.

aiortc's RTP router hands every packet of the track's payload type to this one receiver (it
learns unknown SSRCs by payload type). The layer is told by the RID header extension
(``rtp-stream-id``), then by SSRC once learned: Chromium stops writing MID/RID into a stream's
packets once our receiver report acknowledged its SSRC. Each layer is a full InboundStream
with its own receive statistics, NACK list, packet cache, receiver reports and throttled
keyframe requests; packets go to the track's subscribers (``outputs`` is one list shared by the
track and its layers) and each subscriber slot's :class:`~.simulcast.LayerSwitch` keeps the
layer it wants.

REMB: one for the track, listing every layer's SSRC, with the SFU's own estimate of the
publisher's uplink and *no* cap by the slowest subscriber (issue 18 item 5): a weak subscriber
gets a lower layer instead of lowering the picture for everyone.

Retransmissions carrying ``repaired-rtp-stream-id`` (RTX) are counted and dropped: the SFU
negotiates no RTX (docs/sfu.md), so a publisher repairs a layer by resending on its own SSRC.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpReceiveParameters

from rtc import aiortc_internals as ai
from rtc.codecs import vp8

from .config import SfuConfig
from .relay import RTP_HEADER_BYTES, InboundStream, uplink_estimate
from .simulcast import REPAIRED_RID_URI, RID_URI, LayerInfo, SimulcastOffer

#: A layer that sent no media for this long is not chosen for anyone (seconds). Padding does
#: not count: Chromium keeps padding a layer its bandwidth estimate made it stop encoding (a
#: bench run saw ~400 padding-only packets/s, ~900 kbit/s, on an `f` that sent no frame). The
#: slots it fed see nothing from its last frame until the next choice (every link_interval)
#: and the new layer's keyframe: 1.5 s made that a 2.1 s freeze in a loaded bench run (issue
#: 18: none over 2 s). One second is still five frames at 5 fps, Chromium's CPU-limited low.
LAYER_LIVE_S = 1.0


class SimulcastInbound(InboundStream):
    """The track of a simulcast publisher; see the module doc."""

    def __init__(
        self,
        *,
        simulcast: SimulcastOffer,
        publisher_id: str,
        rtcp_ssrc: int,
        config: SfuConfig,
        on_disconnect: Callable[[], None],
        rtt: Callable[[], float | None] = lambda: None,
    ) -> None:
        super().__init__(
            kind="video",
            publisher_id=publisher_id,
            rtcp_ssrc=rtcp_ssrc,
            config=config,
            on_disconnect=on_disconnect,
            rtt=rtt,
        )
        self.simulcast = simulcast
        self.layers: list[InboundStream] = []
        for index in range(len(simulcast.rids)):
            layer = InboundStream(
                kind="video",
                publisher_id=publisher_id,
                rtcp_ssrc=rtcp_ssrc,
                config=config,
                on_disconnect=on_disconnect,
                rtt=rtt,
            )
            layer.track = self
            layer._remb = None  # the track estimates the uplink over all layers
            layer.layer = index
            layer.outputs = self.outputs  # one list: the track's subscribers
            self.layers.append(layer)
        # The recorder records the top layer (its taps list is the track's).
        self.layers[-1].taps = self.taps
        self.layer_count = len(self.layers)
        self._by_ssrc: dict[int, InboundStream] = {}
        #: Frame height of each layer from its last keyframe (None before one arrived).
        self.layer_heights: list[int | None] = [None] * self.layer_count
        self.layer_widths: list[int | None] = [None] * self.layer_count
        #: Per layer: bytes of media (packets with a payload; padding-only ones are probes, not
        #: pictures) and when (monotonic) the last such packet arrived. Liveness and bitrate are
        #: read from these, so a layer that only pads is neither live nor costed at its padding.
        self.media_bytes: list[int] = [0] * self.layer_count
        self.last_media_at: list[float | None] = [None] * self.layer_count
        #: Per layer, media bytes per VP8 temporal layer (TID 0..3; Chromium sends L1T3 in each
        #: simulcast layer), for what forwarding only the lower ones costs.
        self.temporal_bytes: list[list[int]] = [[0] * 4 for _ in range(self.layer_count)]
        #: ... and frames (first packets) per temporal layer.
        self.temporal_frames: list[list[int]] = [[0] * 4 for _ in range(self.layer_count)]
        #: (when, media_bytes, temporal_bytes + temporal_frames) each layer's bitrate is next
        #: measured from (the first call to layer_info starts the measure).
        self._bitrate_sampled: list[tuple[float, int, tuple[int, ...]] | None] = [None] * self.layer_count
        self.layer_bitrates: list[float] = [0.0] * self.layer_count
        #: Per layer: since when it has sent media without a pause, and its bitrate measured
        #: over the last interval it sent throughout. A layer just resumed measures a fraction
        #: of its rate over its first interval; chosen on that, it overran a 300 kbit/s hall.
        self.live_since: list[float | None] = [None] * self.layer_count
        self._steady_bitrates: list[float] = [0.0] * self.layer_count
        #: Per layer, the bitrate and frame rate of its temporal layers up to each TID (see
        #: LayerInfo.temporal, LayerInfo.temporal_fps).
        self.temporal_bitrates: list[tuple[float, ...]] = [()] * self.layer_count
        self.temporal_fps: list[tuple[float, ...]] = [()] * self.layer_count
        #: Packets with no known rid/SSRC, and RTX packets (repaired-rid), both dropped.
        self.unknown_layer_packets = 0
        self.repaired_packets = 0

    # counters of the track are its layers' sums (InboundStream.__init__ sets them to 0)
    @property
    def plis_sent(self) -> int:
        return sum(layer.plis_sent for layer in getattr(self, "layers", ()))

    @plis_sent.setter
    def plis_sent(self, value: int) -> None:
        pass

    @property
    def nacks_sent(self) -> int:
        return sum(layer.nacks_sent for layer in getattr(self, "layers", ()))

    @nacks_sent.setter
    def nacks_sent(self, value: int) -> None:
        pass

    async def start(
        self, transport: RTCDtlsTransport | None, parameters: RTCRtpReceiveParameters, register: bool = True
    ) -> None:
        # aiortc answered without the RID extensions (it does not know them); the transport
        # parses them only if a registered receiver's parameters name them.
        sc = self.simulcast
        parameters.headerExtensions = list(parameters.headerExtensions) + [
            RTCRtpHeaderExtensionParameters(id=sc.rid_ext_id, uri=RID_URI)
        ]
        if sc.repaired_ext_id is not None:
            parameters.headerExtensions.append(
                RTCRtpHeaderExtensionParameters(id=sc.repaired_ext_id, uri=REPAIRED_RID_URI)
            )
        parameters.encodings = []  # the layers learn their SSRCs from the RIDs
        for layer in self.layers:
            await layer.start(transport, parameters, register=False)
        await super().start(transport, parameters, register)

    async def stop(self) -> None:
        await super().stop()
        for layer in self.layers:
            await layer.stop()

    async def _handle_rtp_packet(self, packet: ai.RtpPacket, arrival_time_ms: int) -> None:
        if self._closed or packet.payload_type not in self._codecs:
            return
        layer = self._by_ssrc.get(packet.ssrc)
        if layer is None:
            index = self.simulcast.layer_of(packet.extensions.rtp_stream_id)
            if index is None:
                if packet.extensions.repaired_rtp_stream_id is not None:
                    self.repaired_packets += 1
                else:
                    self.unknown_layer_packets += 1
                return
            layer = self.layers[index]
            # a layer restarted with a new SSRC: forget the old one
            for ssrc in [s for s, known in self._by_ssrc.items() if known is layer]:
                del self._by_ssrc[ssrc]
            self._by_ssrc[packet.ssrc] = layer
        self.packets += 1
        self.bytes += RTP_HEADER_BYTES + len(packet.payload) + packet.padding_size
        self.last_packet_at = time.monotonic()
        # the kernel's receive time: aiortc's is late by however long the loop was busy
        arrival_time_ms = ai.receive_time_ms(self._transport, arrival_time_ms)
        self.record_transport_seq(packet)
        if (estimate := uplink_estimate(self._remb, packet, arrival_time_ms)) is not None:
            self._remb_estimate = estimate
        assert layer.layer is not None
        if packet.payload:
            media = RTP_HEADER_BYTES + len(packet.payload)
            self.media_bytes[layer.layer] += media
            last = self.last_media_at[layer.layer]
            if last is None or self.last_packet_at - last >= LAYER_LIVE_S:
                self.live_since[layer.layer] = self.last_packet_at  # (back) after a pause
            self.last_media_at[layer.layer] = self.last_packet_at
            tid, frame_start = vp8.temporal_frame(packet.payload)
            if tid is not None:
                self.temporal_bytes[layer.layer][tid] += media
                self.temporal_frames[layer.layer][tid] += frame_start
        if vp8.is_keyframe_start(packet.payload):
            descriptor = vp8.PayloadDescriptor.parse(packet.payload)
            size = vp8.keyframe_size(packet.payload[descriptor.size :]) if descriptor else None
            if size is not None:
                self.layer_widths[layer.layer], self.layer_heights[layer.layer] = size
        t0 = time.perf_counter()
        await layer._handle_rtp_packet(packet, arrival_time_ms)
        self.relay_time_total += time.perf_counter() - t0

    async def _handle_rtcp_packet(self, packet: ai.AnyRtcpPacket) -> None:
        if isinstance(packet, ai.RtcpSrPacket):
            layer = self._by_ssrc.get(packet.ssrc)
            if layer is not None:
                await layer._handle_rtcp_packet(packet)

    # -- what the room reads ------------------------------------------------------------------
    def request_keyframe(self, layer: int | None = None) -> None:
        """A keyframe of ``layer``, or of every layer (a recording, a new subscriber)."""
        if layer is not None and 0 <= layer < self.layer_count:
            self.layers[layer].request_keyframe()
            return
        for stream in self.layers:
            stream.request_keyframe()

    def take_loss(self) -> tuple[int, int]:
        expected = received = 0
        for layer in self.layers:
            e, r = layer.take_loss()
            expected, received = expected + e, received + r
        return expected, received

    def layer_info(self, now: float) -> list[LayerInfo]:
        """Each layer's liveness and media bitrate (measured since the last call, padding left
        out) and height."""
        infos = []
        for i in range(self.layer_count):
            counts = (*self.temporal_bytes[i], *self.temporal_frames[i])
            sample = self._bitrate_sampled[i]
            if sample is None:
                sample = self._bitrate_sampled[i] = (now, self.media_bytes[i], counts)
            at, sampled, counts_sampled = sample
            if now - at >= 0.5:
                measured = (self.media_bytes[i] - sampled) * 8 / (now - at)
                since, media_at = self.live_since[i], self.last_media_at[i]
                if (
                    since is not None
                    and since <= at
                    and media_at is not None
                    and now - media_at < LAYER_LIVE_S
                ):
                    self._steady_bitrates[i] = measured  # sent throughout the interval
                    self.layer_bitrates[i] = measured
                else:
                    self.layer_bitrates[i] = max(measured, self._steady_bitrates[i])
                delta = [c - s for c, s in zip(counts, counts_sampled, strict=True)]
                self.temporal_bitrates[i] = _cumulative(delta[:4], 8 / (now - at))
                self.temporal_fps[i] = _cumulative(delta[4:], 1 / (now - at))
                self._bitrate_sampled[i] = (now, self.media_bytes[i], counts)
            media_at = self.last_media_at[i]
            live = media_at is not None and now - media_at < LAYER_LIVE_S
            infos.append(
                LayerInfo(
                    live=live,
                    bitrate=self.layer_bitrates[i],
                    height=self.layer_heights[i],
                    temporal=self.temporal_bitrates[i],
                    temporal_fps=self.temporal_fps[i],
                )
            )
        return infos

    def _remb_bitrate(self) -> int | None:
        """The SFU's own estimate of the publisher's uplink, not capped by any subscriber: a
        weak subscriber takes a lower layer instead (issue 18 item 5). None (no REMB) with
        transport-wide feedback: the publisher's own estimate is the better one."""
        return None if self.transport_feedback is not None else self._remb_estimate

    async def _run_rtcp(self) -> None:
        """REMB for the whole track (the layers send their own receiver reports)."""
        while True:
            await asyncio.sleep(self._config.rtcp_interval * (0.5 + random.random()))
            self.upstream_loss = max(layer.upstream_loss for layer in self.layers)
            ssrcs = sorted(self._by_ssrc)
            bitrate = self._remb_bitrate()
            if bitrate is None or not ssrcs:
                continue
            packets: list[Any] = [
                ai.RtcpPsfbPacket(
                    fmt=ai.RTCP_PSFB_APP,
                    ssrc=self._rtcp_ssrc,
                    media_ssrc=0,
                    fci=ai.pack_remb_fci(int(bitrate), ssrcs),
                )
            ]
            await self._send_rtcp(packets)


def _cumulative(per_tid: list[int], scale: float) -> tuple[float, ...]:
    """Per-second rates of the temporal layers up to each TID from counts per TID (bytes with
    ``scale`` 8/seconds, frames with 1/seconds); empty when there is only a base layer."""
    top = max((tid for tid, n in enumerate(per_tid) if n), default=0)
    if top == 0:
        return ()
    rates, total = [], 0
    for n in per_tid[: top + 1]:
        total += n
        rates.append(total * scale)
    return tuple(rates)
