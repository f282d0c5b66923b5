"""/metrics: what it counts (on both databases) and who may read it."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from unittest import mock

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.config import ConfigError, SecretStr, Settings
from server.db import transaction, utcnow
from server.kiosks.fleet import record_heartbeat
from server.ops.metrics import may_scrape
from server.ops.views import metrics_endpoint
from server.petitions.models import Petition
from tests.conftest import World, make_settings
from tests.kiosk_ref import make_kiosk
from tests.meetings.conftest import file_petition

TOKEN = "scrape-" + "t" * 40


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format (labels matched exactly), or None."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


async def test_metrics_count_kiosks_requests_and_routes_by_template(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")
    await make_kiosk(sessionmaker, world.village_ids[1], "사당리 마을회관")  # never beats: offline
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await record_heartbeat(session, kiosk.id, {"camera": True}, "0.1.0")
        late = await file_petition(session, kiosk, "가로등 고장")
        await file_petition(session, kiosk, "마을 안길 포장")
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await session.execute(
            update(Petition).where(Petition.id == late).values(due_at=utcnow() - dt.timedelta(days=1))
        )
    # Two requests on a templated route with different ids, one on no route at all.
    for call_id in (101, 202):
        await client.get(f"/api/v1/kiosk/duty-calls/{call_id}")
    await client.get("/no/such/page/12345")

    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = await response.text()

    assert sample(text, "maeul_kiosks", state="online") == 1
    assert sample(text, "maeul_kiosks", state="offline") == 1
    assert sample(text, "maeul_requests", status="received") == 2
    assert sample(text, "maeul_requests_overdue") == 1
    assert sample(text, "maeul_db_pool_in_use") is not None
    assert sample(text, "maeul_metrics_database_ok") == 1
    templated = sample(
        text,
        "maeul_http_request_duration_seconds_count",
        method="GET",
        route="/api/v1/kiosk/duty-calls/{call_id}",
        status="401",
    )
    assert templated == 2
    assert (
        sample(
            text, "maeul_http_request_duration_seconds_count", method="GET", route="unmatched", status="404"
        )
        == 1
    )
    # The raw paths never become label values (unbounded series, and ids are nobody's business).
    assert "/duty-calls/101" not in text and "12345" not in text
    # Nothing live yet: the media plane's families are there, at zero.
    assert sample(text, "maeul_rooms") == 0
    assert sample(text, "maeul_participants", kind="kiosk") == 0


async def test_scrape_needs_the_token_when_it_did_not_come_from_loopback_itself(
    world: World, tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    settings = make_settings(db_url, tmp_path / "data", metrics_token=SecretStr(TOKEN))
    client = await aiohttp_client(create_app(settings))
    # Through a proxy on this host the peer is loopback, but the caller is whoever the proxy served.
    # (allow_redirects=False: aiohttp's client retries a 401 carrying WWW-Authenticate)
    proxied = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, allow_redirects=False)
    assert proxied.status == 401
    assert proxied.headers["WWW-Authenticate"].startswith("Bearer")
    assert "maeul_" not in await proxied.text()
    wrong = await client.get(
        "/metrics",
        headers={"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer nope"},
        allow_redirects=False,
    )
    assert wrong.status == 401
    right = await client.get(
        "/metrics", headers={"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {TOKEN}"}
    )
    assert right.status == 200
    assert "maeul_rooms" in await right.text()


async def test_a_peer_off_loopback_is_refused_without_the_token(settings: Settings) -> None:
    """The real handler, with the TCP peer a county PC on the LAN would have."""
    app = create_app(settings)
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        ("192.0.2.7", 40000) if name == "peername" else default
    )
    request = make_mocked_request("GET", "/metrics", app=app, transport=transport)
    response = await metrics_endpoint(request)
    assert response.status == 401


@pytest.mark.parametrize(
    ("peer", "headers", "token", "allowed"),
    [
        ("127.0.0.1", [], None, True),
        ("::1", [], None, True),
        ("127.0.0.1", [("X-Forwarded-For", "127.0.0.1")], None, False),
        ("127.0.0.1", [("Forwarded", "for=198.51.100.1")], None, False),
        ("192.0.2.7", [], None, False),
        ("192.0.2.7", [("Authorization", f"Bearer {TOKEN}")], None, False),  # no token configured
        ("192.0.2.7", [("Authorization", f"Bearer {TOKEN}")], TOKEN, True),
        ("192.0.2.7", [("Authorization", f"bearer {TOKEN}")], TOKEN, True),
        ("192.0.2.7", [("Authorization", f"Basic {TOKEN}")], TOKEN, False),
        ("192.0.2.7", [("Authorization", f"Bearer {TOKEN}x")], TOKEN, False),
        ("::ffff:192.0.2.7", [], None, False),
        (None, [], None, False),  # a Unix socket
        ("not-an-address", [], None, False),
    ],
)
def test_who_may_scrape(
    peer: str | None, headers: list[tuple[str, str]], token: str | None, allowed: bool
) -> None:
    assert may_scrape(peer, headers, token) is allowed


def test_a_short_metrics_token_is_refused_at_start_up(tmp_path: Path) -> None:
    env = {"MAEUL_DATA_DIR": str(tmp_path), "MAEUL_METRICS_TOKEN": "short"}
    with pytest.raises(ConfigError, match="MAEUL_METRICS_TOKEN"):
        Settings.from_env(env)
    assert Settings.from_env(env | {"MAEUL_METRICS_TOKEN": TOKEN}).metrics_token == SecretStr(TOKEN)
    assert Settings.from_env({"MAEUL_DATA_DIR": str(tmp_path)}).metrics_token is None


async def test_a_scrape_during_a_database_outage_still_answers(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]], caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on the database's port: the latency and media numbers still come, with
    maeul_metrics_database_ok 0 (and no 500, no traceback)."""
    url = "postgresql+asyncpg://maeul:x@127.0.0.1:9/maeul"  # the discard port: refused at once
    client = await aiohttp_client(create_app(make_settings(url, tmp_path / "data")))
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    assert sample(text, "maeul_metrics_database_ok") == 0
    assert sample(text, "maeul_rooms") == 0
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name in ("server.ops.views", "server.ops.metrics")
    ]
