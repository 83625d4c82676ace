"""What waits for the regulator, shown at the top of the dashboard: open
mass-complaint alerts, the merchants most at risk, complaint texts flagged for
review and planned warning interviews (each links to its own page)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import joinedload

from mediation.analytics.alert_models import AlertStatus, MassAlert
from mediation.analytics.risk import RiskFilters, risk_list
from mediation.analytics.risk_models import RiskScore, WarningInterview
from mediation.analytics.tagging_models import TextFlag
from mediation.extensions import db

#: Rows shown per list on the dashboard (the full lists are a click away).
SHOWN = 5


@dataclass
class Attention:
    """Counts and the first rows of each list that waits for a regulator."""

    open_alerts: int = 0
    alerts: list[MassAlert] = field(default_factory=list)
    at_risk: list[RiskScore] = field(default_factory=list)
    pending_flags: int = 0
    planned_interviews: int = 0


def _count(model: Any, *where: Any) -> int:
    return int(
        db.session.scalar(db.select(func.count()).select_from(model).where(*where)) or 0
    )


def attention() -> Attention:
    """Return what waits for the regulator now (five queries, each on an index)."""
    open_status = AlertStatus.open.value
    return Attention(
        open_alerts=_count(MassAlert, MassAlert.status == open_status),
        alerts=list(
            db.session.scalars(
                db.select(MassAlert)
                .options(joinedload(MassAlert.merchant))
                .where(MassAlert.status == open_status)
                .order_by(MassAlert.raised_at.desc(), MassAlert.id.desc())
                .limit(SHOWN)
            )
        ),
        at_risk=list(db.session.scalars(risk_list(RiskFilters()).limit(SHOWN))),
        pending_flags=_count(TextFlag, TextFlag.status == "pending"),
        planned_interviews=_count(
            WarningInterview, WarningInterview.status == "planned"
        ),
    )
