"""A real Maeul server process (``python run.py serve``) on loopback, for the durability test,
schemathesis, the browser test and the benchmark.

The database is migrated and seeded (places, an admin, two officials, an enrolled kiosk and a
fresh enrollment code for a browser kiosk) before the process starts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from server import migrate
from server.auth.roles import Role
from server.auth.secrets import Passwords
from server.auth.service import create_account
from server.config import PROJECT_ROOT
from server.db import close_engine, create_engine, make_sessionmaker, transaction
from server.geo.models import Village
from server.kiosks import service as kiosks
from server.org.models import Department
from server.seed import seed_places

PASSWORD = "correct horse battery"
SECRET = "live-test-secret-" + "y" * 40


@dataclass
class Seeded:
    kiosk_token: str
    browser_enroll_code: str
    department_ids: list[int]
    village_ids: list[int]
    extra_kiosk_tokens: list[str] = field(default_factory=list)


@dataclass
class LiveServer:
    base_url: str
    database_url: str
    data_dir: Path
    seeded: Seeded
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log_file: Any = None

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    def start(self) -> None:
        self._close_log()
        self.log_file = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - closed in _close_log
        self.process = subprocess.Popen(
            [sys.executable, "run.py", "serve", "--no-migrate"],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {(self.data_dir / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in 30 s")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing — a power cut as far as the process knows."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None
        self._close_log()

    def _close_log(self) -> None:
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        self._close_log()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _seed(database_url: str, extra_kiosks: int) -> Seeded:
    engine = create_engine(database_url)
    passwords = Passwords(1, 1024)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            await seed_places(session)
            departments = list((await session.scalars(select(Department.id).order_by(Department.id))).all())
            villages = list((await session.scalars(select(Village.id).order_by(Village.id))).all())
            await create_account(
                session,
                passwords,
                username="admin",
                password=PASSWORD,
                display_name="관리자",
                role=Role.ADMIN,
            )
            await create_account(
                session,
                passwords,
                username="official",
                password=PASSWORD,
                display_name="김민원",
                role=Role.OFFICIAL,
                department_id=departments[0],
            )
            await create_account(
                session,
                passwords,
                username="official2",
                password=PASSWORD,
                display_name="박안전",
                role=Role.OFFICIAL,
                department_id=departments[1],
            )
            lifetime = dt.timedelta(hours=2)
            issued = await kiosks.create_kiosk(
                session, village_id=villages[0], label="남성리 마을회관", code_lifetime=lifetime
            )
            _kiosk, token = await kiosks.enroll(session, issued.code)
            browser = await kiosks.create_kiosk(
                session, village_id=villages[1], label="사당리 마을회관", code_lifetime=lifetime
            )
            tokens = []
            for i in range(extra_kiosks):
                extra = await kiosks.create_kiosk(
                    session,
                    village_id=villages[i % len(villages)],
                    label=f"kiosk {i}",
                    code_lifetime=lifetime,
                )
                tokens.append((await kiosks.enroll(session, extra.code))[1])
            return Seeded(token, browser.code, departments, villages, tokens)
    finally:
        await close_engine(engine)


def prepare(tmp: Path, *, database_url: str | None = None, extra_kiosks: int = 0) -> LiveServer:
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite+aiosqlite:///{data_dir / 'maeul.db'}"
    migrate.upgrade(url)
    # Our caller may be inside an event loop (pytest-asyncio): seed on a thread with its own loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        seeded = pool.submit(asyncio.run, _seed(url, extra_kiosks)).result()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAEUL_")} | {
        "MAEUL_ENV": "test",
        "MAEUL_SECRET_KEY": SECRET,
        "MAEUL_DATABASE_URL": url,
        "MAEUL_DATA_DIR": str(data_dir),
        "MAEUL_HOST": "127.0.0.1",
        "MAEUL_PORT": str(port),
        "MAEUL_LOG_JSON": "false",
        "MAEUL_LOG_LEVEL": "WARNING",
        "MAEUL_RTC_HOST_ADDRESSES": "127.0.0.1",
    }
    return LiveServer(f"http://127.0.0.1:{port}", url, data_dir, seeded, env)


@contextmanager
def running(tmp: Path, **kwargs: object) -> Iterator[LiveServer]:
    server = prepare(tmp, **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()
