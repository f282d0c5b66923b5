"""Fail loudly when an aiortc/aioice upgrade breaks an assumption of rtc/aiortc_internals.py
(the SFU's, see its docstring for the list) or of rtc/tuning.py (the kiosk's patches): one
version pin, one test."""

from __future__ import annotations

import asyncio
import gc
import inspect
import struct
from typing import Any

import aioice
import aioice.ice
import aioice.stun
import aioice.turn
import aiortc
import pylibsrtp
import pytest
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

from rtc import aiortc_internals as ai
from rtc._rtp_writer import SRTP_MAX_TRAILER_LEN, SrtpContext, SrtpError
from rtc.udp_mux import UdpMux
from tests.rtc.loopback_pair import loopback_pair


def test_versions_are_the_checked_ones() -> None:
    assert ai.versions_match(), (
        f"aiortc {aiortc.__version__} / aioice {aioice.__version__} installed, but "
        f"rtc/aiortc_internals.py and rtc/tuning.py were checked against aiortc {ai.TESTED_AIORTC_VERSION} / "
        f"aioice {ai.TESTED_AIOICE_VERSION}: re-check every internal it lists, then bump the constants"
    )


def test_aiortc_internals_the_tuning_relies_on() -> None:
    nxt = inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "if self.__encoder is None:" in nxt and "force_keyframe = self.__force_keyframe" in nxt
    rtcp = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "self._send_keyframe()" in rtcp and "await self._retransmit(seq)" in rtcp
    assert "self.__encoder.target_bitrate = bitrate" in rtcp
    retransmit = inspect.getsource(RTCRtpSender._retransmit)
    assert "self.__rtp_history.get(sequence_number % RTP_HISTORY_SIZE)" in retransmit
    assert "self.__rtt = " in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    rtp = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__nack_generator.add(packet)" in rtp
    assert "sorted(self.__nack_generator.missing)" in rtp
    assert "self.__jitter_buffer.add(packet)" in rtp and "await self._send_rtcp_pli(packet.ssrc)" in rtp
    assert "await self._send_rtcp_nack(" in rtp
    enc = inspect.getsource(Vp8Encoder.encode)
    assert "self.target_bitrate" in enc and "self.__target_bitrate" in enc
    jb = inspect.getsource(JitterBuffer)
    for name in ("self._origin", "self._packets", "self._capacity", "def _remove_frame", "def remove"):
        assert name in jb, name
    assert OpusEncoder().codec.is_open is False  # still configurable before the first frame


def test_aioice_connection_internals() -> None:
    params = inspect.signature(aioice.Connection.get_component_candidates).parameters
    assert "component" in params and "addresses" in params
    conn = aioice.Connection(ice_controlling=False)
    for name in ("_local_candidates", "_local_candidates_start", "_local_candidates_end", "_components"):
        assert hasattr(conn, name), name
    assert conn._transport_policy == aioice.TransportPolicy.ALL
    assert "get_host_addresses" in inspect.getsource(aioice.Connection.gather_candidates)


def test_ice_gatherer_wraps_an_aioice_connection() -> None:
    gatherer = aiortc.RTCIceGatherer(iceServers=[])
    assert isinstance(gatherer._connection, aioice.Connection)
    assert "self._connection.gather_candidates()" in inspect.getsource(aiortc.RTCIceGatherer.gather)


async def test_gather_on_is_scoped_to_one_peer_connection() -> None:
    pinned = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    default = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        for pc in (pinned, default):
            pc.addTransceiver("audio")
        ai.gather_on(pinned, ["127.0.0.1"])
        for pc in (pinned, default):
            await pc.setLocalDescription(await pc.createOffer())
        lines = pinned.localDescription.sdp.splitlines()
        candidates = [line for line in lines if line.startswith("a=candidate")]
        assert candidates and all(" 127.0.0.1 " in c for c in candidates)
        # aioice's own gathering (left in place for the other connection) never offers loopback
        assert " 127.0.0.1 " not in default.localDescription.sdp
    finally:
        await pinned.close()
        await default.close()


