"""A hall that may only use TURN relays (iceTransportPolicy relay) meets an official through the
real Maeul app and SFU, relayed by a real coturn over UDP and over TCP, with the credentials Maeul
minted in the join ack. Run in a loopback-only namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.config import IceTransportPolicy, SecretStr, Settings
from server.keys import SFU
from tests.conftest import World, make_settings
from tests.sfu.sfu_testkit import server_pcs
from tests.signaling.signaling_kit import Participant, media_keeps_flowing, session_cookie
from tests.signaling.two_party import room_with_a_hall, wait_media_both_ways
from tests.turn.coturn import Coturn
from tests.turn.relay_kit import RelayParticipant, selected_pair

pytestmark = pytest.mark.network

LUMA_OFFICIAL, LUMA_HALL = 50, 170


@pytest.fixture
def db_backend() -> str:
    # The database is not what these tests are about; one backend keeps two calls cheap.
    return "sqlite"


@pytest.fixture
def settings(db_url: str, tmp_path: Path, turn_server: Coturn) -> Settings:
    return make_settings(
        db_url,
        tmp_path / "data",
        turn_urls=(turn_server.url("udp"), turn_server.url("tcp")),
        turn_secret=SecretStr(turn_server.secret),
        turn_ttl_seconds=600,
        ice_transport_policy=IceTransportPolicy.RELAY,
    )


@pytest.fixture
async def people(client: TestClient) -> AsyncIterator[Callable[..., Any]]:
    made: list[Participant] = []

    async def make(kind: type[Participant], name: str, **kw: Any) -> Any:
        p = kind(name, client, **kw)
        made.append(p)
        return await p.connect()

    yield make
    for p in made:
        await p.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_relay_only_hall_meets_official_through_coturn(
    client: TestClient, world: World, people: Callable[..., Any], turn_server: Coturn, transport: str
) -> None:
    _admin, _kiosk_id, token, room_id = await room_with_a_hall(client, world, "방화벽 뒤 마을회관")
    official = await people(Participant, "official", cookie=await session_cookie(client, "official"))
    hall = await people(RelayParticipant, "hall", token=token, ice_transport=transport)

    await official.join(room_id)
    ack = await hall.join(room_id)
    assert ack["ice_transport_policy"] == "relay"
    turn = ack["ice_servers"][0]
    assert turn["username"].endswith(f":{hall.pid}") and turn["credential"]
    assert turn_server.secret not in repr(ack)

    await official.publish(LUMA_OFFICIAL, 3000, video_slots=2)
    await hall.publish_via(ack, LUMA_HALL, 3000)
    await wait_media_both_ways(
        official, LUMA_OFFICIAL, hall, LUMA_HALL, 30, "video and audio both ways through the relay"
    )
    await media_keeps_flowing(official, hall)

    # The hall's media goes through its coturn allocation, over the transport it was given...
    assert hall.peer is not None
    pair = selected_pair(hall.peer.pc)
    assert pair is not None and pair.local.type == "relay" and pair.turn_transport == transport
    low, high = turn_server.relay_ports
    assert pair.local.host == turn_server.host and low <= pair.local.port <= high
    # ...and the SFU sees the hall at that relayed address (it never allocates relays itself).
    sfu = client.app[SFU]
    remotes = []
    for pc in server_pcs(sfu, str(room_id)):
        server_pair = selected_pair(pc)
        assert server_pair is not None and server_pair.local.type == "host"
        remotes.append(server_pair.remote)
    assert any(r.type == "relay" and r.port == pair.local.port for r in remotes)
    log = turn_server.log()
    assert f"username=<{turn['username']}>" in log and "ALLOCATE processed, success" in log
