"""A worker dies in the middle of a meeting: the meeting's record shows each participant once, with
a gap (issue #17, "Attendance shows one presence with a gap"). A real ``run.py web`` app (the web
role, in this process) on the test's database and a redis-server, two SFU workers in this process,
and a kiosk with a real aiortc peer connection, joining through socket.io as the kiosk does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from server.cluster.plane import MEDIA
from server.cluster.remote import RemoteSfu
from server.db import transaction, utcnow
from server.meetings.attendance import attendance_of, attendance_totals
from tests.cluster.conftest import WebRole
from tests.conftest import World
from tests.meetings.conftest import live_meeting, make_kiosk
from tests.signaling.signaling_kit import Participant, session_cookie, wait_until

pytestmark = pytest.mark.network


async def test_a_dead_worker_leaves_one_presence_with_a_gap(
    web_role: Callable[[int, Sequence[str]], Awaitable[WebRole]], world: World, sessionmaker: Any
) -> None:
    (client,), workers = await web_role(1, ["1", "2"])
    hall = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")
    live = await live_meeting(sessionmaker, world, villages=(0,))
    chair = Participant("chair", client, cookie=await session_cookie(client, "official"))
    kiosk = Participant("kiosk", client, token=hall.token)
    try:
        await chair.connect()
        await kiosk.connect()
        await chair.join(live.room_id)
        await chair.publish(luma=50, amplitude=8000, video_slots=1, audio_slots=1)
        await kiosk.join(live.room_id)
        await kiosk.publish(luma=170, amplitude=8000, video_slots=1, audio_slots=1)
        await wait_until(lambda: kiosk.sees(chair.pid or "", 50), 20, "the kiosk sees the chair")

        async def presences() -> list[Any]:
            async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
                return list(await attendance_of(session, live.meeting_id))

        assert len(await presences()) == 2  # the chair and the kiosk, present once media flows
        plane = client.app[MEDIA]
        assert isinstance(plane, RemoteSfu)
        host = plane.participant(str(live.room_id), kiosk.pid or "").placement.worker  # type: ignore[attr-defined]
        # The room's worker goes (as a stopping worker says bye: the web process sends `left`).
        await workers[host].stop()
        await wait_until(lambda: bool(kiosk.got("left")) and bool(chair.got("left")), 15, "both told `left`")
        # Each rejoins at once, as the pages and the kiosk program do, on the other worker.
        for who, luma in ((chair, 50), (kiosk, 170)):
            await who.close_peer()
            await who.join(live.room_id)
            await who.publish(luma=luma, amplitude=8000, video_slots=1, audio_slots=1)
        await wait_until(lambda: kiosk.sees(chair.pid or "", 50), 20, "the kiosk sees the chair again")
        moved = plane.participant(str(live.room_id), kiosk.pid or "").placement.worker  # type: ignore[attr-defined]
        assert moved != host
        rows = await presences()
        # One presence each, open, with the outage noted as a gap inside it.
        assert len(rows) == 2, [(r.name, r.joined_at, r.left_at, r.gaps) for r in rows]
        assert all(r.left_at is None and len(r.gaps) == 1 for r in rows), [(r.name, r.gaps) for r in rows]
        totals = attendance_totals(rows, until=utcnow())
        assert sorted((t.kind, t.interruptions) for t in totals) == [("kiosk", 1), ("official", 1)]
    finally:
        await chair.close()
        await kiosk.close()
