"""NACKs whose missing packets straddle the 65535 → 0 wrap are split into packets aiortc can
serialise (one NACK across the wrap raised 'negative shift count' and was never sent)."""

from __future__ import annotations

from rtc import aiortc_internals as ai
from rtc.rtputil import nack_runs


def test_runs_split_at_the_wrap_and_keep_age_order() -> None:
    assert nack_runs({65534, 65535, 0, 1}, newest=2) == [[65534, 65535], [0, 1]]
    assert nack_runs({10, 12, 11}, newest=13) == [[10, 11, 12]]
    assert nack_runs(set(), newest=5) == []


def test_every_run_serialises_and_parses_back() -> None:
    missing = {65530, 65533, 65535, 0, 3, 40}
    lost = []
    for run in nack_runs(missing, newest=41):
        packet = ai.RtcpRtpfbPacket(fmt=ai.RTCP_RTPFB_NACK, ssrc=1, media_ssrc=2, lost=run)
        data = bytes(packet)  # raised ValueError for a list crossing the wrap
        parsed = ai.RtcpRtpfbPacket.parse(data[4:], ai.RTCP_RTPFB_NACK)
        lost += parsed.lost
    assert sorted(lost) == sorted(missing)


def test_one_packet_across_the_wrap_is_what_aiortc_cannot_send() -> None:
    # Guards the reason for nack_runs: if aiortc learns to pack across the wrap this fails loudly.
    packet = ai.RtcpRtpfbPacket(fmt=ai.RTCP_RTPFB_NACK, ssrc=1, media_ssrc=2, lost=[65535, 0])
    try:
        bytes(packet)
    except ValueError:
        return
    raise AssertionError("aiortc now packs NACKs across the wrap; nack_runs may be simplified")
