"""A pipe between two SFUs (server/sfu/pipe.py): a publisher on SFU A is seen by subscribers on
SFU B through one UDP socket per end, with keyframe requests and NACKs going back across.

Two Sfu objects in one process, real aiortc peers, every socket on 127.0.0.1 (run in a
loopback-only namespace: scripts/run-tests.sh).
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any, SupportsBytes

import pytest

from rtc import aiortc_internals as ai
from rtc.codecs import vp8
from server.sfu import (
    ActiveSpeakerChanged,
    InvalidRequest,
    InvalidState,
    ParticipantLeft,
    Sfu,
    SfuConfig,
    SfuEvent,
    VideoDemandChanged,
    pipe,
)
from server.sfu.pipe import PIPE_VP8_PT, parse_feedback
from server.sfu.relay import InboundStream
from tests.sfu.sfu_testkit import LOOPBACK, LUMA, Client, hears, join, sees_video, wait_until

pytestmark = pytest.mark.network

PIPE = "pipe-1"


def pipe_sfu_config() -> SfuConfig:
    return SfuConfig(host_addresses=tuple(LOOPBACK), ice_servers=(), pli_min_interval=1.0)


@pytest.fixture
async def two_sfus() -> AsyncIterator[tuple[Sfu, Sfu, list[SfuEvent]]]:
    a, b = Sfu(pipe_sfu_config()), Sfu(pipe_sfu_config())
    events_b: list[SfuEvent] = []
    b.subscribe(events_b.append)
    a.open_room("r")
    b.open_room("r")
    yield a, b, events_b
    await a.close()
    await b.close()


async def connect_ends(a: Sfu, b: Sfu, proxy: _LossyProxy | None = None) -> None:
    """Open both ends and connect them (through ``proxy`` when given)."""
    addr_a = await a.open_pipe("r", PIPE, timeout=3.0)
    addr_b = await b.open_pipe("r", PIPE, timeout=3.0)
    if proxy is None:
        a.connect_pipe(PIPE, addr_b)
        b.connect_pipe(PIPE, addr_a)
    else:
        facing_a, facing_b = await proxy.start(addr_a, addr_b)
        a.connect_pipe(PIPE, facing_a)
        b.connect_pipe(PIPE, facing_b)


def _piped_video(b: Sfu) -> InboundStream:
    return b._room("r").get("a").inbound["video"]


async def test_publisher_on_a_is_seen_and_heard_on_b(
    two_sfus: tuple[Sfu, Sfu, list[SfuEvent]], make_client: Callable[..., Client]
) -> None:
    a, b, events_b = two_sfus
    await connect_ends(a, b)
    pub = await join(a, make_client, "a", luma=LUMA["a"], amplitude=12000)
    a.pipe_out(PIPE, "a")
    # a quiet local publisher on B: the piped voice must win B's loudest-speaker choice
    await join(b, make_client, "q", amplitude=0)
    sub = await join(b, make_client, "s", video_slots=1, audio_slots=2)
    await wait_until(lambda: sees_video(sub, "a") and hears(sub, "a"), 15, "s on B sees and hears a on A")
    assert pub.handle is not None

    # continuous frames, not a burst: the count keeps rising
    log = sub.log(sub.slot_of("a", "video"))
    before = log.frames
    await asyncio.sleep(2.0)
    assert log.frames >= before + 10, (before, log.frames)
    assert sub.log(sub.slot_of("a", "audio")).frames > 50

    # audio levels crossed: a is B's active speaker, over B's own quiet publisher
    await wait_until(lambda: ActiveSpeakerChanged("r", "a") in events_b, 10, "a speaks on B")
    assert b.active_speaker("r") == "a"

    stats_a, stats_b = a.pipe_stats(PIPE), b.pipe_stats(PIPE)
    assert stats_a.sending == ("a",) and stats_b.receiving == ("a",)
    assert stats_b.packets_received > 100 and stats_b.malformed == 0 and stats_b.stray_datagrams == 0
    # sent once: the pipe carries about what A received from a (plus announcements and RTCP)
    a_in = a.room_stats("r").participants["a"].packets_in
    assert stats_a.packets_sent <= a_in + 50 + stats_a.retransmitted
    # B's stats list the piped publisher like any other
    assert b.room_stats("r").participants["a"].published == ("audio", "video")

    # a pipe publisher is not sent on again (no loops)
    addr = await b.open_pipe("r", "pipe-2")
    assert addr[0] == LOOPBACK[0]
    with pytest.raises(InvalidRequest):
        b.pipe_out("pipe-2", "a")
    await b.close_pipe("pipe-2")

    # A closes its end: the peer is told, and a leaves B's room as a publisher leaving would
    pipe_b = b._pipes[PIPE]
    await a.close_pipe(PIPE)
    await wait_until(lambda: "a" not in b._room("r").participants, 5, "a leaves B")
    assert ParticipantLeft("r", "a", "left") in events_b
    assert sub.slot_of("a", "video") is None
    # B's end closed too, and left no task behind; A's publisher no longer feeds a pipe
    await wait_until(lambda: all(t.done() for t in pipe_b._tasks), 5, "B's pipe tasks end")
    with pytest.raises(InvalidState):
        b.pipe_stats(PIPE)
    assert all(not s.relays for s in a._room("r").get("a").inbound.values())


async def test_an_announcement_sent_before_the_peer_connected_is_asked_for_again(
    two_sfus: tuple[Sfu, Sfu, list[SfuEvent]],
    make_client: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The two ends of a new pipe are connected by two requests at once: A may announce a and
    send its RTP before B knows its peer, and B drops all of it (stray). B's first RTP of an
    SSRC it has no announcement for makes it ask (``resend``), and A announces again at once;
    the periodic announcement (made a minute here) is not what brings a in."""
    monkeypatch.setattr(pipe, "ANNOUNCE_INTERVAL_S", 60.0)
    a, b, _ = two_sfus
    addr_a = await a.open_pipe("r", PIPE, timeout=30.0)
    addr_b = await b.open_pipe("r", PIPE, timeout=30.0)
    a.connect_pipe(PIPE, addr_b)
    await join(a, make_client, "a", luma=LUMA["a"], amplitude=12000)
    a.pipe_out(PIPE, "a")
    await wait_until(lambda: b.pipe_stats(PIPE).stray_datagrams >= 20, 10, "a's announcement and RTP lost")
    assert "a" not in b._room("r").participants
    b.connect_pipe(PIPE, addr_a)
    sub = await join(b, make_client, "s", video_slots=1, audio_slots=1)
    await wait_until(lambda: "a" in b._room("r").participants, 10, "a admitted on B")
    await wait_until(lambda: sees_video(sub, "a") and hears(sub, "a"), 15, "s on B sees and hears a")
    stats = b.pipe_stats(PIPE)
    assert stats.unknown_ssrc >= 1 and stats.malformed == 0, stats


