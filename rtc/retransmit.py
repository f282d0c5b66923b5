"""Which NACKed packets to send again (the SFU toward subscribers, the kiosk toward the SFU).

Retransmitting every NACKed packet without limit, as aiortc does, lets a lossy thin link spend
its bandwidth on copies: each NACK triggers more traffic, which causes more loss. The gate
allows each packet a few resends, never twice within about one round trip (the first copy may
still be on its way), and all resends together at most ``budget_share`` of the link's estimate,
so the media (and the audio) keep the rest.
"""

from __future__ import annotations

from rtc.rtputil import TokenBucket, seq_diff

#: Below this gap a second resend of one packet is always too early (seconds).
MIN_RESEND_GAP = 0.02


class RetransmitGate:
    """Per-packet resend limits and a shared byte budget for one outgoing stream.

    Ask :meth:`may_resend` before looking the packet up, then :meth:`take` with its size; a
    packet is counted as resent only when :meth:`take` says yes.
    """

    def __init__(self, *, max_per_packet: int, budget_share: float, window: int) -> None:
        self.max_per_packet = max_per_packet
        self.budget_share = budget_share
        #: Sequence numbers further than this from the newest resend are forgotten.
        self.window = window
        self._resent: dict[int, tuple[int, float]] = {}  # seq -> (times, last time)
        self._budget = TokenBucket(rate=0.0, burst=0.0)

    def may_resend(self, seq: int, now: float, rtt: float) -> bool:
        """False if ``seq`` had its resends, or its last one was less than ~one RTT ago."""
        times, last = self._resent.get(seq, (0, -1e9))
        return times < self.max_per_packet and now - last >= max(MIN_RESEND_GAP, rtt)

    def take(self, seq: int, nbytes: int, now: float, estimate: float) -> bool:
        """Spend ``nbytes`` of the budget (``budget_share`` of ``estimate`` bit/s) on resending
        ``seq``; False, and nothing counted, when the budget is spent."""
        rate = self.budget_share * estimate / 8
        self._budget.rate, self._budget.burst = rate, max(3000.0, rate * 0.5)
        if not self._budget.take(nbytes, now):
            return False
        times, _ = self._resent.get(seq, (0, -1e9))
        self._resent[seq] = (times + 1, now)
        if len(self._resent) > 2 * self.window:
            self._resent = {k: v for k, v in self._resent.items() if abs(seq_diff(seq, k)) < self.window}
        return True

    def __len__(self) -> int:
        return len(self._resent)
