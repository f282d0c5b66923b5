"""Firefox ESR chairs a meeting with Chromium: a Firefox official (Debian's firefox-esr over
WebDriver BiDi, headful on a private Xvfb so that it can share its screen) chairs a scheduled
meeting with a Chromium village-hall kiosk and a Chromium official. It admits the hall from the
lobby; for 30 s every page decodes video at 10 fps or more and receives audio from both others;
then Firefox moves the agenda on, leaves and comes back, and shares its screen, which the kiosk
decodes at the screen's size. Both officials publish their camera in three simulcast layers (the
room page's default, docs/sfu.md "Simulcast"), Firefox's offer as well as Chromium's; the kiosk
publishes one layer.

Firefox offers every m-section after the first with port 0 and ``a=bundle-only`` (max-bundle), its
own payload types (VP8 120, Opus 109) and no abs-send-time; Chromium offers port 9, VP8 96, Opus
111. Each page setting the SFU's answer and the media flowing is the browsers' own check of the
answers ``server/sfu/offer.py`` writes."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import TEST_PASSWORD, World
from tests.e2e.browser_steps import log_in
from tests.e2e.conftest import kiosk_browser_page
from tests.e2e.firefox_bidi import FirefoxPage, launch_firefox, xvfb
from tests.e2e.live_meeting import started_meeting

pytestmark = [pytest.mark.e2e, pytest.mark.network]

HALL = "남성리 마을회관"
ITEMS = ("마을 안길 보수", "경로당 겨울 난방비")
MEASURE_S = 30.0
MIN_FPS = 10.0
MIN_AUDIO_PACKETS_PER_S = 2.5  # Opus DTX sends a packet every 400 ms in silence
SCREEN = (1280, 720)  # the Xvfb screen Firefox shares

# Per remote publisher (through the page's slot map), from each receive slot's own receiver (both
# engines report receiver stats; Firefox's inbound-rtp has no mid in older versions).
STATS_JS = """
async () => {
  const m = window.maeulRoom;
  if (!m || !m.pc) return {};
  const slots = m.slotMap();
  const out = {};
  for (const t of m.pc.getTransceivers()) {
    const publisher = t.mid && slots[t.mid];
    if (!publisher || t.currentDirection === 'stopped') continue;
    (await t.receiver.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const e = out[publisher] || (out[publisher] = {frames: 0, audio_packets: 0, width: 0});
      if (s.kind === 'video') {
        e.frames += s.framesDecoded || 0;
        e.width = Math.max(e.width, s.frameWidth || 0);
      } else e.audio_packets += s.packetsReceived || 0;
    });
  }
  return out;
}
"""
#: The page's own camera as it sends it, per simulcast layer: [rid, width, fps, what limits it].
OUTBOUND_JS = """
async () => {
  const out = [];
  (await window.maeulRoom.pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') {
      out.push([s.rid, s.frameWidth || 0, s.framesPerSecond || 0, s.qualityLimitationReason || '']);
    }
  });
  return JSON.stringify(out);
}
"""
CONNECTED_JS = """() => Boolean(
  window.maeulRoom && window.maeulRoom.pc && window.maeulRoom.pc.connectionState === 'connected')"""

Stats = dict[str, dict[str, int]]


class Party:
    """One participant's page, whichever browser drives it."""

    def __init__(self, name: str, pid: str, chromium: Page | None = None, firefox: FirefoxPage | None = None):
        self.name, self.pid, self.chromium, self.firefox = name, pid, chromium, firefox

    async def evaluate(self, js: str) -> Any:
        if self.firefox is not None:
            return await self.firefox.evaluate(js)
        assert self.chromium is not None
        return await self.chromium.evaluate(js)

    async def stats(self) -> Stats:
        result: Stats = await self.evaluate(STATS_JS)
        return result


def rising(before: Stats, after: Stats, publisher: str) -> bool:
    old = before.get(publisher, {"frames": 0, "audio_packets": 0})
    new = after.get(publisher)
    return bool(new and new["frames"] > old["frames"] and new["audio_packets"] > old["audio_packets"])


async def until_flowing(parties: list[Party], what: str, among: list[Party] | None = None) -> None:
    """Until every party in ``among`` (all) decodes video and receives audio from every other one,
    and both still rise a moment later."""
    among = among or parties
    for _ in range(2):
        baseline = {p.name: await p.stats() for p in among}
        for _ in range(120):
            now = {p.name: await p.stats() for p in among}
            if all(
                rising(baseline[p.name], now[p.name], o.pid) for p in among for o in parties if o is not p
            ):
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"{what}: {now}")


