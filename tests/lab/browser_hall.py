"""A Chromium kiosk page as the hall: Debian's Chromium (via Playwright, fake camera/microphone)
launched from the hall namespace's loop thread, so the browser and its WebRTC stack live in
that namespace and reach the county only over the shaped link. It carries the enrolled kiosk's
device cookie (what the enroll page sets) and opens the meeting's kiosk page; its peer
connection's own statistics (``window.maeulRoom.pc.getStats()``) are sampled every 250 ms:
decoded video frames and received audio packets, so freezes and audio gaps are known to within a sample.
With ``publisher`` set, only that publisher's receive slots count (the page's ``slotMap``), and
the size of its decoded video and of its tile are sampled too. ``BrowserOfficial`` is an
official's room page (logged in through the form) sampled the same way, plus what its own
video sends per simulcast rid.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright, ViewportSize, async_playwright

from server.middlewares import KIOSK_COOKIE
from tests.e2e.browser_steps import log_in
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.lab import metrics

STATS_JS = """
async (publisher) => {
  const meeting = window.maeulRoom;
  if (!meeting || !meeting.pc) return null;
  const slots = publisher ? meeting.slotMap() : null;
  let video = 0, audio = 0, sentVideo = 0, sentAudio = 0, size = null, outgoing = null;
  let sentVideoBytes = 0, videoLimit = null;
  const layers = {};
  (await meeting.pc.getStats()).forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) {
      outgoing = s.availableOutgoingBitrate;
    }
    if (s.type === 'outbound-rtp') {
      if (s.kind === 'video') {
        sentVideo += s.framesEncoded || 0;
        sentVideoBytes += (s.bytesSent || 0) + (s.headerBytesSent || 0);
        const limit = s.qualityLimitationReason;
        if (limit && limit !== 'none') videoLimit = limit;
      }
      else sentAudio += s.packetsSent || 0;
      if (s.kind === 'video' && s.rid) {
        layers[s.rid] = {
          active: s.active, bytes: s.bytesSent || 0, width: s.frameWidth || 0,
          height: s.frameHeight || 0, fps: s.framesPerSecond || 0,
          limit: s.qualityLimitationReason || null,
        };
      }
    }
    if (s.type !== 'inbound-rtp') return;
    if (slots && slots[s.mid] !== publisher) return;
    if (s.kind === 'video') {
      video += s.framesDecoded || 0;
      if (slots && s.frameWidth) {
        size = {width: s.frameWidth, height: s.frameHeight,
                freezes: s.freezeCount || 0, frozen: s.totalFreezesDuration || 0,
                bytes: (s.bytesReceived || 0) + (s.headerBytesReceived || 0),
                qpSum: s.qpSum || 0, decoded: s.framesDecoded || 0};
      }
    } else audio += s.packetsReceived || 0;
  });
  if (size) {
    const tile = document.querySelector(`[data-tiles] figure[data-publisher="${publisher}"] video`);
    const scale = window.devicePixelRatio || 1;
    size.tile = tile ? [Math.round(tile.clientWidth * scale), Math.round(tile.clientHeight * scale)] : null;
  }
  const bars = document.querySelector('[data-link-bars]');
  return {
    video, audio, sentVideo, sentAudio, sentVideoBytes, videoLimit, size, layers, outgoing,
    state: meeting.pc.connectionState,
    bars: bars ? bars.dataset.bars || null : null,
    mode: meeting.root.dataset.linkMode || null,
    page: meeting.root.dataset.state || null,
  };
}
"""


@dataclass
class BrowserSamples:
    """Times at which the counters were seen to grow (a monotonic clock shared with the probes)."""

    video: list[float] = field(default_factory=list)
    audio: list[float] = field(default_factory=list)
    video_frames: list[tuple[float, int]] = field(default_factory=list)
    states: list[tuple[float, str]] = field(default_factory=list)
    #: The page's link bars (``[data-link-bars]`` data-bars) and mode, each time they changed.
    bars: list[tuple[float, str | None, str | None]] = field(default_factory=list)
    #: The last counters of what the page itself sends (encoded video frames, audio packets).
    sent: dict[str, int] = field(default_factory=dict)
    #: The page's status key (``data-state``: connected, no_camera, link_poor...), when it changed.
    page_states: list[tuple[float, str | None]] = field(default_factory=list)
    #: The watched publisher's decoded video (``STATS_JS`` ``size``: width, height, Chromium's
    #: freezeCount/totalFreezesDuration, bytes received with headers, qpSum and framesDecoded
    #: (the mean quantizer: lower is a finer picture), the tile in device pixels), every sample.
    sizes: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    #: What the page's own video sends per simulcast rid (``STATS_JS`` ``layers``), every sample.
    layers: list[tuple[float, dict[str, dict[str, Any]]]] = field(default_factory=list)
    #: What the page's own video has sent (bytes with RTP headers, every encoding; Chromium's
    #: qualityLimitationReason if any encoding is limited, else None), every sample.
    sent_video: list[tuple[float, int, str | None]] = field(default_factory=list)
    #: The page's own send-side bandwidth estimate (bit/s, candidate-pair
    #: availableOutgoingBitrate; Chromium follows the SFU's REMB), every sample.
    outgoing: list[tuple[float, float]] = field(default_factory=list)


class BrowserHall:
    def __init__(
        self,
        base_url: str,
        token: str,
        room_id: int,
        *,
        publisher: str | None = None,
        viewport: ViewportSize | None = None,
        scale: float = 1.0,
        query: str = "",
    ) -> None:
        """``publisher``: count only that participant's media (and sample its video's size);
        ``viewport``/``scale``: the screen (CSS pixels, devicePixelRatio), which sets the tiles;
        ``query``: appended to the page's address (e.g. ``?layers=2``)."""
        self.query = query
        self.base_url = base_url
        self.token = token
        self.room_id = room_id
        self.publisher = publisher
        self.viewport: ViewportSize = viewport or {"width": 1280, "height": 720}
        self.scale = scale
        self.samples = BrowserSamples()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self.page: Page | None = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Run on the hall's node loop (``lab.run_in(hall, ...)``)."""
        self._playwright = await async_playwright().start()
        # getUserMedia exists only in a secure context: http://127.0.0.1 is one, the lab's
        # http://198.18.0.1:8080 is not (production kiosks use HTTPS). Without this the page
        # joins with no camera and no microphone and publishes nothing.
        secure = f"--unsafely-treat-insecure-origin-as-secure={self.base_url}"
        self._browser = await self._playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, secure], headless=True
        )
        context = await self._browser.new_context(viewport=self.viewport, device_scale_factor=self.scale)
        self.page = await self._open(context)
        self._poller = asyncio.create_task(self._poll())

    async def _open(self, context: BrowserContext) -> Page:
        """The kiosk's meeting page, as the enrolled kiosk (its device cookie)."""
        await context.add_cookies([{"name": KIOSK_COOKIE, "value": self.token, "url": self.base_url}])
        page = await context.new_page()
        await page.goto(f"{self.base_url}/kiosk/rooms/{self.room_id}{self.query}")
        return page

    async def _poll(self) -> None:
        assert self.page is not None
        last_video = last_audio = -1
        state = ""
        while True:
            with contextlib.suppress(Exception):  # page navigating or pc being replaced
                stats: dict[str, Any] | None = await self.page.evaluate(STATS_JS, self.publisher)
                now = time.monotonic()
                if stats is not None:
                    if stats["video"] != last_video:
                        if stats["video"] > last_video >= 0:
                            self.samples.video.append(now)
                        last_video = stats["video"]
                        self.samples.video_frames.append((now, stats["video"]))
                    if stats["audio"] != last_audio:
                        if stats["audio"] > last_audio >= 0:
                            self.samples.audio.append(now)
                        last_audio = stats["audio"]
                    if stats["state"] != state:
                        state = stats["state"]
                        self.samples.states.append((now, state))
                    shown = (stats["bars"], stats["mode"])
                    if not self.samples.bars or self.samples.bars[-1][1:] != shown:
                        self.samples.bars.append((now, *shown))
                    if not self.samples.page_states or self.samples.page_states[-1][1] != stats["page"]:
                        self.samples.page_states.append((now, stats["page"]))
                    self.samples.sent = {"video": stats["sentVideo"], "audio": stats["sentAudio"]}
                    self.samples.sent_video.append((now, stats["sentVideoBytes"], stats["videoLimit"]))
                    if stats["size"] is not None:
                        self.samples.sizes.append((now, stats["size"]))
                    if stats["layers"]:
                        self.samples.layers.append((now, stats["layers"]))
                    if stats["outgoing"] is not None:
                        self.samples.outgoing.append((now, stats["outgoing"]))
            await asyncio.sleep(0.25)

    def frames_between(self, start: float, end: float) -> int:
        """Decoded frames in the window, from the counter samples around its edges."""
        inside = [(t, n) for t, n in self.samples.video_frames if start <= t <= end]
        before = [n for t, n in self.samples.video_frames if t < start]
        if not inside:
            return 0
        return inside[-1][1] - (before[-1] if before else inside[0][1])

    def receives(self, start: float, end: float) -> metrics.Direction:
        window = max(end - start, 1e-9)
        frames = self.frames_between(start, end)
        return metrics.Direction(
            fps=frames / window,
            max_freeze_s=metrics.longest_gap(self.samples.video, start, end),
            max_audio_gap_s=metrics.longest_gap(self.samples.audio, start, end),
            mouth_to_ear_s=None,
            video_frames=frames,
            audio_frames=len([t for t in self.samples.audio if start <= t <= end]),
        )

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()


class BrowserOfficial(BrowserHall):
    """An official's room page (``/rooms/ID``, ``query`` appended, e.g. ``?simulcast=1``), logged
    in through the real form, sampled like a hall."""

    def __init__(self, base_url: str, username: str, password: str, room_id: int, **kw: Any) -> None:
        super().__init__(base_url, "", room_id, **kw)
        self.username = username
        self.password = password

    async def _open(self, context: BrowserContext) -> Page:
        page = await context.new_page()
        await log_in(page, self.base_url, self.username, self.password)
        await page.goto(f"{self.base_url}/rooms/{self.room_id}{self.query}")
        return page
