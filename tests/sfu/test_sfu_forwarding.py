"""End-to-end SFU tests: real aiortc peers, real RTP over loopback."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import aiortc.rtcrtpreceiver
import pytest
from aiortc import RTCIceTransport

from rtc import aiortc_internals as ai
from server.sfu import (
    ActiveSpeakerChanged,
    Sfu,
    SfuConfig,
    SfuEvent,
    VideoDemandChanged,
)
from tests.sfu.sfu_testkit import LUMA, Client, hears, join, sees_video, server_pcs, wait_until

pytestmark = pytest.mark.network


def _lose_vp8_before_srtp(ice: RTCIceTransport, every: int) -> set[int]:
    """Test harness: wrap an ICE transport's ``_recv`` so that the first copy of every ``every``-th
    VP8 packet (by sequence number; aiortc's VP8 payload type is 97) is lost *before* SRTP, as a
    network loses it (dropping after decryption would make SRTP's replay check reject the
    retransmission). Returns the set of lost sequence numbers, filled as packets arrive."""
    dropped: set[int] = set()
    original = ice._recv

    async def lossy_recv() -> bytes:
        while True:
            data = await original()
            is_rtp = len(data) >= 12 and 128 <= data[0] < 192 and not 192 <= data[1] <= 208
            seq = int.from_bytes(data[2:4], "big") if is_rtp else -1
            if is_rtp and data[1] & 0x7F == 97 and seq % every == 0 and seq not in dropped:
                dropped.add(seq)
                continue
            return data

    ice._recv = lossy_recv
    return dropped


async def _video_keeps_decoding(subscriber: Client, publisher: str) -> None:
    frames = subscriber.log(subscriber.slot_of(publisher, "video")).frames
    await wait_until(
        lambda: subscriber.log(subscriber.slot_of(publisher, "video")).frames >= frames + 10,
        10,
        "video keeps decoding",
    )


def _assert_no_server_decoder(sfu: Sfu, room_id: str) -> None:
    """None of the server's receivers in the room started aiortc's decoder thread."""
    for pc in server_pcs(sfu, room_id):
        for t in pc.getTransceivers():
            assert not ai.decoder_thread_started(t.receiver)


async def test_three_participants_receive_each_other(
    sfu: Sfu, make_client: Callable[..., Client], events: list[SfuEvent]
) -> None:
    sfu.open_room("r")
    clients = {
        name: await join(
            sfu,
            make_client,
            name,
            luma=LUMA[name],
            amplitude=12000 if name == "a" else 0,
            video_slots=2,
            audio_slots=3,
        )
        for name in ("a", "b", "c")
    }
    for name, client in clients.items():
        others = [o for o in clients if o != name]
        await wait_until(
            lambda c=client, o=others: all(sees_video(c, p) for p in o), 10, f"{name} sees video"
        )
        await wait_until(lambda c=client, o=others: all(hears(c, p) for p in o), 10, f"{name} hears audio")

    # active speaker from the RFC 6464 audio level: only "a" makes noise
    await wait_until(lambda: ActiveSpeakerChanged("r", "a") in events, 10, "active speaker a")
    assert sfu.active_speaker("r") == "a"

    # no decoder on the server: none of the server's receivers started aiortc's decoder thread,
    # and every live decoder thread belongs to a client receiver
    _assert_no_server_decoder(sfu, "r")
    client_decoders = sum(
        ai.decoder_thread_started(t.receiver) for c in clients.values() for t in c.pc.getTransceivers()
    )
    live = [t for t in threading.enumerate() if t.name.endswith("-decoder")]
    assert len(live) == client_decoders

    stats = sfu.room_stats("r")
    for name in clients:
        ps = stats.participants[name]
        assert ps.connection_state == "connected"
        assert ps.published == ("audio", "video")
        assert ps.packets_in > 0 and ps.bytes_in > 0
        assert ps.packets_out > 0 and ps.bytes_out > 0
        carried = {f.publisher_id for f in ps.forwarded if f.packets > 0}
        assert carried == set(clients) - {name}


async def test_late_joiner_gets_video_promptly(sfu: Sfu, make_client: Callable[..., Client]) -> None:
    sfu.open_room("r")
    a = await join(sfu, make_client, "a", luma=LUMA["a"], video_slots=2)
    b = await join(sfu, make_client, "b", luma=LUMA["b"], video_slots=2)
    await wait_until(lambda: sees_video(b, "a") and sees_video(a, "b"), 10, "a and b see each other")
    # Past the initial keyframes; aiortc's encoder would not send another for ~200 s on its own.
    await asyncio.sleep(2.0)
    plis_before = sfu.room_stats("r").participants["a"].keyframe_requests_sent

    c = make_client("c", luma=LUMA["c"], video_slots=2)
    t0 = time.monotonic()
    await c.connect(await sfu.admit("r", "c"))
    await wait_until(lambda: sees_video(c, "a") and sees_video(c, "b"), 10, "late joiner sees a and b")
    first = c.log(c.slot_of("a", "video")).first_frame_at
    assert first is not None
    print(f"late joiner: first frame of a {first - t0:.2f}s after starting to connect")
    # the keyframe came from a PLI the SFU sent to the publisher
    assert sfu.room_stats("r").participants["a"].keyframe_requests_sent > plis_before


async def test_selective_forwarding_and_video_demand(
    sfu: Sfu, make_client: Callable[..., Client], events: list[SfuEvent]
) -> None:
    sfu.open_room("r")
    a = await join(sfu, make_client, "a", luma=LUMA["a"], video_slots=2)
    await join(sfu, make_client, "b", luma=LUMA["b"], video_slots=2)
    c = await join(sfu, make_client, "c", luma=LUMA["c"], video_slots=2)
    await wait_until(lambda: sees_video(a, "b") and sees_video(c, "b"), 10, "b is seen")

    sfu.set_visible_videos("r", "a", ["c"])
    sfu.set_visible_videos("r", "c", ["a"])
    # nobody watches b any more: reported, and b's packets are no longer forwarded
    assert VideoDemandChanged("r", "b", False) in events
    for sub in ("a", "c"):
        assert "b" not in sfu.participant("r", sub).slots().values()
    b_in = sfu.room_stats("r").participants["b"].packets_in
    out_before = {s: sfu.room_stats("r").participants[s].packets_out for s in ("a", "c")}
    await wait_until(
        lambda: sfu.room_stats("r").participants["b"].packets_in > b_in + 10, 10, "b keeps sending"
    )
    # a and c only get one video each now: the total forwarded to them grows, but b's stream is not in it
    for sub in ("a", "c"):
        fwd = sfu.room_stats("r").participants[sub].forwarded
        assert all(f.publisher_id != "b" for f in fwd)
    assert sfu.room_stats("r").participants["b"].video_wanted is False
    assert all(sfu.room_stats("r").participants[s].packets_out >= out_before[s] for s in out_before)

    # c wants b again: demand resumes at once and c gets b's picture (fresh keyframe via PLI)
    sfu.set_visible_videos("r", "c", ["a", "b"])
    assert VideoDemandChanged("r", "b", True) in events
    await wait_until(lambda: sees_video(c, "b") and sees_video(c, "a"), 10, "c sees b again")
    assert sees_video(a, "c")


async def test_only_three_loudest_audio_streams_are_forwarded(
    sfu: Sfu, make_client: Callable[..., Client], events: list[SfuEvent]
) -> None:
    sfu.open_room("r")
    # join order is the reverse of loudness, so the selection must actually switch
    amplitude = {"p1": 0, "p2": 300, "p3": 1200, "p4": 4000, "p5": 16000}  # ~10 dB apart
    clients = {n: await join(sfu, make_client, n, amplitude=a, audio_slots=4) for n, a in amplitude.items()}

    def selected(name: str) -> set[str | None]:
        return set(sfu.participant("r", name).slots().values()) - {None}

    await wait_until(lambda: selected("p1") == {"p3", "p4", "p5"}, 10, "p1 hears the three loudest")
    await wait_until(lambda: selected("p5") == {"p2", "p3", "p4"}, 10, "p5 hears the three loudest others")
    await wait_until(lambda: ActiveSpeakerChanged("r", "p5") in events, 10, "p5 is the active speaker")
    # the idle 4th slot really carries nothing
    for name in clients:
        slots = sfu.participant("r", name).slots()
        assert len(slots) == 4 and sum(v is not None for v in slots.values()) == 3
    await wait_until(lambda: all(hears(clients["p1"], p) for p in ("p3", "p4", "p5")), 10, "p1 decodes audio")


async def test_nack_retransmission_from_cache(sfu: Sfu, make_client: Callable[..., Client]) -> None:
    sfu.open_room("r")
    await join(sfu, make_client, "a", luma=LUMA["a"])
    b = make_client("b", video_slots=1)
    # Lose packets on the client's side of the transport: it must NACK them from the SFU's cache.
    dropped = _lose_vp8_before_srtp(b.pc.getTransceivers()[0].receiver.transport.transport, every=5)
    await b.connect(await sfu.admit("r", "b"))

    def retransmitted() -> int:
        return sum(f.retransmitted for f in sfu.room_stats("r").participants["b"].forwarded)

    await wait_until(lambda: len(dropped) >= 5 and retransmitted() >= 5, 15, "retransmissions")
    await _video_keeps_decoding(b, "a")
    assert sees_video(b, "a")


async def test_no_decoder_anywhere_while_forwarding(
    sfu: Sfu, make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients that count RTP without decoding: then *nothing* in this process may
    create a decoder, although the SFU forwards audio and video."""
    created: list[str] = []
    real_get_decoder = aiortc.rtcrtpreceiver.get_decoder

    def spy(codec: object) -> object:
        created.append(str(codec))
        return real_get_decoder(codec)  # type: ignore[arg-type]

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", spy)
    sfu.open_room("r")
    a = await join(
        sfu, make_client, "a", luma=LUMA["a"], amplitude=5000, video_slots=1, audio_slots=1, decode=False
    )
    b = await join(
        sfu, make_client, "b", luma=LUMA["b"], amplitude=5000, video_slots=1, audio_slots=1, decode=False
    )
    await wait_until(
        lambda: all(len(c.rtp_packets) == 2 and min(c.rtp_packets.values()) > 50 for c in (a, b)),
        10,
        "forwarded audio and video RTP at both clients",
    )
    assert created == []
    assert not [t for t in threading.enumerate() if t.name.endswith("-decoder")]
    _assert_no_server_decoder(sfu, "r")
    assert all(p.packets_out > 100 for p in sfu.room_stats("r").participants.values())


async def test_upstream_loss_is_nacked_to_the_publisher(sfu: Sfu, make_client: Callable[..., Client]) -> None:
    """Packets lost between publisher and SFU: the SFU NACKs the publisher and
    forwards the retransmission, so the subscriber keeps decoding."""
    sfu.open_room("r")
    await join(sfu, make_client, "a", luma=LUMA["a"])
    # Lose packets on the SFU's side of a's transport: the SFU must NACK the publisher.
    server_pc = sfu._room("r").participants["a"].peer_connection
    assert server_pc is not None
    dropped = _lose_vp8_before_srtp(server_pc.getTransceivers()[0].receiver.transport.transport, every=7)
    b = await join(sfu, make_client, "b", video_slots=1)
    await wait_until(lambda: len(dropped) >= 5 and sees_video(b, "a"), 15, "losses and video")
    inbound = sfu._room("r").participants["a"].inbound["video"]
    assert inbound.nacks_sent > 0
    await _video_keeps_decoding(b, "a")


async def test_sender_reports_reach_the_subscriber_and_measure_the_rtt(
    make_client: Callable[..., Client],
) -> None:
    """Each slot sends the subscriber sender reports, past aiortc's coroutines on the slot's
    direct path: video every ``rtcp_interval``, audio every ``audio_rtcp_interval`` (as
    libwebrtc does); the subscriber's receiver reports of them give the slot its RTT."""
    config = SfuConfig(
        host_addresses=("127.0.0.1",), ice_servers=(), rtcp_interval=0.5, audio_rtcp_interval=3.0
    )
    sfu = Sfu(config)
    try:
        sfu.open_room("r")
        await join(sfu, make_client, "a", luma=LUMA["a"], amplitude=12000)
        b = make_client("b", video_slots=1, audio_slots=1)
        reports: dict[str, list[float]] = {"audio": [], "video": []}
        for t in b.pc.getTransceivers():
            receiver, kind = t.receiver, t.kind
            stock = receiver._handle_rtcp_packet

            async def counting(packet: ai.AnyRtcpPacket, stock: Any = stock, kind: str = kind) -> None:
                if isinstance(packet, ai.RtcpSrPacket):
                    reports[kind].append(time.monotonic())
                await stock(packet)

            receiver._handle_rtcp_packet = counting  # type: ignore[method-assign]
        await b.connect(await sfu.admit("r", "b"))
        await wait_until(lambda: sees_video(b, "a") and hears(b, "a"), 10, "b receives a")
        start = time.monotonic()
        await asyncio.sleep(6.0)
        video = [t for t in reports["video"] if t >= start]
        audio = [t for t in reports["audio"] if t >= start]
        # 6 s at a mean of 0.5 s (each interval 0.25-0.75 s) and of 3 s (1.5-4.5 s)
        assert 7 <= len(video) <= 25, reports
        assert 1 <= len(audio) <= 4, reports
        slots = sfu._room("r").get("b")
        assert slots is not None
        (video_slot,) = slots.video_slots
        assert video_slot.rtt is not None and 0 <= video_slot.rtt < 0.5, video_slot.rtt
    finally:
        await sfu.close()
