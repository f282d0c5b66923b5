"""The production turnserver.conf from docs/turn.md, as written there (only addresses, paths and
a self-signed certificate substituted), in the link lab: coturn in the county namespace, a client
in a hall. Maeul's credentials open relays over UDP, TCP and TLS (turns:); the relay reaches the
Maeul server's address and nothing else."""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from aioice.turn import TurnTransport, create_turn_endpoint

from server.config import PROJECT_ROOT, SecretStr
from server.signaling.ice import turn_credential
from tests.lab.linklab import COUNTY, LinkLab
from tests.turn.coturn import Coturn, coturn

pytestmark = pytest.mark.network

HALL = 1
DOC_TURN_HOST, DOC_MAEUL = "203.0.113.10", "203.0.113.20"


def documented_config() -> str:
    text = (PROJECT_ROOT / "docs" / "turn.md").read_text()
    match = re.search(r"```ini\n(.*?)```", text, re.S)
    assert match, "docs/turn.md has no turnserver.conf block"
    return match.group(1)


def self_signed(workdir: Path, address: str) -> tuple[Path, Path]:
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=turn",
         "-addext", f"subjectAltName=IP:{address}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.errors: list[Exception] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)


class Echo(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.seen = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.seen += 1
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


async def echo_at(address: str) -> tuple[asyncio.DatagramTransport, Echo]:
    return await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=(address, 0))


async def until(cond: object, within: float) -> bool:
    deadline = time.monotonic() + within
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def hall_client(
    server: Coturn, cafile: Path, allowed: tuple[str, int], denied: tuple[str, int]
) -> None:
    """In the hall: allocate over each transport with a Maeul credential, relay to both peers."""
    minted = turn_credential(SecretStr(server.secret), "k1", 600, now=time.time())
    tls = ssl.create_default_context(cafile=str(cafile))
    for transport, port, context in (("udp", 3478, None), ("tcp", 3478, None), ("tcp", 5349, tls)):
        relay: TurnTransport
        relay, inbox = await create_turn_endpoint(
            Inbox, (server.host, port), minted.username, minted.credential, transport=transport, ssl=context
        )
        try:
            await check_relay(relay, inbox, allowed, denied, f"{transport}:{port}")
        finally:
            relay.close()


async def check_relay(
    relay: TurnTransport, inbox: Inbox, allowed: tuple[str, int], denied: tuple[str, int], what: str
) -> None:
    relay.sendto(b"to the Maeul server", allowed)
    assert await until(lambda: b"to the Maeul server" in inbox.received, 10), what
    relay.sendto(b"anywhere else", denied)
    assert await until(lambda: bool(inbox.errors), 10), f"{what} relayed to {denied}"
    assert "403" in str(inbox.errors[0])


async def test_documented_turnserver_conf_relays_to_maeul_only(tmp_path: Path) -> None:
    async with LinkLab(halls=1) as lab:
        county, hall = lab.county_address, lab.address(HALL)
        cert, key = self_signed(tmp_path, county)
        config = (
            documented_config()
            .replace(DOC_TURN_HOST, county)
            .replace(DOC_MAEUL, county)
            .replace("/etc/letsencrypt/live/turn.gangjin.example/fullchain.pem", str(cert))
            .replace("/etc/letsencrypt/live/turn.gangjin.example/privkey.pem", str(key))
            .replace("/var/log/turnserver/turnserver.log", str(tmp_path / "coturn" / "turnserver.log"))
            .replace("/run/turnserver/turnserver.pid", str(tmp_path / "coturn" / "turnserver.pid"))
        )
        assert "allow-loopback-peers\n" not in config.replace("# Never allow-loopback-peers", "")
        with coturn(
            tmp_path / "coturn",
            host=county,
            port=3478,
            command_prefix=lab.command(COUNTY, []),
            config_text=config,
        ) as server:
            allowed_transport, allowed_echo = await lab.run_in(COUNTY, echo_at(county))
            denied_transport, denied_echo = await lab.run_in(HALL, echo_at(hall))
            try:
                allowed = allowed_transport.get_extra_info("sockname")
                denied = denied_transport.get_extra_info("sockname")
                await lab.run_in(HALL, hall_client(server, cert, allowed, denied))
            finally:
                allowed_transport.close()
                denied_transport.close()
            assert allowed_echo.seen >= 3 and denied_echo.seen == 0
            log = server.log()
            assert "Forbidden IP" in log or "403" in log
            assert server.secret not in log
