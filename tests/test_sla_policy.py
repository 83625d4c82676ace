"""Working-day deadlines, reminders and the policy table."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mediation.cases import lifecycle as lc
from mediation.config import DEFAULT_SLA_POLICY, FAST_SLA_POLICY, resolve_sla_policy
from mediation.sla.calendar import BusinessCalendar
from mediation.sla.policy import (
    add_duration,
    deadline_for,
    end_of_working_days,
    reminder_at,
    stage_of,
)

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def official() -> BusinessCalendar:
    return BusinessCalendar.official()


def sh(*args: int) -> datetime:
    """Return a Shanghai wall-clock time."""
    return datetime(*args, tzinfo=SH)


def eod(year: int, month: int, day: int) -> datetime:
    """Return the end of a Shanghai day."""
    return sh(year, month, day, 23, 59, 59)


# Working days on the official calendar, counted by hand from the State Council
# schedules (start day never counts).
@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        # Fri before the 2025 Spring Festival: Sun 01-26, Mon 01-27, then the
        # holiday 01-28..02-04, Wed 02-05.
        (sh(2025, 1, 24, 10), 3, eod(2025, 2, 5)),
        # Wed 02-05, Thu 02-06, Fri 02-07, Sat 02-08 (make-up), Mon 02-10.
        (sh(2025, 1, 27, 16), 5, eod(2025, 2, 10)),
        # Started on a holiday: the first working day after it counts.
        (sh(2025, 1, 30, 9), 1, eod(2025, 2, 5)),
        # National Day 2025: Sun 09-28 (make-up), Mon 09-29, Tue 09-30.
        (sh(2025, 9, 26, 15), 3, eod(2025, 9, 30)),
        # Off 10-01..10-08: Thu 10-09, Fri 10-10, Sat 10-11 (make-up).
        (sh(2025, 9, 30, 11), 3, eod(2025, 10, 11)),
        # 2026 Spring Festival: Sat 02-14 is a make-up working day.
        (sh(2026, 2, 13, 9), 1, eod(2026, 2, 14)),
        # ... then off 02-15..02-23.
        (sh(2026, 2, 13, 9), 2, eod(2026, 2, 24)),
        # Wed 02-25 .. Fri 02-27, Sat 02-28 (make-up), Mon 03-02.
        (sh(2026, 2, 24, 9), 5, eod(2026, 3, 2)),
        # 2026: Sun 09-20 (make-up), Mon 09-21, Tue 09-22.
        (sh(2026, 9, 18, 17), 3, eod(2026, 9, 22)),
        # Mid-Autumn 09-25..27 and National Day 10-01..07 both skipped; Sat 10-10
        # works: 09-28, 09-29, 09-30, 10-08, 10-09, 10-10, 10-12 .. 10-15.
        (sh(2026, 9, 24, 10), 10, eod(2026, 10, 15)),
    ],
)
def test_working_days_follow_the_official_calendar(official, start, days, due):
    assert end_of_working_days(start, days, SH, calendar=official) == due
    assert add_duration(start, days, "working_days", SH, calendar=official) == due


def test_deadline_ends_at_local_end_of_day_in_utc(official):
    start = datetime(2025, 1, 24, 2, 0, tzinfo=UTC)  # Fri 10:00 in Shanghai
    due = end_of_working_days(start, 3, SH, calendar=official)
    assert due == datetime(2025, 2, 5, 15, 59, 59, tzinfo=UTC)
    assert due.tzinfo is UTC


def test_start_day_is_the_local_day_not_the_utc_day(official):
    # Thu 17:00 UTC is already Fri 01:00 in Shanghai: Friday does not count.
    start = datetime(2025, 1, 23, 17, 0, tzinfo=UTC)
    due = end_of_working_days(start, 3, SH, calendar=official)
    assert due.astimezone(SH) == eod(2025, 2, 5)


def test_naive_start_is_taken_as_utc():
    due = end_of_working_days(datetime(2025, 3, 13, 17, 0), 1, SH)
    assert due == datetime(2025, 3, 17, 15, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (sh(2025, 3, 14, 10), eod(2025, 3, 17)),  # Friday -> Monday
        (sh(2025, 3, 15, 10), eod(2025, 3, 17)),  # Saturday -> Monday
        (sh(2025, 3, 16, 23, 59), eod(2025, 3, 17)),  # Sunday -> Monday
        (sh(2025, 3, 17, 0, 0), eod(2025, 3, 18)),  # Monday -> Tuesday
    ],
)
def test_weekends_do_not_count(official, start, due):
    assert end_of_working_days(start, 1, SH, calendar=official) == due
    assert end_of_working_days(start, 1, SH) == due


def test_default_calendar_counts_weekends_only():
    # Without the calendar the 2025 Spring Festival counts as working days.
    assert end_of_working_days(sh(2025, 1, 24, 10), 3, SH) == eod(2025, 1, 29)


def test_override_year_is_used(tmp_path):
    path = tmp_path / "calendar.toml"
    path.write_text('[2027]\nholidays = ["2027-01-04"]\n', encoding="utf-8")
    cal = BusinessCalendar.from_file(path)
    # Fri 2027-01-01 -> Mon 01-04 is off in this test file -> Tue 01-05.
    assert end_of_working_days(sh(2027, 1, 1, 9), 1, SH, calendar=cal) == eod(
        2027, 1, 5
    )


def test_unknown_year_counts_weekends_only(official, caplog, monkeypatch):
    from mediation.sla import calendar as calendar_module

    calendar_module._warned_years.discard(2031)
    # create_app() stops the "mediation" logger propagating (caplog listens at
    # root), and the migrations' fileConfig() disables loggers that existed then.
    monkeypatch.setattr(logging.getLogger("mediation"), "propagate", True)
    monkeypatch.setattr(logging.getLogger("mediation.sla.calendar"), "disabled", False)
    due = end_of_working_days(sh(2031, 1, 31, 9), 1, SH, calendar=official)
    assert due == eod(2031, 2, 3)  # Friday -> Monday
    assert any("2031" in r.getMessage() for r in caplog.records)
    calendar_module._warned_years.discard(2031)


@pytest.mark.parametrize(
    ("amount", "unit", "delta"),
    [
        (7, "calendar_days", timedelta(days=7)),
        (2, "hours", timedelta(hours=2)),
        (30, "seconds", timedelta(seconds=30)),
        (0, "seconds", timedelta(0)),
    ],
)
def test_exact_units_ignore_the_calendar(official, amount, unit, delta):
    start = sh(2025, 1, 27, 16, 30)  # the eve of the Spring Festival holiday
    assert add_duration(start, amount, unit, SH, calendar=official) == start + delta


@pytest.mark.parametrize(
    ("amount", "unit", "message"),
    [
        (3, "fortnights", "unknown SLA unit"),
        (0, "working_days", "at least 1"),
        (-1, "hours", "negative"),
    ],
)
def test_bad_durations_are_refused(amount, unit, message):
    with pytest.raises(ValueError, match=message):
        add_duration(sh(2025, 3, 14, 10), amount, unit, SH)


def test_deadline_for_uses_policy_and_calendar(official):
    start = sh(2025, 1, 24, 10)
    assert deadline_for(
        "awaiting_merchant", start, DEFAULT_SLA_POLICY, SH, calendar=official
    ) == eod(2025, 2, 5)
    assert deadline_for(
        "fulfilment", start, DEFAULT_SLA_POLICY, SH, calendar=official
    ) == start + timedelta(days=7)
    assert deadline_for(None, start, DEFAULT_SLA_POLICY, SH) is None
    assert deadline_for("no_such_stage", start, DEFAULT_SLA_POLICY, SH) is None


def test_deadline_for_keeps_working_without_calendar():
    start = sh(2025, 3, 14, 10)
    assert deadline_for("awaiting_platform", start, DEFAULT_SLA_POLICY, SH) == eod(
        2025, 3, 18
    )


def test_stage_of_splits_mediation_and_fulfilment():
    assert stage_of(lc.IN_MEDIATION, has_mediator=False, fulfilment_marked=False) == (
        "mediation_pickup"
    )
    assert stage_of(lc.IN_MEDIATION, has_mediator=True, fulfilment_marked=False) == (
        "in_mediation"
    )
    assert stage_of(lc.SETTLED, has_mediator=True, fulfilment_marked=True) == (
        "confirmation"
    )
    for status in lc.CLOSED_STATUSES:
        assert stage_of(status, has_mediator=True, fulfilment_marked=True) is None


# Reminders -----------------------------------------------------------------


def test_reminder_is_end_of_previous_working_day(official):
    start = sh(2025, 3, 10, 10)  # Monday
    due = end_of_working_days(start, 3, SH, calendar=official)
    assert due == eod(2025, 3, 13)
    assert reminder_at(due, start, (1, "working_days"), SH, official) == eod(
        2025, 3, 12
    )


def test_reminder_defaults_to_one_working_day():
    start = sh(2025, 3, 10, 10)
    assert reminder_at(eod(2025, 3, 13), start) == eod(2025, 3, 12)


def test_reminder_skips_a_holiday(official):
    start = sh(2025, 1, 24, 10)
    due = end_of_working_days(start, 3, SH, calendar=official)  # Wed 02-05
    # The working day before 02-05 is Mon 01-27, before the holiday.
    assert reminder_at(due, start, (1, "working_days"), SH, official) == eod(
        2025, 1, 27
    )
    # After National Day 2025 the day before Thu 10-09 is Tue 09-30.
    assert reminder_at(
        eod(2025, 10, 9), sh(2025, 9, 29, 9), (1, "working_days"), SH, official
    ) == eod(2025, 9, 30)


def test_reminder_keeps_the_local_clock_time(official):
    due = datetime(2025, 2, 10, 1, 30, tzinfo=UTC)  # Mon 09:30 in Shanghai
    remind = reminder_at(due, sh(2025, 2, 1, 9), (2, "working_days"), SH, official)
    # Back from Mon 02-10: Sat 02-08 (make-up) is 1, Fri 02-07 is 2.
    assert remind == datetime(2025, 2, 7, 1, 30, tzinfo=UTC)
    assert remind.tzinfo is UTC


def test_no_reminder_when_stage_is_shorter_than_lead(official):
    start = sh(2025, 3, 10, 10)  # Monday
    due = end_of_working_days(start, 1, SH, calendar=official)  # Tuesday
    assert reminder_at(due, start, (2, "working_days"), SH, official) is None
    # A one-day stage still gets its reminder the evening before.
    assert reminder_at(due, start, (1, "working_days"), SH, official) == eod(
        2025, 3, 10
    )
    # A 30-second demo stage is shorter than any working day.
    fast = add_duration(start, 30, "seconds", SH)
    assert reminder_at(fast, start, (1, "working_days"), SH, official) is None


def test_no_reminder_exactly_at_the_start():
    start = sh(2025, 3, 10, 10)
    due = start + timedelta(hours=1)
    assert reminder_at(due, start, (1, "hours"), SH) is None


@pytest.mark.parametrize(
    ("lead", "delta"),
    [
        ((1, "calendar_days"), timedelta(days=1)),
        ((6, "hours"), timedelta(hours=6)),
        ((10, "seconds"), timedelta(seconds=10)),
    ],
)
def test_reminder_with_exact_lead(official, lead, delta):
    start = sh(2025, 1, 20, 10)
    due = start + timedelta(days=7)
    assert reminder_at(due, start, lead, SH, official) == due - delta


def test_reminder_refuses_unknown_unit():
    with pytest.raises(ValueError, match="unknown SLA unit"):
        reminder_at(eod(2025, 3, 13), sh(2025, 3, 10), (1, "weeks"), SH)


# The policy table (mediation.config.resolve_sla_policy) ---------------------


def test_default_policy_is_the_design_table():
    policy = resolve_sla_policy("default")
    assert policy == DEFAULT_SLA_POLICY
    assert policy is not DEFAULT_SLA_POLICY
    assert policy["awaiting_merchant"] == (3, "working_days")
    assert policy["in_arbitration"] == (15, "working_days")
    assert policy["fulfilment"] == (7, "calendar_days")
    assert resolve_sla_policy(None) == DEFAULT_SLA_POLICY
    assert resolve_sla_policy("") == DEFAULT_SLA_POLICY


def test_fast_policy_is_seconds():
    policy = resolve_sla_policy("fast")
    assert policy == FAST_SLA_POLICY
    assert all(unit == "seconds" for _, unit in policy.values())


def test_policy_file_overrides_one_stage(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"awaiting_merchant": [5, "working_days"]}))
    policy = resolve_sla_policy(str(path))
    assert policy["awaiting_merchant"] == (5, "working_days")
    rest = {k: v for k, v in policy.items() if k != "awaiting_merchant"}
    assert rest == {k: v for k, v in DEFAULT_SLA_POLICY.items() if k in rest}
    assert set(policy) == set(DEFAULT_SLA_POLICY)


def test_policy_dict_overrides_one_stage():
    policy = resolve_sla_policy({"fulfilment": (48, "hours")})
    assert policy["fulfilment"] == (48, "hours")
    assert policy["confirmation"] == DEFAULT_SLA_POLICY["confirmation"]


def test_policy_with_bad_unit_is_refused(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"awaiting_merchant": [3, "fortnights"]}))
    with pytest.raises(ValueError, match="fortnights"):
        resolve_sla_policy(str(path))
