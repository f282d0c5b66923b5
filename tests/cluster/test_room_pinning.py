"""One room, one web process: nginx hashes the socket.io URL's ``?room=`` (deploy/nginx/maeul.conf),
so every participant of a room reaches the web process that holds its hub state (participant list,
floor, lobby, resume tokens) and they see each other, although the deployment has two web
processes. When that web process is SIGKILLed, all of the room's sockets move to the same other one
and see each other again; the kiosks resume there on their peer connections, taken over with their
resume tokens (issue #17; docs/scale.md "Handover").

The deployment is test_cluster_media's (PostgreSQL, redis-server, two web processes behind nginx,
two SFU workers). The first room holds two headless kiosks (the kiosk program, with media) and a
third kiosk that is a bare socket.io client and an aiortc peer connection (tests/sfu's client)
reading the hub's participant list.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest
import socketio
from aiortc import RTCSessionDescription

from kiosk.headless import HeadlessKiosk
from kiosk.media import open_source
from tests.cluster import test_cluster_media as cluster
from tests.cluster.test_cluster_media import Deployment, _join_until, _offer_sdp, _wait, frames, room_joins
from tests.sfu.sfu_testkit import Client

deployment = cluster.deployment  # the same fixture: the whole deployment, fresh per test

pytestmark = [pytest.mark.network, pytest.mark.e2e]


class Observer:
    """A kiosk's socket as the room page opens it (the room in the URL's query) and a peer
    connection: it keeps the hub's participant list of its room (join ack, then `participants`
    events). Like the page, it closes its peer connection before it joins again: the worker
    still holds the participant the dead web process admitted until its media ends."""

    def __init__(self, url: str, token: str, room_id: int) -> None:
        self.url, self.token, self.room_id = url, token, room_id
        self.sock: socketio.AsyncClient | None = None
        self.media: Client | None = None
        self.me = ""
        self.ids: set[str] = set()

    def _seen(self, participants: list[dict[str, Any]]) -> None:
        self.ids = {p["id"] for p in participants}

    async def join(self, within: float) -> None:
        """Connect (through nginx) and join, retrying refusals as the page does."""
        await self.close()
        sock = socketio.AsyncClient(reconnection=False)
        sock.on("participants", lambda data: self._seen(data["participants"]))
        self.sock = sock
        await sock.connect(
            f"{self.url}?room={self.room_id}",
            auth={"token": self.token},
            transports=["websocket"],
            wait_timeout=10,
        )
        ack, _refused = await _join_until(sock, self.room_id, within)
        self.me = ack["participant_id"]
        self._seen(ack["participants"])
        self.media, sdp = await _offer_sdp()
        answer = await sock.call("offer", {"sdp": sdp, "type": "offer"}, timeout=20)
        assert answer.get("type") == "answer", answer
        await self.media.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    @property
    def connected(self) -> bool:
        return self.sock is not None and self.sock.connected

    async def close(self) -> None:
        if self.media is not None:
            await self.media.close()
        self.media = None
        if self.sock is not None and self.sock.connected:
            await self.sock.disconnect()
        self.sock = None


async def test_a_rooms_sockets_share_one_web_process_and_move_together(deployment: Deployment) -> None:
    d = deployment
    kiosks = [
        HeadlessKiosk(
            d.url, token, lambda: open_source("testsrc"), host_addresses=["127.0.0.1"], poll_interval=0.2
        )
        for token in d.tokens[:4]  # 0, 1 in the first room; 2, 3 in the second
    ]
    observer = Observer(d.url, d.tokens[4], d.rooms[0])
    stop = asyncio.Event()
    tasks = [asyncio.create_task(k.run(stop)) for k in kiosks]
    procs = [*d.webs, *d.workers.values()]
    try:
        await observer.join(30)

        async def all_receive() -> bool:
            return all(frames(k) > 30 for k in kiosks) and len(observer.ids) == 3

        await _wait(all_receive, 90, "every kiosk decodes video, the observer lists three", *procs)
        # Each room was let in by one web process only; the first room's three participants are
        # exactly those the observer's web process lists (a kiosk on the other web process would
        # be missing from its list).
        joins = [room_joins(d.webs, room) for room in d.rooms]
        assert [len(j) for j in joins] == [1, 1], joins
        ((pinned, first_room),) = joins[0].items()
        assert first_room == observer.ids and observer.me in observer.ids, (joins, observer.ids)
        assert [len(p) for p in joins[1].values()] == [2], joins
        print(f"rooms on web processes: {[sorted(j) for j in joins]}")

        victim = next(p for p in d.webs if p.name == pinned)
        survivor = next(p for p in d.webs if p is not victim)
        moved = [i for i in range(4) if i < 2 or victim.name in joins[1]]  # kiosks whose web goes
        joined = [k.stats.meetings_joined for k in kiosks]
        resumes = [k.stats.resumes for k in kiosks]
        before = [frames(k) for k in kiosks]
        since = {survivor.name: survivor.log_path.stat().st_size}
        killed_at = time.monotonic()
        victim.stop(signal.SIGKILL)
        # The observer's socket drops with its web process; it connects again, as the page does.

        async def observer_dropped() -> bool:
            return not observer.connected

        await _wait(observer_dropped, 10, "the observer's socket drops")
        await observer.join(40)
        back: dict[str, float] = {}

        async def together_again() -> bool:
            if "observer" not in back and observer.ids == first_room:
                back["observer"] = time.monotonic() - killed_at
            for i in moved:
                k = kiosks[i]
                # (its socket came back on the survivor, which took its participant over)
                if str(i) not in back and k.stats.resumes > resumes[i] and frames(k) > before[i] + 30:
                    back[str(i)] = time.monotonic() - killed_at
            # (and the kiosks that were not moved have gone on decoding meanwhile)
            unmoved = all(frames(kiosks[i]) > before[i] + 30 for i in range(4) if i not in moved)
            return len(back) == len(moved) + 1 and unmoved

        await _wait(together_again, 60, "the room's participants see each other again", survivor)
        # All of the first room (and the second room, if it was there too) came back on the
        # surviving web process; a room that was there all along never noticed.
        after = room_joins([survivor], d.rooms[0], since)
        assert after == {survivor.name: first_room}, after
        assert observer.ids == first_room
        # Nobody started over: the moved kiosks resumed on their peer connections.
        assert [k.stats.meetings_joined for k in kiosks] == joined
        for i in (2, 3):
            assert frames(kiosks[i]) > before[i] + 30
            resumed = kiosks[i].stats.resumes > resumes[i]
            assert resumed == (i in moved), (i, moved, resumes, kiosks[i].stats.resumes)
        print(
            f"RESULT room_web_failover_seconds={max(back.values()):.2f} "
            f"moved_kiosks={len(moved)} observer={back['observer']:.2f}"
        )
    finally:
        stop.set()
        await observer.close()
        await asyncio.gather(*(asyncio.wait_for(t, 30) for t in tasks), return_exceptions=True)
