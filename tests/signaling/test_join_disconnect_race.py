"""A page that goes away in the middle of its join while other pages stay connected.

python-socketio refuses to add a disconnected socket to a room in two ways: ValueError when the
namespace has no socket left at all (the case tests/signaling/test_meeting_signaling.py covers),
KeyError from its room table when other sockets are still connected (every real meeting; seen as a
traceback in the server's log during a Firefox join/leave storm). Both must undo the join quietly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.keys import MEETINGS, SFU
from server.signaling.messages import SignalingError
from tests.conftest import World, logged_errors
from tests.gate import Gate
from tests.signaling.signaling_kit import Admin, wait_until

pytestmark = pytest.mark.network


async def test_a_socket_closed_during_its_join_with_others_connected_leaves_nothing_behind(
    client: TestClient,
    world: World,
    people: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = await Admin(client, world).login()
    room_id = await admin.room("회의", account_ids=[world.official_id])
    bystander = await people("bystander", username="admin")  # keeps the namespace populated
    await bystander.join(room_id)
    hasty = await people("hasty", username="official")
    sid = hasty.sock.get_sid("/")
    assert sid is not None
    hub, sfu = client.app[MEETINGS], client.app[SFU]
    admit, gate = sfu.admit, Gate()

    # The page's socket really closes while the server is admitting it to the SFU.
    async def slow_admit(*args: Any, **kwargs: Any) -> Any:
        await gate.hold()
        return await admit(*args, **kwargs)

    monkeypatch.setattr(sfu, "admit", slow_admit)
    principal = (await hub.sio.get_session(sid))["principal"]
    joining = asyncio.ensure_future(hub.join(sid, principal, {"room_id": room_id}))
    await asyncio.wait_for(gate.reached.wait(), 10)
    await hasty.sock.disconnect()
    await wait_until(lambda: sid in hub.abandoned, 10, "the server saw the disconnect")
    gate.opened.set()
    with pytest.raises(SignalingError) as refused:
        await joining
    assert refused.value.code == "not_joined"
    # The join undid itself; the bystander is untouched and nothing was logged as an error.
    assert sid not in hub.members and sid not in hub.abandoned
    assert set(sfu.room_stats(str(room_id)).participants) == {bystander.pid}
    assert [m.pid for m in hub.room_members(str(room_id))] == [bystander.pid]
    assert logged_errors(caplog) == []