def test_peer_connection_starts_media_through_send_and_receive() -> None:
    source = inspect.getsource(RTCPeerConnection._RTCPeerConnection__connect)  # type: ignore[attr-defined]
    assert "await transceiver.sender.send(self.__localRtp(transceiver))" in source
    assert "await transceiver.receiver.receive(" in source


async def test_receiver_and_sender_internals() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        t = pc.addTransceiver("video")
        assert isinstance(ai.sender_ssrc(t.sender), int)
        assert ai.decoder_thread_started(t.receiver) is False
        # receive() is what starts the decoder thread: the hook must replace exactly it
        assert "decoder_worker" in inspect.getsource(aiortc.RTCRtpReceiver.receive)
    finally:
        await pc.close()


def test_dtls_transport_router_protocol() -> None:
    for name, args in {
        "_register_rtp_receiver": ["receiver", "parameters"],
        "_register_rtp_sender": ["sender", "parameters"],
        "_unregister_rtp_receiver": ["receiver"],
        "_unregister_rtp_sender": ["sender"],
        "_send_rtp": ["data"],
    }.items():
        sig = inspect.signature(getattr(RTCDtlsTransport, name))
        assert list(sig.parameters)[1:] == args, name
    data_src = inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    assert "receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)" in data_src
    assert "recipient._handle_rtcp_packet(packet)" in inspect.getsource(RTCDtlsTransport._handle_rtcp_data)
    assert "receiver._handle_disconnect()" in inspect.getsource(RTCDtlsTransport._RTCDtlsTransport__run)  # type: ignore[attr-defined]
    assert "sender._ssrc" in inspect.getsource(RTCDtlsTransport._register_rtp_sender)


def test_rtp_packet_and_header_extensions_roundtrip() -> None:
    params = RTCRtpParameters(
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
            RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            RTCRtpHeaderExtensionParameters(
                id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
            ),
        ]
    )
    ext_map = ai.HeaderExtensionsMap()
    ext_map.configure(params)
    p = ai.RtpPacket(payload_type=111, marker=1, sequence_number=65535, timestamp=2**32 - 1, ssrc=1234)
    p.payload = b"\x90\x80\x12hello"
    p.extensions.mid = "7"
    p.extensions.audio_level = (True, 42)
    p.extensions.abs_send_time = 0x123456
    q = ai.RtpPacket.parse(p.serialize(ext_map), ext_map)
    header = (q.payload_type, q.marker, q.sequence_number, q.timestamp, q.ssrc)
    assert header == (111, 1, 65535, 2**32 - 1, 1234)
    assert q.payload == p.payload and q.padding_size == 0
    assert q.extensions.mid == "7"
    assert q.extensions.audio_level == (True, 42)
    assert q.extensions.abs_send_time == 0x123456


def test_rtcp_packets_roundtrip() -> None:
    nack = ai.RtcpRtpfbPacket(fmt=ai.RTCP_RTPFB_NACK, ssrc=1, media_ssrc=2, lost=[10, 11, 30])
    pli = ai.RtcpPsfbPacket(fmt=ai.RTCP_PSFB_PLI, ssrc=1, media_ssrc=2)
    remb = ai.RtcpPsfbPacket(fmt=ai.RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=ai.pack_remb_fci(300000, [2]))
    rr = ai.RtcpRrPacket(ssrc=1, reports=[ai.RtcpReceiverInfo(2, 0, 0, 100, 0, 0, 0)])
    sr = ai.RtcpSrPacket(ssrc=2, sender_info=ai.RtcpSenderInfo(1 << 40, 5, 6, 7))
    bye = ai.RtcpByePacket(sources=[2])
    from aiortc.rtp import RtcpPacket

    parsed = RtcpPacket.parse(b"".join(bytes(x) for x in (nack, pli, remb, rr, sr, bye)))
    assert parsed[0].lost == [10, 11, 30]
    assert (parsed[1].fmt, parsed[1].media_ssrc) == (ai.RTCP_PSFB_PLI, 2)
    bitrate, ssrcs = ai.unpack_remb_fci(parsed[2].fci)
    assert ssrcs == [2] and abs(bitrate - 300000) < 300000 * 0.01
    assert parsed[3].reports[0].ssrc == 2
    assert parsed[4].sender_info.packet_count == 6
    assert parsed[5].sources == [2]


