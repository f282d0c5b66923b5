"""A meeting participant whose aiortc peer may use TURN relays only, as a hall behind a firewall
does: it takes the ICE servers from Maeul's join ack (the credentials Maeul minted for it), and
the tests read which candidate pair ICE selected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aioice.candidate import Candidate
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

from tests.sfu.sfu_testkit import Client, SyntheticAudio, SyntheticVideo
from tests.signaling.signaling_kit import Participant


def ice_servers_from_ack(ack: dict[str, Any], transport: str | None = None) -> list[RTCIceServer]:
    """The ack's ICE servers; ``transport`` keeps only that TURN transport (aiortc uses the first
    TURN URL it sees, so a kiosk behind a UDP-blocking firewall must be handed the TCP one)."""
    servers = []
    for entry in ack["ice_servers"]:
        urls = [u for u in entry["urls"] if transport is None or u.endswith(f"transport={transport}")]
        if urls:
            servers.append(
                RTCIceServer(urls=urls, username=entry.get("username"), credential=entry.get("credential"))
            )
    return servers


class RelayClient(Client):
    """sfu_testkit's synthetic client with an explicit RTCConfiguration (ICE servers + policy)."""

    def __init__(
        self,
        name: str,
        config: RTCConfiguration,
        *,
        luma: int,
        amplitude: int,
        video_slots: int,
        audio_slots: int,
    ) -> None:
        super().__init__(name, video_slots=0, audio_slots=0)
        # Replace the loopback-only peer the base class made with one built from Maeul's config.
        self._discarded = self.pc
        self.pc = RTCPeerConnection(config)
        self.video_track = SyntheticVideo(luma)
        self.audio_track = SyntheticAudio(amplitude)
        self.pc.addTransceiver(self.audio_track, direction="sendonly")
        for _ in range(audio_slots):
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver(self.video_track, direction="sendonly")
        for _ in range(video_slots):
            self.pc.addTransceiver("video", direction="recvonly")
        self.pc.on("track", self._on_track)

    async def close(self) -> None:
        await self._discarded.close()
        await super().close()


@dataclass
class RelayParticipant(Participant):
    ice_transport: str | None = None  # keep only this TURN transport from the ack

    async def publish_via(
        self, ack: dict[str, Any], luma: int, amplitude: int, video_slots: int = 2, audio_slots: int = 3
    ) -> None:
        config = RTCConfiguration(
            iceServers=ice_servers_from_ack(ack, self.ice_transport),
            iceTransportPolicy=RTCIceTransportPolicy(ack["ice_transport_policy"]),
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
        )
        self.peer = RelayClient(
            self.name,
            config,
            luma=luma,
            amplitude=amplitude,
            video_slots=video_slots,
            audio_slots=audio_slots,
        )
        offer = await self.peer.pc.createOffer()
        # No gather_on here: with the relay policy aiortc gathers TURN relay candidates only.
        await self.peer.pc.setLocalDescription(offer)
        answer = await self.call("offer", {"sdp": self.peer.pc.localDescription.sdp, "type": "offer"})
        assert "error" not in answer, answer
        self.slots.update(answer["slots"])
        await self.peer.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))


@dataclass(frozen=True)
class SelectedPair:
    local: Candidate
    remote: Candidate
    turn_transport: str | None  # "udp"/"tcp" toward the TURN server when the local side is a relay


def selected_pair(pc: RTCPeerConnection) -> SelectedPair | None:
    """The ICE pair carrying the (bundled) media. aiortc exposes no candidate-pair stats, so this
    reads aioice's nominated pair (test-only; the server's internals live in aiortc_internals)."""
    transceiver = pc.getTransceivers()[0]
    ice = transceiver.sender.transport.transport
    pair = ice._connection._nominated.get(1)
    if pair is None:
        return None
    turn_transport = None
    relay = pair.protocol.transport
    inner = getattr(relay, "_TurnTransport__inner_protocol", None)
    if inner is not None:
        turn_transport = "tcp" if type(inner).__name__ == "TurnClientTcpProtocol" else "udp"
    return SelectedPair(pair.protocol.local_candidate, pair.remote_candidate, turn_transport)
