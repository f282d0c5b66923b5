"""The village-hall agent: enrollment from the command line, heartbeats into the fleet page,
the browser restart loop, and one real kiosk-mode Chromium launch signed in by the token."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import update

from kiosk import client as agent_client
from kiosk import state
from kiosk.agent import BrowserSupervisor, SupervisorPolicy, heartbeat_loop
from kiosk.browser import BrowserSpec, launch
from kiosk.health import Health
from server.config import PROJECT_ROOT
from server.db import transaction
from server.kiosks.models import Kiosk
from tests.conftest import World, login
from tests.e2e.conftest import CHROMIUM


async def _new_code(live_server: str, world: World) -> tuple[int, str]:
    """An admin creates a kiosk over HTTP; returns (kiosk id, one-time code)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        page = await http.get(f"{live_server}/login")
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', await page.text()).group(1)  # type: ignore[union-attr]
        await http.post(
            f"{live_server}/login",
            data={"username": "admin", "password": "correct horse battery", "csrf_token": csrf},
        )
        page = await http.get(f"{live_server}/admin")
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', await page.text()).group(1)  # type: ignore[union-attr]
        response = await http.post(
            f"{live_server}/api/v1/admin/kiosks",
            json={"village_id": world.village_ids[0], "label": "남성리 마을회관"},
            headers={"X-CSRF-Token": csrf},
        )
        assert response.status == 201
        body = await response.json()
        return body["kiosk"]["id"], body["enrollment_code"]


