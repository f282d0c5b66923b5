"""Temporal layers (issue 18 item 3: "drop temporal layers before dropping a spatial layer, for
finer steps"), without a network. Chromium encodes each simulcast layer of the official's camera
as VP8 L1T3: TIDs 0, 2, 1, 2, ... (a TL0 picture every fourth frame, TL2 every other one). A slot
can forward TL0 only (a quarter of the frames, about half the bitrate), TL0 and TL1 (half the
frames), or all; the subscriber sees an ordinary stream: contiguous sequence numbers and VP8
PictureIDs, every frame it gets decodable."""

from __future__ import annotations

import asyncio
import time

import pytest

from rtc import aiortc_internals as ai
from rtc.codecs import vp8
from server.sfu.simulcast import LayerInfo, LayerSwitch, choose_layers, choose_temporal
from tests.sfu.test_sfu_simulcast_units import (
    SimulcastRoom,
    _aiortc_frames,
    _receiving,
    _wired_slot,
    chair_track,
    rtp,
)

#: Chromium's three-layer temporal pattern (webrtc DefaultTemporalLayers), frame by frame.
PATTERN = (0, 2, 1, 2)


def vp8_packet(pid: int, tl0: int, tid: int, *, key: bool = False, start: bool = True) -> bytes:
    """A VP8 payload: descriptor with I (15-bit PictureID), L (TL0PICIDX), T (TID, Y=1 for
    the layer-sync TL1/TL2 pictures right after a TL0), then a VP8 payload header byte."""
    b0 = 0x80 | (0x10 if start else 0) | (0x20 if tid == 2 else 0)  # N: TL2 is not a reference
    header = bytes([b0, 0xE0, 0x80 | (pid >> 8), pid & 0xFF, tl0, (tid << 6) | 0x20])
    return header + bytes([0x00 if key else 0x01]) + bytes(20)


def picture_id(payload: bytes) -> int:
    return ((payload[2] & 0x7F) << 8) | payload[3]


# -- PictureIDs ----------------------------------------------------------------------------


def test_dropped_pictures_leave_no_gap_in_picture_ids_and_resends_keep_theirs() -> None:
    m = vp8.PictureIdMunger()
    assert picture_id(m.munge(vp8_packet(100, 5, 0, key=True))) == 100
    m.drop(vp8_packet(101, 5, 2))
    m.drop(vp8_packet(101, 5, 2, start=False))  # another packet of the same picture: counted once
    assert picture_id(m.munge(vp8_packet(102, 5, 1))) == 101
    m.drop(vp8_packet(103, 5, 2))
    assert picture_id(m.munge(vp8_packet(104, 6, 0))) == 102
    # a retransmission of an older packet gets the PictureID it was sent with
    assert picture_id(m.munge(vp8_packet(102, 5, 1, start=False))) == 101
    assert picture_id(m.munge(vp8_packet(100, 5, 0, start=False))) == 100
    # dropping an older picture (a late packet) changes nothing
    m.drop(vp8_packet(103, 5, 2, start=False))
    assert picture_id(m.munge(vp8_packet(105, 6, 2))) == 103
    # the next layer switch follows on the last PictureID sent, across the 15-bit wrap too
    m.rebase()
    assert picture_id(m.munge(vp8_packet(32767, 9, 0, key=True))) == 104
    m.drop(vp8_packet(0, 9, 2))
    assert picture_id(m.munge(vp8_packet(1, 9, 1))) == 105


# -- forwarding ----------------------------------------------------------------------------


class Publisher:
    """Feeds a wired slot the q layer of the chair's track: two packets per picture in
    Chromium's temporal pattern, 15 fps."""

    def __init__(self) -> None:
        self.track = chair_track()
        self.slot, self.sink = _wired_slot(self.track)
        assert self.slot.layers is not None
        self.slot.layers.target = 0
        self.seq = 40_000
        self.frame = 0
        #: (source PictureID, TID) of each picture sent, in order.
        self.pictures: list[tuple[int, int]] = []
        self.held: list[ai.RtpPacket] = []

    def picture(self, *, hold_first: bool = False) -> None:
        n = self.frame
        tid = PATTERN[n % 4]
        pid, tl0 = 2000 + n, 10 + n // 4
        for i in range(2):
            packet = rtp(10, self.seq, 6000 * n, vp8_packet(pid, tl0, tid, key=n == 0, start=i == 0))
            packet.marker = i == 1
            self.seq += 1
            layer = self.track.layers[0]
            layer._cache[packet.sequence_number % len(layer._cache)] = packet  # for NACKs
            if hold_first and i == 0:
                self.held.append(packet)  # lost on the way; comes later, out of order
            else:
                self.slot.forward(layer, packet)
        self.pictures.append((pid, tid))
        self.frame += 1

    def late(self) -> None:
        for packet in self.held:
            self.slot.forward(self.track.layers[0], packet)
        self.held = []

    def sent_pictures(self) -> list[tuple[int, int]]:
        """(PictureID, TID) of each picture the subscriber got (its first packet's)."""
        out = []
        for data in self.sink.sent:
            payload = ai.RtpPacket.parse(data).payload
            if payload and vp8.PayloadDescriptor.parse(payload).frame_start:  # type: ignore[union-attr]
                tid = vp8.temporal_id(payload)
                assert tid is not None
                out.append((picture_id(payload), tid))
        return out


