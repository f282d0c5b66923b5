"""Probing a subscriber's line with padding before a simulcast step up (server/sfu/prober.py).

The link lab's hall A (300 kbit/s) was stepped up to a layer its line could not carry whenever
its estimate showed a margin, and froze for seconds each time. Now the slot keeps its layer and
padding brings what the hall receives up to the next layer's rate; the step is taken only when
the hall's own estimate grew meanwhile. These tests drive a real slot (its packets through
aiortc's jitter buffer) and the subscriber's REMB and NACKs as RTCP packets."""

from __future__ import annotations

import asyncio
import random

from rtc import aiortc_internals as ai
from rtc.rtputil import seq_add
from rtc.seq_rewriter import SeqRewriter
from server.sfu.prober import PROBE_S, Prober
from server.sfu.relay import PADDING_PACKET_BYTES, OutStream
from server.sfu.simulcast import HOLD_DOWN_S, SWITCHED
from tests.sfu.test_sfu_simulcast_units import (
    SimulcastRoom,
    _aiortc_frames,
    _wired_slot,
    chair_track,
    descriptor,
    rtp,
)


def test_inserted_packets_take_the_next_numbers_and_map_back_to_no_source_packet() -> None:
    r = SeqRewriter(90000, rng=random.Random(7))
    r.begin(65533, 1000, 0.0)  # across the 16-bit wrap
    sent = []
    for seq in (65533, 65534, 65535):
        out = r.seq(seq)
        r.sent(out, r.timestamp(1000), 0.0)
        sent.append(out)
    first = r.insert(3)
    assert first == seq_add(sent[-1], 1)
    after = r.seq(0)  # the next source packet (0, after the wrap) follows the inserted ones
    r.sent(after, r.timestamp(4000), 0.1)
    assert after == seq_add(first, 3)
    # a NACK for an inserted number maps to nothing; the media around it map back
    assert [r.source_seq(seq_add(first, i)) for i in range(3)] == [None, None, None]
    assert r.source_seq(sent[0]) == 65533 and r.source_seq(after) == 0
    # a late packet from before the insertion keeps its place below it
    assert r.seq(65535) == sent[-1]
    # a source packet numbered but not sent (its send failed): nothing may take its place
    r.seq(1)
    assert r.insert(1) is None


class Chair:
    """Frames of the chair's q layer into a real slot (as in the simulcast unit tests)."""

    def __init__(self) -> None:
        self.track = chair_track()
        self.layer = self.track.layers[0]
        self.slot, self.sink = _wired_slot(self.track)
        assert self.slot.layers is not None
        self.slot.layers.target = 0
        self.seq = 1000
        self.n = 0

    def frame(self, packets: int = 2) -> None:
        for i in range(packets):
            payload = descriptor(self.n + 1, 1, key=self.n == 0, start=i == 0) + bytes([i]) * 300
            packet = rtp(10, self.seq, 3000 * self.n, payload)
            packet.marker = i == packets - 1
            self.slot.forward(self.layer, packet)
            self.seq += 1
        self.n += 1


async def remb(slot: OutStream, bitrate: int) -> None:
    """The subscriber's estimate, as its REMB arrives."""
    packet = ai.RtcpPsfbPacket(
        fmt=ai.RTCP_PSFB_APP, ssrc=99, media_ssrc=0, fci=ai.pack_remb_fci(bitrate, [slot._ssrc])
    )
    await slot._handle_rtcp_packet(packet)
    fresh = slot.fresh_remb()
    assert fresh is not None and abs(fresh - bitrate) <= bitrate / 1000  # (18-bit mantissa)