async def _kiosk_cli(state_dir: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kiosk",
        "--state-dir",
        str(state_dir),
        *args,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_enroll_valid_expired_reused_and_revoked_codes(
    live_server: str, world: World, tmp_path: Path, sessionmaker: Any
) -> None:
    kiosk_id, code = await _new_code(live_server, world)
    rc, out, err = await _kiosk_cli(tmp_path / "a", "enroll", "--server", live_server, "--code", code)
    assert rc == 0, err
    token_file = tmp_path / "a" / state.TOKEN_FILE
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text()
    assert len(token) >= 40 and token not in out and token not in err
    assert "남성리" in out

    rc, _, err = await _kiosk_cli(tmp_path / "b", "enroll", "--server", live_server, "--code", code)
    assert rc == 1 and "refused" in err  # reused
    assert not (tmp_path / "b" / state.TOKEN_FILE).exists()

    _, expired = await _new_code(live_server, world)
    async with transaction(sessionmaker) as session:
        await session.execute(
            update(Kiosk)
            .where(Kiosk.enrollment_code_hash.is_not(None))
            .values(enrollment_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    rc, _, err = await _kiosk_cli(tmp_path / "c", "enroll", "--server", live_server, "--code", expired)
    assert rc == 1 and "refused" in err

    revoked_id, revoked_code = await _new_code(live_server, world)
    async with transaction(sessionmaker) as session:
        await session.execute(
            update(Kiosk)
            .where(Kiosk.id == revoked_id)
            .values(revoked_at=dt.datetime.now(dt.UTC), enrollment_code_hash=None)
        )
    rc, _, err = await _kiosk_cli(tmp_path / "d", "enroll", "--server", live_server, "--code", revoked_code)
    assert rc == 1 and "refused" in err

    rc, out, _ = await _kiosk_cli(tmp_path / "a", "run", "--dry-run", "--chromium", CHROMIUM)
    assert rc == 0
    assert "--kiosk" in out and "--remote-debugging-pipe" in out and token not in out
    assert f"{live_server}/kiosk" in out


async def test_token_file_with_loose_permissions_is_refused(tmp_path: Path) -> None:
    state.save(tmp_path, state.AgentState("http://127.0.0.1:1", 1, "x", "y"), "secret-token")
    os.chmod(tmp_path / state.TOKEN_FILE, 0o644)
    with pytest.raises(PermissionError):
        state.load(tmp_path)


async def test_heartbeats_fill_the_fleet_page_and_a_silent_kiosk_turns_offline(
    live_server: str, world: World, client: Any, sessionmaker: Any, tmp_path: Path
) -> None:
    kiosk_id, code = await _new_code(live_server, world)
    token = (await agent_client.enroll(live_server, code))["token"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        health = Health(camera=True, microphone=False, browser_alive=True, rtt_ms=12.5, free_disk_mb=2048)
        await agent_client.send_heartbeat(http, live_server, token, health)
        bad = await http.post(
            f"{live_server}/api/v1/kiosk/heartbeat",
            json={"camera": "yes", "free_disk_mb": -1},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert bad.status == 400
    await login(client, "admin")
    page = await (await client.get("/admin/kiosks")).text()
    assert "연결됨" in page and "RTT 12.5 ms" in page and "2048 MB" in page and "0.1.0" in page
    assert "5분 넘게 응답이 없습니다" not in page

    async with transaction(sessionmaker) as session:
        await session.execute(
            update(Kiosk)
            .where(Kiosk.id == kiosk_id)
            .values(last_heartbeat_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6))
        )
    page = await (await client.get("/admin/kiosks")).text()
    assert "연결 끊김" in page and "5분 넘게 응답이 없습니다" in page
    api = await (await client.get("/api/v1/admin/kiosks")).json()
    assert [k["online"] for k in api["kiosks"] if k["id"] == kiosk_id] == [False]


class StandIn:
    """A stand-in browser: a real child process that the test can kill or make 'hang'."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.hung = False

    def alive(self) -> bool:
        return self.process.returncode is None

    async def responsive(self, timeout: float = 5) -> bool:
        return self.alive() and not self.hung

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


async def test_supervisor_restarts_a_killed_or_hung_browser() -> None:
    launched: list[StandIn] = []

    async def launcher() -> StandIn:
        proc = await asyncio.create_subprocess_exec("sleep", "120")
        launched.append(StandIn(proc))
        return launched[-1]

    policy = SupervisorPolicy(check_interval=0.05, unresponsive_checks=2, min_backoff=0.01, max_backoff=0.05)
    supervisor = BrowserSupervisor(launcher, policy)
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        await _until(lambda: len(launched) == 1 and supervisor.browser_alive())
        launched[0].process.send_signal(signal.SIGKILL)
        await _until(lambda: len(launched) == 2 and supervisor.browser_alive())
        launched[1].hung = True
        await _until(lambda: len(launched) == 3)
        assert launched[1].process.returncode is not None  # the hung one was stopped, not leaked
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert all(s.process.returncode is not None for s in launched)


async def _until(predicate: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_real_chromium_opens_the_kiosk_page_signed_in_by_token(
    live_server: str, world: World, tmp_path: Path
) -> None:
    _, code = await _new_code(live_server, world)
    token = (await agent_client.enroll(live_server, code))["token"]
    spec = BrowserSpec(
        executable=CHROMIUM,
        server_url=live_server,
        user_data_dir=tmp_path / "chromium",
        extra_flags=("--headless", "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream"),
    )
    assert token not in " ".join(spec.command())
    supervisor = BrowserSupervisor(
        lambda: launch(spec, token), SupervisorPolicy(check_interval=0.2, min_backoff=0.1)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    beats = asyncio.create_task(heartbeat_loop(live_server, token, supervisor, tmp_path, stop, interval=0.2))
    try:
        await _until(lambda: supervisor.current is not None, 90)
        browser = supervisor.current
        assert browser is not None

        async def heading() -> object:
            return await browser.evaluate(
                "document.querySelector('h1') && document.querySelector('h1').textContent"
            )  # type: ignore[attr-defined]

        async with asyncio.timeout(60):
            while await heading() != "안녕하세요. 무엇을 도와드릴까요?":
                await asyncio.sleep(0.2)
        assert token not in str(await browser.evaluate("location.href + document.cookie"))  # type: ignore[attr-defined]
        # Killing the real browser brings a new one up.
        os.killpg(browser.process.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        await _until(lambda: supervisor.launches == 2 and supervisor.browser_alive(), 90)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(task, beats), 30)