def test_remote_bitrate_estimator_signature() -> None:
    params = inspect.signature(ai.RemoteBitrateEstimator.add).parameters
    assert {"arrival_time_ms", "abs_send_time", "payload_size", "ssrc"} <= set(params)


def test_sdp_parser_and_candidate_parser() -> None:
    c = ai.candidate_from_sdp("1 1 udp 2130706431 127.0.0.1 5000 typ host")
    assert (c.ip, c.port, c.type) == ("127.0.0.1", 5000, "host")
    with pytest.raises(Exception):  # noqa: B017 - any exception; the SFU wraps it in InvalidRequest
        ai.candidate_from_sdp("garbage")
    desc = ai.SessionDescription.parse("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n")
    assert desc.media == []


def test_aioice_consent_internals() -> None:
    # tune_consent replaces query_consent on the instance; connect() must start it by attribute.
    assert "self.query_consent()" in inspect.getsource(aioice.Connection.connect)
    consent = inspect.getsource(aioice.Connection.query_consent)
    needles = ("self._nominated.values()", "self.build_request(pair, nominate=False)", "retransmissions=")
    for needle in needles:
        assert needle in consent, needle
    assert "pair.protocol.request(" in consent and "stun.TransactionError" in consent
    conn = aioice.Connection(ice_controlling=True)
    assert hasattr(conn, "_query_consent_task") and hasattr(conn, "remote_password")
    assert "retransmissions" in inspect.signature(aioice.stun.Transaction).parameters


async def test_tune_consent_is_scoped_to_one_peer_connection() -> None:
    tuned = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    default = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        for pc in (tuned, default):
            pc.addTransceiver("audio")
        ai.tune_consent(tuned, 1.0, 10.0)
        conn = tuned.getTransceivers()[0].sender.transport.transport.iceGatherer._connection
        other = default.getTransceivers()[0].sender.transport.transport.iceGatherer._connection
        assert "query_consent" in vars(conn) and "query_consent" not in vars(other)
    finally:
        await tuned.close()
        await default.close()


def test_direct_rtp_sender_internals() -> None:
    # DirectRtpSender replaces exactly this chain of per-packet coroutines with its last call.
    assert "self._tx_srtp.protect(data)" in inspect.getsource(RTCDtlsTransport._send_rtp)
    assert "data = self._tx_srtp.protect_rtcp(data)" in inspect.getsource(RTCDtlsTransport._send_rtp)
    assert "self._send = self._connection.send" in inspect.getsource(aiortc.RTCIceTransport)
    assert "await self.sendto(data, 1)" in inspect.getsource(aioice.Connection.send)
    sendto = inspect.getsource(aioice.Connection.sendto)
    assert "self._nominated.get(component)" in sendto
    assert "active_pair.protocol.send_data(data, active_pair.remote_addr)" in sendto
    assert "self.transport.sendto(data, addr)" in inspect.getsource(aioice.ice.StunProtocol.send_data)
    assert not issubclass(aioice.turn.TurnClientUdpProtocol, aioice.ice.StunProtocol)


