"""Access checks: role AND relation, in one module used by every adapter.

A user who may not know an object exists gets :class:`NotFound` (404); a user
who may know it but not act gets :class:`PermissionDenied` (403).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import Select, false, or_

from mediation.auth.models import Role, User
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case
from mediation.errors import Conflict, NotFound, PermissionDenied, Unauthorized
from mediation.extensions import db


def case_relation(user: User | None, case: Case) -> str | None:
    """Return the user's relation to the case, or None when there is none.

    :return: ``consumer``, ``merchant``, ``platform``, ``mediator``,
        ``arbitrator`` or ``regulator`` (the roles of the lifecycle table).
    """
    if user is None or not user.is_authenticated:
        return None
    if user.role == Role.consumer.value:
        return "consumer" if case.consumer_id == user.id else None
    if user.role == Role.merchant.value:
        if user.merchant_id is None:
            return None
        if case.merchant_id is not None and user.merchant_id == case.merchant_id:
            return "merchant"
        if (
            case.platform_id is not None
            and user.merchant_id == case.platform_id
            and (case.merchant_id is None or case.platform_escalated_at is not None)
        ):
            return "platform"
        return None
    if user.role == Role.mediator.value:
        if case.mediator_id == user.id:
            return "mediator"
        if case.status == lc.IN_MEDIATION and case.mediator_id is None:
            return "mediator"
        return None
    if user.role == Role.arbitrator.value:
        if case.arbitrator_id == user.id:
            return "arbitrator"
        if (
            case.status == lc.IN_ARBITRATION
            and case.arbitrator_id is None
            # An arbitrator never decides (nor sees in the queue) a case they
            # mediated.
            and case.mediator_id != user.id
        ):
            return "arbitrator"
        return None
    if user.role == Role.regulator.value:
        return "regulator"
    return None


def visible_cases(user: User) -> Select:
    """Return a SELECT of the cases ``user`` may see (for lists and the API)."""
    query = db.select(Case)
    role = user.role
    if role == Role.consumer.value:
        return query.where(Case.consumer_id == user.id)
    if role == Role.merchant.value:
        if user.merchant_id is None:
            return query.where(false())
        return query.where(
            or_(
                Case.merchant_id == user.merchant_id,
                (Case.platform_id == user.merchant_id)
                & (
                    Case.merchant_id.is_(None) | Case.platform_escalated_at.is_not(None)
                ),
            )
        )
    if role == Role.mediator.value:
        return query.where(
            or_(
                Case.mediator_id == user.id,
                (Case.status == lc.IN_MEDIATION) & Case.mediator_id.is_(None),
            )
        )
    if role == Role.arbitrator.value:
        return query.where(
            or_(
                Case.arbitrator_id == user.id,
                (Case.status == lc.IN_ARBITRATION)
                & Case.arbitrator_id.is_(None)
                & or_(Case.mediator_id.is_(None), Case.mediator_id != user.id),
            )
        )
    if role == Role.regulator.value:
        return query
    return query.where(false())


def get_case_for(user: User, case_id: int) -> tuple[Case, str]:
    """Load a case the user may see, with the user's relation to it.

    :raise NotFound: when the case does not exist or the user has no relation.
    """
    case = db.session.get(Case, case_id)
    if case is None:
        raise NotFound()
    relation = case_relation(user, case)
    if relation is None:
        raise NotFound()
    return case, relation


def lock_case(case_id: int) -> Case | None:
    """Load a case for a change, locked until the commit, with fresh values.

    On PostgreSQL the row is locked (``SELECT ... FOR UPDATE``): a second
    writer waits, then reads what the first committed. On SQLite the database
    write lock is taken first (a no-op UPDATE) for the same effect. Two people
    acting on one case at once (two mediators taking it, both parties
    accepting a proposal) are thus applied one after the other, each on the
    state the other left.

    :return: the case, or None when there is no such case.
    """
    dialect = db.session.get_bind().dialect.name
    query = db.select(Case).where(Case.id == case_id)
    if dialect == "postgresql":
        query = query.with_for_update(of=Case)
    elif dialect == "sqlite":
        db.session.execute(db.text("UPDATE cases SET id = id WHERE 0 = 1"))
    case = db.session.scalar(query.execution_options(populate_existing=True))
    if case is not None:
        # The timeline head cached by record_event may predate the other writer.
        case.__dict__.pop("_chain_head", None)
    return case


def taken_by_another(user: User, case: Case) -> bool:
    """Say whether the case waited in ``user``'s queue but someone else took it.

    A mediator (arbitrator) who saw the case in the queue may be told so
    instead of a bare 404 when they try to take it too late.
    """
    if user.role == Role.mediator.value:
        return case.status == lc.IN_MEDIATION and case.mediator_id not in (
            None,
            user.id,
        )
    if user.role == Role.arbitrator.value:
        return case.status == lc.IN_ARBITRATION and case.arbitrator_id not in (
            None,
            user.id,
        )
    return False


def get_case_to_act(user: User, case_id: int, action: str | None) -> tuple[Case, str]:
    """Load and lock a case the user is about to act on, with their relation.

    :param action: the action asked for (``take`` gets a clearer refusal).
    :raise NotFound: when the case does not exist or the user has no relation.
    :raise Conflict: (``already_taken``) when the user tries to take a case
        from the queue that another mediator or arbitrator took first.
    """
    case = lock_case(case_id)
    if case is None:
        raise NotFound()
    relation = case_relation(user, case)
    if relation is None:
        if action == "take" and taken_by_another(user, case):
            raise Conflict(
                _l("Someone else took this case a moment ago."),
                code="already_taken",
            )
        raise NotFound()
    return case, relation


def get_case_by_reference_for(user: User, reference: str) -> tuple[Case, str]:
    """Like :func:`get_case_for`, by public reference.

    :raise NotFound: when unknown or not visible to the user.
    """
    case = db.session.scalar(db.select(Case).where(Case.reference == reference))
    if case is None:
        raise NotFound()
    return get_case_for(user, case.id)


def can_upload_evidence(relation: str | None, case: Case) -> bool:
    """Parties (and a platform answering for a shop) may add evidence to open cases."""
    return relation in ("consumer", "merchant", "platform") and not lc.is_closed(
        case.status
    )


def require_user() -> User:
    """Return the signed-in user.

    :raise Unauthorized: when nobody is signed in.
    """
    if not current_user.is_authenticated:
        raise Unauthorized()
    return current_user._get_current_object()


def require_role(*roles: Role | str) -> User:
    """Return the signed-in user if they have one of ``roles``.

    :raise Unauthorized: when nobody is signed in.
    :raise PermissionDenied: for another role.
    """
    user = require_user()
    if not user.has_role(*roles):
        raise PermissionDenied()
    return user


def role_required(*roles: Role | str) -> Callable:
    """Decorate a view or endpoint so that only ``roles`` reach it."""

    def decorator(fn: Callable) -> Callable:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any):
            require_role(*roles)
            return fn(*args, **kwargs)

        return wrapper

    return decorator


def login_required(fn: Callable) -> Callable:
    """Decorate a view or endpoint so that only signed-in users reach it."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        require_user()
        return fn(*args, **kwargs)

    return wrapper
