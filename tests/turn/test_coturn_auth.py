"""Credentials minted by Maeul against a real coturn (use-auth-secret): accepted, and relaying;
forged or expired ones refused; an open relay outlives its credential (what the TTL argument in
docs/turn.md rests on). Run in a loopback-only namespace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aioice import stun
from aioice.turn import TurnTransport, create_turn_endpoint

from server.config import SecretStr
from server.signaling.ice import TurnCredential, turn_credential
from tests.sfu.sfu_testkit import wait_until
from tests.turn.coturn import Coturn, coturn

pytestmark = pytest.mark.network


class Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)


class Echo(asyncio.DatagramProtocol):
    """The peer behind the relay: sends every datagram back."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


@pytest.fixture
async def echo_peer() -> AsyncIterator[tuple[str, int]]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Echo, local_addr=("127.0.0.1", 0)
    )
    yield transport.get_extra_info("sockname")
    transport.close()


async def allocate(
    server: Coturn, credential: TurnCredential, transport: str, lifetime: int = 600
) -> tuple[TurnTransport, Inbox]:
    return await create_turn_endpoint(
        Inbox,
        (server.host, server.port),
        credential.username,
        credential.credential,
        lifetime=lifetime,
        transport=transport,
    )


async def round_trip(relay: TurnTransport, inbox: Inbox, peer: tuple[str, int], payload: bytes) -> None:
    relay.sendto(payload, peer)
    await wait_until(lambda: payload in inbox.received, 10, f"{payload!r} relayed to the peer and back")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_minted_credential_allocates_and_relays(
    turn_server: Coturn, echo_peer: tuple[str, int], transport: str
) -> None:
    minted = turn_credential(SecretStr(turn_server.secret), "k12", 600, now=time.time())
    relay, inbox = await allocate(turn_server, minted, transport)
    try:
        host, port = relay.get_extra_info("sockname")
        low, high = turn_server.relay_ports
        assert host == turn_server.host and low <= port <= high
        await round_trip(relay, inbox, echo_peer, b"hello from the hall")
    finally:
        relay.close()
    # coturn logs who it relays for (expiry:participant), so a session is traceable to a hall.
    assert f"username=<{minted.username}>" in turn_server.log()
    assert turn_server.secret not in turn_server.log() and minted.credential not in turn_server.log()


async def test_forged_and_expired_credentials_are_refused(turn_server: Coturn) -> None:
    now = time.time()
    forged = turn_credential(SecretStr("not-the-county-secret-" + "x" * 20), "k12", 600, now=now)
    genuine = turn_credential(SecretStr(turn_server.secret), "k12", 600, now=now)
    tampered = TurnCredential(genuine.username.replace("k12", "k13"), genuine.credential, genuine.expires_at)
    expired = turn_credential(SecretStr(turn_server.secret), "k12", 60, now=now - 120)
    for bad in (forged, tampered, expired):
        for transport in ("udp", "tcp"):
            with pytest.raises(stun.TransactionFailed) as refused:
                await allocate(turn_server, bad, transport)
            assert refused.value.response.attributes["ERROR-CODE"][0] == 401


async def test_an_open_relay_outlives_its_credential(tmp_path: Path, echo_peer: tuple[str, int]) -> None:
    """coturn checks the expiry when a session first authenticates, not on Refresh: a call relayed
    through TURN is not cut when the credential it started with expires."""
    # Short allocation lifetime so the client must Refresh after the credential has expired.
    with coturn(tmp_path / "coturn", extra_args=["--max-allocate-lifetime=6"]) as server:
        minted = turn_credential(SecretStr(server.secret), "k12", 2, now=time.time())
        relay, inbox = await allocate(server, minted, "udp", lifetime=6)
        try:
            await round_trip(relay, inbox, echo_peer, b"before expiry")
            await wait_until(lambda: time.time() > minted.expires_at + 1, 10, "the credential to expire")
            await wait_until(
                lambda: server.log().count("REFRESH processed, success") >= 1, 15, "a Refresh after expiry"
            )
            await round_trip(relay, inbox, echo_peer, b"after expiry and a refresh")
            # ...while a new allocation with the same, now expired, credential is refused.
            with pytest.raises(stun.TransactionFailed):
                await allocate(server, minted, "udp")
        finally:
            relay.close()
