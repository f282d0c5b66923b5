from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import holidays
import pytest

from server.petitions.deadlines import (
    SEOUL,
    DeadlineState,
    Period,
    PeriodUnit,
    PetitionType,
    add_working_days,
    add_working_hours,
    compute_due,
    deadline_state,
    due_after_pause,
    due_for_period,
    extended_due,
    is_working_day,
    max_extension_days,
    validate_extension_days,
    working_time_between,
)


def seoul(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SEOUL)


def chuseok_2026() -> list[date]:
    kr = holidays.country_holidays("KR", years=2026, language="en_US")
    return sorted(d for d, name in kr.items() if "Chuseok" in name)


# --- holidays and working days -------------------------------------------------------------


def test_known_holiday_dates_from_package() -> None:
    kr = holidays.country_holidays("KR", years=2026)
    assert date(2026, 9, 25) in kr  # Chuseok day itself
    days = chuseok_2026()
    assert date(2026, 9, 25) in days
    assert len(days) == 3


def test_is_working_day() -> None:
    assert is_working_day(date(2026, 9, 18))  # Friday
    assert not is_working_day(date(2026, 9, 19))  # Saturday
    assert not is_working_day(date(2026, 9, 20))  # Sunday
    for day in chuseok_2026():
        assert not is_working_day(day)
    assert not is_working_day(date(2026, 10, 5))  # substitute holiday for National Foundation Day
    with pytest.raises(TypeError):
        is_working_day(seoul(2026, 9, 18, 10))


def test_add_working_days_skips_weekend() -> None:
    assert add_working_days(date(2026, 3, 13), 1) == date(2026, 3, 16)  # Fri -> Mon
    assert add_working_days(date(2026, 3, 13), 0) == date(2026, 3, 13)
    with pytest.raises(ValueError):
        add_working_days(date(2026, 3, 13), -1)


def test_add_working_hours_skips_lunch_and_night() -> None:
    assert add_working_hours(seoul(2026, 3, 10, 11), 2) == seoul(2026, 3, 10, 14)
    assert add_working_hours(seoul(2026, 3, 10, 11), 1) == seoul(2026, 3, 10, 12)  # ends at lunch, stays
    assert add_working_hours(seoul(2026, 3, 10, 12, 30), 1) == seoul(2026, 3, 10, 14)
    assert add_working_hours(seoul(2026, 3, 10, 17), 3) == seoul(2026, 3, 11, 11)
    assert add_working_hours(seoul(2026, 3, 10, 9), 8) == seoul(2026, 3, 10, 18)
    assert add_working_hours(seoul(2026, 3, 10, 7), 0.5) == seoul(2026, 3, 10, 9, 30)


def test_add_many_working_hours_roundtrips() -> None:
    start = seoul(2026, 1, 5, 9)
    end = add_working_hours(start, 8 * 250)  # about a working year
    assert working_time_between(start, end) == timedelta(hours=8 * 250)
    assert end.year == 2027 or end.month == 12


def test_working_time_between() -> None:
    assert working_time_between(seoul(2026, 3, 10, 9), seoul(2026, 3, 10, 18)) == timedelta(hours=8)
    assert working_time_between(seoul(2026, 3, 13, 17), seoul(2026, 3, 16, 10)) == timedelta(hours=2)
    assert working_time_between(seoul(2026, 3, 16, 10), seoul(2026, 3, 13, 17)) == timedelta(0)


# --- the counting rule -----------------------------------------------------------------------


def test_period_units_follow_five_day_rule() -> None:
    assert Period(days=5).unit is PeriodUnit.WORKING_HOURS
    assert Period(days=5).working_hours == 40
    assert Period(days=6).unit is PeriodUnit.DAYS
    assert Period(hours=3).unit is PeriodUnit.WORKING_HOURS
    with pytest.raises(ValueError):
        Period()
    with pytest.raises(ValueError):
        Period(days=1, hours=1)
    with pytest.raises(ValueError):
        Period(days=0)


def test_five_day_period_counts_hours_from_receipt_time() -> None:
    # Tue 2026-03-10 14:00 + 40 working hours -> Tue 2026-03-17 14:00 (5 working days later)
    assert due_for_period(seoul(2026, 3, 10, 14), Period(days=5)) == seoul(2026, 3, 17, 14)


def test_six_day_period_counts_days_first_day_included() -> None:
    # Tue 10 = day 1 ... Tue 17 = day 6
    assert due_for_period(seoul(2026, 3, 10, 14), Period(days=6)) == seoul(2026, 3, 17, 18)


def test_seven_day_across_weekend() -> None:
    # Wed 2026-03-11 is day 1; Thu 2, Fri 3, Mon 4, Tue 5, Wed 6, Thu 7
    due = compute_due(seoul(2026, 3, 11, 10), PetitionType.GRIEVANCE)
    assert due == seoul(2026, 3, 19, 18)
    assert due.tzinfo is not None and due.utcoffset() == timedelta(hours=9)