async def test_keyframe_request_from_b_reaches_the_publisher_on_a(
    two_sfus: tuple[Sfu, Sfu, list[SfuEvent]], make_client: Callable[..., Client]
) -> None:
    a, b, _ = two_sfus
    await connect_ends(a, b)
    await join(a, make_client, "a", luma=LUMA["a"])
    a.pipe_out(PIPE, "a")
    sub = await join(b, make_client, "s", video_slots=1)
    await wait_until(lambda: sees_video(sub, "a"), 15, "s on B sees a")
    keyframes: list[int] = []
    _piped_video(b).taps.append(
        lambda stream, packet: (
            keyframes.append(packet.sequence_number) if vp8.is_keyframe_start(packet.payload) else None
        )
    )
    # past the first keyframes (aiortc's encoder sends no other for minutes on its own)
    await asyncio.sleep(2.5)
    keyframes.clear()
    plis_before = a.room_stats("r").participants["a"].keyframe_requests_sent
    requests_before = a.pipe_stats(PIPE).keyframe_requests

    # the subscriber on B asks for a picture (as a browser's decoder does after a loss)
    slot = b._room("r").get("s").video_slots[0]
    receiver = next(t.receiver for t in sub.pc.getTransceivers() if t.kind == "video")
    await receiver._send_rtcp_pli(slot._ssrc)

    await wait_until(lambda: bool(keyframes), 10, "a keyframe from a reaches B")
    assert a.pipe_stats(PIPE).keyframe_requests > requests_before
    assert a.room_stats("r").participants["a"].keyframe_requests_sent > plis_before


