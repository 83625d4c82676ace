"""The business calendar: which days count as working days for SLA deadlines.

Weekends are off, mainland public holidays are off and the adjusted working
weekends of the holiday schedule (调休上班日) are on. The schedule comes from the
``chinesecalendar`` package, corrected and extended by an override file in TOML
(config ``CALENDAR_FILE``, see ``docs/calendar.example.toml``) for the years the
package does not know yet. A year neither source knows falls back to weekends
only, with a warning in the log and through :meth:`BusinessCalendar.unknown_years`.
"""

from __future__ import annotations

import logging
import threading
import tomllib
from collections.abc import Container, Iterable, Mapping
from datetime import MAXYEAR, MINYEAR, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger(__name__)

EXTENSION_KEY = "business_calendar"
DEFAULT_FILE_NAME = "calendar.toml"

#: Years already warned about in this process (a warning per year, not per day).
_warned_years: set[int] = set()
_warned_lock = threading.Lock()


class BusinessCalendar:
    """Working days: weekdays, minus holidays, plus make-up working days.

    Lookups are set membership on precomputed dates, so deadline arithmetic that
    walks day by day stays cheap.
    """

    def __init__(
        self,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        known_years: Container[int] = (),
    ) -> None:
        """Build a calendar from explicit dates.

        :param holidays: days off, whatever their weekday.
        :param workdays: days on, whatever their weekday (make-up working days).
        :param known_years: the years whose schedule these dates describe fully;
            looking up a day of another year logs a warning once per process.
        :raise ValueError: when a day is both a holiday and a working day.
        """
        self._holidays = frozenset(holidays)
        self._workdays = frozenset(workdays)
        clash = self._holidays & self._workdays
        if clash:
            listed = ", ".join(sorted(d.isoformat() for d in clash))
            raise ValueError(f"days both holiday and working day: {listed}")
        self._known_years = known_years

    @classmethod
    def weekends_only(cls) -> BusinessCalendar:
        """Return a calendar of Monday to Friday that treats every year as known."""
        return cls(known_years=range(MINYEAR, MAXYEAR + 1))

    @classmethod
    def official(
        cls,
        overrides: Mapping[int, tuple[Iterable[date], Iterable[date]]] | None = None,
    ) -> BusinessCalendar:
        """Return the ``chinesecalendar`` schedule with ``overrides`` applied.

        :param overrides: year -> (holidays, workdays); the listed days win over
            the package, and each listed year counts as known.
        """
        import chinese_calendar.constants as cc

        holidays = set(cc.holidays)
        workdays = set(cc.workdays)
        years = {day.year for day in holidays}
        known = set(range(min(years), max(years) + 1))
        for year, (extra_holidays, extra_workdays) in (overrides or {}).items():
            extra_holidays, extra_workdays = set(extra_holidays), set(extra_workdays)
            holidays = (holidays - extra_workdays) | extra_holidays
            workdays = (workdays - extra_holidays) | extra_workdays
            known.add(year)
        return cls(holidays, workdays, frozenset(known))

    @classmethod
    def from_file(cls, path: str | Path | None) -> BusinessCalendar:
        """Return the official calendar with the overrides of the TOML file at
        ``path`` (None: no file).

        :raise OSError: when the file cannot be read.
        :raise ValueError: when the file is not a valid calendar file.
        """
        if path is None:
            return cls.official()
        return cls.official(load_overrides(path))

    def is_working_day(self, day: date) -> bool:
        """Return True when ``day`` is a working day.

        A day of an unknown year is a working day from Monday to Friday, and the
        first such lookup of each year logs a warning.
        """
        if day in self._workdays:
            return True
        if day in self._holidays:
            return False
        if day.year not in self._known_years:
            _warn_unknown_year(day.year)
        return day.weekday() < 5

    def known(self, year: int) -> bool:
        """Return True when the holiday schedule of ``year`` is known."""
        return year in self._known_years

    def unknown_years(self, dates: Iterable[date]) -> set[int]:
        """Return the years of ``dates`` (dates or datetimes) that are not known.

        :param dates: e.g. today and the latest running deadline, for a warning
            on the regulator's pages.
        """
        return {day.year for day in dates if not self.known(day.year)}


