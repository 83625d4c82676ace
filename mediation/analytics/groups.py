"""Case groups: related complaints against one merchant, handled by one mediator.

A regulator groups complaints (usually those of a mass-complaint alert) for a
mediator of their choice; a mediator may group complaints they mediate into
their own handling. Grouping sets ``cases.group_id`` and hands every grouped
case in mediation to the group's mediator through the lifecycle:

- a case in mediation with another mediator is reassigned (``reassign`` by the
  regulator, with ``group_id`` in the event's data, so the timeline shows it);
- a case in mediation without one is assigned at once (``auto_assign``:
  :func:`mediation.cases.services.pick_assignee` answers the group's mediator);
- a case that enters mediation later is assigned the same way at that moment
  (:func:`on_case_event`, called from ``apply_action`` through the supervision
  hooks), so it never waits in the queue for another mediator.

Each grouped case keeps its own joint room and caucuses; the group also has one
shared room (key ``group``), stored on its first case (``room_case_id``), that
the chat reaches from any case of the group (:func:`group_room_mode`). Services
flush, never commit.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func

from mediation import labels
from mediation.analytics.alert_models import AlertStatus, CaseGroup, MassAlert
from mediation.analytics.audit import record_audit
from mediation.auth.models import Role, User
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case
from mediation.errors import NotFound, PermissionDenied, ValidationError
from mediation.extensions import db
from mediation.merchants.models import Merchant
from mediation.notifications.services import notify
from mediation.unit_of_work import after_commit

logger = logging.getLogger(__name__)

MAX_TITLE = 200
#: Why a case cannot be grouped (codes; the pages word them).
CLOSED = "closed"
IN_A_GROUP = "in_a_group"
NOT_YOURS = "not_yours"


# Who may group what -------------------------------------------------------------


def mediators() -> list[tuple[User, int]]:
    """Return the active mediators by name, each with their open cases."""
    users = list(
        db.session.scalars(
            db.select(User)
            .where(User.role == Role.mediator.value, User.is_active_account.is_(True))
            .order_by(User.name, User.id)
        ).all()
    )
    if not users:
        return []
    load = dict(
        db.session.execute(
            db.select(Case.mediator_id, func.count(Case.id))
            .where(
                Case.mediator_id.in_([u.id for u in users]),
                Case.status.in_(lc.OPEN_STATUSES),
            )
            .group_by(Case.mediator_id)
        ).all()
    )
    return [(u, load.get(u.id, 0)) for u in users]


def why_not_groupable(case: Case, actor: User) -> str | None:
    """Say why ``actor`` may not put ``case`` into a group (None: they may).

    Closed complaints have nothing left to mediate; a complaint belongs to one
    group at most; a mediator groups only complaints they mediate.
    """
    if lc.is_closed(case.status):
        return CLOSED
    if case.group_id is not None:
        return IN_A_GROUP
    if actor.has_role(Role.mediator) and case.mediator_id != actor.id:
        return NOT_YOURS
    return None


def may_manage(user: User, group: CaseGroup) -> bool:
    """Say whether ``user`` may see and change a group: regulators, and the
    group's own mediator (who may only add their own cases)."""
    if user.has_role(Role.regulator):
        return True
    return user.has_role(Role.mediator) and group.mediator_id == user.id


def get_group_for(user: User, group_id: int) -> CaseGroup:
    """Load a group ``user`` may see.

    :raise PermissionDenied: for roles that see no groups.
    :raise NotFound: when there is no such group, or a mediator does not
        mediate it.
    """
    if not user.has_role(Role.regulator, Role.mediator):
        raise PermissionDenied()
    group = db.session.get(CaseGroup, group_id)
    if group is None or not may_manage(user, group):
        raise NotFound()
    return group


def _check_mediator(mediator: User | None) -> dict[str, Any]:
    if (
        mediator is None
        or not mediator.has_role(Role.mediator)
        or not mediator.is_active_account
    ):
        return {"mediator_id": _l("Choose an active mediator.")}
    return {}


# Grouping -----------------------------------------------------------------------


