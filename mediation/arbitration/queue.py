"""The arbitrators' workspace: the queue of cases waiting for an arbitrator, an
arbitrator's caseload, the regulators' overview, and what is pending in each.

Queries only, built on the shared ones of :mod:`mediation.cases.queue` (the
mediators' workspace). Taking a case is the lifecycle action ``take``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, func
from sqlalchemy.orm import selectinload

from mediation.arbitration.models import (
    Award,
    AwardCorrection,
    DecisionStatus,
    InfoRequest,
    Objection,
    RequestStatus,
)
from mediation.auth.models import User
from mediation.cases import lifecycle as lc
from mediation.cases import queue as shared
from mediation.cases.models import Case
from mediation.extensions import db

#: The statuses of a case in the arbitrators' hands.
ARBITRATION_STATUSES = (lc.IN_ARBITRATION, lc.AWARDED)


def queue_query(user: User, category: str = shared.ALL_CATEGORIES) -> Select:
    """Return the cases in arbitration that wait for an arbitrator, nearest
    deadline first, without the cases ``user`` mediated (never theirs to take).

    :param category: ``all``, ``mine`` or one category code.
    """
    return shared.queue_query(user, category, shared.ARBITRATION)


def queue_counts(user: User) -> dict[str, int]:
    """Return how many cases wait in ``user``'s queue: ``all`` and ``mine``."""
    return shared.queue_counts(user, shared.ARBITRATION)


def caseload(user: User) -> list[Case]:
    """Return the arbitrator's own cases (in arbitration or awarded), nearest
    deadline first."""
    query = db.select(Case).where(
        Case.status.in_(ARBITRATION_STATUSES), Case.arbitrator_id == user.id
    )
    return list(
        db.session.scalars(shared.by_deadline(shared.with_parties(query))).all()
    )


def overview_query(user: User, category: str = shared.ALL_CATEGORIES) -> Select:
    """Return every case in arbitration or awarded, nearest deadline first (the
    regulators' view: waiting ones and assigned ones alike).

    :param user: the regulator (``mine`` has no meaning for them: all).
    :param category: ``all`` or one category code.
    """
    query = db.select(Case).where(Case.status.in_(ARBITRATION_STATUSES))
    query = shared.filter_category(query, user, category)
    return shared.by_deadline(
        shared.with_parties(query).options(
            selectinload(Case.arbitrator), selectinload(Case.mediator)
        )
    )


@dataclass(frozen=True)
class Pending:
    """What waits in one case of the arbitration lists."""

    #: Information requests not yet answered.
    info_requests: int = 0
    #: The earliest deadline of those requests (UTC).
    info_due_at: datetime | None = None
    #: An objection to the arbitrator waits for a regulator.
    objection: bool = False
    #: Correction requests waiting for the arbitrator.
    corrections: int = 0
    #: The end of the award's correction window (None: no award yet).
    correction_until: datetime | None = None


def pending(cases: list[Case]) -> dict[int, Pending]:
    """Return what is pending in each case of a list: four grouped queries for
    the whole list, whatever its length."""
    ids = [c.id for c in cases]
    if not ids:
        return {}
    requests = {
        case_id: (count, _aware(due))
        for case_id, count, due in db.session.execute(
            db.select(
                InfoRequest.case_id,
                func.count(InfoRequest.id),
                func.min(InfoRequest.due_at),
            )
            .where(
                InfoRequest.case_id.in_(ids),
                InfoRequest.status == RequestStatus.open.value,
            )
            .group_by(InfoRequest.case_id)
        ).all()
    }
    objections = set(
        db.session.scalars(
            db.select(Objection.case_id).where(
                Objection.case_id.in_(ids),
                Objection.status == DecisionStatus.open.value,
            )
        ).all()
    )
    corrections = dict(
        db.session.execute(
            db.select(AwardCorrection.case_id, func.count(AwardCorrection.id))
            .where(
                AwardCorrection.case_id.in_(ids),
                AwardCorrection.status == DecisionStatus.open.value,
            )
            .group_by(AwardCorrection.case_id)
        ).all()
    )
    # Every version keeps the first version's window: any one of them will do.
    windows = {
        case_id: _aware(until)
        for case_id, until in db.session.execute(
            db.select(Award.case_id, func.min(Award.correction_until))
            .where(Award.case_id.in_(ids))
            .group_by(Award.case_id)
        ).all()
    }
    return {
        case_id: Pending(
            info_requests=requests.get(case_id, (0, None))[0],
            info_due_at=requests.get(case_id, (0, None))[1],
            objection=case_id in objections,
            corrections=corrections.get(case_id, 0),
            correction_until=windows.get(case_id),
        )
        for case_id in ids
    }


def _aware(value: datetime | None) -> datetime | None:
    """An aggregate skips the UTC column type: give SQLite's naive value its zone."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
