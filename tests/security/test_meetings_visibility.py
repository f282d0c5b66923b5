"""Meetings respect department visibility (issue 12, items 2 and 11).

The chair (official of department X) may link to an agenda only requests it may see, exactly as
GET answers (404 otherwise, and nothing of the request in the reply); closing the record answers
only the requests the chair's department handles; a decision on another department's request goes
to that department as a proposal, which it confirms (the request is then answered) or dismisses.
The record's CSV neutralises spreadsheet formulas."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import transaction
from server.meetings import agenda as meeting_agenda
from server.meetings import service as meetings
from server.meetings.models import DecisionProposal
from server.petitions.models import Petition, PetitionEvent
from tests.conftest import World, login
from tests.meetings.conftest import (
    KioskRef,
    admin_principal,
    file_petition,
    kiosk_a,
    official_principal,
    scheduled_meeting,
)

__all__ = ["kiosk_a"]  # a fixture of the meetings tests, used here too

Sessionmaker = Callable[[], AsyncSession]
SECRET_TITLE = "옆집 담장 분쟁 (타 부서)"


class Staff:
    """One logged-in browser: the chair (dept X), the other department's official, or the admin."""

    def __init__(self, client: TestClient, csrf: str) -> None:
        self.client = client
        self.csrf = csrf

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = await self.client.request(method, path, json=body, headers={"X-CSRF-Token": self.csrf})
        text = await response.text()
        return response.status, (
            await response.json() if response.content_type == "application/json" else text
        )


