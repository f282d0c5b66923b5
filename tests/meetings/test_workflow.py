"""The meeting status machine (``server/meetings/workflow.py``), pure: every (status, action) pair
either leads where the table says or is a 409 ``illegal_meeting_transition`` naming both."""

from __future__ import annotations

import pytest

from server.errors import Conflict
from server.meetings.workflow import CURRENT, FINAL, MeetingAction, MeetingStatus, next_status

ALLOWED = {
    (MeetingStatus.SCHEDULED, MeetingAction.START): MeetingStatus.LIVE,
    (MeetingStatus.LIVE, MeetingAction.END): MeetingStatus.ENDED,
    (MeetingStatus.SCHEDULED, MeetingAction.CANCEL): MeetingStatus.CANCELLED,
}


@pytest.mark.parametrize("status", list(MeetingStatus))
@pytest.mark.parametrize("action", list(MeetingAction))
def test_every_move_is_allowed_or_a_conflict(status: MeetingStatus, action: MeetingAction) -> None:
    # The database hands back plain strings: the machine takes them as they are.
    if (status, action) in ALLOWED:
        assert next_status(status.value, action) is ALLOWED[(status, action)]
        return
    with pytest.raises(Conflict) as exc:
        next_status(status.value, action)
    assert exc.value.code == "illegal_meeting_transition"
    assert exc.value.details == {"from_status": status.value, "action": action.value}


def test_final_statuses_accept_no_action_and_current_ones_some() -> None:
    assert set(CURRENT) | set(FINAL) == set(MeetingStatus) and not set(CURRENT) & set(FINAL)
    for status in FINAL:
        assert not any(from_status == status for from_status, _ in ALLOWED)
    for status in CURRENT:
        assert any(from_status == status for from_status, _ in ALLOWED)


def test_statuses_are_the_strings_stored_and_served() -> None:
    assert [s.value for s in MeetingStatus] == ["scheduled", "live", "ended", "cancelled"]
    assert MeetingStatus.LIVE == "live" and "live" in CURRENT
