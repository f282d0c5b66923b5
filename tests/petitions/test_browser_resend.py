"""In headless Chromium against a real server process: a resident's request survives 503s, a page
reload, a lost 201 and a stopped server. The kiosk page keeps it in IndexedDB (the recorded message
too), sends it again by itself, and the county gets it exactly once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from server.db import close_engine, create_engine, make_sessionmaker, transaction
from server.petitions.models import Petition, PetitionMedia
from tests.petitions.live import LiveServer, running
from tests.petitions.test_browser import ARGS, CHROMIUM

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

RETRYING = "잠시 후 자동으로 다시 보냅니다"


def stored(server: LiveServer) -> tuple[list[str], int]:
    """Receipt numbers of every petition in the server's database, and how many media rows."""

    async def read() -> tuple[list[str], int]:
        engine = create_engine(server.database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                receipts = list((await session.scalars(select(Petition.receipt_no))).all())
                media = await session.scalar(select(func.count()).select_from(PetitionMedia))
                return receipts, int(media or 0)
        finally:
            await close_engine(engine)

    # Playwright's sync API runs an event loop on this thread: read on a thread of our own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def pin_accepted(server: LiveServer, receipt_no: str, pin: str) -> bool:
    request = urllib.request.Request(
        server.base_url + "/api/v1/kiosk/petitions/status",
        data=json.dumps({"receipt_no": receipt_no, "pin": pin}).encode(),
        headers={"Authorization": f"Bearer {server.seeded.kiosk_token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return False


def kiosk_page(server: LiveServer, browser: Any, errors: list[str]) -> Any:
    context = browser.new_context(
        viewport={"width": 1920, "height": 1080}, locale="ko-KR", permissions=["microphone", "camera"]
    )
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server.base_url}/kiosk/enroll?code={server.seeded.browser_enroll_code}")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/kiosk$"))
    return page


@contextmanager
def kiosk_at(tmp_path: Path, errors: list[str]) -> Iterator[tuple[LiveServer, Any]]:
    """A live server and an enrolled kiosk page in headless Chromium."""
    with running(tmp_path) as server, playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield server, kiosk_page(server, browser, errors)
        finally:
            browser.close()


def fill_request(page: Any, server: LiveServer, *, record: bool) -> None:
    page.goto(f"{server.base_url}/kiosk/request")
    page.click("[data-kind=grievance]")
    page.click(f"[data-department='{server.seeded.department_ids[0]}']")
    if record:
        page.click("[data-record=audio]")
        expect(page.locator("[data-part=elapsed]")).to_have_text(re.compile(r"^0:0[2-9]$"), timeout=10000)
        page.click("[data-action=stop]")
        page.locator("[data-part=review]").wait_for(state="visible")
        page.click("[data-action=next]")
    else:
        page.click("[data-action=type]")
        page.fill("#request-text", "다리 난간이 부서졌어요")
        page.click("[data-action=text-done]")
    for digit in "01055556666":
        page.click(f"[data-keypad=phone] [data-key='{digit}']")
    page.click("[data-keypad=phone] [data-key=ok]")
    page.click("[data-public=false]")


def test_recorded_request_survives_503s_a_reload_and_a_lost_answer(tmp_path: Path) -> None:
    errors: list[str] = []
    seen: list[str] = []  # what each send got, in order
    mode = {"now": "503"}

    def intercept(route: Any) -> None:
        if mode["now"] == "503":
            seen.append("503")
            route.fulfill(status=503, headers={"Retry-After": "1"}, json={"error": {"code": "db"}})
        elif mode["now"] == "lose":
            # The server files it, but the answer never reaches the kiosk (the line dropped).
            response = route.fetch()
            seen.append(f"lost {response.status}")
            mode["now"] = "pass"
            route.abort("connectionreset")
        else:
            seen.append("pass")
            route.continue_()

    with kiosk_at(tmp_path, errors) as (server, page):
        page.route("**/api/v1/kiosk/petitions", intercept)
        fill_request(page, server, record=True)
        page.click("[data-action=send]")
        expect(page.locator("[data-screen=waiting]")).to_contain_text(RETRYING, timeout=15000)
        expect(page.locator("[data-part=walk-away]")).to_be_visible()
        assert seen and set(seen) == {"503"}

        # The kiosk agent relaunches the page: the kept request (and its recording) carries on.
        page.reload()
        page.locator("[data-screen=waiting]").wait_for(state="visible", timeout=10000)
        expect(page.locator("[data-part=retrying]")).to_contain_text(RETRYING, timeout=15000)
        assert stored(server) == ([], 0)

        mode["now"] = "lose"
        page.locator("[data-screen=receipt]").wait_for(state="visible", timeout=30000)
        receipt = page.locator("[data-part=receipt-no]").inner_text()
        pin = page.locator("[data-part=receipt-pin]").inner_text()
        receipts, media = stored(server)
        assert "lost 201" in seen and seen[-1] == "pass", seen
        assert receipts == [receipt] and media == 1
        assert pin_accepted(server, receipt, pin)
    assert not errors, errors


def test_request_sent_once_the_stopped_server_is_back(tmp_path: Path) -> None:
    errors: list[str] = []
    with kiosk_at(tmp_path, errors) as (server, page):
        fill_request(page, server, record=False)
        server.stop()  # the server process is gone: connection refused
        page.click("[data-action=send]")
        expect(page.locator("[data-part=retrying]")).to_contain_text(RETRYING, timeout=15000)
        server.start()
        page.locator("[data-screen=receipt]").wait_for(state="visible", timeout=40000)
        receipt = page.locator("[data-part=receipt-no]").inner_text()
        assert stored(server)[0] == [receipt]
    assert not errors, errors


def test_a_walked_away_request_is_shown_pending_at_home_and_sent_from_there(tmp_path: Path) -> None:
    errors: list[str] = []

    def unavailable(route: Any) -> None:
        route.fulfill(status=503, headers={"Retry-After": "1"}, json={"error": {"code": "db"}})

    with kiosk_at(tmp_path, errors) as (server, page):
        page.route("**/api/v1/kiosk/petitions", unavailable)
        fill_request(page, server, record=False)
        page.click("[data-action=send]")
        expect(page.locator("[data-part=retrying]")).to_contain_text(RETRYING, timeout=15000)
        # The resident walks away: "Finish" takes the kiosk home, which shows the request waiting.
        page.click("[data-action=leave-pending]")
        page.wait_for_url(re.compile(r"/kiosk$"))
        box = page.locator("[data-outbox]")
        expect(box.locator("[data-part=outbox-waiting]")).to_be_visible(timeout=10000)
        assert stored(server) == ([], 0)
        page.unroute("**/api/v1/kiosk/petitions", unavailable)
        expect(box.locator("[data-part=outbox-sent]")).to_be_visible(timeout=30000)
        # Nothing of the resident's is shown to the next person at the kiosk.
        assert "5555" not in box.inner_text() and "난간" not in box.inner_text()
        # Sent means gone from the kiosk: the next visit to home shows nothing waiting.
        page.reload()
        page.wait_for_timeout(1000)
        assert box.is_hidden()
        assert len(stored(server)[0]) == 1
    assert not errors, errors