def group_cases(
    cases: list[Case],
    *,
    actor: User,
    mediator: User | None,
    now: datetime,
    title: str | None = None,
    alert: MassAlert | None = None,
    group: CaseGroup | None = None,
) -> CaseGroup:
    """Group complaints against one merchant for one mediator (a new group, or
    more complaints for ``group``).

    Grouped cases in mediation go to the group's mediator at once (see the
    module docstring); an open ``alert`` becomes ``grouped``. The audit log, the
    mediator, the consumers and the merchant's staff hear of it.

    :param cases: the complaints, loaded (and locked) by the caller.
    :param actor: a regulator, or a mediator grouping complaints they mediate
        into their own handling.
    :param mediator: who handles the group (a new group only; a mediator
        actor must name themselves).
    :param title: the group's name (default: merchant and category).
    :param alert: the alert the complaints come from, if any.
    :raise PermissionDenied: for other roles, or a mediator adding to a group
        they do not mediate.
    :raise ValidationError: naming what is wrong (``case_ids``, ``mediator_id``,
        ``title``).
    """
    if not actor.has_role(Role.regulator, Role.mediator):
        raise PermissionDenied()
    if group is not None:
        if not may_manage(actor, group):
            raise PermissionDenied()
        mediator = group.mediator
    errors: dict[str, Any] = {}
    if not cases:
        errors["case_ids"] = _l("Choose the complaints to group.")
    elif group is None and len(cases) < 2:
        errors["case_ids"] = _l("Choose at least two complaints to group.")
    errors.update(_check_mediator(mediator))
    if (
        not errors.get("mediator_id")
        and actor.has_role(Role.mediator)
        and mediator.id != actor.id
    ):
        errors["mediator_id"] = _l("A mediator groups complaints for themselves only.")
    merchant_ids = {c.merchant_id for c in cases} | (
        {group.merchant_id} if group is not None else set()
    )
    if cases and (None in merchant_ids or len(merchant_ids) > 1):
        errors["case_ids"] = _l("Group complaints against one registered merchant.")
    elif cases:
        refused = [
            (c, why_not_groupable(c, actor))
            for c in cases
            if why_not_groupable(c, actor) is not None
        ]
        if refused:
            errors["case_ids"] = "; ".join(
                f"{c.reference}: {why_text(code)}" for c, code in refused
            )
    name = (title or "").strip()
    if len(name) > MAX_TITLE:
        errors["title"] = _l("At most %(max)d characters.", max=MAX_TITLE)
    if errors:
        raise ValidationError(fields=errors)
    cases = sorted(cases, key=lambda c: c.id)
    created = group is None
    if group is None:
        merchant = db.session.get(Merchant, cases[0].merchant_id)
        category = alert.category if alert is not None else cases[0].category
        group = CaseGroup(
            merchant_id=merchant.id,
            category=category,
            title=name or default_title(merchant, category),
            mediator_id=mediator.id,
            mediator=mediator,
            created_by_id=actor.id,
            alert_id=alert.id if alert is not None else None,
            room_case_id=cases[0].id,
            created_at=now,
            updated_at=now,
        )
        db.session.add(group)
        db.session.flush()
    else:
        group.updated_at = now
    for case in cases:
        case.group_id = group.id
        case.group = group
        case.updated_at = now
    db.session.flush()
    for case in cases:
        _hand_over(case, group, actor=actor, now=now)
    if alert is not None and alert.status == AlertStatus.open.value:
        alert.status = AlertStatus.grouped.value
        alert.updated_at = now
    record_audit(
        actor,
        "group.create" if created else "group.add",
        object_type="group",
        object_id=group.id,
        details={
            "alert_id": alert.id if alert is not None else None,
            "case_ids": [c.id for c in cases],
            "mediator_id": group.mediator_id,
            "title": group.title,
        },
        now=now,
    )
    _tell(group, cases, actor=actor, created=created, now=now)
    logger.info(
        "cases grouped",
        extra={
            "group_id": group.id,
            "case_ids": [c.id for c in cases],
            "mediator_id": group.mediator_id,
            "actor_id": actor.id,
        },
    )
    return group


def default_title(merchant: Merchant, category: str) -> str:
    """Return a group's default name: the merchant and the category (in the
    language of whoever groups)."""
    return f"{merchant.name} · {labels.CATEGORY.get(category, category)}"


def why_text(code: str | None) -> str:
    """Return the words of a :func:`why_not_groupable` code."""
    return str(
        {
            CLOSED: _l("closed"),
            IN_A_GROUP: _l("already in a group"),
            NOT_YOURS: _l("not mediated by you"),
        }.get(code or "", code or "")
    )