def test_srtp_context_internals() -> None:
    # srtp_context hands rtc._rtp_writer libsrtp's srtp_protect and the session's srtp_t,
    # and takes Session.protect's size limit from the session's buffer.
    assert pylibsrtp.__version__ == "1.0.0"
    init = inspect.getsource(pylibsrtp.Session.__init__)
    assert 'self._cdata = ffi.new("char[]", 1500)' in init
    assert "self._srtp = ffi.gc(srtp, lambda x: lib.srtp_dealloc(x[0]))" in init
    process = inspect.getsource(pylibsrtp.Session._Session__process)  # type: ignore[attr-defined]
    assert "if len(data) > len(self._cdata) - trailer:" in process
    assert "_srtp_assert(func(self._srtp[0], self._cdata, len_p))" in process
    protect = inspect.getsource(pylibsrtp.Session.protect)
    assert "self.__process(packet, lib.srtp_protect, SRTP_MAX_TRAILER_LEN)" in protect
    assert pylibsrtp.SRTP_MAX_TRAILER_LEN == SRTP_MAX_TRAILER_LEN
    # rtc/_rtp_writer.c calls it as int (*)(void *ctx, void *rtp, int *len): libsrtp 2's API
    fn = _srtp_ffi.typeof(_srtp_ffi.addressof(_srtp_lib, "srtp_protect"))
    assert fn.cname == "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)"
    assert _srtp_ffi.sizeof("srtp_err_status_t") == _srtp_ffi.sizeof("int")


def _srtp_pair() -> tuple[pylibsrtp.Session, pylibsrtp.Session, pylibsrtp.Session]:
    """Two sending sessions with the same key (byte-identical output) and a receiving one."""
    key = bytes(range(30))

    def session(kind: int) -> pylibsrtp.Session:
        return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=kind))

    out = pylibsrtp.Policy.SSRC_ANY_OUTBOUND
    return session(out), session(out), session(pylibsrtp.Policy.SSRC_ANY_INBOUND)


def test_srtp_context_matches_session_protect() -> None:
    stock, lean_session, rx = _srtp_pair()
    lean = ai.srtp_context(lean_session)
    assert lean.owner is lean_session
    for i, size in enumerate((0, 1, 160, 1100, 1500 - 144 - 12)):
        packet = ai.RtpPacket(payload_type=96, sequence_number=(65530 + i) & 0xFFFF, timestamp=i, ssrc=4242)
        packet.payload = bytes((i + j) & 0xFF for j in range(size))
        data = packet.serialize()
        protected = lean.protect(data)
        assert protected == stock.protect(data)
        assert rx.unprotect(protected) == data
    # mixed with the stock call on the same session (aiortc's own RTCP/TURN path does that)
    data = ai.RtpPacket(payload_type=96, sequence_number=3, timestamp=9, ssrc=4242).serialize()
    assert rx.unprotect(lean_session.protect(data)) == data
    later = ai.RtpPacket(payload_type=96, sequence_number=4, timestamp=9, ssrc=4242).serialize()
    assert rx.unprotect(lean.protect(later)) == later
    with pytest.raises(SrtpError, match="libsrtp error"):  # the same index again: libsrtp's replay check
        lean.protect(later)
    with pytest.raises(ValueError, match="too long"):
        lean.protect(bytes(1500 - 144 + 1))
    with pytest.raises(TypeError):
        lean.protect("not bytes")  # type: ignore[arg-type]


def test_srtp_context_keeps_its_session_alive() -> None:
    """The context holds the session: dropping every other reference does not free the
    libsrtp state the C side protects with."""
    _, lean_session, rx = _srtp_pair()
    lean = ai.srtp_context(lean_session)
    del lean_session
    gc.collect()
    data = ai.RtpPacket(
        payload_type=96, sequence_number=7, timestamp=9, ssrc=4242, payload=b"x" * 50
    ).serialize()
    assert rx.unprotect(lean.protect(data)) == data


def test_srtp_context_refuses_a_bad_session() -> None:
    with pytest.raises(ValueError):
        SrtpContext(0, 0, None, 1356)