async def firefox_log_in(page: FirefoxPage, live_server: str, username: str) -> None:
    await page.goto(f"{live_server}/login")
    await page.fill("#username", username)
    await page.fill("#password", TEST_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for("() => document.readyState === 'complete' && !location.pathname.startsWith('/login')")


async def firefox_join(page: FirefoxPage, live_server: str, meeting_id: int) -> None:
    await page.goto(f"{live_server}/meetings/{meeting_id}/join")
    await page.wait_for("() => /\\/rooms\\/\\d+$/.test(location.pathname)")
    await page.wait_for(CONNECTED_JS, timeout=30)


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_firefox_chairs_a_meeting_with_chromium(
    browser: Browser, live_server: str, world: World, sessionmaker: Any
) -> None:
    kiosk_page = await kiosk_browser_page(browser, live_server, sessionmaker, world.village_ids[0], HALL)
    meeting_id, room_id = await started_meeting(
        sessionmaker,
        world,
        title="파이어폭스 의장 회의",
        village_ids=[world.village_ids[0]],
        official_ids=[world.other_official_id],
        agenda=ITEMS,
    )
    await kiosk_page.goto(f"{live_server}/kiosk/rooms/{room_id}")
    await expect(kiosk_page.locator("[data-status]")).to_have_text(
        "의장이 입장을 허락할 때까지 기다리고 있습니다.", timeout=20000
    )
    kiosk_pid = await kiosk_page.evaluate("() => window.maeulRoom.pid")

    official_page = await (await browser.new_context(locale="ko-KR")).new_page()
    await log_in(official_page, live_server, "official2")
    await official_page.goto(f"{live_server}/meetings/{meeting_id}/join")
    await official_page.wait_for_url(re.compile(r"/rooms/\d+$"))
    await official_page.wait_for_function(CONNECTED_JS, timeout=30000)

    async with xvfb(*SCREEN) as display, launch_firefox(display=display) as firefox:
        chair_page = await firefox.new_page()
        await firefox_log_in(chair_page, live_server, "official")
        await firefox_join(chair_page, live_server, meeting_id)
        chair = Party("firefox chair", f"a{world.official_id}", firefox=chair_page)
        official = Party("chromium official", f"a{world.other_official_id}", chromium=official_page)
        kiosk = Party("chromium kiosk", kiosk_pid, chromium=kiosk_page)
        parties = [chair, official, kiosk]

        # The chair lets the hall in from the lobby.
        await chair_page.wait_for(
            "(pid) => Boolean(document.querySelector(`[data-lobby] li[data-participant='${pid}'] .admit`))",
            kiosk_pid,
        )
        await chair_page.click(f"[data-lobby] li[data-participant='{kiosk_pid}'] .admit")
        await expect(kiosk_page.locator("[data-status]")).to_have_text("회의에 참여 중입니다.", timeout=30000)
        await until_flowing(parties, "video and audio in every direction")
        # Both officials' cameras went out in three layers: the SFU answered their simulcast.
        for party in (chair, official):
            sdp = await party.evaluate("() => window.maeulRoom.pc.remoteDescription.sdp")
            assert "a=simulcast:recv q;h;f" in sdp, (party.name, sdp)

        # 30 s: video at 10 fps or more and audio in every direction, every second of it.
        loop = asyncio.get_running_loop()
        start = {p.name: await p.stats() for p in parties}
        started = loop.time()
        await asyncio.sleep(MEASURE_S)
        end = {p.name: await p.stats() for p in parties}
        elapsed = loop.time() - started
        rates = {
            f"{o.name} -> {p.name}": (
                (end[p.name][o.pid]["frames"] - start[p.name][o.pid]["frames"]) / elapsed,
                (end[p.name][o.pid]["audio_packets"] - start[p.name][o.pid]["audio_packets"]) / elapsed,
            )
            for p in parties
            for o in parties
            if o is not p
        }
        print("fps, audio packets/s over", round(elapsed, 1), "s:", rates)
        # which layer each page receives of each official, and what the Chromium official sends:
        # what to look at when a rate falls short (a starved estimate shows as 'bandwidth')
        layers = await official.evaluate(
            "() => JSON.stringify([...window.maeulRoom.people.values()].map((p) => [p.id, p.layers]))"
        )
        print("layers received:", layers, "official sends:", await official.evaluate(OUTBOUND_JS))
        assert all(fps >= MIN_FPS and audio >= MIN_AUDIO_PACKETS_PER_S for fps, audio in rates.values()), (
            rates
        )

        # The chair moves the agenda on: the hall shows the first item.
        await chair_page.click('[data-action="agenda-next"]')
        await expect(kiosk_page.locator("[data-agenda-title]")).to_have_text(f"1. {ITEMS[0]}", timeout=15000)

        # It leaves (its page goes to the workspace, it drops off the others' pages) and comes back.
        await chair_page.click('[data-action="leave"]')
        await chair_page.wait_for("() => !/\\/rooms\\//.test(location.pathname)")
        await expect(kiosk_page.locator(f'[data-tiles] figure[data-publisher="{chair.pid}"]')).to_be_hidden(
            timeout=20000
        )
        await firefox_join(chair_page, live_server, meeting_id)
        await until_flowing(parties, "video and audio in every direction after the chair came back")
        # Still the chair: the agenda goes on from where it was.
        await chair_page.click('[data-action="agenda-next"]')
        await expect(kiosk_page.locator("[data-agenda-title]")).to_have_text(f"2. {ITEMS[1]}", timeout=15000)

        # The chair shares its screen (Firefox picks the Xvfb screen): the kiosk decodes it at its size.
        await chair_page.click('[data-action="screen"]')
        await chair_page.wait_for(
            "() => document.querySelector('[data-action=\"screen\"]').getAttribute('aria-pressed') === 'true'"
        )
        shared = None
        for _ in range(80):
            shared = (await kiosk.stats()).get(chair.pid)
            if shared and shared["width"] >= SCREEN[0]:
                break
            await asyncio.sleep(0.5)
        assert shared and shared["width"] >= SCREEN[0], shared
        before = await kiosk.stats()
        # (a still screen is encoded at a low frame rate: a loaded CI run saw none in 2 s)
        await asyncio.sleep(5)
        assert (await kiosk.stats())[chair.pid]["frames"] > before[chair.pid]["frames"], (
            "the share keeps decoding"
        )
