"""Meetings through the real socket.io server: real app, real socketio.AsyncClient, real aiortc
peers on 127.0.0.1, media forwarded by the real SFU. Run in a loopback-only namespace."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestClient

from server.keys import ROOM_HUB, SFU
from server.sfu import ParticipantLeft
from server.signaling.messages import SignalingError
from tests.conftest import World, logged_errors
from tests.gate import Gate
from tests.signaling.signaling_kit import Admin, Participant, media_keeps_flowing, wait_until
from tests.signaling.two_party import room_with_a_hall, wait_media_both_ways

pytestmark = pytest.mark.network

LUMA_OFFICIAL, LUMA_KIOSK, LUMA_THIRD = 50, 170, 110


def sfu_participants(client: TestClient, room_id: int) -> set[str]:
    sfu = client.app[SFU]
    if str(room_id) not in sfu.room_ids:
        return set()
    return set(sfu.room_stats(str(room_id)).participants)


async def _wait_listed(seer: Participant, expected: list[tuple[str | None, str]], what: str) -> None:
    """Until ``seer``'s participant list is ``expected``: (participant id, state) in order."""
    await wait_until(lambda: [(p["id"], p["state"]) for p in seer.participants] == expected, 10, what)


async def _publishing_pair(
    client: TestClient,
    world: World,
    people: Callable[..., Any],
    title: str = "마을 안전 회의",
    *,
    official_amplitude: int = 3000,
    kiosk_amplitude: int = 3000,
) -> tuple[Admin, int, int, Participant, Participant]:
    """The official and a hall's kiosk joined to a new room, both publishing (not yet received)."""
    admin, kiosk_id, token, room_id = await room_with_a_hall(client, world, title)
    official = await people("official", username="official")
    kiosk = await people("kiosk", token=token)
    await official.join(room_id)
    await kiosk.join(room_id)
    await official.publish(LUMA_OFFICIAL, official_amplitude, video_slots=9)
    await kiosk.publish(LUMA_KIOSK, kiosk_amplitude, video_slots=2)
    return admin, kiosk_id, room_id, official, kiosk


async def _two_in_a_room(
    client: TestClient, world: World, people: Callable[..., Any]
) -> tuple[Admin, int, int, Participant, Participant]:
    """A ``_publishing_pair`` once each decodes the other's video and audio."""
    admin, kiosk_id, room_id, official, kiosk = await _publishing_pair(client, world, people)
    await wait_media_both_ways(official, LUMA_OFFICIAL, kiosk, LUMA_KIOSK, 20, "video and audio both ways")
    return admin, kiosk_id, room_id, official, kiosk


