"""Link lab: a hall whose firewall drops all UDP still meets the chair — through the county's
coturn over TCP, with the credential Maeul minted for that kiosk in its join ack.

County namespace: coturn (configured as docs/turn.md says for production: every peer address
denied except the Maeul server, no loopback peers), the Maeul server, the chair. Hall namespace:
the real headless kiosk, UDP blocked both ways on its link."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

import pytest

from tests.lab.linklab import COUNTY
from tests.lab.scenario import MeetingLab
from tests.turn.coturn import Coturn, coturn

pytestmark = pytest.mark.network

HALL = 1


class TurnMeetingLab(MeetingLab):
    """MeetingLab with coturn in the county and UDP blocked to hall 1 before anyone joins.

    Hooks MeetingLab's start-up (the lab exposes no setting for extra server environment)."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, halls=1)
        self.turn: Coturn | None = None
        self._stack = contextlib.ExitStack()

    async def _start_server(self) -> None:
        self.turn = self._stack.enter_context(
            coturn(
                self.workdir / "coturn",
                host=self.lab.county_address,
                allow_loopback_peers=False,
                command_prefix=self.lab.command(COUNTY, []),
                extra_args=[
                    # Production policy: relay to the Maeul server only.
                    "--denied-peer-ip=0.0.0.0-255.255.255.255",
                    f"--allowed-peer-ip={self.lab.county_address}",
                ],
            )
        )
        self.lab.block_udp(HALL)
        await super()._start_server()

    def _env(self, **extra: str) -> dict[str, str]:
        env = super()._env(**extra)
        if "MAEUL_HOST" in extra:  # the server process: point it at the county's coturn
            assert self.turn is not None
            # aiortc (the headless kiosk) uses only the first TURN URL: TCP first, as a county
            # with halls behind UDP-blocking firewalls configures it (docs/turn.md).
            env["MAEUL_TURN_URLS"] = f"{self.turn.url('tcp')},{self.turn.url('udp')}"
            env["MAEUL_TURN_SECRET"] = self.turn.secret
            env["MAEUL_TURN_TTL_SECONDS"] = "600"
        return env

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self._stack.close()


def _udp_drops(counters: str) -> int:
    return sum(int(n) for n in re.findall(r"meta l4proto udp counter packets (\d+)", counters))


async def test_hall_with_udp_blocked_meets_through_coturn_over_tcp(tmp_path: Path) -> None:
    async with TurnMeetingLab(tmp_path) as started:
        assert isinstance(started, TurnMeetingLab)
        meeting = started
        await meeting.wait_media(within=90, hall=HALL)
        before_chair, before_hall = meeting.frames("chair"), meeting.frames(f"hall{HALL}")
        await asyncio.sleep(5)
        assert meeting.frames("chair") > before_chair and meeting.frames(f"hall{HALL}") > before_hall

        assert meeting.turn is not None and meeting.seed is not None
        log = meeting.turn.log()
        kiosk = f"k{meeting.seed.kiosk_ids[HALL]}"
        hall_address = meeting.lab.address(HALL)
        # The kiosk reached coturn over TCP and allocated with the credential Maeul minted for it.
        assert f"tcp or tls connected to: {hall_address}:" in log, log[-3000:]
        assert re.search(rf"user <\d+:{kiosk}>: incoming packet ALLOCATE processed, success", log), log[
            -3000:
        ]
        assert re.search(
            rf"user <\d+:{kiosk}>: incoming packet (CHANNEL_BIND|CREATE_PERMISSION) processed", log
        )
        # UDP really was blocked (its ICE checks on host candidates were dropped), so everything
        # the chair and the hall decoded went through the TCP relay.
        assert _udp_drops(meeting.lab.counters(HALL)) + _udp_drops(meeting.lab.counters(COUNTY)) > 0
        assert meeting.turn.secret not in log
