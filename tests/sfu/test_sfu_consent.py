"""ICE consent freshness is configurable: a link cut shorter than ``consent_timeout`` does
not end the call (media flows again afterwards), a peer silent for longer is detected and
removed. The cut is real: nftables drops every UDP packet toward the client's port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from rtc import aiortc_internals as ai
from server.sfu import ParticipantLeft, Sfu, SfuConfig, SfuEvent
from tests.sfu.netfilter import PortFilter
from tests.sfu.sfu_testkit import LOOPBACK, Client, join, wait_until

pytestmark = pytest.mark.network

INTERVAL, TIMEOUT = 0.5, 5.0


@pytest.fixture
async def sfu(events: list[SfuEvent]) -> AsyncIterator[Sfu]:
    s = Sfu(
        SfuConfig(
            host_addresses=tuple(LOOPBACK), ice_servers=(), consent_interval=INTERVAL, consent_timeout=TIMEOUT
        )
    )
    s.subscribe(events.append)
    yield s
    await s.close()


def client_port(client: Client) -> int:
    gatherer = client.pc.getTransceivers()[0].sender.transport.transport.iceGatherer
    return int(gatherer.getLocalCandidates()[0].port)


async def test_cut_shorter_than_consent_timeout_survives_longer_one_is_detected(
    sfu: Sfu, make_client: Callable[..., Client], events: list[SfuEvent]
) -> None:
    sfu.open_room("r")
    await join(sfu, make_client, "a", amplitude=8000)
    b = make_client("b", audio_slots=1)
    # The client keeps aioice's consent checks slower than the cut, as a browser would.
    ai.tune_consent(b.pc, 30.0, 60.0)
    await b.connect(await sfu.admit("r", "b"))
    await wait_until(lambda: b.log(b.slot_of("a", "audio")).frames >= 25, 15, "b hears a")
    cut = PortFilter(client_port(b))
    try:
        # 3 s without a single packet: 6 unanswered checks, which is where aioice's
        # own consent (6 misses) would give up.
        cut.set_loss(100)
        await asyncio.sleep(3.0)
        cut.set_loss(0)
        before = b.log(b.slot_of("a", "audio")).frames
        await wait_until(
            lambda: b.log(b.slot_of("a", "audio")).frames >= before + 25, 15, "audio again after the cut"
        )
        assert not any(isinstance(e, ParticipantLeft) for e in events)
        assert sfu.room_stats("r").participants["b"].connection_state == "connected"

        # A peer silent for longer than consent_timeout is gone.
        cut.set_loss(100)
        await wait_until(
            lambda: any(isinstance(e, ParticipantLeft) and e.participant_id == "b" for e in events),
            TIMEOUT + 10,
            "the SFU notices the dead peer",
        )
        left = next(e for e in events if isinstance(e, ParticipantLeft))
        assert left.reason.startswith("transport-")
    finally:
        cut.close()
    assert "a" in sfu.room_stats("r").participants
