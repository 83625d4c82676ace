"""Mass-complaint alerts: detection, the credit fact, resolution and dismissal.

An alert fires when one merchant collects at least N complaints of one category
within W days (``MASS_ALERT_THRESHOLD``, ``MASS_ALERT_WINDOW_DAYS``; 10 and 7).
Two detectors apply the same rule through :func:`detect`:

- on filing (:func:`on_case_filed`, called by ``file_case`` inside the filing's
  transaction): the new complaint's merchant and category;
- the scheduled job (:mod:`mediation.analytics.alert_jobs`): every merchant and
  category, which catches what filing cannot see (a category amended, a shop
  linked to its merchant later, a lowered threshold, a filing while the
  detector was failing).

The rule, in full:

- a complaint counts when it names a registered merchant (complaints about an
  unregistered shop count once the regulator links the merchant), was not
  dismissed by the regulator (``rejected``), and is not part of an earlier
  alert of the same merchant and category (so a resolved or dismissed burst is
  never raised again; a *new* burst is);
- the window is the last W x 24 hours up to now, both ends included: a
  complaint filed exactly W days ago counts, one a second earlier does not;
- N such complaints (N - 1 are not enough) raise an alert holding all of them;
- while an alert is active (``open`` or ``grouped``) it is the only one of its
  merchant and category: complaints filed since its window started join it and
  its count follows.

Raising an alert records the credit fact ``mass_alert`` (a ledger row without a
case, undone when a regulator dismisses the alert as unfounded), notifies the
regulators (in-app and e-mail) and writes the audit log.

Several detectors at once: each takes a lock on the merchant and category
first (``pg_advisory_xact_lock`` on PostgreSQL, the database write lock on
SQLite) and looks again under it, so the second one finds the first one's alert
and joins it; the unique partial index ``ix_mass_alerts_active_key`` is the
last guarantee. Services flush, never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, exists, false, func, text
from sqlalchemy.exc import IntegrityError

from mediation.analytics.alert_models import (
    ACTIVE_STATUSES,
    AlertSource,
    AlertStatus,
    MassAlert,
    MassAlertCase,
)
from mediation.analytics.audit import record_audit
from mediation.auth.models import Role, User
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case, Category
from mediation.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mediation.extensions import db
from mediation.merchants.models import Merchant
from mediation.notifications.services import notify

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 10
DEFAULT_WINDOW_DAYS = 7
#: The credit fact an alert records (a key of the credit model's points).
CREDIT_KIND = "mass_alert"
#: The high bits of the detectors' advisory lock keys (PostgreSQL): "MA".
LOCK_NAMESPACE = 0x4D41
#: Longest resolution note or dismissal reason, in characters.
MAX_NOTE = 2000
_CATEGORIES = [c.value for c in Category]


@dataclass(frozen=True)
class Settings:
    """The alert rule in force: ``threshold`` complaints in ``window_days``."""

    threshold: int
    window_days: int

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)


def settings() -> Settings:
    """Return the running app's rule (``MASS_ALERT_THRESHOLD``,
    ``MASS_ALERT_WINDOW_DAYS``; at least 1 each)."""
    config = current_app.config
    return Settings(
        threshold=max(1, int(config.get("MASS_ALERT_THRESHOLD") or DEFAULT_THRESHOLD)),
        window_days=max(
            1, int(config.get("MASS_ALERT_WINDOW_DAYS") or DEFAULT_WINDOW_DAYS)
        ),
    )


@dataclass
class Detection:
    """What one detection of a merchant and category found."""

    #: The active alert of the key afterwards (None: below the threshold).
    alert: MassAlert | None = None
    #: It was raised now.
    raised: bool = False
    #: Complaints that joined an alert that was already active.
    joined: list[int] = field(default_factory=list)


# The rule -----------------------------------------------------------------------


def _not_in_an_alert_of_its_key() -> Any:
    """Condition: the case is in no alert of its own merchant and category."""
    return ~exists().where(
        MassAlertCase.case_id == Case.id,
        MassAlert.id == MassAlertCase.alert_id,
        MassAlert.merchant_id == Case.merchant_id,
        MassAlert.category == Case.category,
    )


def counting_cases() -> Any:
    """Conditions of a complaint that counts towards an alert (see the module
    docstring): a registered merchant, not dismissed, in no alert of its key."""
    return (
        Case.merchant_id.is_not(None),
        Case.status != lc.REJECTED,
        _not_in_an_alert_of_its_key(),
    )


def _candidates(
    merchant_id: int, category: str, since: datetime, now: datetime
) -> list[tuple[int, datetime]]:
    """Return ``(id, filed_at)`` of the counting complaints of a key filed in
    ``[since, now]``, oldest first."""
    return [
        (row.id, row.filed_at)
        for row in db.session.execute(
            db.select(Case.id, Case.filed_at)
            .where(
                Case.merchant_id == merchant_id,
                Case.category == category,
                Case.filed_at >= since,
                Case.filed_at <= now,
                *counting_cases(),
            )
            .order_by(Case.filed_at, Case.id)
        ).all()
    ]


def active_alert(merchant_id: int, category: str) -> MassAlert | None:
    """Return the open or grouped alert of a merchant and category, if any
    (its values as stored now: another detector may have just changed them)."""
    return db.session.scalar(
        db.select(MassAlert)
        .where(
            MassAlert.merchant_id == merchant_id,
            MassAlert.category == category,
            MassAlert.status.in_(ACTIVE_STATUSES),
        )
        .execution_options(populate_existing=True)
    )


def _lock(merchant_id: int, category: str) -> None:
    """Take the detectors' lock of a merchant and category until the commit.

    PostgreSQL: a transaction-level advisory lock on the key (a second detector
    of the same key waits, then sees what the first committed). SQLite: the
    database write lock (one writer at a time anyway; a filing holds it already).
    """
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        index = _CATEGORIES.index(category) if category in _CATEGORIES else 255
        key = (LOCK_NAMESPACE << 48) | (merchant_id << 8) | index
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    elif dialect == "sqlite":
        db.session.execute(text("UPDATE mass_alerts SET id = id WHERE 0 = 1"))


def detect(
    merchant_id: int,
    category: str,
    *,
    now: datetime,
    source: AlertSource,
    trigger: Case | None = None,
) -> Detection:
    """Apply the alert rule to one merchant and category at ``now``.

    Under the key's lock: an active alert takes the new counting complaints
    filed since its window started; otherwise, N counting complaints within the
    window raise a new alert (credit fact, regulators notified, audit entry).

    :param source: the detector (``filing`` or ``job``), recorded on a new alert.
    :param trigger: the complaint just filed (linked from the notification).
    :return: what was found and done.
    """
    _lock(merchant_id, category)
    alert = active_alert(merchant_id, category)
    if alert is not None:
        return Detection(alert=alert, joined=_join(alert, now=now))
    rule = settings()
    start = now - rule.window
    found = _candidates(merchant_id, category, start, now)
    if len(found) < rule.threshold:
        return Detection()
    alert = MassAlert(
        merchant_id=merchant_id,
        category=category,
        threshold=rule.threshold,
        window_days=rule.window_days,
        window_start=start,
        count=len(found),
        status=AlertStatus.open.value,
        raised_at=now,
        raised_by=AlertSource(source).value,
        last_filed_at=max(at for _id, at in found),
        updated_at=now,
    )
    try:
        # The unique index is the last guard should two detectors race anyway
        # (the lock above makes it unreachable): then the other's alert is joined.
        with db.session.begin_nested():
            db.session.add(alert)
            db.session.flush()
    except IntegrityError:
        logger.warning(
            "mass alert raised concurrently; joining it",
            extra={"merchant_id": merchant_id, "category": category},
        )
        existing = active_alert(merchant_id, category)
        if existing is None:  # pragma: no cover - the index said it exists
            raise
        return Detection(alert=existing, joined=_join(existing, now=now))
    for case_id, _at in found:
        db.session.add(MassAlertCase(alert_id=alert.id, case_id=case_id, added_at=now))
    _record_credit_fact(alert, now=now)
    _announce_raised(alert, [case_id for case_id, _at in found], trigger, now=now)
    return Detection(alert=alert, raised=True)


def _join(alert: MassAlert, *, now: datetime) -> list[int]:
    """Link the counting complaints of an active alert's key filed since its
    window started; return their ids."""
    found = _candidates(alert.merchant_id, alert.category, alert.window_start, now)
    for case_id, filed_at in found:
        db.session.add(MassAlertCase(alert_id=alert.id, case_id=case_id, added_at=now))
        if filed_at > alert.last_filed_at:
            alert.last_filed_at = filed_at
    if found:
        alert.count += len(found)
        alert.updated_at = now
        logger.info(
            "complaints joined a mass alert",
            extra={"alert_id": alert.id, "case_ids": [c for c, _ in found]},
        )
    return [case_id for case_id, _at in found]


def _record_credit_fact(alert: MassAlert, *, now: datetime) -> None:
    """Add the ``mass_alert`` credit event of a new alert and refresh the
    merchant's standing.

    The event has no case (``case_id`` NULL): ``recompute-credit`` rebuilds the
    ledger per case and leaves it alone; its ``data`` says why.
    """
    from mediation.credit import ledger
    from mediation.credit import model as credit_model
    from mediation.credit.models import CreditEvent

    merchant = db.session.get(Merchant, alert.merchant_id)
    try:
        points = credit_model.points_for(
            CREDIT_KIND, ledger.norm_of(merchant), ledger.credit_config()
        )
    except KeyError:
        logger.warning("the credit model has no points for mass alerts")
        return
    event = CreditEvent(
        merchant_id=alert.merchant_id,
        case_id=None,
        kind=CREDIT_KIND,
        points=points,
        occurred_at=alert.raised_at,
        data={
            "alert_id": alert.id,
            "category": alert.category,
            "count": alert.count,
            "window_days": alert.window_days,
            "threshold": alert.threshold,
        },
        lists=False,
        created_at=now,
    )
    db.session.add(event)
    db.session.flush()
    alert.credit_event_id = event.id
    ledger.refresh_standing(alert.merchant_id, now=now)


def _regulators() -> list[User]:
    return list(
        db.session.scalars(
            db.select(User).where(
                User.role == Role.regulator.value, User.is_active_account.is_(True)
            )
        ).all()
    )


def _announce_raised(
    alert: MassAlert, case_ids: list[int], trigger: Case | None, *, now: datetime
) -> None:
    """Notify the regulators of a new alert, and write the audit log."""
    merchant = db.session.get(Merchant, alert.merchant_id)
    notify(
        _regulators(),
        "mass_alert",
        {
            "alert": alert.reference,
            "alert_id": alert.id,
            "merchant": merchant.name if merchant else str(alert.merchant_id),
            "category": alert.category,
            "count": alert.count,
            "days": alert.window_days,
        },
        # The bell links to the complaint that crossed the threshold (or the
        # newest one); the case page links to the alert.
        case_id=trigger.id if trigger is not None else max(case_ids),
        now=now,
    )
    record_audit(
        None,
        "alert.raise",
        object_type="alert",
        object_id=alert.id,
        details={
            "merchant_id": alert.merchant_id,
            "category": alert.category,
            "count": alert.count,
            "threshold": alert.threshold,
            "window_days": alert.window_days,
            "source": alert.raised_by,
            "case_ids": case_ids,
            "credit_event_id": alert.credit_event_id,
        },
        now=now,
    )
    logger.info(
        "mass alert raised",
        extra={
            "alert_id": alert.id,
            "merchant_id": alert.merchant_id,
            "category": alert.category,
            "count": alert.count,
            "source": alert.raised_by,
        },
    )


# The detectors -------------------------------------------------------------------


def on_case_filed(case: Case, *, now: datetime) -> None:
    """Check the new case's merchant and category against the alert rule.

    Called by ``file_case`` (through the supervision hooks) inside the filing's
    transaction. Unregistered shops have no merchant: the job counts their
    complaints once the regulator links one.

    :param case: the new case, flushed.
    """
    if case.merchant_id is None:
        return
    detect(
        case.merchant_id,
        case.category,
        now=now,
        source=AlertSource.filing,
        trigger=case,
    )


def keys_to_check(*, now: datetime) -> list[tuple[int, str]]:
    """Return the ``(merchant_id, category)`` keys the job must look at now.

    Keys with an active alert and complaints to join, and keys with at least N
    counting complaints in the window and no active alert (the lock and
    :func:`detect` decide again for each).
    """
    rule = settings()
    joinable = db.session.execute(
        db.select(MassAlert.merchant_id, MassAlert.category)
        .where(
            MassAlert.status.in_(ACTIVE_STATUSES),
            exists().where(
                Case.merchant_id == MassAlert.merchant_id,
                Case.category == MassAlert.category,
                Case.filed_at >= MassAlert.window_start,
                Case.filed_at <= now,
                *counting_cases(),
            ),
        )
        .order_by(MassAlert.merchant_id, MassAlert.category)
    ).all()
    active = exists().where(
        MassAlert.merchant_id == Case.merchant_id,
        MassAlert.category == Case.category,
        MassAlert.status.in_(ACTIVE_STATUSES),
    )
    due = db.session.execute(
        db.select(Case.merchant_id, Case.category)
        .where(
            Case.filed_at >= now - rule.window,
            Case.filed_at <= now,
            *counting_cases(),
            ~active,
        )
        .group_by(Case.merchant_id, Case.category)
        .having(func.count(Case.id) >= rule.threshold)
        .order_by(Case.merchant_id, Case.category)
    ).all()
    return sorted({(m, c) for m, c in [*joinable, *due]})


# Resolving -----------------------------------------------------------------------


def _note(value: str | None, field_name: str, missing: Any) -> str:
    note = (value or "").strip()
    if not note:
        raise ValidationError(fields={field_name: missing})
    if len(note) > MAX_NOTE:
        raise ValidationError(
            fields={
                field_name: _l("At most %(max)d characters.", max=MAX_NOTE),
            }
        )
    return note


def _closable(alert: MassAlert, actor: User) -> None:
    if not actor.has_role(Role.regulator):
        raise PermissionDenied(_l("Only regulators resolve or dismiss alerts."))
    if not alert.is_active:
        raise Conflict(_l("This alert is already closed."), code="alert_closed")


def resolve_alert(
    alert: MassAlert, *, actor: User, note: str | None, now: datetime
) -> MassAlert:
    """Close an alert as resolved, with a note on how (a regulator).

    The credit fact stays. Complaints filed afterwards count towards a new alert.

    :raise PermissionDenied: for anyone but a regulator.
    :raise Conflict: when the alert is already resolved or dismissed.
    :raise ValidationError: without a note, or with one too long.
    """
    _closable(alert, actor)
    text_ = _note(note, "note", _l("Say how the alert was resolved."))
    alert.status = AlertStatus.resolved.value
    alert.resolved_at = now
    alert.resolved_by_id = actor.id
    alert.resolved_by = actor
    alert.resolution = text_
    alert.updated_at = now
    record_audit(
        actor,
        "alert.resolve",
        object_type="alert",
        object_id=alert.id,
        details={"note": text_, "count": alert.count},
        now=now,
    )
    logger.info("mass alert resolved", extra={"alert_id": alert.id})
    return alert


def dismiss_alert(
    alert: MassAlert, *, actor: User, reason: str | None, now: datetime
) -> MassAlert:
    """Dismiss an alert as unfounded, with a reason (a regulator).

    The credit fact is withdrawn (its ledger row deleted, the standing
    refreshed); the alert keeps its record, the reason and who dismissed it.

    :raise PermissionDenied: for anyone but a regulator.
    :raise Conflict: when the alert is already resolved or dismissed.
    :raise ValidationError: without a reason, or with one too long.
    """
    from mediation.credit import ledger
    from mediation.credit.models import CreditEvent

    _closable(alert, actor)
    text_ = _note(reason, "reason", _l("Say why the alert is unfounded."))
    withdrawn = None
    if alert.credit_event_id is not None:
        event = db.session.get(CreditEvent, alert.credit_event_id)
        if event is not None:
            withdrawn = event.id
            db.session.delete(event)
        alert.credit_event_id = None
    alert.status = AlertStatus.dismissed.value
    alert.resolved_at = now
    alert.resolved_by_id = actor.id
    alert.resolved_by = actor
    alert.resolution = text_
    alert.updated_at = now
    db.session.flush()
    if withdrawn is not None:
        ledger.refresh_standing(alert.merchant_id, now=now)
    record_audit(
        actor,
        "alert.dismiss",
        object_type="alert",
        object_id=alert.id,
        details={"reason": text_, "withdrawn_credit_event_id": withdrawn},
        now=now,
    )
    logger.info(
        "mass alert dismissed",
        extra={"alert_id": alert.id, "withdrawn_credit_event_id": withdrawn},
    )
    return alert


# Who sees which alert -------------------------------------------------------------


def _mediates_one_of_its_cases(user: User) -> Any:
    return exists().where(
        MassAlertCase.alert_id == MassAlert.id,
        Case.id == MassAlertCase.case_id,
        Case.mediator_id == user.id,
    )


def visible_alerts(user: User) -> Select:
    """Return a SELECT of the alerts ``user`` may see: every alert for a
    regulator; for a mediator those that include a case they mediate; none for
    anyone else."""
    query = db.select(MassAlert)
    if user.has_role(Role.regulator):
        return query
    if user.has_role(Role.mediator):
        return query.where(_mediates_one_of_its_cases(user))
    return query.where(false())


def get_alert_for(user: User, alert_id: int) -> MassAlert:
    """Load an alert ``user`` may see.

    :raise PermissionDenied: for roles that see no alerts.
    :raise NotFound: when there is no such alert, or a mediator mediates none of
        its cases.
    """
    if not user.has_role(Role.regulator, Role.mediator):
        raise PermissionDenied()
    alert = db.session.scalar(visible_alerts(user).where(MassAlert.id == alert_id))
    if alert is None:
        raise NotFound()
    return alert


def cases_of(alert: MassAlert) -> list[Case]:
    """Return the complaints of an alert, oldest first."""
    return list(
        db.session.scalars(
            db.select(Case)
            .join(MassAlertCase, MassAlertCase.case_id == Case.id)
            .where(MassAlertCase.alert_id == alert.id)
            .order_by(Case.filed_at, Case.id)
        ).all()
    )


def case_ids_of(alerts: Sequence[MassAlert]) -> dict[int, list[int]]:
    """Return each alert's case ids (one query for a page of alerts)."""
    ids = [a.id for a in alerts]
    out: dict[int, list[int]] = {i: [] for i in ids}
    if not ids:
        return out
    for alert_id, case_id in db.session.execute(
        db.select(MassAlertCase.alert_id, MassAlertCase.case_id)
        .where(MassAlertCase.alert_id.in_(ids))
        .order_by(MassAlertCase.alert_id, MassAlertCase.case_id)
    ).all():
        out[alert_id].append(case_id)
    return out


def alerts_of_case(case: Case, user: User) -> list[MassAlert]:
    """Return the alerts a complaint belongs to that ``user`` may see, newest
    first."""
    return list(
        db.session.scalars(
            visible_alerts(user)
            .join(MassAlertCase, MassAlertCase.alert_id == MassAlert.id)
            .where(MassAlertCase.case_id == case.id)
            .order_by(MassAlert.raised_at.desc(), MassAlert.id.desc())
        ).all()
    )


def open_alert_count() -> int:
    """Return how many alerts wait for a regulator (status ``open``)."""
    return (
        db.session.scalar(
            db.select(func.count(MassAlert.id)).where(
                MassAlert.status == AlertStatus.open.value
            )
        )
        or 0
    )
