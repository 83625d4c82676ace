"""The mediators' workspace: the queue of cases waiting for a mediator, a
mediator's own caseload, and who a case may be reassigned to.

Queries only (SELECTs built here, executed by the caller or returned as
lists); taking a case is the lifecycle action ``take`` of
:func:`mediation.cases.services.apply_action`, on a row locked by
:func:`mediation.auth.permissions.get_case_to_act`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, and_, func, or_
from sqlalchemy import case as sql_case
from sqlalchemy.orm import selectinload

from mediation import labels
from mediation.auth.models import Role, User
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case
from mediation.chat.models import ChatMessage, ChatReadPosition
from mediation.extensions import db

#: The category filter's value for "the categories I handle".
MY_CATEGORIES = "mine"
#: The category filter's value for "every category".
ALL_CATEGORIES = "all"


def _with_parties(query: Select) -> Select:
    return query.options(
        selectinload(Case.merchant),
        selectinload(Case.platform),
        selectinload(Case.consumer),
    )


def _by_deadline(query: Select) -> Select:
    """Nearest deadline first; a case without one (clock stopped) last."""
    return query.order_by(
        sql_case((Case.due_at.is_(None), 1), else_=0),
        Case.due_at.asc(),
        Case.filed_at.asc(),
        Case.id.asc(),
    )


def default_category_filter(user: User) -> str:
    """Return the queue's category filter when none is chosen.

    A mediator who handles some categories sees those first; one who handles
    every category (an empty list) sees everything.
    """
    return MY_CATEGORIES if user.categories else ALL_CATEGORIES


def resolve_category_filter(user: User, chosen: str | None) -> str:
    """Return a valid category filter: ``mine``, ``all`` or a category code."""
    if chosen == MY_CATEGORIES and user.categories:
        return MY_CATEGORIES
    if chosen == ALL_CATEGORIES or chosen in labels.CATEGORY:
        return chosen
    return default_category_filter(user)


def queue_query(user: User, category: str = ALL_CATEGORIES) -> Select:
    """Return the cases in mediation that wait for a mediator, nearest deadline first.

    :param user: the mediator looking at the queue (``mine`` reads their
        categories).
    :param category: ``all``, ``mine`` or one category code.
    """
    query = db.select(Case).where(
        Case.status == lc.IN_MEDIATION, Case.mediator_id.is_(None)
    )
    if category == MY_CATEGORIES and user.categories:
        query = query.where(Case.category.in_(list(user.categories)))
    elif category in labels.CATEGORY:
        query = query.where(Case.category == category)
    return _by_deadline(_with_parties(query))


def queue_counts(user: User) -> dict[str, int]:
    """Return how many cases wait in the queue: ``all`` and ``mine``."""
    waiting = db.select(func.count(Case.id)).where(
        Case.status == lc.IN_MEDIATION, Case.mediator_id.is_(None)
    )
    total = db.session.scalar(waiting) or 0
    mine = total
    if user.categories:
        mine = (
            db.session.scalar(waiting.where(Case.category.in_(list(user.categories))))
            or 0
        )
    return {ALL_CATEGORIES: total, MY_CATEGORIES: mine}


def caseload(user: User) -> list[Case]:
    """Return the mediator's own cases in mediation, nearest deadline first."""
    query = db.select(Case).where(
        Case.status == lc.IN_MEDIATION, Case.mediator_id == user.id
    )
    return list(db.session.scalars(_by_deadline(_with_parties(query))).all())


@dataclass(frozen=True)
class Activity:
    """What happened lately in a case's chat rooms, for one reader."""

    #: Messages of others (and system messages) after the reader's read position.
    unread: int = 0
    #: When the latest message of any room was sent (None: no message yet).
    last_message_at: datetime | None = None


def chat_activity(user: User, cases: list[Case]) -> dict[int, Activity]:
    """Return the chat activity of each case for ``user`` (a member of its rooms).

    Two grouped queries for the whole list, whatever its length.
    """
    ids = [c.id for c in cases]
    if not ids:
        return {}
    read = ChatReadPosition
    unread = dict(
        db.session.execute(
            db.select(ChatMessage.case_id, func.count(ChatMessage.id))
            .outerjoin(
                read,
                and_(
                    read.user_id == user.id,
                    read.case_id == ChatMessage.case_id,
                    read.room == ChatMessage.room,
                ),
            )
            .where(
                ChatMessage.case_id.in_(ids),
                ChatMessage.seq > func.coalesce(read.seq, 0),
                or_(ChatMessage.author_id.is_(None), ChatMessage.author_id != user.id),
            )
            .group_by(ChatMessage.case_id)
        ).all()
    )
    latest = dict(
        db.session.execute(
            db.select(ChatMessage.case_id, func.max(ChatMessage.sent_at))
            .where(ChatMessage.case_id.in_(ids))
            .group_by(ChatMessage.case_id)
        ).all()
    )
    return {
        case_id: Activity(unread.get(case_id, 0), _aware(latest.get(case_id)))
        for case_id in ids
    }


def _aware(value: datetime | None) -> datetime | None:
    """An aggregate skips the UTC column type: give SQLite's naive value its zone."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def reassign_candidates(case: Case) -> list[tuple[User, int]]:
    """Return who a regulator may give the case to, with each one's open cases.

    In mediation: the active mediators but the assigned one; in arbitration:
    the active arbitrators but the assigned one and the case's mediator (an
    arbitrator never decides a case they mediated).

    :return: ``(user, number of open cases assigned)`` by name.
    """
    if case.status == lc.IN_MEDIATION:
        role, column = Role.mediator.value, Case.mediator_id
        excluded = {case.mediator_id}
    elif case.status == lc.IN_ARBITRATION:
        role, column = Role.arbitrator.value, Case.arbitrator_id
        excluded = {case.arbitrator_id, case.mediator_id}
    else:
        return []
    users = [
        u
        for u in db.session.scalars(
            db.select(User)
            .where(User.role == role, User.is_active_account.is_(True))
            .order_by(User.name, User.id)
        ).all()
        if u.id not in excluded
    ]
    if not users:
        return []
    load = dict(
        db.session.execute(
            db.select(column, func.count(Case.id))
            .where(column.in_([u.id for u in users]))
            .where(Case.status.in_(lc.OPEN_STATUSES))
            .group_by(column)
        ).all()
    )
    return [(u, load.get(u.id, 0)) for u in users]
