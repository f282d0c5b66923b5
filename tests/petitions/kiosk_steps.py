"""Steps a resident takes at a kiosk browser, shared by the petitions browser tests."""

from __future__ import annotations

from typing import Any


def check_receipt(page: Any, base_url: str, receipt: str, pin: str) -> None:
    """Open 내 요청 확인, type the receipt number and PIN on the keypads, wait for the result."""
    page.goto(f"{base_url}/kiosk/status")
    for digit in receipt.replace("강진-", "").replace("-", ""):
        page.click(f"[data-keypad=receipt] [data-key='{digit}']")
    page.click("[data-keypad=receipt] [data-key=ok]")
    for digit in pin:
        page.click(f"[data-keypad=pin] [data-key='{digit}']")
    page.click("[data-keypad=pin] [data-key=ok]")
    page.locator("[data-screen=result]").wait_for(state="visible")
