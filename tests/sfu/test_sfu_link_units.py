"""Unit checks of the weak-link building blocks: paced NACKs with a retry limit, the
retransmission byte budget, and the link controller's decisions (hysteresis, probing)."""

from __future__ import annotations

from rtc.rtputil import PacedNackList, TokenBucket
from server.sfu import SfuConfig
from server.sfu.linkquality import LinkController, LinkSample


def test_nacks_are_paced_by_rtt_limited_and_forgotten() -> None:
    n = PacedNackList(max_retries=3, max_age_s=1.0)
    n.received(100, 0.0)
    n.received(103, 0.0)  # 101, 102 missing
    assert n.due(0.0, 0.05) == [101, 102]
    assert n.due(0.05, 0.05) == []  # asked again only after ~1.5 RTT
    n.received(101, 0.06)
    assert n.due(0.08, 0.05) == [102]
    assert n.due(0.16, 0.05) == [102]
    assert n.due(0.24, 0.05) == []  # three NACKs: given up
    assert n.missing == {} and n.given_up == 1
    n.received(110, 0.3)
    assert len(n.due(0.3, None)) == 6
    assert n.due(1.5, None) == [] and n.missing == {}  # too old to be useful
    n.received(30000, 2.0)  # a jump larger than the window: a restart, nothing to ask for
    assert n.missing == {}


def test_token_bucket_budget() -> None:
    b = TokenBucket(rate=1000, burst=1500)
    assert b.take(1200, 0.0)
    assert not b.take(1200, 0.1)  # 300 + 100 tokens
    assert b.take(1200, 1.0)


def sample(kbps: int | None, loss: float | None = 0.0, video: bool = True) -> LinkSample:
    return LinkSample(
        downlink_bps=None if kbps is None else kbps * 1000,
        estimate_covers_audio=False,
        audio_out_bps=40000,
        downlink_loss=loss,
        uplink_loss=0.0,
        uplink_silent=False,
        receives_video=video,
    )


def test_controller_degrades_with_hysteresis_and_probes_back() -> None:
    c = SfuConfig(
        downgrade_after=2, upgrade_after=4, probe_interval=8, probe_max_interval=30, probe_duration=6
    )
    ctl = LinkController(c)
    assert ctl.update(0, sample(1000)).mode == "video"
    assert ctl.update(1, sample(300)).mode == "video"  # not yet: must last downgrade_after
    state = ctl.update(3, sample(300))
    assert (state.mode, state.bars, state.downlink_kbps) == ("low_video", 2, 300)
    ctl.update(4, sample(60, loss=0.3))  # a thin link: its queue overflows
    state = ctl.update(6, sample(60, loss=0.3))
    assert (state.mode, state.bars) == ("audio_only", 1)
    assert ctl.update(10, sample(None)).mode == "audio_only"  # waits for the probe
    assert ctl.update(14, sample(None)).mode == "low_video"  # probe at 6 + 8
    assert ctl.update(15, sample(50, loss=0.3)).mode == "audio_only"  # failed probe: back at once
    assert ctl.update(25, sample(None)).mode == "audio_only"  # backoff doubled: next at 31
    assert ctl.update(31, sample(None)).mode == "low_video"
    for t in range(32, 38):
        assert ctl.update(t, sample(300)).mode == "low_video"
    for t in range(38, 44):
        state = ctl.update(t, sample(800))
    assert (state.mode, state.bars) == ("video", 3)


def test_heavy_loss_drops_video_and_loss_lowers_bars() -> None:
    ctl = LinkController(SfuConfig())
    state = ctl.update(0, sample(1000, loss=0.08))
    assert (state.mode, state.bars, state.loss_pct) == ("video", 2, 8.0)
    ctl.update(1, sample(1000, loss=0.5))
    ctl.update(2, sample(1000, loss=0.5))
    assert ctl.update(4, sample(1000, loss=0.5)).mode == "audio_only"