def test_fourteen_day_period() -> None:
    # Mon 2026-03-02 is a substitute holiday, so Tue 03-03 filing: day 1 = 03-03 ... day 14 = 03-20
    due = compute_due(seoul(2026, 3, 3, 9, 30), PetitionType.QUESTION_LAW)
    assert due == seoul(2026, 3, 20, 18)
    assert compute_due(seoul(2026, 3, 3, 9, 30), PetitionType.SUGGESTION) == due


def test_seven_day_across_chuseok_2026() -> None:
    days = chuseok_2026()
    received = seoul(2026, 9, 22, 10)  # Tuesday before Chuseok
    due = compute_due(received, PetitionType.QUESTION_PROCEDURE)
    # Count the working days ourselves from the package's data.
    counted: list[date] = []
    day = received.date()
    while len(counted) < 7:
        if day.weekday() < 5 and day not in holidays.country_holidays("KR", years=day.year):
            counted.append(day)
        day += timedelta(days=1)
    assert due == datetime.combine(counted[-1], datetime.min.time(), tzinfo=SEOUL).replace(hour=18)
    assert not set(days) & set(counted)
    assert due == seoul(2026, 10, 2, 18)  # 22, 23, 28, 29, 30, 1, 2


def test_simple_request_friday_evening_lands_monday_morning() -> None:
    due = compute_due(seoul(2026, 3, 13, 17), PetitionType.SIMPLE)  # Friday 17:00
    assert due == seoul(2026, 3, 16, 11)  # 1 h on Friday + 2 h on Monday
    assert is_working_day(due.date())
    assert 9 <= due.hour < 18


def test_simple_request_before_chuseok_lands_after_holiday() -> None:
    due = compute_due(seoul(2026, 9, 23, 17), PetitionType.SIMPLE)  # Wednesday before Chuseok
    assert due == seoul(2026, 9, 28, 11)


def test_filed_at_night_starts_next_working_morning() -> None:
    assert compute_due(seoul(2026, 3, 10, 22), PetitionType.SIMPLE) == seoul(2026, 3, 11, 12)
    # Day counting: after-hours filing makes the next working day day 1.
    assert compute_due(seoul(2026, 3, 10, 22), PetitionType.GRIEVANCE) == compute_due(
        seoul(2026, 3, 11, 9), PetitionType.GRIEVANCE
    )
    # Filed at 17:59 still counts the same day as day 1.
    assert compute_due(seoul(2026, 3, 10, 17, 59), PetitionType.GRIEVANCE) == seoul(2026, 3, 18, 18)


def test_filed_on_weekend_starts_monday() -> None:
    assert compute_due(seoul(2026, 3, 14, 11), PetitionType.SIMPLE) == seoul(2026, 3, 16, 12)
    assert compute_due(seoul(2026, 3, 15, 23), PetitionType.GRIEVANCE) == seoul(2026, 3, 24, 18)


def test_other_timezones_are_converted() -> None:
    utc_time = datetime(2026, 3, 13, 8, 0, tzinfo=UTC)  # = 17:00 in Seoul
    assert compute_due(utc_time, PetitionType.SIMPLE) == seoul(2026, 3, 16, 11)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 3, 10, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_due(naive, PetitionType.SIMPLE)
    with pytest.raises(ValueError):
        add_working_hours(naive, 1)
    with pytest.raises(ValueError):
        deadline_state(seoul(2026, 3, 10, 18), naive)
    with pytest.raises(ValueError):
        extended_due(seoul(2026, 3, 19, 18), naive, PetitionType.GRIEVANCE, 3)


def test_labels() -> None:
    assert PetitionType.QUESTION_PROCEDURE.label_ko == "질의(절차)"
    assert PetitionType.QUESTION_LAW.label_ko == "질의(법령)"
    assert PetitionType.SUGGESTION.label_ko == "건의"
    assert PetitionType.GRIEVANCE.label_ko == "고충"
    assert PetitionType.SIMPLE.label_ko == "기타(즉시)"
    assert all(t.label_en for t in PetitionType)
    assert PetitionType("grievance") is PetitionType.GRIEVANCE


# --- extension -------------------------------------------------------------------------------


def test_extension_up_to_original_period() -> None:
    received = seoul(2026, 3, 11, 10)
    due = compute_due(received, PetitionType.GRIEVANCE)  # Thu 03-19 18:00
    assert extended_due(due, received, PetitionType.GRIEVANCE, 1) == seoul(2026, 3, 20, 18)
    assert extended_due(due, received, PetitionType.GRIEVANCE, 7) == seoul(2026, 3, 30, 18)
    # 3 days counted in days equals 24 working hours from the original deadline.
    assert extended_due(due, received, PetitionType.GRIEVANCE, 3) == add_working_hours(due, 24)