def test_a_slot_forwards_only_the_temporal_layers_it_takes_with_no_gap() -> None:
    p = Publisher()
    switch = p.slot.layers
    assert switch is not None
    p.picture()  # the keyframe: all layers
    p.slot.set_temporal(0)
    for _ in range(7):  # frames 1..7: TL2, TL1, TL2, TL0, TL2, TL1, TL2 -> only frame 4 (TL0)
        p.picture()
    assert switch.temporal == 0
    # back up to all, decided before a TL2 frame: the upper layers resume at the next TL0 only
    p.slot.set_temporal(None)
    p.picture()  # frame 8 is TL0: from here on, everything
    p.slot.set_temporal(1)
    for _ in range(4):  # frames 9..12: TL2 dropped, TL1 and TL0 kept
        p.picture()
    sent = p.sent_pictures()
    assert [tid for _, tid in sent] == [0, 0, 0, 1, 0]
    # the subscriber's PictureIDs have no gap: the dropped pictures were taken out
    assert [pid for pid, _ in sent] == list(range(2000, 2005))
    seqs, frames = _aiortc_frames(p.sink.sent)
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False)), seqs
    assert len(frames) == len(sent) - 1 and all(frames)  # (the last stays in the buffer)
    assert switch.temporal_switches == 3


def test_a_step_up_waits_for_a_base_layer_frame() -> None:
    p = Publisher()
    p.picture()
    p.slot.set_temporal(0)
    for _ in range(4):
        p.picture()  # frames 1..4: 4 is TL0
    p.slot.set_temporal(None)
    p.picture()  # frame 5 (TL2): its reference, frame 4, was sent, but the pattern's frame 7
    p.picture()  # refers to 5 and 6 as well: nothing resumes before the next TL0 (frame 8)
    p.picture()
    p.picture()  # frame 8: TL0
    p.picture()  # frame 9: TL2
    assert [tid for _, tid in p.sent_pictures()] == [0, 0, 0, 2]


def test_a_dropped_packet_that_comes_out_of_order_is_sent_as_padding() -> None:
    """A packet of a dropped picture that arrives late (resent by the publisher) has its number
    between packets already sent: it goes out as padding in its place, so the subscriber has no
    gap to ask for and no piece of a picture it will never complete."""
    p = Publisher()
    p.picture()
    p.slot.set_temporal(0)
    p.picture(hold_first=True)  # frame 1 (TL2): its first packet is lost for now
    p.picture()  # frame 2 (TL1)
    p.late()
    p.picture()
    p.picture()  # frame 4 (TL0)
    seqs, frames = _aiortc_frames(p.sink.sent)
    assert sorted(seqs) == list(range(seqs[0], seqs[0] + len(seqs))), seqs  # no gap (one late)
    assert all(frames)
    padding = [d for d in p.sink.sent if not ai.RtpPacket.parse(d).payload]
    assert len(padding) == 1
    assert [tid for _, tid in p.sent_pictures()] == [0, 0]
    # a NACK for it gets padding again, not the picture's piece
    out_seq = ai.RtpPacket.parse(padding[0]).sequence_number
    before = len(p.sink.sent)
    asyncio.run(p.slot._retransmit([out_seq]))
    resent = [ai.RtpPacket.parse(d) for d in p.sink.sent[before:]]
    assert [(r.sequence_number, r.payload) for r in resent] == [(out_seq, b"")]


# -- choosing ------------------------------------------------------------------------------

#: h at 500 kbit/s from a 30 fps camera: TL0 260 kbit/s at 7.5 fps, TL0+TL1 380 kbit/s at 15 fps
#: (Chromium's split is about 50/25/25 %).
FPS = (7.5, 15.0, 30.0)
H = LayerInfo(True, 500_000, 360, temporal=(260_000, 380_000, 500_000), temporal_fps=FPS)
Q = LayerInfo(True, 150_000, 180, temporal=(80_000, 115_000, 150_000), temporal_fps=FPS)
F = LayerInfo(True, 1_200_000, 720, temporal=(620_000, 900_000, 1_200_000), temporal_fps=FPS)


def choose(
    layers: list[LayerInfo], budget: float, current: int, temporal: int | None
) -> tuple[int, int | None]:
    return choose_layers(
        layers, tile_height=360, budget_bps=budget, loss=0.0, current=current, temporal=temporal
    )


