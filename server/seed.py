"""Demo data for ``make run``: Gangjin's eleven eup/myeon, a few villages, departments, one admin,
two officials, three demo kiosks, a few residents' petitions in several statuses and one scheduled
meeting, so county staff see a realistic picture. Seeded once; demo passwords are random per
installation and kept in ``var/demo_logins.json`` (owner-only), never in the repository.

Petitions and the meeting go through the real services (receipt numbers, deadlines, audit trail,
scheduling rules), never raw inserts."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Account
from server.auth.roles import Principal, Role
from server.auth.secrets import Passwords
from server.auth.service import create_account
from server.db import utcnow
from server.geo.models import Division, Village
from server.kiosks import service as kiosks
from server.kiosks.models import Kiosk
from server.meetings import agenda as meeting_agenda
from server.meetings import service as meetings
from server.org.models import Department
from server.petitions import pins, receipts
from server.petitions import service as petitions
from server.petitions.deadlines import PetitionType
from server.petitions.masking import normalize_phone
from server.petitions.workflow import Action
from server.timeutil import SEOUL

log = logging.getLogger(__name__)

SEED_FILE = Path(__file__).resolve().parent / "seed_data" / "gangjin.json"

TRIAGE_DEPARTMENT = "민원과"
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
class DemoPetition:
    kiosk: str  # label of the demo kiosk it was filed at
    petition_type: PetitionType
    department: str | None  # Korean name; None = left for the county to route
    title: str
    body: str
    resident_name: str
    resident_phone: str  # placeholder numbers, obviously not anyone's
    is_public: bool
    age: dt.timedelta  # how long before seeding it was filed, so deadlines differ
    handled_by: str | None = None  # demo username who takes it in
    answer: str | None = None  # and answers it


DEMO_PETITIONS = (
    DemoPetition(
        "남성리 마을회관",
        PetitionType.GRIEVANCE,
        "안전건설과",
        "마을 안길 포장이 깨져 다니기 위험합니다",
        "남성리 마을회관에서 경로당으로 가는 안길 포장이 여러 군데 깨지고 패였습니다. "
        "비가 오면 물웅덩이가 생겨 어르신들이 보행기를 끌고 다니기 어렵고, 지난주에는 넘어지신 "
        "분도 있었습니다. 보수해 주시기 바랍니다.",
        "홍길동",
        "010-0000-0001",
        is_public=True,
        age=dt.timedelta(days=2, hours=3),
        handled_by="official2",
    ),
    DemoPetition(
        "남성리 마을회관",
        PetitionType.GRIEVANCE,
        "안전건설과",
        "마을 입구 가로등이 꺼져 있어요",
        "남성리 마을 입구 버스정류장 옆 가로등이 보름째 켜지지 않습니다. 저녁에 버스에서 내리면 "
        "길이 캄캄해서 위험합니다.",
        "김철수",
        "010-0000-0002",
        is_public=True,
        age=dt.timedelta(hours=20),
    ),
    DemoPetition(
        "사당리 마을회관",
        PetitionType.SUGGESTION,
        "민원과",
        "강진읍 가는 군내버스 시간을 늘려 주세요",
        "사당리에서 강진읍으로 나가는 군내버스가 오전에 한 번뿐이라 병원이나 장에 다녀오기가 "
        "어렵습니다. 오후 차편을 하나 더 늘려 주시면 좋겠습니다.",
        "이영희",
        "010-0000-0003",
        is_public=True,
        age=dt.timedelta(days=4, hours=1),
        handled_by="official1",
        answer="말씀하신 사당리–강진읍 노선은 다음 달부터 오후 2시 차편을 추가하도록 운수회사와 "
        "협의하였습니다. 확정된 시간표는 마을회관 키오스크와 게시판에 안내하겠습니다.",
    ),
    DemoPetition(
        "사당리 마을회관",
        PetitionType.GRIEVANCE,
        "주민복지과",
        "경로당 난방기가 고장 났습니다",
        "사당리 경로당 난방기가 며칠 전부터 찬바람만 나옵니다. 날이 추워져 어르신들이 경로당에 "
        "나오시기 힘들어하십니다. 빠른 수리를 부탁드립니다.",
        "박영수",
        "010-0000-0004",
        is_public=False,
        age=dt.timedelta(days=1, hours=2),
    ),
    DemoPetition(
        "월남리 마을회관",
        PetitionType.GRIEVANCE,
        "농업정책과",
        "농수로가 막혀 논에 물이 들어가지 않습니다",
        "월남리 앞들 농수로에 흙과 풀이 쌓여 물이 내려가지 않습니다. 모내기 전에 준설해 주셔야 "
        "논에 물을 댈 수 있습니다.",
        "최순자",
        "010-0000-0005",
        is_public=False,
        age=dt.timedelta(days=3),
    ),
    DemoPetition(
        "월남리 마을회관",
        PetitionType.QUESTION_PROCEDURE,
        None,
        "농기계 임대 신청은 어디서 하나요?",
        "관리기를 며칠 빌리고 싶은데 신청을 어디서, 어떻게 하는지 알려 주세요.",
        "정만수",
        "010-0000-0006",
        is_public=False,
        age=dt.timedelta(hours=5),
    ),
)

DEMO_MEETING_TITLE = "마을 안길 정비 주민 회의"
DEMO_MEETING_PURPOSE = "남성리·사당리 마을 안길 보수 계획을 설명하고 주민 의견을 듣습니다."
DEMO_MEETING_CHAIR = "official1"
DEMO_MEETING_OFFICIALS = ("official2",)
DEMO_MEETING_KIOSKS = ("남성리 마을회관", "사당리 마을회관")
# The petition (by title) that becomes an agenda item; the other items are plain titles.
DEMO_MEETING_PETITION = "마을 안길 포장이 깨져 다니기 위험합니다"
DEMO_MEETING_AGENDA = ("올해 마을 안길 정비 계획 설명", "공사 기간 통행 안내와 주민 의견")


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


@dataclass(frozen=True)
class DemoReceipt:
    """A demo request's receipt and PIN, for trying "내 요청 확인" at a demo kiosk."""

    receipt_no: str
    pin: str
    title: str


