"""Simulcast without a network: the SFU reads a=simulcast/a=rid from a Chromium offer
(tests/sfu/sdp_corpus/simulcast, captured from Debian's Chromium with three sendEncodings) and
echoes them in its answer, refuses what it cannot map by answering one layer, keeps VP8
PictureID/TL0PICIDX continuous across a layer switch, switches only at keyframes, and picks
layers by tile size, bandwidth, loss and liveness."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from rtc import aiortc_internals as ai
from rtc._rtp_writer import PacketWriter
from rtc.codecs import vp8
from server.sfu import Sfu, SfuConfig
from server.sfu.errors import InvalidRequest
from server.sfu.offer import read_offer
from server.sfu.relay import InboundStream, OutStream
from server.sfu.simulcast import DROP, PASS, SWITCHED, LayerInfo, LayerSwitch, choose_layer
from server.sfu.simulcast_inbound import SimulcastInbound
from tests.sfu.test_sfu_offer_corpus import answer, check_answer

CHROMIUM_3 = (Path(__file__).parent / "sdp_corpus" / "simulcast" / "chromium-3-layers.sdp").read_text()


def offer_text(edit: str | None = None, by: str = "") -> str:
    sdp = CHROMIUM_3.replace("\r\n", "\n")
    if edit is not None:
        sdp = re.sub(edit, by, sdp, flags=re.MULTILINE)
    return sdp.replace("\n", "\r\n")


def chair_track(config: SfuConfig | None = None) -> SimulcastInbound:
    """The chair's simulcast video track from the captured Chromium 3-layer offer."""
    offer = read_offer(offer_text())
    assert offer.simulcast is not None
    return SimulcastInbound(
        simulcast=offer.simulcast,
        publisher_id="chair",
        rtcp_ssrc=1,
        config=config or SfuConfig(),
        on_disconnect=lambda: None,
    )


def video_section(sdp: str, mid: str) -> list[str]:
    lines = sdp.split("\r\n")
    at = lines.index(f"a=mid:{mid}")
    start = max(i for i in range(at) if lines[i].startswith("m="))
    end = next((i for i in range(at, len(lines)) if lines[i].startswith("m=")), len(lines))
    return lines[start:end]


# -- slice 1: the offer --------------------------------------------------------------------


def test_chromium_simulcast_offer_is_read() -> None:
    offer = read_offer(offer_text())
    assert offer.simulcast is not None and offer.simulcast_refused is None
    sc = offer.simulcast
    assert sc.rids == ("q", "h", "f") and sc.mid == "2"
    assert (sc.rid_ext_id, sc.repaired_ext_id) == (10, 11)


async def test_answer_echoes_rids_simulcast_and_the_rid_extensions(sfu: Sfu) -> None:
    sdp = offer_text()
    answer_sdp = await answer(sfu, sdp)
    check_answer(sdp, answer_sdp, rejected_mids=set())
    section = video_section(answer_sdp, "2")
    assert "a=rid:q recv" in section and "a=rid:h recv" in section and "a=rid:f recv" in section
    assert "a=simulcast:recv q;h;f" in section
    assert "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" in section
    assert "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id" in section
    assert "a=recvonly" in section
    # only the publishing section gets them; the receive slot does not
    assert not any(line.startswith(("a=rid", "a=simulcast")) for line in video_section(answer_sdp, "3"))


async def test_layers_are_ordered_low_to_high_and_paused_ones_echoed(sfu: Sfu) -> None:
    sdp = offer_text(r"^a=simulcast:send q;h;f$", "a=simulcast:send f;~h;q")
    offer = read_offer(sdp)
    assert offer.simulcast is not None and offer.simulcast.rids == ("q", "h", "f")
    assert offer.simulcast.paused == {"h"}
    assert "a=simulcast:recv q;~h;f" in video_section(await answer(sfu, sdp), "2")


@pytest.mark.parametrize(
    ("edit", "by", "reason"),
    [
        (r"^a=rid:f send$", "a=rid:x send", "no a=rid"),
        (r"^a=simulcast:send q;h;f$", "a=simulcast:send q;h;x", "cannot be mapped"),
        (r"^a=rid:f send$", "a=rid:f send\na=rid:x send", None),  # an unused extra rid is fine
        (r"^a=simulcast:send q;h;f$", "a=simulcast:send q;h;f;x", "at most 3"),
        (r"^a=simulcast:send q;h;f$", "a=simulcast:send q;h,f", "alternatives"),
        (r"^a=simulcast:send q;h;f$", "a=simulcast:send q;q;f", "twice"),
        (r"^a=simulcast:send q;h;f$", "a=simulcast:recv q;h;f", "send only"),
        (r"^a=simulcast:send q;h;f$\n", "", "exactly one a=simulcast"),
        (r"^a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id$\n", "", "rtp-stream-id"),
    ],
)
async def test_unmappable_simulcast_is_answered_as_one_layer(
    sfu: Sfu, edit: str, by: str, reason: str | None
) -> None:
    sdp = offer_text(edit, by)
    offer = read_offer(sdp)
    if reason is None:
        assert offer.simulcast is not None and offer.simulcast_refused is None
        return
    assert offer.simulcast is None
    assert offer.simulcast_refused is not None and reason in offer.simulcast_refused
    answer_sdp = await answer(sfu, sdp)  # still a good answer: one layer, no simulcast lines
    check_answer(sdp, answer_sdp, rejected_mids=set())
    assert "a=simulcast" not in answer_sdp and "a=rid" not in answer_sdp