def _hand_over(case: Case, group: CaseGroup, *, actor: User, now: datetime) -> None:
    """Give a grouped case in mediation to the group's mediator (lifecycle
    actions, so the timeline shows it)."""
    from mediation.cases.services import apply_action

    if case.status != lc.IN_MEDIATION or case.mediator_id == group.mediator_id:
        return
    if case.mediator_id is None:
        apply_action(case, "auto_assign", {}, actor=None, relation="system", now=now)
    else:
        # Only a regulator gets here: a mediator groups only their own cases.
        apply_action(
            case,
            "reassign",
            {"user_id": group.mediator_id, "group_id": group.id},
            actor=actor,
            relation="regulator",
            now=now,
        )


def _tell(
    group: CaseGroup,
    cases: list[Case],
    *,
    actor: User,
    created: bool,
    now: datetime,
) -> None:
    """Notify the group's mediator, the consumers of the grouped cases and the
    merchant's staff."""
    from mediation.cases.services import staff_of

    merchant = db.session.get(Merchant, group.merchant_id)
    params = {
        "group": group.reference,
        "group_id": group.id,
        "count": len(cases),
        "merchant": merchant.name if merchant else "",
    }
    if group.mediator_id != actor.id:
        notify(
            [group.mediator],
            "group_assigned",
            params,
            case_id=group.room_case_id,
            now=now,
        )
    for case in cases:
        notify(
            [case.consumer],
            "case_grouped",
            {**params, "reference": case.reference},
            case_id=case.id,
            now=now,
        )
    notify(
        staff_of(group.merchant_id),
        "group_merchant",
        params,
        case_id=cases[0].id if not created else group.room_case_id,
        now=now,
    )


def change_mediator(
    group: CaseGroup, mediator: User | None, *, actor: User, now: datetime
) -> CaseGroup:
    """Give a group to another mediator (a regulator): its cases in mediation
    are reassigned, and the former mediator leaves the group room.

    :raise PermissionDenied: for anyone but a regulator.
    :raise ValidationError: (``mediator_id``) for anyone but another active
        mediator.
    """
    if not actor.has_role(Role.regulator):
        raise PermissionDenied()
    errors = _check_mediator(mediator)
    if not errors and mediator.id == group.mediator_id:
        errors = {"mediator_id": _l("This mediator already handles the group.")}
    if errors:
        raise ValidationError(fields=errors)
    former = group.mediator_id
    group.mediator_id = mediator.id
    group.mediator = mediator
    group.updated_at = now
    db.session.flush()
    moved = []
    for case in group_cases_of(group):
        if case.status == lc.IN_MEDIATION and case.mediator_id is not None:
            _hand_over(case, group, actor=actor, now=now)
            moved.append(case.id)
    record_audit(
        actor,
        "group.mediator",
        object_type="group",
        object_id=group.id,
        details={"from": former, "to": mediator.id, "reassigned": moved},
        now=now,
    )
    notify(
        [mediator],
        "group_assigned",
        {
            "group": group.reference,
            "group_id": group.id,
            "count": len(group_cases_of(group)),
            "merchant": group.merchant.name if group.merchant else "",
        },
        case_id=group.room_case_id,
        now=now,
    )
    evict_group_room(group)
    return group


def remove_case(
    group: CaseGroup, case: Case, *, actor: User, reason: str | None, now: datetime
) -> CaseGroup:
    """Take a complaint out of its group (a regulator). It keeps its mediator;
    its consumer leaves the group room.

    :raise PermissionDenied: for anyone but a regulator.
    :raise NotFound: when the case is not in this group.
    :raise ValidationError: (``reason``) without a reason.
    """
    if not actor.has_role(Role.regulator):
        raise PermissionDenied()
    if case.group_id != group.id:
        raise NotFound()
    why = (reason or "").strip()
    if not why:
        raise ValidationError(fields={"reason": _l("Give a reason.")})
    if len(why) > 2000:
        raise ValidationError(
            fields={"reason": _l("At most %(max)d characters.", max=2000)}
        )
    case.group_id = None
    case.group = None
    case.updated_at = now
    group.updated_at = now
    db.session.flush()
    record_audit(
        actor,
        "group.remove",
        object_type="group",
        object_id=group.id,
        details={"case_id": case.id, "reason": why},
        now=now,
    )
    evict_group_room(group)
    return group