@pytest.fixture
async def staff(
    client: TestClient, world: World, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> dict[str, Staff]:
    made = {}
    for name, username in (("chair", "official"), ("other", "official2"), ("admin", "admin")):
        browser = client if name == "chair" else await aiohttp_client(client.server)
        made[name] = Staff(browser, await login(browser, username))
    return made


async def _setup(sessionmaker: Sessionmaker, world: World, kiosk: KioskRef) -> tuple[int, int, int]:
    """A scheduled meeting chaired by the dept-X official; a request of dept X (taken in by the
    chair) and one of dept Y (taken in by the other official). Returns (meeting, own, foreign)."""
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        own = await file_petition(session, kiosk, "마을 안길 포장", assign_to=official_principal(world))
        foreign = await file_petition(
            session, kiosk, SECRET_TITLE, assign_to=official_principal(world, other=True)
        )
        meeting = await scheduled_meeting(session, world)
        return meeting.id, own, foreign


async def test_linking_needs_the_linking_officials_visibility(
    staff: dict[str, Staff], world: World, sessionmaker: Sessionmaker, kiosk_a: KioskRef
) -> None:
    meeting_id, own, foreign = await _setup(sessionmaker, world, kiosk_a)
    chair = staff["chair"]
    agenda = f"/api/v1/meetings/{meeting_id}/agenda"
    # As GET answers for the request itself:
    status, _ = await chair.call("GET", f"/api/v1/petitions/{foreign}")
    assert status == 404

    refused = [
        await chair.call("POST", agenda, {"from_petition_id": foreign}),
        await chair.call("POST", agenda, {"title": "담장", "petition_ids": [foreign]}),
        await chair.call("POST", agenda, {"title": "담장", "petition_ids": [own, foreign]}),
    ]
    for status, body in refused:
        assert status == 404 and body["error"]["code"] == "petition_not_found", body
        assert SECRET_TITLE not in str(body)
    status, body = await chair.call("POST", agenda, {"from_petition_id": own})
    assert status == 201, body
    item_id = body["item_id"]
    status, body = await chair.call("PATCH", f"{agenda}/{item_id}", {"petition_ids": [own, foreign]})
    assert status == 404 and body["error"]["code"] == "petition_not_found"
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        meeting = await meetings.get_meeting(session, meeting_id)
        assert [[p.petition_id for p in i.petitions] for i in meeting.agenda] == [[own]]

    # The admin sees every request and may link it; the chair's later edits keep that link.
    status, body = await staff["admin"].call("PATCH", f"{agenda}/{item_id}", {"petition_ids": [own, foreign]})
    assert status == 200, body
    status, body = await chair.call(
        "PATCH", f"{agenda}/{item_id}", {"petition_ids": [own, foreign], "title": "안길"}
    )
    assert status == 200, body
    assert body["meeting"]["agenda"][0]["petition_ids"] == [own, foreign]
    status, body = await chair.call("PATCH", f"{agenda}/{item_id}", {"petition_ids": [own]})
    assert status == 200 and body["meeting"]["agenda"][0]["petition_ids"] == [own]


async def test_closing_the_record_answers_own_requests_and_proposes_the_others(
    staff: dict[str, Staff], world: World, sessionmaker: Sessionmaker, kiosk_a: KioskRef
) -> None:
    meeting_id, own, foreign = await _setup(sessionmaker, world, kiosk_a)
    chair, other, admin = staff["chair"], staff["other"], staff["admin"]
    base = f"/api/v1/meetings/{meeting_id}"
    status, body = await admin.call(
        "POST", f"{base}/agenda", {"title": "안길과 담장", "petition_ids": [own, foreign]}
    )
    assert status == 201, body
    item_id = body["item_id"]
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        meeting = await meetings.get_meeting(session, meeting_id)
        await meetings.start_meeting(session, admin_principal(world), meeting)
    decision = "12월에 함께 정비합니다."
    status, body = await chair.call("PUT", f"{base}/agenda/{item_id}/minutes", {"decisions": decision})
    assert status == 200, body
    for action in ("end", "close_record"):
        status, body = await chair.call("POST", f"{base}/transitions", {"action": action})
        assert status == 200, body
    outcomes = {p["petition_id"]: (p["outcome"], p["detail"]) for p in body["petitions"]}
    assert outcomes == {own: ("answered", "answered"), foreign: ("proposed", "to_department")}

    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        untouched = await session.get(Petition, foreign)
        assert untouched is not None and untouched.status != "answered" and untouched.answer_text is None
        answered = await session.get(Petition, own)
        assert answered is not None and answered.status == "answered"
    record = await (await chair.client.get(f"/meetings/{meeting_id}/record")).text()
    assert "담당 부서에 답변안으로 보냄" in record
    # The chair's record names the other department's request by receipt number only.
    assert SECRET_TITLE not in record and "다른 부서의 요청" in record and "마을 안길 포장" in record
    for export in ("record.csv", "record.json"):
        body = (await (await chair.client.get(f"/meetings/{meeting_id}/{export}")).read()).decode("utf-8-sig")
        assert SECRET_TITLE not in body and "마을 안길 포장" in body, export
    assert SECRET_TITLE in await (await admin.client.get(f"/meetings/{meeting_id}/record")).text()

    # Only the handling department (and admins) see it, and only they decide it.
    status, body = await chair.call("GET", "/api/v1/meeting-proposals")
    assert status == 200 and body["proposals"] == []
    status, body = await other.call("GET", "/api/v1/meeting-proposals")
    assert status == 200 and [p["petition_id"] for p in body["proposals"]] == [foreign]
    proposal = body["proposals"][0]
    assert decision in proposal["answer"] and proposal["status"] == "proposed"
    status, admin_view = await admin.call("GET", "/api/v1/meeting-proposals")
    assert [p["id"] for p in admin_view["proposals"]] == [proposal["id"]]
    status, body = await chair.call(
        "POST", f"/api/v1/meeting-proposals/{proposal['id']}", {"action": "confirm"}
    )
    assert status == 404 and body["error"]["code"] == "proposal_not_found"
    status, body = await other.call(
        "POST", f"/api/v1/meeting-proposals/{proposal['id']}", {"action": "maybe"}
    )
    assert status == 400
    # The request's own page points its department to the decision waiting for it.
    request_page = await (await other.client.get(f"/official/requests/{foreign}")).text()
    assert (
        "담당 부서에 답변안으로 보냄" in request_page
        and 'href="/official/meetings#proposals"' in request_page
    )
    page = await (await other.client.get("/official/meetings")).text()
    assert SECRET_TITLE in page and f"/official/meeting-proposals/{proposal['id']}" in page
    assert SECRET_TITLE not in await (await chair.client.get("/official/meetings")).text()

    status, body = await other.call(
        "POST", f"/api/v1/meeting-proposals/{proposal['id']}", {"action": "confirm"}
    )
    assert status == 200 and body["proposal"]["status"] == "confirmed", body
    status, body = await other.call(
        "POST", f"/api/v1/meeting-proposals/{proposal['id']}", {"action": "dismiss"}
    )
    assert status == 409 and body["error"]["code"] == "proposal_decided"
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        confirmed = await session.get(Petition, foreign)
        assert confirmed is not None and confirmed.status == "answered"
        assert confirmed.answer_text is not None and decision in confirmed.answer_text
        assert confirmed.answered_by == world.other_official_id
        events = (
            await session.scalars(
                select(PetitionEvent).where(PetitionEvent.petition_id == foreign).order_by(PetitionEvent.id)
            )
        ).all()
        assert [e.action for e in events][-3:] == ["meeting_decision_proposed", "answer", "meeting_decision"]
        assert events[-3].actor == f"official:{world.official_id}"
        assert events[-2].actor == f"official:{world.other_official_id}"
        refs = await meeting_agenda.meetings_for_petition(session, foreign)
        assert refs[0].outcome == "answered"


async def test_a_proposal_is_dismissed_from_the_page_and_a_refused_confirm_says_why(
    staff: dict[str, Staff], world: World, sessionmaker: Sessionmaker, kiosk_a: KioskRef
) -> None:
    other = staff["other"]
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        received = await file_petition(session, kiosk_a, "버스 정류장 지붕")  # nobody's yet
        taken = await file_petition(
            session, kiosk_a, "경로당 난방", assign_to=official_principal(world, other=True)
        )
        meeting = await meetings.get_meeting(session, (await scheduled_meeting(session, world)).id)
        admin = admin_principal(world)
        item = await meeting_agenda.add_agenda_item(
            session, meeting, "정류장", petition_ids=[received, taken], actor=admin
        )
        chair = official_principal(world)
        await meetings.start_meeting(session, admin, meeting)
        await meeting_agenda.write_minutes(session, meeting, item.id, decisions="지붕을 고칩니다.")
        await meetings.end_meeting(session, chair, meeting)
        report = await meeting_agenda.close_record(session, chair, meeting)
    assert {(o.petition_id, o.outcome) for o in report.outcomes} == {
        (received, "proposed"),
        (taken, "proposed"),
    }
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        by_petition = {p.petition_id: p.id for p in (await session.scalars(select(DecisionProposal))).all()}
    form = {"csrf_token": other.csrf}
    # The other department handles ``taken`` only; ``received`` has no department yet (admins' then).
    response = await other.client.post(
        f"/official/meeting-proposals/{by_petition[received]}", data={**form, "action": "confirm"}
    )
    assert response.status == 404
    response = await other.client.post(
        f"/official/meeting-proposals/{by_petition[taken]}",
        data={**form, "action": "dismiss"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/official/meetings#proposals"
    response = await other.client.post(
        f"/official/meeting-proposals/{by_petition[taken]}",
        data={**form, "action": "confirm"},
        allow_redirects=False,
    )
    assert response.status == 409 and "이미 확인되었거나 반려되었습니다" in await response.text()
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        still = await session.get(Petition, taken)
        assert still is not None and still.status != "answered"
    # The admin may confirm the unrouted one, but a request nobody has taken in cannot be answered.
    status, body = await staff["admin"].call(
        "POST", f"/api/v1/meeting-proposals/{by_petition[received]}", {"action": "confirm"}
    )
    assert status == 409 and body["error"]["code"] == "illegal_transition"


async def test_the_record_csv_neutralises_spreadsheet_formulas(
    staff: dict[str, Staff], world: World, sessionmaker: Sessionmaker
) -> None:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        meeting = await meetings.get_meeting(
            session, (await scheduled_meeting(session, world, title='=HYPERLINK("http://x")')).id
        )
        item = await meeting_agenda.add_agenda_item(session, meeting, "+SUM(A1:A9)")
        await meetings.start_meeting(session, admin_principal(world), meeting)
        await meeting_agenda.write_minutes(session, meeting, item.id, notes="-2+3", decisions="@cmd")
        await meeting_agenda.add_action_item(session, meeting, item.id, "=1+1", due_date=dt.date(2030, 1, 1))
    response = await staff["chair"].client.get(f"/meetings/{meeting.id}/record.csv")
    assert response.status == 200
    text = (await response.read()).decode("utf-8-sig")
    for formula in ('=HYPERLINK(""http://x"")', "+SUM(A1:A9)", "-2+3", "@cmd", "=1+1"):
        assert f"'{formula}" in text, formula
        assert f",{formula}" not in text and f'"{formula}' not in text
