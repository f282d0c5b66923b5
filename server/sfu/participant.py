"""A participant: one server-side RTCPeerConnection carrying its published
tracks (at most one audio, one video) and its receive slots."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters

from rtc import aiortc_internals as ai
from rtc.transport_cc import FEEDBACK_INTERVAL_S, TransportFeedback

from .config import SfuConfig
from .errors import InvalidRequest, InvalidSdp, InvalidState, NotInRoom, SfuError
from .linkquality import LinkController, LinkSample, LinkState
from .offer import SUPPORTED_CODEC, Offer, read_offer
from .opus import with_opus_fmtp
from .pacer import Pacer
from .prober import Prober
from .relay import InboundStream, Kind, OutStream
from .simulcast_inbound import SimulcastInbound

if TYPE_CHECKING:
    from .room import Room

logger = logging.getLogger(__name__)


async def _ignore_receive(transport: RTCDtlsTransport, parameters: RTCRtpReceiveParameters) -> None:
    """Receive hook for m-lines the client does not send on: start nothing (no decoder)."""


async def _ignore_send(transport: RTCDtlsTransport, parameters: RTCRtpSendParameters) -> None:
    """Send hook for m-lines the client does not receive on."""


class Participant:
    """Server side of one client. Created by :meth:`Room.admit`; use through
    :class:`server.sfu.ParticipantHandle`."""

    def __init__(
        self,
        room: Room,
        participant_id: str,
        config: SfuConfig,
        order: int,
        audio_max_bitrate: int | None = None,
    ) -> None:
        self.id = participant_id
        #: Opus maxaveragebitrate asked of this participant (its answer's fmtp).
        self.audio_max_bitrate = audio_max_bitrate or config.opus_max_average_bitrate
        self.order = order  # join order, used as a stable tie-breaker
        self._room = room
        self._config = config
        self._pc: RTCPeerConnection | None = None
        self.inbound: dict[Kind, InboundStream] = {}
        self.audio_slots: list[OutStream] = []
        self.video_slots: list[OutStream] = []
        #: Publisher ids this participant wants to see; None = everyone, in join order.
        self.visible_videos: list[str] | None = None
        self.loudness = 0.0
        self.closed = False
        self.connected = False
        self._negotiating = False
        self.link = LinkController(config)
        #: Last link quality reported in an event (the assumed start: 3 bars, video).
        self.link_state = LinkState(bars=3, mode="video", downlink_kbps=None, loss_pct=None)
        self._audio_bytes_prior = 0
        self._video_bytes_prior = 0
        self._link_sampled_at: float | None = None
        #: Transport-wide feedback to the client when it publishes with it (see handle_offer).
        self._feedback: TransportFeedback | None = None
        self._feedback_task: asyncio.Task[None] | None = None
        #: Paces the video forwarded to this participant at its downlink estimate (pacer.py).
        self.pacer = Pacer()
        #: Probes this participant's downlink before a simulcast layer is stepped up (prober.py).
        self.prober = Prober()

    def rtt(self) -> float | None:
        """Round-trip time to the client, from the RTCP of its receive slots (seconds)."""
        values = [o.rtt for o in self.audio_slots + self.video_slots if o.rtt is not None]
        return min(values) if values else None

    def link_sample(self, now: float, layers_held_down: bool | None = None) -> LinkSample:
        """Measurements since the previous call, for the link controller (``layers_held_down``:
        see :class:`LinkSample`, from the room's layer choice)."""
        elapsed = now - self._link_sampled_at if self._link_sampled_at is not None else 0.0
        self._link_sampled_at = now
        # Downlink estimate: a browser sends one REMB for all its streams, aiortc one per
        # video receiver; add up the distinct ones.
        per_group: dict[tuple[int, ...], int] = {}
        for o in self.video_slots + self.audio_slots:
            remb = o.fresh_remb()
            if remb is not None:
                per_group[o.remb_ssrcs] = remb
        audio_ssrcs = {o._ssrc for o in self.audio_slots}
        covers_audio = any(audio_ssrcs & set(group) for group in per_group)
        audio_bytes = sum(o.bytes + o.packets * 48 for o in self.audio_slots)  # + UDP/IP/SRTP
        audio_bps = (audio_bytes - self._audio_bytes_prior) * 8 / elapsed if elapsed > 0 else 0.0
        self._audio_bytes_prior = audio_bytes
        video_bytes = sum(o.bytes + o.packets * 48 for o in self.video_slots)
        video_bps = (video_bytes - self._video_bytes_prior) * 8 / elapsed if elapsed > 0 else 0.0
        self._video_bytes_prior = video_bytes
        # What a subscriber reports lost includes what never reached us from the publisher
        # (we forward the gaps as they are): only the rest is its own link's loss.
        recent = [
            max(0.0, o.remote_fraction_lost / 256 - o.source.upstream_loss)
            for o in self.audio_slots + self.video_slots
            if o.source is not None and now - o.remote_report_at < 3.0 and o.remote_report_at > 0
        ]
        expected = received = 0
        for stream in self.inbound.values():
            e, r = stream.take_loss()
            expected, received = expected + e, received + r
        # Published audio that stopped arriving means the uplink is down (video may be
        # paused on purpose; audio keeps flowing even in silence, DTX sends every 400 ms).
        audio = self.inbound.get("audio")
        silent = bool(audio and audio.last_packet_at is not None and now - audio.last_packet_at > 3.0)
        return LinkSample(
            downlink_bps=sum(per_group.values()) if per_group else None,
            estimate_covers_audio=covers_audio,
            audio_out_bps=audio_bps,
            # What the estimate is to be compared with: the streams it covers.
            sent_bps=(video_bps + (audio_bps if covers_audio else 0.0)) if elapsed > 0 else None,
            downlink_loss=max(recent) if recent else None,
            uplink_loss=(expected - received) / expected if expected > 0 else None,
            uplink_silent=silent,
            receives_video=any(o.source is not None for o in self.video_slots),
            layers_held_down=layers_held_down,
            receives_single_layer_video=any(
                o.source is not None and o.layers is None for o in self.video_slots
            ),
        )

    def apply_link_mode(self) -> bool:
        """Pause/resume this subscriber's video slots for the controller's mode; True if any changed."""
        paused = self.link.mode == "audio_only"
        changed = False
        for o in self.video_slots:
            if o.paused != paused:
                o.set_paused(paused)
                changed = True
        return changed

    @property
    def connection_state(self) -> str:
        if self.closed:
            return "closed"
        return self._pc.connectionState if self._pc is not None else "new"

    @property
    def peer_connection(self) -> RTCPeerConnection | None:
        return self._pc

    async def handle_offer(self, sdp: object) -> str:
        if self.closed:
            raise NotInRoom(f"participant {self.id!r} has left")
        if self._pc is not None or self._negotiating:
            raise InvalidState("offer already handled for this participant; renegotiation is not supported")
        offer = read_offer(sdp)
        if not self._config.transport_cc:
            offer = dataclasses.replace(offer, transport_cc_id=None, transport_cc_mids=())
        if offer.simulcast_refused is not None:
            logger.info("%s: simulcast refused, one layer taken: %s", self.id, offer.simulcast_refused)
        self._negotiating = True
        try:
            return await self._negotiate(offer)
        finally:
            self._negotiating = False

    async def _negotiate(self, offer: Offer) -> str:
        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=list(self._config.ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
            )
        )
        inbound: dict[Kind, InboundStream] = {}
        audio_slots: list[OutStream] = []
        video_slots: list[OutStream] = []
        try:
            # Pre-create one transceiver per offered m-line, in order, so that
            # setRemoteDescription adopts them: this is how codec preferences
            # (Opus/VP8 only, no RTX) and our receive/send hooks get in before
            # negotiation.
            for line in offer.media:
                t = pc.addTransceiver(line.kind, direction=line.server_direction)
                t.setCodecPreferences(
                    [
                        c
                        for c in RTCRtpSender.getCapabilities(line.kind).codecs
                        if c.mimeType.lower() == f"{line.kind}/{SUPPORTED_CODEC[line.kind]}"
                    ]
                )
                ssrc = ai.sender_ssrc(t.sender)
                receive_hook: Callable[[RTCDtlsTransport, RTCRtpReceiveParameters], Awaitable[None]]
                receive_hook = _ignore_receive
                send_hook: Callable[[RTCDtlsTransport, RTCRtpSendParameters], Awaitable[None]] = _ignore_send
                if line.client_sends:
                    stream: InboundStream
                    if line.kind == "video" and offer.simulcast is not None:
                        stream = SimulcastInbound(
                            simulcast=offer.simulcast,
                            publisher_id=self.id,
                            rtcp_ssrc=ssrc,
                            config=self._config,
                            on_disconnect=self._on_dtls_disconnect,
                            rtt=self.rtt,
                        )
                    else:
                        stream = InboundStream(
                            kind=line.kind,
                            publisher_id=self.id,
                            rtcp_ssrc=ssrc,
                            config=self._config,
                            on_disconnect=self._on_dtls_disconnect,
                            rtt=self.rtt,
                        )
                    if offer.transport_cc_id is not None:
                        if self._feedback is None:
                            self._feedback = TransportFeedback(sender_ssrc=ssrc)
                        stream.transport_feedback = self._feedback
                        stream.transport_cc_id = offer.transport_cc_id
                    inbound[line.kind] = stream
                    receive_hook = stream.start
                if line.client_receives:
                    out = OutStream(
                        kind=line.kind, mid=line.mid, subscriber_id=self.id, ssrc=ssrc, config=self._config
                    )
                    if line.kind == "video":
                        out.pacer = self.pacer
                    (audio_slots if line.kind == "audio" else video_slots).append(out)
                    send_hook = out.start
                ai.intercept_receive(t.receiver, receive_hook)
                ai.intercept_send(t.sender, send_hook)

            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.engine_sdp, type="offer"))
            ai.gather_on(pc, self._config.host_addresses, self._config.udp_mux)
            ai.tune_consent(pc, self._config.consent_interval, self._config.consent_timeout)
            ai.stamp_receive_times(pc)
            await pc.setLocalDescription(await pc.createAnswer())
            # aiortc's answer has no Opus fmtp: ask for in-band FEC, DTX and a modest rate.
            answer = offer.complete_answer(with_opus_fmtp(pc.localDescription.sdp, self.audio_max_bitrate))
        except SfuError:
            await pc.close()
            raise
        except Exception as exc:
            await pc.close()
            raise InvalidSdp(f"offer rejected: {exc}") from exc
        if self.closed:  # left while we were negotiating
            await pc.close()
            raise NotInRoom(f"participant {self.id!r} has left")

        self._pc = pc
        self.inbound = inbound
        self.audio_slots = audio_slots
        self.video_slots = video_slots
        if self._feedback is not None:
            self._feedback_task = asyncio.get_running_loop().create_task(
                self._send_transport_feedback(self._feedback), name=f"sfu-twcc-{self.id}"
            )
        pc.on("connectionstatechange", self._on_connection_state)
        self._room._participant_media_ready(self)
        return answer

    async def _send_transport_feedback(self, feedback: TransportFeedback) -> None:
        """Every FEEDBACK_INTERVAL_S, what arrived since the last feedback, on the transport
        the published tracks share (rtc/transport_cc.py)."""
        while not self.closed:
            await asyncio.sleep(FEEDBACK_INTERVAL_S)
            packets = feedback.take()
            stream = next((s for s in self.inbound.values() if s.started), None)
            if packets and stream is not None:
                await stream.send_rtcp(packets)

    async def add_ice_candidate(
        self, candidate: str | None, sdp_mid: str | None = None, sdp_mline_index: int | None = None
    ) -> None:
        """Add a trickled remote candidate (``a=candidate:...`` or ``candidate:...``);
        ``None``/empty means end-of-candidates."""
        if self.closed:
            raise NotInRoom(f"participant {self.id!r} has left")
        if self._pc is None:
            raise InvalidState("add_ice_candidate before handle_offer")
        if candidate is None or not candidate.strip():
            await self._pc.addIceCandidate(None)
            return
        text = candidate.strip()
        if text.startswith("a="):
            text = text[2:]
        if text.startswith("candidate:"):
            text = text[len("candidate:") :]
        try:
            parsed = ai.candidate_from_sdp(text)
        except Exception as exc:
            raise InvalidRequest(f"malformed ICE candidate: {exc}") from exc
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = sdp_mline_index
        if sdp_mid is None and sdp_mline_index is None:
            parsed.sdpMLineIndex = 0  # everything is BUNDLEd on the first transport
        await self._pc.addIceCandidate(parsed)

    def _on_connection_state(self) -> None:
        pc = self._pc
        if pc is None or self.closed:
            return
        state = pc.connectionState
        if state == "connected" and not self.connected:
            self.connected = True
            self._room._participant_connected(self)
        elif state in ("failed", "closed"):
            self._room._participant_transport_gone(self, f"transport-{state}")

    def _on_dtls_disconnect(self) -> None:
        if not self.closed:
            self._room._participant_transport_gone(self, "transport-closed")

    async def close(self) -> None:
        """Stop forwarding and release the peer connection. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._feedback_task is not None:
            self._feedback_task.cancel()
            await asyncio.gather(self._feedback_task, return_exceptions=True)
            self._feedback_task = None
        for stream in list(self.inbound.values()):
            await stream.stop()
        self.pacer.close()
        self.prober.close()
        for out in self.audio_slots + self.video_slots:
            await out.stop()
        pc, self._pc = self._pc, None
        if pc is not None:
            await pc.close()
        self.inbound = {}
        self.audio_slots = []
        self.video_slots = []
