"""Headless Chromium at a kiosk: the resident withdraws her own request with receipt number and
PIN (issue 12 item 5), and 공감 goes through a server-issued visit (item 9)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.petitions.kiosk_steps import check_receipt
from tests.petitions.live import PASSWORD, LiveServer, running
from tests.petitions.test_browser_resend import kiosk_page

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
FILING = {
    "petition_type": "grievance",
    "title": "경로당 보일러가 고장났어요",
    "body": "어르신들이 추워서 못 모이세요.",
    "phone": "010-2222-3333",
}


def file_request(page: Any, server: LiveServer, **fields: object) -> dict[str, Any]:
    """File as this kiosk's page would (its cookie and CSRF token)."""
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    reply = page.request.post(
        f"{server.base_url}/api/v1/kiosk/petitions",
        data={**FILING, **fields},
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    assert reply.status == 201, reply.text()
    body: dict[str, Any] = reply.json()
    return body


def test_the_resident_withdraws_her_request_at_the_kiosk(tmp_path: Path) -> None:
    errors: list[str] = []
    with running(tmp_path) as server, playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            kiosk = kiosk_page(server, browser, errors)
            filed = file_request(kiosk, server)
            receipt, pin = filed["petition"]["receipt_no"], filed["pin"]

            check_receipt(kiosk, server.base_url, receipt, pin)
            assert kiosk.locator("[data-part=result-status]").get_attribute("data-status") == "received"

            kiosk.click("[data-action=withdraw]")
            expect(kiosk.locator("[data-part=withdraw-confirm]")).to_be_visible()
            kiosk.click("[data-action=withdraw-yes]")
            expect(kiosk.locator("[data-part=withdrawn]")).to_be_visible()
            expect(kiosk.locator("[data-part=withdrawn]")).to_have_text("요청을 취하했습니다.")
            expect(kiosk.locator("[data-part=result-status]")).to_have_attribute("data-status", "closed")
            expect(kiosk.locator("[data-part=withdraw-box]")).to_be_hidden()

            admin = browser.new_context().new_page()
            admin.request.post(
                f"{server.base_url}/api/v1/session", data={"username": "admin", "password": PASSWORD}
            )
            events = admin.request.get(f"{server.base_url}/api/v1/petitions/{filed['petition']['id']}/events")
            assert [e["action"] for e in events.json()["events"]][-1] == "withdraw"
        finally:
            browser.close()
    assert errors == []


def test_support_at_the_kiosk_counts_once_per_visit(tmp_path: Path) -> None:
    errors: list[str] = []
    with running(tmp_path) as server, playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            kiosk = kiosk_page(server, browser, errors)
            petition_id = file_request(kiosk, server, is_public=True)["petition"]["id"]

            kiosk.goto(f"{server.base_url}/kiosk/public")
            kiosk.click(f"[data-support='{petition_id}']")
            expect(kiosk.locator(f"[data-done-for='{petition_id}']")).to_be_visible()
            expect(kiosk.locator(f"[data-count-for='{petition_id}']")).to_have_text("1")
            # The same visit, after a reload: counted already.
            kiosk.reload()
            kiosk.click(f"[data-support='{petition_id}']")
            expect(kiosk.locator(f"[data-again-for='{petition_id}']")).to_be_visible()
            # The next resident (the kiosk went home in between) counts again.
            kiosk.click(".nav-home")
            kiosk.wait_for_url(re.compile(r"/kiosk$"))
            kiosk.goto(f"{server.base_url}/kiosk/public")
            kiosk.click(f"[data-support='{petition_id}']")
            expect(kiosk.locator(f"[data-count-for='{petition_id}']")).to_have_text("2")
        finally:
            browser.close()
    assert errors == []
