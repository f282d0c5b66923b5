"""rtc/retransmit.py: a packet is resent at most max_per_packet times, never twice within
~one RTT, and all resends share budget_share of the estimate; old sequence numbers are
forgotten across the 65535 -> 0 wrap."""

from __future__ import annotations

from rtc.retransmit import RetransmitGate


def test_per_packet_limit_and_rtt_gap() -> None:
    gate = RetransmitGate(max_per_packet=2, budget_share=1.0, window=128)
    big = 10_000_000
    assert gate.may_resend(7, now=0.0, rtt=0.1) and gate.take(7, 100, 0.0, big)
    assert not gate.may_resend(7, now=0.05, rtt=0.1)  # the first copy may still be on its way
    assert gate.may_resend(7, now=0.11, rtt=0.1) and gate.take(7, 100, 0.11, big)
    assert not gate.may_resend(7, now=5.0, rtt=0.1)  # had its two resends
    assert gate.may_resend(8, now=0.11, rtt=0.1)
    assert gate.may_resend(9, now=0.0, rtt=0.0) and gate.take(9, 1, 0.0, big)
    assert not gate.may_resend(9, now=0.01, rtt=0.0)  # a floor of 20 ms even at zero RTT


def test_byte_budget_is_a_share_of_the_estimate() -> None:
    # 15 % of 300 kbit/s = 5625 B/s, burst max(3000, 2812) = 3000 B
    gate = RetransmitGate(max_per_packet=3, budget_share=0.15, window=128)
    taken = [gate.take(seq, 1000, 0.0, 300_000) for seq in range(5)]
    assert taken == [True, True, True, False, False]
    assert gate.may_resend(3, 0.5, 0.1)  # refused by the budget: not counted as resent
    assert gate.take(3, 1000, 0.2, 300_000)  # refilled at 5625 B/s


def test_old_sequence_numbers_are_forgotten_across_the_wrap() -> None:
    gate = RetransmitGate(max_per_packet=1, budget_share=1.0, window=16)
    seqs = [(65520 + i) & 0xFFFF for i in range(40)]
    for i, seq in enumerate(seqs):
        assert gate.take(seq, 1, float(i), 1e9)
    assert len(gate) <= 2 * gate.window
    assert not gate.may_resend(seqs[-1], 100.0, 0.1)  # recent ones are remembered
    assert gate.may_resend(seqs[0], 100.0, 0.1)  # 65520 was forgotten
