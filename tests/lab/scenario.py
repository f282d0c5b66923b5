"""A meeting in the link lab, end to end, for the lab tests and tests/bench/link_bench.py.

County namespace: the real Maeul server process (``run.py serve`` on a migrated SQLite database,
listening and gathering ICE on 198.18.0.1) and the chair (tests/lab/chair_probe.py, an official's
aiortc participant). Hall N namespace: the real headless kiosk (tests/lab/hall_probe.py wraps
kiosk/headless.py) or a Chromium kiosk page (``open_kiosk_page``). The meeting is live from the
start and invites every hall's village; each hall's kiosk finds and joins it by itself.

    async with MeetingLab(tmp_path, halls=1) as meeting:
        await meeting.wait_media()
        meeting.lab.shape(1, kbit=300, loss_pct=5)
        t0 = meeting.now(); await asyncio.sleep(60); t1 = meeting.now()
        records = await meeting.finish()
        records.hall_receives(t0, t1).fps ...
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

from server import migrate
from server.auth.secrets import Passwords
from server.config import PROJECT_ROOT
from server.db import close_engine, create_engine, make_sessionmaker, transaction
from server.meetings import attendance as meeting_attendance
from server.meetings import service as meetings
from tests.conftest import enrolled_kiosk
from tests.lab import metrics
from tests.lab.linklab import COUNTY, LinkLab
from tests.lab.media_probe import load
from tests.meetings.conftest import admin_principal, scheduled_meeting
from tests.world_seed import seed_world

PORT = 8080  # the county namespace is ours alone
OFFICIAL = "official"


@dataclass
class Seed:
    database_url: str
    password: str
    official_id: int
    meeting_id: int
    room_id: int
    kiosk_ids: dict[int, int]  # hall -> kiosk id
    kiosk_tokens: dict[int, str]  # hall -> device token (the headless kiosk's, or the page's cookie)


async def seed_meeting(database_url: str, halls: int) -> Seed:
    """Accounts, one kiosk per hall (each in its own village) and a started meeting inviting them,
    all through the real services on a freshly migrated database."""
    await asyncio.to_thread(migrate.upgrade, database_url)
    engine = create_engine(database_url)
    password = secrets.token_urlsafe(12)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with transaction(sessionmaker) as session:
            world = await seed_world(session, Passwords(1, 1024), password)
        ids: dict[int, int] = {}
        tokens: dict[int, str] = {}
        for hall in range(1, halls + 1):
            # Enrolled before the meeting starts: a started meeting invites the active kiosks.
            ids[hall], tokens[hall] = await enrolled_kiosk(
                sessionmaker, world.village_ids[hall - 1], f"{hall}번 마을회관"
            )
        async with transaction(sessionmaker) as session:
            scheduled = await scheduled_meeting(
                session,
                world,
                title="연결 시험 회의",
                length=dt.timedelta(hours=2),
                villages=tuple(range(halls)),
            )
            meeting = await meetings.start_meeting(session, admin_principal(world), scheduled)
            assert meeting.room_id is not None
            return Seed(database_url, password, world.official_id, meeting.id, meeting.room_id, ids, tokens)
    finally:
        await close_engine(engine)


@dataclass
class Records:
    """What the chair and the halls wrote down, plus helpers for the issue's figures."""

    chair: dict[str, Any]
    halls: dict[int, dict[str, Any]]
    kiosk_ids: dict[int, int]
    #: Each headless hall's own log (kiosk.headless: joins, lost sockets, resumes and why not).
    hall_logs: dict[int, str] = field(default_factory=dict)

    def publisher(self, hall: int) -> str:
        return f"k{self.kiosk_ids[hall]}"

    def hall_receives(self, start: float, end: float, hall: int = 1) -> metrics.Direction:
        """The chair's media as decoded at the hall (download direction)."""
        return metrics.direction(self.halls[hall]["tracks"], self.chair["bursts_sent"], start, end)

    def chair_receives(self, start: float, end: float, hall: int = 1) -> metrics.Direction:
        """The hall's media as decoded by the chair (upload direction)."""
        # A Chromium hall keeps no record (its microphone is Chrome's fake one): no mouth-to-ear.
        sent = self.halls[hall]["bursts_sent"] if hall in self.halls else []
        return metrics.direction(self.chair["tracks"], sent, start, end, publisher=self.publisher(hall))

    def hall_rejoins(self, start: float, end: float, hall: int = 1) -> int:
        """New peer connections the hall made in the window (0 = the call was never re-made)."""
        return len(metrics.events(self.halls[hall], "join", start, end))

    def hall_pc_failures(self, start: float, end: float, hall: int = 1) -> list[str]:
        return [
            d["state"]
            for _, d in metrics.events(self.halls[hall], "pc_state", start, end)
            if d["state"] in ("failed", "closed", "disconnected")
        ]

    def chair_saw_hall_away(self, start: float, end: float, hall: int = 1) -> list[str]:
        """Participant-list states of the hall other than connected, as the chair saw them."""
        pid = self.publisher(hall)
        seen: list[str] = []
        for _, people in metrics.events(self.chair, "participants", start, end):
            entry = next((p for p in people if p["id"] == pid), None)
            state = "absent" if entry is None else str(entry["state"])
            if state != "connected":
                seen.append(state)
        return seen

    def hall_story(self, hall: int = 1) -> list[str]:
        """What the headless hall said of its meeting (joined, socket lost, resumed, dropped)."""
        return [line for line in self.hall_logs.get(hall, "").splitlines() if "kiosk.headless" in line]

    def dropped(self, start: float, end: float, hall: int = 1) -> bool:
        return bool(
            self.hall_rejoins(start, end, hall)
            or self.hall_pc_failures(start, end, hall)
            or self.chair_saw_hall_away(start, end, hall)
        )


