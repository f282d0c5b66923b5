"""Socket fuzz: random event names (the registered ones, reserved ones such as ``connect`` and
``disconnect``, unknown and non-string ones) with random payloads, from a kiosk and an official
that are in a meeting room. The server must answer every acknowledged event with a result or a
structured error, log no error and no "Task exception was never retrieved", keep both participants
in the room (no client-sent ``disconnect`` takes anyone out) and still answer ``whoami``."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.keys import ROOM_HUB, SIO
from server.signaling.guard import RESERVED_EVENTS
from tests.conftest import World, enrolled_kiosk, logged_errors
from tests.signaling.signaling_kit import Admin, Participant, session_cookie

SEED = 20261203
ROUNDS = 150


def _payload(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**31, 2**63, 1.5, float("inf")])
    if kind == 2:
        return rng.choice(["", "x" * rng.randrange(2000), "v=0\r\n", "\x00", "한글", "{}", "aiohttp.request"])
    if kind == 3:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    if kind == 4:
        return {
            "room_id": rng.choice([1, 0, -5, "1", None, 2**40]),
            "resume": rng.choice([None, "", "x" * 80]),
        }
    if kind == 5:
        return {"action": rng.choice(["end", "remove", "agenda", "admit", "nope"]), "participant_id": "k1"}
    if kind == 6:
        return [_payload(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 7:
        keys = ["sdp", "type", "candidate", "jpeg", "raised", "active", "publisher_ids", "token", "environ"]
        return {rng.choice(keys): _payload(rng, depth + 1) for _ in range(rng.randrange(4))}
    return {"aiohttp.request": _payload(rng, depth + 1), "HTTP_COOKIE": "maeul_session=x"}


def _event(rng: random.Random, registered: list[str]) -> Any:
    pick = rng.randrange(10)
    if pick < 4:
        return rng.choice(sorted(RESERVED_EVENTS))
    if pick < 8:
        return rng.choice(registered)
    if pick == 8:
        return rng.choice(["", "x" * 300, "__proto__", "message", "error", "connect ", "Disconnect"])
    return rng.choice([5, None, 1.5])  # not a string at all


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
async def test_socket_fuzz_keeps_the_server_and_the_room_whole(
    seed: int,
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = random.Random(seed)
    kiosk_id, token = await enrolled_kiosk(sessionmaker, world.village_ids[0])
    admin = await Admin(client, world).login()
    room = await admin.room("사랑방", account_ids=[world.official_id], kiosk_ids=[kiosk_id])
    hall = await Participant("hall", client, token=token).connect()
    official = await Participant(
        "official", client, cookie=await session_cookie(client, "official")
    ).connect()
    try:
        await hall.join(room)
        await official.join(room)
        registered = sorted(set(client.app[SIO].handlers["/"]) - {"*", "join", "leave"})
        for _ in range(ROUNDS):
            sender = rng.choice([hall, official])
            event, data = _event(rng, registered), _payload(rng)
            if rng.random() < 0.5:
                await sender.sock.emit(event, data)
                continue
            ack = await sender.sock.call(event, data, timeout=15)
            assert isinstance(ack, dict), (event, ack)
            if "error" in ack:
                assert set(ack["error"]) >= {"code", "message"}, ack
        await asyncio.sleep(0.2)  # what was emitted without an ack is handled by now
        assert hall.sock.connected and official.sock.connected
        assert sorted(m.pid for m in client.app[ROOM_HUB].members.values()) == sorted(
            [hall.pid, official.pid]
        )
        assert (await hall.call("whoami"))["id"] == kiosk_id
        assert (await official.call("whoami"))["id"] == world.official_id
        assert "reserved_event" in hall.errors() + official.errors()
        assert logged_errors(caplog) == []
        assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    finally:
        await hall.close()
        await official.close()
