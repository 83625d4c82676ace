"""Deadline pages on the cases blueprint: the overdue list, template helpers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, render_template
from sqlalchemy.orm import selectinload

from mediation import clock
from mediation.auth.models import Role
from mediation.auth.permissions import require_role
from mediation.cases import bp
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case
from mediation.cases.views import NEXT_STEP, signed_in
from mediation.extensions import db
from mediation.sla import display
from mediation.sla.policy import case_stage

#: How far ahead the overdue page looks for deadlines about to pass.
DUE_SOON = timedelta(hours=24)


def _calendar() -> Any:
    """Return the app's business calendar, or None before issue #3's calendar."""
    try:
        from mediation.sla.calendar import calendar_for
    except ImportError:
        return None
    return calendar_for(current_app)


def _deadline_of(case: Case, now: datetime) -> display.DeadlineView | None:
    return display.deadline_view(
        case,
        now=now,
        policy=current_app.config["SLA_POLICY_TABLE"],
        tz=ZoneInfo(current_app.config["TIME_ZONE"]),
        calendar=_calendar(),
    )


@bp.app_template_global()
def deadline_of(case: Case, now: datetime) -> display.DeadlineView | None:
    """Template helper: the case's deadline as the pages show it."""
    return _deadline_of(case, now)


@bp.app_template_global()
def deadline_text(view: display.DeadlineView) -> str:
    """Template helper: the countdown's server-side text."""
    return display.remaining_text(view)


@bp.app_template_global()
def countdown_formats() -> dict[str, str]:
    """Template helper: the patterns countdown.js fills in."""
    return display.countdown_formats()


@bp.get("/cases/overdue")
@signed_in
def overdue():
    """The regulator's list of open cases overdue or due within a day, by stage."""
    require_role(Role.regulator)
    now = clock.now_utc()
    cases = db.session.scalars(
        db.select(Case)
        .where(
            Case.status.in_(lc.OPEN_STATUSES),
            Case.due_at.is_not(None),
            Case.paused_at.is_(None),
            Case.due_at < now + DUE_SOON,
        )
        .options(selectinload(Case.merchant))
        .order_by(Case.due_at.asc(), Case.id.asc())
    ).all()
    groups: dict[str, dict[str, Any]] = {}
    for case in cases:
        stage = case_stage(case)
        group = groups.setdefault(
            stage or case.status,
            {"stage": stage or case.status, "overdue": 0, "soon": 0, "cases": []},
        )
        group["overdue" if case.due_at < now else "soon"] += 1
        group["cases"].append(case)
    order = list(current_app.config["SLA_POLICY_TABLE"])
    ordered = sorted(
        groups.values(),
        key=lambda g: order.index(g["stage"]) if g["stage"] in order else len(order),
    )
    return render_template(
        "cases/overdue.html",
        groups=ordered,
        total=len(cases),
        now=now,
        stage_labels=NEXT_STEP,
        calendar_warning=_unknown_calendar_years(cases),
    )


def _unknown_calendar_years(cases: list[Case]) -> list[int]:
    """Return the years of listed deadlines the business calendar has no data for.

    Such deadlines were counted with weekends only (no public holidays).
    """
    calendar = _calendar()
    if calendar is None:
        return []
    tz = ZoneInfo(current_app.config["TIME_ZONE"])
    dates = [case.due_at.astimezone(tz).date() for case in cases if case.due_at]
    return sorted(calendar.unknown_years(dates))