def test_padding_goes_between_frames_and_the_decoder_sees_no_gap() -> None:
    c = Chair()
    c.frame()
    assert c.slot.send_padding(3 * PADDING_PACKET_BYTES) == 3 * PADDING_PACKET_BYTES
    c.frame()
    # mid-frame (a frame's first packet sent, not its last): no padding
    payload = descriptor(c.n + 1, 1, key=False, start=True) + bytes(300)
    c.slot.forward(c.layer, rtp(10, c.seq, 3000 * c.n, payload))
    c.seq += 1
    assert c.slot.send_padding(5 * PADDING_PACKET_BYTES) == 0
    last = rtp(10, c.seq, 3000 * c.n, descriptor(c.n + 1, 1, key=False, start=False) + bytes(300))
    last.marker = True
    c.slot.forward(c.layer, last)
    c.seq += 1
    c.n += 1
    assert c.slot.send_padding(2 * PADDING_PACKET_BYTES + 100) == 2 * PADDING_PACKET_BYTES
    c.frame()
    c.frame()
    padding = [ai.RtpPacket.parse(d) for d in c.sink.sent if not ai.RtpPacket.parse(d).payload]
    assert len(padding) == 5 and all(p.padding_size == PADDING_PACKET_BYTES for p in padding)
    seqs, frames = _aiortc_frames(c.sink.sent)
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False)), seqs
    assert len(frames) == 4 and all(frames)  # every picture decodable (the last stays buffered)
    # padding counts on the wire, not in the send rate the layer choice reads
    assert c.slot.padding_bytes == 5 * (PADDING_PACKET_BYTES + 12)
    assert c.slot.padding_packets == 5


