"""``seed_demo`` (what ``make run`` shows county staff): residents' petitions filed at the demo
kiosks in several statuses, and a meeting scheduled for tomorrow morning with an agenda, all made
by the real services; seeding twice adds nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import seed
from server.auth.models import Account
from server.auth.secrets import Passwords
from server.config import Settings
from server.db import transaction, utcnow
from server.kiosks import service as kiosks
from server.kiosks.models import Kiosk
from server.meetings.models import AgendaItem, AgendaPetition, Meeting
from server.petitions import pins, receipts
from server.petitions.models import Petition, PetitionEvent
from server.timeutil import SEOUL
from tests.conftest import login

RECEIPT_RE = re.compile(r"^강진-\d{4}-\d{5}$")
COUNTED = (Account, Kiosk, Petition, PetitionEvent, Meeting, AgendaItem, AgendaPetition)


async def _seed(settings: Settings, sessionmaker: Callable[[], AsyncSession]) -> list[seed.DemoLogin]:
    passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        return await seed.seed_demo(session, passwords, settings.data_dir / "demo_logins.json")


async def _counts(sessionmaker: Callable[[], AsyncSession]) -> dict[str, int]:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        return {
            m.__name__: int(await session.scalar(select(func.count()).select_from(m)) or 0) for m in COUNTED
        }


async def test_demo_has_petitions_and_a_meeting_and_seeds_once(
    settings: Settings, sessionmaker: Callable[[], AsyncSession]
) -> None:
    before = utcnow()
    logins = await _seed(settings, sessionmaker)
    after = utcnow()
    assert {login.username for login in logins} == {"admin", "official1", "official2"}

    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        accounts = {a.username: a for a in (await session.scalars(select(Account))).all()}
        demo_kiosks = {k.label: k for k in (await session.scalars(select(Kiosk))).all()}
        rows = (await session.scalars(select(Petition).order_by(Petition.receipt_seq))).all()
        meetings = (await session.scalars(select(Meeting))).all()
        file_events = (
            await session.scalars(select(PetitionEvent).where(PetitionEvent.action == "file"))
        ).all()

        # Petitions: filed at the demo kiosks (not enrolled: seeding does not need them to be),
        # with receipt numbers in filing order, residents' placeholder data, several statuses.
        assert len(rows) == len(seed.DEMO_PETITIONS)
        assert all(RECEIPT_RE.match(p.receipt_no) for p in rows)
        assert len({p.receipt_no for p in rows}) == len(rows)
        assert [p.received_at for p in rows] == sorted(p.received_at for p in rows)
        by_kiosk = {k.id: k for k in demo_kiosks.values()}
        assert all(p.kiosk_id in by_kiosk and by_kiosk[p.kiosk_id].village_id == p.village_id for p in rows)
        assert not any(k.is_active for k in demo_kiosks.values())
        assert all(p.resident_phone.startswith("0100000") for p in rows)
        assert all(p.pin_hash.startswith("$argon2id$") for p in rows)
        assert len(file_events) == len(rows)
        statuses = {p.status for p in rows}
        assert {"received", "in_progress", "answered"} <= statuses
        assert any(p.department_id is None for p in rows)  # one left for the county to route
        answered = next(p for p in rows if p.status == "answered")
        assert answered.answer_text and answered.answered_by == accounts["official1"].id
        taken_in = next(p for p in rows if p.status == "in_progress")
        assert taken_in.assignee_id == accounts["official2"].id
        assert taken_in.department_id == accounts["official2"].department_id

        # The meeting: tomorrow 10:00-11:00 in Gangjin, chaired by the demo official, for two of
        # the demo kiosks' villages, kiosks joining by themselves into the lobby.
        assert len(meetings) == 1
        meeting = meetings[0]
        assert meeting.title == "마을 안길 정비 주민 회의" and meeting.status == "scheduled"
        assert meeting.join_mode == "auto" and meeting.lobby_mode == "wait"
        assert meeting.chair_id == accounts["official1"].id
        assert [o.account_id for o in meeting.officials] == [accounts["official2"].id]
        local_start = meeting.starts_at.astimezone(SEOUL)
        tomorrow = {(t.astimezone(SEOUL) + dt.timedelta(days=1)).date() for t in (before, after)}
        assert local_start.date() in tomorrow and local_start.time() == dt.time(10, 0)
        assert meeting.ends_at - meeting.starts_at == dt.timedelta(hours=1)
        invited = {v.village_id for v in meeting.villages}
        assert invited == {
            demo_kiosks["남성리 마을회관"].village_id,
            demo_kiosks["사당리 마을회관"].village_id,
        }

        # Its agenda: three items in order, one made from a resident's petition of an invited village.
        assert [item.position for item in meeting.agenda] == [1, 2, 3]
        linked = [link.petition_id for item in meeting.agenda for link in item.petitions]
        assert len(linked) == 1
        petition = next(p for p in rows if p.id == linked[0])
        assert petition.village_id in invited
        from_petition = next(item for item in meeting.agenda if item.petitions)
        assert from_petition.title == f"[{petition.receipt_no}] {petition.title}"

    # A second seeding (every later `make run`) adds nothing and returns the same logins.
    counts = await _counts(sessionmaker)
    again = await _seed(settings, sessionmaker)
    assert again == logins
    assert await _counts(sessionmaker) == counts


async def test_demo_petitions_are_seen_by_officials_and_their_receipts_answer_like_a_wrong_pin(
    client: TestClient, settings: Settings, sessionmaker: Callable[[], AsyncSession]
) -> None:
    logins = {login.username: login for login in await _seed(settings, sessionmaker)}

    # The admin's inbox lists all of them, in several statuses; the meeting is on the admin page.
    csrf = await login(client, "admin", logins["admin"].password)
    response = await client.get("/api/v1/petitions", headers={"X-CSRF-Token": csrf})
    assert response.status == 200
    listed = (await response.json())["petitions"]
    assert len(listed) == len(seed.DEMO_PETITIONS)
    assert len({p["status"] for p in listed}) >= 3
    page = await (await client.get("/admin/meetings")).text()
    assert "마을 안길 정비 주민 회의" in page

    # A demo kiosk, once enrolled, checking a demo receipt with any PIN gets the ordinary
    # "wrong receipt or PIN" answer (the demo PIN hashes open with no PIN), not a server error.
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        codes = await seed.demo_enrollment_codes(session, dt.timedelta(hours=1))
        code = next(c for k, c in codes if k.label == "남성리 마을회관")
        assert code is not None
        _kiosk, token = await kiosks.enroll(session, code)
    # As the kiosk agent calls: bearer token, none of the admin's cookies.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        async with agent.post(
            client.make_url("/api/v1/kiosk/petitions/status"),
            json={"receipt_no": listed[0]["receipt_no"], "pin": "1234"},
            headers={"Authorization": f"Bearer {token}"},
        ) as reply:
            assert reply.status == 403
            assert (await reply.json())["error"]["code"] == "pin_mismatch"


def test_meeting_time_is_tomorrow_morning_in_seoul() -> None:
    # 23:30 KST on 31 Dec 2029 is 14:30 UTC: "tomorrow" is the Seoul date's next day (1 Jan 2030).
    starts, ends = seed.demo_meeting_times(dt.datetime(2029, 12, 31, 14, 30, tzinfo=dt.UTC))
    assert starts == dt.datetime(2030, 1, 1, 1, 0, tzinfo=dt.UTC)
    assert ends == dt.datetime(2030, 1, 1, 2, 0, tzinfo=dt.UTC)
    assert starts.astimezone(SEOUL).hour == 10


def test_demo_petitions_use_known_kiosks_departments_and_placeholder_residents() -> None:
    kiosk_labels = {label for _d, _v, label in seed.DEMO_KIOSKS}
    usernames = {username for username, *_ in seed.DEMO_ACCOUNTS}
    data = seed.SEED_FILE.read_text(encoding="utf-8")
    for demo in seed.DEMO_PETITIONS:
        assert demo.kiosk in kiosk_labels
        assert demo.department is None or f'"{demo.department}"' in data
        assert demo.handled_by is None or demo.handled_by in usernames
        assert re.fullmatch(r"010-0000-\d{4}", demo.resident_phone)
    assert set(seed.DEMO_MEETING_KIOSKS) <= kiosk_labels
    assert seed.DEMO_MEETING_PETITION in {p.title for p in seed.DEMO_PETITIONS}


async def test_demo_receipts_open_with_their_printed_pins(
    client: TestClient, settings: Settings, sessionmaker: Callable[[], AsyncSession]
) -> None:
    """`make run` seeds with the installation's PIN pepper and prints each demo receipt with its
    PIN, so a demo kiosk's "내 요청 확인" can be tried at once."""
    pepper, params = pins.pin_pepper(settings), pins.pin_params(settings)
    receipts_file = settings.data_dir / "demo_receipts.json"
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await seed.seed_demo(
            session,
            Passwords(settings.argon2_time_cost, settings.argon2_memory_kib),
            settings.data_dir / "demo_logins.json",
            pin_hasher=lambda pin: receipts.hash_pin(pin, pepper=pepper, params=params),
            receipts_file=receipts_file,
        )
    demo_receipts = seed.load_demo_receipts(receipts_file)
    assert len(demo_receipts) == len(seed.DEMO_PETITIONS)
    assert receipts_file.stat().st_mode & 0o777 == 0o600
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        codes = await seed.demo_enrollment_codes(session, dt.timedelta(hours=1))
        code = next(c for k, c in codes if k.label == "사당리 마을회관")
        assert code is not None
        _kiosk, token = await kiosks.enroll(session, code)
    answered = next(r for r in demo_receipts if r.title.startswith("강진읍 가는 군내버스"))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        async with agent.post(
            client.make_url("/api/v1/kiosk/petitions/status"),
            json={"receipt_no": answered.receipt_no, "pin": answered.pin},
            headers={"Authorization": f"Bearer {token}"},
        ) as reply:
            assert reply.status == 200, await reply.text()
            petition = (await reply.json())["petition"]
    assert petition["receipt_no"] == answered.receipt_no and petition["answer"]