@dataclass
class _Probe:
    name: str
    process: asyncio.subprocess.Process
    out: Path
    status: dict[str, Any] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None


class MeetingLab:
    def __init__(
        self,
        workdir: Path,
        halls: int = 1,
        *,
        browser_halls: set[int] | None = None,
        server_env: dict[str, str] | None = None,
        aiortc_chair: bool = True,
    ) -> None:
        """``server_env``: extra ``MAEUL_*`` settings for the server (e.g. TURN for the UDP-block test);
        ``aiortc_chair=False``: no chair probe (the test opens the official's page itself,
        ``browser_hall.BrowserOfficial``)."""
        self.workdir = workdir
        self.aiortc_chair = aiortc_chair
        self.server_env = dict(server_env or {})
        self.hall_count = halls
        self.browser_halls = set(browser_halls or ())
        self.lab = LinkLab(halls=halls)
        self.seed: Seed | None = None
        self.server: asyncio.subprocess.Process | None = None
        self.probes: dict[str, _Probe] = {}
        self._logs: list[IO[bytes]] = []
        self.base_url = f"http://{self.lab.county_address}:{PORT}"

    @staticmethod
    def now() -> float:
        return time.monotonic()

    async def __aenter__(self) -> MeetingLab:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self.lab.__aenter__()
        try:
            self.seed = await seed_meeting(
                f"sqlite+aiosqlite:///{self.workdir / 'maeul.db'}", self.hall_count
            )
            await self._start_server()
            if self.aiortc_chair:
                await self._start_chair()
            for hall in range(1, self.hall_count + 1):
                if hall not in self.browser_halls:
                    await self.start_headless(hall)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _log(self, name: str) -> IO[bytes]:
        handle = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in close()
        self._logs.append(handle)
        return handle

    def _env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAEUL_")}
        env.update(extra)
        env["PYTHONPATH"] = str(PROJECT_ROOT)
        return env

    async def _start_server(self) -> None:
        assert self.seed is not None
        env = self._env(
            MAEUL_ENV="development",
            MAEUL_SECRET_KEY=secrets.token_urlsafe(48),
            MAEUL_DATABASE_URL=self.seed.database_url,
            MAEUL_DATA_DIR=str(self.workdir / "data"),
            MAEUL_HOST=self.lab.county_address,
            MAEUL_PORT=str(PORT),
            MAEUL_RTC_HOST_ADDRESSES=self.lab.county_address,
            MAEUL_LOG_JSON="true",
            **self.server_env,
        )
        self.server = await self.lab.spawn(
            COUNTY,
            [sys.executable, str(PROJECT_ROOT / "run.py"), "serve", "--no-migrate"],
            env=env,
            cwd=str(PROJECT_ROOT),
            stdout=self._log("server-out"),
            stderr=self._log("server"),
        )

        async def healthy() -> None:
            deadline = time.monotonic() + 60
            async with aiohttp.ClientSession() as http:
                while True:
                    with contextlib.suppress(aiohttp.ClientError, OSError):
                        async with http.get(
                            f"{self.base_url}/healthz", timeout=aiohttp.ClientTimeout(2)
                        ) as r:
                            if r.status == 200:
                                return
                    if time.monotonic() > deadline:
                        raise AssertionError("the server in the county namespace did not become healthy")
                    await asyncio.sleep(0.2)

        await self.lab.run_in(COUNTY, healthy())

    async def _spawn_probe(
        self, name: str, node: str | int, module: str, args: list[str], **env: str
    ) -> None:
        out = self.workdir / f"{name}.json"
        process = await self.lab.spawn(
            node,
            [sys.executable, "-m", module, "--server", self.base_url, "--out", str(out), *args],
            env=self._env(**env),
            cwd=str(PROJECT_ROOT),
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log(name),
        )
        probe = _Probe(name, process, out)
        probe.reader = asyncio.create_task(self._read_status(probe))
        self.probes[name] = probe

    async def _read_status(self, probe: _Probe) -> None:
        assert probe.process.stdout is not None
        # Every status line (JSON) is kept in NAME-status.log for looking into a run afterwards.
        saved = self._log(f"{probe.name}-status")
        async for line in probe.process.stdout:
            saved.write(line)
            with contextlib.suppress(ValueError):
                probe.status = json.loads(line)

    async def _start_chair(self) -> None:
        assert self.seed is not None
        await self._spawn_probe(
            "chair",
            COUNTY,
            "tests.lab.chair_probe",
            [
                "--username",
                OFFICIAL,
                "--room",
                str(self.seed.room_id),
                "--host-address",
                self.lab.county_address,
            ],
            LAB_PASSWORD=self.seed.password,
        )

    async def start_headless(self, hall: int) -> None:
        assert self.seed is not None
        await self._spawn_probe(
            f"hall{hall}",
            hall,
            "tests.lab.hall_probe",
            ["--host-address", self.lab.address(hall)],
            LAB_KIOSK_TOKEN=self.seed.kiosk_tokens[hall],
        )

    def status(self, name: str) -> dict[str, Any]:
        probe = self.probes[name]
        if probe.process.returncode is not None:
            raise AssertionError(
                f"{name} exited with {probe.process.returncode}: see {self.workdir / name}.log"
            )
        return probe.status

    def frames(self, name: str) -> int:
        return sum(self.status(name).get("frames", {}).values())

    async def wait_media(self, within: float = 60.0, hall: int = 1) -> None:
        """Until the chair decodes the hall's audio+video and the hall decodes the chair's."""
        assert self.seed is not None
        pid = f"k{self.seed.kiosk_ids[hall]}"
        deadline = time.monotonic() + within
        while True:
            chair = self.status("chair").get("frames", {})
            hall_frames = self.status(f"hall{hall}").get("frames", {})
            if (
                chair.get(f"{pid}/video", 0) >= 10
                and chair.get(f"{pid}/audio", 0) >= 50
                and sum(hall_frames.values()) >= 60
            ):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"media did not flow within {within}s: chair {chair}, hall {hall_frames}"
                )
            await asyncio.sleep(0.2)

    async def finish(self) -> Records:
        """Stop the probes and read their records (the server keeps running until close())."""
        assert self.seed is not None
        for probe in self.probes.values():
            if probe.process.returncode is None:
                probe.process.terminate()
        for probe in self.probes.values():
            try:
                await asyncio.wait_for(probe.process.wait(), 30)
            except TimeoutError:
                probe.process.kill()
                await probe.process.wait()
        chair = load(self.probes["chair"].out)
        halls = {int(name[4:]): load(p.out) for name, p in self.probes.items() if name.startswith("hall")}
        logs = {n: (self.workdir / f"hall{n}.log").read_text(errors="replace") for n in halls}
        return Records(chair, halls, dict(self.seed.kiosk_ids), logs)

    async def attendance(self) -> list[Any]:
        assert self.seed is not None
        engine = create_engine(self.seed.database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                return list(await meeting_attendance.attendance_of(session, self.seed.meeting_id))
        finally:
            await close_engine(engine)

    async def close(self) -> None:
        for probe in self.probes.values():
            if probe.reader is not None:
                probe.reader.cancel()
        await self.lab.aclose()
        for handle in self._logs:
            handle.close()
        self._logs.clear()
