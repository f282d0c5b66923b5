"""iCalendar feeds of meetings (RFC 5545, written with the ``icalendar`` library).

Times carry ``TZID=Asia/Seoul`` with a VTIMEZONE, so a phone calendar shows Gangjin's clock whatever
its own zone; a cancelled meeting stays in the feed with ``STATUS:CANCELLED`` (and a higher
``SEQUENCE``) so calendars remove it instead of keeping a stale copy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from icalendar import Calendar, Event

from server.meetings.models import Meeting
from server.meetings.workflow import MeetingStatus
from server.timeutil import SEOUL

PRODID = "-//Gangjin County//Maeul meetings//KO"
UID_DOMAIN = "maeul.gangjin"
_STATUS = {
    MeetingStatus.SCHEDULED: "CONFIRMED",
    MeetingStatus.LIVE: "CONFIRMED",
    MeetingStatus.ENDED: "CONFIRMED",
    MeetingStatus.CANCELLED: "CANCELLED",
}


def meeting_uid(meeting: Meeting) -> str:
    return f"meeting-{meeting.id}@{UID_DOMAIN}"


def build_calendar(
    meetings: Iterable[Meeting], *, name: str, now: dt.datetime, base_url: str, link_prefix: str | None
) -> bytes:
    """One VCALENDAR with one VEVENT per meeting. ``link_prefix`` (e.g. ``/meetings/``) adds a URL
    to the meeting's record for accounts; kiosks get none."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", "Asia/Seoul")
    for meeting in meetings:
        event = Event()
        event.add("uid", meeting_uid(meeting))
        event.add("dtstamp", now.astimezone(dt.UTC))
        event.add("dtstart", meeting.starts_at.astimezone(SEOUL))
        event.add("dtend", meeting.ends_at.astimezone(SEOUL))
        event.add("summary", meeting.title)
        if meeting.purpose:
            event.add("description", meeting.purpose)
        event.add("status", _STATUS[MeetingStatus(meeting.status)])
        event.add("sequence", meeting.sequence)
        if link_prefix is not None:
            event.add("url", f"{base_url}{link_prefix}{meeting.id}/record")
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
