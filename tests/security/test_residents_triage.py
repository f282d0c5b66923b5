"""Issue 12 item 5: requests that no department has yet are routed by triage only, personal data
is shown only to the handling department, and withdrawal is the resident's act (kiosk + PIN) or
an admin's with a recorded reason."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import seed
from server.auth.models import Account
from server.auth.secrets import Passwords
from server.config import Settings
from server.db import transaction
from server.petitions.models import Petition, PetitionEvent
from tests.conftest import World, login
from tests.kiosk_ref import make_kiosk
from tests.petitions.conftest import file_json, kiosk_call, official_json_call


async def grant_triage(sessionmaker: Callable[[], AsyncSession], account_id: int) -> None:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await session.execute(update(Account).where(Account.id == account_id).values(can_triage=True))


async def test_an_official_without_triage_cannot_take_an_unrouted_request(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    unrouted = (await file_json(client, kiosk)).body["petition"]["id"]
    csrf = await login(client, "official")
    path = f"/api/v1/petitions/{unrouted}"

    seen = (await official_json_call(client, csrf, "GET", path)).body["petition"]
    assert seen["resident_phone"] == "010-****-5678" and seen["allowed_actions"] == []
    for body in ({"action": "assign"}, {"action": "transfer", "department_id": world.department_ids[0]}):
        taken = await official_json_call(client, csrf, "POST", path + "/actions", body)
        assert taken.status == 403 and taken.body["error"]["code"] == "triage_only"
    page = await client.post(
        f"/official/requests/{unrouted}/action", data={"action": "assign", "csrf_token": csrf}
    )
    assert page.status == 403
    # Still nobody's, still masked.
    again = (await official_json_call(client, csrf, "GET", path)).body["petition"]
    assert again["department_id"] is None and again["resident_name"] == "홍*동"


async def test_triage_routes_it_and_only_the_handling_department_sees_personal_data(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    unrouted = (await file_json(client, kiosk)).body["petition"]["id"]
    await grant_triage(sessionmaker, world.official_id)
    csrf = await login(client, "official")
    path = f"/api/v1/petitions/{unrouted}"
    assert (
        "transfer"
        in (await official_json_call(client, csrf, "GET", path)).body["petition"]["allowed_actions"]
    )
    routed = await official_json_call(
        client,
        csrf,
        "POST",
        path + "/actions",
        {"action": "transfer", "department_id": world.department_ids[1]},
    )
    assert routed.status == 200, routed.body
    # Routed to department Y: the triage official no longer sees it; Y's official sees it unmasked.
    assert (await official_json_call(client, csrf, "GET", path)).status == 404
    await client.post("/logout", data={"csrf_token": csrf})
    other = await login(client, "official2")
    detail = (await official_json_call(client, other, "GET", path)).body["petition"]
    assert detail["resident_phone"] == "010-1234-5678" and detail["resident_name"] == "홍길동"


async def test_officials_never_withdraw(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    mine = (await file_json(client, kiosk, department_id=world.department_ids[0])).body["petition"]["id"]
    unrouted = (await file_json(client, kiosk)).body["petition"]["id"]
    await grant_triage(sessionmaker, world.official_id)
    csrf = await login(client, "official")
    for petition_id in (mine, unrouted):
        path = f"/api/v1/petitions/{petition_id}"
        assert (
            "withdraw"
            not in (await official_json_call(client, csrf, "GET", path)).body["petition"]["allowed_actions"]
        )
        reply = await official_json_call(
            client, csrf, "POST", path + "/actions", {"action": "withdraw", "reason": "x"}
        )
        assert reply.status == 403 and reply.body["error"]["code"] == "withdraw_not_allowed"


async def test_an_admin_withdraws_only_with_a_recorded_reason(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    petition_id = (await file_json(client, kiosk)).body["petition"]["id"]
    csrf = await login(client, "admin")
    path = f"/api/v1/petitions/{petition_id}/actions"
    bare = await official_json_call(client, csrf, "POST", path, {"action": "withdraw"})
    assert bare.status == 400 and bare.body["error"]["code"] == "reason_required"
    reason = "민원인이 전화로 취하를 요청함 (2026-12-03 10:30 통화)"
    done = await official_json_call(client, csrf, "POST", path, {"action": "withdraw", "reason": reason})
    assert done.status == 200 and done.body["petition"]["status"] == "closed"
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        event = await session.scalar(
            select(PetitionEvent).where(
                PetitionEvent.petition_id == petition_id, PetitionEvent.action == "withdraw"
            )
        )
    assert (
        event is not None and event.actor == f"admin:{world.admin_id}" and event.details["reason"] == reason
    )


async def test_the_resident_withdraws_at_a_kiosk_with_the_pin(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    other_village = await make_kiosk(sessionmaker, world.village_ids[1])
    filed = await file_json(client, kiosk, department_id=world.department_ids[0])
    receipt, pin, petition_id = (
        filed.body["petition"]["receipt_no"],
        filed.body["pin"],
        filed.body["petition"]["id"],
    )
    wrong = f"{(int(pin) + 1) % 10000:04d}"
    path = "/api/v1/kiosk/petitions/withdraw"

    refused = await kiosk_call(client, kiosk, "POST", path, json_body={"receipt_no": receipt, "pin": wrong})
    assert refused.status == 403 and refused.body["error"]["code"] == "pin_mismatch"
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        assert (await session.get(Petition, petition_id)).status == "received"  # type: ignore[union-attr]

    # Any village hall's kiosk will do: the PIN is what proves it is hers.
    done = await kiosk_call(
        client, other_village, "POST", path, json_body={"receipt_no": receipt, "pin": pin}
    )
    assert done.status == 200, done.body
    assert done.body["petition"]["status"] == "closed"
    twice = await kiosk_call(client, kiosk, "POST", path, json_body={"receipt_no": receipt, "pin": pin})
    assert twice.status == 409
    bad = await kiosk_call(client, kiosk, "POST", path, json_body={"receipt_no": "아무거나", "pin": pin})
    assert bad.status == 400


async def test_the_demo_gives_triage_to_its_minwon_official(
    settings: Settings, sessionmaker: Callable[[], AsyncSession]
) -> None:
    passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await seed.seed_demo(session, passwords, settings.data_dir / "demo_logins.json")
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        triage = (await session.scalars(select(Account.username).where(Account.can_triage.is_(True)))).all()
    assert list(triage) == ["official1"]
