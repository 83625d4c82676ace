"""How a case's deadline shows on the pages: who must act, time left, a colour.

Pure helpers (no request, no database, no wall clock); the templates reach them
through the ``deadline_of`` template global of :mod:`mediation.sla.views`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from mediation.cases import lifecycle as lc
from mediation.sla import policy as sla_policy

#: Who must act in each deadline stage.
PARTY_OF_STAGE: dict[str, str] = {
    "submitted": "regulator",
    "awaiting_merchant": "merchant",
    "awaiting_platform": "platform",
    "offer_pending": "consumer",
    "mediation_pickup": "mediators_queue",
    "in_mediation": "mediator",
    "arbitration_pickup": "arbitrators_queue",
    "in_arbitration": "arbitrator",
    "fulfilment": "merchant",
    "confirmation": "consumer",
}

#: Labels of the parties.
PARTY_LABELS: dict[str, Any] = {
    "regulator": _l("Regulator"),
    "merchant": _l("Merchant"),
    "platform": _l("Platform operator"),
    "consumer": _l("Consumer"),
    "mediators_queue": _l("Mediators' queue"),
    "mediator": _l("Mediator"),
    "arbitrators_queue": _l("Arbitrators' queue"),
    "arbitrator": _l("Arbitrator"),
}

#: Share of the stage's time left above which the deadline is green...
GREEN_ABOVE = 0.25
#: ...and at or above which it is amber; below it (or overdue) it is red.
AMBER_FROM = 0.10


@dataclass(frozen=True)
class DeadlineView:
    """What the pages show about a case's running deadline."""

    stage: str
    #: Key of :data:`PARTY_LABELS`.
    party: str
    due_at: datetime | None
    #: Negative once overdue.
    seconds_left: int
    #: Length of the stage in seconds (at least 1).
    total_seconds: int
    #: ``seconds_left / total_seconds``, clamped to 0..1.
    share_left: float
    #: ``green``, ``amber`` or ``red``.
    colour: str
    #: The clock is stopped (``case.paused_at`` is set).
    paused: bool

    @property
    def party_label(self) -> str:
        """Return the translated name of the party who must act."""
        return str(PARTY_LABELS.get(self.party, self.party))

    @property
    def overdue(self) -> bool:
        """Say whether the deadline has passed (never while the clock is stopped)."""
        return not self.paused and self.seconds_left < 0


def colour_for(seconds_left: float, total_seconds: float) -> str:
    """Return ``green``, ``amber`` or ``red`` for the share of time left.

    :param seconds_left: negative once overdue.
    :param total_seconds: the stage's length, positive.
    """
    if seconds_left < 0:
        return "red"
    share = seconds_left / max(total_seconds, 1)
    if share > GREEN_ABOVE:
        return "green"
    if share >= AMBER_FROM:
        return "amber"
    return "red"


def stage_length(
    stage: str,
    due_at: datetime,
    policy: dict[str, tuple[int, str]],
    tz: ZoneInfo,
    calendar: Any = None,
) -> timedelta:
    """Return how long ``stage`` lasts when it ends at ``due_at``.

    The policy's duration is run backwards from the deadline. A working-day
    deadline ends at 23:59:59 of its last working day whatever the hour the
    stage began, so the stage is taken to begin at the start of the working day
    before the first one it counts: the day the stage began, in the usual case.

    :param calendar: a business calendar (``is_working_day(day)``); None counts
        :func:`mediation.sla.policy.is_working_day`.
    :raise KeyError: for a stage without a policy entry.
    """
    amount, unit = policy[stage]
    is_working_day = (
        calendar.is_working_day if calendar is not None else sla_policy.is_working_day
    )
    if unit == "working_days":
        day = due_at.astimezone(tz).date()
        counted = 0
        while counted < amount:
            day -= timedelta(days=1)
            if is_working_day(day):
                counted += 1
        start = datetime.combine(day, time(0, 0), tzinfo=tz)
        return due_at - start
    if unit == "calendar_days":
        return timedelta(days=amount)
    if unit == "hours":
        return timedelta(hours=amount)
    return timedelta(seconds=amount)


def deadline_view(
    case: Any,
    *,
    now: datetime,
    policy: dict[str, tuple[int, str]],
    tz: ZoneInfo | None = None,
    calendar: Any = None,
    started_at: datetime | None = None,
) -> DeadlineView | None:
    """Describe the running deadline of ``case`` at ``now``.

    :param case: a Case (or anything with its status, due_at and pause fields).
    :param policy: the stage table (``SLA_POLICY_TABLE``).
    :param tz: the business time zone (working days end at local midnight).
    :param calendar: the business calendar (None: Monday to Friday).
    :param started_at: when the stage began, if known; otherwise the stage's
        length comes from the policy (:func:`stage_length`).
    :return: None for a closed case or one without a running deadline.
    """
    if case.status in lc.CLOSED_STATUSES:
        return None
    stage = sla_policy.case_stage(case)
    paused = case.paused_at is not None
    due_at = case.due_at
    if stage is None or stage not in policy or (due_at is None and not paused):
        return None
    tz = tz or ZoneInfo("Asia/Shanghai")
    if paused:
        if case.paused_remaining is not None:
            left = float(case.paused_remaining)
        elif due_at is not None:
            left = (due_at - case.paused_at).total_seconds()
        else:
            left = 0.0
    else:
        left = (due_at - now).total_seconds()
    if started_at is not None and due_at is not None:
        total = (due_at - started_at).total_seconds()
    elif due_at is not None:
        total = stage_length(stage, due_at, policy, tz, calendar).total_seconds()
    else:
        total = stage_length(
            stage, case.paused_at, policy, tz, calendar
        ).total_seconds()
    total = max(total, 1.0)
    return DeadlineView(
        stage=stage,
        party=PARTY_OF_STAGE.get(stage, "regulator"),
        due_at=due_at,
        seconds_left=int(left // 1),
        total_seconds=int(total),
        share_left=min(max(left / total, 0.0), 1.0),
        colour=colour_for(left, total),
        paused=paused,
    )


def format_span(seconds: int) -> str:
    """Format a length of time as ``2 days 03:04:05`` or ``03:04:05`` (translated)."""
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if not days:
        return clock
    return ngettext(
        "%(days)s day %(clock)s",
        "%(days)s days %(clock)s",
        days,
        days=days,
        clock=clock,
    )


def remaining_text(view: DeadlineView) -> str:
    """Return the countdown's text: time left, ``overdue by ...`` or clock stopped."""
    if view.paused:
        return _("Clock stopped (%(time)s left)", time=format_span(view.seconds_left))
    if view.seconds_left < 0:
        return _("Overdue by %(time)s", time=format_span(view.seconds_left))
    return format_span(view.seconds_left)


def countdown_formats() -> dict[str, str]:
    """Return the translated patterns countdown.js fills in (``{days}``...)."""
    return {
        "day": ngettext(
            "%(days)s day %(clock)s",
            "%(days)s days %(clock)s",
            1,
            days="{days}",
            clock="{clock}",
        ),
        "days": ngettext(
            "%(days)s day %(clock)s",
            "%(days)s days %(clock)s",
            2,
            days="{days}",
            clock="{clock}",
        ),
        "overdue": _("Overdue by %(time)s", time="{time}"),
    }
