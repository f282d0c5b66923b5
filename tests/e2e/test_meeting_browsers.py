"""Three headless Chromium participants (an official's page and two kiosk pages, fake camera and
microphone) in one room, through the real pages, socket.io signaling and the SFU."""

from __future__ import annotations

import json
import re

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, expect

from tests.conftest import World
from tests.e2e.browser_steps import SMALL_SCREEN, LiveServer, admin_enrolled_kiosk_browser, log_in
from tests.e2e.conftest import screenshot_path
from tests.signaling.signaling_kit import Participant, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.network]

# Per remote publisher (mapped from the receive slot's mid through the page's slot map):
# decoded video frames and received audio packets.
STATS_JS = """
async () => {
  const meeting = window.maeulRoom;
  if (!meeting || !meeting.pc) return JSON.stringify({});
  const slots = meeting.slotMap();
  const out = {};
  (await meeting.pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp' || !slots[s.mid]) return;
    const entry = out[slots[s.mid]] || (out[slots[s.mid]] = {frames: 0, audio_packets: 0});
    if (s.kind === 'video') entry.frames += s.framesDecoded || 0;
    else entry.audio_packets += s.packetsReceived || 0;
  });
  return JSON.stringify(out);
}
"""


async def _stats(page: Page) -> dict[str, dict[str, int]]:
    return json.loads(await page.evaluate(STATS_JS))


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_three_browsers_see_and_hear_each_other(
    browser: Browser, live_server: str, world: World
) -> None:
    admin = await (await browser.new_context()).new_page()
    await log_in(admin, live_server, "admin")
    kiosk_a_id, kiosk_a = await admin_enrolled_kiosk_browser(
        browser, admin, live_server, world.village_ids[0], "남성리 마을회관", SMALL_SCREEN
    )
    kiosk_b_id, kiosk_b = await admin_enrolled_kiosk_browser(
        browser, admin, live_server, world.village_ids[5], "서성리 마을회관", SMALL_SCREEN
    )

    # The admin opens a room on the rooms page and invites the official and both kiosks.
    await admin.goto(f"{live_server}/admin/rooms")
    await admin.fill("#room-title", "마을 안전 점검 회의")
    await admin.check(f'input[name="account_ids"][value="{world.official_id}"]')
    await admin.check(f'input[name="kiosk_ids"][value="{kiosk_a_id}"]')
    await admin.check(f'input[name="kiosk_ids"][value="{kiosk_b_id}"]')
    await admin.click("form.room-form button[type=submit]")
    await expect(admin.locator("tbody tr").first).to_contain_text("마을 안전 점검 회의")
    room_href = await admin.locator("tbody tr").first.locator("a", has_text="참여").get_attribute("href")
    assert room_href and re.fullmatch(r"/rooms/\d+", room_href)
    room_id = int(room_href.rsplit("/", 1)[1])

    # The kiosks' home screens now offer the meeting; the elderly user touches it.
    for kiosk in (kiosk_a, kiosk_b):
        await kiosk.reload()
        link = kiosk.locator("[data-meeting-link]")
        await expect(link).to_be_visible(timeout=15000)
        await expect(link).to_contain_text("마을 안전 점검 회의")
        await link.click()
        await expect(kiosk).to_have_url(re.compile(rf"/kiosk/rooms/{room_id}$"))

    official = await (await browser.new_context(viewport={"width": 1440, "height": 900})).new_page()
    await log_in(official, live_server, "official")
    await official.goto(f"{live_server}/official")
    await expect(official.locator("[data-my-rooms] a")).to_have_attribute(
        "href", f"/rooms/{room_id}", timeout=15000
    )
    await official.click("[data-my-rooms] a")
    await expect(official).to_have_url(re.compile(rf"/rooms/{room_id}$"))

    pages = {"official": official, "kiosk_a": kiosk_a, "kiosk_b": kiosk_b}
    pids: dict[str, str] = {}
    for name, page in pages.items():
        await wait_connected(page)
        pids[name] = await page.evaluate("() => window.maeulRoom.pid")
    assert pids == {
        "official": f"a{world.official_id}",
        "kiosk_a": f"k{kiosk_a_id}",
        "kiosk_b": f"k{kiosk_b_id}",
    }

    first: dict[str, dict[str, dict[str, int]]] = {}
    latest: dict[str, dict[str, dict[str, int]]] = {}

    async def poll() -> None:
        for name, page in pages.items():
            latest[name] = await _stats(page)

    def flowing(baseline: dict[str, dict[str, dict[str, int]]]) -> bool:
        for name in pages:
            for other in pages:
                if other == name:
                    continue
                now = latest.get(name, {}).get(pids[other])
                before = baseline.get(name, {}).get(pids[other], {"frames": 0, "audio_packets": 0})
                if (
                    now is None
                    or now["frames"] <= before["frames"]
                    or now["audio_packets"] <= before["audio_packets"]
                ):
                    return False
        return True

    async def until(baseline: dict[str, dict[str, dict[str, int]]], what: str) -> None:
        for _ in range(120):  # generous: up to ~60 s on a loaded 2-core machine
            await poll()
            if flowing(baseline):
                return
            await official.wait_for_timeout(500)
        raise AssertionError(f"{what}: {latest}")

    await until({}, "every page decodes video and receives audio from both others")
    first.update(json.loads(json.dumps(latest)))
    await until(first, "video frames and audio packets keep rising for both remotes on every page")

    # Labels: the official sees both kiosks' names and villages on their tiles.
    tiles = official.locator(".tile:not(.self):not([hidden])")
    await expect(tiles).to_have_count(2)
    await expect(official.locator(".tiles")).to_contain_text("남성리 마을회관")
    await expect(official.locator(".tiles")).to_contain_text("서성리 마을회관")
    await expect(kiosk_a.locator(".tiles")).to_contain_text("김민원")
    await expect(kiosk_a.locator("[data-status]")).to_have_text("회의에 참여 중입니다.")

    # Mute on a kiosk reaches the official's tile.
    await kiosk_b.click('[data-action="mic"]')
    await expect(kiosk_b.locator('[data-action="mic"]')).to_have_text("마이크 켜기")
    await expect(official.locator(f'.tile[data-publisher="{pids["kiosk_b"]}"]')).to_contain_text(
        "마이크 꺼짐"
    )

    await official.wait_for_timeout(1000)  # let the videos paint before the screenshots
    await official.screenshot(path=screenshot_path("meeting-official.png"))
    await kiosk_a.screenshot(path=screenshot_path("meeting-kiosk.png"))

    # A fourth, loud participant (an aiortc peer through the same signaling): the kiosks have only
    # two video tiles for three others, so their pages ask the SFU to keep the speaker on screen.
    server = LiveServer(live_server)
    loud = Participant("loud", server, cookie=await session_cookie(server, "admin"))  # type: ignore[arg-type]
    try:
        await loud.connect()
        await loud.join(room_id)
        await loud.publish(110, 12000, video_slots=0, audio_slots=0)
        for kiosk in (kiosk_a, kiosk_b):
            await kiosk.wait_for_function(
                """(pid) => {
                  const m = window.maeulRoom;
                  const slots = m.slotMap();
                  const videoMids = m.pc.getTransceivers()
                    .filter((t) => t.receiver.track.kind === 'video').map((t) => t.mid);
                  return m.speaker === pid && videoMids.some((mid) => slots[mid] === pid);
                }""",
                arg=loud.pid,
                timeout=30000,
            )
    finally:
        await loud.close()
    await expect(official.locator(".tile:not(.self):not([hidden])")).to_have_count(2, timeout=15000)

    # Leaving: the kiosk goes back to its home and drops off the official's page.
    await kiosk_a.click('[data-action="leave"]')
    await expect(kiosk_a).to_have_url(re.compile(r"/kiosk$"))
    await expect(official.locator(".tile:not(.self):not([hidden])")).to_have_count(1, timeout=15000)

    # A lost socket (a congested link): the media connection is left alone, the socket comes
    # back, and the page resumes the same participant on the same peer connection.
    await official.evaluate(
        "() => { window.oldPc = window.maeulRoom.pc; window.maeulRoom.socket.io.engine.close(); }"
    )
    await official.wait_for_function(
        "() => window.maeulRoom.socket.connected && window.maeulRoom.pc === window.oldPc"
        " && window.maeulRoom.root.dataset.state === 'connected'",
        timeout=30000,
    )
    assert await official.evaluate("() => window.maeulRoom.pc.connectionState") == "connected"
    await official.evaluate("() => { window.oldPc = null; }")
    rejoined = await _stats(official)
    for _ in range(60):
        now = (await _stats(official)).get(pids["kiosk_b"])
        before = rejoined.get(pids["kiosk_b"], {"frames": 0, "audio_packets": 0})
        if now and now["frames"] > before["frames"] and now["audio_packets"] > before["audio_packets"]:
            break
        await official.wait_for_timeout(500)
    else:
        raise AssertionError(f"no media after the resume: {await _stats(official)}")

    # The kiosk's meeting page: no axe-core violations, every control at least 64x64 CSS px.
    results = await Axe().run(kiosk_b)
    assert [v["id"] for v in results.response["violations"]] == []
    sizes = await kiosk_b.evaluate(
        """() => [...document.querySelectorAll('main button, main a[href]')]
              .filter((el) => el.getClientRects().length)
              .map((el) => [el.getBoundingClientRect().width, el.getBoundingClientRect().height])"""
    )
    assert sizes and all(w >= 64 and h >= 64 for w, h in sizes), sizes

    # The admin closes the room: both remaining pages say the meeting is over.
    await admin.goto(f"{live_server}/admin/rooms")
    await admin.locator("tbody tr").first.locator("button", has_text="회의실 닫기").click()
    for page in (official, kiosk_b):
        await expect(page.locator("[data-status]")).to_have_text("회의가 끝났습니다.", timeout=15000)
    await expect(kiosk_b.locator('[data-action="leave"]')).to_have_text("처음 화면으로")
    await expect(official.locator('[data-action="leave"]')).to_have_text("업무 화면으로")


async def wait_connected(page: Page) -> None:
    await page.wait_for_function(
        "() => window.maeulRoom && window.maeulRoom.pid && window.maeulRoom.pc"
        " && window.maeulRoom.pc.connectionState === 'connected'",
        timeout=30000,
    )
