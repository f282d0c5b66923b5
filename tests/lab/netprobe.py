"""Raw UDP probes that check the lab's links really are what they are configured to be: a paced
blast from one node to a sink on another, counting what arrives (run on the lab's node loops)."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass


@dataclass
class SinkResult:
    packets: int = 0
    bytes: int = 0
    first_at: float | None = None
    last_at: float | None = None

    def kbit_per_s(self) -> float:
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return 0.0
        return self.bytes * 8 / 1000 / (self.last_at - self.first_at)


class _Sink(asyncio.DatagramProtocol):
    def __init__(self, result: SinkResult) -> None:
        self.result = result

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.monotonic()
        if self.result.first_at is None:
            self.result.first_at = now
        self.result.last_at = now
        self.result.packets += 1
        self.result.bytes += len(data)


class UdpSink:
    """Bound on ``address:port`` until ``close()``; counts datagrams (payload bytes)."""

    def __init__(self) -> None:
        self.result = SinkResult()
        self._transport: asyncio.DatagramTransport | None = None

    async def open(self, address: str, port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Sink(self.result), local_addr=(address, port), family=socket.AF_INET
        )
        self._transport = transport
        return int(transport.get_extra_info("sockname")[1])

    async def close(self) -> SinkResult:
        if self._transport is not None:
            self._transport.close()
        return self.result


async def udp_blast(destination: str, port: int, *, kbit: float, seconds: float, size: int = 1000) -> int:
    """Send ``size``-byte datagrams paced at ``kbit`` for ``seconds``; returns packets sent."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=(destination, port), family=socket.AF_INET
    )
    interval = size * 8 / (kbit * 1000)
    payload = b"\x00" * size
    sent = 0
    start = time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            transport.sendto(payload)
            sent += 1
            # Sleep to the schedule, not by a fixed step, so the rate holds despite loop jitter.
            await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))
    finally:
        transport.close()
    return sent