async def test_media_flows_between_two_participants_through_signaling(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    _admin, kiosk_id, token, room_id = await room_with_a_hall(client, world, "마을 안전 회의")
    official = await people("official", username="official")
    kiosk = await people("kiosk", token=token)

    ack = await official.join(room_id)
    assert ack["participant_id"] == f"a{world.official_id}"
    assert ack["ice_servers"] == []  # the test settings configure none: no public STUN, ever
    assert ack["slot_plan"] == {"audio": 3, "video": 9}
    assert ack["room"] == {"id": room_id, "title": "마을 안전 회의"}
    kiosk_ack = await kiosk.join(room_id)
    assert kiosk_ack["slot_plan"] == {"audio": 3, "video": 2}
    names = {p["id"]: p for p in kiosk_ack["participants"]}
    assert names[f"a{world.official_id}"]["name"] == "김민원"
    assert names[f"k{kiosk_id}"]["name"] == "남성리 마을회관"
    assert names[f"k{kiosk_id}"]["village"]  # the kiosk's village (eup/myeon + ri)
    assert names[f"a{world.official_id}"]["village"] is None

    official_answer = await official.publish(LUMA_OFFICIAL, 3000, video_slots=9)
    assert "a=candidate:" in official_answer["sdp"]  # the server's candidates are in the answer
    await kiosk.publish(LUMA_KIOSK, 3000, video_slots=2)
    await wait_media_both_ways(official, LUMA_OFFICIAL, kiosk, LUMA_KIOSK, 20, "video and audio both ways")
    # Trickled candidates are accepted too (the browser sends late ones), and the end marker.
    assert kiosk.peer is not None
    sdp = kiosk.peer.pc.localDescription.sdp
    line = next(x for x in sdp.splitlines() if x.startswith("a=candidate:"))
    ice = {"candidate": line[2:], "sdpMid": "0", "sdpMLineIndex": 0}
    assert await kiosk.call("ice", ice) == {"ok": True}
    assert await kiosk.call("ice", {"candidate": None}) == {"ok": True}
    # Both pages learnt who is connected, by name (and village for the kiosk).
    await wait_until(
        lambda: len(official.participants) == 2 and all(p["connected"] for p in official.participants),
        10,
        "participants list with both connected",
    )
    # Muting is broadcast to the room.
    assert await kiosk.call("mute", {"audio": True, "video": False}) == {"ok": True}
    await wait_until(
        lambda: any(p["id"] == kiosk.pid and p["audio_muted"] for p in official.participants),
        10,
        "mute broadcast",
    )
    assert official.errors() == [] and kiosk.errors() == []


async def test_bad_inputs_get_clear_errors_and_the_room_keeps_working(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    admin, _kiosk_id, room_id, official, kiosk = await _two_in_a_room(client, world, people)
    await admin.post(f"/api/v1/admin/rooms/{room_id}/invitations", {"account_ids": [world.other_official_id]})
    bad = await people("bad", username="official2")

    expected: list[str] = []

    async def refused(event: str, data: Any, code: str) -> None:
        expected.append(code)
        ack = await bad.call(event, data)
        assert ack["error"]["code"] == code, (event, ack)
        assert ack["error"]["message"]

    await refused("no_such_event", {}, "unknown_event")
    await refused("join", "room 1", "invalid_payload")
    await refused("join", {"room_id": "1"}, "invalid_payload")
    await refused("join", {"room_id": room_id, "extra": 1}, "invalid_payload")
    await refused("join", {"room_id": 999999}, "room_not_found")
    await refused("offer", {"sdp": "v=0\r\n"}, "not_joined")
    await refused("mute", {"audio": True, "video": True}, "not_joined")
    await bad.join(room_id)
    await refused("join", {"room_id": room_id}, "already_joined")  # this socket is already in
    await refused(
        "ice", {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}, "offer_first"
    )
    await refused("offer", {"sdp": 12}, "invalid_payload")
    await refused("offer", {"sdp": "hello"}, "invalid_sdp")
    await refused("offer", {"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}, "no_media")
    garbage = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=this is not sdp\r\n"
    await refused("offer", {"sdp": garbage}, "invalid_sdp")
    await refused(
        "offer", {"sdp": "v=0\r\nm=audio 9 RTP 0\r\n" + "a=x:" + "y" * (65 * 1024)}, "sdp_too_large"
    )
    await refused("mute", {"audio": "yes", "video": False}, "invalid_payload")
    await refused("visible", {"publisher_ids": "everyone"}, "invalid_payload")
    await refused("visible", {"publisher_ids": ["x"] * 100}, "invalid_payload")
    # The rejected offers left the participant able to send a good one.
    await bad.publish(LUMA_THIRD, 3000, video_slots=2)
    await refused("offer", {"sdp": bad.peer.pc.localDescription.sdp}, "offer_already_handled")
    await refused("ice", {"candidate": "candidate:garbage", "sdpMid": "0"}, "invalid_candidate")
    assert bad.pid and official.pid
    await wait_until(lambda: bad.sees(official.pid, LUMA_OFFICIAL), 20, "the third participant to see video")
    # Each refusal also came as a structured `error` event.
    await wait_until(lambda: bad.errors() == expected, 10, "one error event per refusal")
    await media_keeps_flowing(official, kiosk)

    # A message above the engine.io limit closes only that connection. Like any lost socket, its
    # media is kept for a resume during the grace period (shortened here), then it goes.
    client.app[ROOM_HUB].reconnect_grace = 1.0
    await bad.sock.emit("offer", {"sdp": "v=0\r\n" + "x" * (200 * 1024)})
    await wait_until(lambda: bad.disconnected.is_set(), 15, "the oversized sender to be disconnected")
    await wait_until(
        lambda: bad.pid not in sfu_participants(client, room_id), 15, "its SFU participant to go"
    )
    await media_keeps_flowing(official, kiosk)
    assert official.errors() == [] and kiosk.errors() == []


async def test_join_without_invitation_is_refused(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    admin = await Admin(client, world).login()
    invited_kiosk, _ = await admin.kiosk("초대받은 마을회관")
    _other_kiosk, other_token = await admin.kiosk("다른 마을회관", village=1)
    room_id = await admin.room("회의", account_ids=[world.official_id], kiosk_ids=[invited_kiosk])

    stranger = await people("stranger", username="official2")
    ack = await stranger.call("join", {"room_id": room_id})
    assert ack["error"]["code"] == "not_invited"
    kiosk = await people("kiosk", token=other_token)
    assert (await kiosk.call("join", {"room_id": room_id}))["error"]["code"] == "not_invited"
    assert sfu_participants(client, room_id) == set()
    # The same refusal on the meeting pages; admins may join any room.
    page = await client.get(f"/rooms/{room_id}")  # the client is logged in as the admin
    assert page.status == 200
    boss = await people("admin", username="admin")
    assert (await boss.join(room_id))["participant_id"] == f"a{world.admin_id}"


async def test_a_newer_join_from_the_same_account_replaces_the_older(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    _admin, _kiosk_id, room_id, official, kiosk = await _two_in_a_room(client, world, people)
    second_window = await people("official-again", username="official")
    ack = await second_window.join(room_id)
    assert ack["participant_id"] == official.pid  # one participant per account
    await wait_until(lambda: official.got("replaced"), 10, "the older window to be told")
    # The older window is out of the room; the account is in the SFU once, through the new window.
    assert (await official.call("mute", {"audio": True, "video": False}))["error"]["code"] == "not_joined"
    assert sfu_participants(client, room_id) == {official.pid, kiosk.pid}
    await wait_until(
        lambda: [p["id"] for p in kiosk.participants] == [official.pid, kiosk.pid], 10, "one entry each"
    )


async def test_revoked_kiosk_drops_out_of_the_room(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    admin, kiosk_id, room_id, official, kiosk = await _two_in_a_room(client, world, people)
    assert sfu_participants(client, room_id) == {official.pid, kiosk.pid}
    await admin.post(f"/api/v1/admin/kiosks/{kiosk_id}/revoke")
    await wait_until(lambda: kiosk.disconnected.is_set(), 10, "the kiosk socket to close")
    await wait_until(
        lambda: sfu_participants(client, room_id) == {official.pid}, 10, "the kiosk to leave the SFU"
    )
    await wait_until(
        lambda: [p["id"] for p in official.participants] == [official.pid], 10, "participants update"
    )
    await wait_until(lambda: kiosk.pid not in official.slots.values(), 10, "its slots to be freed")


async def test_leaving_frees_the_sfu_participant_and_rejoining_works(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    _admin, _kiosk_id, room_id, official, kiosk = await _two_in_a_room(client, world, people)
    assert await kiosk.call("leave") == {"left": True}
    assert sfu_participants(client, room_id) == {official.pid}
    assert await kiosk.call("leave") == {"left": False}
    await wait_until(lambda: kiosk.pid not in official.slots.values(), 10, "the kiosk's slots to be freed")
    # Rejoin on the same socket with a new peer connection (what the page does after a drop).
    await kiosk.close_peer()
    kiosk.slots.clear()
    await kiosk.join(room_id)
    await kiosk.publish(LUMA_KIOSK, 3000, video_slots=2)
    await wait_until(lambda: official.sees(kiosk.pid, LUMA_KIOSK), 20, "video after the rejoin")  # type: ignore[arg-type]
    await media_keeps_flowing(official, kiosk)
    # A socket closed without `leave` looks like a lost one: the media is kept for the grace
    # period (shortened here) in case the page resumes, then the participant is gone.
    client.app[ROOM_HUB].reconnect_grace = 1.0
    await kiosk.sock.disconnect()
    await wait_until(lambda: sfu_participants(client, room_id) == {official.pid}, 10, "disconnect to free it")
    await wait_until(lambda: [p["id"] for p in official.participants] == [official.pid], 10, "the list")


async def test_closing_the_room_ends_the_meeting(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    admin, _kiosk_id, room_id, official, kiosk = await _two_in_a_room(client, world, people)
    await admin.post(f"/api/v1/admin/rooms/{room_id}/close")
    for p in (official, kiosk):
        await wait_until(lambda p=p: any(name == "room_closed" for name, _ in p.events), 10, "room_closed")  # type: ignore[misc]
    assert str(room_id) not in client.app[SFU].room_ids
    assert (await official.call("join", {"room_id": room_id}))["error"]["code"] == "room_closed"
    assert (await official.call("offer", {"sdp": "v=0\r\nm=audio 9 x 0\r\n"}))["error"][
        "code"
    ] == "not_joined"


async def test_speaker_slots_and_video_demand_reach_the_pages(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    # The official is silent, the kiosk speaks.
    _admin, _kiosk_id, _room_id, official, kiosk = await _publishing_pair(
        client, world, people, "회의", official_amplitude=0, kiosk_amplitude=12000
    )
    assert official.pid and kiosk.pid

    def speaker_events(p: Participant) -> list[Any]:
        return [data["participant_id"] for name, data in p.events if name == "active_speaker"]

    await wait_until(
        lambda: speaker_events(official)[-1:] == [kiosk.pid] and speaker_events(kiosk)[-1:] == [kiosk.pid],
        15,
        "the kiosk announced as active speaker to both",
    )
    # `slot` events said which mid carries the kiosk's video; the official decodes it there.
    await wait_until(lambda: official.sees(kiosk.pid, LUMA_KIOSK), 20, "video in the announced slot")

    def demand(p: Participant) -> list[bool]:
        return [data["wanted"] for name, data in p.events if name == "video_demand"]

    # Nobody watches the kiosk any more: it is told to pause its camera, then to resume.
    assert await official.call("visible", {"publisher_ids": []}) == {"ok": True}
    await wait_until(lambda: demand(kiosk)[-1:] == [False], 10, "video_demand wanted=false")
    assert await official.call("visible", {"publisher_ids": None}) == {"ok": True}
    await wait_until(lambda: demand(kiosk)[-1:] == [True], 10, "video_demand wanted=true")
    before = official.video_frames(kiosk.pid)
    await wait_until(lambda: official.video_frames(kiosk.pid) > before + 5, 20, "video again")


async def test_a_dropped_peer_connection_is_reported_and_the_page_can_rejoin(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    _admin, _kiosk_id, room_id, official, kiosk = await _two_in_a_room(client, world, people)
    # The kiosk's media connection dies while its socket stays (DTLS close_notify from the peer).
    await kiosk.close_peer()
    await wait_until(
        lambda: any(name == "left" for name, _ in kiosk.events), 15, "a `left` event on the socket"
    )
    assert sfu_participants(client, room_id) == {official.pid}
    await _wait_listed(
        official,
        [(official.pid, "connected"), (kiosk.pid, "reconnecting")],
        "the kiosk listed as reconnecting",
    )
    # The page's reaction: join again with a new peer connection, on the same socket.
    kiosk.slots.clear()
    await kiosk.join(room_id)
    await kiosk.publish(LUMA_KIOSK, 3000, video_slots=2)
    await wait_until(lambda: official.sees(kiosk.pid, LUMA_KIOSK), 20, "video after rejoining")  # type: ignore[arg-type]
    await media_keeps_flowing(official, kiosk)


# python-socketio refuses to put the closed socket in a room with ValueError when no other socket is
# connected, with KeyError (its room table) when some are (every real meeting): both undo the join.
@pytest.mark.parametrize("others_connected", [False, True], ids=["alone", "others-connected"])
async def test_a_socket_closed_during_its_join_leaves_nothing_behind(
    client: TestClient,
    world: World,
    people: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    others_connected: bool,
) -> None:
    admin = await Admin(client, world).login()
    room_id = await admin.room("회의", account_ids=[world.official_id])
    present: set[str | None] = set()
    if others_connected:
        bystander = await people("bystander", username="admin")
        await bystander.join(room_id)
        present = {bystander.pid}
    hasty = await people("hasty", username="official")
    sid = hasty.sock.get_sid("/")
    assert sid is not None
    hub = client.app[ROOM_HUB]
    # The page goes away (its socket really closes) while the server is admitting it to the SFU.
    sfu = client.app[SFU]
    admit, gate = sfu.admit, Gate()

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
    # The join undid itself: no member, no SFU participant, and no error in the log.
    assert sid not in hub.members and sid not in hub.abandoned
    assert sfu_participants(client, room_id) == present
    assert {m.pid for m in hub.room_members(str(room_id))} == present
    assert logged_errors(caplog) == []
    monkeypatch.undo()
    # So the account is not locked out by a ghost participant.
    patient = await people("patient", username="official")
    assert (await patient.join(room_id))["participant_id"] == f"a{world.official_id}"


async def test_a_late_participant_left_event_does_not_drop_the_rejoined_participant(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    """The SFU's ParticipantLeft for a failed transport can reach the hub after the page has already
    left and joined again under the same id; that stale event must not drop the new session."""
    _admin, _kiosk_id, room_id, official, kiosk = await _two_in_a_room(client, world, people)
    assert kiosk.pid
    hub = client.app[ROOM_HUB]
    await hub._on_sfu_event(ParticipantLeft(str(room_id), kiosk.pid, "transport-failed"))
    assert kiosk.pid in sfu_participants(client, room_id)
    assert kiosk.pid in {m.pid for m in hub.room_members(str(room_id))}
    await media_keeps_flowing(official, kiosk)
    assert not any(name == "left" for name, _ in kiosk.events)


async def _lose_socket(p: Participant) -> None:
    """The participant's socket is lost (its transport goes away without a goodbye); its peer
    connection is untouched."""
    ws = p.sock.eio.ws
    assert ws is not None
    await ws.close()
    await wait_until(lambda: not p.sock.connected, 10, "the socket to notice")


async def test_a_lost_socket_keeps_the_media_and_the_page_resumes_it(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    _admin, _kiosk_id, room_id, official, kiosk = await _two_in_a_room(client, world, people)
    member = client.app[ROOM_HUB].member_by_pid(str(room_id), kiosk.pid)
    assert member is not None
    token = member.resume_token

    # A congested link loses the kiosk's socket, but its media connection stays and keeps flowing
    # both ways: for the official it is still in the meeting (not "reconnecting").
    hub = client.app[ROOM_HUB]
    await _lose_socket(kiosk)
    await wait_until(lambda: hub.member_by_pid(str(room_id), kiosk.pid) is None, 20, "the loss noticed")
    assert sfu_participants(client, room_id) == {official.pid, kiosk.pid}
    await media_keeps_flowing(official, kiosk)
    states = [(p["id"], p["state"]) for p in hub.participants_json(str(room_id))]
    assert states == [(official.pid, "connected"), (kiosk.pid, "connected")]

    # A wrong token resumes nothing (another page cannot take over the kiosk's media): that join
    # is a new participant, and the old media is dropped for it.
    kiosk.sock = socketio.AsyncClient(reconnection=False)
    await kiosk.connect()
    assert (await kiosk.call("join", {"room_id": room_id, "resume": "x" * 24}))["resumed"] is False
    assert (await kiosk.call("leave")) == {"left": True}
    await kiosk.close_peer()
    # Start again with a new peer connection, lose the socket once more, and resume with the
    # right token this time.
    kiosk.slots.clear()
    fresh = await kiosk.join(room_id)
    assert fresh["resume_token"] != token
    await kiosk.publish(LUMA_KIOSK, 3000, video_slots=2)
    await media_keeps_flowing(official, kiosk)
    await _lose_socket(kiosk)
    kiosk.sock = socketio.AsyncClient(reconnection=False)
    await kiosk.connect()
    resumed = await kiosk.call("join", {"room_id": room_id, "resume": fresh["resume_token"]})
    assert resumed["resumed"] is True and resumed["participant_id"] == kiosk.pid
    assert set(resumed["slots"].values()) >= {official.pid}
    # The answer was lost on the congested link and the kiosk asks again on the same socket:
    # the same answer, not `already_joined` (which made the kiosk start over with new media).
    again = await kiosk.call("join", {"room_id": room_id, "resume": fresh["resume_token"]})
    assert again["resumed"] is True and again["slots"] == resumed["slots"], again
    # A wrong token on that socket is still refused.
    refused = await kiosk.call("join", {"room_id": room_id, "resume": "x" * 24})
    assert refused["error"]["code"] == "already_joined", refused
    await _wait_listed(official, [(official.pid, "connected"), (kiosk.pid, "connected")], "the kiosk back")
    await media_keeps_flowing(official, kiosk)
    # Same participant, same media: the SFU never saw it leave.
    assert sfu_participants(client, room_id) == {official.pid, kiosk.pid}
