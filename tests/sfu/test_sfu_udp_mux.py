"""The SFU with every peer connection on one shared UDP socket (rtc/udp_mux.py): real aiortc
peers on loopback get media and decode, RTP leaves in batches, and what the mux cannot
route is dropped and counted."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aioice.stun
import pytest

from rtc import aiortc_internals as ai
from rtc.udp_mux import MuxSocket
from server.sfu import Sfu, SfuConfig
from tests.sfu.sfu_testkit import LOOPBACK, LUMA, Client, hears, join, sees_video, server_pcs, wait_until

pytestmark = pytest.mark.network


@pytest.fixture
async def mux_sfu() -> AsyncIterator[Sfu]:
    s = Sfu(SfuConfig(host_addresses=tuple(LOOPBACK), ice_servers=(), udp_port=0))
    yield s
    await s.close()


def _the_mux(sfu: Sfu) -> MuxSocket:
    sockets = {id(m): m for pc in server_pcs(sfu, "r") for m in ai.udp_mux_of(pc)}
    assert len(sockets) == 1, "every server peer connection is on the one mux socket"
    return next(iter(sockets.values()))


def _client_transport(client: Client) -> asyncio.DatagramTransport:
    """The client's own aioice UDP transport (it has one; only the server is muxed)."""
    (gatherer,) = ai._ice_gatherers(client.pc)
    (protocol,) = gatherer._connection._protocols
    transport: asyncio.DatagramTransport = protocol.transport
    return transport


def _host_candidate_ports(sdp: str) -> set[int]:
    return {int(line.split()[5]) for line in sdp.splitlines() if line.startswith("a=candidate:")}


async def _three_way(sfu: Sfu, make_client: Callable[..., Client]) -> dict[str, Client]:
    sfu.open_room("r")
    clients = {
        name: await join(
            sfu, make_client, name, luma=LUMA[name], amplitude=9000, video_slots=2, audio_slots=2
        )
        for name in ("a", "b", "c")
    }
    for name, client in clients.items():
        others = [o for o in clients if o != name]
        await wait_until(lambda c=client, o=others: all(sees_video(c, p) for p in o), 15, f"{name} sees")
        await wait_until(lambda c=client, o=others: all(hears(c, p) for p in o), 15, f"{name} hears")
    return clients


async def test_peers_on_one_port_get_media_in_batches(
    mux_sfu: Sfu, make_client: Callable[..., Client]
) -> None:
    clients = await _three_way(mux_sfu, make_client)
    mux = _the_mux(mux_sfu)
    port = mux.transport.get_extra_info("sockname")[1]
    # every answer offers the same host candidate port, the mux's
    for c in clients.values():
        assert c.pc.remoteDescription is not None
        assert _host_candidate_ports(c.pc.remoteDescription.sdp) == {port}
    # the server has no UDP socket of its own per peer: each ICE protocol is on the mux
    assert mux.endpoints == 3
    stats = mux.stats
    assert stats.send_errors == {}
    # RTP left through sendmmsg, more than one datagram per call on average (each packet
    # of a publisher fans out to two subscribers)
    assert stats.batches > 0
    assert stats.batched_datagrams > stats.batches
    # and the subscribers' forwarded-packet counters agree that media flowed through it
    room = mux_sfu.room_stats("r")
    assert sum(p.packets_out for p in room.participants.values()) > 0


async def test_stray_datagrams_are_dropped_and_counted(
    mux_sfu: Sfu, make_client: Callable[..., Client]
) -> None:
    clients = await _three_way(mux_sfu, make_client)
    mux = _the_mux(mux_sfu)
    target = mux.transport.get_extra_info("sockname")[:2]
    before = (mux.stats.dropped_unknown_address, mux.stats.dropped_unknown_ufrag)

    stray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        stray.bind((LOOPBACK[0], 0))
        # RTP-looking, DTLS-looking and junk datagrams from an address no check passed on
        for payload in (b"\x80\x60" + os.urandom(200), b"\x16\xfe\xfd" + os.urandom(60), b"\xff"):
            stray.sendto(payload, target)
        # a binding request naming a ufrag nobody registered
        request = aioice.stun.Message(
            message_method=aioice.stun.Method.BINDING, message_class=aioice.stun.Class.REQUEST
        )
        request.attributes["USERNAME"] = "nobody:here"
        stray.sendto(bytes(request), target)
        await wait_until(
            lambda: (
                mux.stats.dropped_unknown_address >= before[0] + 3
                and mux.stats.dropped_unknown_ufrag >= before[1] + 1
            ),
            5,
            "stray datagrams counted",
        )
        assert mux.routes_to(stray.getsockname()) is None
    finally:
        stray.close()

    # nobody was hurt: media keeps decoding everywhere
    frames = {n: c.log(c.slot_of("a" if n != "a" else "b", "video")).frames for n, c in clients.items()}
    await wait_until(
        lambda: all(
            c.log(c.slot_of("a" if n != "a" else "b", "video")).frames >= frames[n] + 10
            for n, c in clients.items()
        ),
        10,
        "video keeps decoding",
    )
    assert {p.connection_state for p in mux_sfu.room_stats("r").participants.values()} == {"connected"}


