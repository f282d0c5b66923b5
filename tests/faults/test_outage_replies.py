"""While the database is down, every reply says so and what to do: pages in Korean (English on
request), the API with a stable code, Retry-After and a ``display`` text, socket events and socket
connects with a structured error; nothing is a 500 or an unanswered event. All of it works again
once the database is back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import World, logged_errors
from tests.kiosk_ref import make_kiosk
from tests.meetings.conftest import live_meeting
from tests.pg import PostgresServer
from tests.signaling.signaling_kit import Participant, base_url, session_cookie

KOREAN = "데이터베이스에 연결하지 못하고"


async def test_pages_and_api_say_what_to_do_while_the_database_is_down(
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    outage_pg: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    await asyncio.to_thread(outage_pg.stop, "immediate", check=True)

    page = await client.get("/kiosk", cookies={"maeul_kiosk": kiosk.token})
    assert page.status == 503
    assert page.headers["Retry-After"] == "5"
    html = await page.text()
    assert '<html lang="ko">' in html and KOREAN in html and "Traceback" not in html

    api = await client.get("/api/v1/me", headers=kiosk.headers)
    assert api.status == 503 and api.headers["Retry-After"] == "5"
    error = (await api.json())["error"]
    assert error["code"] == "database_unavailable" and KOREAN in error["display"]

    english = await client.get("/api/v1/me?lang=en", headers=kiosk.headers)
    assert (await english.json())["error"]["display"].startswith("The server cannot reach its database")
    assert (await client.get("/healthz")).status == 503

    await asyncio.to_thread(outage_pg.start)
    assert (await client.get("/api/v1/me", headers=kiosk.headers)).status == 200
    assert logged_errors(caplog) == []  # an outage is a warning per request, not an ERROR


async def test_socket_events_and_connects_get_a_structured_error_while_the_database_is_down(
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    outage_pg: PostgresServer,
) -> None:
    meeting = await live_meeting(sessionmaker, world)
    cookie = await session_cookie(client, "official")
    official = await Participant("official", client, cookie=cookie).connect()
    try:
        await asyncio.to_thread(outage_pg.stop, "immediate", check=True)
        ack = await official.call("join", {"room_id": meeting.room_id})
        assert ack["error"]["code"] == "database_unavailable", ack
        assert "database_unavailable" in official.errors()

        refused, reasons = socketio.AsyncClient(reconnection=False), []
        refused.on("connect_error", reasons.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(
                base_url(client),
                headers={"Cookie": f"maeul_session={official.cookie}"},
                transports=["websocket"],
                wait_timeout=10,
            )
        await refused.shutdown()
        # python-socketio hands the refusal's dict over as its text, like authentication_required's.
        assert len(reasons) == 1 and "'code': 'database_unavailable'" in reasons[0]["message"], reasons

        await asyncio.to_thread(outage_pg.start)
        ack = await official.call("join", {"room_id": meeting.room_id})
        assert "error" not in ack, ack
    finally:
        await official.close()


async def test_a_filing_that_cannot_reach_the_database_is_503_not_500(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession], outage_pg: PostgresServer
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    # The kiosk is authenticated on a pooled connection; the database then goes away under it.
    assert (await client.get("/api/v1/me", headers=kiosk.headers)).status == 200
    await asyncio.to_thread(outage_pg.stop, "immediate", check=True)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        response = await agent.post(
            client.make_url("/api/v1/kiosk/petitions"),
            json={"petition_type": "grievance", "body": "가로등이 고장났어요", "is_public": False},
            headers=kiosk.headers,
        )
        assert response.status == 503, await response.text()
        assert (await response.json())["error"]["code"] == "database_unavailable"
