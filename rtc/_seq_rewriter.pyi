# Types of the C extension rtc/_seq_rewriter.c (built by setup.py); rtc/seq_rewriter.py says
# what it does.
import random

MAX_SEGMENTS: int

class SeqRewriter:
    def __init__(self, clock_rate: int, rng: random.Random | None = None) -> None: ...
    @property
    def in_epoch(self) -> bool:
        """An epoch has begun: packets are being rewritten."""
    @property
    def clock_rate(self) -> int: ...
    @clock_rate.setter
    def clock_rate(self, value: int) -> None: ...
    @property
    def last_seq(self) -> int | None: ...
    @property
    def last_ts(self) -> int: ...
    @property
    def last_send(self) -> float: ...
    @property
    def newest(self) -> int | None: ...
    @property
    def segments(self) -> list[tuple[int, int]]: ...
    def end_epoch(self) -> None:
        """The source switched or paused: the next packet begins a new epoch."""
    def begin(self, seq: int, timestamp: int, now: float) -> None:
        """Begin an epoch at this source packet: it follows on the last one sent. The first
        epoch starts at random numbers (RFC 3550 §5.1)."""
    def skip(self, seq: int, /) -> bool:
        """Leave the source packet ``seq`` out of the numbering: the packets after it are
        numbered one lower. Only the newest packet can be skipped (True); an older one (it came
        out of order) already has its place between numbers sent, so it must be sent (False)."""
    def insert(self, count: int, /) -> int | None:
        """Number ``count`` packets of the SFU's own right after the last one sent: returns the
        first of their output numbers, and the source packets after them are numbered
        ``count`` higher. Only where every source packet numbered so far has been sent (None
        otherwise: an inserted number must not take the place of one the subscriber still
        waits for). The inserted numbers map back to no source packet (a NACK for one is not
        answered). They do not count as sent media: the next epoch's timestamps follow the
        last media packet."""
    def in_this_epoch(self, seq: int, /) -> bool:
        """The source packet ``seq`` is not from before the epoch began."""
    def seq(self, source_seq: int, /) -> int:
        """The output number of ``source_seq`` (of this epoch: see :meth:`in_this_epoch`)."""
    def timestamp(self, source_ts: int, /) -> int: ...
    def source_seq(self, out_seq: int, /) -> int | None:
        """The source sequence number behind ``out_seq`` (a NACK), if it is of this epoch and
        of a segment still kept."""
    def sent(self, out_seq: int, out_ts: int, now: float) -> None:
        """Record a sent (not resent) packet; the newest one is what the next epoch follows."""
    def timestamp_at(self, now: float, /) -> int:
        """The output RTP timestamp that corresponds to ``now`` (for a sender report)."""