#: Hashes a PIN the way the running server checks it (run.py passes the installation's pepper).
PinHasher = Callable[[str], str]


async def seed_demo(
    session: AsyncSession,
    passwords: Passwords,
    logins_file: Path,
    *,
    pin_hasher: PinHasher | None = None,
    receipts_file: Path | None = None,
) -> list[DemoLogin]:
    """Everything for the demo; idempotent. Returns the demo logins (read back on later runs).
    With ``pin_hasher``, every demo request gets a PIN that opens it, kept (owner-only) in
    ``receipts_file``; without, no PIN opens a demo request."""
    await seed_places(session)
    if await session.scalar(select(Account.id).limit(1)) is not None:
        return load_demo_logins(logins_file)
    departments = {d.name_ko: d.id for d in (await session.scalars(select(Department))).all()}
    logins = []
    for username, name, role, dept in DEMO_ACCOUNTS:
        password = secrets.token_urlsafe(9)
        account = await create_account(
            session,
            passwords,
            username=username,
            password=password,
            display_name=name,
            role=role,
            department_id=departments.get(dept) if dept else None,
        )
        # The 민원과 official routes the requests residents left to the county (triage).
        account.can_triage = dept == TRIAGE_DEPARTMENT
        logins.append(DemoLogin(username, password, name, role.value))
    demo_kiosks: dict[str, Kiosk] = {}
    for division_name, village_name, label in DEMO_KIOSKS:
        village = await session.scalar(
            select(Village)
            .join(Division)
            .where(Division.name_ko == division_name, Village.name_ko == village_name)
        )
        if village is None:
            raise RuntimeError(f"seed data lacks {division_name} {village_name}")
        demo_kiosks[label] = Kiosk(village_id=village.id, label=label)
        session.add(demo_kiosks[label])
    await session.flush()
    filed, issued = await _seed_petitions(session, demo_kiosks, pin_hasher)
    await _seed_meeting(session, demo_kiosks, filed)
    if receipts_file is not None and issued:
        _write_private_json(receipts_file, [r.__dict__ for r in issued])
    _write_private_json(logins_file, [login.__dict__ for login in logins])
    log.info("demo data seeded")
    return logins


async def _accounts_by_username(session: AsyncSession) -> dict[str, Account]:
    names = [username for username, *_ in DEMO_ACCOUNTS]
    rows = (await session.scalars(select(Account).where(Account.username.in_(names)))).all()
    return {account.username: account for account in rows}


def _account_principal(account: Account) -> Principal:
    return Principal(
        role=Role(account.role),
        id=account.id,
        display_name=account.display_name,
        department_id=account.department_id,
    )


def _unusable_pin_hash() -> str:
    """A well-formed PIN hash that no PIN opens. The real pepper comes from the installation's
    secret key, which seeding does not see; hashing with a pepper that is thrown away keeps the
    status check on demo receipts an ordinary "wrong PIN" instead of a malformed-hash error."""
    return receipts.hash_pin(
        receipts.generate_pin(),
        pepper=secrets.token_bytes(32),
        params=receipts.PinHashParams(
            time_cost=pins.PIN_TIME_COST, memory_cost_kib=pins.PIN_MEMORY_KIB, parallelism=1
        ),
    )


