"""A filing is one transaction: its petition, key claim, media rows and the kiosk's filing
reservation commit together (one fsynced commit on SQLite), and nothing is read after it.

Why it matters (issue 16 item 4): every commit of a filing costs an fsync on SQLite and round
trips on PostgreSQL, and the receipt counter's lock is held from the first statement to the
commit. Folding the reservation into the filing also changes what a refused or resent filing
counts, which the last tests pin down (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from server.app import create_app
from server.keys import ENGINE
from tests.conftest import World, make_settings
from tests.kiosk_ref import make_kiosk
from tests.petitions.conftest import Kiosk, file_json
from tests.petitions.test_idempotency import send

ClientFactory = Callable[..., Awaitable[TestClient]]

# The tables a filing writes (the device token's ``last_seen_at`` is the authentication's own).
FILING_TABLES = (
    "petitions",
    "petition_counters",
    "petition_filing_keys",
    "petition_media",
    "petition_events",
    "petition_pin_throttle",
)


@dataclass
class Transaction:
    statements: list[str] = field(default_factory=list)
    ended_by: str = ""

    def writes(self) -> list[str]:
        return [s for s in self.statements if s.split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")]

    def touches(self, table: str) -> bool:
        return any(_table_of(s) == table for s in self.statements)


def _table_of(statement: str) -> str:
    words = statement.replace('"', "").split()
    verb = words[0].upper()
    if verb == "INSERT":
        return words[2]
    if verb == "UPDATE":
        return words[1]
    if verb == "DELETE":
        return words[2]
    return words[words.index("FROM") + 1] if "FROM" in words else ""


@contextmanager
def recorded(engine: AsyncEngine) -> Iterator[list[Transaction]]:
    """Every transaction the engine runs meanwhile, with its statements, in order."""
    seen: list[Transaction] = []
    open_by_connection: dict[int, Transaction] = {}

    def begin(conn: Any) -> None:
        open_by_connection[id(conn)] = transaction = Transaction()
        seen.append(transaction)

    def statement(conn: Any, _cursor: Any, text: str, *_args: Any) -> None:
        transaction = open_by_connection.get(id(conn))
        if transaction is None:  # outside a transaction (a pool ping)
            return
        transaction.statements.append(" ".join(text.split()))

    def end(how: str) -> Callable[[Any], None]:
        def ended(conn: Any) -> None:
            transaction = open_by_connection.pop(id(conn), None)
            if transaction is not None:
                transaction.ended_by = how

        return ended

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("begin", begin),
        ("before_cursor_execute", statement),
        ("commit", end("commit")),
        ("rollback", end("rollback")),
    ]
    for name, listener in listeners:
        event.listen(engine.sync_engine, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners:
            event.remove(engine.sync_engine, name, listener)


def filing_transactions(seen: list[Transaction]) -> list[Transaction]:
    """The transactions that write what a filing writes."""
    return [t for t in seen if {_table_of(s) for s in t.writes()} & set(FILING_TABLES)]


async def test_a_filing_with_a_message_commits_once_and_reads_nothing_afterwards(
    client: TestClient, kiosk: Kiosk, voice_clip: bytes
) -> None:
    with recorded(client.app[ENGINE]) as seen:
        filed = await send(client, kiosk, str(uuid.uuid4()), media=voice_clip, body="")
    assert filed.status == 201, filed.body
    # The receipt shows what it did before (village, department, media): loaded in the filing.
    assert filed.body["petition"]["village"] and filed.body["petition"]["receipt_no"]

    [filing] = filing_transactions(seen)
    assert filing.ended_by == "commit"
    written = {_table_of(s) for s in filing.writes()}
    assert written == set(FILING_TABLES), filing.writes()
    # The counter's UPDATE is the first statement: on SQLite it takes the write lock before any
    # read, so no filing works from a stale snapshot.
    assert _table_of(filing.statements[0]) == "petition_counters"
    assert filing.statements[0].upper().startswith("UPDATE")
    assert seen[-1] is filing  # nothing after the commit
    # Before it only reads: the check that the kiosk's limit is not used up before the upload.
    assert all(not t.writes() for t in seen if t is not filing and t.touches("petition_pin_throttle"))


async def test_a_json_filing_commits_once(client: TestClient, kiosk: Kiosk) -> None:
    with recorded(client.app[ENGINE]) as seen:
        filed = await file_json(client, kiosk)
    assert filed.status == 201, filed.body
    [filing] = filing_transactions(seen)
    assert filing.ended_by == "commit"
    assert {_table_of(s) for s in filing.writes()} == set(FILING_TABLES) - {
        "petition_media",
        "petition_filing_keys",
    }
    assert seen[-1] is filing


async def limited(aiohttp_client: ClientFactory, db_url: str, tmp_path: Path, per_hour: int) -> TestClient:
    return await aiohttp_client(
        create_app(make_settings(db_url, tmp_path / "data", kiosk_filings_per_hour=per_hour))
    )


async def test_a_resend_gets_its_receipt_even_when_the_limit_is_used_up(
    aiohttp_client: ClientFactory,
    db_url: str,
    tmp_path: Path,
    world: World,
    sessionmaker: Any,
    voice_clip: bytes,
) -> None:
    client = await limited(aiohttp_client, db_url, tmp_path, per_hour=1)
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    key = str(uuid.uuid4())
    first = await send(client, kiosk, key, media=voice_clip, body="")
    # The 201 was lost; the limit is used up by the first send. Checked before the upload and in
    # the transaction.
    again = await send(client, kiosk, key, media=voice_clip, body="")
    new = await send(client, kiosk, str(uuid.uuid4()))
    assert (first.status, again.status, new.status) == (201, 201, 429), (again.body, new.body)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.body["petition"]["receipt_no"] == first.body["petition"]["receipt_no"]
    assert new.body["error"]["code"] == "filing_rate_limited"


async def test_a_kiosk_past_its_limit_is_refused_before_its_message_is_stored(
    aiohttp_client: ClientFactory,
    db_url: str,
    tmp_path: Path,
    world: World,
    sessionmaker: Any,
    voice_clip: bytes,
) -> None:
    client = await limited(aiohttp_client, db_url, tmp_path, per_hour=1)
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    assert (await file_json(client, kiosk)).status == 201
    refused = await send(client, kiosk, str(uuid.uuid4()), media=voice_clip, body="")
    assert refused.status == 429, refused.body
    assert refused.body["error"]["code"] == "filing_rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    media_dir = tmp_path / "data" / "media"
    assert not [p for p in media_dir.rglob("*") if p.is_file()]


async def test_a_filing_refused_in_its_transaction_takes_nothing_from_the_limit(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path, world: World, sessionmaker: Any
) -> None:
    client = await limited(aiohttp_client, db_url, tmp_path, per_hour=1)
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0])
    # Refused inside the filing transaction (after the reservation's statement would have run in
    # the old order): the whole transaction rolls back, the reservation with it.
    unknown = await file_json(client, kiosk, department_id=999_999)
    assert unknown.status == 400 and unknown.body["error"]["code"] == "unknown_department"
    assert (await file_json(client, kiosk)).status == 201
    assert (await file_json(client, kiosk)).status == 429