async def test_a_closed_connection_no_longer_routes(mux_sfu: Sfu, make_client: Callable[..., Client]) -> None:
    clients = await _three_way(mux_sfu, make_client)
    mux = _the_mux(mux_sfu)
    c_udp = _client_transport(clients["c"])
    c_addr = c_udp.get_extra_info("sockname")[:2]
    assert mux.routes_to(c_addr) is not None  # learned from c's passed checks

    await mux_sfu.remove_participant("r", "c")
    assert mux.routes_to(c_addr) is None
    assert mux.endpoints == 2

    # what c's socket still sends is dropped at the mux, counted, and nobody else is hurt
    before = mux.stats.dropped_unknown_address
    c_udp.sendto(b"\x80\x60" + os.urandom(100), mux.transport.get_extra_info("sockname")[:2])
    await wait_until(lambda: mux.stats.dropped_unknown_address > before, 5, "c's datagram dropped")
    a = clients["a"]
    frames = a.log(a.slot_of("b", "video")).frames
    await wait_until(lambda: a.log(a.slot_of("b", "video")).frames >= frames + 10, 10, "a still sees b")

    # the last peers leaving close the socket; a new one binds again
    await mux_sfu.remove_participant("r", "a")
    await mux_sfu.remove_participant("r", "b")
    assert mux.transport.is_closing()
    await asyncio.sleep(0)
    # (the same names, as rejoining residents)
    a2 = await join(mux_sfu, make_client, "a", luma=LUMA["a"], video_slots=1)
    b2 = await join(mux_sfu, make_client, "b", luma=LUMA["b"], video_slots=1)
    await wait_until(lambda: sees_video(a2, "b") and sees_video(b2, "a"), 15, "a and b see each other")
    assert _the_mux(mux_sfu) is not mux


async def test_fixed_port_is_the_candidate_port(make_client: Callable[..., Client]) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((LOOPBACK[0], 0))
    port = probe.getsockname()[1]
    probe.close()
    sfu = Sfu(SfuConfig(host_addresses=tuple(LOOPBACK), ice_servers=(), udp_port=port))
    try:
        sfu.open_room("r")
        a = await join(sfu, make_client, "a", luma=LUMA["a"], amplitude=9000, video_slots=1, audio_slots=1)
        b = await join(sfu, make_client, "b", luma=LUMA["b"], amplitude=9000, video_slots=1, audio_slots=1)
        await wait_until(lambda: sees_video(a, "b") and sees_video(b, "a") and hears(a, "b"), 15, "media")
        for c in (a, b):
            assert c.pc.remoteDescription is not None
            assert _host_candidate_ports(c.pc.remoteDescription.sdp) == {port}
    finally:
        await sfu.close()


def test_the_setting_reaches_the_sfu(tmp_path: Path) -> None:
    from server.app import sfu_config
    from server.config import DEFAULT_RTC_UDP_PORT, Settings
    from server.errors import ConfigError

    def settings(value: str) -> Settings:
        return Settings.from_env({"MAEUL_DATA_DIR": str(tmp_path), "MAEUL_RTC_UDP_PORT": value})

    assert settings("").rtc_udp_port == DEFAULT_RTC_UDP_PORT
    assert Settings.from_env({"MAEUL_DATA_DIR": str(tmp_path)}).rtc_udp_port == DEFAULT_RTC_UDP_PORT
    assert settings("off").rtc_udp_port is None
    assert settings(" OFF ").rtc_udp_port is None
    assert settings("0").rtc_udp_port == 0
    assert settings("10000").rtc_udp_port == 10000
    for bad in ("-1", "65536", "ten", "10000,10001"):
        with pytest.raises(ConfigError, match="MAEUL_RTC_UDP_PORT"):
            settings(bad)
    config = sfu_config(settings("10000"))
    assert config.udp_port == 10000 and config.udp_mux is not None and config.udp_mux.port == 10000
    assert sfu_config(settings("off")).udp_mux is None
    with pytest.raises(ValueError, match="port"):
        SfuConfig(udp_port=70000)
