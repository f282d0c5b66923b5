"""Official/admin login, sessions, CSRF, throttling and role checks."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import TEST_PASSWORD, World, login, page_csrf


async def test_login_succeeds_and_opens_the_right_area(client: TestClient, world: World) -> None:
    token = await page_csrf(client)
    response = await client.post(
        "/login",
        data={"username": "official", "password": TEST_PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/official"
    cookie = response.cookies["maeul_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    me = await client.get("/api/v1/me")
    assert me.status == 200
    assert (await me.json())["role"] == "official"
    page = await client.get("/official")
    assert page.status == 200
    assert "김민원" in await page.text()


async def test_wrong_password_fails(client: TestClient, world: World) -> None:
    token = await page_csrf(client)
    response = await client.post(
        "/login", data={"username": "official", "password": "wrong password", "csrf_token": token}
    )
    assert response.status == 401
    assert "아이디 또는 비밀번호가 맞지 않습니다" in await response.text()
    assert "maeul_session" not in response.cookies
    assert (await client.get("/api/v1/me")).status == 401


async def test_throttling_locks_out_after_repeated_failures(client: TestClient, world: World) -> None:
    token = await page_csrf(client)
    for _ in range(5):
        response = await client.post(
            "/login", data={"username": "official", "password": "nope nope", "csrf_token": token}
        )
        assert response.status == 401
    # Now even the right password is refused until the lockout ends.
    response = await client.post(
        "/login", data={"username": "official", "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert response.status == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "로그인 실패가 너무 많습니다" in await response.text()
    api = await client.post(
        "/api/v1/session",
        json={"username": "official", "password": TEST_PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    assert api.status == 429
    assert (await api.json())["error"]["code"] == "login_locked"


async def test_post_without_csrf_token_is_refused(client: TestClient, world: World) -> None:
    await page_csrf(client)  # the browser has a CSRF cookie, but the form carries no token
    response = await client.post("/login", data={"username": "official", "password": TEST_PASSWORD})
    assert response.status == 403
    assert "maeul_session" not in response.cookies
    forged = await client.post(
        "/login", data={"username": "official", "password": TEST_PASSWORD, "csrf_token": "f" * 64}
    )
    assert forged.status == 403


async def test_logged_in_unsafe_request_needs_csrf(client: TestClient, world: World) -> None:
    token = await login(client, "admin")
    refused = await client.post(
        "/api/v1/admin/kiosks", json={"village_id": world.village_ids[0], "label": "A"}
    )
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "csrf_failed"
    accepted = await client.post(
        "/api/v1/admin/kiosks",
        json={"village_id": world.village_ids[0], "label": "A"},
        headers={"X-CSRF-Token": token},
    )
    assert accepted.status == 201


async def test_official_cannot_reach_admin_pages(client: TestClient, world: World) -> None:
    token = await login(client, "official")
    page = await client.get("/admin", allow_redirects=False)
    assert page.status == 403
    assert "권한이 없습니다" in await page.text()
    assert (await client.get("/admin/kiosks")).status == 403
    api = await client.get("/api/v1/admin/kiosks")
    assert api.status == 403
    assert (await api.json())["error"]["code"] == "forbidden"
    create = await client.post(
        "/api/v1/admin/kiosks",
        json={"village_id": world.village_ids[0], "label": "x"},
        headers={"X-CSRF-Token": token},
    )
    assert create.status == 403


async def test_anonymous_is_sent_to_login(client: TestClient, world: World) -> None:
    response = await client.get("/official", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/login?next=")


async def test_logout_ends_the_session(client: TestClient, world: World) -> None:
    token = await login(client, "admin")
    assert (await client.get("/api/v1/me")).status == 200
    response = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303
    assert (await client.get("/admin", allow_redirects=False)).status == 303


async def test_login_redirect_is_local_only(client: TestClient, world: World) -> None:
    token = await page_csrf(client)
    response = await client.post(
        "/login",
        data={
            "username": "admin",
            "password": TEST_PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/x",
        },
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/admin"
