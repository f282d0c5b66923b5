"""Per-participant link quality: what the SFU forwards to a subscriber whose downlink
is thin, and the bars the pages show (see :class:`~server.sfu.events.LinkQualityChanged`).

Without simulcast every subscriber of a publisher gets the same encoding, so a thin
downlink has two levers: the publisher is asked (REMB) to encode no faster than the
slowest subscriber that still *takes* video (``low_video``), and a subscriber whose
estimate leaves no room for even low-rate video next to its audio gets no video at all
(``audio_only``) until a probe shows the link has recovered. Audio is never dropped.

:class:`LinkController` is pure decision logic fed with measurements once per
``SfuConfig.link_interval``; the room applies its decisions (see room.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .config import SfuConfig

Mode = Literal["video", "low_video", "audio_only"]


@dataclass(frozen=True)
class LinkSample:
    """One participant's measurements over the last interval."""

    #: Downlink estimate from the subscriber's REMB (bit/s); None if none is fresh.
    downlink_bps: int | None
    #: Whether that estimate covers the audio too (REMB listing audio SSRCs, as browsers send).
    estimate_covers_audio: bool
    #: Audio we sent this subscriber (bit/s, headers included).
    audio_out_bps: float
    #: Loss the subscriber reported (0..1, worst of its streams); None without reports.
    downlink_loss: float | None
    #: Loss of what the participant published to us (0..1); None if it publishes nothing.
    uplink_loss: float | None
    #: The participant publishes but nothing arrived during the interval.
    uplink_silent: bool
    #: The subscriber has video slots carrying somebody.
    receives_video: bool
    #: What we sent the subscriber over the interval on the streams its estimate covers
    #: (bit/s, headers included); None if unknown.
    sent_bps: float | None = None
    #: The subscriber takes simulcast video: whether the layer choice gives some of it a lower
    #: layer than its tile wants, for want of bandwidth (None: no simulcast video).
    layers_held_down: bool | None = None
    #: The subscriber also takes video of a single-layer publisher.
    receives_single_layer_video: bool = True


@dataclass(frozen=True)
class LinkState:
    bars: int
    mode: Mode
    downlink_kbps: int | None
    #: The worse of the downlink's and the uplink's loss (smoothed; what the bars show).
    loss_pct: float | None
    #: The downlink's alone: what the layers a subscriber receives are chosen by.
    downlink_loss_pct: float | None = None


def _ewma(old: float | None, new: float | None, alpha: float = 0.5) -> float | None:
    if new is None:
        return old
    return new if old is None else alpha * new + (1 - alpha) * old


