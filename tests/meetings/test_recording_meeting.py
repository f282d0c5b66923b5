"""Recording a live meeting end to end: real aiortc peers publish through the real signaling server,
the chair starts and stops the recording through the JSON API, every socket in the room is told,
a late joiner learns it from its join ack, and the files are registered for the meeting's record,
open with PyAV (one audio and one video stream, the recorded length) and are served only to those
who may see the record."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from aiohttp.test_utils import TestClient

from server.config import Settings
from server.db import transaction
from server.meetings import recordings as meeting_recordings
from tests.conftest import World, login
from tests.meetings.conftest import live_meeting, make_kiosk, scheduled_meeting
from tests.signaling.signaling_kit import Participant, session_cookie, wait_until

pytestmark = pytest.mark.network


def _media_seconds(path: Path) -> tuple[set[str], float]:
    """The stream kinds of a file and its length (the end of its last packet), read with PyAV."""
    with av.open(str(path)) as container:
        kinds = {s.type for s in container.streams}
        end = 0.0
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return kinds, end


def _recording_events(p: Participant) -> list[bool]:
    return [bool(data["active"]) for name, data in p.events if name == "recording"]


async def _get(client: TestClient, path: str, **kwargs: Any) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        response = await agent.get(client.make_url(path), allow_redirects=False, **kwargs)
        return response.status, response.headers.get("Content-Type", ""), await response.read()


async def test_chair_records_a_live_meeting_of_real_peers(
    client: TestClient, world: World, sessionmaker: Any, settings: Settings
) -> None:
    hall = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")
    late_hall = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 경로당")
    async with transaction(sessionmaker) as session:
        meeting_id = (await scheduled_meeting(session, world)).id
    csrf = await login(client, "official")  # the chair, in the test client's cookie jar

    async def post(path: str, status: int) -> dict[str, Any]:
        response = await client.post(path, json={}, headers={"X-CSRF-Token": csrf})
        assert response.status == status, await response.text()
        return dict(await response.json())

    api = f"/api/v1/meetings/{meeting_id}"
    # Not live yet: nothing to record.
    assert (await post(f"{api}/recording/start", 409))["error"]["code"] == "meeting_not_live"
    response = await client.post(
        f"{api}/transitions", json={"action": "start"}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status == 200, await response.text()
    room_id = (await response.json())["meeting"]["room_id"]
    assert room_id is not None

    chair = await Participant("chair", client, cookie=await session_cookie(client, "official")).connect()
    kiosk = await Participant("kiosk", client, token=hall.token).connect()
    late = await Participant("late", client, token=late_hall.token).connect()
    # What a page finds in the meeting's record at the moment it is told the recording stopped.
    registered_when_told: list[int] = []
    record_event = kiosk._recorder("recording")

    async def on_recording(data: Any) -> None:
        await record_event(data)
        if not data["active"]:
            async with transaction(sessionmaker) as session:
                registered_when_told.append(len(await meeting_recordings.recordings_of(session, meeting_id)))

    kiosk.sock.on("recording", on_recording)
    try:
        chair_ack = await chair.join(room_id)
        assert chair_ack["recording"] is False
        await kiosk.join(room_id)
        await chair.publish(60, 3000, video_slots=9)
        await kiosk.publish(170, 3000, video_slots=2)
        assert kiosk.pid and chair.pid
        await wait_until(lambda: chair.sees(kiosk.pid, 170) and kiosk.sees(chair.pid, 60), 20, "media flows")  # type: ignore[arg-type]
        assert (await post(f"{api}/recording/stop", 409))["error"]["code"] == "not_recording"

        before_start = time.monotonic()
        assert (await post(f"{api}/recording/start", 200)) == {"recording": True}
        after_start = time.monotonic()
        assert (await post(f"{api}/recording/start", 409))["error"]["code"] == "already_recording"

        await wait_until(
            lambda: _recording_events(chair) == [True] and _recording_events(kiosk) == [True],
            10,
            "both sockets told that the recording started",
        )
        late_ack = await late.join(room_id)
        assert late_ack["recording"] is True

        # Let both record a few seconds of media (the chair keeps receiving the kiosk meanwhile).
        frames = chair.video_frames(kiosk.pid)
        await wait_until(lambda: chair.video_frames(kiosk.pid) >= frames + 60, 30, "a few seconds of media")  # type: ignore[arg-type]

        before_stop = time.monotonic()
        stopped = await post(f"{api}/recording/stop", 200)
        after_stop = time.monotonic()
        assert stopped["recording"] is False
        await wait_until(
            lambda: _recording_events(chair) == [True, False] and _recording_events(kiosk) == [True, False],
            10,
            "both sockets told that the recording stopped",
        )
        assert _recording_events(late) == [False]  # joined after the start: learnt it from its ack
        assert registered_when_told == [2]  # told once the files are in the record, not before
    finally:
        for p in (chair, kiosk, late):
            await p.close()

    files = stopped["files"]
    assert len(files) == 2, files  # the late kiosk only received: no file
    assert {f["participant"] for f in files} == {"김민원", "남성리 마을회관"}
    assert all(f["has_audio"] and f["has_video"] for f in files)
    async with transaction(sessionmaker) as session:
        rows = list(await meeting_recordings.recordings_of(session, meeting_id))
    assert sorted(r.id for r in rows) == sorted(f["id"] for f in files)
    shortest, longest = before_stop - after_start, after_stop - before_start
    for row in rows:
        path = settings.data_dir / row.path
        assert path.is_file() and path.suffix == ".webm"
        assert path.parent == settings.data_dir / "recordings" / str(meeting_id)
        assert row.ended_at is not None
        assert row.marks and row.marks[0]["label"] == "녹화 시작"
        kinds, seconds = _media_seconds(path)
        assert kinds == {"audio", "video"}, (row.participant, kinds)
        assert shortest - 1.0 <= seconds <= longest + 1.0, (row.participant, seconds, shortest, longest)

    # The record page links every recording; the file route serves WebM to the chair only.
    page = await client.get(f"/meetings/{meeting_id}/record")
    html = await page.text()
    assert page.status == 200
    for row in rows:
        assert f'href="/meetings/{meeting_id}/recordings/{row.id}"' in html
        assert row.participant in html
    url = f"/meetings/{meeting_id}/recordings/{rows[0].id}"
    served = await client.get(url)
    assert served.status == 200 and served.headers["Content-Type"] == "video/webm"
    body = await served.read()
    assert body == (settings.data_dir / rows[0].path).read_bytes()
    partial = await client.get(url, headers={"Range": "bytes=0-99"})
    assert partial.status == 206 and len(await partial.read()) == 100

    stranger = await session_cookie(client, "official2")
    status, _, _ = await _get(client, url, headers={"Cookie": f"maeul_session={stranger}"})
    assert status in (403, 404)
    status, content_type, _ = await _get(client, url, headers=hall.headers)
    assert status in (401, 403, 404) and content_type != "video/webm"
    assert (await client.get(f"/meetings/{meeting_id}/recordings/{rows[0].id + 1000}")).status == 404
    status, _, _ = await _get(client, url)  # nobody logged in
    assert status in (303, 401, 403)


async def test_ending_a_recorded_meeting_registers_its_files(
    client: TestClient, world: World, sessionmaker: Any, settings: Settings
) -> None:
    hall = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")
    live = await live_meeting(sessionmaker, world)
    meeting_id, room_id = live.meeting_id, live.room_id
    api = f"/api/v1/meetings/{meeting_id}"

    # An invited official who does not chair may not record; a kiosk may not either.
    csrf = await login(client, "official2")
    response = await client.post(f"{api}/recording/start", json={}, headers={"X-CSRF-Token": csrf})
    assert response.status == 403 and (await response.json())["error"]["code"] == "not_meeting_manager"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        response = await agent.post(client.make_url(f"{api}/recording/start"), json={}, headers=hall.headers)
        assert response.status in (401, 403)
    client.session.cookie_jar.clear()

    kiosk = await Participant("kiosk", client, token=hall.token).connect()
    watcher = await Participant("watcher", client, cookie=await session_cookie(client, "official")).connect()
    try:
        await kiosk.join(room_id)
        await kiosk.publish(170, 3000, video_slots=2)
        await watcher.join(room_id)
        await watcher.publish(60, 3000, video_slots=9)
        assert kiosk.pid and watcher.pid
        await wait_until(lambda: watcher.sees(kiosk.pid, 170), 20, "media flows")  # type: ignore[arg-type]

        csrf = await login(client, "admin")  # an administrator runs it this time
        response = await client.post(f"{api}/recording/start", json={}, headers={"X-CSRF-Token": csrf})
        assert response.status == 200, await response.text()
        frames = watcher.video_frames(kiosk.pid)
        await wait_until(lambda: watcher.video_frames(kiosk.pid) >= frames + 45, 30, "some recorded media")  # type: ignore[arg-type]

        response = await client.post(
            f"{api}/transitions", json={"action": "end"}, headers={"X-CSRF-Token": csrf}
        )
        assert response.status == 200, await response.text()
        await wait_until(
            lambda: (
                kiosk.disconnected.is_set()
                or bool(kiosk.errors())
                or any(name == "room_closed" for name, _ in kiosk.events)
            ),
            15,
            "the kiosk is told the meeting is over",
        )
        assert _recording_events(kiosk)[-1] is False
    finally:
        for p in (kiosk, watcher):
            await p.close()

    async with transaction(sessionmaker) as session:
        rows = list(await meeting_recordings.recordings_of(session, meeting_id))
    assert {r.participant for r in rows} == {"김민원", "남성리 마을회관"}
    for row in rows:
        kinds, seconds = _media_seconds(settings.data_dir / row.path)
        assert kinds == {"audio", "video"} and seconds > 0.5
    response = await client.post(f"{api}/recording/stop", json={}, headers={"X-CSRF-Token": csrf})
    assert response.status == 409 and (await response.json())["error"]["code"] == "meeting_not_live"
