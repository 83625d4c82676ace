"""The business calendar: package schedule, override file, unknown years."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask

from mediation.sla import calendar as calendar_module
from mediation.sla.calendar import BusinessCalendar, calendar_for, load_overrides

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "calendar.example.toml"


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    # The warning is once per year per process; each test starts without history.
    calendar_module._warned_years.clear()
    # create_app() stops the "mediation" logger propagating (caplog listens at
    # root), and the migrations' fileConfig() disables loggers that existed then.
    monkeypatch.setattr(logging.getLogger("mediation"), "propagate", True)
    monkeypatch.setattr(logging.getLogger("mediation.sla.calendar"), "disabled", False)
    yield
    calendar_module._warned_years.clear()


@pytest.fixture(scope="module")
def official() -> BusinessCalendar:
    return BusinessCalendar.official()


def _write(tmp_path: Path, text: str, name: str = "calendar.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


OFF = False
ON = True


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # 2025 Spring Festival: off 01-28..02-04, make-up Sun 01-26 and Sat 02-08.
        (date(2025, 1, 25), OFF),
        (date(2025, 1, 26), ON),
        (date(2025, 1, 27), ON),
        (date(2025, 1, 28), OFF),
        (date(2025, 2, 3), OFF),
        (date(2025, 2, 4), OFF),
        (date(2025, 2, 5), ON),
        (date(2025, 2, 8), ON),
        (date(2025, 2, 9), OFF),
        # 2025 National Day and Mid-Autumn: off 10-01..10-08, make-up 09-28, 10-11.
        (date(2025, 9, 27), OFF),
        (date(2025, 9, 28), ON),
        (date(2025, 10, 1), OFF),
        (date(2025, 10, 8), OFF),
        (date(2025, 10, 9), ON),
        (date(2025, 10, 11), ON),
        (date(2025, 10, 12), OFF),
        # 2026 Spring Festival: off 02-15..02-23, make-up Sat 02-14 and Sat 02-28.
        (date(2026, 2, 14), ON),
        (date(2026, 2, 15), OFF),
        (date(2026, 2, 20), OFF),
        (date(2026, 2, 23), OFF),
        (date(2026, 2, 24), ON),
        (date(2026, 2, 28), ON),
        (date(2026, 3, 1), OFF),
        # 2026 Mid-Autumn 09-25..09-27; National Day 10-01..10-07, make-up
        # Sun 09-20 and Sat 10-10.
        (date(2026, 9, 20), ON),
        (date(2026, 9, 25), OFF),
        (date(2026, 10, 1), OFF),
        (date(2026, 10, 7), OFF),
        (date(2026, 10, 8), ON),
        (date(2026, 10, 10), ON),
        (date(2026, 10, 11), OFF),
        # Ordinary weeks.
        (date(2025, 3, 14), ON),
        (date(2025, 3, 15), OFF),
        (date(2025, 3, 16), OFF),
        (date(2026, 11, 23), ON),
    ],
)
def test_official_calendar_follows_holiday_schedule(official, day, expected):
    assert official.is_working_day(day) is expected


def test_package_years_are_known(official):
    assert official.known(2004)
    assert official.known(2025)
    assert official.known(2026)
    assert not official.known(2003)
    assert not official.known(2030)


def test_weekends_only_calendar_knows_every_year_and_never_warns(caplog):
    weekends = BusinessCalendar.weekends_only()
    with caplog.at_level(logging.WARNING, logger="mediation.sla.calendar"):
        assert weekends.is_working_day(date(2025, 10, 1))  # a Wednesday
        assert not weekends.is_working_day(date(2025, 1, 26))  # a Sunday
        assert weekends.is_working_day(date(2099, 1, 1))
    assert weekends.known(2099)
    assert caplog.records == []


def test_unknown_year_warns_once_and_falls_back_to_weekends(official, caplog):
    with caplog.at_level(logging.WARNING, logger="mediation.sla.calendar"):
        assert official.is_working_day(date(2030, 1, 1))  # a Tuesday
        assert not official.is_working_day(date(2030, 1, 5))  # a Saturday
        assert official.is_working_day(date(2030, 1, 7))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2030" in warnings[0].getMessage()
    assert "weekends only" in warnings[0].getMessage()


def test_each_unknown_year_warns_separately(official, caplog):
    with caplog.at_level(logging.WARNING, logger="mediation.sla.calendar"):
        official.is_working_day(date(2030, 1, 1))
        official.is_working_day(date(2031, 1, 1))
        official.is_working_day(date(2030, 6, 3))
    assert len(caplog.records) == 2


def test_unknown_years_lists_years_without_schedule(official):
    days = [date(2026, 12, 30), date(2027, 1, 5), datetime(2030, 2, 1, 8, 0)]
    assert official.unknown_years(days) == {2027, 2030}
    assert official.unknown_years([date(2025, 1, 1)]) == set()


def test_override_file_adds_a_year(tmp_path, caplog):
    # Test dates only, not the official 2027 schedule.
    path = _write(
        tmp_path,
        '[2027]\nholidays = ["2027-01-01", 2027-02-08]\nworkdays = ["2027-01-02"]\n',
    )
    cal = BusinessCalendar.from_file(path)
    with caplog.at_level(logging.WARNING, logger="mediation.sla.calendar"):
        assert cal.known(2027)
        assert not cal.is_working_day(date(2027, 1, 1))  # Friday, holiday
        assert cal.is_working_day(date(2027, 1, 2))  # Saturday, make-up day
        assert not cal.is_working_day(date(2027, 2, 8))  # bare TOML date
        assert cal.is_working_day(date(2027, 1, 4))  # plain Monday
        assert not cal.is_working_day(date(2027, 1, 3))  # plain Sunday
    assert caplog.records == []
    assert cal.unknown_years([date(2027, 5, 1), date(2028, 1, 1)]) == {2028}


def test_override_file_corrects_a_package_year(tmp_path):
    path = _write(
        tmp_path, '[2025]\nholidays = ["2025-12-31"]\nworkdays = ["2025-10-08"]\n'
    )
    cal = BusinessCalendar.from_file(path)
    assert not cal.is_working_day(date(2025, 12, 31))
    assert cal.is_working_day(date(2025, 10, 8))
    # The rest of the year still follows the package.
    assert not cal.is_working_day(date(2025, 10, 7))
    assert cal.is_working_day(date(2025, 9, 28))


def test_example_file_matches_the_package(official):
    overrides = load_overrides(EXAMPLE)
    assert set(overrides) == {2025}
    from_example = BusinessCalendar(*overrides[2025], known_years={2025})
    day = date(2025, 1, 1)
    while day.year == 2025:
        assert from_example.is_working_day(day) == official.is_working_day(day), day
        day += timedelta(days=1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[2027]\nholidays = ["2027-13-01"]\n', "not a YYYY-MM-DD date"),
        ('[2027]\nholidays = ["2028-01-01"]\n', "not in 2027"),
        ('[2027]\nholiday = ["2027-01-01"]\n', "unknown keys"),
        ('[2027]\nholidays = "2027-01-01"\n', "must be a list"),
        ("[2027]\nholidays = [1]\n", "not a date"),
        ('[2027]\nholidays = ["2027-01-02"]\nworkdays = ["2027-01-02"]\n', "both"),
        ('[next]\nholidays = ["2027-01-01"]\n', "expected [YYYY] tables"),
        ("[2027\n", "calendar.toml"),
    ],
)
def test_invalid_override_file_is_refused(tmp_path, text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        load_overrides(_write(tmp_path, text))


def test_calendar_rejects_a_day_both_off_and_on():
    with pytest.raises(ValueError, match="2027-01-02"):
        BusinessCalendar([date(2027, 1, 2)], [date(2027, 1, 2)], {2027})


def test_calendar_for_reads_configured_file_once(tmp_path):
    path = _write(tmp_path, '[2027]\nholidays = ["2027-01-01"]\n', "cal.toml")
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config["CALENDAR_FILE"] = str(path)
    cal = calendar_for(app)
    assert cal.known(2027)
    assert not cal.is_working_day(date(2027, 1, 1))
    assert calendar_for(app) is cal
    assert app.extensions["business_calendar"] is cal


def test_calendar_for_uses_instance_file_by_default(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    _write(instance, '[2027]\nholidays = ["2027-01-01"]\n')
    app = Flask(__name__, instance_path=str(instance))
    assert calendar_for(app).known(2027)


def test_calendar_for_without_file_uses_the_package(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    cal = calendar_for(app)
    assert cal.known(2026)
    assert not cal.known(2027)


def test_calendar_for_refuses_a_missing_configured_file(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config["CALENDAR_FILE"] = "no/such/calendar.toml"
    with pytest.raises(FileNotFoundError, match="no/such/calendar.toml"):
        calendar_for(app)