async def test_video_demand_on_b_crosses_back_to_a(
    two_sfus: tuple[Sfu, Sfu, list[SfuEvent]], make_client: Callable[..., Client]
) -> None:
    a, b, events_b = two_sfus
    events_a: list[SfuEvent] = []
    a.subscribe(events_a.append)
    await connect_ends(a, b)
    await join(a, make_client, "a", luma=LUMA["a"])  # nobody on A watches a
    a.pipe_out(PIPE, "a")
    sub = await join(b, make_client, "s", video_slots=1)
    await wait_until(lambda: sees_video(sub, "a"), 15, "s on B sees a")
    track = a._room("r").get("a").inbound["video"]
    await wait_until(lambda: track.remote_layers == {PIPE: frozenset({0})}, 5, "B says it takes a's video")
    # B's subscriber's estimate (REMB) reaches A and caps the single-layer publisher there, as a
    # local subscriber's would
    slot_b = b._room("r").get("s").video_slots[0]
    await wait_until(lambda: PIPE in track.remote_remb and slot_b.fresh_remb() is not None, 10, "REMB")
    remb = track._remb_bitrate()
    assert remb is not None and remb <= track.remote_remb[PIPE][0]
    demand = [e.wanted for e in events_a if isinstance(e, VideoDemandChanged)]
    assert demand[-1:] == [True], demand  # (unwanted when it joined; wanted once piped)
    events_a.clear()

    # s on B stops watching a: A hears of it and says a's camera is not wanted any more
    assert sub.handle is not None
    sub.handle.set_visible_videos([])
    await wait_until(lambda: VideoDemandChanged("r", "a", False) in events_a, 5, "a unwanted on A")
    # (B, where a does not publish, tells no page to pause a's camera)
    assert not any(isinstance(e, VideoDemandChanged) and e.participant_id == "a" for e in events_b)
    sub.handle.set_visible_videos(None)
    await wait_until(lambda: VideoDemandChanged("r", "a", True) in events_a, 5, "a wanted again on A")
    frames = sub.log(sub.slot_of("a", "video")).frames
    await wait_until(lambda: sub.log(sub.slot_of("a", "video")).frames > frames + 5, 10, "s sees a again")


