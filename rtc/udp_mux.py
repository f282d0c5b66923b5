"""One UDP socket per local address for every peer connection of a process (a UDP mux).

aioice opens a socket per peer connection, so the copies of one forwarded packet leave
through as many sockets as it has subscribers: one ``sendto`` each. With every peer's host
candidate on one shared socket (as Jitsi Videobridge's single port 10000, LiveKit's UDP mux
and mediasoup's WebRtcServer do), the copies can leave in one ``sendmmsg(2)``
(:mod:`rtc._sendmmsg`), and the county's firewall needs one rule.

Incoming datagrams are demultiplexed here, before aioice sees them:

* a STUN binding **request** by the local ufrag in its USERNAME (``local:remote``, RFC 8445
  7.2.2), to the endpoint that registered that ufrag;
* a STUN **response** by the remote address when it is known, else to the endpoint with an
  outstanding transaction of that id (96 random bits nobody off the path can guess);
* anything else (DTLS, SRTP, SRTCP, STUN indications) by the remote address.

An address routes to an endpoint once a check on it passed: the endpoint sent a binding
success response to it (aioice answers only requests whose MESSAGE-INTEGRITY verified) or got
a success response from it to one of its own transactions. A datagram nothing claims is
dropped and counted (:attr:`MuxStats`), never raised. Closing an endpoint's transport
unregisters its ufrag and its addresses; the socket closes with its last endpoint.

This module knows nothing of aioice: :mod:`rtc.aiortc_internals` puts aioice's own
``StunProtocol`` on an :class:`MuxTransport` (see its item 10).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

try:
    import rtc._sendmmsg as _sendmmsg
except ImportError:  # not built (a checkout without `pip install -e .`): one sendto per datagram
    _sendmmsg = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

Address = tuple[str, int]

#: STUN (RFC 8489): magic cookie, the two class bits of the message type, USERNAME.
_STUN_COOKIE = b"\x21\x12\xa4\x42"
_CLASS_MASK = 0x0110
_CLASS_REQUEST = 0x0000
_CLASS_SUCCESS = 0x0100
_CLASS_ERROR = 0x0110
_METHOD_MASK = 0x3EEF
_METHOD_BINDING = 0x0001
_ATTR_USERNAME = 0x0006
#: Receive buffer asked for the shared socket; the kernel caps it at net.core.rmem_max
#: (raise that on a server: every peer's media now arrives on one socket).
RECEIVE_BUFFER = 4 * 1024 * 1024
SEND_BUFFER = 4 * 1024 * 1024
#: A queue this long is sent at once, not at the end of the turn: a loop that fell behind
#: handles many packets in one turn, and every queued copy is a live 1.2 KB bytes object
#: (the heap keeps its high-water mark). 256 is four packets' fan-out to 64 subscribers;
#: beyond that the syscall entry it saves is already spread thin.
MAX_BATCH = 256


def pack_sockaddr(addr: Address) -> bytes:
    """``(host, port)`` as the kernel's ``struct sockaddr_in`` / ``sockaddr_in6`` bytes,
    for :func:`rtc._sendmmsg.send`. An IPv6 host may carry a ``%scope``."""
    host, port = addr[0], addr[1]
    if ":" in host:
        name, _, scope = host.partition("%")
        scope_id = 0
        if scope:
            scope_id = int(scope) if scope.isdigit() else socket.if_nametoindex(scope)
        return (
            struct.pack("=H", socket.AF_INET6)
            + struct.pack("!HI", port, 0)
            + socket.inet_pton(socket.AF_INET6, name)
            + struct.pack("=I", scope_id)
        )
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(host) + bytes(8)


def stun_class_and_method(data: bytes) -> tuple[int, int] | None:
    """(class bits, method) of a STUN message, None when ``data`` is not one."""
    if len(data) < 20 or data[0] > 3 or data[4:8] != _STUN_COOKIE:
        return None
    kind = (data[0] << 8) | data[1]
    return kind & _CLASS_MASK, kind & _METHOD_MASK


def stun_username(data: bytes) -> str | None:
    """The USERNAME attribute of a STUN message (a bounded walk of its attributes)."""
    end = min(len(data), 20 + ((data[2] << 8) | data[3]))
    pos = 20
    while pos + 4 <= end:
        attr_type = (data[pos] << 8) | data[pos + 1]
        length = (data[pos + 2] << 8) | data[pos + 3]
        value_end = pos + 4 + length
        if value_end > end:
            return None
        if attr_type == _ATTR_USERNAME:
            try:
                return data[pos + 4 : value_end].decode("utf8")
            except UnicodeDecodeError:
                return None
        pos = value_end + (-length % 4)
    return None


@dataclass
class MuxStats:
    """What one mux socket did with what it could not hand on, and its batched sends."""

    #: non-STUN datagrams from an address no check passed on
    dropped_unknown_address: int = 0
    #: STUN requests whose USERNAME names no registered ufrag (or has none)
    dropped_unknown_ufrag: int = 0
    #: STUN responses that match neither a known address nor an outstanding transaction
    dropped_unmatched_response: int = 0
    #: datagrams too short or malformed to route
    dropped_malformed: int = 0
    #: batched datagrams the kernel refused, by errno name (EAGAIN, ENOBUFS, EINVAL ...)
    send_errors: dict[str, int] = field(default_factory=dict)
    #: batched datagrams the socket could not take at once (EAGAIN), handed to the
    #: transport's own buffer to go out when it is writable
    deferred: int = 0
    #: datagrams dropped from the queue because the socket closed before the flush
    dropped_on_close: int = 0
    batches: int = 0
    batched_datagrams: int = 0

    def add_send_error(self, err: int, count: int = 1) -> None:
        name = errno.errorcode.get(err, str(err))
        self.send_errors[name] = self.send_errors.get(name, 0) + count


class _Endpoint:
    __slots__ = ("ufrag", "protocol", "owns_transaction", "accepts_username", "addresses", "transport")

    def __init__(
        self,
        ufrag: str,
        protocol: asyncio.DatagramProtocol,
        owns_transaction: Callable[[bytes], bool],
        accepts_username: Callable[[str], bool],
    ) -> None:
        self.ufrag = ufrag
        self.protocol = protocol
        self.owns_transaction = owns_transaction
        self.accepts_username = accepts_username
        self.addresses: set[Address] = set()
        self.transport: MuxTransport | None = None


class MuxTransport(asyncio.DatagramTransport):
    """One endpoint's view of the shared socket, in place of the socket aioice would open.

    ``sendto`` sends at once (STUN, DTLS, RTCP); :meth:`queue` is the batched path for RTP.
    ``close`` unregisters the endpoint and tells its protocol the connection is lost.
    """

    def __init__(self, mux: MuxSocket, endpoint: _Endpoint) -> None:
        super().__init__()
        self._mux = mux
        self._endpoint = endpoint
        self._closing = False

    @property
    def mux(self) -> MuxSocket:
        return self._mux

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._mux.transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def sendto(self, data: Any, addr: Any = None) -> None:
        if self._closing:
            return
        addr = (addr[0], addr[1])
        # Our success answer to a binding request: aioice sends one only after the request's
        # MESSAGE-INTEGRITY verified, so the check on this address passed.
        if len(data) >= 20 and data[0] == 0x01 and data[1] == 0x01 and data[4:8] == _STUN_COOKIE:
            self._mux.learn(addr, self._endpoint)
        self._mux.send_now(bytes(data), addr)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._mux.detach(self._endpoint)
        self._endpoint.protocol.connection_lost(None)

    def abort(self) -> None:
        self.close()


class MuxSocket(asyncio.DatagramProtocol):
    """The shared socket on one local address: routing table, send queue, counters."""

    def __init__(self, owner: UdpMux, address: str) -> None:
        self._owner = owner
        self.address = address
        self.transport: asyncio.DatagramTransport = None  # type: ignore[assignment]
        self.fd = -1
        self.stats = MuxStats()
        # usually one endpoint per ufrag; aioice's ufrags are 4 random characters, so two
        # connections may share one (then the USERNAME's remote part tells them apart)
        self._by_ufrag: dict[str, list[_Endpoint]] = {}
        self._count = 0
        self._by_addr: dict[Address, _Endpoint] = {}
        self._payloads: list[bytes] = []
        self._addrs: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed: asyncio.Future[None] | None = None

    # -- asyncio protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._loop = asyncio.get_running_loop()
        self.closed = self._loop.create_future()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.fd = sock.fileno()
            for option, size in ((socket.SO_RCVBUF, RECEIVE_BUFFER), (socket.SO_SNDBUF, SEND_BUFFER)):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, size)
                except OSError as exc:
                    logger.info("UDP mux on %s: could not set buffer %s: %s", self.address, option, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._drop_queue()
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like, reported on the next socket call: nothing to route
        logger.debug("UDP mux on %s: %s", self.address, exc)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        source = (addr[0], addr[1])
        endpoint = self._by_addr.get(source)
        if data and data[0] < 4:
            endpoint = self._route_stun(data, source, endpoint)
            if endpoint is None:
                return
        elif endpoint is None:
            self.stats.dropped_unknown_address += 1
            return
        endpoint.protocol.datagram_received(data, source)

    def _route_stun(self, data: bytes, source: Address, endpoint: _Endpoint | None) -> _Endpoint | None:
        kind = stun_class_and_method(data)
        if kind is None:
            self.stats.dropped_malformed += 1
            return None
        cls, method = kind
        if cls == _CLASS_REQUEST:
            username = stun_username(data)
            same = self._by_ufrag.get(username.partition(":")[0], ()) if username else ()
            target = None
            if len(same) == 1:
                target = same[0]
            elif same:
                assert username is not None
                target = next((e for e in same if e.accepts_username(username)), None)
            if target is None:
                self.stats.dropped_unknown_ufrag += 1
            return target
        if cls == _CLASS_SUCCESS or cls == _CLASS_ERROR:
            txid = data[8:20]
            if endpoint is None or not endpoint.owns_transaction(txid):
                endpoint = next(
                    (e for same in self._by_ufrag.values() for e in same if e.owns_transaction(txid)), None
                )
            if endpoint is None:
                self.stats.dropped_unmatched_response += 1
            elif cls == _CLASS_SUCCESS and method == _METHOD_BINDING:
                # the endpoint's own check on this address passed
                self.learn(source, endpoint)
            return endpoint
        if endpoint is None:  # an indication from nowhere we know
            self.stats.dropped_unknown_address += 1
        return endpoint

    # -- endpoints -----------------------------------------------------------------------

    @property
    def endpoints(self) -> int:
        return self._count

    def attach(
        self,
        ufrag: str,
        protocol: asyncio.DatagramProtocol,
        owns_transaction: Callable[[bytes], bool],
        accepts_username: Callable[[str], bool],
    ) -> MuxTransport:
        """Register ``protocol`` for binding requests to ``ufrag``; returns its transport
        (not yet given to the protocol: the caller calls ``connection_made``).
        ``owns_transaction(id)``: whether a STUN response with this transaction id answers
        one of its requests; ``accepts_username("local:remote")``: whether a request is for
        it, asked only when several endpoints share a local ufrag."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError(f"UDP mux on {self.address} is closed")
        endpoint = _Endpoint(ufrag, protocol, owns_transaction, accepts_username)
        endpoint.transport = MuxTransport(self, endpoint)
        self._by_ufrag.setdefault(ufrag, []).append(endpoint)
        self._count += 1
        return endpoint.transport

    def detach(self, endpoint: _Endpoint) -> None:
        same = self._by_ufrag.get(endpoint.ufrag, [])
        if endpoint in same:
            same.remove(endpoint)
            self._count -= 1
            if not same:
                del self._by_ufrag[endpoint.ufrag]
        for addr in endpoint.addresses:
            if self._by_addr.get(addr) is endpoint:
                del self._by_addr[addr]
        endpoint.addresses.clear()
        if not self._count:
            self._owner._socket_unused(self)

    def learn(self, addr: Address, endpoint: _Endpoint) -> None:
        """Route datagrams from ``addr`` to ``endpoint`` (a check on it passed)."""
        if endpoint not in self._by_ufrag.get(endpoint.ufrag, ()):
            return  # closed meanwhile
        previous = self._by_addr.get(addr)
        if previous is endpoint:
            return
        if previous is not None:
            # The peer's address now belongs to another connection (a NAT reused the port
            # after the old one closed, or a rejoin): the newest passed check wins.
            previous.addresses.discard(addr)
        self._by_addr[addr] = endpoint
        endpoint.addresses.add(addr)

    def routes_to(self, addr: Address) -> asyncio.DatagramProtocol | None:
        """The protocol datagrams from ``addr`` go to now (None: they are dropped)."""
        endpoint = self._by_addr.get((addr[0], addr[1]))
        return endpoint.protocol if endpoint is not None else None

    # -- sending -------------------------------------------------------------------------

    def send_now(self, data: bytes, addr: Address) -> None:
        self.transport.sendto(data, addr)

    def queue(self, data: bytes, sockaddr: bytes) -> None:
        """Send ``data`` to ``sockaddr`` (:func:`pack_sockaddr`) with the others queued in
        this event-loop turn, in one ``sendmmsg``. Synchronous: nothing is awaited."""
        payloads = self._payloads
        payloads.append(data)
        self._addrs.append(sockaddr)
        if len(payloads) >= MAX_BATCH:
            self.flush()
        elif self._flush_handle is None:
            loop = self._loop
            assert loop is not None
            self._flush_handle = loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send everything queued now (also called by the event loop once per turn)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        payloads, addrs = self._payloads, self._addrs
        if not payloads:
            return
        self._payloads, self._addrs = [], []
        if self.fd < 0 or self.transport.is_closing():
            self.stats.dropped_on_close += len(payloads)
            return
        self.stats.batches += 1
        self.stats.batched_datagrams += len(payloads)
        if _sendmmsg is not None:
            _, errors = _sendmmsg.send(self.fd, payloads, addrs)
            for index, err in errors:
                if err == errno.EAGAIN or err == errno.EWOULDBLOCK:
                    # The socket's send buffer is full (one socket now carries what 64 did:
                    # raise net.core.wmem_max). The transport keeps what it cannot send yet
                    # and writes it when the socket is writable again, as with a plain sendto.
                    self.stats.deferred += 1
                    self.transport.sendto(payloads[index], unpack_sockaddr(addrs[index]))
                else:
                    self.stats.add_send_error(err)
            return
        for data, sockaddr in zip(payloads, addrs, strict=True):  # pragma: no cover - fallback
            self.transport.sendto(data, unpack_sockaddr(sockaddr))

    def _drop_queue(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._payloads:
            self.stats.dropped_on_close += len(self._payloads)
            self._payloads, self._addrs = [], []


def unpack_sockaddr(sockaddr: bytes) -> tuple[Any, ...]:
    """The inverse of :func:`pack_sockaddr`, as ``socket.sendto`` takes it: ``(host, port)``,
    or for IPv6 with a scope ``(host, port, 0, scope_id)``."""
    (family,) = struct.unpack_from("=H", sockaddr)
    (port,) = struct.unpack_from("!H", sockaddr, 2)
    if family == socket.AF_INET6:
        host = socket.inet_ntop(socket.AF_INET6, sockaddr[8:24])
        (scope_id,) = struct.unpack_from("=I", sockaddr, 24)
        return (host, port, 0, scope_id) if scope_id else (host, port)
    return socket.inet_ntoa(sockaddr[4:8]), port


class UdpMux:
    """The shared sockets of one process, one per local address, all on ``port``.

    ``port`` 0 binds an ephemeral port per address. Sockets are bound on first use in the
    running event loop and closed when their last endpoint closes, so no ``close()`` call
    is needed (and a later peer rebinds the same fixed port).
    """

    def __init__(self, port: int) -> None:
        if not 0 <= port <= 65535:
            raise ValueError("UDP mux port must be in [0, 65535]")
        self.port = port
        if _sendmmsg is None:
            logger.warning("rtc._sendmmsg is not built (pip install -e .): the UDP mux sends one by one")
        self._sockets: dict[str, MuxSocket] = {}
        self._binding: dict[str, asyncio.Future[MuxSocket]] = {}

    def sockets(self) -> list[MuxSocket]:
        return list(self._sockets.values())

    def stats(self) -> dict[str, MuxStats]:
        return {address: s.stats for address, s in self._sockets.items()}

    async def socket_for(self, address: str) -> MuxSocket:
        """The open mux socket on ``address`` in the running loop, bound if needed."""
        loop = asyncio.get_running_loop()
        while True:
            existing = self._sockets.get(address)
            if existing is None:
                break
            if existing._loop is loop and not existing.transport.is_closing():
                return existing
            # closing (its last peer just left; a fixed port is free once it is closed) or
            # left from an earlier event loop: let it go
            if existing._loop is loop and existing.closed is not None:
                await existing.closed
            elif not existing.transport.is_closing():
                existing.transport.close()
            if self._sockets.get(address) is existing:
                del self._sockets[address]
        pending = self._binding.get(address)
        if pending is not None and pending.get_loop() is loop:
            return await asyncio.shield(pending)
        future: asyncio.Future[MuxSocket] = loop.create_future()
        self._binding[address] = future
        try:
            _, mux_socket = await loop.create_datagram_endpoint(
                lambda: MuxSocket(self, address), local_addr=(address, self.port)
            )
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it themselves
            raise
        finally:
            if self._binding.get(address) is future:
                del self._binding[address]
        self._sockets[address] = mux_socket
        future.set_result(mux_socket)
        logger.info("UDP mux listening on %s", mux_socket.transport.get_extra_info("sockname"))
        return mux_socket

    def _socket_unused(self, mux_socket: MuxSocket) -> None:
        # stays in _sockets while closing, so socket_for waits for the port to be free
        mux_socket.flush()
        mux_socket.transport.close()
