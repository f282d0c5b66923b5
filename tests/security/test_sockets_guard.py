"""The gate in front of every socket event (issue 12, items 6, 7, 13 and 15): reserved event names
never reach a handler; a revoked kiosk (also by ``run.py revoke-kiosk`` against a running server), a
logout, an expired login session and a deactivated account close their sockets; at most
``sockets_per_principal`` sockets per kiosk or account, however many connect at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.auth.models import Account, LoginSession
from server.config import PROJECT_ROOT, Settings
from server.db import transaction
from server.keys import ROOM_HUB
from server.kiosks import service as kiosks
from server.signaling.guard import RESERVED_EVENTS, SocketServer
from tests.conftest import World, enrolled_kiosk, logged_errors, login, make_settings
from tests.signaling.signaling_kit import Admin, Participant, base_url, session_cookie, wait_until

Sessionmaker = Callable[[], AsyncSession]
MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(
    db_url: str, tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> MakeClient:
    async def make(**overrides: Any) -> TestClient:
        return await aiohttp_client(create_app(make_settings(db_url, tmp_path / "data", **overrides)))

    return make


@pytest.fixture
async def sockets() -> AsyncIterator[list[Participant]]:
    made: list[Participant] = []
    yield made
    for p in made:
        await p.close()


async def connect(
    made: list[Participant], client: TestClient, *, token: str | None = None, cookie: str | None = None
) -> Participant:
    p = Participant("p", client, token=token, cookie=cookie)
    p.sock.on("revoked", p._recorder("revoked"))
    made.append(p)
    return await p.connect()


async def hall_and_room(
    make_client: MakeClient, world: World, sessionmaker: Sessionmaker, **settings: Any
) -> tuple[TestClient, int, str, int]:
    """A server (``settings`` overridden), an enrolled kiosk of village A and a room it is invited
    to: (client, kiosk id, device token, room id)."""
    client = await make_client(**settings)
    kiosk_id, token = await enrolled_kiosk(sessionmaker, world.village_ids[0])
    admin = await Admin(client, world).login()
    return client, kiosk_id, token, await admin.room("사랑방", kiosk_ids=[kiosk_id])


def test_the_gate_sits_on_the_method_socketio_dispatches_events_through() -> None:
    # The override is only a gate while python-socketio still routes every client event through it.
    assert "_handle_event" in vars(socketio.AsyncServer)
    assert "_handle_event" in vars(SocketServer)


async def test_reserved_event_names_never_reach_a_handler(
    make_client: MakeClient,
    world: World,
    sessionmaker: Sessionmaker,
    sockets: list[Participant],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, kiosk_id, token, room = await hall_and_room(make_client, world, sessionmaker)
    hall = await connect(sockets, client, token=token)
    await hall.join(room)
    hub = client.app[ROOM_HUB]
    assert len(hub.members) == 1

    # What the fuzz found: the client's data reached the connect handler as ``environ`` (TypeError)
    # and a client "disconnect" took the hall out of its meeting.
    for name in sorted(RESERVED_EVENTS):
        await hall.sock.emit(name, ["x", {"aiohttp.request": 1}])
        await hall.sock.emit(name, {"token": token})
    await hall.sock.emit("disconnect", "server disconnect")
    await wait_until(lambda: hall.errors().count("reserved_event") == 2 * len(RESERVED_EVENTS) + 1)

    assert len(hub.members) == 1 and hall.sock.connected
    ack = await hall.call("whoami")
    assert ack["role"] == "kiosk" and ack["id"] == kiosk_id
    assert not [e for e in hall.errors() if e != "reserved_event"]
    assert logged_errors(caplog) == []
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_sockets_per_kiosk_and_account_are_capped_under_concurrency(
    make_client: MakeClient, world: World, sessionmaker: Sessionmaker, sockets: list[Participant]
) -> None:
    client = await make_client(sockets_per_principal=4)
    _, token = await enrolled_kiosk(sessionmaker, world.village_ids[0])
    _, other_token = await enrolled_kiosk(sessionmaker, world.village_ids[1], "사당리")
    cookie = await session_cookie(client, "official")
    cookie2 = await session_cookie(client, "official")  # a second login of the same account

    async def attempt(**credential: str) -> Participant | None:
        try:
            return await connect(sockets, client, **credential)
        except socketio.exceptions.ConnectionError:
            return None

    # Sixteen sockets of one kiosk token at once (the review opened 16): four get in.
    opened = await asyncio.gather(*(attempt(token=token) for _ in range(16)))
    assert sum(p is not None for p in opened) == 4
    # Another kiosk is not affected.
    assert await attempt(token=other_token) is not None
    # Per account, across its login sessions.
    accounts = await asyncio.gather(*(attempt(cookie=c) for c in [cookie, cookie2] * 5))
    assert sum(p is not None for p in accounts) == 4

    # A closed socket frees its place.
    first = next(p for p in opened if p is not None)
    await first.close()
    await wait_until(lambda: sum(1 for p in opened if p is not None and p.sock.connected) == 3)
    assert await attempt(token=token) is not None
    assert await attempt(token=token) is None


async def test_a_kiosk_revoked_in_the_database_is_refused_and_disconnected(
    make_client: MakeClient, world: World, sessionmaker: Sessionmaker, sockets: list[Participant]
) -> None:
    """Revoked behind the server's back (another process): no push reaches this one."""
    client, kiosk_id, token, room = await hall_and_room(
        make_client, world, sessionmaker, socket_recheck_seconds=300
    )
    hall = await connect(sockets, client, token=token)
    assert (await hall.call("whoami"))["id"] == kiosk_id
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await kiosks.revoke(session, kiosk_id)

    # The recheck interval has not passed, but a join always asks the database.
    ack = await hall.call("join", {"room_id": room})
    assert ack["error"]["code"] == "kiosk_revoked"
    await asyncio.wait_for(hall.disconnected.wait(), 10)
    assert hall.got("revoked") == [{"code": "kiosk_revoked", "message": "sign in or enroll again"}]
    assert client.app[ROOM_HUB].members == {}
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(sockets, client, token=token)


