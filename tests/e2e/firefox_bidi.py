"""Debian's Firefox ESR driven over WebDriver BiDi (W3C), with a small client on aiohttp's
websockets: Playwright cannot drive Debian's Firefox, and the protocol needs only a few commands
here (create a tab, navigate, call a function, wait for a condition).

Firefox starts on a fresh profile whose ``user.js`` gives it fake camera and microphone without
prompts, and ICE on loopback with plain host addresses (the suite's network namespace has only
loopback: without ``media.navigator.permission.fake`` Firefox gathers no candidates there).
Headless by default; headful on an X display (e.g. a private Xvfb) for screen sharing, since
headless Firefox has no screen to capture.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

FIREFOX = "/usr/bin/firefox-esr"
PREFS: dict[str, bool | int | str] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.navigator.permission.fake": True,
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.autoplay.default": 0,  # allowed: the pages play the others' sound without a click
    "media.autoplay.blocking_policy": 0,
    "intl.accept_languages": "ko-KR, ko",
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
}
_LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0


class BidiError(RuntimeError):
    """A BiDi command answered with an error, or a script threw."""


def user_js(prefs: dict[str, bool | int | str]) -> str:
    """The prefs as a ``user.js`` file's text."""
    return "".join(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n" for name, value in prefs.items())


class FirefoxPage:
    """One tab (a BiDi top-level browsing context)."""

    def __init__(self, browser: Firefox, context: str) -> None:
        self.browser = browser
        self.context = context

    async def goto(self, url: str) -> None:
        await self.browser.command(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    async def evaluate(self, function: str, *args: Any, user_activation: bool = False) -> Any:
        """Call the JavaScript ``function`` (source text, may be async) with JSON ``args`` in the
        page; returns its JSON result (``None`` for undefined). ``user_activation`` counts as a
        click (getDisplayMedia and autoplay want one)."""
        wrapper = f"async (argsJson) => JSON.stringify(await ({function})(...JSON.parse(argsJson)))"
        result = await self.browser.command(
            "script.callFunction",
            {
                "functionDeclaration": wrapper,
                "arguments": [{"type": "string", "value": json.dumps(args)}],
                "target": {"context": self.context},
                "awaitPromise": True,
                "userActivation": user_activation,
            },
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BidiError(f"script threw: {details.get('text')}")
        value = result.get("result", {})
        return json.loads(value["value"]) if value.get("type") == "string" else None

    async def wait_for(self, predicate: str, *args: Any, timeout: float = 30.0, every: float = 0.25) -> Any:
        """Poll the JavaScript ``predicate`` until it returns something truthy; returns it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(predicate, *args)
            if value:
                return value
            if loop.time() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {predicate}")
            await asyncio.sleep(every)

    async def click(self, selector: str) -> None:
        """Click the element (as a user would: with user activation)."""
        found = await self.evaluate(
            "(s) => { const el = document.querySelector(s); if (el) el.click(); return Boolean(el); }",
            selector,
            user_activation=True,
        )
        if not found:
            raise BidiError(f"nothing matches {selector!r}")

    async def fill(self, selector: str, value: str) -> None:
        await self.evaluate(
            """(s, v) => { const el = document.querySelector(s); el.value = v;
                 el.dispatchEvent(new Event('input', {bubbles: true})); return true; }""",
            selector,
            value,
        )

    async def url(self) -> str:
        return str(await self.evaluate("() => location.href"))


class Firefox:
    """A running Firefox ESR and its BiDi session. Use :func:`launch_firefox`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            waiter = self._waiting.pop(data.get("id", -1), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(data)  # events (no id) are not subscribed to
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(BidiError("Firefox closed the BiDi connection"))

    async def command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one command and return its ``result``; raises :class:`BidiError` on an error."""
        ident = next(self._ids)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = waiter
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        reply = await asyncio.wait_for(waiter, COMMAND_TIMEOUT)
        if reply.get("type") == "error":
            raise BidiError(f"{method}: {reply.get('error')}: {reply.get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def new_page(self) -> FirefoxPage:
        created = await self.command("browsingContext.create", {"type": "window"})
        return FirefoxPage(self, str(created["context"]))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.command("session.end", {}), 5)
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def launch_firefox(
    *, display: str | None = None, prefs: dict[str, bool | int | str] | None = None
) -> AsyncIterator[Firefox]:
    """Start Firefox ESR on a fresh profile (headless unless an X ``display`` is given), open a
    BiDi session; on exit end it, stop Firefox and remove the profile."""
    profile = Path(tempfile.mkdtemp(prefix="maeul-firefox-"))
    (profile / "user.js").write_text(user_js({**PREFS, **(prefs or {})}))
    env = {**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"}
    args = [FIREFOX, "--no-remote", "--profile", str(profile), "--remote-debugging-port=0"]
    if display is None:
        args.append("--headless")
        env.pop("DISPLAY", None)
    else:
        env["DISPLAY"] = display
    process = await asyncio.create_subprocess_exec(
        *args,
        "about:blank",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    session = aiohttp.ClientSession()
    drain: asyncio.Task[None] | None = None
    try:
        assert process.stderr is not None
        url = await asyncio.wait_for(_bidi_url(process.stderr), START_TIMEOUT)
        drain = asyncio.create_task(_drain(process.stderr))  # a full pipe would stall Firefox
        ws = await session.ws_connect(url + "/session", max_msg_size=0)
        firefox = Firefox(ws)
        await firefox.command("session.new", {"capabilities": {}})
        try:
            yield firefox
        finally:
            await firefox.close()
    finally:
        await session.close()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
        shutil.rmtree(profile, ignore_errors=True)


async def _bidi_url(stderr: asyncio.StreamReader) -> str:
    while line := await stderr.readline():
        match = _LISTENING.search(line.decode("utf-8", "replace"))
        if match:
            return match.group(1)
    raise BidiError("Firefox exited before its WebDriver BiDi server listened")


async def _drain(stderr: asyncio.StreamReader) -> None:
    while await stderr.read(65536):
        pass


@contextlib.asynccontextmanager
async def xvfb(width: int = 1280, height: int = 720) -> AsyncIterator[str]:
    """A private Xvfb display; yields its name, e.g. ``:1``. Xvfb picks a free display number
    itself (``-displayfd``), so parallel tests do not race for one."""
    process = await asyncio.create_subprocess_exec(
        "Xvfb",
        "-displayfd",
        "1",
        "-screen",
        "0",
        f"{width}x{height}x24",
        "-nolisten",
        "tcp",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        number = (await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)).decode().strip()
        if not number.isdigit():
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
