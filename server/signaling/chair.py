"""What participants and the chair do to a scheduled meeting besides sending media: raise a hand,
share a screen, and the chair's controls (admit from the lobby, mute, ask to unmute, remove, give
the floor, move through the agenda, end the meeting for everybody).

The chair is the meeting's chair or an administrator (``Member.is_chair``, decided at join). Muting
is done by the participant's own page when told (``chair_mute``), as in other browser meeting
systems: the server cannot silence a microphone, but a page that ignored it would still be shown
as unmuted to everybody, and the chair can remove it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from server.auth.roles import Principal, Role
from server.meetings import service as meetings
from server.meetings.ending import ending
from server.signaling.events import Admitted, Agenda, AskUnmute, ChairMute, Removed, emit
from server.signaling.floor import Floor
from server.signaling.messages import ChairRequest, HandRequest, ScreenRequest, SignalingError
from server.signaling.names import socket_room

if TYPE_CHECKING:
    from server.signaling.hub_room import Member
    from server.signaling.room_hub import RoomHub

log = logging.getLogger(__name__)


def _floor_of(hub: RoomHub, member: Member) -> Floor:
    floor = hub.floor_of(member.room_id)
    if floor is None:
        raise SignalingError("no_chair", "this room is not a scheduled meeting; nobody chairs it")
    return floor


async def hand(hub: RoomHub, sid: str, data: Any) -> dict[str, Any]:
    """Raise or lower one's own hand (the kiosk's one big button)."""
    member = hub.joined(sid)
    request = HandRequest.from_dict(data)
    floor = _floor_of(hub, member)
    if request.raised:
        floor.raise_hand(member.pid)
    else:
        floor.lower(member.pid)
    await hub.keep_floor(member.room_id)
    await hub.broadcast_hands(member.room_id)
    await hub.broadcast_participants(member.room_id)
    return {"ok": True, **floor.hands_json()}


async def screen(hub: RoomHub, sid: str, principal: Principal, data: Any) -> dict[str, Any]:
    """An official's page now sends a shared screen in place of its camera (or stopped)."""
    member = hub.joined(sid)
    request = ScreenRequest.from_dict(data)
    if principal.role is Role.KIOSK:
        raise SignalingError("forbidden", "kiosks do not share screens")
    member.sharing = request.active
    if (floor := hub.floor_of(member.room_id)) is not None:
        if request.active:
            floor.sharing = member.pid
        elif floor.sharing == member.pid:
            floor.sharing = None
        await hub.keep_floor(member.room_id)
    await hub.broadcast_participants(member.room_id)
    return {"ok": True}


async def chair(hub: RoomHub, sid: str, principal: Principal, data: Any) -> dict[str, Any]:
    member = hub.joined(sid)
    request = ChairRequest.from_dict(data)
    if not member.is_chair:
        raise SignalingError("not_chair", "only the chair of the meeting can do this")
    floor = _floor_of(hub, member)
    room_id = member.room_id
    target = request.participant_id
    log.info(
        "chair action", extra={"room_id": room_id, "action": request.action, "participant": target or ""}
    )
    if request.action == "admit":
        assert target is not None
        entry = floor.admit(target)
        if entry is not None:
            hub.remove_from_lobby(room_id, entry.sid)
            await emit(hub.sio, Admitted(), to=entry.sid)
        await hub.send_lobby(room_id)
    elif request.action == "remove":
        assert target is not None
        if target == member.pid:
            raise SignalingError("invalid_target", "the chair cannot remove itself; leave instead")
        entry = floor.remove(target)
        if entry is not None:
            hub.remove_from_lobby(room_id, entry.sid)
            await emit(hub.sio, Removed(), to=entry.sid)
        if (other := hub.member_by_pid(room_id, target)) is not None:
            await emit(hub.sio, Removed(), to=other.sid)
            await hub.leave(other.sid, reason="removed")
        await hub.forget_ghost(room_id, target)
        await hub.send_lobby(room_id)
        await hub.broadcast_hands(room_id)
        await hub.broadcast_participants(room_id)
    elif request.action in ("mute", "ask_unmute", "give_floor", "lower_hand"):
        assert target is not None
        other = hub.member_by_pid(room_id, target)
        if other is None:
            raise SignalingError("unknown_participant", f"{target} is not in the meeting")
        if request.action == "mute":
            other.audio_muted = True
            await emit(hub.sio, ChairMute(), to=other.sid)
            await hub.broadcast_participants(room_id)
        elif request.action == "ask_unmute":
            await emit(hub.sio, AskUnmute(floor=False), to=other.sid)
        else:
            if request.action == "give_floor":
                floor.give_floor(target)
                await emit(hub.sio, AskUnmute(floor=True), to=other.sid)
            else:
                floor.lower(target)
            await hub.broadcast_hands(room_id)
            await hub.broadcast_participants(room_id)
    elif request.action == "take_floor":
        floor.give_floor(None)
        await hub.broadcast_hands(room_id)
        await hub.broadcast_participants(room_id)
    elif request.action == "agenda":
        try:
            entry_item = floor.set_item(request.item_id)
        except KeyError as exc:
            raise SignalingError("unknown_item", "that item is not on this meeting's agenda") from exc
        if entry_item is not None:
            # A chapter in the recording, so the record can jump to each item.
            hub.mark(room_id, f"{entry_item.position}. {entry_item.title}")
        await emit(hub.sio, Agenda(**floor.agenda_json()), room=socket_room(room_id))
    else:  # "end"
        await end_for_all(hub, principal, floor, room_id)
        return {"ok": True}
    await hub.keep_floor(room_id)
    return {"ok": True}


async def end_for_all(hub: RoomHub, principal: Principal, floor: Floor, room_id: str) -> None:
    """End the meeting (status, attendance) and then close its room for everybody."""
    async with ending(hub.sessionmaker, hub) as work:
        meeting = await meetings.get_meeting(work.session, floor.meeting_id, lock=True)
        meetings.require_manager(principal, meeting)
        await work.end_meeting(principal, meeting)
