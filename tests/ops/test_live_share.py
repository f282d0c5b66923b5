"""The live state a web process shares for the others' /admin/system (server/ops/live.py,
server/ops/live_share.py): it reads back as written, a bad record is refused with ValueError
(never half-read into the page), and states merge into one room list."""

from __future__ import annotations

import dataclasses
import json

import pytest

from server.ops.live import LiveParticipant, LiveRoom, LiveState, merged, state_from_json, state_to_json


def _p(room: str, pid: str, hall: str = "남성리 마을회관", downlink: int | None = 420) -> LiveParticipant:
    return LiveParticipant(
        room_id=room,
        participant_id=pid,
        kind="kiosk",
        hall=hall,
        mode="low_video",
        bars=2,
        downlink_kbps=downlink,
        packets_out=1200,
        bytes_out=900_000,
        retransmitted=3,
        nacks_sent=1,
        plis_sent=0,
    )


STATE = LiveState(
    (
        LiveRoom("7", (_p("7", "a"), _p("7", "b", "작천면 군자마을", None)), 4096),
        LiveRoom("9", (), 0),
    )
)


def test_a_shared_state_reads_back_as_written() -> None:
    text = state_to_json(STATE)
    assert "작천면 군자마을" in text  # Korean kept as it is, not \\u-escaped
    assert state_from_json(text) == STATE
    assert state_from_json(state_to_json(LiveState(()))) == LiveState(())


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not json",
        "{}",
        "[1]",
        '[{"room_id": "7"}]',
        '[{"room_id": "7", "participants": 3, "recording_bytes": 0}]',
        '[{"room_id": "7", "participants": [], "recording_bytes": "many"}]',
    ],
)
def test_a_record_that_is_not_a_shared_state_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        state_from_json(bad)


def test_a_participant_with_a_missing_extra_or_mistyped_field_is_refused() -> None:
    good = json.loads(state_to_json(STATE))
    participant = good[0]["participants"][0]
    for change in (
        lambda p: p.pop("bars"),
        lambda p: p.update(extra=1),
        lambda p: p.update(bars="three"),
        lambda p: p.update(downlink_kbps="fast"),
    ):
        broken = json.loads(json.dumps(good))
        change(broken[0]["participants"][0])
        with pytest.raises(ValueError):
            state_from_json(json.dumps(broken))
    assert participant["bars"] == 2  # the good one is untouched


def test_states_merge_by_room_and_a_split_room_lists_each_participant_once() -> None:
    other = LiveState(
        (
            # the same room while its sockets move (a web process died): one participant in both
            LiveRoom("7", (_p("7", "b"), _p("7", "c")), 8192),
            LiveRoom("12", (_p("12", "d"),), 0),
        )
    )
    state = merged([STATE, other])
    assert [room.room_id for room in state.rooms] == ["12", "7", "9"]
    room7 = next(room for room in state.rooms if room.room_id == "7")
    assert [p.participant_id for p in room7.participants] == ["a", "b", "c"]
    assert room7.participants[1].hall == "작천면 군자마을"  # the first listing wins
    assert room7.recording_bytes == 8192
    assert merged([]) == LiveState(())
    assert merged([STATE]).rooms == tuple(sorted(STATE.rooms, key=lambda r: r.room_id))
    assert dataclasses.asdict(merged([other, LiveState(())])) == dataclasses.asdict(merged([other]))
