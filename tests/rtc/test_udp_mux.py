"""rtc._sendmmsg (the C binding) and the pieces of rtc/udp_mux.py that need no peer
connection; the mux with real aiortc peers is tests/sfu/test_sfu_udp_mux.py."""

from __future__ import annotations

import asyncio
import errno
import inspect
import os
import socket
from collections.abc import Callable, Iterator

import aioice
import aioice.candidate
import aioice.ice
import aioice.stun
import pytest

import rtc._sendmmsg as sendmmsg
from rtc.udp_mux import (
    MAX_BATCH,
    UdpMux,
    pack_sockaddr,
    stun_class_and_method,
    stun_username,
    unpack_sockaddr,
)

pytestmark = pytest.mark.network


@pytest.fixture
def receivers() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for s in socks:
        s.close()


def _receiver(
    socks: list[socket.socket], family: int = socket.AF_INET, host: str = "127.0.0.1"
) -> socket.socket:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(2)
    socks.append(s)
    return s


def test_one_call_sends_n_datagrams_to_n_addresses_byte_exact(receivers: list[socket.socket]) -> None:
    sender = _receiver(receivers)
    targets = [_receiver(receivers) for _ in range(8)]
    payloads = [os.urandom(1 + 150 * i) for i in range(8)]
    addrs = [pack_sockaddr(t.getsockname()) for t in targets]
    sent, errors = sendmmsg.send(sender.fileno(), payloads, addrs)
    assert (sent, errors) == (8, ())
    for target, payload in zip(targets, payloads, strict=True):
        data, source = target.recvfrom(65536)
        assert data == payload
        assert source == sender.getsockname()
        target.setblocking(False)
        with pytest.raises(BlockingIOError):  # exactly one each
            target.recv(65536)


def test_more_than_one_chunk(receivers: list[socket.socket]) -> None:
    sender = _receiver(receivers)
    targets = [_receiver(receivers) for _ in range(16)]
    count = sendmmsg.CHUNK + 40
    payloads = [i.to_bytes(4, "big") for i in range(count)]
    addrs = [pack_sockaddr(targets[i % 16].getsockname()) for i in range(count)]
    assert sendmmsg.send(sender.fileno(), payloads, addrs) == (count, ())
    # loopback delivers within the syscall: everything is queued at the receivers now
    got = []
    for t in targets:
        t.setblocking(False)
        try:
            while True:
                got.append(int.from_bytes(t.recv(16), "big"))
        except BlockingIOError:
            pass
    assert sorted(got) == list(range(count))


def test_a_refused_datagram_does_not_lose_the_others(receivers: list[socket.socket]) -> None:
    sender = _receiver(receivers)
    a, b = _receiver(receivers), _receiver(receivers)
    v6 = pack_sockaddr(("::1", 9))  # an IPv6 address on an IPv4 socket: refused
    payloads = [b"first", b"wrong family", b"x" * 70000, b"last"]
    addrs = [
        pack_sockaddr(a.getsockname()),
        v6,
        pack_sockaddr(b.getsockname()),
        pack_sockaddr(b.getsockname()),
    ]
    # 70000 bytes cannot be one UDP datagram (EMSGSIZE): refused too
    sent, errors = sendmmsg.send(sender.fileno(), payloads, addrs)
    assert sent == 2
    assert [index for index, _ in errors] == [1, 2]
    assert errors[1][1] == errno.EMSGSIZE
    assert errors[0][1] in (errno.EAFNOSUPPORT, errno.EINVAL)
    assert a.recv(100) == b"first"
    assert b.recv(100) == b"last"


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        sendmmsg.send(0, [b"a"], [])
    with pytest.raises(TypeError, match="must be bytes"):
        sendmmsg.send(0, ["a"], [pack_sockaddr(("127.0.0.1", 9))])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not a packed sockaddr"):
        sendmmsg.send(0, [b"a"], [b"\x02"])
    # a closed descriptor: every datagram refused and reported, nothing raised
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = s.fileno()
    s.close()
    sent, errors = sendmmsg.send(fd, [b"a", b"b"], [pack_sockaddr(("127.0.0.1", 9))] * 2)
    assert sent == 0 and [e for _, e in errors] == [errno.EBADF, errno.EBADF]


