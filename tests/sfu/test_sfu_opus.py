"""The SFU's answer asks every Opus publisher for in-band FEC, DTX and a modest bitrate
(aiortc's own answer carries no Opus fmtp at all); a weak hall is asked for less."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rtc import aiortc_internals as ai
from server.sfu import InvalidRequest, Sfu
from server.sfu.opus import opus_fmtp, with_opus_fmtp
from tests.sfu.sfu_testkit import Client, wait_until

pytestmark = pytest.mark.network


def opus_parameters(sdp: str) -> list[dict[str, object]]:
    """Opus codec parameters of each audio section, as aiortc's SDP parser reads them."""
    desc = ai.SessionDescription.parse(sdp)
    return [
        next(c.parameters for c in m.rtp.codecs if c.name.lower() == "opus")
        for m in desc.media
        if m.kind == "audio"
    ]


def test_fmtp_replaces_the_offered_one_and_touches_nothing_else() -> None:
    sdp = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 minptime=10;useinbandfec=0",
            "a=rtpmap:0 PCMU/8000",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "a=rtpmap:96 VP8/90000",
            "a=fmtp:96 max-fs=12288",
            "",
        ]
    )
    out = with_opus_fmtp(sdp, 24000)
    assert out.count("a=fmtp:111 ") == 1
    assert f"a=fmtp:111 {opus_fmtp(24000)}\r\n" in out
    assert "a=fmtp:96 max-fs=12288" in out and "useinbandfec=0" not in out
    with pytest.raises(ValueError):
        opus_fmtp(1000)


async def test_answer_asks_for_fec_dtx_and_the_participants_bitrate(
    sfu: Sfu, make_client: Callable[..., Client]
) -> None:
    sfu.open_room("r")
    chair = make_client("chair", amplitude=6000, audio_slots=2)
    await chair.connect(await sfu.admit("r", "chair"))
    hall = make_client("hall", amplitude=6000, audio_slots=2)
    await hall.connect(await sfu.admit("r", "hall", audio_max_bitrate=24000))

    for client, rate in ((chair, sfu.config.opus_max_average_bitrate), (hall, 24000)):
        params = opus_parameters(client.pc.remoteDescription.sdp)
        assert len(params) == 3  # the published track and both receive slots
        for p in params:
            values = (p.get("useinbandfec"), p.get("usedtx"), p.get("maxaveragebitrate"))
            assert tuple(str(v) for v in values) == ("1", "1", str(rate))
    # aiortc peers accept the answer and media flows as before
    await wait_until(lambda: hall.log(hall.slot_of("chair", "audio")).frames >= 25, 15, "hall hears chair")

    with pytest.raises(InvalidRequest):
        await sfu.admit("r", "x", audio_max_bitrate=10)
