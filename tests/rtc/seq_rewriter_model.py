"""The Python implementation of :class:`rtc.seq_rewriter.SeqRewriter`, which rtc/_seq_rewriter.c
replaced on the forwarding path: the model test_seq_rewriter_model.py checks the C one against,
call for call. rtc/seq_rewriter.py says what the numbering is for, and rtc/_seq_rewriter.pyi what
each call does (the docstrings this code had)."""

from __future__ import annotations

import random
from collections import deque

from rtc.rtputil import seq_add, seq_diff, ts_add

#: Segments of an epoch kept for mapping NACKs back (one per skipped packet or inserted run): at
#: a padding packet between every two frames of 30 fps video, about four seconds.
MAX_SEGMENTS = 128


class SeqRewriterModel:
    """Maps a source's (seq, timestamp) to the continuous output numbering of one slot."""

    def __init__(self, clock_rate: int, rng: random.Random | None = None) -> None:
        self.clock_rate = clock_rate
        self._rng = rng or random.Random()
        self._epoch_first_seq: int | None = None  # source seq of this epoch's first packet
        self._seq_offset = 0  # of the newest segment
        self._ts_offset = 0
        #: (first source seq, seq offset) of each segment of this epoch, oldest first.
        self.segments: deque[tuple[int, int]] = deque(maxlen=MAX_SEGMENTS)
        #: The newest source seq numbered (forwarded or skipped) in this epoch.
        self.newest: int | None = None
        #: The newest output sequence number and timestamp sent, and when (monotonic seconds).
        self.last_seq: int | None = None
        self.last_ts = 0
        self.last_send = 0.0

    @property
    def in_epoch(self) -> bool:
        return self._epoch_first_seq is not None

    def end_epoch(self) -> None:
        self._epoch_first_seq = None

    def begin(self, seq: int, timestamp: int, now: float) -> None:
        if self.last_seq is None:
            self._seq_offset = (self._rng.randint(0, 0x7FFF) - seq) & 0xFFFF
            self._ts_offset = (self._rng.getrandbits(32) - timestamp) & 0xFFFFFFFF
        else:
            self._seq_offset = (self.last_seq + 1 - seq) & 0xFFFF
            elapsed = max(1, int((now - self.last_send) * self.clock_rate))
            self._ts_offset = (self.last_ts + elapsed - timestamp) & 0xFFFFFFFF
        self._epoch_first_seq = seq
        self.segments.clear()
        self.segments.append((seq, self._seq_offset))
        self.newest = seq

    def skip(self, seq: int) -> bool:
        if self.newest is None or seq_diff(seq, self.newest) <= 0:
            return False
        self.newest = seq
        self._seq_offset = (self._seq_offset - 1) & 0xFFFF
        self.segments.append((seq_add(seq, 1), self._seq_offset))
        return True

    def insert(self, count: int) -> int | None:
        newest, last = self.newest, self.last_seq
        if count <= 0 or newest is None or last is None or not self.in_epoch:
            return None
        if seq_add(newest, self._seq_offset) != last:
            return None
        self._seq_offset = (self._seq_offset + count) & 0xFFFF
        self.segments.append((seq_add(newest, 1), self._seq_offset))
        self.last_seq = seq_add(last, count)
        return seq_add(last, 1)

    def in_this_epoch(self, seq: int) -> bool:
        return self._epoch_first_seq is not None and seq_diff(seq, self._epoch_first_seq) >= 0

    def seq(self, source_seq: int) -> int:
        first, offset = self.segments[-1] if self.segments else (source_seq, self._seq_offset)
        if seq_diff(source_seq, first) >= 0:
            if self.newest is not None and seq_diff(source_seq, self.newest) > 0:
                self.newest = source_seq
            return seq_add(source_seq, offset)
        # older than the newest segment: a late packet or a resend, in the segment it fell in
        for first, offset in reversed(self.segments):
            if seq_diff(source_seq, first) >= 0:
                return seq_add(source_seq, offset)
        return seq_add(source_seq, self.segments[0][1])

    def timestamp(self, source_ts: int) -> int:
        return ts_add(source_ts, self._ts_offset)

    def source_seq(self, out_seq: int) -> int | None:
        until: int | None = None  # the first source seq of the next (newer) segment
        for first, offset in reversed(self.segments):
            seq = seq_add(out_seq, -offset)
            if seq_diff(seq, first) >= 0 and (until is None or seq_diff(seq, until) < 0):
                return seq if self.in_this_epoch(seq) else None
            until = first
        return None

    def sent(self, out_seq: int, out_ts: int, now: float) -> None:
        if self.last_seq is None or seq_diff(out_seq, self.last_seq) > 0:
            self.last_seq = out_seq
            self.last_ts = out_ts
            self.last_send = now

    def timestamp_at(self, now: float) -> int:
        return ts_add(self.last_ts, int((now - self.last_send) * self.clock_rate))
