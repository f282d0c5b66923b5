"""Two aiortc peer connections joined over loopback with the SFU's own hooks (aiortc_internals):
the sending side's DTLS transport and send parameters, as ``OutStream.start`` gets them, and a
receiver registered on the other side in place of aiortc's. Used by the internals test and by
``tests/bench/forward_step_bench.py``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCRtpTransceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport

from rtc import aiortc_internals as ai
from rtc.udp_mux import UdpMux


@dataclass
class LoopbackPair:
    sender_pc: RTCPeerConnection
    receiver_pc: RTCPeerConnection
    transceiver: RTCRtpTransceiver  # the sending one
    transport: RTCDtlsTransport  # the sender's, DTLS up
    parameters: Any  # RTCRtpSendParameters

    async def close(self) -> None:
        await self.sender_pc.close()
        await self.receiver_pc.close()


async def loopback_pair(kind: Literal["audio", "video"], mux: UdpMux | None, receiver: Any) -> LoopbackPair:
    """Connect a ``sendonly`` ``kind`` transceiver (its candidates on ``mux`` when given) to a peer
    whose receiving end is ``receiver`` (aiortc's RtpReceiver protocol: ``_handle_rtp_packet``,
    ``_handle_rtcp_packet``, ``_handle_disconnect``), registered once its DTLS is up."""
    config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    sender_pc, receiver_pc = RTCPeerConnection(config), RTCPeerConnection(config)
    started: dict[str, tuple[RTCDtlsTransport, Any]] = {}
    try:
        transceiver = sender_pc.addTransceiver(kind, direction="sendonly")
        ai.gather_on(sender_pc, ["127.0.0.1"], mux)

        async def on_send(transport: RTCDtlsTransport, parameters: Any) -> None:
            started["send"] = (transport, parameters)

        ai.intercept_send(transceiver.sender, on_send)
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        ai.gather_on(receiver_pc, ["127.0.0.1"])

        async def on_receive(transport: RTCDtlsTransport, parameters: Any) -> None:
            ai.register_rtp_receiver(transport, receiver, parameters)

        ai.intercept_receive(receiver_pc.getTransceivers()[0].receiver, on_receive)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        for _ in range(200):
            if "send" in started:
                break
            await asyncio.sleep(0.05)
        else:
            raise TimeoutError("the sending side's DTLS did not come up in 10 s")
    except BaseException:
        await sender_pc.close()
        await receiver_pc.close()
        raise
    transport, parameters = started["send"]
    return LoopbackPair(sender_pc, receiver_pc, transceiver, transport, parameters)
