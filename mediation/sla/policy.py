"""Stage deadlines from the policy table in config, on the business calendar.

Working days follow a :class:`~mediation.sla.calendar.BusinessCalendar` in the
configured time zone; callers pass the app's calendar (``calendar_for(app)``).
Without one, the functions count Monday to Friday only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mediation.cases import lifecycle as lc
from mediation.sla.calendar import BusinessCalendar

#: Monday to Friday, every year known: the default until a caller passes the
#: app's calendar.
WEEKENDS_ONLY = BusinessCalendar.weekends_only()

#: The default ``SLA_REMINDER_LEAD``: remind one working day before a deadline.
DEFAULT_REMINDER_LEAD: tuple[int, str] = (1, "working_days")

UNITS = frozenset({"working_days", "calendar_days", "hours", "seconds"})

END_OF_DAY = time(23, 59, 59)


def _aware(moment: datetime) -> datetime:
    # The database hands out UTC; a naive value can only mean UTC here.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_working_day(day: date, *, calendar: BusinessCalendar = WEEKENDS_ONLY) -> bool:
    """Return True when ``day`` is a working day of ``calendar``."""
    return calendar.is_working_day(day)


def end_of_working_days(
    start: datetime,
    days: int,
    tz: ZoneInfo,
    *,
    calendar: BusinessCalendar = WEEKENDS_ONLY,
) -> datetime:
    """Return the end (23:59:59 local) of the ``days``-th working day after ``start``.

    :param start: the time the clock starts at (naive means UTC); its own local
        day does not count, working day or not.
    :param days: number of working days, at least 1.
    :param tz: the time zone whose days count.
    :param calendar: the business calendar.
    :return: an aware datetime in ``start``'s time zone (UTC if naive).
    :raise ValueError: when ``days`` is below 1.
    """
    if days < 1:
        raise ValueError(f"a working-day deadline needs at least 1 day, not {days}")
    start = _aware(start)
    day = start.astimezone(tz).date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            counted += 1
    return datetime.combine(day, END_OF_DAY, tzinfo=tz).astimezone(start.tzinfo)


def add_duration(
    start: datetime,
    amount: int,
    unit: str,
    tz: ZoneInfo,
    *,
    calendar: BusinessCalendar = WEEKENDS_ONLY,
) -> datetime:
    """Return ``start`` plus ``amount`` ``unit`` (working days, calendar days ...).

    :param unit: ``working_days`` (to the end of the last one, see
        :func:`end_of_working_days`), ``calendar_days``, ``hours`` or ``seconds``
        (exact durations from ``start``).
    :raise ValueError: for an unknown unit or a negative amount (below 1 for
        working days).
    """
    if unit not in UNITS:
        raise ValueError(f"unknown SLA unit {unit!r}")
    if unit == "working_days":
        return end_of_working_days(start, amount, tz, calendar=calendar)
    if amount < 0:
        raise ValueError(f"negative SLA amount {amount}")
    start = _aware(start)
    if unit == "calendar_days":
        return start + timedelta(days=amount)
    if unit == "hours":
        return start + timedelta(hours=amount)
    return start + timedelta(seconds=amount)


def stage_of(
    status: str,
    *,
    has_mediator: bool,
    fulfilment_marked: bool,
    has_arbitrator: bool = True,
) -> str | None:
    """Return the policy stage a case is in, or None when no deadline runs.

    :param status: the case status.
    :param has_mediator: a mediator has taken the case (pick-up vs conclusion).
    :param fulfilment_marked: the merchant said it fulfilled (consumer confirms).
    :param has_arbitrator: an arbitrator has the case (pick-up vs the award).
    """
    if status in lc.CLOSED_STATUSES:
        return None
    if status == lc.IN_MEDIATION:
        return "in_mediation" if has_mediator else "mediation_pickup"
    if status == lc.IN_ARBITRATION:
        return "in_arbitration" if has_arbitrator else "arbitration_pickup"
    if status in (lc.SETTLED, lc.AWARDED):
        return "confirmation" if fulfilment_marked else "fulfilment"
    return status


def case_stage(case: Any) -> str | None:
    """Return the policy stage of a case (anything with the case's columns)."""
    return stage_of(
        case.status,
        has_mediator=case.mediator_id is not None,
        fulfilment_marked=case.fulfilment_marked_at is not None,
        has_arbitrator=case.arbitrator_id is not None,
    )


def deadline_for(
    stage: str | None,
    start: datetime,
    policy: dict[str, tuple[int, str]],
    tz: ZoneInfo,
    *,
    calendar: BusinessCalendar = WEEKENDS_ONLY,
) -> datetime | None:
    """Return when ``stage`` ends if it starts at ``start`` (None: no deadline).

    :param policy: stage -> (amount, unit), e.g. ``app.config["SLA_POLICY_TABLE"]``.
    :param calendar: the business calendar for working-day stages.
    """
    if stage is None or stage not in policy:
        return None
    amount, unit = policy[stage]
    return add_duration(start, amount, unit, tz, calendar=calendar)


def reminder_at(
    due_at: datetime,
    start: datetime,
    lead: tuple[int, str] = DEFAULT_REMINDER_LEAD,
    tz: ZoneInfo = ZoneInfo("Asia/Shanghai"),
    calendar: BusinessCalendar = WEEKENDS_ONLY,
) -> datetime | None:
    """Return when to remind of the deadline ``due_at``, or None for no reminder.

    A lead in working days keeps the local clock time and moves back that many
    working days (the end of the previous working day for an end-of-day
    deadline); other units subtract an exact duration.

    :param due_at: the deadline.
    :param start: when the stage started; a reminder at or before it is pointless
        (the stage is not longer than the lead), so the answer is then None.
    :param lead: (amount, unit) as in the policy table, e.g. ``SLA_REMINDER_LEAD``.
    :param tz: the time zone whose days count.
    :param calendar: the business calendar.
    :return: an aware datetime in ``due_at``'s time zone (UTC if naive), or None.
    :raise ValueError: for an unknown unit or a negative amount.
    """
    amount, unit = lead
    if unit not in UNITS:
        raise ValueError(f"unknown SLA unit {unit!r}")
    if amount < 0:
        raise ValueError(f"negative reminder lead {amount}")
    due_at, start = _aware(due_at), _aware(start)
    if unit == "working_days":
        local = due_at.astimezone(tz)
        day = local.date()
        counted = 0
        while counted < amount:
            day -= timedelta(days=1)
            if calendar.is_working_day(day):
                counted += 1
        moment = datetime.combine(day, local.time(), tzinfo=tz)
        remind = moment.astimezone(due_at.tzinfo)
    elif unit == "calendar_days":
        remind = due_at - timedelta(days=amount)
    elif unit == "hours":
        remind = due_at - timedelta(hours=amount)
    else:
        remind = due_at - timedelta(seconds=amount)
    return remind if remind > start else None