async def _probe(estimates: list[int], nack_at: int | None = None) -> tuple[Prober, Chair]:
    """Run one probe on a slot fed 20 fps of q, the subscriber's estimate following
    ``estimates`` (one REMB every 200 ms, the last one kept), optionally NACKing from the
    ``nack_at``-th REMB on."""
    c = Chair()
    c.frame()
    await remb(c.slot, estimates[0])
    prober = Prober()
    assert prober.start(c.slot, 1, 400_000)
    assert not prober.start(c.slot, 1, 400_000)  # one probe at a time
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROBE_S + 1.0
    tick = 0
    while prober.running and loop.time() < deadline:
        await asyncio.sleep(0.05)
        c.frame()
        tick += 1
        if tick % 4 == 0:
            i = min(tick // 4, len(estimates) - 1)
            await remb(c.slot, estimates[i])
            if nack_at is not None and tick // 4 >= nack_at:
                await c.slot._retransmit([seq_add(c.slot._numbering.last_seq or 0, -k) for k in range(1, 6)])
    assert not prober.running
    return prober, c


async def test_a_probe_on_a_line_with_room_passes_and_pads_at_the_rate_asked() -> None:
    prober, c = await _probe([200_000 + 4_000 * i for i in range(20)])  # +8 %/s, as libwebrtc's
    probe = prober.take_finished()
    assert probe is not None and probe.passed, probe
    assert prober.take_finished() is None  # handed over once
    # about 400 kbit/s for PROBE_S (padding waits for frame ends: within a third either way)
    expected = 400_000 / 8 * PROBE_S
    assert 0.66 * expected <= probe.padding_bytes <= 1.34 * expected, probe.padding_bytes
    assert c.slot.padding_packets == probe.padding_bytes // PADDING_PACKET_BYTES


async def test_a_probe_whose_estimate_stays_flat_fails() -> None:
    prober, _ = await _probe([200_000] * 20)
    probe = prober.take_finished()
    assert probe is not None and probe.passed is False and "estimate 200000 -> 200000" in probe.why


async def test_a_probe_stops_at_once_when_the_estimate_falls_or_the_hall_loses_packets() -> None:
    full = 400_000 / 8 * PROBE_S
    prober, _ = await _probe([200_000, 210_000, 170_000])  # overuse at the second REMB
    probe = prober.take_finished()
    assert probe is not None and probe.passed is False and "fell" in probe.why
    assert probe.padding_bytes < full / 2
    prober, _ = await _probe([200_000 + 4_000 * i for i in range(20)], nack_at=2)
    probe = prober.take_finished()
    assert probe is not None and probe.passed is False and "lost" in probe.why
    assert probe.padding_bytes < full / 2


async def _room_tick(t: SimulcastRoom, now: float, seconds: float) -> None:
    """The room's layer choice at ``now``, ``seconds`` after the last one: meanwhile the chair
    sent q at 150 kbit/s, h at 600 and f at 1,200."""
    t.sending(now, {0, 1, 2}, tuple(rate * seconds for rate in (150e3, 600e3, 1.2e6)))
    t.room._update_layers(now)


async def test_the_room_steps_up_only_after_a_probe_passes_and_backs_off_after_failures() -> None:
    """A hall on q whose estimate (300 kbit/s) shows room above q but does not cover h outright:
    it used to step up to h at once. Now a probe starts and the slot stays on q; after a passed
    probe the next choice takes h; failed probes hold it off, twice as long each time."""
    for grows in (True, False):
        t = SimulcastRoom()
        c = Chair()
        c.track = t.track  # the room's track
        c.layer = t.track.layers[0]
        c.slot, c.sink = _wired_slot(t.track)
        assert c.slot.layers is not None
        sub = t.room.admit("hall")
        assert t.room._ticker is not None
        t.room._ticker.cancel()  # the test is the room's clock (its evaluations are called here)
        sub.video_slots.append(c.slot)
        t.room._tile_heights["hall"] = {"chair": 720}
        try:
            c.slot.layers.target = 0
            c.frame()
            assert c.slot.layers.current == 0
            now = 1000.0
            t.track.layer_info(now - 1.0)  # the layers' bitrate is measured from a second ago
            t.room._downlink["hall"] = (300e3, 0.0)
            await remb(c.slot, 300_000)
            await _room_tick(t, now, 1.0)
            assert c.slot.layers.target == 0 and sub.prober.running
            estimate = 300_000
            for _ in range(int((PROBE_S + 0.3) / 0.05)):
                await asyncio.sleep(0.05)
                c.frame()
                if grows:
                    estimate = int(estimate * 1.004)
                await remb(c.slot, estimate)
            assert not sub.prober.running
            now += 3.0
            await _room_tick(t, now, 3.0)
            if grows:
                assert c.slot.layers.target == 1  # the step, after the probe passed
                continue
            assert c.slot.layers.target == 0 and not sub.prober.running
            assert c.slot.layers.up_after == now + HOLD_DOWN_S
            now += HOLD_DOWN_S
            await _room_tick(t, now, HOLD_DOWN_S)  # the hold is over: a second probe, failing too
            assert sub.prober.running
            await asyncio.sleep(PROBE_S + 0.2)
            now += 3.0
            await _room_tick(t, now, 3.0)
            assert c.slot.layers.target == 0 and c.slot.layers.up_after == now + 2 * HOLD_DOWN_S
            assert sub.prober.failed == 2 and sub.prober.passed == 0
        finally:
            sub.prober.close()
            c.slot._transport = None  # (the sink is no transport to unregister from)
            await t.room.close()


def test_a_keyframe_switch_still_works_after_padding() -> None:
    """Padding inserted before a switch: the new layer's keyframe starts a new epoch right
    after the padding's numbers, and the decoder sees no gap."""
    c = Chair()
    c.frame()
    assert c.slot.send_padding(4 * PADDING_PACKET_BYTES) == 4 * PADDING_PACKET_BYTES
    assert c.slot.layers is not None
    c.slot.set_layer(1)
    key = rtp(20, 5000, 90_000, descriptor(50, 3, key=True) + bytes(400))
    key.marker = True
    c.slot.forward(c.track.layers[1], key)
    assert c.slot.layers.current == 1
    seqs, frames = _aiortc_frames(c.sink.sent)
    assert len(seqs) == 7
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False)), seqs
    assert len(frames) == 1 and all(frames)


async def test_no_probe_for_a_layer_the_estimate_already_covers() -> None:
    """A paused layer the slot's budget covers outright is resumed for it and stepped up to
    once sent: probing for it would wait for an estimate to grow that has no reason to (the
    link lab's hall B, 6.5 Mbit/s, saw its probes for a paused f fail as flat)."""
    from server.sfu.simulcast import LayerInfo

    t = SimulcastRoom()
    c = Chair()
    sub = t.room.admit("hall")
    try:
        c.frame()
        await remb(c.slot, 6_000_000)
        layers = [LayerInfo(True, 150e3, 180), LayerInfo(True, 600e3, 360), LayerInfo(True, 1.2e6, 720)]
        t.room._probe_up(sub, c.slot, layers, 2, 6e6, 1000.0)
        assert not sub.prober.running
        t.room._probe_up(sub, c.slot, layers, 2, 1.3e6, 1000.0)  # 1.2M / 0.85 > 1.3M: probed
        assert sub.prober.running
    finally:
        sub.prober.close()
        await t.room.close()