class _LossyProxy:
    """Two UDP sockets between the ends; drops one chosen video packet from A to B, once."""

    def __init__(self) -> None:
        self.dropped: tuple[int, int] | None = None
        self._video_seen = 0
        self.to_a: asyncio.DatagramTransport | None = None
        self.to_b: asyncio.DatagramTransport | None = None

    async def start(
        self, addr_a: tuple[str, int], addr_b: tuple[str, int]
    ) -> tuple[tuple[str, int], tuple[str, int]]:
        loop = asyncio.get_running_loop()
        proxy = self

        class FacingA(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
                if proxy.should_drop(data):
                    return
                assert proxy.to_b is not None
                proxy.to_b.sendto(data, addr_b)

        class FacingB(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
                assert proxy.to_a is not None
                proxy.to_a.sendto(data, addr_a)

        self.to_a, _ = await loop.create_datagram_endpoint(FacingA, local_addr=(LOOPBACK[0], 0))
        self.to_b, _ = await loop.create_datagram_endpoint(FacingB, local_addr=(LOOPBACK[0], 0))
        # (the socket each end is to send to and hear from)
        return self.to_a.get_extra_info("sockname")[:2], self.to_b.get_extra_info("sockname")[:2]

    def should_drop(self, data: bytes) -> bool:
        if self.dropped is not None or len(data) < 12 or data[0] >> 6 != 2 or 192 <= data[1] <= 223:
            return False
        if data[1] & 0x7F != PIPE_VP8_PT:
            return False
        self._video_seen += 1
        if self._video_seen < 60:
            return False
        seq, _, ssrc = struct.unpack_from("!HLL", data, 2)
        self.dropped = (ssrc, seq)
        return True

    def close(self) -> None:
        for t in (self.to_a, self.to_b):
            if t is not None:
                t.close()


async def test_a_packet_lost_on_the_pipe_is_recovered_by_nack(
    two_sfus: tuple[Sfu, Sfu, list[SfuEvent]], make_client: Callable[..., Client]
) -> None:
    a, b, _ = two_sfus
    proxy = _LossyProxy()
    try:
        await connect_ends(a, b, proxy)
        await join(a, make_client, "a", luma=LUMA["a"])
        a.pipe_out(PIPE, "a")
        sub = await join(b, make_client, "s", video_slots=1)
        await wait_until(lambda: proxy.dropped is not None, 15, "the proxy drops one video packet")
        assert proxy.dropped is not None
        _, seq = proxy.dropped
        stream = _piped_video(b)
        # B saw the gap, NACKed it across the pipe, and A answered from its cache
        await wait_until(lambda: stream.cached(seq) is not None, 5, "the dropped packet reaches B")
        assert stream.nacks_sent >= 1
        assert a.pipe_stats(PIPE).retransmitted >= 1
        await wait_until(lambda: sees_video(sub, "a"), 15, "s on B sees a")
    finally:
        proxy.close()


async def test_bad_datagrams_are_dropped_and_a_silent_peer_removes_its_publishers(
    two_sfus: tuple[Sfu, Sfu, list[SfuEvent]], make_client: Callable[..., Client]
) -> None:
    _, b, events_b = two_sfus
    addr_b = await b.open_pipe("r", PIPE, timeout=1.5)
    loop = asyncio.get_running_loop()
    peer, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(LOOPBACK[0], 0))
    stranger, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(LOOPBACK[0], 0))
    try:
        b.connect_pipe(PIPE, peer.get_extra_info("sockname")[:2])
        local = await join(b, make_client, "local", amplitude=0)
        assert local.handle is not None

        def announce(publishers: dict[str, Any], room: str = "r") -> bytes:
            return json.dumps({"type": "announce", "v": 1, "room": room, "publishers": publishers}).encode()

        # from an address that is not the peer's: dropped and counted, even a valid announcement
        stranger.sendto(announce({"x": {"audio": 1234}}), addr_b)
        await wait_until(lambda: b.pipe_stats(PIPE).stray_datagrams == 1, 5, "the stray datagram counted")
        # from the peer, but malformed: each dropped and counted, none crashes the pipe
        bad = [
            b"",
            b"\x00\x01\x02",
            b"\x80",  # too short for RTP
            b"\x80\xc9\x00\x09",  # RTCP whose length runs past the datagram
            b"{not json",
            b"[]",
            announce({"x": {"audio": 1234}}, room="another-room"),
            announce({"x": {"audio": -1}}),
            announce({"x": {"video": [1, 2]}}),  # two layers without rids
            announce({"x": {"audio": 5, "video": [5]}}),  # one ssrc twice
            json.dumps({"type": "announce", "v": 1, "room": "r", "publishers": {}, "resend": "yes"}).encode(),
        ]
        for data in bad:
            peer.sendto(data, addr_b)
        await wait_until(
            lambda: b.pipe_stats(PIPE).malformed >= len(bad) - 1, 5, "the malformed ones counted"
        )
        assert "x" not in b._room("r").participants
        # an id already in the room is refused, not taken over
        peer.sendto(announce({"local": {"audio": 99}}), addr_b)
        await wait_until(lambda: b.pipe_stats(PIPE).refused_publishers == 1, 5, "the clash refused")
        assert b._room("r").participants["local"].peer_connection is not None

        # a valid announcement admits the publisher; its RTP is taken
        peer.sendto(announce({"x": {"audio": 1234}}), addr_b)
        await wait_until(lambda: "x" in b._room("r").participants, 5, "x admitted on B")
        # x publishes on its own SFU: it cannot be connected here
        with pytest.raises(InvalidState):
            await b.handle_offer("r", "x", "v=0")
        # removed from B's room by someone else, it comes back with the next announcement
        first = b._room("r").get("x")
        await b.remove_participant("r", "x")
        peer.sendto(announce({"x": {"audio": 1234}}), addr_b)
        await wait_until(lambda: b._room("r").participants.get("x") not in (None, first), 5, "x back")
        opus = ai.RtpPacket(
            payload_type=111, sequence_number=1, timestamp=0, ssrc=1234, payload=b"\xf8\xff\xfe"
        )
        for i in range(5):
            opus.sequence_number = 100 + i
            peer.sendto(opus.serialize(), addr_b)
        stream = b._room("r").get("x").inbound["audio"]
        await wait_until(lambda: stream.packets == 5, 5, "x's packets taken")
        # RTP of an ssrc nobody announced: dropped and counted
        opus.ssrc = 4321
        peer.sendto(opus.serialize(), addr_b)
        await wait_until(lambda: b.pipe_stats(PIPE).unknown_ssrc == 1, 5, "unknown ssrc counted")

        # the peer goes silent: the pipe closes after its timeout and x leaves B's room
        await wait_until(lambda: "x" not in b._room("r").participants, 6, "x removed after the timeout")
        assert ParticipantLeft("r", "x", "pipe-timeout") in events_b
        with pytest.raises(InvalidState):  # the pipe closed itself
            b.pipe_stats(PIPE)
        assert "local" in b._room("r").participants  # the room goes on
    finally:
        peer.close()
        stranger.close()