def test_extension_longer_than_period_is_refused() -> None:
    received = seoul(2026, 3, 11, 10)
    due = compute_due(received, PetitionType.GRIEVANCE)
    with pytest.raises(ValueError, match="between 1 and 7"):
        extended_due(due, received, PetitionType.GRIEVANCE, 8)
    with pytest.raises(ValueError):
        extended_due(due, received, PetitionType.GRIEVANCE, 0)
    assert max_extension_days(PetitionType.QUESTION_LAW) == 14
    validate_extension_days(PetitionType.QUESTION_LAW, 14)


def test_simple_request_cannot_be_extended_by_days() -> None:
    received = seoul(2026, 3, 11, 10)
    due = compute_due(received, PetitionType.SIMPLE)
    assert max_extension_days(PetitionType.SIMPLE) == 0
    with pytest.raises(ValueError, match="cannot be extended"):
        extended_due(due, received, PetitionType.SIMPLE, 1)


def test_extension_due_must_follow_receipt() -> None:
    with pytest.raises(ValueError, match="after received_at"):
        extended_due(seoul(2026, 3, 10, 9), seoul(2026, 3, 11, 10), PetitionType.GRIEVANCE, 2)


def test_extension_across_chuseok() -> None:
    received = seoul(2026, 9, 14, 10)
    due = compute_due(received, PetitionType.GRIEVANCE)  # Mon 14 .. Tue 22
    assert due == seoul(2026, 9, 22, 18)
    # Wed 23 is day 1 of the extension; Chuseok and the weekend skip to Mon 28.
    assert extended_due(due, received, PetitionType.GRIEVANCE, 2) == seoul(2026, 9, 28, 18)


# --- pause for supplements ---------------------------------------------------------------------


def test_due_after_pause() -> None:
    due = seoul(2026, 3, 19, 18)
    # Paused for two full working days (Mon 09:00 .. Wed 09:00).
    assert due_after_pause(
        due, seoul(2026, 3, 16, 9), seoul(2026, 3, 18, 9), PetitionType.GRIEVANCE
    ) == seoul(2026, 3, 23, 18)
    # A pause entirely over the weekend costs nothing.
    assert due_after_pause(due, seoul(2026, 3, 14, 9), seoul(2026, 3, 15, 20), PetitionType.GRIEVANCE) == due
    # Hour-counted: exact working time is added.
    simple_due = seoul(2026, 3, 16, 11)
    assert due_after_pause(
        simple_due, seoul(2026, 3, 16, 9), seoul(2026, 3, 16, 10), PetitionType.SIMPLE
    ) == seoul(2026, 3, 16, 12)


# --- deadline state ------------------------------------------------------------------------------


def test_deadline_state_day_counted() -> None:
    due = seoul(2026, 3, 19, 18)  # Thursday
    assert deadline_state(due, seoul(2026, 3, 17, 10)) is DeadlineState.ON_TIME
    assert deadline_state(due, seoul(2026, 3, 18, 18)) is DeadlineState.DUE_SOON  # 8 h left
    assert deadline_state(due, seoul(2026, 3, 18, 17)) is DeadlineState.ON_TIME  # 9 h left
    assert deadline_state(due, seoul(2026, 3, 19, 18)) is DeadlineState.DUE_SOON
    assert deadline_state(due, seoul(2026, 3, 19, 18, 1)) is DeadlineState.OVERDUE


def test_deadline_state_over_weekend() -> None:
    due = seoul(2026, 3, 16, 18)  # Monday
    assert deadline_state(due, seoul(2026, 3, 13, 20)) is DeadlineState.DUE_SOON  # Friday night


def test_deadline_state_hour_counted() -> None:
    due = seoul(2026, 3, 16, 11)
    kind = PetitionType.SIMPLE
    assert deadline_state(due, seoul(2026, 3, 16, 9, 30), petition_type=kind) is DeadlineState.ON_TIME
    assert deadline_state(due, seoul(2026, 3, 16, 10), petition_type=kind) is DeadlineState.DUE_SOON
    assert deadline_state(due, seoul(2026, 3, 16, 11, 5), petition_type=kind) is DeadlineState.OVERDUE
    # Without the type, the one-working-day threshold applies.
    assert deadline_state(due, seoul(2026, 3, 16, 9, 30)) is DeadlineState.DUE_SOON


def test_deadline_state_answered() -> None:
    due = seoul(2026, 3, 19, 18)
    late_now = seoul(2026, 4, 1, 10)
    assert deadline_state(due, late_now, answered_at=seoul(2026, 3, 19, 17)) is DeadlineState.ON_TIME
    assert deadline_state(due, late_now, answered_at=seoul(2026, 3, 20, 9)) is DeadlineState.OVERDUE
