"""The meeting status machine, pure (no database, no I/O):

    scheduled --start--> live --end--> ended
        |
        +----cancel----> cancelled

The clock starts a scheduled meeting at its start time and ends a live one nobody runs any more
(autostart.py, autoend.py); the chair or an administrator may do both by hand. Only an
administrator cancels. ``ended`` and ``cancelled`` are final; the record of an ended meeting stays
editable until it is closed (``Meeting.record_closed_at``), which is not a status.

``MeetingStatus`` is a ``StrEnum``, so a status read from the database (a ``str``) compares equal to
its member and the JSON and templates see the same strings as before.
"""

from __future__ import annotations

from enum import StrEnum

from server.errors import Conflict


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"
    CANCELLED = "cancelled"


class MeetingAction(StrEnum):
    START = "start"
    END = "end"
    CANCEL = "cancel"


#: Statuses in which a meeting is still to come or going on (calendars, the kiosk's list).
CURRENT = (MeetingStatus.SCHEDULED, MeetingStatus.LIVE)
#: Statuses after which nothing about the meeting itself changes any more.
FINAL = (MeetingStatus.ENDED, MeetingStatus.CANCELLED)

# action -> (statuses it is allowed from, status it leads to)
TRANSITIONS: dict[MeetingAction, tuple[frozenset[MeetingStatus], MeetingStatus]] = {
    MeetingAction.START: (frozenset({MeetingStatus.SCHEDULED}), MeetingStatus.LIVE),
    MeetingAction.END: (frozenset({MeetingStatus.LIVE}), MeetingStatus.ENDED),
    MeetingAction.CANCEL: (frozenset({MeetingStatus.SCHEDULED}), MeetingStatus.CANCELLED),
}


def next_status(status: str, action: MeetingAction) -> MeetingStatus:
    """The status ``action`` leads to from ``status``; a ``Conflict`` (409,
    ``illegal_meeting_transition``) if the machine does not allow it."""
    allowed_from, target = TRANSITIONS[action]
    if status not in allowed_from:
        raise Conflict(
            f"cannot {action} a {status} meeting",
            code="illegal_meeting_transition",
            details={"from_status": str(status), "action": str(action)},
        )
    return target
