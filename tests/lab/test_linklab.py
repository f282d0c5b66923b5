"""The lab's links are what they claim: addresses and routes, a tbf cap per direction, nftables
loss per direction, a cut and restore, a UDP-only block, changes while traffic runs, and two labs
side by side (pytest-xdist workers) that do not see each other."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.lab.linklab import COUNTY, COUNTY_ADDRESS, LinkLab
from tests.lab.netprobe import SinkResult, UdpSink, udp_blast

pytestmark = pytest.mark.lab


async def _transfer(
    lab: LinkLab, src: str | int, dst: str | int, *, kbit: float, seconds: float, size: int = 1000
) -> tuple[int, SinkResult]:
    """Blast from ``src`` to a sink on ``dst``; returns (sent, received)."""
    sink = UdpSink()
    port = await lab.run_in(dst, sink.open(lab.address(dst)))
    sent = await lab.run_in(src, udp_blast(lab.address(dst), port, kbit=kbit, seconds=seconds, size=size))
    await asyncio.sleep(0.6)  # what is still queued in tbf drains (queue is 300 ms)
    return sent, await lab.run_in(dst, sink.close())


async def test_nodes_have_their_addresses_and_reach_the_county() -> None:
    async with LinkLab(halls=2) as lab:
        assert f"inet {COUNTY_ADDRESS}/32" in lab.run(COUNTY, "ip", "-4", "addr", "show", "dev", "lo")
        assert "inet 198.18.2.2/24" in lab.run(2, "ip", "-4", "addr", "show", "dev", "county")
        for hall in (1, 2):
            sent, got = await _transfer(lab, hall, COUNTY, kbit=2000, seconds=0.5)
            assert got.packets == sent
            sent, got = await _transfer(lab, COUNTY, hall, kbit=2000, seconds=0.5)
            assert got.packets == sent
        # A subprocess started in a hall sees only that hall's interfaces.
        proc = lab.popen(1, ["ip", "-br", "-4", "addr"], stdout=asyncio.subprocess.PIPE, text=True)
        out, _ = proc.communicate(timeout=10)
        assert "198.18.1.2" in out and "198.18.2.2" not in out and "198.18.0.1" not in out


async def test_cap_holds_in_each_direction_and_follows_changes() -> None:
    async with LinkLab(halls=2) as lab:
        lab.shape(1, up_kbit=300, down_kbit=600)
        (_, up), (_, down), (_, other) = await asyncio.gather(
            _transfer(lab, 1, COUNTY, kbit=1200, seconds=3),
            _transfer(lab, COUNTY, 1, kbit=1200, seconds=3),
            _transfer(lab, 2, COUNTY, kbit=1200, seconds=3),
        )
        assert 240 <= up.kbit_per_s() <= 360, up
        assert 480 <= down.kbit_per_s() <= 720, down
        assert other.kbit_per_s() >= 1000, other  # hall 2 is not shaped
        # A spike: the same link squeezed to 50 kbit/s, then back.
        lab.shape(1, kbit=50)
        _, spike = await _transfer(lab, 1, COUNTY, kbit=400, seconds=3)
        assert 35 <= spike.kbit_per_s() <= 70, spike
        lab.unshape(1)
        sent, free = await _transfer(lab, 1, COUNTY, kbit=1200, seconds=1)
        assert free.packets == sent


async def test_loss_is_dropped_on_the_receiving_side_per_direction() -> None:
    async with LinkLab(halls=1) as lab:
        lab.shape(1, up_loss_pct=10, down_loss_pct=3)
        (sent_up, up), (sent_down, down) = await asyncio.gather(
            _transfer(lab, 1, COUNTY, kbit=1600, seconds=2, size=200),
            _transfer(lab, COUNTY, 1, kbit=1600, seconds=2, size=200),
        )
        assert sent_up > 1500 and sent_down > 1500
        assert 0.06 <= 1 - up.packets / sent_up <= 0.14, up
        assert 0.005 <= 1 - down.packets / sent_down <= 0.06, down
        assert "numgen random mod 10000 < 1000" in lab.counters(COUNTY)


async def test_cut_restore_and_udp_block() -> None:
    async with LinkLab(halls=1) as lab:
        lab.cut(1)
        _, up = await _transfer(lab, 1, COUNTY, kbit=500, seconds=0.5)
        _, down = await _transfer(lab, COUNTY, 1, kbit=500, seconds=0.5)
        assert up.packets == 0 and down.packets == 0
        lab.restore(1)
        sent, back = await _transfer(lab, 1, COUNTY, kbit=500, seconds=0.5)
        assert back.packets == sent

        lab.block_udp(1)
        _, blocked = await _transfer(lab, 1, COUNTY, kbit=500, seconds=0.5)
        assert blocked.packets == 0

        async def serve() -> tuple[asyncio.base_events.Server, int]:
            async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.write(await reader.readexactly(5))
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(echo, COUNTY_ADDRESS, 0, family=socket.AF_INET)
            return server, int(server.sockets[0].getsockname()[1])

        async def ask(port: int) -> bytes:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(COUNTY_ADDRESS, port), 5)
            writer.write(b"hello")
            answer = await reader.readexactly(5)
            writer.close()
            return answer

        server, port = await lab.run_in(COUNTY, serve())
        assert await lab.run_in(1, ask(port)) == b"hello"  # TCP still passes
        lab.unblock_udp(1)
        sent, free = await _transfer(lab, 1, COUNTY, kbit=500, seconds=0.5)
        assert free.packets == sent
        server.close()


async def test_two_labs_side_by_side_do_not_see_each_other() -> None:
    async with LinkLab(halls=1) as first, LinkLab(halls=1) as second:
        first.cut(1)
        sent, got = await _transfer(second, 1, COUNTY, kbit=500, seconds=0.5)
        assert got.packets == sent
        _, none = await _transfer(first, 1, COUNTY, kbit=500, seconds=0.5)
        assert none.packets == 0
