"""Where the case services tell supervision about filings and case events.

``file_case`` and ``apply_action`` call these two functions, inside the case's
transaction; each part of supervision keeps its own bookkeeping from them
(statistics, mass-complaint detection, text tagging). They flush at most, never
commit, and do in a sweep batch only what the batch allows (see
:func:`mediation.unit_of_work.current_bulk`).
"""

from __future__ import annotations

from datetime import datetime

from mediation.auth.models import User
from mediation.cases.models import Case


def case_filed(case: Case, *, now: datetime) -> None:
    """Record a new complaint (after it was routed).

    :param case: the new case, flushed, with its reference.
    """
    from mediation.analytics import alerts, stats, tagging

    stats.on_case_filed(case, now=now)
    tagging.on_case_filed(case, now=now)
    alerts.on_case_filed(case, now=now)


def case_event(
    case: Case,
    *,
    action: str,
    actor: User | None,
    relation: str,
    from_status: str | None,
    stage_before: str | None,
    due_before: datetime | None,
    now: datetime,
) -> None:
    """Record one applied lifecycle action (after its timeline event).

    :param actor: who acted (None: the system); ``relation`` is their role in it.
    :param stage_before: the SLA stage the case was in before the action.
    :param due_before: that stage's deadline (``due_at`` before the action).
    """
    from mediation.analytics import audit, stats

    stats.on_case_event(
        case,
        action=action,
        relation=relation,
        from_status=from_status,
        stage_before=stage_before,
        due_before=due_before,
        now=now,
    )
    audit.on_case_event(
        case,
        action=action,
        actor=actor,
        relation=relation,
        from_status=from_status,
        now=now,
    )
    if action == "amend":
        # The amended text or category may point elsewhere now (text tagging).
        from mediation.analytics import tagging

        tagging.on_case_amended(case, now=now)
    # Last: a grouped case entering mediation goes to its group's mediator (an
    # action of its own, after this one's bookkeeping).
    from mediation.analytics import groups

    groups.on_case_event(case, action=action, from_status=from_status, now=now)
