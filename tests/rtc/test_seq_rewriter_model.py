"""rtc/_seq_rewriter.c against the Python it replaced (seq_rewriter_model.py): the same answer to
every call, and the same state after it, over long random streams of what forwarding does to a
slot (epochs, skipped padding, inserted probes, late, resent and NACKed packets, sender reports)
across both wraps. test_seq_rewriter.py says what the numbering must do; this says the C one
does exactly what the Python one did."""

from __future__ import annotations

import random
from typing import Any

import pytest

from rtc.seq_rewriter import MAX_SEGMENTS, SeqRewriter
from tests.rtc.seq_rewriter_model import MAX_SEGMENTS as MODEL_MAX_SEGMENTS
from tests.rtc.seq_rewriter_model import SeqRewriterModel


def state(rw: Any) -> tuple[Any, ...]:
    """The public state; stored values compared reduced (the model keeps an int as it was given
    where it only ever uses it modulo 2**16)."""
    newest = None if rw.newest is None else rw.newest & 0xFFFF
    segments = [(first & 0xFFFF, offset) for first, offset in rw.segments]
    return rw.in_epoch, rw.last_seq, rw.last_ts, rw.last_send, newest, segments


def unreduced(rng: random.Random, value: int, bits: int) -> int:
    """Now and then the same value as a larger int: both must reduce it alike."""
    return value + rng.choice((0, 0, 0, 1, 7)) * (1 << bits)


@pytest.mark.parametrize("seed", range(6))
def test_the_c_numbering_answers_every_call_as_the_model(seed: int) -> None:
    rng = random.Random(seed)
    c, model = SeqRewriter(90000, random.Random(seed)), SeqRewriterModel(90000, random.Random(seed))
    assert c.clock_rate == model.clock_rate and MAX_SEGMENTS == MODEL_MAX_SEGMENTS
    # before any epoch: numbering passes through, nothing maps back
    assert c.seq(5) == model.seq(5) and c.source_seq(5) == model.source_seq(5) is None
    assert c.insert(2) == model.insert(2) is None and state(c) == state(model)
    seq, ts, now = rng.randrange(0x10000), rng.randrange(1 << 32), 0.0
    sent: list[int] = []
    for step in range(8000):
        now += rng.choice((0.0, 0.001, 0.02, 0.5))
        op = rng.random()
        if op < 0.01 or not c.in_epoch:  # a source switch, a pause ended, a layer switch
            if rng.random() < 0.5:
                seq, ts = rng.randrange(0x10000), rng.randrange(1 << 32)
            c.end_epoch(), model.end_epoch()
            args = (unreduced(rng, seq, 16), unreduced(rng, ts, 32), now)
            assert c.begin(*args) is None and model.begin(*args) is None
            sent.clear()
        elif op < 0.08:  # a padding-only packet: left out when it is the newest
            back = rng.choice((0, 0, 0, 1, 3))
            seq = (seq + 1) & 0xFFFF
            assert c.skip((seq - back) & 0xFFFF) == model.skip((seq - back) & 0xFFFF), step
        elif op < 0.11:  # a probe of the SFU's own
            count = rng.choice((-1, 0, 1, 3, 40))
            assert c.insert(count) == model.insert(count), step
        elif op < 0.16 and sent:  # a NACK from the subscriber, for a number sent or near one
            out = (rng.choice(sent) + rng.choice((0, 0, 1, -1, 300))) & 0xFFFF
            assert c.source_seq(out) == model.source_seq(out), step
        elif op < 0.18:  # a sender report
            assert c.timestamp_at(now) == model.timestamp_at(now), step
        else:  # a media packet: mostly the next, sometimes late, resent, or from long before
            back = 0 if op < 0.9 else rng.choice((1, 2, 10, 200, 40000))
            seq, ts = (seq + 1) & 0xFFFF, (ts + 3000) & 0xFFFFFFFF
            p_seq, p_ts = (seq - back) & 0xFFFF, (ts - back * 3000) & 0xFFFFFFFF
            ours = c.in_this_epoch(unreduced(rng, p_seq, 16))
            assert ours == model.in_this_epoch(p_seq), step
            out = (c.seq(p_seq), c.timestamp(unreduced(rng, p_ts, 32)))
            assert out == (model.seq(p_seq), model.timestamp(p_ts)), step
            if ours:
                c.sent(*out, now), model.sent(*out, now)
                sent.append(out[0])
        assert state(c) == state(model), step
    assert len(c.segments) <= MAX_SEGMENTS


def test_bad_arguments_get_a_clear_error() -> None:
    with pytest.raises(ValueError, match="clock_rate"):
        SeqRewriter(0)
    rw = SeqRewriter(48000)
    with pytest.raises(ValueError, match="clock_rate"):
        rw.clock_rate = -8000
    rw.clock_rate = 8000  # set once the codec is negotiated
    assert rw.clock_rate == 8000
    with pytest.raises(TypeError, match="expected an int"):
        rw.seq("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="missing argument 'now'"):
        rw.begin(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected or repeated argument"):
        rw.sent(1, 2, 3.0, now=4.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        rw.sent(1, 2, "now")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="__init__"):
        SeqRewriter.__new__(SeqRewriter).begin(1, 2, 0.0)
    rw.begin(seq=1, timestamp=2, now=0.5)  # by name too, as the callers' tests do
    assert rw.in_epoch and rw.in_this_epoch(1)
