"""The SDP offers real browsers make (tests/sfu/sdp_corpus, captured by its capture.py from
Chromium and Firefox ESR: kiosk and official pages, publishing, sharing a screen, receive-only)
and synthetic variants of them (rejected sections, unknown codecs, bundled sections without
their own transport attributes), each answered by the SFU: the answer has the offer's m-lines
in order, live ones bundled, rejected ones port 0 (RFC 3264 §6, RFC 8843)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from rtc import aiortc_internals as ai
from server.sfu import Sfu
from server.sfu.errors import InvalidSdp
from server.sfu.offer import read_offer
from tests.sfu.sdp_corpus import PAGE_SLOTS, disable_section, mid_of, rebuild, sections

CORPUS = Path(__file__).parent / "sdp_corpus"
CAPTURED = sorted(CORPUS.glob("*.sdp"))
SLOTS = PAGE_SLOTS


def captured(name: str) -> str:
    return (CORPUS / name).read_text().replace("\n", "\r\n")


async def answer(sfu: Sfu, sdp: str, pid: str = "p") -> str:
    if "r" not in sfu.room_ids:
        sfu.open_room("r")
    handle = await sfu.admit("r", pid)
    try:
        return await handle.handle_offer(sdp)
    finally:
        await handle.leave()


def check_answer(offer: str, answer_sdp: str, rejected_mids: set[str]) -> None:
    """The answer mirrors the offer: same kinds and mids in the same order; rejected sections port
    0 and out of the BUNDLE group, live ones in it with a live port, Opus/VP8 only, no RTX."""
    desc = ai.SessionDescription.parse(answer_sdp)
    offered = ai.SessionDescription.parse(offer)
    assert [(m.kind, m.rtp.muxId) for m in desc.media] == [(m.kind, m.rtp.muxId) for m in offered.media]
    bundle = next(g for g in desc.group if g.semantic == "BUNDLE")
    live = [m for m in desc.media if m.rtp.muxId not in rejected_mids]
    assert [str(i) for i in bundle.items] == [m.rtp.muxId for m in live]
    for m in desc.media:
        if m.rtp.muxId in rejected_mids:
            assert m.port == 0 and m.direction == "inactive", str(m)
        else:
            assert m.port != 0
            assert {c.name.lower() for c in m.rtp.codecs} == {"opus" if m.kind == "audio" else "vp8"}


def test_the_corpus_has_every_browser_page_and_source() -> None:
    names = {p.name for p in CAPTURED}
    for browser in ("chromium", "firefox"):
        for role in SLOTS:
            for source in ("camera", "screen", "receive"):
                assert f"{browser}-{role}-{source}.sdp" in names


@pytest.mark.parametrize("path", CAPTURED, ids=[p.stem for p in CAPTURED])
async def test_captured_offer_is_answered(sfu: Sfu, path: Path) -> None:
    sdp = captured(path.name)
    browser, role, source = path.stem.split("-")
    offer = read_offer(sdp)
    audio_slots, video_slots = SLOTS[role]
    sends = 0 if source == "receive" else 1
    kinds = [(m.kind, m.client_sends) for m in offer.media]
    assert kinds.count(("audio", True)) == kinds.count(("video", True)) == sends
    assert kinds.count(("audio", False)) == audio_slots
    assert kinds.count(("video", False)) == video_slots
    assert offer.rejected == ()
    if browser == "firefox":  # max-bundle as JSEP says: every section but the first is bundle-only
        assert sdp.count("a=bundle-only") == len(offer.media) - 1
    check_answer(sdp, await answer(sfu, sdp), rejected_mids=set())


async def test_a_disabled_section_is_answered_rejected_not_the_whole_offer(sfu: Sfu) -> None:
    """Port 0 without bundle-only (a stopped transceiver, RFC 8843 §7.5.3): out of the group,
    answered port 0; the rest of the offer is live and its receive slots work."""
    sdp, mid = disable_section(captured("firefox-kiosk-camera.sdp"), 6)  # the second video slot
    offer = read_offer(sdp)
    assert [r.mid for r in offer.rejected] == [mid] and len(offer.media) == 6
    if "r" not in sfu.room_ids:
        sfu.open_room("r")
    handle = await sfu.admit("r", "p")
    answer_sdp = await handle.handle_offer(sdp)
    check_answer(sdp, answer_sdp, rejected_mids={mid})
    assert sections(answer_sdp)[6].startswith("m=video 0 UDP/TLS/RTP/SAVPF 120\r\n")
    assert mid not in handle.slots() and len(handle.slots()) == 4


async def test_a_disabled_section_left_in_the_bundle_group_is_still_rejected(sfu: Sfu) -> None:
    sdp = captured("chromium-official-receive.sdp")
    parts = sections(sdp)
    mid = mid_of(parts[3])
    parts[3] = re.sub(r"^m=video 9 ", "m=video 0 ", parts[3])
    sdp = rebuild(sdp, parts)
    assert f" {mid} " in sdp.split("a=group:BUNDLE", 1)[1].split("\r\n", 1)[0] + " "
    check_answer(sdp, await answer(sfu, sdp), rejected_mids={mid})


async def test_unknown_sections_and_codecs(sfu: Sfu) -> None:
    """A data channel and a video section offering only codecs the SFU does not forward are
    answered rejected; an unknown codec next to VP8 is left out of the answer."""
    sdp = captured("chromium-kiosk-camera.sdp")
    parts = sections(sdp)
    h264_only = re.sub(r"^m=video 9 UDP/TLS/RTP/SAVPF [\d ]+", "m=video 9 UDP/TLS/RTP/SAVPF 102", parts[6])
    h264_only = re.sub(r"a=rtpmap:\d+ VP8/90000\r\n", "", h264_only) + "a=rtpmap:102 H264/90000\r\n"
    parts[6] = h264_only
    parts[5] = re.sub(r"^(m=video 9 UDP/TLS/RTP/SAVPF [\d ]+)", r"\1 127", parts[5])
    parts[5] += "a=rtpmap:127 X-FUTURE/90000\r\n"
    data = (
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
        "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 00:11\r\n"
        "a=setup:actpass\r\na=mid:data\r\na=sctp-port:5000\r\n"
    )
    parts.append(data)
    sdp = rebuild(sdp, parts).replace("a=group:BUNDLE 0 1 2 3 4 5 6", "a=group:BUNDLE 0 1 2 3 4 5 6 data")
    offer = read_offer(sdp)
    assert [(r.mid, r.reason) for r in offer.rejected] == [
        ("6", "no vp8 codec offered"),
        ("data", "'application' is not supported (audio/video only)"),
    ]
    answer_sdp = await answer(sfu, sdp)
    check_answer(sdp, answer_sdp, rejected_mids={"6", "data"})
    assert "X-FUTURE" not in answer_sdp and "H264" not in answer_sdp
    assert sections(answer_sdp)[-1].startswith("m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n")


async def test_bundled_sections_may_leave_out_the_shared_transport_attributes(sfu: Sfu) -> None:
    """RFC 8843 §7.2: a bundled section's ICE/DTLS attributes are the offerer-tagged section's."""
    sdp = captured("chromium-kiosk-camera.sdp")
    parts = sections(sdp)
    shared = r"^a=(ice-ufrag|ice-pwd|fingerprint|setup|rtcp-mux)\b.*\r\n"
    parts[1:] = [re.sub(shared, "", p, flags=re.MULTILINE) for p in parts[1:]]
    sdp = rebuild(sdp, parts)
    assert sections(sdp)[1].count("a=ice-ufrag") == 0
    check_answer(sdp, await answer(sfu, sdp), rejected_mids=set())


@pytest.mark.parametrize(
    ("what", "change"),
    [
        (
            "the first mid of the BUNDLE group has port 0",
            lambda p: re.sub(r"^m=audio \d+ ", "m=audio 0 ", p[0]),
        ),
        (
            "no opus codec offered, and it is the first mid",
            lambda p: p[0].replace("opus/48000/2", "L16/48000/2"),
        ),
        ("missing ICE credentials", lambda p: re.sub(r"^a=ice-(ufrag|pwd):.*\r\n", "", p[0], flags=re.M)),
    ],
)
def test_the_offerer_tagged_section_cannot_be_rejected(what: str, change: object) -> None:
    """The whole offer hangs on the first section's transport: refused with a clear message."""
    sdp = captured("chromium-kiosk-camera.sdp")
    parts = sections(sdp)
    parts[0] = change(parts)  # type: ignore[operator]
    with pytest.raises(InvalidSdp, match=re.escape(what)):
        read_offer(rebuild(sdp, parts))


