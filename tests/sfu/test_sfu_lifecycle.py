"""Bad input, leaving, transport death and teardown."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable

import pytest

from server.sfu import (
    AlreadyJoined,
    InvalidRequest,
    InvalidSdp,
    InvalidState,
    NotInRoom,
    ParticipantLeft,
    RoomNotFound,
    Sfu,
    SfuError,
    SfuEvent,
    SlotAssigned,
)
from tests.sfu.sfu_testkit import LUMA, Client, join, sees_video, wait_until

pytestmark = pytest.mark.network

NO_MEDIA_SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE\r\n"


async def test_bad_input_raises_clear_errors_and_room_keeps_working(
    sfu: Sfu, make_client: Callable[..., Client]
) -> None:
    sfu.open_room("r")
    a = await join(sfu, make_client, "a", luma=LUMA["a"], video_slots=2)
    b = await join(sfu, make_client, "b", luma=LUMA["b"], video_slots=2)
    await wait_until(lambda: sees_video(a, "b") and sees_video(b, "a"), 10, "a and b connected")

    with pytest.raises(AlreadyJoined):
        await sfu.admit("r", "a")
    with pytest.raises(RoomNotFound):
        await sfu.admit("no-such-room", "x")
    with pytest.raises(NotInRoom):
        sfu.participant("r", "nobody")
    with pytest.raises(NotInRoom):
        sfu.set_visible_videos("r", "nobody", ["a"])

    c = make_client("c", luma=LUMA["c"], video_slots=2)
    hc = await sfu.admit("r", "c")
    with pytest.raises(InvalidState):
        await hc.add_ice_candidate("candidate:1 1 udp 1 127.0.0.1 9 typ host")
    # a real offer, then broken variants of it
    offer = await c.pc.createOffer()
    bad_offers = {
        "garbage": "this is not SDP at all",
        "empty": "",
        "no media": NO_MEDIA_SDP,
        "truncated": offer.sdp[: len(offer.sdp) // 3],
        "no ICE credentials": "\r\n".join(
            line for line in offer.sdp.split("\r\n") if not line.startswith("a=ice-")
        ),
        "no VP8": offer.sdp.replace("VP8/90000", "H265/90000"),
        "data channel only": (
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
            "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
            "a=fingerprint:sha-256 00:11\r\na=setup:actpass\r\n"
        ),
    }
    for what, sdp in bad_offers.items():
        with pytest.raises(InvalidSdp) as err:
            await hc.handle_offer(sdp)
        assert isinstance(err.value, SfuError), what
        assert str(err.value), what

    # the same participant can still connect with a good offer, and everyone keeps working
    await c.connect(hc)
    await wait_until(lambda: sees_video(c, "a") and sees_video(c, "b"), 10, "c sees a and b")
    frames = a.log(a.slot_of("b", "video")).frames
    await wait_until(lambda: a.log(a.slot_of("b", "video")).frames > frames + 5, 10, "a still receives b")
    assert sees_video(a, "c")

    with pytest.raises(InvalidState):
        await hc.handle_offer(c.pc.localDescription.sdp)
    with pytest.raises(InvalidRequest):
        await hc.add_ice_candidate("candidate:garbage")
    await hc.add_ice_candidate(None)  # end-of-candidates is fine
    with pytest.raises(InvalidRequest):
        sfu.set_visible_videos("r", "c", "a")  # type: ignore[arg-type]


async def test_leaving_frees_server_resources(
    sfu: Sfu, make_client: Callable[..., Client], events: list[SfuEvent]
) -> None:
    sfu.open_room("r")
    a = await join(sfu, make_client, "a", luma=LUMA["a"], amplitude=3000, video_slots=1, audio_slots=1)
    await wait_until(
        lambda: sfu.room_stats("r").participants["a"].connection_state == "connected", 10, "a up"
    )
    await asyncio.sleep(0.5)
    tasks_before = set(asyncio.all_tasks())

    b = Client("b", luma=LUMA["b"], amplitude=3000, video_slots=1, audio_slots=1)
    hb = await sfu.admit("r", "b")
    await b.connect(hb)
    await wait_until(lambda: sees_video(a, "b") and sees_video(b, "a"), 10, "a and b see each other")

    p = sfu._room("r").participants["b"]
    pc = p.peer_connection
    assert pc is not None
    tracked = [
        p,
        pc,
        pc.getTransceivers()[0].receiver.transport,
        pc.getTransceivers()[0].receiver.transport.transport,
    ]
    tracked += [*p.inbound.values(), *p.audio_slots, *p.video_slots]
    refs = [weakref.ref(x) for x in tracked]
    del p, pc, tracked

    mid_b = a.slot_of("b", "video")
    assert mid_b is not None
    await hb.leave()
    await b.close()
    assert ParticipantLeft("r", "b", "left") in events
    assert SlotAssigned("r", "a", mid_b, "video", None) in events
    assert set(sfu.participant("r", "a").slots().values()) == {None}
    with pytest.raises(NotInRoom):
        await hb.handle_offer("v=0")

    def freed() -> bool:
        gc.collect()
        return all(r() is None for r in refs)

    await wait_until(freed, 10, "b's server objects to be garbage-collected")

    def leftover_tasks() -> list[asyncio.Task[object]]:
        current = asyncio.current_task()
        return [t for t in asyncio.all_tasks() if t not in tasks_before and t is not current and not t.done()]

    await wait_until(lambda: not leftover_tasks(), 10, "b's tasks to finish")
    # the room keeps forwarding for the others
    stats = sfu.room_stats("r")
    assert list(stats.participants) == ["a"]


async def test_transport_death_removes_participant(
    sfu: Sfu, make_client: Callable[..., Client], events: list[SfuEvent]
) -> None:
    sfu.open_room("r")
    a = await join(sfu, make_client, "a", luma=LUMA["a"], video_slots=1)
    b = await join(sfu, make_client, "b", luma=LUMA["b"], video_slots=1)
    await wait_until(lambda: sees_video(a, "b"), 10, "a sees b")
    await b.pc.close()  # the kiosk goes away without telling the signaling layer
    await wait_until(
        lambda: any(isinstance(e, ParticipantLeft) and e.participant_id == "b" for e in events),
        10,
        "b removed after its transport closed",
    )
    left = next(e for e in events if isinstance(e, ParticipantLeft) and e.participant_id == "b")
    assert left.reason.startswith("transport-")
    assert "b" not in sfu.room_stats("r").participants
    # b can come back under the same id
    b2 = make_client("b", luma=LUMA["b"], video_slots=1)
    await b2.connect(await sfu.admit("r", "b"))
    await wait_until(lambda: sees_video(b2, "a") and sees_video(a, "b"), 10, "b is back")


async def test_close_room_disconnects_everyone(
    sfu: Sfu, make_client: Callable[..., Client], events: list[SfuEvent]
) -> None:
    sfu.open_room("r")
    sfu.open_room("r")  # idempotent
    a = await join(sfu, make_client, "a", luma=LUMA["a"], video_slots=1)
    b = await join(sfu, make_client, "b", luma=LUMA["b"], video_slots=1)
    await wait_until(lambda: sees_video(a, "b"), 10, "a sees b")
    await sfu.close_room("r")
    assert {e.participant_id for e in events if isinstance(e, ParticipantLeft)} == {"a", "b"}
    assert sfu.room_ids == []
    with pytest.raises(RoomNotFound):
        sfu.room_stats("r")
    await wait_until(lambda: b.pc.connectionState == "closed", 10, "client sees the SFU hang up")
