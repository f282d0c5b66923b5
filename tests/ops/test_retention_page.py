"""``/admin/retention`` through the real app: what goes in the next 30 days, placing and lifting
a legal hold with a reason (which then keeps the request out of the list), and a clear refusal of
a hold without one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.config import Settings
from server.db import transaction, utcnow
from server.petitions.models import Petition
from tests.conftest import login
from tests.ops.test_retention_purge import _petition
from tests.world_seed import World


async def _post_hold(client: TestClient, csrf: str, **fields: str) -> int:
    response = await client.post(
        "/admin/retention/holds", data={"csrf_token": csrf, **fields}, allow_redirects=False
    )
    return response.status


async def test_admin_sees_what_is_due_and_places_and_lifts_a_hold(
    settings: Settings, sessionmaker: Callable[[], AsyncSession], world: World, client: TestClient
) -> None:
    closed_at = utcnow() - dt.timedelta(days=80)  # names and phones go in 10 days
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        pid = await _petition(session, world, settings, closed_at)
        receipt_no = (await session.get(Petition, pid)).receipt_no  # type: ignore[union-attr]
    csrf = await login(client, "admin")
    page = await (await client.get("/admin/retention")).text()
    assert receipt_no in page and "주민 이름과 전화번호" in page

    refused = await _post_hold(client, csrf, target="petition", target_id=str(pid), action="hold", reason=" ")
    assert refused == 400
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        assert (await session.get(Petition, pid)).retention_hold is None  # type: ignore[union-attr]

    placed = await _post_hold(
        client, csrf, target="petition", target_id=str(pid), action="hold", reason="행정심판 청구 중"
    )
    assert placed == 303
    page = await (await client.get("/admin/retention")).text()
    assert "행정심판 청구 중" in page
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        assert (await session.get(Petition, pid)).retention_hold == "행정심판 청구 중"  # type: ignore[union-attr]

    lifted = await _post_hold(client, csrf, target="petition", target_id=str(pid), action="release")
    assert lifted == 303
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        assert (await session.get(Petition, pid)).retention_hold is None  # type: ignore[union-attr]

    missing = await _post_hold(client, csrf, target="meeting", target_id="999999", action="hold", reason="x")
    assert missing == 404