def test_bundle_only_outside_the_group_is_rejected_and_a_missing_group_refused() -> None:
    sdp = captured("firefox-kiosk-receive.sdp")
    offer = read_offer(sdp.replace("a=group:BUNDLE 0 1 2 3 4", "a=group:BUNDLE 0 1 2 3"))
    assert [r.mid for r in offer.rejected] == ["4"]
    with pytest.raises(InvalidSdp, match="BUNDLE"):
        read_offer(re.sub(r"a=group:BUNDLE[^\r]*\r\n", "", sdp))


@pytest.mark.parametrize(
    ("offered", "answered"), [("actpass", "active"), ("active", "passive"), ("passive", "active")]
)
async def test_the_answer_takes_the_dtls_role_the_offer_leaves(sfu: Sfu, offered: str, answered: str) -> None:
    """RFC 8842 §5: actpass lets the answerer choose (active); otherwise the other role."""
    sdp = captured("firefox-official-camera.sdp").replace("a=setup:actpass", f"a=setup:{offered}")
    answer_sdp = await answer(sfu, sdp)
    assert set(re.findall(r"^a=setup:(\w+)", answer_sdp, re.MULTILINE)) == {answered}


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda sdp: re.sub(r"^a=ssrc(-group)?:.*\r\n", "", sdp, flags=re.M), id="no-ssrc"),
        pytest.param(lambda sdp: re.sub(r"^a=msid:.*\r\n", "", sdp, flags=re.M), id="no-msid"),
        pytest.param(lambda sdp: re.sub(r"^a=msid:\S+ ", "a=msid:- ", sdp, flags=re.M), id="msid-no-stream"),
        pytest.param(
            lambda sdp: re.sub(r"^a=extmap:(\d+)", r"a=extmap:1\1", sdp, flags=re.M), id="extmap-ids"
        ),
        pytest.param(
            lambda sdp: re.sub(r"^(m=(?:audio|video) \d+ \S+ )(\d+) ([^\r]*)", r"\1\3 \2", sdp, flags=re.M),
            id="preferred-codec-last",
        ),
    ],
)
async def test_engine_differences_in_publishing_offers(sfu: Sfu, variant: Any) -> None:
    """What engines vary in (RFC 8829 §5.2.1, RFC 8830): absent a=ssrc lines (mid-based routing),
    a=msid with or without a stream id or not at all, other extmap ids, Opus/VP8 not first in the
    payload type order: all answered alike."""
    for name in ("chromium-kiosk-camera.sdp", "firefox-kiosk-camera.sdp"):
        sdp = variant(captured(name))
        offer = read_offer(sdp)
        assert [m.client_sends for m in offer.media].count(True) == 2
        check_answer(sdp, await answer(sfu, sdp, pid=f"{name}-{len(sdp)}"), rejected_mids=set())