def _warn_unknown_year(year: int) -> None:
    with _warned_lock:
        if year in _warned_years:
            return
        _warned_years.add(year)
    logger.warning(
        "no holiday schedule for %d: counting weekends only as days off; add a "
        "[%d] section to the calendar file (CALENDAR_FILE) from the official notice",
        year,
        year,
    )


def _parse_day(value: object, year: int, key: str) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"[{year}] {key}: {value!r} is a datetime, not a date")
    if isinstance(value, date):
        day = value
    elif isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            msg = f"[{year}] {key}: {value!r} is not a YYYY-MM-DD date"
            raise ValueError(msg) from None
    else:
        raise ValueError(f"[{year}] {key}: {value!r} is not a date")
    if day.year != year:
        raise ValueError(f"[{year}] {key}: {day.isoformat()} is not in {year}")
    return day


def load_overrides(path: str | Path) -> dict[int, tuple[set[date], set[date]]]:
    """Read a calendar override file: year -> (holidays, workdays).

    :param path: a TOML file with one ``[YYYY]`` table per year holding the lists
        ``holidays`` and ``workdays`` (dates or ``"YYYY-MM-DD"`` strings).
    :raise OSError: when the file cannot be read.
    :raise ValueError: for invalid TOML, an unknown key, a bad or misplaced date,
        or a day listed both as holiday and as working day.
    """
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    overrides: dict[int, tuple[set[date], set[date]]] = {}
    for name, table in data.items():
        if not (name.isdigit() and len(name) == 4) or not isinstance(table, dict):
            raise ValueError(f"{path}: expected [YYYY] tables, found {name!r}")
        year = int(name)
        unknown = set(table) - {"holidays", "workdays"}
        if unknown:
            raise ValueError(f"{path}: [{year}] unknown keys {sorted(unknown)}")
        days = {}
        for key in ("holidays", "workdays"):
            values = table.get(key, [])
            if not isinstance(values, list):
                raise ValueError(f"{path}: [{year}] {key} must be a list")
            days[key] = {_parse_day(value, year, key) for value in values}
        clash = days["holidays"] & days["workdays"]
        if clash:
            listed = ", ".join(sorted(d.isoformat() for d in clash))
            raise ValueError(f"{path}: [{year}] both holiday and workday: {listed}")
        overrides[year] = (days["holidays"], days["workdays"])
    return overrides


def calendar_file(app: Flask) -> Path | None:
    """Return the override file the app's calendar reads, or None for none.

    ``CALENDAR_FILE`` unset means ``<instance>/calendar.toml`` if it exists; a
    relative path is taken from the project root (the instance folder's parent).

    :raise FileNotFoundError: when ``CALENDAR_FILE`` names a missing file.
    """
    configured = app.config.get("CALENDAR_FILE")
    if not configured:
        default = Path(app.instance_path) / DEFAULT_FILE_NAME
        return default if default.is_file() else None
    path = Path(configured)
    if not path.is_absolute():
        path = Path(app.instance_path).parent / path
    if not path.is_file():
        raise FileNotFoundError(f"CALENDAR_FILE {str(path)!r} does not exist")
    return path


def calendar_for(app: Flask) -> BusinessCalendar:
    """Return the app's business calendar, built once from its config.

    :raise FileNotFoundError: when ``CALENDAR_FILE`` names a missing file.
    :raise ValueError: when the calendar file is invalid.
    """
    calendar = app.extensions.get(EXTENSION_KEY)
    if calendar is None:
        path = calendar_file(app)
        calendar = BusinessCalendar.from_file(path)
        if path is not None:
            logger.info("business calendar overrides read from %s", path)
        app.extensions[EXTENSION_KEY] = calendar
    return calendar
