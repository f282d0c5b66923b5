"""Bad input gets a structured 400 (never a 500), unknown pages a friendly 404."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import World


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"{not json", "application/json", "malformed_json"),
        (b"\xff\xfe\x00", "application/json", "malformed_json"),
        (b"[1, 2]", "application/json", "malformed_json"),
        (b'"code"', "application/json", "malformed_json"),
        (b'{"code": "ABCD-EFGH-JKMN-PQRS", "extra": 1}', "application/json", "validation_failed"),
        (b'{"code": 12}', "application/json", "validation_failed"),
        (b"{}", "application/json", "validation_failed"),
    ],
)
async def test_bad_json_gets_a_structured_400(
    client: TestClient, world: World, body: bytes, content_type: str, code: str
) -> None:
    response = await client.post("/api/v1/kiosk/enroll", data=body, headers={"Content-Type": content_type})
    assert response.status == 400
    payload = await response.json()
    assert payload["error"]["code"] == code
    assert payload["error"]["message"]
    assert payload["error"]["request_id"]


async def test_text_plain_post_counts_as_a_form_and_needs_csrf(client: TestClient, world: World) -> None:
    # text/plain is what a cross-site <form> can send, so it gets no JSON exemption.
    response = await client.post(
        "/api/v1/kiosk/enroll", data=b"code=x", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "csrf_failed"


async def test_unknown_field_is_named_in_the_error(client: TestClient, world: World) -> None:
    response = await client.post("/api/v1/session", json={"username": "a", "password": "b", "admin": True})
    assert response.status == 400
    details = (await response.json())["error"]["details"]
    assert any(d["field"] == "admin" and d["problem"] == "extra_forbidden" for d in details)


async def test_oversized_json_is_refused(client: TestClient, world: World) -> None:
    response = await client.post(
        "/api/v1/session",
        data=b'{"username": "' + b"a" * 70000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_unknown_api_route_is_json_404(client: TestClient, world: World) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_unknown_page_is_a_friendly_korean_404(client: TestClient, world: World) -> None:
    response = await client.get("/nothing-here")
    assert response.status == 404
    text = await response.text()
    assert "페이지를 찾을 수 없습니다" in text
    assert "Traceback" not in text


async def test_bad_kiosk_id_in_path(client: TestClient, world: World) -> None:
    from tests.conftest import login

    token = await login(client, "admin")
    for bad in ("abc", "99999999999999999999", "-1"):
        response = await client.post(f"/api/v1/admin/kiosks/{bad}/revoke", headers={"X-CSRF-Token": token})
        assert response.status == 400, bad
    missing = await client.post("/api/v1/admin/kiosks/424242/revoke", headers={"X-CSRF-Token": token})
    assert missing.status == 404


async def test_wrong_method_is_structured(client: TestClient, world: World) -> None:
    response = await client.put("/api/v1/me")
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"


async def test_security_headers_on_every_page(client: TestClient, world: World) -> None:
    response = await client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_unicode_digits_in_a_path_id_are_a_400_not_a_500(client: TestClient, world: World) -> None:
    from tests.conftest import login

    token = await login(client, "admin")
    for bad in ("²", "١٢", "0"):
        response = await client.post(f"/api/v1/admin/kiosks/{bad}/revoke", headers={"X-CSRF-Token": token})
        assert response.status == 400, bad
        assert (await response.json())["error"]["code"] == "invalid_kiosk_id"