def group_cases_of(group: CaseGroup) -> list[Case]:
    """Return a group's complaints, oldest first (fresh from the database)."""
    return list(
        db.session.scalars(
            db.select(Case).where(Case.group_id == group.id).order_by(Case.id)
        ).all()
    )


# The lifecycle's side -------------------------------------------------------------


def group_mediator_id(case: Case) -> int | None:
    """Return the id of the active mediator of the case's group (None: not
    grouped, or the group's mediator can no longer take cases)."""
    if case.group_id is None:
        return None
    group = db.session.get(CaseGroup, case.group_id)
    if group is None:
        return None
    mediator = db.session.get(User, group.mediator_id)
    if (
        mediator is None
        or not mediator.is_active_account
        or not mediator.has_role(Role.mediator)
    ):
        return None
    return mediator.id


def on_case_event(
    case: Case, *, action: str, from_status: str | None, now: datetime
) -> None:
    """Assign a grouped case that just entered mediation to its group's mediator.

    Called from ``apply_action`` (through the supervision hooks) after the
    event: the assignment is a system ``auto_assign`` of its own on the
    timeline, right after the step that brought the case into mediation. After
    a change of the case's staff, whoever lost the group room through it leaves.
    """
    from mediation.chat.services import MEMBERSHIP_ACTIONS

    if case.group_id is not None and action in MEMBERSHIP_ACTIONS:
        group = db.session.get(CaseGroup, case.group_id)
        if group is not None:
            evict_group_room(group)
    if (
        case.group_id is None
        or case.status != lc.IN_MEDIATION
        or from_status == lc.IN_MEDIATION
        or case.mediator_id is not None
        or group_mediator_id(case) is None
    ):
        return
    from mediation.cases.services import apply_action

    apply_action(case, "auto_assign", {}, actor=None, relation="system", now=now)


# The group room ------------------------------------------------------------------


def _has_open_case(group_id: int) -> bool:
    return bool(
        db.session.scalar(
            db.select(
                exists().where(
                    Case.group_id == group_id, Case.status.in_(lc.OPEN_STATUSES)
                )
            )
        )
    )


def group_room_mode(case: Case, user: User | None, relation: str | None) -> str | None:
    """Return how ``user`` may use the group room through ``case``: ``write``,
    ``read`` or None (no access).

    Members: the consumer of each grouped case (writes while their own case is
    open), the merchant's staff and the group's mediator (write while any
    grouped case is open); regulators read. Nobody else: not the platform, not
    arbitrators, not other mediators.

    :param relation: the user's relation to ``case`` (``case_relation``).
    """
    if user is None or case.group_id is None or relation is None:
        return None
    group = db.session.get(CaseGroup, case.group_id)
    if group is None or group.room_case_id is None:
        return None
    if relation == "regulator":
        return "read"
    if relation == "consumer":
        writable = not lc.is_closed(case.status)
    elif relation == "merchant":
        writable = _has_open_case(group.id)
    elif relation == "mediator" and user.id == group.mediator_id:
        writable = _has_open_case(group.id)
    else:
        return None
    return "write" if writable else "read"


def group_room_case_id(case: Case) -> int | None:
    """Return the id of the case whose rooms hold the group room of ``case``'s
    group (None: not grouped)."""
    if case.group_id is None:
        return None
    group = db.session.get(CaseGroup, case.group_id)
    return group.room_case_id if group is not None else None


def evict_group_room(group: CaseGroup) -> None:
    """After the commit, take out of the group room whoever lost it."""
    if group.room_case_id is None:
        return
    from mediation.chat.presence import presence_for
    from mediation.chat.services import GROUP, room_access, socket_room

    registry = presence_for()
    name = socket_room(group.room_case_id, GROUP)
    leaving: list[tuple[str, str]] = []
    for sid, member in registry.entries(name).items():
        user = db.session.get(User, member.get("id"))
        via = db.session.get(Case, member.get("via_case_id") or 0)
        if via is None or GROUP not in room_access(via, user):
            leaving.append((sid, name))
    if leaving:
        from mediation.chat.services import leave_rooms

        after_commit(lambda: leave_rooms(group.room_case_id, leaving))


def consumer_label(reference: str | None) -> str:
    """Return how the group room names a consumer: by their complaint, never
    by name (in the current language)."""
    return gettext("Consumer of %(reference)s", reference=reference or "?")
