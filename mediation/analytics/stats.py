"""Statistics for supervision (being built for issue #7: the dashboard)."""

from __future__ import annotations

from datetime import datetime

from mediation.cases.models import Case


def on_case_event(
    case: Case,
    *,
    action: str,
    from_status: str | None,
    stage_before: str | None,
    due_before: datetime | None,
    now: datetime,
) -> None:
    """Keep the statistics of a case current after one of its events."""