def test_ipv6(receivers: list[socket.socket]) -> None:
    try:
        sender = _receiver(receivers, socket.AF_INET6, "::1")
        target = _receiver(receivers, socket.AF_INET6, "::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    addr = target.getsockname()[:2]
    assert unpack_sockaddr(pack_sockaddr(addr)) == addr
    assert sendmmsg.send(sender.fileno(), [b"six"], [pack_sockaddr(addr)]) == (1, ())
    assert target.recv(10) == b"six"


def test_sockaddr_round_trip() -> None:
    for addr in (("127.0.0.1", 1), ("10.1.2.3", 65535), ("::1", 10000), ("2001:db8::7", 443)):
        assert unpack_sockaddr(pack_sockaddr(addr)) == addr


def test_stun_parsing_matches_aioice() -> None:
    request = aioice.stun.Message(
        message_method=aioice.stun.Method.BINDING, message_class=aioice.stun.Class.REQUEST
    )
    request.attributes["USERNAME"] = "abcd:efgh"
    request.attributes["PRIORITY"] = 12345
    request.add_message_integrity(b"password")
    data = bytes(request)
    assert stun_class_and_method(data) == (0x0000, 0x0001)
    assert stun_username(data) == "abcd:efgh"
    response = aioice.stun.Message(
        message_method=aioice.stun.Method.BINDING,
        message_class=aioice.stun.Class.RESPONSE,
        transaction_id=request.transaction_id,
    )
    assert stun_class_and_method(bytes(response)) == (0x0100, 0x0001)
    assert stun_username(bytes(response)) is None
    # not STUN, or a lying length: no answer, no exception
    assert stun_class_and_method(b"\x80" + bytes(30)) is None
    assert stun_class_and_method(data[:19]) is None
    broken = bytearray(data)
    broken[22:24] = (4000).to_bytes(2, "big")  # first attribute claims 4000 bytes
    assert stun_username(bytes(broken)) is None


async def test_aioice_internals_the_mux_relies_on() -> None:
    """rtc/aiortc_internals.py item 10: what _muxed_candidates and DirectRtpSender use."""
    assert aioice.__version__ == "0.13.0"
    conn = aioice.Connection(ice_controlling=False)
    assert conn._use_ipv4 and conn._use_ipv6 and conn.stun_server is None and conn._closing is False
    assert conn._protocols == [] and set(conn._components) == {1}
    assert isinstance(conn.local_username, str)
    protocol = aioice.ice.StunProtocol(conn)
    assert protocol.transactions == {}
    conn.remote_username = "peer"
    assert conn._valid_username(f"{conn.local_username}:peer")
    assert not conn._valid_username(f"{conn.local_username}:other")
    assert list(inspect.signature(aioice.ice.server_reflexive_candidate).parameters) == [
        "protocol",
        "stun_server",
    ]
    assert list(inspect.signature(aioice.ice.get_host_addresses).parameters) == ["use_ipv4", "use_ipv6"]
    params = inspect.signature(aioice.candidate.Candidate).parameters
    assert {"foundation", "component", "transport", "priority", "host", "port", "type"} <= set(params)
    # a StunProtocol's close() closes its transport and waits for connection_lost
    assert "self.transport.close()" in inspect.getsource(aioice.ice.StunProtocol.close)


async def test_the_queue_goes_out_once_per_turn_or_when_full(receivers: list[socket.socket]) -> None:
    # two receivers, so neither socket's default buffer overflows
    targets = [_receiver(receivers), _receiver(receivers)]
    mux = UdpMux(0)
    mux_socket = await mux.socket_for("127.0.0.1")
    assert await mux.socket_for("127.0.0.1") is mux_socket  # one per address
    try:
        sockaddrs = [pack_sockaddr(t.getsockname()) for t in targets]
        count = MAX_BATCH + 44
        for i in range(count):
            mux_socket.queue(i.to_bytes(2, "big") * 20, sockaddrs[i % 2])
        # a full queue left at once, without waiting for the turn to end
        assert (mux_socket.stats.batches, mux_socket.stats.batched_datagrams) == (1, MAX_BATCH)
        await asyncio.sleep(0)
        assert (mux_socket.stats.batches, mux_socket.stats.batched_datagrams) == (2, count)
        for k, target in enumerate(targets):
            got = [target.recv(100) for _ in range(k, count, 2)]
            assert got == [i.to_bytes(2, "big") * 20 for i in range(k, count, 2)]
        assert mux_socket.stats.send_errors == {} and mux_socket.stats.deferred == 0
    finally:
        mux_socket.transport.close()


class _Recorder(asyncio.DatagramProtocol):
    def __init__(self, remote_ufrag: str) -> None:
        self.remote_ufrag = remote_ufrag
        self.got: list[tuple[bytes, tuple[str, int]]] = []
        self.transactions: set[bytes] = set()
        self.lost = False

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.got.append((data, addr))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


def _request(username: str) -> aioice.stun.Message:
    message = aioice.stun.Message(
        message_method=aioice.stun.Method.BINDING, message_class=aioice.stun.Class.REQUEST
    )
    message.attributes["USERNAME"] = username
    return message


async def _until(cond: Callable[[], bool]) -> None:
    for _ in range(200):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_routing_by_ufrag_transaction_and_learned_address(receivers: list[socket.socket]) -> None:
    """Two endpoints that drew the same local ufrag: requests go by the USERNAME's remote part,
    responses by transaction id, and media only from addresses a passed check taught."""
    peer = _receiver(receivers)
    mux = UdpMux(0)
    mux_socket = await mux.socket_for("127.0.0.1")
    here = mux_socket.transport.get_extra_info("sockname")[:2]
    one, two = _Recorder("r1"), _Recorder("r2")
    t_one = mux_socket.attach("abcd", one, one.transactions.__contains__, lambda u: u == "abcd:r1")
    t_two = mux_socket.attach("abcd", two, two.transactions.__contains__, lambda u: u == "abcd:r2")
    try:
        peer.sendto(bytes(_request("abcd:r2")), here)
        peer.sendto(bytes(_request("abcd:r1")), here)
        peer.sendto(bytes(_request("abcd:r3")), here)  # neither: dropped
        await _until(lambda: len(one.got) == 1 and len(two.got) == 1)
        assert stun_username(two.got[0][0]) == "abcd:r2" and stun_username(one.got[0][0]) == "abcd:r1"
        await _until(lambda: mux_socket.stats.dropped_unknown_ufrag == 1)

        # media before any check passed: dropped
        peer.sendto(b"\x80" + bytes(20), here)
        await _until(lambda: mux_socket.stats.dropped_unknown_address == 1)
        assert mux_socket.routes_to(peer.getsockname()) is None

        # two answers the request (a binding success response): the address is two's now
        response = aioice.stun.Message(
            message_method=aioice.stun.Method.BINDING,
            message_class=aioice.stun.Class.RESPONSE,
            transaction_id=_request("x").transaction_id,
        )
        t_two.sendto(bytes(response), peer.getsockname())
        assert peer.recv(200) == bytes(response)
        assert mux_socket.routes_to(peer.getsockname()) is two
        peer.sendto(b"\x80media", here)
        await _until(lambda: two.got[-1][0] == b"\x80media")

        # one's own check gets a success response from a second address: learned for one
        other = _receiver(receivers)
        ask = _request("efgh:abcd")
        one.transactions.add(ask.transaction_id)
        t_one.sendto(bytes(ask), other.getsockname())
        assert other.recv(200) == bytes(ask)
        answer = aioice.stun.Message(
            message_method=aioice.stun.Method.BINDING,
            message_class=aioice.stun.Class.RESPONSE,
            transaction_id=ask.transaction_id,
        )
        other.sendto(bytes(answer), here)
        await _until(lambda: one.got[-1][0] == bytes(answer))
        assert mux_socket.routes_to(other.getsockname()) is one
        # an answer nobody asked for: dropped
        other.sendto(bytes(response), here)
        await _until(lambda: mux_socket.stats.dropped_unmatched_response == 1)

        # closing unregisters: two's address no longer routes, one still works, the socket stays
        t_two.close()
        assert two.lost and mux_socket.routes_to(peer.getsockname()) is None
        assert mux_socket.endpoints == 1 and not mux_socket.transport.is_closing()
        # alone on its ufrag, one gets every request naming it (aioice then checks the rest
        # of the USERNAME and MESSAGE-INTEGRITY itself)
        peer.sendto(bytes(_request("abcd:r2")), here)
        await _until(lambda: stun_username(one.got[-1][0]) == "abcd:r2")
        assert not any(stun_username(d) == "abcd:r2" for d, _ in two.got[1:])
        # the last one closing closes the socket
        t_one.close()
        assert mux_socket.transport.is_closing()
        assert mux_socket.closed is not None
        await asyncio.wait_for(mux_socket.closed, 2)
    finally:
        mux_socket.transport.close()
