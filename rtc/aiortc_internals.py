"""The aiortc/aioice internals the SFU relies on (the kiosk's own are in :mod:`rtc.tuning`).

Together with :mod:`rtc.tuning` this is the only code that touches aiortc/aioice internals;
both are pinned to the versions below (:func:`versions_match`) and checked by
``tests/rtc/test_aiortc_internals.py``.

aiortc has no public API for forwarding RTP without decoding, nor for choosing
the addresses ICE gathers on. Everything below relies on implementation
details of **aiortc 1.16.0 / aioice 0.13.0** (pinned in pyproject.toml);
``tests/rtc/test_aiortc_internals.py`` checks each assumption and fails loudly
when an upgrade breaks one. Internals used, and why:

1. ``RTCIceGatherer._connection`` (an ``aioice.Connection``) and, on it,
   ``gather_candidates`` / ``get_component_candidates(component, addresses)`` /
   ``_components`` / ``_local_candidates`` / ``_local_candidates_start`` /
   ``_local_candidates_end``: aioice always gathers on
   ``get_host_addresses()``, which leaves out 127.0.0.1 and cannot be told
   which interfaces to use. :func:`gather_on` replaces ``gather_candidates``
   *on one Connection instance* (no process-wide patch) with the same logic
   fed with the configured addresses. STUN/TURN handling is unchanged because
   ``get_component_candidates`` does it.
2. ``RTCPeerConnection`` calls ``transceiver.receiver.receive(params)`` and
   ``transceiver.sender.send(params)`` (in its private ``__connect``) once DTLS
   is up, via ordinary attribute lookup. :func:`intercept_receive` /
   :func:`intercept_send` shadow these two methods *on one receiver/sender
   instance*, so the negotiated parameters reach the SFU and the stock
   RTCRtpReceiver (jitter buffer + decoder thread) and RTCRtpSender (encoder
   loop) never start. This is what guarantees no decoder runs for forwarded
   media.
3. ``RTCDtlsTransport._register_rtp_receiver(obj, params)`` /
   ``_register_rtp_sender(obj, params)`` / ``_unregister_rtp_receiver`` /
   ``_unregister_rtp_sender`` and its ``RtpRouter``, which calls the duck-typed
   ``RtpReceiver`` protocol (``_handle_rtp_packet(packet, arrival_time_ms)``,
   ``_handle_rtcp_packet(packet)``, ``_handle_disconnect()``) and ``RtpSender``
   protocol (``_ssrc``, ``_handle_rtcp_packet(packet)``). The SFU's own
   stream objects implement these protocols and register in place of
   aiortc's, receiving decrypted, parsed RTP/RTCP.
4. ``RTCDtlsTransport._send_rtp(data)``: SRTP-protects and sends one RTP or
   RTCP packet; used to send our RTCP and, where no direct send is possible (a TURN
   relay), rewritten packets. :class:`DirectRtpSender` sends RTP synchronously past
   aioice's per-packet coroutines (``Connection.send`` -> ``sendto`` ->
   ``StunProtocol.send_data``: three awaits around one ``transport.sendto``). It reads
   ``RTCDtlsTransport._state`` / ``_tx_srtp`` (the pylibsrtp session),
   ``RTCDtlsTransport.transport._connection._nominated`` (the selected pair per
   component), ``CandidatePair.protocol`` / ``remote_addr`` and
   ``aioice.ice.StunProtocol.transport`` (the asyncio datagram transport). It protects
   through :func:`srtp_context`, which hands libsrtp's ``srtp_protect`` (from
   ``pylibsrtp._binding``) and the pylibsrtp ``Session``'s ``srtp_t`` (its ``_srtp``; its
   ``_cdata`` gives the size limit) to :mod:`rtc._rtp_writer`, where the slot's packet is
   written and protected in one C call.
5. ``RTCRtpSender._ssrc``: the SSRC aiortc put in the answer's ``a=ssrc``
   line; forwarded packets must carry it so the subscriber demuxes them.
6. ``RTCRtpReceiver._RTCRtpReceiver__decoder_thread``: read by tests only,
   to prove no server-side decoder thread was started.
7. ``aioice.Connection.query_consent`` (RFC 7675 consent freshness), started by
   ``Connection.connect`` as ``self.query_consent()`` once ICE completes, and the
   attributes it uses (``_nominated``, ``build_request``, ``remote_password``,
   ``close``, ``_query_consent_task``) plus ``aioice.stun.TransactionError``.
   aioice checks every 5 s with a single 0.5 s try and closes the connection
   after 6 misses: a congested 300 kbit/s link (queues longer than 0.5 s) ends
   calls after ~30 s. :func:`tune_consent` replaces ``query_consent`` *on one
   Connection instance* with a configurable interval, retransmitting requests
   and a deadline measured from the last answered check.
8. Not-exported modules: ``aiortc.rtp`` (RtpPacket, HeaderExtensionsMap,
   RTCP packet classes, REMB FCI helpers), ``aiortc.rate.RemoteBitrateEstimator``
   (REMB toward publishers) and ``aiortc.sdp`` (SDP parser, candidate parser).
   They are re-exported from here so nothing else imports them.
9. Receive times from the kernel (:func:`stamp_receive_times`): aiortc stamps a packet's
   arrival (``clock.current_ms()`` in ``RTCDtlsTransport._recv_next``) when its task takes
   the datagram from aioice's queue, so on a busy event loop every packet that waited out a
   stall gets the same late time, and the delay-based estimator (REMB toward the publisher)
   reads the stall as a congested uplink and lowers the publisher's rate: the collapse of the
   chair's estimate under CPU load (issue 18). :func:`stamp_receive_times` wraps, *on one
   peer connection's objects*, each ``aioice.ice.StunProtocol.datagram_received`` (looked up
   per datagram by asyncio's and uvloop's transports; its ``transport``'s socket) to read the
   kernel's receive time of the datagram just read (``SIOCGSTAMP``), and the ICE transport's
   ``RTCIceTransport._recv`` (an instance attribute bound to ``Connection.recv``), found
   through ``RTCIceGatherer._connection`` / ``Connection.gather_candidates`` /
   ``Connection._protocols``, so :func:`receive_time_ms` gives the SFU the time of the packet
   aiortc hands it next (one task reads each DTLS transport, and nothing awaits between the
   read and the hand-over); :func:`receive_time_us` gives the same in microseconds since 1970,
   for the transport-wide feedback's 250 us ticks (``rtc/transport_cc.py``).
10. One shared UDP socket for every peer connection (:mod:`rtc.udp_mux`, used by
    :func:`gather_on` when given a ``mux``). The host candidates are made here as aioice's
    ``Connection.get_component_candidates`` makes them (``aioice.candidate.Candidate``,
    ``candidate_foundation``, ``candidate_priority``; ``StunProtocol(connection)`` with its
    ``local_candidate``, ``connection_made(transport)``, ``transactions`` (the ids of its
    outstanding STUN transactions, for routing responses) and ``close()`` /
    ``connection_lost`` (which unregister it), added to ``Connection._protocols``;
    ``Connection._valid_username`` (which of two connections that drew the same 4-character
    ufrag a request is for); ``Connection._closing`` (set when ``close()`` starts, checked
    before registering), but the
    ``StunProtocol``'s transport is a :class:`rtc.udp_mux.MuxTransport` on the shared socket
    instead of a socket of its own; it registers under ``Connection.local_username`` (the
    ufrag binding requests name). Server-reflexive candidates go through
    ``aioice.ice.server_reflexive_candidate`` on those protocols
    (``Connection.stun_server``); TURN candidates are still made by
    ``get_component_candidates(component, addresses=[])``. Without configured addresses the
    mux takes ``aioice.ice.get_host_addresses(Connection._use_ipv4, _use_ipv6)``. Only
    single-component connections (aiortc's, with rtcp-mux) are muxed: a USERNAME does not
    name a component. :class:`DirectRtpSender` queues RTP on the mux
    (``MuxSocket.queue``), which sends the queue of one event-loop turn in one ``sendmmsg``.
11. Load generators only (:func:`tap_protected_rtp`): ``aioice.ice.StunProtocol.datagram_received``
    on the ``Connection._protocols`` of a peer connection's gatherers, shadowed per instance
    as item 9 does, so a benchmark's subscribers can count RTP from its header (in the clear
    under SRTP, RFC 3711 3.1) without aioice's attempt to parse it as STUN (a raised and caught
    ValueError), aiortc's queue and coroutine hop, SRTP unprotect and parse per packet: the
    benchmarks' hundreds of subscribers must cost less than the SFU they measure. The SFU
    itself never uses it.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import random
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import aioice
import aioice.candidate
import aioice.ice
import aioice.stun
import aiortc
import pylibsrtp
from aiortc import RTCIceGatherer, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from aiortc.sdp import SessionDescription, candidate_from_sdp
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

from rtc._rtp_writer import PacketWriter, SrtpContext
from rtc.udp_mux import MuxSocket, MuxTransport, UdpMux, pack_sockaddr

logger = logging.getLogger(__name__)

TESTED_AIORTC_VERSION = "1.16.0"
TESTED_AIOICE_VERSION = "0.13.0"

__all__ = [
    "RTCP_PSFB_APP",
    "RTCP_PSFB_FIR",
    "RTCP_PSFB_PLI",
    "RTCP_RTPFB_NACK",
    "AnyRtcpPacket",
    "HeaderExtensionsMap",
    "RemoteBitrateEstimator",
    "RtcpByePacket",
    "RtcpPsfbPacket",
    "RtcpReceiverInfo",
    "RtcpRrPacket",
    "RtcpRtpfbPacket",
    "RtcpSenderInfo",
    "RtcpSrPacket",
    "RtpPacket",
    "SessionDescription",
    "candidate_from_sdp",
    "pack_remb_fci",
    "unpack_remb_fci",
    "gather_on",
    "udp_mux_of",
    "tune_consent",
    "intercept_receive",
    "intercept_send",
    "register_rtp_receiver",
    "register_rtp_sender",
    "unregister_rtp_receiver",
    "unregister_rtp_sender",
    "send_rtp",
    "DirectRtpSender",
    "srtp_context",
    "sender_ssrc",
    "decoder_thread_started",
    "versions_match",
    "stamp_receive_times",
    "receive_time_ms",
    "tap_protected_rtp",
]


class RtpReceiverLike(Protocol):
    """What ``RtpRouter`` calls on a registered receiver (aiortc's RtpReceiver protocol)."""

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None: ...

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None: ...

    def _handle_disconnect(self) -> None: ...


class RtpSenderLike(Protocol):
    """What ``RtpRouter`` calls on a registered sender (aiortc's RtpSender protocol)."""

    _ssrc: int

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None: ...


def versions_match() -> bool:
    """True when the installed aiortc/aioice are the versions this module was checked against."""
    return aiortc.__version__ == TESTED_AIORTC_VERSION and aioice.__version__ == TESTED_AIOICE_VERSION


# --- 1. ICE gathering on chosen addresses -------------------------------------------------


def _dtls_transports(pc: RTCPeerConnection) -> list[RTCDtlsTransport]:
    transports: list[RTCDtlsTransport] = []
    for dtls in [t.receiver.transport for t in pc.getTransceivers()] + (
        [pc.sctp.transport] if pc.sctp is not None else []
    ):
        if dtls not in transports:
            transports.append(dtls)
    return transports


def _ice_gatherers(pc: RTCPeerConnection) -> list[RTCIceGatherer]:
    gatherers: list[RTCIceGatherer] = []
    for dtls in _dtls_transports(pc):
        gatherer = dtls.transport.iceGatherer
        if gatherer not in gatherers:
            gatherers.append(gatherer)
    return gatherers


def gather_on(pc: RTCPeerConnection, addresses: Sequence[str], mux: UdpMux | None = None) -> None:
    """Make the not-yet-started ICE gatherers of ``pc`` gather host candidates
    only on ``addresses`` (e.g. ``["127.0.0.1"]``), and with ``mux`` on its shared
    sockets (one per address, item 10) instead of a socket per connection.

    Call after the transceivers exist (after ``setRemoteDescription`` on the
    answering side, after ``addTransceiver`` on the offering side) and before
    ``setLocalDescription``, which gathers. An empty ``addresses`` keeps
    aioice's default addresses. Only this ``pc``'s aioice Connection objects change.
    """
    if not addresses and mux is None:
        return
    wanted = list(addresses)
    for gatherer in _ice_gatherers(pc):
        if gatherer.state != "new":
            continue
        _gather_on_connection(gatherer._connection, wanted, mux)


def _gather_on_connection(conn: Any, addresses: list[str], mux: UdpMux | None) -> None:
    # Same steps as aioice.Connection.gather_candidates, with our addresses
    # instead of get_host_addresses(). A relay-only policy keeps no host
    # candidates, as aioice does.
    relay_only = conn._transport_policy == aioice.TransportPolicy.RELAY
    muxed = mux is not None and set(conn._components) == {1}

    async def gather_candidates() -> None:
        if conn._local_candidates_start:
            return
        conn._local_candidates_start = True
        for component in sorted(conn._components):
            if muxed and not relay_only:
                assert mux is not None
                conn._local_candidates += await _muxed_candidates(conn, component, addresses, mux)
            else:
                conn._local_candidates += await conn.get_component_candidates(
                    component=component, addresses=[] if relay_only else addresses
                )
        conn._local_candidates_end = True

    conn.gather_candidates = gather_candidates


async def _muxed_candidates(
    conn: Any, component: int, addresses: list[str], mux: UdpMux
) -> list[aioice.candidate.Candidate]:
    """Host candidates on the mux's shared sockets, then server-reflexive ones through them
    and TURN ones as aioice makes them (see item 10)."""
    if not addresses:
        addresses = aioice.ice.get_host_addresses(conn._use_ipv4, conn._use_ipv6)
    candidates: list[aioice.candidate.Candidate] = []
    protocols: list[aioice.ice.StunProtocol] = []
    for address in addresses:
        try:
            mux_socket = await mux.socket_for(address)
        except OSError as exc:
            # loud: the peers get no host candidate here (TURN only), e.g. a second worker on
            # the same fixed port
            logger.error("UDP mux: could not bind to %s port %d - %s", address, mux.port, exc)
            continue
        if conn._closing:
            # closed while the socket was being bound: Connection.close has already closed
            # the protocols it knew, so registering now would leave this one behind
            break
        protocol = aioice.ice.StunProtocol(conn)
        transactions = protocol.transactions
        transport = mux_socket.attach(
            conn.local_username, protocol, transactions.__contains__, conn._valid_username
        )
        protocol.connection_made(transport)
        host, port = transport.get_extra_info("sockname")[:2]
        protocol.local_candidate = aioice.candidate.Candidate(
            foundation=aioice.candidate.candidate_foundation("host", "udp", host),
            component=component,
            transport="udp",
            priority=aioice.candidate.candidate_priority(component, "host"),
            host=host,
            port=port,
            type="host",
        )
        candidates.append(protocol.local_candidate)
        protocols.append(protocol)
    conn._protocols += protocols
    srflx: list[asyncio.Task[Any]] = []
    if conn.stun_server:
        for protocol in protocols:
            if ":" not in protocol.local_candidate.host:  # IPv4 only, as aioice
                srflx.append(
                    asyncio.ensure_future(aioice.ice.server_reflexive_candidate(protocol, conn.stun_server))
                )
    # TURN (and nothing else: no addresses) exactly as aioice gathers it
    candidates += await conn.get_component_candidates(component=component, addresses=[])
    if srflx:
        done, pending = await asyncio.wait(srflx, timeout=5)
        for task in srflx:
            if task in done and task.exception() is None:
                candidates.append(task.result()[0])
        for task in pending:
            task.cancel()
    return candidates


def udp_mux_of(pc: RTCPeerConnection) -> list[MuxSocket]:
    """The mux sockets ``pc``'s ICE connections use (empty when they have their own)."""
    sockets: list[MuxSocket] = []
    for gatherer in _ice_gatherers(pc):
        for protocol in gatherer._connection._protocols:
            transport = getattr(protocol, "transport", None)
            if isinstance(transport, MuxTransport) and transport.mux not in sockets:
                sockets.append(transport.mux)
    return sockets


# --- 9. Receive times from the kernel ---------------------------------------------------------

#: ``SIOCGSTAMP`` (linux/sockios.h): the receive time (struct timeval) of the last datagram
#: read from a socket. The first call on a socket turns timestamping on (ENOENT until a
#: datagram arrives stamped).
_SIOCGSTAMP = 0x8906
_TIMEVAL = struct.Struct("@qq")
_NO_TIMEVAL = bytes(_TIMEVAL.size)
#: aiortc's clock counts milliseconds since 1900 (NTP), the kernel's since 1970.
_NTP_UNIX_OFFSET_MS = 2_208_988_800_000


class _StampedDatagram(bytes):
    """A received RTP/RTCP datagram with the kernel's receive time (ms, aiortc's clock; and
    microseconds since the Unix epoch, for transport-wide feedback's 250 us ticks)."""

    arrival_ms: int
    arrival_us: int


def _kernel_receive_us(fd: int) -> int | None:
    try:
        seconds, micros = _TIMEVAL.unpack(fcntl.ioctl(fd, _SIOCGSTAMP, _NO_TIMEVAL))
    except OSError:
        return None
    return seconds * 1_000_000 + micros


def _stamp_protocol(protocol: aioice.ice.StunProtocol) -> None:
    transport = getattr(protocol, "transport", None)  # (a TURN relay's has none of its own)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or getattr(protocol, "_maeul_stamped", False):
        return
    fd = sock.fileno()
    received = protocol.datagram_received

    def datagram_received(data: bytes | str, addr: tuple[Any, ...]) -> None:
        # RTP and RTCP only (first byte 128-191, RFC 7983): STUN and DTLS need no time
        if isinstance(data, bytes) and data and 127 < data[0] < 192:
            arrival = _kernel_receive_us(fd)
            if arrival is not None:
                stamped = _StampedDatagram(data)
                stamped.arrival_us = arrival
                stamped.arrival_ms = arrival // 1000 + _NTP_UNIX_OFFSET_MS
                data = stamped
        received(data, addr)

    protocol.datagram_received = datagram_received  # type: ignore[method-assign]
    protocol._maeul_stamped = True  # type: ignore[attr-defined]


def stamp_receive_times(pc: RTCPeerConnection) -> None:
    """Keep the kernel's receive time of each RTP packet ``pc`` receives, for
    :func:`receive_time_ms` (see item 9 above). Call after :func:`gather_on` and before
    ``setLocalDescription``, which gathers."""
    for gatherer in _ice_gatherers(pc):
        conn = gatherer._connection
        gather = conn.gather_candidates

        async def gather_candidates(conn: Any = conn, gather: Callable[[], Awaitable[None]] = gather) -> None:
            await gather()
            for protocol in conn._protocols:
                _stamp_protocol(protocol)

        conn.gather_candidates = gather_candidates  # type: ignore[method-assign]
    for dtls in _dtls_transports(pc):
        ice: Any = dtls.transport
        if getattr(ice, "_maeul_recv", None) is not None:
            continue
        recv = ice._recv

        async def stamped_recv(ice: Any = ice, recv: Callable[[], Awaitable[bytes]] = recv) -> bytes:
            data = await recv()
            ice._maeul_arrival_ms = getattr(data, "arrival_ms", None)
            ice._maeul_arrival_us = getattr(data, "arrival_us", None)
            return data

        ice._maeul_recv = recv
        ice._recv = stamped_recv


#: Sees one received RTP datagram, still SRTP-protected; True: consumed (aiortc never sees it).
RtpTap = Callable[[bytes], bool]


def tap_protected_rtp(pc: RTCPeerConnection, tap: RtpTap) -> None:
    """Hand each RTP datagram ``pc`` receives to ``tap`` as it arrives (item 11), before aioice
    and aiortc: it goes on to them (STUN parse, queue, unprotect, the receiver) only if ``tap``
    returns False. RTCP, STUN and DTLS always go on. Call after ``setLocalDescription``, which
    gathers (the sockets exist then); what arrives before goes the usual way."""
    for gatherer in _ice_gatherers(pc):
        for protocol in gatherer._connection._protocols:
            received = protocol.datagram_received

            def datagram_received(
                data: bytes | str, addr: tuple[Any, ...], received: Callable[..., None] = received
            ) -> None:
                # RTP: first byte 128-191 (RFC 7983), second not an RTCP type (RFC 5761 4)
                if isinstance(data, bytes) and len(data) >= 12 and 127 < data[0] < 192:
                    if not 191 < data[1] < 224 and tap(data):
                        return
                received(data, addr)

            protocol.datagram_received = datagram_received  # type: ignore[method-assign]


def receive_time_us(transport: RTCDtlsTransport | None) -> int | None:
    """The kernel's receive time (microseconds since the Unix epoch) of the packet
    ``transport`` is handing over now, or None where there is none."""
    if transport is None:
        return None
    arrival: int | None = getattr(transport.transport, "_maeul_arrival_us", None)
    return arrival


def receive_time_ms(transport: RTCDtlsTransport | None, fallback: int) -> int:
    """The kernel's receive time (aiortc's clock, ms) of the packet ``transport`` is handing
    over now, or ``fallback`` (aiortc's own stamp) where there is none."""
    if transport is None:
        return fallback
    arrival: int | None = getattr(transport.transport, "_maeul_arrival_ms", None)
    return fallback if arrival is None else arrival


# --- 7. Consent freshness that survives congestion -----------------------------------------


def tune_consent(pc: RTCPeerConnection, interval: float, timeout: float, retransmissions: int = 2) -> None:
    """Make the ICE connections of ``pc`` check consent every ``interval`` seconds
    (randomised +-20 % as RFC 7675 asks) and give up only when no check has been
    answered for ``timeout`` seconds.

    Each check is retransmitted ``retransmissions`` times (0.5 s, 1 s, 2 s ...),
    so a response stuck behind a full queue still counts. Call when ``gather_on``
    is called (before ICE connects). Only this ``pc``'s aioice Connections change.
    """
    if interval <= 0 or timeout <= 0:
        raise ValueError("consent interval and timeout must be > 0")
    for gatherer in _ice_gatherers(pc):
        if gatherer.state == "new":
            _tune_consent_on_connection(gatherer._connection, interval, timeout, retransmissions)


def _tune_consent_on_connection(conn: Any, interval: float, timeout: float, retransmissions: int) -> None:
    async def query_consent() -> None:
        assert conn.remote_password is not None
        loop = asyncio.get_running_loop()
        last_answer = loop.time()
        while True:
            await asyncio.sleep(interval * (0.8 + 0.4 * random.random()))
            for pair in list(conn._nominated.values()):
                request = conn.build_request(pair, nominate=False)
                try:
                    await pair.protocol.request(
                        request,
                        pair.remote_addr,
                        integrity_key=conn.remote_password.encode("utf8"),
                        retransmissions=retransmissions,
                    )
                    last_answer = loop.time()
                except aioice.stun.TransactionError:
                    pass
            if loop.time() - last_answer >= timeout:
                logger.info("ICE consent expired after %.0f s without an answer", loop.time() - last_answer)
                conn._query_consent_task = None
                await conn.close()
                return

    conn.query_consent = query_consent


# --- 2. Taking over RTP reception/sending from aiortc ------------------------------------

ReceiveHandler = Callable[[RTCDtlsTransport, RTCRtpReceiveParameters], Awaitable[None]]
SendHandler = Callable[[RTCDtlsTransport, RTCRtpSendParameters], Awaitable[None]]


def intercept_receive(receiver: RTCRtpReceiver, handler: ReceiveHandler) -> None:
    """Route this receiver's start (``receive(params)``) to ``handler(transport, params)``.

    The stock ``RTCRtpReceiver.receive`` (which would start the decoder thread
    and register the receiver) never runs for this instance; ``stop()`` then is
    a no-op, so the caller owns the lifetime of whatever ``handler`` registers.
    """

    async def receive(parameters: RTCRtpReceiveParameters) -> None:
        await handler(receiver.transport, parameters)

    receiver.receive = receive  # type: ignore[method-assign]


def intercept_send(sender: RTCRtpSender, handler: SendHandler) -> None:
    """Route this sender's start (``send(params)``) to ``handler(transport, params)``.

    The stock RTP/RTCP loops of the sender never start for this instance.
    """

    async def send(parameters: RTCRtpSendParameters) -> None:
        await handler(sender.transport, parameters)

    sender.send = send  # type: ignore[method-assign]


def sender_ssrc(sender: RTCRtpSender) -> int:
    """The SSRC aiortc advertises for ``sender`` in SDP."""
    return int(sender._ssrc)


# --- 3./4. Registering on the DTLS transport and sending ----------------------------------


def register_rtp_receiver(
    transport: RTCDtlsTransport, receiver: RtpReceiverLike, parameters: RTCRtpReceiveParameters
) -> None:
    transport._register_rtp_receiver(receiver, parameters)


def unregister_rtp_receiver(transport: RTCDtlsTransport, receiver: RtpReceiverLike) -> None:
    transport._unregister_rtp_receiver(receiver)


def register_rtp_sender(
    transport: RTCDtlsTransport, sender: RtpSenderLike, parameters: RTCRtpSendParameters
) -> None:
    transport._register_rtp_sender(sender, parameters)


def unregister_rtp_sender(transport: RTCDtlsTransport, sender: RtpSenderLike) -> None:
    transport._unregister_rtp_sender(sender)


async def send_rtp(transport: RTCDtlsTransport, data: bytes) -> None:
    """SRTP/SRTCP-protect and send one serialized RTP or RTCP packet.

    Raises ``ConnectionError`` when the transport is not connected.
    """
    await transport._send_rtp(data)


#: libsrtp's ``srtp_protect`` inside pylibsrtp's binding, as an address for :class:`SrtpContext`.
_SRTP_PROTECT_ADDR = int(_srtp_ffi.cast("uintptr_t", _srtp_ffi.addressof(_srtp_lib, "srtp_protect")))


def srtp_context(session: pylibsrtp.Session) -> SrtpContext:
    """``session``'s ``srtp_protect`` for :mod:`rtc._rtp_writer` (C): the same libsrtp call
    on the same session as ``Session.protect`` (so both may be used on one session, one after
    the other, as the event loop does), into the packet's own new buffer instead of the
    session's. The context holds ``session``, so its libsrtp state outlives every use. It
    refuses what ``Session.protect`` refuses: a packet longer than its buffer allows
    (``ValueError``), and libsrtp's errors (``SrtpError``, where pylibsrtp raises its own
    ``Error``)."""
    ctx = int(_srtp_ffi.cast("uintptr_t", session._srtp[0]))
    return SrtpContext(_SRTP_PROTECT_ADDR, ctx, session, len(session._cdata) - pylibsrtp.SRTP_MAX_TRAILER_LEN)


class DirectRtpSender:
    """Sends SRTP-protected RTP of one DTLS transport synchronously (see item 4 above).

    One per forwarding slot: the selected pair's socket and address are looked up
    again only when ICE selects another pair, so a packet costs one SRTP protect and
    one ``sendto`` (or a place in the UDP mux's next ``sendmmsg``), with no coroutine.
    aiortc's own transport byte/packet counters (``RTCDtlsTransport`` stats) do not see
    these packets; the SFU counts its own.

    Both sends raise ``ConnectionError`` when the transport is not connected, as
    ``send_rtp``, and return False where there is no direct path (a TURN relay's protocol
    has its own async framing): the caller sends the plain packet with :func:`send_rtp`.
    """

    __slots__ = ("_dtls", "_nominated", "_pair", "_udp", "_addr", "_mux", "_sockaddr", "_srtp")

    def __init__(self, transport: RTCDtlsTransport) -> None:
        self._dtls = transport
        self._nominated: dict[int, Any] = transport.transport._connection._nominated
        self._pair: Any = None
        self._udp: asyncio.DatagramTransport | None = None
        self._addr: tuple[str, int] = ("", 0)
        self._mux: MuxSocket | None = None  # the shared socket, when the pair is on a UDP mux
        self._sockaddr = b""
        self._srtp: SrtpContext | None = None  # for the DTLS transport's current session

    def send(self, data: bytes) -> bool:
        """Protect and send one plain RTP packet now."""
        srtp = self._context()
        if srtp is None:
            return False
        self._send_protected(srtp.protect(data))
        return True

    def send_written(
        self,
        writer: PacketWriter,
        marker: int,
        seq: int,
        timestamp: int,
        abs_send_time: int,
        level: int,
        payload: bytes,
        padding: int,
    ) -> bool:
        """Write one packet of a slot with ``writer`` (:class:`rtc.rtputil.RtpHeaderLayout`),
        protected in the same call, and send it now: forwarding's per-subscriber step."""
        srtp = self._context()
        if srtp is None:
            return False
        self._send_protected(
            writer.write(marker, seq, timestamp, abs_send_time, level, payload, padding, srtp)
        )
        return True

    def send_rtcp(self, data: bytes) -> bool:
        """Protect (SRTCP) and send one compound RTCP packet now: a slot's sender report,
        past aiortc's coroutines as its RTP."""
        if self._context() is None:
            return False
        self._send_protected(self._dtls._tx_srtp.protect_rtcp(data))
        return True

    def _context(self) -> SrtpContext | None:
        """The SRTP context to protect with (None: no direct path), the pair chosen."""
        dtls = self._dtls
        if dtls._state is not DtlsState.CONNECTED:
            raise ConnectionError("Cannot send encrypted RTP, not connected")
        pair = self._nominated.get(1)
        if pair is not self._pair:
            self._select(pair)
        if self._udp is None:
            return None
        srtp = self._srtp
        if srtp is None or srtp.owner is not dtls._tx_srtp:
            srtp = self._srtp = srtp_context(dtls._tx_srtp)
        return srtp

    def _send_protected(self, data: bytes) -> None:
        mux = self._mux
        if mux is not None:
            # with the other copies of this turn, in one sendmmsg (item 10)
            mux.queue(data, self._sockaddr)
        else:
            assert self._udp is not None
            self._udp.sendto(data, self._addr)

    def _select(self, pair: Any) -> None:
        if pair is None:
            raise ConnectionError("Cannot send data, not connected")
        self._pair = pair
        protocol = pair.protocol
        # Exactly aioice's host/server-reflexive UDP protocol; TURN subclasses wrap data.
        if type(protocol) is aioice.ice.StunProtocol and protocol.transport is not None:
            self._udp = protocol.transport
            self._addr = pair.remote_addr
            transport = protocol.transport
            self._mux = transport.mux if isinstance(transport, MuxTransport) else None
            self._sockaddr = pack_sockaddr(self._addr) if self._mux is not None else b""
        else:
            self._udp = None
            self._mux = None


# --- 6. For tests ---------------------------------------------------------------------------


def decoder_thread_started(receiver: RTCRtpReceiver) -> bool:
    """Whether aiortc started the decoder thread of ``receiver``."""
    return getattr(receiver, "_RTCRtpReceiver__decoder_thread") is not None  # noqa: B009
