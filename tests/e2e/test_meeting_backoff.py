"""A meeting page whose media cannot connect backs off (1, 2, 4 … 30 s, jittered) instead of
retrying every 2 s, says in Korean whom to tell after a few failures, and a chair in that state
still runs the meeting: it stays joined between attempts, so its admit reaches the lobby.

The server refuses every offer of the chair's page (as it refused Firefox's before bundle-only
sections were understood); the kiosk's media is left alone."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from server.auth.roles import Principal
from server.signaling.messages import SignalingError
from server.signaling.room_hub import RoomHub
from tests.conftest import World
from tests.e2e.browser_steps import log_in
from tests.e2e.conftest import kiosk_browser_page
from tests.e2e.live_meeting import started_meeting

pytestmark = [pytest.mark.e2e, pytest.mark.network]

HALL = "남성리 마을회관"
UNREACHABLE = "회의에 연결할 수 없습니다 — 군청 정보통신 담당에게 알려 주세요. 계속 연결을 시도합니다…"
WINDOW_S = 25.0  # the old page joined 12 times in this long; the backoff's 1+2+4+8 s allow 5 or 6


@dataclass
class ChairTrouble:
    """The chair's joins as the server saw them, and the switch for the trouble its media is in."""

    joins: list[float] = field(default_factory=list)
    on: bool = True
    hub: RoomHub | None = None

    def in_window(self, window: float) -> list[float]:
        """Seconds from the first join of the joins in the first ``window`` seconds."""
        return [t - self.joins[0] for t in self.joins if t - self.joins[0] <= window]


async def chair_in_trouble(
    monkeypatch: pytest.MonkeyPatch, world: World, spoil: Callable[[dict[str, Any]], dict[str, Any]] | None
) -> ChairTrouble:
    """Count the chair's joins; while ``trouble.on``, refuse each offer of the chair's page
    (``spoil`` None) or hand it an answer spoiled by ``spoil``."""
    loop = asyncio.get_running_loop()
    trouble = ChairTrouble()
    join, offer = RoomHub._join, RoomHub.offer

    async def counted_join(hub: RoomHub, sid: str, principal: Principal, request: Any) -> dict[str, Any]:
        if principal.id == world.official_id and principal.is_account:
            trouble.joins.append(loop.time())
            trouble.hub = hub
        return await join(hub, sid, principal, request)

    async def troubled_offer(hub: RoomHub, sid: str, data: Any) -> dict[str, Any]:
        member = hub.members.get(sid)
        if not trouble.on or member is None or member.pid != f"a{world.official_id}":
            return await offer(hub, sid, data)
        if spoil is None:
            raise SignalingError("invalid_sdp", "media section 1: refused by the test")
        return spoil(await offer(hub, sid, data))

    monkeypatch.setattr(RoomHub, "_join", counted_join)
    monkeypatch.setattr(RoomHub, "offer", troubled_offer)
    return trouble


async def chair_page(browser: Browser, live_server: str, meeting_id: int) -> Page:
    chair = await (await browser.new_context(locale="ko-KR")).new_page()
    await log_in(chair, live_server, "official")
    await chair.goto(f"{live_server}/meetings/{meeting_id}/join")
    await chair.wait_for_url(re.compile(r"/rooms/\d+$"))
    return chair


def assert_backing_off(times: list[float]) -> None:
    """1, 2, 4, 8 … s apart (±20 %): each gap longer than the one before, 5 or 6 in 25 s."""
    assert 4 <= len(times) <= 6, times
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_refused_offers_back_off_and_the_chair_still_admits(
    browser: Browser, live_server: str, world: World, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kiosk = await kiosk_browser_page(browser, live_server, sessionmaker, world.village_ids[0], HALL)
    meeting_id, room_id = await started_meeting(
        sessionmaker, world, title="연결 시험 회의", village_ids=[world.village_ids[0]]
    )
    trouble = await chair_in_trouble(monkeypatch, world, spoil=None)
    await kiosk.goto(f"{live_server}/kiosk/rooms/{room_id}")
    await expect(kiosk.locator("[data-status]")).to_have_text(
        "의장이 입장을 허락할 때까지 기다리고 있습니다.", timeout=20000
    )
    chair = await chair_page(browser, live_server, meeting_id)

    # After three failures in a row the page says plainly that it cannot connect, and whom to tell.
    await expect(chair.locator("[data-status]")).to_have_text(UNREACHABLE, timeout=20000)
    # Its media is failing, but the chair is in the meeting: it lets the hall in from the lobby.
    await chair.locator("[data-lobby] li[data-participant] .admit").click()
    await expect(kiosk.locator("[data-status]")).to_have_text("회의에 참여 중입니다.", timeout=20000)
    # That status follows the join (signaling); the hall's media connection comes up after it
    # (a CI run caught it still 'connecting' at that instant).
    await kiosk.wait_for_function(
        "() => window.maeulRoom.pc && window.maeulRoom.pc.connectionState === 'connected'", timeout=20000
    )

    # Attempts thin out: 1, 2, 4, 8 … s apart (±20 %), not every 2 s.
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, trouble.joins[0] + WINDOW_S - loop.time()))
    assert_backing_off(trouble.in_window(WINDOW_S))
    await expect(chair.locator("[data-status]")).to_have_text(UNREACHABLE)

    # It keeps trying: once the offers are accepted again, the chair's media connects by itself.
    trouble.on = False
    await chair.wait_for_function(
        "() => window.maeulRoom.pc && window.maeulRoom.pc.connectionState === 'connected'",
        timeout=60000,
    )
    await expect(chair.locator("[data-status]")).to_have_text("회의에 참여 중입니다.", timeout=10000)


def wrong_fingerprint(ack: dict[str, Any]) -> dict[str, Any]:
    """The answer with another DTLS fingerprint: ICE connects, DTLS fails at once on both sides."""
    sdp = re.sub(
        r"(a=fingerprint:sha-\d+ )([0-9A-Fa-f]{2})",
        lambda m: m.group(1) + ("00" if m.group(2) != "00" else "11"),
        ack["sdp"],
    )
    assert sdp != ack["sdp"]
    return {**ack, "sdp": sdp}


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_a_connection_that_fails_at_once_backs_off(
    browser: Browser, live_server: str, world: World, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's peer connection fails right after each answer (and the SFU drops it: 'left'):
    the old page left and joined again at once, about 12 times a second."""
    meeting_id, _ = await started_meeting(
        sessionmaker, world, title="연결 시험 회의", village_ids=[world.village_ids[0]]
    )
    trouble = await chair_in_trouble(monkeypatch, world, spoil=wrong_fingerprint)
    chair = await chair_page(browser, live_server, meeting_id)
    await expect(chair.locator("[data-status]")).to_have_text(UNREACHABLE, timeout=30000)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, trouble.joins[0] + WINDOW_S - loop.time()))
    assert_backing_off(trouble.in_window(WINDOW_S))
    # Between attempts the chair is in the meeting (so its controls work), not out of it.
    assert trouble.hub is not None
    member = []
    for _ in range(10):
        member.append(any(m.pid == f"a{world.official_id}" for m in trouble.hub.members.values()))
        await asyncio.sleep(0.5)
    assert member.count(True) >= 8, member