async def test_missing_repaired_rid_extension_still_takes_layers(sfu: Sfu) -> None:
    # no RTX is negotiated, so only rtp-stream-id is needed
    sdp = offer_text(r"^a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id$\n", "")
    offer = read_offer(sdp)
    assert offer.simulcast is not None and offer.simulcast.repaired_ext_id is None
    section = video_section(await answer(sfu, sdp), "2")
    assert "a=simulcast:recv q;h;f" in section and not any("repaired" in line for line in section)


async def test_tile_sizes_are_checked(sfu: Sfu) -> None:
    sfu.open_room("r")
    handle = await sfu.admit("r", "p")
    handle.set_tile_sizes({"a": [320, 180], "b": (1280, 720)})
    for bad in ({"a": [1, 2, 3]}, {"a": "big"}, {"a": [-1, 5]}, {"a": [True, 5]}, [1, 2], {"a": [1, 99999]}):
        with pytest.raises(InvalidRequest):
            handle.set_tile_sizes(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        handle.set_tile_sizes({str(i): [1, 1] for i in range(65)})
    await handle.leave()


# -- VP8 PictureID / TL0PICIDX munging -----------------------------------------------------


def descriptor(pid: int, tl0: int, key: bool, start: bool = True) -> bytes:
    """X=1, S, PID=0; I (15-bit PictureID), L (TL0PICIDX), T (TID 0); then a VP8 byte."""
    b0 = 0x80 | (0x10 if start else 0)
    header = bytes([b0, 0xE0, 0x80 | (pid >> 8), pid & 0xFF, tl0, 0x00])
    return header + bytes([0x00 if key else 0x01]) + b"\x00\x00\x9d\x01\x2a\x40\x01\xb4\x00"


def fields(payload: bytes) -> tuple[int, int]:
    return ((payload[2] & 0x7F) << 8) | payload[3], payload[4]


def test_munger_keeps_picture_id_and_tl0picidx_continuous_across_a_switch() -> None:
    m = vp8.PictureIdMunger()
    out = [fields(m.munge(descriptor(100 + i, 7 + i, key=i == 0))) for i in range(3)]
    assert out == [(100, 7), (101, 8), (102, 9)]  # the first source passes unchanged
    m.rebase()  # switch to another layer, at its keyframe, whose numbers are elsewhere
    out = [fields(m.munge(descriptor((32760 + i) & 0x7FFF, (250 + i) & 0xFF, key=i == 0))) for i in range(10)]
    assert out[0] == (103, 10)
    assert [p for p, _ in out] == list(range(103, 113))  # wraps the source's 15 bits unseen
    assert [t for _, t in out] == [(10 + i) & 0xFF for i in range(10)]
    # a retransmission of an already-sent packet gets the same numbers again
    assert fields(m.munge(descriptor(32761, 251, key=False))) == out[1]
    # the payload after the descriptor is untouched
    assert m.munge(descriptor(5, 5, key=True))[6:] == descriptor(5, 5, key=True)[6:]


def test_munger_leaves_descriptors_without_picture_id_alone() -> None:
    m = vp8.PictureIdMunger()
    plain = bytes([0x10, 0x00, 0x01, 0x02])
    assert m.munge(plain) == plain
    assert m.munge(b"\x90") == b"\x90"  # ends inside the descriptor


def test_temporal_id() -> None:
    assert vp8.temporal_id(descriptor(1, 1, key=True)) == 0
    tid2 = bytearray(descriptor(1, 1, key=False))
    tid2[5] = 0x80
    assert vp8.temporal_id(bytes(tid2)) == 2
    assert vp8.temporal_id(bytes([0x10, 0x00])) is None


# -- switching at keyframes ----------------------------------------------------------------


def test_layer_switch_waits_for_a_keyframe_of_the_target() -> None:
    switch = LayerSwitch(target=2)
    assert switch.accept(2, descriptor(1, 1, key=False)) == DROP  # no picture yet
    assert switch.accept(0, descriptor(1, 1, key=True)) == DROP  # not the target
    assert switch.accept(2, descriptor(1, 1, key=True)) == SWITCHED
    assert switch.accept(2, descriptor(2, 1, key=False)) == PASS
    switch.target = 0  # down: layer 2 keeps flowing until layer 0's keyframe
    assert switch.accept(2, descriptor(3, 1, key=False)) == PASS
    assert switch.accept(0, descriptor(9, 1, key=False)) == DROP
    assert switch.accept(0, descriptor(9, 1, key=True, start=False)) == DROP  # not the frame start
    assert switch.accept(0, descriptor(10, 1, key=True)) == SWITCHED
    assert switch.accept(2, descriptor(4, 1, key=False)) == DROP
    assert (switch.current, switch.switches) == (0, 2)


# -- choosing a layer ----------------------------------------------------------------------

LIVE = [
    LayerInfo(live=True, bitrate=150_000, height=180),
    LayerInfo(live=True, bitrate=500_000, height=360),
    LayerInfo(live=True, bitrate=1_200_000, height=720),
]


def test_tile_size_picks_the_smallest_layer_that_fills_it() -> None:
    assert choose_layer(LIVE, tile_height=None, budget_bps=None, loss=None) == 2
    assert choose_layer(LIVE, tile_height=120, budget_bps=None, loss=None) == 0
    assert choose_layer(LIVE, tile_height=210, budget_bps=None, loss=None) == 1
    assert choose_layer(LIVE, tile_height=420, budget_bps=None, loss=None) == 2
    assert choose_layer(LIVE, tile_height=2000, budget_bps=None, loss=None) == 2


def test_bandwidth_and_loss_lower_the_layer() -> None:
    def choose(budget: float, current: int | None, loss: float = 0.0, may_step_up: bool = True) -> int:
        return choose_layer(
            LIVE, tile_height=720, budget_bps=budget, loss=loss, current=current, may_step_up=may_step_up
        )

    # a first choice: the highest layer that fits
    assert [choose(b, None) for b in (4e6, 1e6, 300e3, 50e3)] == [2, 1, 0, 0]
    # the current layer no longer fits: straight down to one that does
    assert choose(1e6, 2) == 1 and choose(300e3, 2) == 0
    # up: one layer at a time, when the estimate shows room above the current layer (a
    # delay-based estimate stays under ~1.5x what arrives, so it never "fits" the next one)
    assert choose(210e3, 0) == 1 and choose(170e3, 0) == 0
    # ... but not to a layer far above the estimate (UP_REACH): h is 2.6x an estimate of 190k
    assert choose(190e3, 0) == 0
    assert choose(4e6, 0) == 1 and choose(4e6, 1) == 2
    assert choose(4e6, 0, may_step_up=False) == 0  # held off after a failed step up
    # heavy loss cuts the budget by half the loss (GCC's loss-based rule) and stops steps up: a
    # strong line that loses 20 % keeps a layer it still carries, a thinner one goes down
    assert choose(4e6, 2, loss=0.2) == 2
    assert choose(1.3e6, 2, loss=0.2) == 1 and choose(1.3e6, 2, loss=0.05) == 2
    assert choose(4e6, 1, loss=0.2) == 1 and choose(4e6, 1, loss=0.05) == 2
    # without an estimate, one layer lower
    assert choose_layer(LIVE, tile_height=720, budget_bps=None, loss=0.2) == 1


def test_a_failed_step_up_doubles_the_hold_off() -> None:
    switch = LayerSwitch(target=0)
    switch.bandwidth_down(100.0)
    assert switch.up_after == 104.0
    switch.up_at = 110.0  # stepped up again, and it congested at once
    switch.bandwidth_down(111.0)
    assert switch.up_after == 119.0
    switch.bandwidth_down(200.0)  # long after the last step up: a fresh hold-off
    assert switch.up_after == 204.0


def test_a_layer_that_stopped_is_not_chosen() -> None:
    top_gone = [LIVE[0], LIVE[1], LayerInfo(live=False, bitrate=0, height=720)]
    assert choose_layer(top_gone, tile_height=720, budget_bps=None, loss=None) == 1
    low_gone = [LayerInfo(live=False, bitrate=0, height=None), LIVE[1], LIVE[2]]
    assert choose_layer(low_gone, tile_height=100, budget_bps=None, loss=None) == 1
    none = [LayerInfo(live=False, bitrate=0, height=None)] * 3
    assert choose_layer(none, tile_height=100, budget_bps=None, loss=None) == 2


def test_ramping_after_a_step_up_ends_when_the_estimate_catches_up_or_falls() -> None:
    switch = LayerSwitch(target=1)
    switch.stepped_up(10.0, 230e3)
    assert switch.ramping(11.0, 240e3, layer_bitrate=500e3)  # climbing towards the new rate
    assert switch.ramping(12.0, 300e3, layer_bitrate=500e3)
    assert not switch.ramping(13.0, 520e3, layer_bitrate=500e3)  # caught up: judged again
    switch.stepped_up(20.0, 230e3)
    assert switch.ramping(21.0, 260e3, layer_bitrate=500e3)
    assert not switch.ramping(22.0, 200e3, layer_bitrate=500e3)  # fell: overuse, the step failed
    assert not switch.ramping(23.0, 260e3, layer_bitrate=500e3)
    switch.stepped_up(30.0, 230e3)
    assert not switch.ramping(46.0, 260e3, layer_bitrate=500e3)  # grace over


def test_padding_joins_the_last_frame_forwarded() -> None:
    from rtc import aiortc_internals as ai

    switch = LayerSwitch(target=0)
    padding = ai.RtpPacket(payload_type=96, sequence_number=10, timestamp=5000, ssrc=1)
    padding.padding_size = 200
    assert switch.media(padding) is None  # nothing forwarded yet: nothing to pad
    media = ai.RtpPacket(payload_type=96, sequence_number=11, timestamp=3000, ssrc=1, payload=b"\x10\x00")
    assert switch.media(media) is media
    padding.sequence_number = 12
    pinned = switch.media(padding)
    assert pinned is not None and pinned is not padding  # the cached original stays as it was
    assert (pinned.timestamp, pinned.sequence_number, pinned.padding_size, pinned.payload) == (
        3000,
        12,
        200,
        b"",
    )
    assert padding.timestamp == 5000


def test_a_simulcast_track_remb_is_not_capped_by_a_slow_subscriber() -> None:
    """Item 5: a single-layer publisher's REMB is capped by its slowest subscriber; a simulcast
    track's is the SFU's estimate alone (the slow one takes a lower layer), and its layers send
    none of their own."""
    import time

    from server.sfu.relay import InboundStream, OutStream

    config = SfuConfig()
    track = chair_track(config)
    single = InboundStream(
        kind="video", publisher_id="kiosk", rtcp_ssrc=2, config=config, on_disconnect=lambda: None
    )
    for source in (track, single):
        slow = OutStream(kind="video", mid="1", subscriber_id="weak", ssrc=3, config=config)
        source.outputs.append(slow)
        slow.remb, slow.remb_at = 250_000, time.monotonic()
        source._remb_estimate = 3_000_000
    assert single._remb_bitrate() == 250_000
    assert track._remb_bitrate() == 3_000_000
    assert all(layer._remb_bitrate() is None for layer in track.layers)
    assert [layer.layer for layer in track.layers] == [0, 1, 2] and track.layer_count == 3
    assert all(layer.outputs is track.outputs for layer in track.layers)


# -- item 4: pausing the layers nobody takes -----------------------------------------------


def test_layer_pause_waits_before_pausing_and_resumes_at_once() -> None:
    from server.sfu.simulcast import PAUSE_AFTER_S, LayerPause

    pause = LayerPause(3)
    assert pause.update({0, 1, 2}, 0.0) is None  # all sent from the start: nothing to say
    assert pause.update({0, 1}, 1.0) is None  # not yet: a resize may bring it back
    assert pause.update({0, 1, 2}, 2.0) is None  # f taken again: its clock starts over
    assert pause.update({0, 1}, 2.5) is None
    assert pause.update({0, 1}, 2.5 + PAUSE_AFTER_S - 0.1) is None
    assert pause.update({0, 1}, 2.5 + PAUSE_AFTER_S) == (frozenset({0, 1}), frozenset())
    assert pause.update({0, 1}, 100.0) is None
    # taken again: back at once (h, no longer taken, has its hold first)
    assert pause.update({2}, 100.1) == (frozenset({0, 1, 2}), frozenset({2}))
    # the lowest layer is never paused, even when nobody takes any
    assert pause.update({0, 1, 2}, 150.0) is None
    assert pause.update(set(), 200.0) is None
    assert pause.update(set(), 300.0) == (frozenset({0}), frozenset())


class SimulcastRoom:
    """A room without a network: ``chair`` publishes a q/h/f track, subscribers get one video
    slot each; the test says which layers arrive and when (``sending``)."""

    def __init__(self) -> None:
        from server.sfu.events import SfuEvent
        from server.sfu.room import Room

        self.config = SfuConfig()
        self.events: list[SfuEvent] = []
        self.room = Room("r", self.config, self.events.append)
        self.track = chair_track(self.config)
        self.room.admit("chair").inbound["video"] = self.track

    def sending(self, now: float, layers: set[int], rates: tuple[float, ...] | None = None) -> None:
        """These layers sent media at ``now``: 10 kB each, or a second's worth at ``rates``
        (bit/s per layer)."""
        for i in layers:
            self.track.last_media_at[i] = now
            self.track.media_bytes[i] += 10_000 if rates is None else int(rates[i] / 8)

    def subscribe(self, name: str, tile: int) -> OutStream:
        sub = self.room.admit(name)
        slot = OutStream(kind="video", mid="1", subscriber_id=name, ssrc=3, config=self.config)
        sub.video_slots.append(slot)
        slot.assign(self.track)
        assert slot.layers is not None
        # a subscriber past the first-estimate wait (SfuConfig.first_estimate_wait): without an estimate
        # it gets what its tile wants (these tests are about the tile and the pausing)
        slot.layers.first_choice_at = float("-inf")
        self.room._tile_heights[name] = {"chair": tile}
        return slot


async def test_room_pauses_the_layer_no_slot_takes_and_resumes_it_for_a_large_tile() -> None:
    """The room's decision, without a network: a simulcast publisher whose only subscriber shows
    it in a thumbnail is told (SimulcastLayersChanged) to send q only, after the hold; a paused
    layer is then never chosen. A larger tile brings the layer it needs back at once; the slot
    takes it as soon as it arrives again."""
    from server.sfu.events import SimulcastLayersChanged
    from server.sfu.simulcast import PAUSE_AFTER_S

    t = SimulcastRoom()
    room, events, sending, subscribe = t.room, t.events, t.sending, t.subscribe

    def paused() -> list[tuple[str, ...]]:
        return [e.active for e in events if isinstance(e, SimulcastLayersChanged)]

    try:
        small = subscribe("small", 90)
        now = 1000.0
        sending(now, {0, 1, 2})
        room._update_layers(now)
        assert small.layers is not None and small.layers.target == 0
        assert small.layers.accept(0, descriptor(1, 1, key=True)) == SWITCHED
        assert paused() == []
        for _ in range(int(PAUSE_AFTER_S) + 1):
            now += 1.0
            sending(now, {0, 1, 2})
            room._update_layers(now)
        assert paused() == [("q",)]
        assert room._layer_pause["chair"][1].active == frozenset({0})

        # a paused layer is never chosen, even while it still sends (the publisher is slow to
        # apply the change): the small tile grows to h, which is resumed at once; the slot
        # takes it at the next evaluation; f stays paused
        room._tile_heights["small"] = {"chair": 360}
        now += 0.5
        sending(now, {0, 1, 2})
        room._update_layers(now)
        assert small.layers.target == 0 and paused() == [("q",), ("q", "h")]
        now += 0.5
        sending(now, {0, 1, 2})
        room._update_layers(now)
        assert small.layers.target == 1 and paused() == [("q",), ("q", "h")]
        assert small.layers.accept(1, descriptor(2, 1, key=True)) == SWITCHED

        # a large tile wants f: resumed at once (f has sent nothing meanwhile); the slot takes h
        # until f is live again, then f
        large = subscribe("large", 720)
        now += 3.0
        sending(now, {0, 1})
        room._update_layers(now)
        assert paused()[-1] == ("q", "h", "f")
        assert large.layers is not None and large.layers.target == 1
        now += 0.5
        sending(now, {0, 1, 2})
        room._update_layers(now)
        assert large.layers.target == 2
        assert large.layers.accept(2, descriptor(3, 1, key=True)) == SWITCHED
        stats = room.stats().participants["large"].forwarded[0]
        assert stats.target_layer == 2

        # the large subscriber leaves: f is paused again after the hold, q never
        await room.remove("large")
        for _ in range(int(PAUSE_AFTER_S) + 2):
            now += 1.0
            sending(now, {0, 1, 2})
            room._update_layers(now)
        assert paused()[-1] == ("q", "h")
    finally:
        await room.close()


async def test_the_layer_each_subscriber_receives_is_reported_on_a_change() -> None:
    """Item 6: ReceivedLayersChanged says which layer (rid) a subscriber receives of each simulcast
    publisher, once its slot forwards it (at the layer's keyframe), and again only on a change."""
    from server.sfu.events import ReceivedLayersChanged

    t = SimulcastRoom()
    try:
        slot = t.subscribe("hall", 90)
        assert slot.layers is not None

        def told() -> list[tuple[str, dict[str, str]]]:
            return [(e.participant_id, e.layers) for e in t.events if isinstance(e, ReceivedLayersChanged)]

        now = 1000.0
        t.sending(now, {0, 1, 2})
        t.room._update_layers(now)
        assert slot.layers.target == 0 and told() == []  # nothing forwarded yet
        assert slot.layers.accept(0, descriptor(7, 1, key=True)) == SWITCHED
        t.room._update_layers(now + 1)
        t.room._update_layers(now + 2)
        assert told() == [("hall", {"chair": "q"})]
        t.room._tile_heights["hall"] = {"chair": 720}
        t.room._update_layers(now + 3)
        assert slot.layers.target == 2 and told() == [("hall", {"chair": "q"})]  # no keyframe yet
        assert slot.layers.accept(2, descriptor(8, 2, key=True)) == SWITCHED
        t.room._update_layers(now + 4)
        assert told()[-1] == ("hall", {"chair": "f"})
        slot.set_paused(True)  # audio-only: it receives no video
        t.room._update_layers(now + 5)
        assert told()[-1] == ("hall", {})
        assert len(told()) == 3
    finally:
        await t.room.close()


# -- the slots frozen on the top layer under load (issue 18's open bug) --------------------
#
# A loaded benchmark run (tests/bench/simulcast_bench.py) showed it: Chromium, its bandwidth
# estimate low, stopped encoding `f` and kept padding it (~400 padding-only packets/s). The SFU
# counted `f` live at ~900 kbit/s, so no slot left it; each slot forwarded the padding pinned to
# its last frame until aiortc's 512-packet jitter buffer overflowed and handed its decoder an
# empty frame, after which it never decoded again.

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


def _receiving(track: SimulcastInbound) -> None:
    """The track and its layers take payload type 96 (what start() sets from the answer)."""
    for stream in [track, *track.layers]:
        stream._codecs = {96: VP8}


def rtp(
    ssrc: int, seq: int, ts: int, payload: bytes = b"", rid: str | None = None, padding: int = 0
) -> ai.RtpPacket:
    packet = ai.RtpPacket(
        payload_type=96, sequence_number=seq & 0xFFFF, timestamp=ts, ssrc=ssrc, payload=payload
    )
    packet.padding_size = padding
    packet.extensions.rtp_stream_id = rid
    return packet


async def test_a_layer_that_only_pads_is_neither_live_nor_costed_at_its_padding() -> None:
    """Packets through the track's receive path: q and h send pictures, f only padding (as
    Chromium pads an `f` it stopped encoding). f is not live, its bitrate is 0, and a large
    tile's slot, which starts on the top layer, goes to h."""
    import time

    t = SimulcastRoom()
    try:
        _receiving(t.track)
        slot = t.subscribe("hall", 720)
        assert slot.layers is not None and slot.layers.target == 2
        t.track.layer_info(time.monotonic() - 1.0)  # the bitrate measure starts a second ago
        seq = {"q": 100, "h": 200, "f": 300}
        for n in range(30):  # a second: 15 pictures of q and h, 400 padding packets of f
            for rid, ssrc in (("q", 10), ("h", 20)):
                if n % 2 == 0:
                    seq[rid] += 1
                    payload = descriptor(n, 1, key=n == 0)
                    await t.track._handle_rtp_packet(rtp(ssrc, seq[rid], n * 6000, payload, rid), 0)
            for _ in range(13):
                seq["f"] += 1
                await t.track._handle_rtp_packet(rtp(30, seq["f"], 777, b"", "f", padding=255), 0)
        now = time.monotonic()
        q, h, f = t.track.layer_info(now)
        assert q.live and h.live and not f.live
        assert f.bitrate == 0 and q.bitrate > 0 and h.bitrate > 0
        t.room._update_layers(now)
        assert slot.layers.target == 1
    finally:
        await t.room.close()


class Sink:
    """Where a slot's packets go instead of a socket (what OutStream._send hands its sender)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> bool:
        self.sent.append(data)
        return True

    def send_written(self, writer: PacketWriter, *fields: Any) -> bool:
        # DirectRtpSender.send_written's packet, left plain (no SRTP session here)
        return self.send(writer.write(*fields, None))


def _wired_slot(track: SimulcastInbound) -> tuple[OutStream, Sink]:
    """A started video slot forwarding ``track``, sending into a :class:`Sink` (start() would
    set these from the DTLS transport and the answer)."""
    from rtc.rtputil import RtpHeaderLayout

    slot = OutStream(kind="video", mid="1", subscriber_id="hall", ssrc=3, config=SfuConfig())
    slot.assign(track)
    sink = Sink()
    slot._pt = 96
    slot._layout = RtpHeaderLayout(slot._serialize_header)
    slot._direct = sink  # type: ignore[assignment]
    slot._transport = object()  # type: ignore[assignment]  # forward() only asks that it is set
    return slot, sink


def _aiortc_frames(sent: list[bytes]) -> tuple[list[int], list[bytes]]:
    """The slot's packets through aiortc's own video jitter buffer (512 packets, as its
    RTCRtpReceiver has it): their sequence numbers, and the frames it hands the decoder."""
    from aiortc.codecs import depayload
    from aiortc.jitterbuffer import JitterBuffer

    buffer = JitterBuffer(capacity=512, is_video=True)
    seqs, frames = [], []
    for data in sent:
        packet = ai.RtpPacket.parse(data)
        seqs.append(packet.sequence_number)
        packet._data = depayload(VP8, packet.payload) if packet.payload else b""  # type: ignore[attr-defined]
        _, frame = buffer.add(packet)
        if frame is not None:
            frames.append(frame.data)
    return seqs, frames


def test_a_long_padding_run_never_reaches_aiortc_as_an_empty_frame() -> None:
    """f sends two pictures, then 600 padding-only packets (stopped encoding); the slot goes to
    h at its keyframe; h then pads 300 packets and goes on. Through aiortc's jitter buffer every
    frame has data (an empty one puts its VP8 decoder into end-of-stream for good), the
    subscriber's sequence numbers have no gap, and h's pictures all arrive."""
    from server.sfu.simulcast import MAX_PADDING_RUN

    track = chair_track()
    q, h, f = track.layers
    slot, sink = _wired_slot(track)
    assert slot.layers is not None and slot.layers.target == 2

    def frame(layer: InboundStream, ssrc: int, seq: int, ts: int, pid: int, key: bool) -> int:
        for i in range(3):
            payload = descriptor(pid, 1, key=key, start=i == 0) + bytes([i]) * 50
            packet = rtp(ssrc, seq, ts, payload)
            packet.marker = i == 2
            slot.forward(layer, packet)
            seq += 1
        return seq

    seq_f = frame(f, 30, 1000, 90_000, 1, key=True)
    seq_f = frame(f, 30, seq_f, 96_000, 2, key=False)
    for _ in range(600):
        slot.forward(f, rtp(30, seq_f, 500, padding=255))
        seq_f += 1
    slot.layers.target = 1  # the room's choice: f is no longer live
    seq_h = frame(h, 20, 5000, 40_000, 7, key=False)  # not a keyframe: not forwarded yet
    seq_h = frame(h, 20, seq_h, 46_000, 8, key=True)
    for _ in range(300):
        slot.forward(h, rtp(20, seq_h, 46_000, padding=255))
        seq_h += 1
    for n in range(3):
        seq_h = frame(h, 20, seq_h, 52_000 + n * 6000, 9 + n, key=False)

    seqs, frames = _aiortc_frames(sink.sent)
    assert all(frames), "aiortc's jitter buffer made an empty frame"
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False)), "a gap"
    padding = sum(1 for data in sink.sent if len(data) <= 40)
    assert padding <= 2 * MAX_PADDING_RUN  # the rest was not forwarded
    # f's two pictures, h's keyframe and two of its three deltas (the last one stays in the
    # buffer until a next frame begins)
    assert len(frames) == 5
    assert slot.layers.current == 1


async def test_a_slot_whose_target_keyframe_never_comes_asks_again_then_takes_another_layer() -> None:
    """A large tile's slot starts waiting for a keyframe of f that never comes (all three
    layers flow): it forwards nothing meanwhile. The room asks for f's keyframe again every
    second, gives f up after KEYFRAME_GIVE_UP_S and takes h, then tries f again after
    GIVE_UP_HOLD_S. A slot not started yet (its DTLS still coming up) does not count its wait."""
    from server.sfu.simulcast import GIVE_UP_HOLD_S, KEYFRAME_GIVE_UP_S

    t = SimulcastRoom()
    asked: list[int | None] = []

    def ask(layer: int | None = None) -> None:  # the publisher would get a PLI on that layer
        asked.append(layer)

    t.track.request_keyframe = ask  # type: ignore[method-assign]
    try:
        slot = t.subscribe("hall", 720)
        assert slot.layers is not None
        now = 1000.0
        for _ in range(5):  # not started: it waits for nothing yet
            t.sending(now, {0, 1, 2})
            t.room._update_layers(now)
            now += 1.0
        assert slot.layers.target == 2 and asked == []
        slot._transport = object()  # type: ignore[assignment]  # started (only that it is set)
        start = now
        while now < start + KEYFRAME_GIVE_UP_S:
            t.sending(now, {0, 1, 2})
            t.room._update_layers(now)
            assert slot.layers.target == 2 and slot.layers.current is None
            now += 1.0
        assert asked.count(2) >= 2  # asked again while it waited
        t.sending(now, {0, 1, 2})
        t.room._update_layers(now)  # gives f up; h, which nobody took, is paused: resumed now
        now += 0.5
        t.sending(now, {0, 1, 2})
        t.room._update_layers(now)
        assert slot.layers.target == 1 and 1 in asked
        assert slot.layers.accept(1, descriptor(5, 1, key=True)) == SWITCHED
        gave_up_at = now
        while now < gave_up_at + GIVE_UP_HOLD_S:
            now += 1.0
            t.sending(now, {0, 1, 2})
            t.room._update_layers(now)
        # f, which nobody took meanwhile, was paused: wanted again, it is resumed, then taken
        now += 1.0
        t.sending(now, {0, 1, 2})
        t.room._update_layers(now)
        assert slot.layers.target == 2 and slot.layers.current == 1  # f tried again, h flows
    finally:
        for sub in t.room.participants.values():
            for o in sub.video_slots:
                o._transport = None  # nothing to unregister from
        await t.room.close()


async def test_a_slot_whose_layer_stops_is_moved_to_one_that_flows() -> None:
    """A slot forwarding f (current = target = 2): f stops sending pictures. Within
    LAYER_LIVE_S the room moves the slot to h; its keyframe switches it."""
    from server.sfu.simulcast_inbound import LAYER_LIVE_S

    t = SimulcastRoom()
    try:
        slot = t.subscribe("hall", 720)
        assert slot.layers is not None
        now = 1000.0
        t.sending(now, {0, 1, 2})
        t.room._update_layers(now)
        assert slot.layers.accept(2, descriptor(1, 1, key=True)) == SWITCHED
        stop = now
        while now < stop + LAYER_LIVE_S + 1.0:
            now += 0.5
            t.sending(now, {0, 1})
            t.room._update_layers(now)
        assert slot.layers.target == 1
        assert slot.layers.accept(1, descriptor(2, 1, key=True)) == SWITCHED
    finally:
        await t.room.close()


def test_a_step_up_whose_estimate_stays_flat_fails_and_doubles_the_hold() -> None:
    """A hall's estimate stuck at 300 kbit/s (a full line, or the benchmark's capped REMB): a
    step up to h (~400 kbit/s) is a failed probe after RAMP_CHECK_S, not 15 s of ramping; a
    failed probe (flat or falling) doubles the hold before the next one."""
    from server.sfu.simulcast import HOLD_DOWN_S, RAMP_CHECK_S

    switch = LayerSwitch(target=1)
    switch.stepped_up(100.0, 300e3)
    assert switch.ramping(101.0, 300e3, layer_bitrate=400e3)
    assert switch.ramping(102.0, 300e3, layer_bitrate=400e3)
    assert not switch.ramping(100.0 + RAMP_CHECK_S, 300e3, layer_bitrate=400e3)  # flat: failed
    assert not switch.ramping(104.0, 390e3, layer_bitrate=400e3)  # stays failed
    switch.bandwidth_down(104.0)
    assert switch.up_after == 104.0 + 2 * HOLD_DOWN_S
    # an estimate that grows keeps ramping
    switch.stepped_up(200.0, 300e3)
    for i, estimate in enumerate((320e3, 345e3, 372e3, 400e3 - 1)):
        assert switch.ramping(201.0 + i, estimate, layer_bitrate=400e3)
    # one that falls fails at once, and doubles the hold too (it used to start it over)
    switch = LayerSwitch(target=1)
    switch.stepped_up(300.0, 300e3)
    assert not switch.ramping(301.0, 200e3, layer_bitrate=400e3)
    switch.bandwidth_down(301.0)
    assert switch.up_after == 301.0 + 2 * HOLD_DOWN_S


@pytest.mark.parametrize("h_bps", [240e3, 400e3])
async def test_a_hall_whose_estimate_stays_at_300k_never_climbs_to_f(h_bps: float) -> None:
    """The benchmark's weak hall: a large tile, its estimate 300 kbit/s for a minute, q at
    150 kbit/s, f at 1 Mbit/s and h at 240 kbit/s (Chromium's under load; h fits, the hall keeps
    it) or 400 kbit/s (it does not: short probes, ever rarer). It never gets f (it did, then held
    it 15 s), and spends little time on an h that does not fit."""
    t = SimulcastRoom()
    try:
        slot = t.subscribe("weak", 720)
        assert slot.layers is not None
        t.room._downlink["weak"] = (300e3, 0.0)
        rates = (150e3, h_bps, 1e6)
        now = 1000.0
        seconds_on = [0, 0, 0]
        for _ in range(60):
            t.sending(now, {0, 1, 2}, rates)
            t.room._update_layers(now)
            if slot.layers.current != slot.layers.target:  # keyframes come at once
                assert slot.layers.accept(slot.layers.target, descriptor(1, 1, key=True)) == SWITCHED
            seconds_on[slot.layers.current or 0] += 1
            now += 1.0
        assert seconds_on[2] <= 1  # a new slot starts on f: one evaluation brings it down
        if h_bps < 300e3:
            assert seconds_on[1] >= 55
        else:
            assert seconds_on[1] <= 15 and seconds_on[0] >= 44
    finally:
        await t.room.close()


async def test_a_layer_the_publisher_does_not_send_but_a_slot_would_take_stays_active() -> None:
    """Chromium, its estimate low, sends q and f but not h, which a 360-row tile would take:
    the slot takes f meanwhile, and h is not paused (it used to be paused after PAUSE_AFTER_S,
    then resumed at once, again and again: a setParameters to the page every few seconds)."""
    from server.sfu.events import SimulcastLayersChanged
    from server.sfu.simulcast import PAUSE_AFTER_S

    t = SimulcastRoom()
    try:
        slot = t.subscribe("hall", 360)
        now = 1000.0
        for _ in range(3 * int(PAUSE_AFTER_S)):
            t.sending(now, {0, 2})
            t.room._update_layers(now)
            now += 1.0
        assert slot.layers is not None and slot.layers.target == 2
        assert [e.active for e in t.events if isinstance(e, SimulcastLayersChanged)] == []
        t.sending(now, {0, 1, 2})  # h comes: the slot takes it
        t.room._update_layers(now)
        assert slot.layers.target == 1
    finally:
        await t.room.close()


def test_padding_is_left_out_and_the_subscriber_sees_no_gap() -> None:
    """Chromium pads a layer up to its own uplink estimate (and each time a layer is turned on
    again); a single-layer Chromium publisher pads too. The SFU forwards only the pictures: a
    subscriber's line is not the publisher's to probe (a 300 kbit/s hall got the chair's 2 Mbit/s
    probes and lost most of its packets). Its numbers stay contiguous and every frame arrives."""
    single = InboundStream(
        kind="video", publisher_id="kiosk", rtcp_ssrc=2, config=SfuConfig(), on_disconnect=lambda: None
    )
    track = chair_track()
    for source, layer in ((track, track.layers[0]), (single, single)):
        slot, sink = _wired_slot(source)  # type: ignore[arg-type]
        if slot.layers is not None:
            slot.layers.target = 0
        seq = 65_000  # across the wrap too
        for n in range(5):
            for i in range(2):
                packet = rtp(
                    10, seq, 3000 * n, descriptor(n + 1, 1, key=n == 0, start=i == 0) + bytes([i]) * 50
                )
                packet.marker = i == 1
                slot.forward(layer, packet)
                seq += 1
            for _ in range(20):  # the pacer's padding between frames, with a time of its own
                slot.forward(layer, rtp(10, seq, 3000 * n + 1500, padding=255))
                seq += 1
        assert len(sink.sent) == 10, [len(d) for d in sink.sent]  # the pictures' packets only
        seqs, frames = _aiortc_frames(sink.sent)
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False)), seqs
        assert len(frames) == 4 and all(frames)  # (the last stays in the buffer)


async def test_a_slot_gets_the_downlink_its_subscribers_other_slots_do_not_take() -> None:
    """A hall TV with two tiles: the chair's simulcast video large, and a hall whose camera is
    off (its slot forwards next to nothing). The chair's slot may use the downlink the other
    does not take: f at 1.2 Mbit/s on a 1.5 Mbit/s estimate (an equal split gave it 750 kbit/s
    and held it on h); when the other slot takes more, never less than an equal share."""
    t = SimulcastRoom()
    try:
        slot = t.subscribe("hall", 720)
        other_source = InboundStream(
            kind="video", publisher_id="kiosk", rtcp_ssrc=2, config=t.config, on_disconnect=lambda: None
        )
        other = OutStream(kind="video", mid="2", subscriber_id="hall", ssrc=4, config=t.config)
        other.assign(other_source)
        t.room.get("hall").video_slots.append(other)
        t.room._downlink["hall"] = (1.5e6, 0.0)
        assert slot.layers is not None
        now = 1000.0
        rates = (150e3, 500e3, 1.2e6)
        for _ in range(8):
            t.sending(now, {0, 1, 2}, rates)
            t.room._update_layers(now)
            if slot.layers.current != slot.layers.target:
                assert slot.layers.accept(slot.layers.target, descriptor(1, 1, key=True)) == SWITCHED
            now += 1.0
        assert slot.layers.current == 2
        # what the chair's slot may use as the other takes more: never less than half
        from server.sfu.room import _slot_budget

        for other_bps, budget in ((0.0, 1.5e6), (300e3, 1.2e6), (900e3, 750e3)):
            assert _slot_budget(1.5e6, {id(slot): 1.2e6, id(other): other_bps}, slot) == budget
        assert _slot_budget(None, {id(slot): 0.0}, slot) is None
    finally:
        await t.room.close()


def test_a_layer_just_resumed_is_costed_at_its_rate_not_at_its_first_interval() -> None:
    """h sends 500 kbit/s, is paused, and resumes 0.3 s before the next measure: that interval
    holds a fraction of its rate, but it costs what it cost while sent throughout (a hall on
    300 kbit/s took a just-resumed h on its first measure, and lost its picture)."""
    track = chair_track()
    track.layer_info(100.0)
    track.live_since[1], track.last_media_at[1] = 99.0, 101.0
    track.media_bytes[1] += 62_500  # one second at 500 kbit/s
    assert track.layer_info(101.0)[1].bitrate == 500_000
    assert not track.layer_info(103.0)[1].live  # paused: nothing for two seconds
    track.live_since[1], track.last_media_at[1] = 103.7, 104.0
    track.media_bytes[1] += 18_750  # 0.3 s at 500 kbit/s
    h = track.layer_info(104.0)[1]
    assert h.live and h.bitrate == 500_000
    track.media_bytes[1] += 62_500
    track.last_media_at[1] = 105.0
    assert track.layer_info(105.0)[1].bitrate == 500_000  # measured throughout again