def test_temporal_layers_go_before_a_spatial_layer() -> None:
    layers = [Q, H, F]
    # h all fits
    assert choose(layers, 700e3, 1, None) == (1, None)
    # the estimate falls under h: it keeps h's pictures at half the frame rate (TL0+TL1 fit)
    assert choose(layers, 460e3, 1, None) == (1, 1)
    # further: TL0 alone would be 7.5 fps, under MIN_TEMPORAL_FPS: down to q, all of it
    assert choose(layers, 330e3, 1, 1) == (0, None)
    # without temporal layers (a publisher that sends none) it is the old choice: down to q
    plain = [LayerInfo(True, 150_000, 180), LayerInfo(True, 500_000, 360), LayerInfo(True, 1_200_000, 720)]
    assert choose(plain, 460e3, 1, None) == (0, None)
    # up: the temporal layers first, then the next spatial layer
    assert choose(layers, 380e3 * 1.25, 1, 1) == (1, None)
    assert choose(layers, 380e3 * 1.1, 1, 1) == (1, 1)  # no room shown above what arrives yet
    # q all taken: up a spatial layer, all of it (the step is the probe, as without temporal layers)
    assert choose(layers, 250e3 * 1.25, 0, None) == (1, None)
    # held off after a failed step: stays
    assert choose_temporal(H, budget_bps=600e3, current=1, may_step_up=False) == 1


def test_no_temporal_layer_is_dropped_below_fourteen_frames_a_second() -> None:
    """A 20 fps camera: TIDs 0-1 are 10 fps, so a hall whose line cannot carry all of h gets q
    at 20 fps, not h at 10 (MIN_TEMPORAL_FPS); a 60 fps one may be held to TID 0 (15 fps)."""
    slow = [LayerInfo(True, r.bitrate, r.height, r.temporal, (5.0, 10.0, 20.0)) for r in (Q, H, F)]
    assert slow[1].lowest_temporal() is None
    assert choose(slow, 460e3, 1, None) == (0, None)
    fast = [LayerInfo(True, r.bitrate, r.height, r.temporal, (15.0, 30.0, 60.0)) for r in (Q, H, F)]
    assert fast[1].lowest_temporal() == 0
    assert choose(fast, 330e3, 1, None) == (1, 0)


async def test_the_room_drops_temporal_layers_of_a_hall_whose_line_cannot_carry_the_whole_layer() -> None:
    """Packets through the track: h sends L1T3 at 30 fps. A hall with a 360-row tile whose
    estimate carries TIDs 0-1 of h but not all of it keeps h at 15 fps (it used to drop to q);
    its line counts as held down; when the estimate recovers, it gets all of h again."""
    t = SimulcastRoom()
    try:
        _receiving(t.track)
        slot = t.subscribe("hall", 360)
        assert slot.layers is not None
        start = time.monotonic() - 1.0
        t.track.layer_info(start)  # the measure starts a second ago and ends at start + 1.0
        seq = {"q": 100, "h": 200}
        for n in range(30):  # one second at 30 fps; h's TL0 pictures are the largest
            tid = PATTERN[n % 4]
            for rid, ssrc, size in (("q", 10, 60), ("h", 20, 1000 if tid == 0 else 400)):
                for i in range(2):
                    seq[rid] += 1
                    payload = vp8_packet(n, n // 4, tid, key=n == 0, start=i == 0) + bytes(size)
                    await t.track._handle_rtp_packet(rtp(ssrc, seq[rid], n * 3000, payload, rid), 0)
        now = start + 1.0  # (the packets' arrival times are later: they count as live)
        info = t.track.layer_info(now)
        h = info[1]
        assert len(h.temporal) == 3 and h.temporal[0] < h.temporal[1] < h.temporal[2]
        assert h.temporal[2] == pytest.approx(h.bitrate)
        assert h.temporal_fps == (8.0, 15.0, 30.0)
        slot.layers.current = slot.layers.target = 1  # forwarding h
        t.room._downlink["hall"] = (h.temporal[1] / 0.8, 0.0)  # TL0+TL1 fits, all of h does not
        t.room._update_layers(now)
        assert (slot.layers.target, slot.layers.temporal_target) == (1, 1)
        assert t.room._held_down["hall"]
        t.room._downlink["hall"] = (h.bitrate * 1.5, 0.0)
        slot.layers.up_after = now  # (the hold-off after a step down is tested elsewhere)
        t.room._update_layers(now + 0.2)
        assert (slot.layers.target, slot.layers.temporal_target) == (1, None)
    finally:
        await t.room.close()


def test_a_switch_to_another_spatial_layer_takes_its_temporal_choice_at_the_keyframe() -> None:
    switch = LayerSwitch(target=1)
    switch.temporal_target = 1
    assert switch.accept(1, vp8_packet(1, 1, 0, key=True)) == 2  # SWITCHED
    assert switch.temporal == 1
    assert switch.drops(vp8_packet(2, 1, 2)) and not switch.drops(vp8_packet(3, 1, 1))