class LinkController:
    """Decides one subscriber's mode (with hysteresis and probing) and its bars."""

    def __init__(self, config: SfuConfig) -> None:
        self._config = config
        self.mode: Mode = "video"
        self._bad_since: float | None = None
        self._low_since: float | None = None
        self._high_since: float | None = None
        self._probe_at = 0.0
        self._probe_until: float | None = None
        self._backoff = config.probe_interval
        self._down_loss: float | None = None
        self._up_loss: float | None = None

    def update(self, now: float, s: LinkSample) -> LinkState:
        c = self._config
        self._down_loss = _ewma(self._down_loss, s.downlink_loss)
        self._up_loss = _ewma(self._up_loss, s.uplink_loss)
        if s.uplink_loss is None and not s.uplink_silent:
            self._up_loss = None
        budget: float | None = None
        if s.downlink_bps is not None:
            budget = s.downlink_bps - (s.audio_out_bps if s.estimate_covers_audio else 0.0)
        heavy_loss = self._down_loss is not None and self._down_loss * 100 >= c.audio_only_loss_pct
        # A receiver-side estimate (REMB) never rises above ~1.5x what the subscriber receives
        # (Chrome's and aiortc's AIMD cap it there): while the publisher sends little (a still
        # scene, a publisher told to slow down) a low estimate says nothing about the link.
        # Only an estimate that has fallen to what we send, or below, is the link's limit.
        limited = not self._app_limited(s)
        # A thin link loses packets (its queue overflows); an estimate that sinks with no loss
        # at all is more likely a starved CPU at either end: lower the rate, keep the video.
        lossy = self._down_loss is not None and self._down_loss * 100 >= c.starved_min_loss_pct
        starved = budget is not None and budget < c.video_min_kbps * 1000 and limited and lossy

        if self.mode == "audio_only":
            if now >= self._probe_at and s.receives_video:
                # Probe: forward video again and watch the estimate and the loss.
                self.mode = "low_video"
                self._probe_until = now + c.probe_duration
                self._bad_since = None
                self._down_loss = None
        else:
            bad = s.receives_video and (starved or heavy_loss)
            if bad:
                self._bad_since = self._bad_since if self._bad_since is not None else now
            else:
                self._bad_since = None
            probing = self._probe_until is not None and now < self._probe_until
            # A failing probe goes back at once; otherwise the link must stay bad a while.
            bad_for = now - self._bad_since if self._bad_since is not None else 0.0
            if bad and (probing or bad_for >= c.downgrade_after):
                self.mode = "audio_only"
                self._backoff = min(c.probe_max_interval, self._backoff * 2) if probing else c.probe_interval
                self._probe_at = now + self._backoff
                self._probe_until = None
            else:
                if self._probe_until is not None and now >= self._probe_until:
                    self._probe_until = None  # probe passed
                    self._backoff = c.probe_interval
                self._update_video_level(now, s)

        return LinkState(
            bars=self._bars(s),
            mode=self.mode,
            downlink_kbps=None if s.downlink_bps is None else int(s.downlink_bps // 1000),
            loss_pct=self._loss_pct(),
            downlink_loss_pct=None if self._down_loss is None else round(self._down_loss * 100, 1),
        )

    def _app_limited(self, s: LinkSample) -> bool:
        """The estimate is well above what we send: capped by our rate, not by the link."""
        return (
            s.downlink_bps is not None
            and s.sent_bps is not None
            and s.sent_bps > 0
            and s.downlink_bps >= s.sent_bps * self._config.app_limited_ratio
        )

    def _update_video_level(self, now: float, s: LinkSample) -> None:
        c = self._config
        if s.downlink_bps is None or not s.receives_video:
            return  # without video the estimate says nothing about video
        app_limited = self._app_limited(s)
        thin = s.downlink_bps < c.full_video_kbps * 1000
        thick = s.downlink_bps >= c.full_video_kbps * 1000 * 1.2  # hysteresis
        low, high = thin and not app_limited, thick or app_limited
        if s.layers_held_down is not None:
            # With simulcast the layer choice knows: a line too thin for what the tiles want
            # gets a lower layer. The estimate against what we send does not: a hall taking a
            # thumbnail's layer by choice gets an estimate near that layer's rate (a delay-based
            # estimate stays within ~1.5x what arrives), and such a hall on a good line was
            # shown to the chair as weak. Video of single-layer publishers is still judged by
            # the estimate (its publishers' rate is capped by it).
            held = s.layers_held_down and thin
            if s.receives_single_layer_video:
                low, high = held or low, not held and high
            else:
                low, high = held, not s.layers_held_down or thick
        self._low_since = (self._low_since if self._low_since is not None else now) if low else None
        self._high_since = (self._high_since if self._high_since is not None else now) if high else None
        if (
            self.mode == "video"
            and self._low_since is not None
            and now - self._low_since >= c.downgrade_after
        ):
            self.mode = "low_video"
        elif (
            self.mode == "low_video"
            and self._high_since is not None
            and now - self._high_since >= c.upgrade_after
        ):
            self.mode = "video"

    def _loss_pct(self) -> float | None:
        values = [v for v in (self._down_loss, self._up_loss) if v is not None]
        return round(max(values) * 100, 1) if values else None

    def _bars(self, s: LinkSample) -> int:
        c = self._config
        down = {"video": 3, "low_video": 2, "audio_only": 1}[self.mode]
        if self._down_loss is not None:
            if self._down_loss * 100 >= c.poor_loss_pct:
                down = 1
            elif self._down_loss * 100 >= c.degraded_loss_pct:
                down = min(down, 2)
        up = 3
        if s.uplink_silent:
            up = 1
        elif self._up_loss is not None:
            if self._up_loss * 100 >= c.poor_loss_pct:
                up = 1
            elif self._up_loss * 100 >= c.degraded_loss_pct:
                up = 2
        return min(up, down)
