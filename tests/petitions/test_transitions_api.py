"""Every action from every status through the API: legal ones apply, illegal ones answer 409."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from server.auth.roles import Principal, Role
from server.db import transaction
from server.petitions import service
from server.petitions.deadlines import PetitionType
from server.petitions.models import Petition
from tests.conftest import World, login
from tests.petitions.conftest import Kiosk, official_json_call

# The table from the issue and workflow.py's docstring, written out independently.
LEGAL: dict[str, set[str]] = {
    "received": {"assign", "transfer", "extend", "withdraw"},
    "in_progress": {"assign", "request_info", "answer", "transfer", "extend", "withdraw"},
    "info_requested": {"supplement", "extend", "close", "withdraw"},
    "transferred": {"receive", "withdraw"},
    "answered": {"close", "reopen"},
    "closed": set(),
}
TARGET = {
    "assign": "in_progress",
    "request_info": "info_requested",
    "supplement": "in_progress",
    "answer": "answered",
    "close": "closed",
    "transfer": "transferred",
    "receive": "received",
    "reopen": "in_progress",
    "withdraw": "closed",
}
ACTIONS = sorted(TARGET) + ["extend"]


def body_for(action: str, world: World) -> dict[str, Any]:
    return {
        "assign": {"action": "assign", "assignee_id": world.official_id},
        "request_info": {"action": "request_info", "reason": "사진을 한 장 더 보내 주세요"},
        "close": {"action": "close", "reason": "보완이 없어 종결합니다"},
        "transfer": {"action": "transfer", "department_id": world.department_ids[1], "reason": "담당 부서"},
        "extend": {"action": "extend", "reason": "현장 확인이 필요합니다", "extension_days": 3},
        "answer": {"action": "answer", "answer": "처리했습니다"},
        "withdraw": {"action": "withdraw", "reason": "민원인이 전화로 취하 요청"},
    }.get(action, {"action": action})


async def make_petition(sessionmaker: Any, kiosk: Kiosk, world: World, status: str) -> int:
    principal = Principal(role=Role.KIOSK, id=kiosk.id, display_name="k", village_id=kiosk.village_id)
    async with transaction(sessionmaker) as session:
        new = service.NewPetition(
            PetitionType.GRIEVANCE, world.department_ids[0], "제목", "내용", "01012345678", None, False
        )
        petition = await service.file_petition(session, principal, new, "$argon2id$unused")
        assignee = None if status in ("received", "transferred") else world.official_id
        await session.execute(
            update(Petition).where(Petition.id == petition.id).values(status=status, assignee_id=assignee)
        )
        return petition.id


@pytest.mark.parametrize("status", list(LEGAL))
async def test_every_action_from(
    status: str, client: TestClient, world: World, kiosk: Kiosk, sessionmaker: Any
) -> None:
    # An admin may take every action (an official never withdraws: tests/security/test_residents_triage.py).
    csrf = await login(client, "admin")
    for action in ACTIONS:
        petition_id = await make_petition(sessionmaker, kiosk, world, status)
        reply = await official_json_call(
            client, csrf, "POST", f"/api/v1/petitions/{petition_id}/actions", body_for(action, world)
        )
        if action in LEGAL[status]:
            assert reply.status == 200, (status, action, reply.body)
            assert reply.body["petition"]["status"] == TARGET.get(action, status)
        else:
            assert reply.status == 409, (status, action, reply.body)
            error = reply.body["error"]
            assert error["code"] == "illegal_transition"
            assert error["details"] == {
                "from_status": status,
                "action": action,
                "reason": error["details"]["reason"],
            }


async def test_guards_info_requests_twice_one_extension_assignee_needed(
    client: TestClient, world: World, kiosk: Kiosk, sessionmaker: Any
) -> None:
    csrf = await login(client, "official")
    petition_id = await make_petition(sessionmaker, kiosk, world, "received")
    url = f"/api/v1/petitions/{petition_id}/actions"

    async def do(body: dict[str, Any]) -> Any:
        return await official_json_call(client, csrf, "POST", url, body)

    # Answering without anyone assigned is illegal even from in_progress-like flows.
    assert (await do({"action": "answer", "answer": "x"})).status == 409
    first_due = (await do({"action": "assign"})).body["petition"]["due_at"]
    for _ in range(2):
        assert (await do(body_for("request_info", world))).status == 200
        assert (await do({"action": "supplement"})).status == 200
    third = await do(body_for("request_info", world))
    assert third.status == 409 and "at most 2" in third.body["error"]["details"]["reason"]

    extended = await do(body_for("extend", world))
    assert extended.status == 200 and extended.body["petition"]["due_at"] > first_due
    assert extended.body["petition"]["extension_reason"] == "현장 확인이 필요합니다"
    again = await do(body_for("extend", world))
    assert again.status == 409 and "only once" in again.body["error"]["details"]["reason"]
    # An extension longer than the original period (7 days for a grievance) is refused.
    other = await make_petition(sessionmaker, kiosk, world, "in_progress")
    too_long = await official_json_call(
        client,
        csrf,
        "POST",
        f"/api/v1/petitions/{other}/actions",
        {"action": "extend", "reason": "길게", "extension_days": 8},
    )
    assert too_long.status == 409
    # An answer needs text; an unknown action is a validation error.
    assert (await do({"action": "answer"})).status == 400
    bad = await do({"action": "explode"})
    assert bad.status == 400 and bad.body["error"]["code"] == "validation_failed"
