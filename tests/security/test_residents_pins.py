"""Issue 12 item 1: the receipt + PIN check cannot be beaten by concurrency, spraying or timing.

Every test counts the Argon2 work really done (``receipts.verify_pin`` for a stored hash,
``receipts.hash_pin`` for a receipt that does not exist) by wrapping the real functions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.petitions import receipts
from tests.conftest import World
from tests.kiosk_ref import KioskRef, make_kiosk
from tests.petitions.conftest import Reply, file_json, kiosk_call

STATUS = "/api/v1/kiosk/petitions/status"


class Counter:
    """Counts calls of a real function (and still runs it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.calls = 0
        real = getattr(receipts, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(receipts, name, counted)


def other_pin(pin: str, offset: int) -> str:
    return f"{(int(pin) + offset) % 10000:04d}"


async def four_kiosks(sessionmaker: Callable[[], AsyncSession], world: World) -> list[KioskRef]:
    """Kiosks of two villages, so that no one kiosk's limit is what stops a burst."""
    return [await make_kiosk(sessionmaker, world.village_ids[i % 2], f"회관 {i}") for i in range(4)]


async def check(client: TestClient, kiosk: KioskRef, receipt: str, pin: str) -> Reply:
    return await kiosk_call(client, kiosk, "POST", STATUS, json_body={"receipt_no": receipt, "pin": pin})


async def test_thirty_simultaneous_guesses_run_at_most_five_verifications(
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kiosks = await four_kiosks(sessionmaker, world)
    filed = await file_json(client, kiosks[0])
    assert filed.status == 201, filed.body
    receipt, pin = filed.body["petition"]["receipt_no"], filed.body["pin"]
    verified = Counter(monkeypatch, "verify_pin")

    # From several kiosks at once, so the per-kiosk limit is not what stops them.
    replies = await asyncio.gather(
        *(check(client, kiosks[i % 4], receipt, other_pin(pin, 1 + i)) for i in range(30))
    )

    statuses = sorted(r.status for r in replies)
    assert verified.calls == 5
    assert statuses == [403] * 5 + [429] * 25
    assert all(int(r.headers["Retry-After"]) > 0 for r in replies if r.status == 429)
    # Locked: even the right PIN is refused now, without being verified.
    assert (await check(client, kiosks[1], receipt, pin)).status == 429
    assert verified.calls == 5


async def test_simultaneous_guesses_with_the_right_pin_verify_at_most_five(
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kiosks = await four_kiosks(sessionmaker, world)
    filed = await file_json(client, kiosks[0])
    receipt, pin = filed.body["petition"]["receipt_no"], filed.body["pin"]
    verified = Counter(monkeypatch, "verify_pin")
    guesses = [other_pin(pin, i) for i in range(20)]  # guesses[0] is the right PIN

    replies = await asyncio.gather(*(check(client, kiosks[i % 4], receipt, g) for i, g in enumerate(guesses)))

    assert verified.calls == 5
    assert sum(r.status in (200, 403) for r in replies) == 5
    assert sum(r.status == 429 for r in replies) == 15


async def test_one_kiosk_cannot_spray_a_pin_across_receipts(
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    other = await make_kiosk(sessionmaker, world.village_ids[1])
    filed = [await file_json(client, other, title=f"요청 {i}") for i in range(12)]
    verified = Counter(monkeypatch, "verify_pin")

    # The same PIN on twelve receipts, all at once: each receipt sees one guess only.
    replies = await asyncio.gather(
        *(check(client, kiosk, f.body["petition"]["receipt_no"], other_pin(f.body["pin"], 1)) for f in filed)
    )

    assert sorted(r.status for r in replies) == [403] * 10 + [429] * 2
    assert verified.calls == 10
    # Another kiosk is not locked out by this one, and a right PIN costs it nothing.
    ok = await check(client, other, filed[0].body["petition"]["receipt_no"], filed[0].body["pin"])
    assert ok.status == 200, ok.body


async def test_the_receipt_space_as_a_whole_takes_thirty_wrong_guesses_an_hour(
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kiosks = await four_kiosks(sessionmaker, world)
    hashed = Counter(monkeypatch, "hash_pin")
    # 4 kiosks x 8 receipts that were never issued: under every kiosk's and receipt's limit.
    guesses = [(kiosks[k], f"강진-2026-{90000 + 8 * k + n:05d}") for k in range(4) for n in range(8)]

    replies = await asyncio.gather(*(check(client, kiosk, receipt, "1234") for kiosk, receipt in guesses))

    assert sorted(r.status for r in replies) == [403] * 30 + [429] * 2
    assert {r.body["error"]["code"] for r in replies if r.status == 429} == {"pin_locked"}
    assert hashed.calls == 30


async def test_a_receipt_that_does_not_exist_costs_an_argon2_hash(
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    hashed = Counter(monkeypatch, "hash_pin")
    verified = Counter(monkeypatch, "verify_pin")

    reply = await check(client, kiosk, "강진-2026-99999", "1234")

    assert reply.status == 403 and reply.body["error"]["code"] == "pin_mismatch"
    assert (hashed.calls, verified.calls) == (1, 0)


async def test_a_right_pin_gives_the_kiosk_its_attempt_back(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    filed = [await file_json(client, kiosk, title=f"요청 {i}") for i in range(3)]
    # A village checking its own receipts all day never reaches the kiosk's limit of 10 guesses.
    for f in filed:
        for _ in range(4):
            reply = await check(client, kiosk, f.body["petition"]["receipt_no"], f.body["pin"])
            assert reply.status == 200, reply.body
    wrong = await check(
        client, kiosk, filed[0].body["petition"]["receipt_no"], other_pin(filed[0].body["pin"], 1)
    )
    assert wrong.status == 403
    # The receipt itself counts every check: its fifth is the last in the window.
    again = await check(client, kiosk, filed[0].body["petition"]["receipt_no"], filed[0].body["pin"])
    assert again.status == 429 and again.body["error"]["code"] == "pin_locked"