class QueueReceiver:
    """aiortc's RtpReceiver protocol (item 3), queueing what the DTLS transport hands it."""

    def __init__(self) -> None:
        self.rtp: asyncio.Queue[ai.RtpPacket] = asyncio.Queue()
        self.rtcp: asyncio.Queue[ai.AnyRtcpPacket] = asyncio.Queue()

    async def _handle_rtp_packet(self, packet: ai.RtpPacket, arrival_time_ms: int) -> None:
        self.rtp.put_nowait(packet)

    async def _handle_rtcp_packet(self, packet: ai.AnyRtcpPacket) -> None:
        self.rtcp.put_nowait(packet)

    def _handle_disconnect(self) -> None:
        pass


@pytest.mark.parametrize("muxed", [False, True], ids=["own-socket", "udp-mux"])
async def test_direct_rtp_sender_delivers_decryptable_rtp_over_loopback(muxed: bool) -> None:
    """A packet sent with DirectRtpSender arrives, SRTP-decrypted and parsed, at the peer; with
    the sender on a UDP mux (item 10), through its sendmmsg queue."""
    mux = UdpMux(0) if muxed else None
    receiver = QueueReceiver()
    got, got_rtcp = receiver.rtp, receiver.rtcp
    pair = await loopback_pair("audio", mux, receiver)
    sender_pc, t_send = pair.sender_pc, pair.transceiver
    try:
        transport, parameters = pair.transport, pair.parameters
        pt = parameters.codecs[0].payloadType
        direct = ai.DirectRtpSender(transport)
        packet = ai.RtpPacket(
            payload_type=pt, sequence_number=65535, timestamp=123456, ssrc=ai.sender_ssrc(t_send.sender)
        )
        packet.payload = b"\xfc" + bytes(range(40))
        for _ in range(50):  # the receiver registers once its own DTLS is up: resend until then
            assert direct.send(packet.serialize()) is True
            try:
                arrived = await asyncio.wait_for(got.get(), 0.1)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("no packet arrived")
        assert (arrived.sequence_number, arrived.timestamp, arrived.payload) == (
            65535,
            123456,
            packet.payload,
        )
        # a sender report, protected with SRTCP, past aiortc's coroutines as the RTP
        ssrc = ai.sender_ssrc(t_send.sender)
        info = ai.RtcpSenderInfo(ntp_timestamp=1 << 40, rtp_timestamp=123456, packet_count=1, octet_count=41)
        assert direct.send_rtcp(bytes(ai.RtcpSrPacket(ssrc=ssrc, sender_info=info))) is True
        report = await asyncio.wait_for(got_rtcp.get(), 5)
        assert isinstance(report, ai.RtcpSrPacket) and report.ssrc == ssrc
        assert report.sender_info.rtp_timestamp == 123456
        if mux is not None:
            (mux_socket,) = mux.sockets()
            assert ai.udp_mux_of(sender_pc) == [mux_socket]
            assert direct._mux is mux_socket
            assert mux_socket.stats.batched_datagrams >= 1 and not mux_socket.stats.send_errors
    finally:
        await pair.close()
    with pytest.raises(ConnectionError):
        direct.send(packet.serialize())