async def test_pipe_addresses_must_be_internal(two_sfus: tuple[Sfu, Sfu, list[SfuEvent]]) -> None:
    _, b, _ = two_sfus
    await b.open_pipe("r", PIPE)
    for bad in [("8.8.8.8", 5000), ("example.org", 5000), ("127.0.0.1", 0), ("0.0.0.0", 5000), "x"]:
        with pytest.raises(InvalidRequest):
            b.connect_pipe(PIPE, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        await b.open_pipe("r", "other", host="8.8.8.8")


def test_feedback_across_the_pipe_is_read_from_a_compound() -> None:
    """What the sending end reads of the RTCP its peer sends: keyframe requests (PLI, FIR),
    NACKed sequence numbers (the bitmask expanded, across the 16-bit wrap) and REMB; receiver
    reports are skipped; a compound whose lengths run past the datagram is refused."""
    packets: list[SupportsBytes] = [
        ai.RtcpRrPacket(ssrc=7, reports=[]),
        ai.RtcpPsfbPacket(fmt=ai.RTCP_PSFB_PLI, ssrc=7, media_ssrc=1001),
        _NackAcrossTheWrap(),
        ai.RtcpPsfbPacket(fmt=ai.RTCP_PSFB_FIR, ssrc=7, media_ssrc=0, fci=struct.pack("!LB3x", 1003, 1)),
        ai.RtcpPsfbPacket(fmt=ai.RTCP_PSFB_APP, ssrc=7, media_ssrc=0, fci=ai.pack_remb_fci(300_000, [1004])),
    ]
    compound = b"".join(bytes(p) for p in packets)
    keyframes, nacks, rembs = parse_feedback(compound)
    assert keyframes == [1001, 1003]
    assert sorted(nacks[1002]) == [2, 65534, 65535]
    assert rembs == {1004: 300_000}
    with pytest.raises(ValueError):
        parse_feedback(compound[:-3])
    with pytest.raises(ValueError):
        parse_feedback(b"\x80\xc9\x00\x09")


class _NackAcrossTheWrap:
    """A generic NACK (RFC 4585) of 65534 with 65535 and 2 in its bitmask (aiortc's own
    serializer cannot write one across the wrap)."""

    def __bytes__(self) -> bytes:
        return struct.pack("!BBHLLHH", 0x81, 205, 3, 7, 1002, 65534, 0b1001)