async def test_any_event_after_the_recheck_interval_finds_the_revocation(
    make_client: MakeClient, world: World, sessionmaker: Sessionmaker, sockets: list[Participant]
) -> None:
    client, kiosk_id, token, room = await hall_and_room(
        make_client, world, sessionmaker, socket_recheck_seconds=1
    )
    busy = await connect(sockets, client, token=token)
    idle = await connect(sockets, client, token=token)
    await idle.join(room)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        kiosk = await kiosks.revoke(session, kiosk_id)
        # Re-enrolled on another device afterwards: the old token must stay refused all the same.
        await kiosks.issue_enrollment_code(session, kiosk, dt.timedelta(hours=1))

    async def refused() -> bool:
        if not busy.sock.connected:
            return True
        try:
            ack = await busy.sock.call("whoami", timeout=5)
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
            return True  # closed by the sweep meanwhile
        return "error" in ack and ack["error"]["code"] == "kiosk_revoked"

    deadline = asyncio.get_running_loop().time() + 15
    while not await refused():
        assert asyncio.get_running_loop().time() < deadline, "the revoked kiosk kept answering"
        await asyncio.sleep(0.2)
    # The idle one (in a meeting, sending no events) is closed by the sweep and leaves the room.
    await asyncio.wait_for(idle.disconnected.wait(), 15)
    assert idle.got("revoked")[0]["code"] == "kiosk_revoked"
    await wait_until(lambda: client.app[ROOM_HUB].members == {})


async def test_run_py_revoke_kiosk_reaches_the_running_server(
    settings: Settings, world: World, sessionmaker: Sessionmaker, tmp_path: Path
) -> None:
    """The operator's command, in its own process, against a server listening on loopback."""
    from aiohttp import web

    app = create_app(make_settings(settings.database_url, settings.data_dir, socket_recheck_seconds=1))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    kiosk_id, token = await enrolled_kiosk(sessionmaker, world.village_ids[0])
    sock = socketio.AsyncClient(reconnection=False)
    revoked: list[Any] = []
    gone = asyncio.Event()
    sock.on("revoked", lambda data: revoked.append(data))
    sock.on("disconnect", lambda *args: gone.set())
    try:
        await sock.connect(f"http://{host}:{port}", auth={"token": token}, transports=["websocket"])
        assert (await sock.call("whoami", timeout=5))["id"] == kiosk_id
        env = {
            **os.environ,
            "MAEUL_DATABASE_URL": settings.database_url,
            "MAEUL_DATA_DIR": str(tmp_path / "cli"),
            "MAEUL_LOG_JSON": "true",
        }
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            str(PROJECT_ROOT / "run.py"),
            "revoke-kiosk",
            "--id",
            str(kiosk_id),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(cli.communicate(), 60)
        assert cli.returncode == 0, err.decode()
        assert f"kiosk {kiosk_id}" in out.decode()
        await asyncio.wait_for(gone.wait(), 15)
        assert revoked == [{"code": "kiosk_revoked", "message": "sign in or enroll again"}]
    finally:
        if sock.connected:
            await sock.disconnect()
        await runner.cleanup()


@pytest.mark.parametrize("how", ["form", "api"])
async def test_logout_closes_the_sockets_of_that_login_session_only(
    how: str, make_client: MakeClient, world: World, sockets: list[Participant]
) -> None:
    client = await make_client(socket_recheck_seconds=300)  # only the push can close it in time
    csrf = await login(client, "official")
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["maeul_session"].value
    other_login = await session_cookie(client, "official")
    page = await connect(sockets, client, cookie=cookie)
    other = await connect(sockets, client, cookie=other_login)
    if how == "form":
        response = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
        assert response.status == 303, await response.text()
    else:
        response = await client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
        assert response.status == 200, await response.text()
    await asyncio.wait_for(page.disconnected.wait(), 10)
    assert page.got("revoked")[0]["code"] == "session_ended"
    assert other.sock.connected and (await other.call("whoami"))["id"] == world.official_id
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(sockets, client, cookie=cookie)


@pytest.mark.parametrize("change", ["expired", "deactivated", "moved_department"])
async def test_session_expiry_and_account_changes_close_sockets(
    change: str,
    make_client: MakeClient,
    world: World,
    sessionmaker: Sessionmaker,
    sockets: list[Participant],
) -> None:
    client = await make_client(socket_recheck_seconds=1)
    page = await connect(sockets, client, cookie=await session_cookie(client, "official"))
    bystander = await connect(sockets, client, cookie=await session_cookie(client, "official2"))
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        if change == "expired":
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            await session.execute(
                update(LoginSession)
                .where(LoginSession.account_id == world.official_id)
                .values(expires_at=past)
            )
        else:
            account = await session.scalar(select(Account).where(Account.id == world.official_id))
            assert account is not None
            if change == "deactivated":
                account.is_active = False
            else:
                account.department_id = world.department_ids[2]
    await asyncio.wait_for(page.disconnected.wait(), 15)
    assert page.got("revoked")[0]["code"] == "session_ended"
    assert bystander.sock.connected and (await bystander.call("whoami"))["id"] == world.other_official_id


async def test_a_socket_io_client_without_credentials_is_refused(
    make_client: MakeClient, world: World
) -> None:
    client = await make_client()
    sock = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sock.connect(base_url(client), auth={"token": 5}, transports=["websocket"], wait_timeout=5)
