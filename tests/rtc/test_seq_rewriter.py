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
