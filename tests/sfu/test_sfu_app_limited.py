"""A receiver-side estimate (REMB) is capped at ~1.5x what the subscriber receives (the AIMD in
Chrome and in aiortc): a hall whose publisher sends little (a still scene, a publisher slowed
down by REMB) reports a low estimate on a perfect link. Found in the link lab: an unshaped
Chromium kiosk page (REMB 73-86 kbit/s covering the chair's audio and its small video) was
switched to audio only and back every probe. Only an estimate that fell to what the SFU sends
(or below) is the link's limit."""

from __future__ import annotations

import pytest

from server.sfu import SfuConfig
from server.sfu.linkquality import LinkController, LinkSample


def browser_sample(remb_kbps: int, sent_kbps: float, loss: float = 0.0) -> LinkSample:
    # A browser's REMB lists every SSRC it receives: it covers the audio too.
    return LinkSample(
        downlink_bps=remb_kbps * 1000,
        estimate_covers_audio=True,
        audio_out_bps=40000,
        downlink_loss=loss,
        uplink_loss=0.0,
        uplink_silent=False,
        receives_video=True,
        sent_bps=sent_kbps * 1000,
    )


def test_an_estimate_capped_by_what_we_send_keeps_full_video() -> None:
    ctl = LinkController(SfuConfig())
    # 40 kbit/s audio + 18 kbit/s video sent; the browser's REMB 1.5x that + 10 kbit/s.
    for t in range(30):
        state = ctl.update(t, browser_sample(97, 58))
        assert (state.mode, state.bars) == ("video", 3), t


def test_an_estimate_at_or_below_what_we_send_is_the_links_limit() -> None:
    ctl = LinkController(SfuConfig(downgrade_after=2))
    modes = [ctl.update(t, browser_sample(100, 110, loss=0.15)).mode for t in range(5)]
    assert modes[-1] == "audio_only"  # 100 - 40 audio leaves less than 90 for video
    ctl = LinkController(SfuConfig(downgrade_after=2))
    modes = [ctl.update(t, browser_sample(300, 290)).mode for t in range(5)]
    assert modes[-1] == "low_video"


def test_app_limited_low_video_goes_back_to_video() -> None:
    ctl = LinkController(SfuConfig(downgrade_after=2, upgrade_after=4))
    for t in range(4):
        ctl.update(t, browser_sample(300, 290))  # congested: low_video
    assert ctl.mode == "low_video"
    # The publisher slowed down to what the hall takes; its estimate now sits above that.
    modes = [ctl.update(t, browser_sample(300, 150)).mode for t in range(4, 10)]
    assert modes[-1] == "video"


def test_app_limited_ratio_is_checked() -> None:
    with pytest.raises(ValueError):
        SfuConfig(app_limited_ratio=1.0)
