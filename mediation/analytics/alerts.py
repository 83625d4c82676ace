"""Mass-complaint alerts (being built for issue #7)."""

from __future__ import annotations

from datetime import datetime

from mediation.cases.models import Case


def on_case_filed(case: Case, *, now: datetime) -> None:
    """Check the new case's merchant and category against the alert threshold."""
