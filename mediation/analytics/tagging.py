"""Complaint text tagging (being built for issue #7)."""

from __future__ import annotations

from datetime import datetime

from mediation.cases.models import Case


def on_case_filed(case: Case, *, now: datetime) -> None:
    """Flag the complaint when its text points to another hot-spot category."""
