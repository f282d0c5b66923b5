"""Issue 12 items 3, 4 and 10: the redirect after login, the client address behind a proxy, and
login throttling by (account, address) with growing delays."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.auth.secrets import Passwords
from server.auth.service import ThrottlePolicy, reserve_login_attempt
from server.config import Settings
from server.db import transaction
from server.errors import TooManyRequests
from tests.conftest import TEST_PASSWORD, World, make_settings, page_csrf

ClientFactory = Callable[..., Awaitable[TestClient]]


async def post_login(
    client: TestClient,
    username: str,
    password: str,
    *,
    forwarded: str | None = None,
    next_: str | None = None,
) -> Any:
    token = await page_csrf(client)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    data = {"username": username, "password": password, "csrf_token": token}
    if next_ is not None:
        data["next"] = next_
    return await client.post("/login", data=data, headers=headers, allow_redirects=False)


# --- item 3: open redirect -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/\t/example.org",
        "/\n/example.org",
        "/\r\n/example.org",
        "/\\example.org",
        "\\\\example.org",
        "\\/example.org",
        " //example.org",
        "\t//example.org",
        "//example.org",
        "https://example.org/",
        "javascript:alert(1)",
        "/ok\x00/x",
    ],
)
async def test_next_that_a_browser_reads_as_another_site_goes_home(
    client: TestClient, world: World, target: str
) -> None:
    response = await post_login(client, "admin", TEST_PASSWORD, next_=target)
    assert response.status == 303
    assert response.headers["Location"] == "/admin"


async def test_next_from_the_login_link_round_trips_and_stays_on_site(
    client: TestClient, world: World
) -> None:
    # The link: /login?next=%2F%09%2Fexample.org puts "/<tab>/example.org" in the form.
    page = await client.get("/login?next=%2F%09%2Fexample.org")
    assert page.status == 200
    response = await post_login(client, "official", TEST_PASSWORD, next_="/\t/example.org")
    assert response.headers["Location"] == "/official"
    good = await post_login(client, "official", TEST_PASSWORD, next_="/official/requests?status=received")
    assert good.headers["Location"] == "/official/requests?status=received"


# --- item 4: X-Forwarded-For -----------------------------------------------------------------------


async def proxied_client(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path, **overrides: Any
) -> TestClient:
    settings = make_settings(db_url, tmp_path / "proxied", trust_proxy=True, **overrides)
    return await aiohttp_client(create_app(settings))


async def test_the_address_is_the_one_the_trusted_proxy_saw(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path, world: World
) -> None:
    # The test client connects from 127.0.0.1, the default trusted proxy (nginx on the machine).
    client = await proxied_client(aiohttp_client, db_url, tmp_path)
    attacker = "203.0.113.7"
    for n in range(5):
        # The attacker writes whatever it likes on the left; nginx appends what it saw.
        reply = await post_login(client, "official", "wrong password", forwarded=f"10.9.9.{n}, {attacker}")
        assert reply.status == 401
    locked = await post_login(client, "official", "wrong password", forwarded=f"198.51.100.1, {attacker}")
    assert locked.status == 429
    # The attacker could not make its failures count against the official's own address.
    official = await post_login(client, "official", TEST_PASSWORD, forwarded="198.51.100.1")
    assert official.status == 303


async def test_forwarded_for_is_ignored_from_a_peer_that_is_not_a_trusted_proxy(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path, world: World
) -> None:
    client = await proxied_client(aiohttp_client, db_url, tmp_path, trusted_proxies=())
    for n in range(5):
        assert (await post_login(client, "official", "wrong", forwarded=f"10.0.0.{n}")).status == 401
    # Every one of them counted against the real peer, whatever the header said.
    assert (await post_login(client, "official", "wrong", forwarded="10.0.0.99")).status == 429


@pytest.mark.parametrize("trusted", [True, False])
async def test_forwarded_proto_makes_cookies_secure_only_from_a_trusted_proxy(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path, world: World, trusted: bool
) -> None:
    # The test client's peer is 127.0.0.1: a trusted proxy by default, not with an empty list.
    overrides: dict[str, Any] = {} if trusted else {"trusted_proxies": ()}
    client = await proxied_client(aiohttp_client, db_url, tmp_path, **overrides)
    token = await page_csrf(client)
    reply = await client.post(
        "/login",
        data={"username": "official", "password": TEST_PASSWORD, "csrf_token": token},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    assert reply.status == 303
    session = reply.cookies["maeul_session"]
    assert bool(session["secure"]) is trusted


def test_trusted_proxies_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {"MAEUL_SECRET_KEY": "k" * 40, "MAEUL_TRUSTED_PROXIES": "10.0.0.5/32, 2001:db8::/32"}
    )
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.5/32", "2001:db8::/32"]
    with pytest.raises(Exception, match="MAEUL_TRUSTED_PROXIES"):
        Settings.from_env({"MAEUL_SECRET_KEY": "k" * 40, "MAEUL_TRUSTED_PROXIES": "nginx"})


# --- item 10: throttling by (account, address) -----------------------------------------------------


async def test_wrong_passwords_from_one_address_do_not_lock_the_account_elsewhere(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path, world: World
) -> None:
    client = await proxied_client(aiohttp_client, db_url, tmp_path)
    for _ in range(5):
        assert (await post_login(client, "official", "guess", forwarded="203.0.113.7")).status == 401
    assert (await post_login(client, "official", TEST_PASSWORD, forwarded="203.0.113.7")).status == 429
    assert (await post_login(client, "official", TEST_PASSWORD, forwarded="10.1.2.3")).status == 303


async def test_simultaneous_wrong_passwords_check_at_most_the_limit(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = Passwords.verify

    def counted(self: Passwords, stored: str | None, password: str) -> bool:
        nonlocal calls
        calls += 1
        return real(self, stored, password)

    monkeypatch.setattr(Passwords, "verify", counted)
    replies = await asyncio.gather(*(post_login(client, "official", f"guess {n}") for n in range(20)))
    assert sorted(r.status for r in replies) == [401] * 5 + [429] * 15
    assert calls == 5


async def test_delays_grow_with_each_further_failure(
    world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    policy = ThrottlePolicy(max_failures=5, lockout=dt.timedelta(minutes=15))
    now = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    waits = []
    for _ in range(19):
        try:
            async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
                await reserve_login_attempt(
                    session, policy, username="official", client_ip="203.0.113.7", now=now
                )
        except TooManyRequests as exc:
            waits.append(exc.retry_after)
            now += dt.timedelta(seconds=exc.retry_after)
    # Failures 1-5 pass; from the 5th on each locks the pair, doubling up to 15 minutes.
    assert waits == [30, 60, 120, 240, 480, 900, 900]
    # Another address is not delayed at all.
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await reserve_login_attempt(session, policy, username="official", client_ip="10.1.2.3", now=now)