async def _seed_petitions(
    session: AsyncSession, demo_kiosks: dict[str, Kiosk], pin_hasher: PinHasher | None
) -> tuple[dict[str, int], list[DemoReceipt]]:
    """File ``DEMO_PETITIONS`` as their kiosks would (the kiosks need not be enrolled: filing only
    needs the kiosk's identity) and move the handled ones along the status machine as their
    official would. Returns petition ids by title, and the receipts with their PINs."""
    departments = {d.name_ko: d.id for d in (await session.scalars(select(Department))).all()}
    accounts = await _accounts_by_username(session)
    now = utcnow()
    filed: dict[str, int] = {}
    issued: list[DemoReceipt] = []
    # Oldest first, so receipt numbers follow the filing order as they would in real life.
    for demo in sorted(DEMO_PETITIONS, key=lambda p: p.age, reverse=True):
        kiosk = demo_kiosks[demo.kiosk]
        kiosk_principal = Principal(
            role=Role.KIOSK, id=kiosk.id, display_name=kiosk.label, village_id=kiosk.village_id
        )
        petition = await petitions.file_petition(
            session,
            kiosk_principal,
            petitions.NewPetition(
                petition_type=demo.petition_type,
                department_id=departments[demo.department] if demo.department else None,
                title=demo.title,
                body=demo.body,
                resident_phone=normalize_phone(demo.resident_phone),
                resident_name=demo.resident_name,
                is_public=demo.is_public,
            ),
            pin_hasher(pin := receipts.generate_pin()) if pin_hasher else _unusable_pin_hash(),
            received_at=now - demo.age,
        )
        if pin_hasher is not None:
            issued.append(DemoReceipt(petition.receipt_no, pin, demo.title))
        if demo.handled_by is not None:
            official = _account_principal(accounts[demo.handled_by])
            petition = await petitions.apply_action(
                session, official, petition, petitions.ActionInput(action=Action.ASSIGN)
            )
            if demo.answer is not None:
                petition = await petitions.apply_action(
                    session,
                    official,
                    petition,
                    petitions.ActionInput(action=Action.ANSWER, answer=demo.answer),
                )
        filed[demo.title] = petition.id
    return filed, issued


def demo_meeting_times(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Tomorrow 10:00-11:00 in Gangjin (Asia/Seoul), as UTC."""
    tomorrow = now.astimezone(SEOUL).date() + dt.timedelta(days=1)
    starts = dt.datetime.combine(tomorrow, dt.time(10, 0), tzinfo=SEOUL)
    return starts.astimezone(dt.UTC), (starts + dt.timedelta(hours=1)).astimezone(dt.UTC)


async def _seed_meeting(session: AsyncSession, demo_kiosks: dict[str, Kiosk], filed: dict[str, int]) -> int:
    """Schedule the demo meeting as the admin would, chaired by the first official, with the
    villages of two demo kiosks (kiosks join by themselves; the chair admits them from the
    lobby) and a three-item agenda, the second taken from a resident's petition."""
    accounts = await _accounts_by_username(session)
    starts_at, ends_at = demo_meeting_times(utcnow())
    scheduled = await meetings.schedule_meeting(
        session,
        _account_principal(accounts["admin"]),
        meetings.MeetingDraft(
            title=DEMO_MEETING_TITLE,
            purpose=DEMO_MEETING_PURPOSE,
            starts_at=starts_at,
            ends_at=ends_at,
            chair_id=accounts[DEMO_MEETING_CHAIR].id,
            official_ids=tuple(accounts[name].id for name in DEMO_MEETING_OFFICIALS),
            village_ids=tuple(demo_kiosks[label].village_id for label in DEMO_MEETING_KIOSKS),
            join_mode="auto",
            lobby_mode="wait",
        ),
    )
    meeting = await meetings.get_meeting(session, scheduled.meeting.id)
    presenter = accounts[DEMO_MEETING_OFFICIALS[0]].id
    plan, opinions = DEMO_MEETING_AGENDA
    await meeting_agenda.add_agenda_item(session, meeting, plan, planned_minutes=15, presenter_id=presenter)
    await meeting_agenda.add_item_from_petition(
        session,
        meeting,
        filed[DEMO_MEETING_PETITION],
        actor=_account_principal(accounts["admin"]),
        planned_minutes=20,
    )
    await meeting_agenda.add_agenda_item(session, meeting, opinions, planned_minutes=25)
    return meeting.id


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


def load_demo_receipts(path: Path) -> list[DemoReceipt]:
    if not path.exists():
        return []
    return [DemoReceipt(**item) for item in json.loads(path.read_text(encoding="utf-8"))]


def load_demo_logins(path: Path) -> list[DemoLogin]:
    if not path.exists():
        return []
    return [DemoLogin(**item) for item in json.loads(path.read_text(encoding="utf-8"))]


def _write_private_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)
