"""Transport-wide congestion control feedback (rtc/transport_cc.py): the bytes libwebrtc reads,
what the feedback says back (every packet's arrival to 250 us, the lost ones as lost), and the
SFU's answer accepting it for the sections the client sends."""

from __future__ import annotations

from rtc.transport_cc import MAX_PACKETS, TransportFeedback, parse
from server.sfu.offer import read_offer
from tests.sfu.test_sfu_simulcast_units import offer_text


def test_a_small_feedback_is_the_bytes_libwebrtc_writes() -> None:
    """Worked by hand from the draft's format (and libwebrtc's writer): seq 10 at 128 ms, 11 at
    129 ms, 12 lost, 13 at 128.5 ms (out of order: a negative, two-byte delta); two-bit status
    vector, padding with the P bit and its count in the last byte."""
    feedback = TransportFeedback(sender_ssrc=1)
    feedback.received(10, 128_000, ssrc=2)
    feedback.received(11, 129_000, ssrc=2)
    feedback.received(13, 128_500, ssrc=2)
    (packet,) = feedback.take()
    assert packet.hex() == (
        "afcd0006"  # V=2, P, FMT 15 | PT 205 (RTPFB) | length 6 words
        "00000001"  # sender SSRC
        "00000002"  # media SSRC
        "000a0004"  # base sequence number 10 | 4 statuses
        "00000200"  # reference time 2 (x 64 ms) | feedback count 0
        "d480"  # two-bit vector: received small, small, not received, large
        "0004"  # deltas: 0 ticks, 4 ticks (1 ms)
        "fffe"  # -2 ticks (-0.5 ms)
        "0002"  # padding: two bytes, the last says so
    )
    assert feedback.take() == []  # nothing new


def test_arrivals_read_back_to_a_tick_across_the_sequence_wrap_with_losses() -> None:
    feedback = TransportFeedback(sender_ssrc=7)
    arrivals: dict[int, int] = {}
    t = 5_000_000_000  # microseconds (the kernel's clock since 1970 in practice)
    for n in range(300):
        seq = (65_400 + n) & 0xFFFF
        t += 700 + (n % 5) * 900  # 0.7-4.3 ms apart
        if n % 37 == 5:
            continue  # lost
        arrivals[seq] = t
        feedback.received(seq, t, ssrc=9)
    packets = feedback.take()
    assert len(packets) == 1
    reference, got = parse(packets[0])
    assert got[0] == (65_400, arrivals[65_400] // 250 * 250 + (250 if arrivals[65_400] % 250 >= 125 else 0))
    assert len(got) == 300 and [s for s, _ in got] == [(65_400 + n) & 0xFFFF for n in range(300)]
    for seq, at in got:
        if seq in arrivals:
            assert at is not None and abs(at - arrivals[seq]) <= 125, (seq, at, arrivals[seq])
        else:
            assert at is None
    assert sum(1 for _, at in got if at is None) == 300 - len(arrivals)


def test_a_gap_too_long_for_a_delta_or_too_many_packets_starts_another_feedback() -> None:
    feedback = TransportFeedback(sender_ssrc=1)
    feedback.received(1, 1_000_000, ssrc=2)
    feedback.received(2, 1_000_000 + 9_000_000, ssrc=2)  # 9 s later: over 16 bits of ticks
    packets = feedback.take()
    assert [len(parse(p)[1]) for p in packets] == [1, 1]
    assert [p[19] for p in packets] == [0, 1]  # feedback packet count goes on
    feedback = TransportFeedback(sender_ssrc=1)
    for seq in range(MAX_PACKETS + 50):
        feedback.received(seq, 1_000_000 + seq * 1000, ssrc=2)
    packets = feedback.take()
    assert [len(parse(p)[1]) for p in packets] == [MAX_PACKETS, 50]


def test_a_late_packet_already_reported_lost_is_not_reported_again() -> None:
    feedback = TransportFeedback(sender_ssrc=1)
    feedback.received(100, 1_000_000, ssrc=2)
    feedback.received(102, 1_001_000, ssrc=2)
    assert [at is None for _, at in parse(feedback.take()[0])[1]] == [False, True, False]
    feedback.received(101, 1_050_000, ssrc=2)  # too late
    feedback.received(103, 1_060_000, ssrc=2)
    assert [s for s, _ in parse(feedback.take()[0])[1]] == [103]


def test_the_answer_accepts_transport_cc_for_the_sections_the_client_sends() -> None:
    offer = read_offer(offer_text())  # Chromium: an audio and a simulcast video it sends
    sending = [m for m in offer.media if m.client_sends]
    assert offer.transport_cc_id == 3 and offer.transport_cc_mids == tuple(m.mid for m in sending)
    engine = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + "".join(
        f"m={m.kind} 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{m.mid}\r\na=rtpmap:96 x/90000\r\n" for m in offer.media
    )
    answer = offer.complete_answer(engine)
    for m in offer.media:
        section = answer.split(f"a=mid:{m.mid}\r\n")[1].split("m=")[0]
        uri = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
        assert (f"a=extmap:3 {uri}" in section) == m.client_sends
        assert ("a=rtcp-fb:96 transport-cc" in section) == m.client_sends
    # sections offering it with different ids: not taken (one transport, one id)
    text = offer_text()
    at = text.index(f"a=mid:{sending[0].mid}")
    end = text.index("m=", at)
    mixed = (
        text[:at]
        + text[at:end].replace(
            "a=extmap:3 http://www.ietf.org/id/draft-holmer",
            "a=extmap:14 http://www.ietf.org/id/draft-holmer",
        )
        + text[end:]
    )
    assert read_offer(mixed).transport_cc_id is None
    assert "transport-cc" not in read_offer(mixed).complete_answer(engine)
