"""Stage deadlines from the policy table in config.

Working days here skip Saturdays and Sundays in the configured time zone; the
holiday calendar (public holidays and make-up working days) arrives with the
business calendar of issue #3 and plugs into :func:`is_working_day`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mediation.cases import lifecycle as lc


def is_working_day(day: date) -> bool:
    """Return True for Monday to Friday."""
    return day.weekday() < 5


def end_of_working_days(start: datetime, days: int, tz: ZoneInfo) -> datetime:
    """Return the end (23:59:59 local) of the ``days``-th working day after ``start``.

    :param start: aware datetime the clock starts at; its own day does not count.
    :param days: number of working days, at least 1.
    """
    day = start.astimezone(tz).date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return datetime.combine(day, time(23, 59, 59), tzinfo=tz).astimezone(start.tzinfo)


def add_duration(start: datetime, amount: int, unit: str, tz: ZoneInfo) -> datetime:
    """Return ``start`` plus ``amount`` ``unit`` (working days, calendar days ...).

    :raise ValueError: for an unknown unit.
    """
    if unit == "working_days":
        return end_of_working_days(start, amount, tz)
    if unit == "calendar_days":
        return start + timedelta(days=amount)
    if unit == "hours":
        return start + timedelta(hours=amount)
    if unit == "seconds":
        return start + timedelta(seconds=amount)
    raise ValueError(f"unknown SLA unit {unit!r}")


def stage_of(status: str, *, has_mediator: bool, fulfilment_marked: bool) -> str | None:
    """Return the policy stage a case is in, or None when no deadline runs.

    :param status: the case status.
    :param has_mediator: a mediator has taken the case (pick-up vs conclusion).
    :param fulfilment_marked: the merchant said it fulfilled (consumer confirms).
    """
    if status in lc.CLOSED_STATUSES:
        return None
    if status == lc.IN_MEDIATION:
        return "in_mediation" if has_mediator else "mediation_pickup"
    if status in (lc.SETTLED, lc.AWARDED):
        return "confirmation" if fulfilment_marked else "fulfilment"
    return status


def deadline_for(
    stage: str | None,
    start: datetime,
    policy: dict[str, tuple[int, str]],
    tz: ZoneInfo,
) -> datetime | None:
    """Return when ``stage`` ends if it starts at ``start`` (None: no deadline)."""
    if stage is None or stage not in policy:
        return None
    amount, unit = policy[stage]
    return add_duration(start, amount, unit, tz)
