"""The staff workspaces: the queue of cases waiting for a mediator (or an
arbitrator), a mediator's own caseload, and who a case may be reassigned to.

Queries only (SELECTs built here, executed by the caller or returned as
lists); taking a case is the lifecycle action ``take`` of
:func:`mediation.cases.services.apply_action`, on a row locked by
:func:`mediation.auth.permissions.get_case_to_act`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Select, and_, func, or_
from sqlalchemy import case as sql_case
from sqlalchemy.orm import InstrumentedAttribute, selectinload

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


@dataclass(frozen=True)
class Desk:
    """Where cases wait for a member of staff: the status, the assignee column,
    and the cases a viewer may never take (an arbitrator never takes a case
    they mediated)."""

    status: str
    #: The column that names who took the case (None while it waits).
    assignee: InstrumentedAttribute
    #: Columns that must not name the viewer for the case to be in their queue.
    conflicts: tuple[InstrumentedAttribute, ...] = ()

    def waiting(self, user: User | None = None) -> ColumnElement[bool]:
        """Return the condition of a case waiting at this desk (for ``user``)."""
        clause = and_(Case.status == self.status, self.assignee.is_(None))
        if user is not None:
            for column in self.conflicts:
                clause = and_(clause, or_(column.is_(None), column != user.id))
        return clause


#: Cases in mediation without a mediator.
MEDIATION = Desk(lc.IN_MEDIATION, Case.mediator_id)
#: Cases in arbitration without an arbitrator, but for whoever mediated them.
ARBITRATION = Desk(lc.IN_ARBITRATION, Case.arbitrator_id, (Case.mediator_id,))


def with_parties(query: Select) -> Select:
    """Load the parties of the listed cases with the list (no query per row)."""
    return query.options(
        selectinload(Case.merchant),
        selectinload(Case.platform),
        selectinload(Case.consumer),
    )


def by_deadline(query: Select) -> Select:
    """Order cases by the nearest deadline; a case without one (clock stopped) last."""
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


def filter_category(query: Select, user: User, category: str) -> Select:
    """Narrow a case query to a category filter (``all``, ``mine`` or a code)."""
    if category == MY_CATEGORIES and user.categories:
        return query.where(Case.category.in_(list(user.categories)))
    if category in labels.CATEGORY:
        return query.where(Case.category == category)
    return query


def queue_query(
    user: User, category: str = ALL_CATEGORIES, desk: Desk = MEDIATION
) -> Select:
    """Return the cases that wait at ``desk`` for ``user``, nearest deadline first.

    :param user: the mediator (arbitrator) looking at the queue (``mine`` reads
        their categories; the desk's conflicts leave out cases they may not take).
    :param category: ``all``, ``mine`` or one category code.
    :param desk: :data:`MEDIATION` (default) or :data:`ARBITRATION`.
    """
    query = db.select(Case).where(desk.waiting(user))
    return by_deadline(with_parties(filter_category(query, user, category)))


def queue_counts(user: User, desk: Desk = MEDIATION) -> dict[str, int]:
    """Return how many cases wait in ``user``'s queue: ``all`` and ``mine``."""
    waiting = db.select(func.count(Case.id)).where(desk.waiting(user))
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
    return list(db.session.scalars(by_deadline(with_parties(query))).all())


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
    the eligible arbitrators (not the assigned one, not the case's mediator: an
    arbitrator never decides a case they mediated; nobody removed on a party's
    objection).

    :return: ``(user, number of open cases assigned)`` by name.
    """
    if case.status == lc.IN_MEDIATION:
        role, column = Role.mediator.value, Case.mediator_id
        excluded = {case.mediator_id}
    elif case.status == lc.IN_ARBITRATION:
        from mediation.arbitration.services import eligible_arbitrators

        column = Case.arbitrator_id
        users = eligible_arbitrators(case)
    else:
        return []
    if case.status == lc.IN_MEDIATION:
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
