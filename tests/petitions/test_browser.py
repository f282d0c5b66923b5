"""End to end in headless Chromium: a resident records a voice request at the kiosk (fake
microphone), an official answers it in the inbox, the resident reads the answer at the kiosk.

Saves screenshots of the main screens to docs/screenshots/ (committed as documentation).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.config import PROJECT_ROOT
from tests.petitions.kiosk_steps import check_receipt
from tests.petitions.live import PASSWORD, running

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = PROJECT_ROOT / "docs" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


def test_kiosk_voice_request_answered_by_official_and_read_at_kiosk(tmp_path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with running(tmp_path) as server, playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            kiosk_ctx = browser.new_context(
                viewport={"width": 1920, "height": 1080}, locale="ko-KR", permissions=["microphone", "camera"]
            )
            kiosk = kiosk_ctx.new_page()
            kiosk.on("pageerror", lambda exc: errors.append(str(exc)))
            # Failed resources are reported through "response" (with their URL); the browser's own
            # favicon probe is not ours to serve.
            kiosk.on(
                "response",
                lambda r: (
                    errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico")
                    else None
                ),
            )

            # Enroll this browser as the village hall's kiosk, as the installer would.
            kiosk.goto(f"{server.base_url}/kiosk/enroll?code={server.seeded.browser_enroll_code}")
            kiosk.click("button[type=submit]")
            kiosk.wait_for_url(re.compile(r"/kiosk$"))
            kiosk.goto(f"{server.base_url}/kiosk/request")

            kind = kiosk.locator("[data-screen=kind]")
            kind.wait_for()
            kiosk.screenshot(path=str(SHOTS / "kiosk-request-kind.png"))
            # Touch targets are at least 64×64 CSS px.
            for box in kiosk.locator("[data-screen=kind] .big-choice").evaluate_all(
                "els => els.map(e => [e.getBoundingClientRect().width, e.getBoundingClientRect().height])"
            ):
                assert box[0] >= 64 and box[1] >= 64
            kiosk.click("[data-kind=grievance]")
            kiosk.click(f"[data-department='{server.seeded.department_ids[0]}']")

            kiosk.click("[data-record=audio]")
            kiosk.locator("[data-part=recorder]").wait_for(state="visible")
            expect(kiosk.locator("[data-part=elapsed]")).to_have_text(
                re.compile(r"^0:0[2-9]$"), timeout=10000
            )
            kiosk.screenshot(path=str(SHOTS / "kiosk-request-record.png"))
            kiosk.click("[data-action=stop]")
            kiosk.locator("[data-part=review]").wait_for(state="visible")
            assert kiosk.locator("[data-part=playback-audio]").get_attribute("src").startswith("blob:")
            kiosk.click("[data-action=next]")

            for digit in "01098765432":
                kiosk.click(f"[data-keypad=phone] [data-key='{digit}']")
            assert kiosk.locator("[data-part=phone-display]").inner_text() == "010-9876-5432"
            kiosk.click("[data-keypad=phone] [data-key=ok]")
            kiosk.click("[data-public=false]")
            assert kiosk.locator("[data-part=sum-phone]").inner_text() == "010-9876-5432"
            kiosk.click("[data-action=send]")
            kiosk.locator("[data-screen=receipt]").wait_for(state="visible", timeout=20000)
            receipt = kiosk.locator("[data-part=receipt-no]").inner_text()
            pin = kiosk.locator("[data-part=receipt-pin]").inner_text()
            assert re.fullmatch(r"강진-\d{4}-\d{5}", receipt) and re.fullmatch(r"\d{4}", pin)
            kiosk.screenshot(path=str(SHOTS / "kiosk-request-receipt.png"))

            # The official, in another browser context, answers it.
            official_ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="ko-KR")
            official = official_ctx.new_page()
            official.on("pageerror", lambda exc: errors.append(str(exc)))
            official.goto(f"{server.base_url}/login")
            official.fill("input[name=username]", "official")
            official.fill("input[name=password]", PASSWORD)
            official.click("button[type=submit]")
            official.wait_for_url(re.compile(r"/official"))
            official.goto(f"{server.base_url}/official/requests")
            row = official.locator("table.petitions tbody tr", has_text=receipt)
            row.wait_for()
            official.screenshot(path=str(SHOTS / "official-inbox.png"), full_page=True)
            row.locator("a").click()
            audio = official.locator("audio.petition-audio")
            audio.wait_for()
            ready = 0
            for _ in range(100):  # the browser loads the message from the authorized media endpoint
                ready = audio.evaluate("a => a.error ? -1 : a.readyState")
                if ready != 0:
                    break
                official.wait_for_timeout(100)
            assert ready >= 1  # metadata decoded: a playable recording, not an error
            petition_id = official.url.rstrip("/").rsplit("/", 1)[-1]
            detail = official.request.get(f"{server.base_url}/api/v1/petitions/{petition_id}").json()[
                "petition"
            ]
            (message,) = detail["media"]
            assert message["kind"] == "message" and message["content_type"] == "audio/webm"
            assert 1.0 <= message["duration_s"] <= 180.5
            media = official.request.get(server.base_url + message["url"])
            assert media.status == 200 and media.headers["content-type"] == "audio/webm"
            official.click("form.action-form:has(input[value=assign]) button[type=submit]")
            official.fill("#answer-text", "다음 주 화요일에 가로등을 고치겠습니다.")
            official.click("form.action-form:has(input[value=answer]) button[type=submit]")
            official.locator("text=다음 주 화요일에 가로등을 고치겠습니다.").first.wait_for()

            # Back at the kiosk: check with receipt number and PIN on the keypads.
            kiosk.click("[data-screen=receipt] [data-action=home]")
            kiosk.wait_for_url(re.compile(r"/kiosk$"))
            check_receipt(kiosk, server.base_url, receipt, pin)
            assert (
                kiosk.locator("[data-part=answer-text]").inner_text()
                == "다음 주 화요일에 가로등을 고치겠습니다."
            )
            assert kiosk.locator("[data-part=result-status]").get_attribute("data-status") == "answered"
            font_px = kiosk.locator("[data-part=answer-text]").evaluate(
                "e => parseFloat(getComputedStyle(e).fontSize)"
            )
            assert font_px >= 24
            kiosk.screenshot(path=str(SHOTS / "kiosk-status-answer.png"))
        finally:
            browser.close()
    assert errors == []


def test_kiosk_video_request_is_stored_as_video(tmp_path: Path) -> None:
    """The camera path: Chromium's MediaRecorder (VP8/Opus WebM) passes the server-side probe."""
    errors: list[str] = []
    with running(tmp_path) as server, playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="en-GB")
            kiosk = context.new_page()
            kiosk.on("pageerror", lambda exc: errors.append(str(exc)))
            kiosk.goto(f"{server.base_url}/kiosk/enroll?code={server.seeded.browser_enroll_code}")
            kiosk.click("button[type=submit]")
            kiosk.wait_for_url(re.compile(r"/kiosk$"))
            kiosk.goto(f"{server.base_url}/kiosk/request?lang=en")
            assert kiosk.locator("#kind-title").inner_text() == "What is it about?"
            kiosk.click("[data-kind=suggestion]")
            kiosk.click("[data-department='']")
            kiosk.click("[data-record=video]")
            expect(kiosk.locator("[data-part=preview]")).to_be_visible()
            expect(kiosk.locator("[data-part=elapsed]")).to_have_text(
                re.compile(r"^0:0[2-9]$"), timeout=10000
            )
            kiosk.click("[data-action=stop]")
            expect(kiosk.locator("[data-part=playback-video]")).to_be_visible()
            kiosk.click("[data-action=next]")
            for digit in "01055556666":
                kiosk.click(f"[data-keypad=phone] [data-key='{digit}']")
            kiosk.click("[data-keypad=phone] [data-key=ok]")
            kiosk.click("[data-public=true]")
            kiosk.click("[data-action=send]")
            kiosk.locator("[data-screen=receipt]").wait_for(state="visible", timeout=20000)

            admin = browser.new_context().new_page()
            admin.request.post(
                f"{server.base_url}/api/v1/session", data={"username": "admin", "password": PASSWORD}
            )
            listing = admin.request.get(f"{server.base_url}/api/v1/petitions").json()["petitions"]
            (petition,) = listing
            assert petition["department_id"] is None and petition["is_public"] is True
            (message,) = petition["media"]
            assert message["has_video"] is True and message["content_type"] == "video/webm"
            assert 1.0 <= message["duration_s"] <= 180.5
        finally:
            browser.close()
    assert errors == []
