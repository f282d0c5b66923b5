"""Unit tests of the SFU's pure helpers (no network)."""

from __future__ import annotations

import dataclasses

import pytest

from rtc.rtputil import (
    NackTracker,
    ReceiveStatistics,
    seq_add,
    seq_diff,
    ts_add,
)
from server.sfu import InvalidSdp, SfuConfig
from server.sfu.offer import parse_offer


def test_sequence_maths_wraps() -> None:
    assert seq_add(65535, 1) == 0
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(100, 100) == 0
    assert ts_add(2**32 - 1, 2) == 1


def test_nack_tracker() -> None:
    t = NackTracker(max_age=100)
    assert t.add(65534) is False
    assert t.add(65535) is False
    assert t.add(2) is True  # 0 and 1 missing across the wrap
    assert t.missing == {0, 1}
    t.add(0)
    assert t.missing == {1}
    assert t.add(1000) is False  # a jump beyond the cache is a restart, not loss
    assert t.missing == set()


def test_receive_statistics() -> None:
    s = ReceiveStatistics(90000)
    for seq in (10, 11, 13, 14):
        s.add(seq, seq * 3000, seq / 30)
    assert s.expected == 5 and s.received == 4 and s.lost == 1
    assert s.fraction_lost() == 256 // 5
    assert s.fraction_lost() == 0
    s.add(15, 45000, 0.5)
    assert s.highest_sequence == 15


def test_config_is_frozen_and_validated() -> None:
    cfg = SfuConfig(host_addresses=("127.0.0.1",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.pli_min_interval = 0  # type: ignore[misc]
    with pytest.raises(ValueError):
        SfuConfig(nack_cache_size=1)
    with pytest.raises(ValueError):
        SfuConfig(pli_min_interval=-1)


OFFER_HEAD = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {mids}\r\n"
MEDIA = (
    "m={kind} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na={direction}\r\na=mid:{mid}\r\n"
    "a=rtcp-mux\r\na=rtpmap:{pt} {codec}\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
    "a=fingerprint:sha-256 00:11\r\na=setup:actpass\r\n"
)


def offer(*lines: tuple[str, str], bundle: str | None = None) -> str:
    mids = [str(i) for i in range(len(lines))]
    body = "".join(
        MEDIA.format(
            kind=kind,
            pt=96 if kind == "audio" else 97,
            codec="opus/48000/2" if kind == "audio" else "VP8/90000",
            direction=direction,
            mid=mid,
        )
        for mid, (kind, direction) in zip(mids, lines, strict=True)
    )
    return OFFER_HEAD.format(mids=bundle if bundle is not None else " ".join(mids)) + body


def test_parse_offer_accepts_publish_and_slots() -> None:
    media = parse_offer(offer(("audio", "sendonly"), ("audio", "recvonly"), ("video", "sendrecv")))
    assert [(m.kind, m.server_direction) for m in media] == [
        ("audio", "recvonly"),
        ("audio", "sendonly"),
        ("video", "sendrecv"),
    ]


@pytest.mark.parametrize(
    "sdp",
    [
        offer(("video", "sendonly"), ("video", "sendrecv")),  # two published videos
        offer(("audio", "sendonly"), bundle="x"),  # not bundled
        offer(("audio", "sendonly")).replace("a=rtcp-mux\r\n", ""),
        offer(("audio", "sendonly")).replace("opus/48000/2", "PCMU/8000"),
        offer(("audio", "sendonly")).replace("a=fingerprint:sha-256 00:11\r\n", ""),
        "v=0\r\nm=audio",
        "\x00\x01binary",
        None,
    ],
)
def test_parse_offer_rejects(sdp: object) -> None:
    with pytest.raises(InvalidSdp):
        parse_offer(sdp)
