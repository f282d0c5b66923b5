"""Ids in request bodies are bounded: a number beyond any database id is a structured 400, never a
500 from the database driver (SQLite overflows at 2**63, PostgreSQL's integer at 2**31)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import World, login

HUGE = 2**70

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("post", "/api/v1/admin/rooms", {"title": "회의", "account_ids": [HUGE]}),
    ("post", "/api/v1/admin/rooms", {"title": "회의", "kiosk_ids": [2**31]}),
    ("post", "/api/v1/admin/kiosks", {"village_id": HUGE, "label": "마을회관"}),
    ("post", "/api/v1/petitions/bulk-answer", {"petition_ids": [HUGE], "answer": "답변"}),
    (
        "post",
        "/api/v1/meetings",
        {
            "title": "회의",
            "starts_at": "2030-03-05T10:00:00+09:00",
            "ends_at": "2030-03-05T11:00:00+09:00",
            "chair_id": HUGE,
        },
    ),
]


@pytest.mark.parametrize(("method", "path", "body"), CASES)
async def test_a_huge_id_is_a_structured_400(
    client: TestClient, world: World, method: str, path: str, body: dict[str, Any]
) -> None:
    csrf = await login(client, "admin")
    response = await client.request(method, path, json=body, headers={"X-CSRF-Token": csrf})
    assert response.status == 400, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
