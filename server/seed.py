"""Demo data for ``make run``: Gangjin's eleven eup/myeon, a few villages, departments, one admin,
two officials and three demo kiosks. Seeded once; demo passwords are random per installation and
kept in ``var/demo_logins.json`` (owner-only), never in the repository."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Account
from server.auth.roles import Role
from server.auth.secrets import Passwords
from server.auth.service import create_account
from server.geo.models import Division, Village
from server.kiosks import service as kiosks
from server.kiosks.models import Kiosk
from server.org.models import Department

log = logging.getLogger(__name__)

SEED_FILE = Path(__file__).resolve().parent / "seed_data" / "gangjin.json"

DEMO_ACCOUNTS = (
    # username, display name, role, department (Korean name)
    ("admin", "관리자", Role.ADMIN, None),
    ("official1", "김민원", Role.OFFICIAL, "민원과"),
    ("official2", "박안전", Role.OFFICIAL, "안전건설과"),
)
DEMO_KIOSKS = (
    # division, village, label
    ("강진읍", "남성리", "남성리 마을회관"),
    ("대구면", "사당리", "사당리 마을회관"),
    ("성전면", "월남리", "월남리 마을회관"),
)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    display_name: str
    role: str


async def seed_places(session: AsyncSession) -> bool:
    """Divisions, villages and departments; False if they were already there."""
    if await session.scalar(select(Division.id).limit(1)) is not None:
        return False
    data = json.loads(SEED_FILE.read_text(encoding="utf-8"))
    for entry in data["divisions"]:
        division = Division(
            name_ko=entry["ko"], name_en=entry["en"], kind="eup" if entry["ko"].endswith("읍") else "myeon"
        )
        session.add(division)
        await session.flush()
        for village in entry["villages"]:
            session.add(Village(division_id=division.id, name_ko=village))
    for dept in data["departments"]:
        session.add(Department(name_ko=dept["ko"], name_en=dept["en"]))
    await session.flush()
    return True


async def seed_demo(session: AsyncSession, passwords: Passwords, logins_file: Path) -> list[DemoLogin]:
    """Everything for the demo; idempotent. Returns the demo logins (read back on later runs)."""
    await seed_places(session)
    if await session.scalar(select(Account.id).limit(1)) is not None:
        return load_demo_logins(logins_file)
    departments = {d.name_ko: d.id for d in (await session.scalars(select(Department))).all()}
    logins = []
    for username, name, role, dept in DEMO_ACCOUNTS:
        password = secrets.token_urlsafe(9)
        await create_account(
            session,
            passwords,
            username=username,
            password=password,
            display_name=name,
            role=role,
            department_id=departments.get(dept) if dept else None,
        )
        logins.append(DemoLogin(username, password, name, role.value))
    for division_name, village_name, label in DEMO_KIOSKS:
        village = await session.scalar(
            select(Village)
            .join(Division)
            .where(Division.name_ko == division_name, Village.name_ko == village_name)
        )
        if village is None:
            raise RuntimeError(f"seed data lacks {division_name} {village_name}")
        session.add(Kiosk(village_id=village.id, label=label))
    await session.flush()
    _write_private_json(logins_file, [login.__dict__ for login in logins])
    log.info("demo data seeded")
    return logins


async def demo_enrollment_codes(
    session: AsyncSession, lifetime: dt.timedelta
) -> list[tuple[Kiosk, str | None]]:
    """Fresh one-time codes for demo kiosks not enrolled yet, so each ``make run`` prints working
    kiosk links (codes are stored hashed, so old ones cannot be shown again). Enrolled demo
    kiosks are left alone (code None): re-enroll them from the admin page."""
    labels = [label for _d, _v, label in DEMO_KIOSKS]
    rows = (await session.scalars(select(Kiosk).where(Kiosk.label.in_(labels)).order_by(Kiosk.id))).all()
    issued: list[tuple[Kiosk, str | None]] = []
    for kiosk in rows:
        if kiosk.revoked_at is not None:
            continue
        if kiosk.is_active:
            issued.append((kiosk, None))
            continue
        result = await kiosks.issue_enrollment_code(session, kiosk, lifetime)
        issued.append((kiosk, result.code))
    return issued


def load_demo_logins(path: Path) -> list[DemoLogin]:
    if not path.exists():
        return []
    return [DemoLogin(**item) for item in json.loads(path.read_text(encoding="utf-8"))]


def _write_private_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)