async def test_a_step_down_past_a_paused_layer_takes_that_layer_not_the_lowest() -> None:
    """Hall B on f, h paused (nobody took it), its estimate falls to what carries h but not
    f: it steps down to h, which is resumed for it, not to q (the link lab's hall B fell to
    q and waited out its hold-off there)."""
    from server.sfu.simulcast import LayerPause

    t = SimulcastRoom()
    slot = t.subscribe("hall", 720)
    try:
        assert t.room._ticker is not None
        t.room._ticker.cancel()
        assert slot.layers is not None
        pause = LayerPause(3)
        pause.active = frozenset({0, 2})
        pause.last_bitrate = [150e3, 500e3, 1.2e6]
        t.room._layer_pause["chair"] = (t.track, pause)
        now = 1000.0
        t.track.layer_info(now - 1.0)
        t.sending(now, {0, 2}, (150e3, 0.0, 1.2e6))
        slot.layers.current = slot.layers.target = 2
        t.room._downlink["hall"] = (900e3, 0.0)  # h (500k) fits its 85 %, f does not
        t.room._update_layers(now)
        assert slot.layers.target == 1
        assert 1 in pause.active  # resumed for it
    finally:
        await t.room.close()


async def test_a_new_slot_starts_on_the_lowest_layer_until_its_subscriber_sends_an_estimate() -> None:
    """A hall that just joined, its line unknown: the lowest layer, not the one its tile wants
    (the link lab's 300 kbit/s hall A was started on h and lost 25-45 % for twenty seconds).
    Once its estimate comes, the choice follows it (a strong line goes up a layer at a time as
    they fit); a subscriber that never sends one gets what its tile wants after the wait."""
    t = SimulcastRoom()
    wait = t.config.first_estimate_wait
    try:
        assert t.room._ticker is not None
        t.room._ticker.cancel()
        strong, silent = t.subscribe("strong", 720), t.subscribe("silent", 720)
        for slot in (strong, silent):
            assert slot.layers is not None
            slot.layers.first_choice_at = None  # (subscribe() puts them past the wait)
        now = 1000.0
        t.sending(now, {0, 1, 2}, (0.0, 0.0, 0.0))  # sending, no bitrate measured yet (0 bit/s)
        t.room._update_layers(now)
        assert strong.layers is not None and silent.layers is not None
        assert (strong.layers.target, silent.layers.target) == (0, 0)
        now += 0.5
        t.track.layer_info(now - 1.0)
        await _room_tick(t, now, 1.0)
        assert (strong.layers.target, silent.layers.target) == (0, 0)
        assert strong.layers.up_after <= now  # not held off: the bandwidth did nothing
        for slot in (strong, silent):
            assert slot.layers is not None and slot.layers.accept(0, descriptor(1, 1, key=True)) == SWITCHED
        t.room._downlink["strong"] = (4e6, 0.0)
        targets = []
        for _ in range(int(wait) + 1):
            now += 1.0
            await _room_tick(t, now, 1.0)
            targets.append((strong.layers.target, silent.layers.target))
            waiting = now - 1000.0 < wait
            assert silent.layers.target == (0 if waiting else 2), (now, targets)  # no estimate
            for slot in (strong, silent):
                assert slot.layers is not None
                if slot.layers.current != slot.layers.target:  # keyframes come at once
                    slot.layers.accept(slot.layers.target, descriptor(2, 1, key=True))
        assert targets[0] == (1, 0) and targets[1][0] == 2
        assert now - 1000.0 >= wait and targets[-1][1] == 2
    finally:
        await t.room.close()
