"""Chromium in kiosk mode on the server's kiosk page, signed in with the device token.

The token goes into an HttpOnly cookie through the DevTools pipe before the first navigation,
so it never appears in a URL, a command line (visible in ``ps``) or the browser history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from kiosk.cdp import CdpError, CdpPipe

log = logging.getLogger(__name__)

KIOSK_FLAGS = (
    "--kiosk",
    "--start-fullscreen",
    "--noerrdialogs",
    "--disable-infobars",
    "--no-first-run",
    "--disable-translate",
    "--disable-pinch",
    "--overscroll-history-navigation=0",
    "--autoplay-policy=no-user-gesture-required",
    # Camera and microphone without a prompt: nobody at the hall can answer one.
    "--use-fake-ui-for-media-stream",
    # No calls home: the kiosk talks to the county server only.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--remote-debugging-pipe",
)


@dataclass(frozen=True)
class BrowserSpec:
    executable: str
    server_url: str
    user_data_dir: Path
    extra_flags: tuple[str, ...] = ()
    page_path: str = "/kiosk"

    def command(self) -> list[str]:
        return [
            self.executable,
            *KIOSK_FLAGS,
            f"--user-data-dir={self.user_data_dir}",
            *self.extra_flags,
            "about:blank",
        ]


@dataclass
class ChromiumHandle:
    """A running Chromium driven over its DevTools pipe."""

    process: asyncio.subprocess.Process
    cdp: CdpPipe
    session_id: str = ""
    _closed: bool = field(default=False)

    def alive(self) -> bool:
        return self.process.returncode is None and not self.cdp.closed.is_set()

    async def responsive(self, timeout: float = 5) -> bool:
        """The page's JavaScript answers (a hung renderer does not)."""
        try:
            result = await self.cdp.send(
                "Runtime.evaluate",
                {"expression": "document.readyState", "returnByValue": True},
                session_id=self.session_id,
                timeout=timeout,
            )
        except (CdpError, TimeoutError):
            return False
        return result.get("result", {}).get("value") in ("interactive", "complete")

    async def evaluate(self, expression: str) -> object:
        result = await self.cdp.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session_id=self.session_id
        )
        return result.get("result", {}).get("value")

    async def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(CdpError, TimeoutError):
            await self.cdp.send("Browser.close", timeout=3)
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        await self.cdp.close()


async def launch(spec: BrowserSpec, token: str) -> ChromiumHandle:
    """Start Chromium, put the device token in its cookie jar, open the kiosk page."""
    spec.user_data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def wire_pipes() -> None:  # runs in the child, before exec
        os.dup2(to_chrome_r, 3)
        os.dup2(from_chrome_w, 4)

    process = await asyncio.create_subprocess_exec(
        *spec.command(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=wire_pipes,  # the agent launches from its only thread
        pass_fds=(3, 4),
        start_new_session=True,
    )
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    cdp = CdpPipe(to_chrome_w, from_chrome_r)
    await cdp.start()
    handle = ChromiumHandle(process, cdp)
    try:
        await _sign_in_and_open(handle, spec, token)
    except BaseException:
        await handle.stop()
        raise
    log.info("browser launched", extra={"pid": process.pid})
    return handle


# Chromium's first DevTools answers can take a while on a slow or busy kiosk PC.
STARTUP_TIMEOUT = 60.0


async def _sign_in_and_open(handle: ChromiumHandle, spec: BrowserSpec, token: str) -> None:
    cdp = handle.cdp
    url = urlsplit(spec.server_url)
    await cdp.send(
        "Storage.setCookies",
        {
            "cookies": [
                {
                    "name": "maeul_kiosk",
                    "value": token,
                    "domain": url.hostname,
                    "path": "/",
                    "httpOnly": True,
                    "secure": url.scheme == "https",
                    "sameSite": "Lax",
                    "expires": 2_000_000_000,
                }
            ]
        },
        timeout=STARTUP_TIMEOUT,
    )
    targets = await cdp.send("Target.getTargets", timeout=STARTUP_TIMEOUT)
    pages = [t for t in targets.get("targetInfos", []) if t.get("type") == "page"]
    if pages:
        target_id = pages[0]["targetId"]
    else:
        target_id = (await cdp.send("Target.createTarget", {"url": "about:blank"}, timeout=STARTUP_TIMEOUT))[
            "targetId"
        ]
    attached = await cdp.send(
        "Target.attachToTarget", {"targetId": target_id, "flatten": True}, timeout=STARTUP_TIMEOUT
    )
    handle.session_id = attached["sessionId"]
    await cdp.send("Page.enable", session_id=handle.session_id, timeout=STARTUP_TIMEOUT)
    await cdp.send(
        "Page.navigate",
        {"url": spec.server_url + spec.page_path},
        session_id=handle.session_id,
        timeout=STARTUP_TIMEOUT,
    )
