"""What the pages learn of simulcast layers (issue 18): the SFU's SimulcastLayersChanged
reaches the publisher's own page only, as ``layers {active}`` (the page pauses the other
encodings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.keys import SFU
from server.sfu import SimulcastLayersChanged
from tests.conftest import World
from tests.signaling.signaling_kit import Admin, Participant, wait_until

pytestmark = pytest.mark.network


async def test_layers_reach_the_publisher_only(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    admin = await Admin(client, world).login()
    kiosk_id, token = await admin.kiosk("남성리 마을회관")
    room_id = await admin.room("마을 안전 회의", account_ids=[world.official_id], kiosk_ids=[kiosk_id])
    official: Participant = await people("official", username="official")
    kiosk: Participant = await people("kiosk", token=token)
    await official.join(room_id)
    await kiosk.join(room_id)
    assert official.pid and kiosk.pid
    sfu = client.app[SFU]

    # through the SFU's listeners, as the room emits it (the hub's event pump)
    sfu._emit(SimulcastLayersChanged(str(room_id), official.pid, ("h",)))
    await wait_until(lambda: official.got("layers") == [{"active": ["h"]}], 10, "the publisher told")
    sfu._emit(SimulcastLayersChanged(str(room_id), official.pid, ("h", "f")))
    await wait_until(lambda: len(official.got("layers")) == 2, 10, "the publisher told again")
    assert official.got("layers")[-1] == {"active": ["h", "f"]}
    # nobody else; a publisher not (or no longer) in the room is nobody's business
    sfu._emit(SimulcastLayersChanged(str(room_id), "a999999", ("h",)))
    sfu._emit(SimulcastLayersChanged(str(room_id), kiosk.pid, ("h",)))
    await wait_until(lambda: kiosk.got("layers") == [{"active": ["h"]}], 10, "the kiosk's own")
    assert len(official.got("layers")) == 2
    assert official.errors() == [] and kiosk.errors() == []
