"""A meeting page whose media cannot connect backs off (1, 2, 4 … 30 s, jittered) instead of
retrying every 2 s, says in Korean whom to tell after a few failures, and a chair in that state
still runs the meeting: it stays joined between attempts, so its admit reaches the lobby.

The server refuses every offer of the chair's page (as it refused Firefox's before bundle-only
sections were understood); the kiosk's media is left alone."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from server.auth.roles import Principal
from server.signaling.meeting import MeetingHub
from server.signaling.messages import SignalingError
from tests.conftest import World
from tests.e2e.browser_steps import log_in
from tests.e2e.conftest import kiosk_browser_page
from tests.e2e.live_meeting import started_meeting

pytestmark = [pytest.mark.e2e, pytest.mark.network]

HALL = "남성리 마을회관"
UNREACHABLE = "회의에 연결할 수 없습니다 — 군청 정보통신 담당에게 알려 주세요. 계속 연결을 시도합니다…"
WINDOW_S = 25.0  # the old page joined 12 times in this long; the backoff's 1+2+4+8 s allow 5 or 6


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_refused_offers_back_off_and_the_chair_still_admits(
    browser: Browser, live_server: str, world: World, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kiosk = await kiosk_browser_page(browser, live_server, sessionmaker, world.village_ids[0], HALL)
    meeting_id, room_id = await started_meeting(
        sessionmaker, world, title="연결 시험 회의", village_ids=[world.village_ids[0]]
    )
    loop = asyncio.get_running_loop()
    chair_joins: list[float] = []
    refusing = True
    join, offer = MeetingHub._join, MeetingHub.offer

    async def counted_join(hub: MeetingHub, sid: str, principal: Principal, request: Any) -> dict[str, Any]:
        if principal.id == world.official_id and principal.is_account:
            chair_joins.append(loop.time())
        return await join(hub, sid, principal, request)

    async def refused_offer(hub: MeetingHub, sid: str, data: Any) -> dict[str, Any]:
        member = hub.members.get(sid)
        if refusing and member is not None and member.pid == f"a{world.official_id}":
            raise SignalingError("invalid_sdp", "media section 1: refused by the test")
        return await offer(hub, sid, data)

    monkeypatch.setattr(MeetingHub, "_join", counted_join)
    monkeypatch.setattr(MeetingHub, "offer", refused_offer)

    await kiosk.goto(f"{live_server}/kiosk/rooms/{room_id}")
    await expect(kiosk.locator("[data-status]")).to_have_text(
        "의장이 입장을 허락할 때까지 기다리고 있습니다.", timeout=20000
    )
    chair = await (await browser.new_context(locale="ko-KR")).new_page()
    await log_in(chair, live_server, "official")
    await chair.goto(f"{live_server}/meetings/{meeting_id}/join")
    await chair.wait_for_url(re.compile(r"/rooms/\d+$"))

    # After three failures in a row the page says plainly that it cannot connect, and whom to tell.
    await expect(chair.locator("[data-status]")).to_have_text(UNREACHABLE, timeout=20000)
    # Its media is failing, but the chair is in the meeting: it lets the hall in from the lobby.
    await chair.locator("[data-lobby] li[data-participant] .admit").click()
    await expect(kiosk.locator("[data-status]")).to_have_text("회의에 참여 중입니다.", timeout=20000)
    assert await kiosk.evaluate("() => window.maeulMeeting.pc.connectionState") == "connected"

    # Attempts thin out: 1, 2, 4, 8 … s apart (±20 %), not every 2 s.
    first = chair_joins[0]
    await asyncio.sleep(max(0.0, first + WINDOW_S - loop.time()))
    in_window = [t - first for t in chair_joins if t - first <= WINDOW_S]
    assert 4 <= len(in_window) <= 6, in_window
    gaps = [b - a for a, b in zip(in_window, in_window[1:], strict=False)]
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps
    await expect(chair.locator("[data-status]")).to_have_text(UNREACHABLE)

    # It keeps trying: once the offers are accepted again, the chair's media connects by itself.
    refusing = False
    await chair.wait_for_function(
        "() => window.maeulMeeting.pc && window.maeulMeeting.pc.connectionState === 'connected'",
        timeout=60000,
    )
    await expect(chair.locator("[data-status]")).to_have_text("회의에 참여 중입니다.", timeout=10000)