async def test_tap_protected_rtp_sees_the_clear_header_and_consumes_what_it_takes() -> None:
    """Item 11: the tap gets each RTP datagram before aiortc, SRTP-protected (payload
    encrypted, header as sent); what it consumes never reaches the receiver, what it declines
    does, and RTCP is never offered to it."""
    receiver = QueueReceiver()
    got, got_rtcp = receiver.rtp, receiver.rtcp
    pair = await loopback_pair("video", None, receiver)
    try:
        direct = ai.DirectRtpSender(pair.transport)
        ssrc = ai.sender_ssrc(pair.transceiver.sender)
        pt = pair.parameters.codecs[0].payloadType

        def packet(seq: int, marker: int = 0) -> bytes:
            plain = ai.RtpPacket(payload_type=pt, marker=marker, sequence_number=seq, timestamp=9, ssrc=ssrc)
            plain.payload = bytes(range(100))
            return plain.serialize()

        for _ in range(50):  # until the receiver is registered (its DTLS is up)
            direct.send(packet(1))
            try:
                await asyncio.wait_for(got.get(), 0.1)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("no packet arrived")
        while not got.empty():
            got.get_nowait()

        tapped: list[bytes] = []

        def tap(data: bytes) -> bool:
            tapped.append(data)
            return struct.unpack_from("!H", data, 2)[0] != 7  # decline seq 7

        ai.tap_protected_rtp(pair.receiver_pc, tap)
        for seq in range(2, 8):
            direct.send(packet(seq, marker=int(seq == 6)))
        arrived = await asyncio.wait_for(got.get(), 5)
        assert arrived.sequence_number == 7 and arrived.payload == bytes(range(100))
        assert [struct.unpack_from("!H", d, 2)[0] for d in tapped] == [2, 3, 4, 5, 6, 7]
        assert got.empty()  # 2-6 consumed
        sixth = packet(6, marker=1)
        assert tapped[4][:12] == sixth[:12] and tapped[4][1] & 0x80  # the header as sent
        assert tapped[4][12:112] != sixth[12:112]  # the payload still encrypted
        # RTCP is not offered to the tap
        info = ai.RtcpSenderInfo(ntp_timestamp=1 << 40, rtp_timestamp=9, packet_count=7, octet_count=700)
        assert direct.send_rtcp(bytes(ai.RtcpSrPacket(ssrc=ssrc, sender_info=info))) is True
        assert isinstance(await asyncio.wait_for(got_rtcp.get(), 5), ai.RtcpSrPacket)
        assert len(tapped) == 6
        # only that peer connection is tapped
        assert all("datagram_received" in vars(p) for p in _protocols(pair.receiver_pc))
        assert not any("datagram_received" in vars(p) for p in _protocols(pair.sender_pc))
    finally:
        await pair.close()


def _protocols(pc: RTCPeerConnection) -> list[Any]:
    gatherers = [t.receiver.transport.transport.iceGatherer for t in pc.getTransceivers()]
    return [p for g in gatherers for p in g._connection._protocols]


def test_receive_time_internals() -> None:
    # aiortc stamps arrival when its task takes the datagram (item 9): the SFU replaces the stamp
    dtls = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "data = await self.transport._recv()" in dtls and "clock.current_ms()" in dtls
    assert "self._recv = self._connection.recv" in inspect.getsource(aiortc.RTCIceTransport.__init__)
    # aioice hands non-STUN datagrams to the connection's queue, as received
    received = inspect.getsource(aioice.ice.StunProtocol.datagram_received)
    assert "self.receiver.data_received(data, self.local_candidate.component)" in received
    assert "self._protocols += host_protocols" in inspect.getsource(
        aioice.Connection.get_component_candidates
    )


async def test_stamp_receive_times_is_scoped_to_one_peer_connection() -> None:
    stamped = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    default = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        for pc in (stamped, default):
            pc.addTransceiver("audio")
            ai.gather_on(pc, ["127.0.0.1"])
        ai.stamp_receive_times(stamped)
        for pc in (stamped, default):
            await pc.setLocalDescription(await pc.createOffer())
        ice = stamped.getTransceivers()[0].receiver.transport.transport
        other = default.getTransceivers()[0].receiver.transport.transport
        assert "_recv" in vars(ice) and vars(ice)["_recv"] is not ice._connection.recv
        assert vars(other)["_recv"] == other._connection.recv
        protocols = ice.iceGatherer._connection._protocols
        assert protocols and all("datagram_received" in vars(p) for p in protocols)
        assert not any("datagram_received" in vars(p) for p in other.iceGatherer._connection._protocols)
    finally:
        await stamped.close()
        await default.close()
