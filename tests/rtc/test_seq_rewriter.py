"""rtc/seq_rewriter.py: the subscriber sees one continuous stream across source switches,
pauses and the 65535 -> 0 / 2**32 -> 0 wraps, and late packets of an old epoch are refused."""

from __future__ import annotations

import random

from rtc.rtputil import seq_diff, ts_diff
from rtc.seq_rewriter import SeqRewriter


def _send(rw: SeqRewriter, seq: int, ts: int, now: float) -> tuple[int, int]:
    out = rw.seq(seq), rw.timestamp(ts)
    rw.sent(*out, now)
    return out


def test_first_epoch_starts_at_random_numbers() -> None:
    starts = set()
    for seed in range(5):
        rw = SeqRewriter(90000, random.Random(seed))
        rw.begin(1000, 5000, now=0.0)
        starts.add((rw.seq(1000), rw.timestamp(5000)))
        assert rw.seq(1000) <= 0x7FFF  # room before the first wrap, as RFC 3550 suggests
    assert len(starts) == 5


def test_continuity_across_a_source_switch() -> None:
    rw = SeqRewriter(90000, random.Random(1))
    rw.begin(100, 10_000, now=0.0)
    for i in range(10):
        last = _send(rw, 100 + i, 10_000 + 3000 * i, now=i / 30)
    # another publisher, numbered independently, 0.5 s later
    rw.end_epoch()
    assert not rw.in_epoch
    rw.begin(40_000, 7_777_777, now=9 / 30 + 0.5)
    first = _send(rw, 40_000, 7_777_777, now=9 / 30 + 0.5)
    assert seq_diff(first[0], last[0]) == 1
    assert ts_diff(first[1], last[1]) == 45_000  # 0.5 s at 90 kHz: time keeps running
    assert seq_diff(rw.seq(40_005), first[0]) == 5


def test_sequence_and_timestamp_wrap() -> None:
    rw = SeqRewriter(48000, random.Random(2))
    rw.begin(65530, 0xFFFFFF00, now=0.0)
    outs = [
        _send(rw, (65530 + i) & 0xFFFF, (0xFFFFFF00 + 960 * i) & 0xFFFFFFFF, now=i * 0.02) for i in range(12)
    ]
    for a, b in zip(outs, outs[1:], strict=False):
        assert seq_diff(b[0], a[0]) == 1 and ts_diff(b[1], a[1]) == 960
    # the source's wrap is no epoch boundary, and NACKs map back across it
    assert rw.in_this_epoch(3)
    assert rw.source_seq(rw.seq(3)) == 3
    assert rw.source_seq(rw.seq(65535)) == 65535


def test_output_wraps_after_a_switch() -> None:
    rw = SeqRewriter(90000, random.Random(3))
    rw.begin(0, 0, now=0.0)
    rw.sent(65535, 123, now=1.0)  # the output is about to wrap
    rw.end_epoch()
    rw.begin(500, 0, now=1.1)
    assert rw.seq(500) == 0 and rw.seq(501) == 1


def test_late_packets_from_before_the_epoch_are_refused() -> None:
    rw = SeqRewriter(90000, random.Random(4))
    assert not rw.in_this_epoch(5)
    rw.begin(1000, 0, now=0.0)
    assert rw.in_this_epoch(1000) and rw.in_this_epoch(1001)
    assert not rw.in_this_epoch(999)
    assert rw.source_seq(rw.seq(999)) is None  # a NACK for a packet of the previous source


def test_resent_packets_do_not_move_the_newest() -> None:
    rw = SeqRewriter(90000, random.Random(5))
    rw.begin(10, 0, now=0.0)
    newest = _send(rw, 12, 6000, now=1.0)
    rw.sent(rw.seq(11), rw.timestamp(3000), now=2.0)  # older: a retransmission
    assert rw.last_seq == newest[0] and rw.last_ts == newest[1] and rw.last_send == 1.0
    assert ts_diff(rw.timestamp_at(1.5), newest[1]) == 45_000


def test_a_skipped_packet_leaves_no_gap_and_nacks_map_back_across_it() -> None:
    rw = SeqRewriter(90000, random.Random(6))
    rw.begin(100, 0, now=0.0)
    a = _send(rw, 100, 0, now=0.0)[0]
    b = _send(rw, 101, 0, now=0.01)[0]
    assert rw.skip(102)  # padding only, the newest: left out
    c = _send(rw, 103, 3000, now=0.02)[0]
    assert rw.skip(104) and rw.skip(105)
    d = _send(rw, 106, 6000, now=0.03)[0]
    assert [seq_diff(y, x) for x, y in zip([a, b, c], [b, c, d], strict=True)] == [1, 1, 1]
    # NACKs: each output number to its own source packet; the skipped ones have none
    assert [rw.source_seq(n) for n in (a, b, c, d)] == [100, 101, 103, 106]
    # a resend is numbered as it was first sent
    assert rw.seq(101) == b and rw.seq(103) == c


def test_only_the_newest_packet_can_be_skipped() -> None:
    rw = SeqRewriter(90000, random.Random(7))
    rw.begin(10, 0, now=0.0)
    _send(rw, 10, 0, now=0.0)
    _send(rw, 12, 0, now=0.01)  # 11 is late
    assert not rw.skip(11)  # out of order: its number is taken between 10 and 12, it is sent
    assert not rw.skip(12)  # already sent
    assert rw.skip(13)
    # a packet lost before a skip and arriving late still gets the number it was left
    x = _send(rw, 14, 0, now=0.02)[0]
    assert seq_diff(x, rw.seq(12)) == 1
    rw2 = SeqRewriter(90000, random.Random(8))
    rw2.begin(10, 0, now=0.0)
    first = _send(rw2, 10, 0, now=0.0)[0]
    assert rw2.skip(12)  # 11 not here yet
    late = rw2.seq(11)
    after = _send(rw2, 13, 0, now=0.02)[0]
    assert seq_diff(late, first) == 1 and seq_diff(after, late) == 1
    assert rw2.source_seq(late) == 11 and rw2.source_seq(after) == 13


def test_nacks_older_than_the_segments_kept_are_not_mapped() -> None:
    from rtc.seq_rewriter import MAX_SEGMENTS

    rw = SeqRewriter(90000, random.Random(9))
    rw.begin(0, 0, now=0.0)
    first = _send(rw, 0, 0, now=0.0)[0]
    seq = 1
    for _ in range(MAX_SEGMENTS + 5):  # a frame, a padding packet, again and again
        _send(rw, seq, 0, now=0.0)
        assert rw.skip(seq + 1)
        seq += 2
    assert rw.source_seq(first) is None  # long past resending
    assert rw.source_seq(rw.seq(seq - 2)) == seq - 2
