"""Kiosk and official pages: rendering, escaping, form actions with CSRF, bulk answers."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from server.db import transaction
from server.petitions.models import AnswerTemplate
from tests.conftest import CSRF_META_RE, World, login
from tests.petitions.conftest import Kiosk, file_json, official_json_call

SCRIPT = '<script>alert("x")</script>'


async def _kiosk_page(client: TestClient, kiosk: Kiosk, path: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        async with agent.get(
            client.make_url(path), headers={"Cookie": f"maeul_kiosk={kiosk.token}"}
        ) as response:
            return response.status, await response.text(), dict(response.headers)


async def test_kiosk_flow_pages_are_korean_first_with_no_inline_script_or_style(
    client: TestClient, world: World, kiosk: Kiosk
) -> None:
    for path, marker in (
        ("/kiosk/request", "무엇에 관한"),
        ("/kiosk/status", "접수번호"),
        ("/kiosk", "/kiosk/request"),
    ):
        status, html, headers = await _kiosk_page(client, kiosk, path)
        assert status == 200, path
        assert marker in html, path
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        # CSP: scripts only from files, no inline handlers, no style attributes.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert " style=" not in html, path
    # Officials are not kiosks.
    await login(client, "official")
    assert (await client.get("/kiosk/request")).status == 403


async def test_script_in_title_and_text_is_escaped_on_the_official_pages(
    client: TestClient, world: World, kiosk: Kiosk
) -> None:
    filed = await file_json(
        client, kiosk, title=f"가로등 {SCRIPT}", body=f"본문 {SCRIPT}", department_id=world.department_ids[0]
    )
    petition_id = filed.body["petition"]["id"]
    await login(client, "official")
    for path in ("/official/requests", f"/official/requests/{petition_id}"):
        html = await (await client.get(path)).text()
        assert SCRIPT not in html, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, path


async def test_official_answers_with_a_template_through_the_form(
    client: TestClient, world: World, kiosk: Kiosk, sessionmaker: Any
) -> None:
    async with transaction(sessionmaker) as session:
        template = AnswerTemplate(
            title="현장 확인", body="담당자가 현장을 확인하고 연락드리겠습니다.", department_id=None
        )
        session.add(template)
        await session.flush()
        template_id = template.id
    filed = await file_json(client, kiosk, department_id=world.department_ids[0])
    petition_id = filed.body["petition"]["id"]
    csrf = await login(client, "official")
    page = await (await client.get(f"/official/requests/{petition_id}")).text()
    assert "010-1234-5678" in page and "홍길동" in page  # the handling department sees it in full

    async def post(fields: dict[str, str]) -> aiohttp.ClientResponse:
        return await client.post(
            f"/official/requests/{petition_id}/action",
            data=fields | {"csrf_token": csrf},
            allow_redirects=False,
        )

    # Without the CSRF token the form is refused.
    refused = await client.post(
        f"/official/requests/{petition_id}/action", data={"action": "assign"}, allow_redirects=False
    )
    assert refused.status == 403
    assert (await post({"action": "assign", "assignee_id": str(world.official_id)})).status == 303
    illegal = await post({"action": "receive"})
    assert illegal.status == 409 and "receive" in await illegal.text()
    assert (await post({"action": "answer", "template_id": str(template_id)})).status == 303
    detail = await official_json_call(client, csrf, "GET", f"/api/v1/petitions/{petition_id}")
    assert detail.body["petition"]["answer"] == "담당자가 현장을 확인하고 연락드리겠습니다."
    note = await client.post(
        f"/official/requests/{petition_id}/notes",
        data={"text": "내부 메모", "csrf_token": csrf},
        allow_redirects=False,
    )
    assert note.status == 303
    notes = await official_json_call(client, csrf, "GET", f"/api/v1/petitions/{petition_id}/notes")
    assert [n["text"] for n in notes.body["notes"]] == ["내부 메모"]


async def test_bulk_answer_from_the_inbox(client: TestClient, world: World, kiosk: Kiosk) -> None:
    ids = [
        (await file_json(client, kiosk, department_id=world.department_ids[0])).body["petition"]["id"]
        for _ in range(3)
    ]
    csrf = await login(client, "official")
    for petition_id in ids:
        await official_json_call(
            client, csrf, "POST", f"/api/v1/petitions/{petition_id}/actions", {"action": "assign"}
        )
    response = await client.post(
        "/official/requests/bulk-answer",
        data=[
            ("csrf_token", csrf),
            ("petition_id", str(ids[0])),
            ("petition_id", str(ids[1])),
            ("answer", "일괄 답변"),
        ],
        allow_redirects=False,
    )
    assert response.status == 303 and "error" not in response.headers["Location"]
    states = [
        (await official_json_call(client, csrf, "GET", f"/api/v1/petitions/{i}")).body["petition"]["status"]
        for i in ids
    ]
    assert states == ["answered", "answered", "in_progress"]
    # The same through the API; a request that cannot be answered rolls the whole batch back.
    batch = await official_json_call(
        client,
        csrf,
        "POST",
        "/api/v1/petitions/bulk-answer",
        {"petition_ids": [ids[2], ids[0]], "answer": "x"},
    )
    assert batch.status == 409
    still = await official_json_call(client, csrf, "GET", f"/api/v1/petitions/{ids[2]}")
    assert still.body["petition"]["status"] == "in_progress"
    inbox = await (await client.get("/official/requests?status=answered")).text()
    assert (
        inbox.count("/official/requests/" + str(ids[0])) == 1 and f'/official/requests/{ids[2]}"' not in inbox
    )


async def test_kiosk_public_page_lists_public_requests_without_personal_data(
    client: TestClient, world: World, kiosk: Kiosk, other_kiosk: Kiosk
) -> None:
    await file_json(client, kiosk, is_public=True, title="버스 정류장에 지붕이 필요해요")
    await file_json(client, kiosk, is_public=False, title="개인적인 민원")
    status, html, _headers = await _kiosk_page(client, other_kiosk, "/kiosk/public")
    assert status == 200
    assert "버스 정류장에 지붕이 필요해요" in html and "개인적인 민원" not in html
    # The page's random CSRF token and the static files' content hashes can spell "5678" by chance.
    csrf = CSRF_META_RE.search(html)
    assert csrf is not None
    content = re.sub(r"\?v=[^\"]*", "", html.replace(csrf.group(1), ""))
    assert "5678" not in content and "홍" not in content
    assert "data-support=" in html and " style=" not in html