def test_uplink_loss_and_silence_lower_the_bars() -> None:
    ctl = LinkController(SfuConfig())
    s = sample(1000)
    lossy = LinkSample(**{**s.__dict__, "uplink_loss": 0.3})
    assert ctl.update(0, lossy).bars == 1
    silent = LinkSample(**{**s.__dict__, "uplink_loss": None, "uplink_silent": True})
    assert ctl.update(1, silent).bars == 1
    assert ctl.update(2, s).mode == "video"


def test_no_video_received_never_goes_audio_only() -> None:
    ctl = LinkController(SfuConfig())
    for t in range(10):
        assert ctl.update(t, sample(20, video=False)).mode == "video"


def test_a_low_estimate_without_loss_lowers_the_rate_but_keeps_the_video() -> None:
    """A starved CPU at either end makes a delay-based estimate collapse with no loss at all:
    that is "low_video" (the publisher slows down), never "audio_only"."""
    ctl = LinkController(SfuConfig(downgrade_after=2))
    for t in range(0, 10):
        state = ctl.update(t, sample(20, loss=0.0))
    assert (state.mode, state.bars) == ("low_video", 2)
    for t in range(10, 15):
        state = ctl.update(t, sample(20, loss=0.3))  # the link really drops packets
    assert state.mode == "audio_only"


def test_with_simulcast_the_layer_choice_says_whether_the_line_is_thin() -> None:
    """A hall taking only the chair's simulcast video in a thumbnail gets that layer by choice;
    its estimate stays near the layer's rate (180 kbit/s for 160 sent, no loss). That is no
    weak line: it stays "video" (the chair's page listed such a hall as weak). A hall whose
    tile wants more than its line carries (the layer choice holds it down) is "low_video"."""

    def simulcast(kbps: int, held: bool, single: bool = False) -> LinkSample:
        return LinkSample(
            **{
                **sample(kbps).__dict__,
                "sent_bps": 160_000,
                "layers_held_down": held,
                "receives_single_layer_video": single,
            }
        )

    thumbnail = LinkController(SfuConfig(downgrade_after=2))
    for t in range(0, 10):
        assert thumbnail.update(t, simulcast(180, held=False)).mode == "video"
    # the same estimate judged without the layer choice: not app-limited, below 400 kbit/s
    plain = LinkController(SfuConfig(downgrade_after=2))
    for t in range(0, 10):
        state = plain.update(t, LinkSample(**{**sample(180).__dict__, "sent_bps": 160_000}))
    assert state.mode == "low_video"

    thin = LinkController(SfuConfig(downgrade_after=2, upgrade_after=4))
    for t in range(0, 10):
        state = thin.update(t, simulcast(250, held=True))
    assert (state.mode, state.bars) == ("low_video", 2)
    for t in range(10, 20):  # the line got better: the tile's layer fits
        state = thin.update(t, simulcast(900, held=False))
    assert state.mode == "video"
    # with a single-layer publisher's video too, its estimate still counts
    mixed = LinkController(SfuConfig(downgrade_after=2))
    for t in range(0, 10):
        state = mixed.update(t, simulcast(180, held=False, single=True))
    assert state.mode == "low_video"


def test_the_layer_choice_reads_the_downlink_loss_only() -> None:
    """The bars show the worse of the two directions; the layers a hall receives are chosen by
    what its downlink loses (its lossy uplink says nothing of what it can receive)."""
    import dataclasses

    ctl = LinkController(SfuConfig())
    uplink_lossy = dataclasses.replace(sample(2000, loss=0.0), uplink_loss=0.3)
    state = ctl.update(1, uplink_lossy)
    assert (state.loss_pct, state.downlink_loss_pct) == (30.0, 0.0)
    state = ctl.update(2, dataclasses.replace(sample(2000, loss=0.2), uplink_loss=0.3))
    assert (state.loss_pct, state.downlink_loss_pct) == (30.0, 10.0)
