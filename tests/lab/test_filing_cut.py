"""Issue #14: a resident never records twice. In the link lab, the Chromium kiosk page of a hall on
a thin uplink (32 kbit/s) sends a recorded voice request; the hall's line is cut for 30 s while the
message is on its way. The page tells the resident it will send again by itself, and after the
restore the county has the request exactly once, with its message, and the page shows the receipt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright, expect
from sqlalchemy import select

from server.db import close_engine, create_engine, make_sessionmaker, transaction, utcnow
from server.middlewares import KIOSK_COOKIE
from server.petitions.models import Petition, PetitionMedia
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.lab.scenario import MeetingLab

pytestmark = [pytest.mark.lab, pytest.mark.e2e]

CUT_SECONDS = 30
RETRYING = "잠시 후 자동으로 다시 보냅니다"


class KioskPage:
    """The hall's Chromium kiosk page; every method runs on the hall's loop (``lab.run_in``)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.page: Page | None = None
        self._closers: list[Any] = []

    async def open(self) -> None:
        playwright = await async_playwright().start()
        # The lab's http origin is not a secure context: no getUserMedia without this (see linklab.md).
        secure = f"--unsafely-treat-insecure-origin-as-secure={self.base_url}"
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, secure], headless=True
        )
        self._closers = [browser.close, playwright.stop]
        context = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="ko-KR")
        await context.add_cookies([{"name": KIOSK_COOKIE, "value": self.token, "url": self.base_url}])
        self.page = await context.new_page()

    async def record_and_send(self) -> None:
        page = self.page
        assert page is not None
        await page.goto(f"{self.base_url}/kiosk/request")
        await page.click("[data-kind=grievance]")
        await page.click("[data-department='']")
        await page.click("[data-record=audio]")
        await expect(page.locator("[data-part=elapsed]")).to_have_text(
            re.compile(r"^0:0[4-9]$"), timeout=20000
        )
        await page.click("[data-action=stop]")
        await page.locator("[data-part=review]").wait_for(state="visible")
        await page.click("[data-action=next]")
        for digit in "01077778888":
            await page.click(f"[data-keypad=phone] [data-key='{digit}']")
        await page.click("[data-keypad=phone] [data-key=ok]")
        await page.click("[data-public=false]")
        await page.click("[data-action=send]")

    async def says_it_will_resend(self, within: float) -> None:
        assert self.page is not None
        await expect(self.page.locator("[data-part=retrying]")).to_contain_text(
            RETRYING, timeout=within * 1000
        )

    async def touch(self) -> None:
        """The resident is still there and touches the screen (the kiosk stays on the request)."""
        assert self.page is not None
        await self.page.locator("#waiting-title").click()

    async def receipt(self, within: float) -> tuple[str, str]:
        assert self.page is not None
        await self.page.locator("[data-screen=receipt]").wait_for(state="visible", timeout=within * 1000)
        number = await self.page.locator("[data-part=receipt-no]").inner_text()
        pin = await self.page.locator("[data-part=receipt-pin]").inner_text()
        return number, pin

    async def close(self) -> None:
        for close in self._closers:
            await close()


async def filed(database_url: str) -> list[tuple[str, dt.datetime, int]]:
    """(receipt number, received at, media rows) of every petition the county has."""
    engine = create_engine(database_url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            petitions = (await session.scalars(select(Petition))).all()
            media = (await session.scalars(select(PetitionMedia))).all()
            return [
                (p.receipt_no, p.received_at, sum(m.petition_id == p.id for m in media)) for p in petitions
            ]
    finally:
        await close_engine(engine)


async def test_a_request_cut_off_mid_upload_arrives_once_after_the_restore(tmp_path: Path) -> None:
    async with MeetingLab(tmp_path, halls=1, browser_halls={1}) as meeting:
        assert meeting.seed is not None
        lab, url = meeting.lab, meeting.seed.database_url
        kiosk = KioskPage(meeting.base_url, meeting.seed.kiosk_tokens[1])
        await lab.run_in(1, kiosk.open())
        try:
            # A thin uplink: the recorded message takes many seconds to upload.
            lab.shape(1, up_kbit=32, down_kbit=1000)
            await lab.run_in(1, kiosk.record_and_send())
            await asyncio.sleep(3)
            assert await filed(url) == []  # still on its way
            lab.cut(1)
            cut_at = time.monotonic()
            # The stalled send is given up and the resident is told it will go by itself.
            await lab.run_in(1, kiosk.says_it_will_resend(within=CUT_SECONDS - 2))
            await asyncio.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
            assert await filed(url) == []  # nothing got through the cut
            lab.restore(1)
            restored = utcnow()
            await lab.run_in(1, kiosk.touch())
            number, pin = await lab.run_in(1, kiosk.receipt(within=120))
            took = (utcnow() - restored).total_seconds()
        finally:
            await lab.run_in(1, kiosk.close())
        await asyncio.sleep(2)  # a late duplicate would have landed by now
        rows = await filed(url)
    print(f"RESULT filing_after_cut receipt_s_after_restore={took:.1f} petitions={len(rows)}")
    assert len(rows) == 1, rows
    receipt_no, received_at, media = rows[0]
    assert receipt_no == number and re.fullmatch(r"\d{4}", pin)
    assert media == 1  # the recording itself came through: nobody records again
    assert received_at >= restored - dt.timedelta(seconds=1)
