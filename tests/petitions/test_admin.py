"""Admin: departments, answer templates, CSV export (BOM, masking), statistics."""

from __future__ import annotations

import csv
import io

from aiohttp.test_utils import TestClient

from tests.conftest import World, login
from tests.petitions.conftest import Kiosk, file_json, kiosk_call, official_json_call


async def test_departments_add_rename_deactivate(client: TestClient, world: World, kiosk: Kiosk) -> None:
    csrf = await login(client, "admin")
    added = await official_json_call(
        client,
        csrf,
        "POST",
        "/api/v1/admin/departments",
        {"name_ko": "마을지원과", "name_en": "Village Support"},
    )
    assert added.status == 201
    dept_id = added.body["department"]["id"]
    dup = await official_json_call(
        client, csrf, "POST", "/api/v1/admin/departments", {"name_ko": "마을지원과", "name_en": "x"}
    )
    assert dup.status == 409 and dup.body["error"]["code"] == "department_exists"
    renamed = await official_json_call(
        client, csrf, "PATCH", f"/api/v1/admin/departments/{dept_id}", {"name_ko": "마을활력과"}
    )
    assert renamed.body["department"]["name_ko"] == "마을활력과"
    off = await official_json_call(
        client, csrf, "PATCH", f"/api/v1/admin/departments/{dept_id}", {"is_active": False}
    )
    assert off.body["department"]["is_active"] is False
    # An inactive department is not offered to kiosks and refuses new petitions.
    refused = await file_json(client, kiosk, department_id=dept_id)
    assert refused.status == 400 and refused.body["error"]["code"] == "unknown_department"
    page = await kiosk_call(client, kiosk, "GET", "/kiosk/request")
    assert "마을활력과" not in page.body.decode()
    assert (
        await official_json_call(
            client, csrf, "PATCH", "/api/v1/admin/departments/99999", {"is_active": True}
        )
    ).status == 404
    # Officials may not manage departments.
    await client.post("/logout", data={"csrf_token": csrf})
    official_csrf = await login(client, "official")
    assert (await official_json_call(client, official_csrf, "GET", "/api/v1/admin/departments")).status == 403


async def test_csv_export_masks_unless_asked_and_has_a_bom(
    client: TestClient, world: World, kiosk: Kiosk
) -> None:
    await file_json(client, kiosk, title='=HYPERLINK("http://evil")', department_id=world.department_ids[0])
    await login(client, "admin")
    masked = await (await client.get("/admin/petitions.csv")).read()
    assert masked.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(masked.decode("utf-8-sig"))))
    assert rows[0][0] == "receipt_no" and len(rows) == 2
    assert rows[1][-1] == "010-****-5678" and rows[1][-2] == "홍*동"
    assert rows[1][10].startswith("'=")  # no formula injection into Excel
    full = await (await client.get("/admin/petitions.csv?personal=true")).read()
    assert list(csv.reader(io.StringIO(full.decode("utf-8-sig"))))[1][-1] == "010-1234-5678"
    assert (await client.get("/admin/petitions.csv?personal=maybe")).status == 400


async def test_statistics(client: TestClient, world: World, kiosk: Kiosk) -> None:
    ids = [
        (await file_json(client, kiosk, department_id=world.department_ids[0], petition_type=t)).body[
            "petition"
        ]["id"]
        for t in ("grievance", "grievance", "suggestion")
    ]
    csrf = await login(client, "admin")
    for petition_id in ids[:2]:
        await official_json_call(
            client,
            csrf,
            "POST",
            f"/api/v1/petitions/{petition_id}/actions",
            {"action": "assign", "assignee_id": world.official_id},
        )
        await official_json_call(
            client,
            csrf,
            "POST",
            f"/api/v1/petitions/{petition_id}/actions",
            {"action": "answer", "answer": "완료"},
        )
    stats = (await official_json_call(client, csrf, "GET", "/api/v1/admin/petitions/stats")).body
    assert stats["total"] == 3
    assert {(b["label"], b["count"]) for b in stats["by_type"]} == {("고충", 2), ("건의", 1)}
    assert stats["median_hours_to_answer"] is not None and stats["median_hours_to_answer"] >= 0
    assert stats["overdue_rate"] == 0.0
    page = await (await client.get("/admin/petitions/stats")).text()
    assert "<svg" in page and "고충" in page
