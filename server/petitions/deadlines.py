"""Legal processing deadlines for civil petitions (민원).

Source: Enforcement Decree of the Civil Petitions Treatment Act (민원 처리에 관한 법률 시행령),
arts. 14, 15 and 17 for the periods, art. 19 for counting, art. 21 for the one extension.

How we read the counting rule (art. 19):

* A period of **5 days or less** counts in **working hours** from the moment of receipt, 8 working
  hours to a day. The only such type today is the simple request (3 working hours); a generic
  ``Period(days=N)`` with ``N <= 5`` is converted to ``N * 8`` working hours.
* A period of **6 days or more** counts in **days, the first day included** ("첫날을 산입"): the day of
  receipt is day 1, and the deadline is the end of office hours (18:00) on day N.
* Saturdays and public holidays are excluded either way. Sundays are public holidays under the
  Regulation on Holidays of Government Offices, so they are excluded too. Public holidays come from
  the maintained ``holidays`` package (``KR``, public category), which includes substitute holidays,
  Seollal, Chuseok and election days. A temporary holiday (임시공휴일) declared late is only known
  once the package is updated — keep the pin fresh.

Assumptions we made where the decree is silent (documented so an auditor can disagree):

* Office hours are 09:00–18:00 Asia/Seoul with lunch 12:00–13:00, i.e. 8 working hours a day,
  matching the decree's "1 day = 8 working hours" and the standard civil-service schedule.
* A petition received outside office hours (after 18:00, on a weekend or holiday) is treated as
  received at the start of the next working day: hour counting starts at that 09:00, and day counting
  takes that day as day 1. One received before 09:00 on a working day starts that day at 09:00.
* Seoul has no daylight-saving time, so wall-clock arithmetic in Asia/Seoul is exact.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import holidays

logger = logging.getLogger(__name__)

SEOUL = ZoneInfo("Asia/Seoul")

OFFICE_START = time(9, 0)
LUNCH_START = time(12, 0)
LUNCH_END = time(13, 0)
OFFICE_END = time(18, 0)
HOURS_PER_WORKING_DAY = 8
# Periods of this many days or fewer count in working hours (decree art. 19(1)).
MAX_DAYS_COUNTED_IN_HOURS = 5

# Working intervals of one office day, as (start, end) wall-clock times in Seoul.
_WORK_INTERVALS: tuple[tuple[time, time], ...] = ((OFFICE_START, LUNCH_START), (LUNCH_END, OFFICE_END))
# Longest run of non-working days we expect (Chuseok + weekend + substitute is ~5); this is only a
# safety bound against an infinite loop if the holiday data were ever broken.
_MAX_SCAN_DAYS = 60


class PeriodUnit(StrEnum):
    WORKING_HOURS = "working_hours"
    DAYS = "days"


@dataclass(frozen=True)
class Period:
    """A legal processing period. Give exactly one of ``days`` or ``hours`` (working hours)."""

    days: int | None = None
    hours: int | None = None

    def __post_init__(self) -> None:
        if (self.days is None) == (self.hours is None):
            raise ValueError("Period needs exactly one of days or hours")
        value = self.days if self.days is not None else self.hours
        if value is None or value <= 0:
            raise ValueError("Period must be positive")

    @property
    def unit(self) -> PeriodUnit:
        if self.hours is not None or (self.days is not None and self.days <= MAX_DAYS_COUNTED_IN_HOURS):
            return PeriodUnit.WORKING_HOURS
        return PeriodUnit.DAYS

    @property
    def working_hours(self) -> int:
        """The period in working hours (only meaningful when ``unit`` is WORKING_HOURS)."""
        if self.hours is not None:
            return self.hours
        assert self.days is not None
        return self.days * HOURS_PER_WORKING_DAY

    @property
    def whole_days(self) -> int:
        """Whole days in the period; 0 for a period shorter than one working day."""
        if self.days is not None:
            return self.days
        assert self.hours is not None
        return self.hours // HOURS_PER_WORKING_DAY


class PetitionType(StrEnum):
    """Petition types with their legal processing periods."""

    QUESTION_PROCEDURE = "question_procedure"
    QUESTION_LAW = "question_law"
    SUGGESTION = "suggestion"
    GRIEVANCE = "grievance"
    SIMPLE = "simple"

    @property
    def label_ko(self) -> str:
        return _TYPE_INFO[self][0]

    @property
    def label_en(self) -> str:
        return _TYPE_INFO[self][1]

    @property
    def period(self) -> Period:
        return _TYPE_INFO[self][2]

    @property
    def counts_in_hours(self) -> bool:
        return self.period.unit is PeriodUnit.WORKING_HOURS


_TYPE_INFO: dict[PetitionType, tuple[str, str, Period]] = {
    PetitionType.QUESTION_PROCEDURE: ("질의(절차)", "Question about a procedure", Period(days=7)),
    PetitionType.QUESTION_LAW: ("질의(법령)", "Question about a law", Period(days=14)),
    PetitionType.SUGGESTION: ("건의", "Suggestion", Period(days=14)),
    PetitionType.GRIEVANCE: ("고충", "Grievance", Period(days=7)),
    PetitionType.SIMPLE: ("기타(즉시)", "Simple request (immediate)", Period(hours=3)),
}


class DeadlineState(StrEnum):
    ON_TIME = "on_time"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got naive datetime {value.isoformat()})")
    return value.astimezone(SEOUL)


@functools.cache
def _holiday_dates(year: int) -> frozenset[date]:
    # Memoised as an immutable set: building the holiday table is comparatively slow and the
    # data for a given package version never changes.
    return frozenset(holidays.country_holidays("KR", years=year).keys())


def is_public_holiday(day: date) -> bool:
    return day in _holiday_dates(day.year)


def is_working_day(day: date) -> bool:
    """True on Monday–Friday that is not a Korean public holiday."""
    if isinstance(day, datetime):
        raise TypeError("is_working_day takes a date; convert the datetime to Asia/Seoul first")
    return day.weekday() < 5 and not is_public_holiday(day)


def next_working_day(day: date) -> date:
    """The first working day strictly after ``day``."""
    for offset in range(1, _MAX_SCAN_DAYS + 1):
        candidate = day + timedelta(days=offset)
        if is_working_day(candidate):
            return candidate
    raise RuntimeError(f"no working day within {_MAX_SCAN_DAYS} days after {day}")


def add_working_days(day: date, days: int) -> date:
    """The date ``days`` working days after ``day`` (``day`` itself is not counted; 0 returns it)."""
    if days < 0:
        raise ValueError("days must be >= 0")
    current = day
    for _ in range(days):
        current = next_working_day(current)
    return current


def _at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=SEOUL)


def _first_counted_day(received_at: datetime) -> date:
    """Day 1 for day-counted periods: the receipt day, or the next working day if the petition
    arrived after office hours or on a non-working day."""
    local = _require_aware(received_at, "received_at")
    day = local.date()
    if is_working_day(day) and local.timetz().replace(tzinfo=None) < OFFICE_END:
        return day
    return next_working_day(day)


def add_working_time(start: datetime, amount: timedelta) -> datetime:
    """The instant at which ``amount`` of office time has elapsed since ``start``.

    Time outside office hours, at lunch, on weekends and public holidays does not count. A start
    outside office hours is moved to the next working instant first. The result is in Asia/Seoul;
    a deadline that falls exactly at 12:00 or 18:00 stays there (it is not pushed to 13:00/09:00).
    """
    local = _require_aware(start, "start")
    if amount < timedelta(0):
        raise ValueError("amount must be >= 0")
    remaining = amount
    day = local.date()
    cursor = local.replace(tzinfo=None)
    # Two calendar days per working day needed, plus holiday slack, bounds the scan generously.
    working_days_needed = math.ceil(amount / timedelta(hours=HOURS_PER_WORKING_DAY))
    for _ in range(_MAX_SCAN_DAYS + 2 * working_days_needed + 1):
        if is_working_day(day):
            for begin, end in _WORK_INTERVALS:
                seg_start = max(cursor, datetime.combine(day, begin))
                seg_end = datetime.combine(day, end)
                if seg_start >= seg_end:
                    continue
                available = seg_end - seg_start
                if remaining <= available:
                    return (seg_start + remaining).replace(tzinfo=SEOUL)
                remaining -= available
        day = day + timedelta(days=1)
        cursor = datetime.combine(day, time(0, 0))
    raise RuntimeError("working-time scan did not terminate")  # pragma: no cover


def add_working_hours(start: datetime, hours: float) -> datetime:
    """``add_working_time`` with the amount given in hours (8 working hours make a working day)."""
    return add_working_time(start, timedelta(hours=hours))


def working_time_between(start: datetime, end: datetime) -> timedelta:
    """Office time elapsed from ``start`` to ``end`` (zero if ``end`` is not after ``start``)."""
    a = _require_aware(start, "start").replace(tzinfo=None)
    b = _require_aware(end, "end").replace(tzinfo=None)
    if b <= a:
        return timedelta(0)
    total = timedelta(0)
    day = a.date()
    while day <= b.date():
        if is_working_day(day):
            for begin, finish in _WORK_INTERVALS:
                seg_start = max(a, datetime.combine(day, begin))
                seg_end = min(b, datetime.combine(day, finish))
                if seg_end > seg_start:
                    total += seg_end - seg_start
        day += timedelta(days=1)
    return total


def due_for_period(received_at: datetime, period: Period) -> datetime:
    """Deadline for an arbitrary legal period, applying the 5-day/6-day counting rule."""
    local = _require_aware(received_at, "received_at")
    if period.unit is PeriodUnit.WORKING_HOURS:
        return add_working_hours(local, period.working_hours)
    assert period.days is not None
    last_day = add_working_days(_first_counted_day(local), period.days - 1)
    return _at(last_day, OFFICE_END)


def compute_due(received_at: datetime, petition_type: PetitionType) -> datetime:
    """Legal deadline (aware, Asia/Seoul) for a petition of ``petition_type`` received at ``received_at``."""
    return due_for_period(received_at, petition_type.period)


def max_extension_days(petition_type: PetitionType) -> int:
    """Longest extension in days: at most the original period (decree art. 21). 0 means the type
    cannot be extended by whole days (the simple request's period is only 3 working hours)."""
    return petition_type.period.whole_days


def validate_extension_days(petition_type: PetitionType, extension_days: int) -> None:
    """Raise ValueError unless ``extension_days`` is a legal extension for ``petition_type``."""
    limit = max_extension_days(petition_type)
    if limit == 0:
        raise ValueError(
            f"a {petition_type.value} petition (period {petition_type.period.working_hours} working hours) "
            "cannot be extended by days: the extension may not exceed the original period"
        )
    if not 1 <= extension_days <= limit:
        raise ValueError(
            f"extension of {extension_days} days is not allowed for {petition_type.value}: "
            f"it must be between 1 and {limit} days (the original period)"
        )


def extended_due(
    original_due: datetime, received_at: datetime, petition_type: PetitionType, extension_days: int
) -> datetime:
    """New deadline after the one allowed extension of ``extension_days``.

    The extension is counted in days after the original deadline's day and ends at 18:00. For a
    day-counted original deadline (18:00 on day D) this equals counting ``extension_days * 8``
    working hours, so the 5-day/6-day rule gives the same answer whichever way the extension is read.
    """
    due_local = _require_aware(original_due, "original_due")
    received_local = _require_aware(received_at, "received_at")
    if due_local <= received_local:
        raise ValueError("original_due must be after received_at")
    validate_extension_days(petition_type, extension_days)
    return _at(add_working_days(due_local.date(), extension_days), OFFICE_END)


def due_after_pause(
    due_at: datetime, paused_at: datetime, resumed_at: datetime, petition_type: PetitionType
) -> datetime:
    """Deadline pushed back by a pause (time spent waiting for the resident to supplement the
    petition does not count toward the period). The office time of the pause is added; for
    day-counted types the result is rounded up to 18:00 of that day, since those deadlines are
    whole days."""
    pause = working_time_between(paused_at, resumed_at)
    due_local = _require_aware(due_at, "due_at")
    if pause == timedelta(0):
        return due_local
    shifted = add_working_time(due_local, pause)
    if petition_type.counts_in_hours:
        return shifted
    return _at(shifted.date(), OFFICE_END)


def deadline_state(
    due_at: datetime,
    now: datetime,
    answered_at: datetime | None = None,
    *,
    petition_type: PetitionType | None = None,
) -> DeadlineState:
    """Where a petition stands against its deadline. Computed on read, never stored.

    Answered petitions are ON_TIME or OVERDUE depending on when the answer went out. Open ones are
    DUE_SOON when at most one working day of office time remains (one working hour for hour-counted
    types such as the simple request), OVERDUE once ``now`` is past ``due_at``.
    """
    due_local = _require_aware(due_at, "due_at")
    now_local = _require_aware(now, "now")
    if answered_at is not None:
        answered_local = _require_aware(answered_at, "answered_at")
        return DeadlineState.ON_TIME if answered_local <= due_local else DeadlineState.OVERDUE
    if now_local > due_local:
        return DeadlineState.OVERDUE
    hour_counted = petition_type is not None and petition_type.counts_in_hours
    threshold = timedelta(hours=1 if hour_counted else HOURS_PER_WORKING_DAY)
    if working_time_between(now_local, due_local) <= threshold:
        return DeadlineState.DUE_SOON
    return DeadlineState.ON_TIME
