"""Credit repair: a merchant that made good applies, a regulator decides.

The rules (DESIGN.md "Credit records", issue #6 item 5):

- An event can be repaired when it is negative, not yet repaired, its
  obligation is met and the minimum period since it happened has passed:
  ``repair_months["event"]`` (3 months), or ``repair_months["listing"]``
  (12 months) for an event that puts the merchant on the dishonesty list
  (``lists``, or a kind of the listing rule) and for an unanswered complaint
  that counts towards a listing (the ``no_response_count`` rule) at the time.
- *Obligation met*: the event's complaint is closed (nothing is still owed in
  it). When the complaint closed as not complied with (an award or a settlement
  was not performed), the case cannot record a later performance, so the
  merchant declares in its written commitment how and when it performed, and
  the regulator must confirm having checked it before approving
  (``performance_verified``). Events without a complaint (none today) have no
  obligation of their own.
- One pending application per merchant. The regulator approves or refuses;
  refusing needs reasons. Approved events keep their place in the ledger
  (``repaired_at``, ``repair_id``) but no longer count; the standing is
  recomputed and the feed gets a ``repaired`` row (and ``grade``/``delisted``
  rows when those changed).

Every step is a :class:`CreditRepair` row (the application, the decision, who
and when): the merchant's record of repairs. Services flush, never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from flask_babel import lazy_gettext as _l

from mediation.analytics.audit import record_audit
from mediation.auth.models import Role, User
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case
from mediation.credit import ledger
from mediation.credit import model as credit_model
from mediation.credit.models import CreditChange, CreditEvent, CreditRepair
from mediation.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mediation.extensions import db
from mediation.formatting import local_time
from mediation.merchants.models import Merchant

logger = logging.getLogger(__name__)

#: Longest commitment and decision reason accepted (characters).
MAX_TEXT = 5000
#: Shortest commitment accepted: a sentence, not a token "OK".
MIN_COMMITMENT = 10

#: Why an event can or cannot be repaired now (:attr:`Eligibility.reason`).
ELIGIBLE = "eligible"
TOO_EARLY = "too_early"
CASE_OPEN = "case_open"
PENDING = "pending"


class Eligibility(NamedTuple):
    """Whether a negative ledger event can be repaired now, and why (not)."""

    event: CreditEvent
    eligible: bool
    #: :data:`ELIGIBLE`, :data:`TOO_EARLY`, :data:`CASE_OPEN` or :data:`PENDING`.
    reason: str
    #: When the minimum period ends (ends or ended); None while the case is open.
    when: datetime | None
    #: The complaint closed as not complied with: the merchant must declare its
    #: performance and the regulator check it.
    needs_performance: bool = False
    #: The minimum period that applies: ``event`` or ``listing``.
    period: str = "event"


# Reading ------------------------------------------------------------------------


def _negative_events(merchant_id: int) -> list[CreditEvent]:
    return list(
        db.session.scalars(
            db.select(CreditEvent)
            .where(
                CreditEvent.merchant_id == merchant_id,
                CreditEvent.points < 0,
                CreditEvent.repaired_at.is_(None),
            )
            .order_by(CreditEvent.occurred_at, CreditEvent.id)
        ).all()
    )


def _listing_no_responses(
    events: list[CreditEvent], now: datetime, model: dict[str, Any]
) -> set[int]:
    """Return the ids of unanswered complaints that list the merchant now."""
    rule = model["listing"]
    recent = [
        e.id
        for e in events
        if e.kind == "no_response"
        and now < credit_model.add_months(e.occurred_at, rule["no_response_months"])
    ]
    return set(recent) if len(recent) >= rule["no_response_count"] else set()


def _pending_event_ids(merchant_id: int, *, besides: int | None = None) -> set[int]:
    query = db.select(CreditRepair.event_ids).where(
        CreditRepair.merchant_id == merchant_id, CreditRepair.status == "pending"
    )
    if besides is not None:
        query = query.where(CreditRepair.id != besides)
    return {int(i) for ids in db.session.scalars(query).all() for i in ids or []}


def _assess(
    merchant_id: int, now: datetime, *, besides: int | None = None
) -> list[Eligibility]:
    model = ledger.credit_config()
    months = model["repair_months"]
    listing_kinds = set(model["listing"]["kinds"])
    events = [
        e
        for e in _negative_events(merchant_id)
        # Events past the last window no longer count: nothing to repair.
        if credit_model.weight(e.occurred_at, now, model) > 0
    ]
    listing = _listing_no_responses(events, now, model)
    pending = _pending_event_ids(merchant_id, besides=besides)
    case_ids = {e.case_id for e in events if e.case_id is not None}
    statuses = (
        dict(
            db.session.execute(
                db.select(Case.id, Case.status).where(Case.id.in_(case_ids))
            ).all()
        )
        if case_ids
        else {}
    )
    out: list[Eligibility] = []
    for event in events:
        lists = event.lists or event.kind in listing_kinds or event.id in listing
        period = "listing" if lists else "event"
        when = credit_model.add_months(event.occurred_at, months[period])
        status = statuses.get(event.case_id) if event.case_id is not None else None
        needs_performance = status == lc.CLOSED_NONCOMPLIANT
        if event.id in pending:
            reason = PENDING
        elif status is not None and not lc.is_closed(status):
            reason, when = CASE_OPEN, None
        elif now < when:
            reason = TOO_EARLY
        else:
            reason = ELIGIBLE
        out.append(
            Eligibility(
                event, reason == ELIGIBLE, reason, when, needs_performance, period
            )
        )
    return out


def eligible_events(merchant_id: int, *, now: datetime) -> list[Eligibility]:
    """Return the merchant's negative, unrepaired events that still count, each
    with whether it can be repaired now and, if not yet, from when.

    :param merchant_id: the merchant whose ledger is read.
    :param now: the moment of the check (the periods count to it).
    :return: one :class:`Eligibility` per event, oldest first.
    """
    return _assess(merchant_id, now)


def applications_of(merchant_id: int) -> list[CreditRepair]:
    """Return the merchant's repair applications, newest first (its record)."""
    return list(
        db.session.scalars(
            db.select(CreditRepair)
            .where(CreditRepair.merchant_id == merchant_id)
            .order_by(CreditRepair.created_at.desc(), CreditRepair.id.desc())
        ).all()
    )


def pending_of(merchant_id: int) -> CreditRepair | None:
    """Return the merchant's application waiting for a decision, if any."""
    return db.session.scalar(
        db.select(CreditRepair).where(
            CreditRepair.merchant_id == merchant_id, CreditRepair.status == "pending"
        )
    )


def events_of(repair: CreditRepair) -> list[CreditEvent]:
    """Return the ledger events an application names (those that still exist)."""
    ids = [int(i) for i in repair.event_ids or []]
    if not ids:
        return []
    return list(
        db.session.scalars(
            db.select(CreditEvent)
            .where(CreditEvent.id.in_(ids))
            .order_by(CreditEvent.occurred_at, CreditEvent.id)
        ).all()
    )


def assess_application(repair: CreditRepair, *, now: datetime) -> list[Eligibility]:
    """Return the eligibility now of the events a pending application names.

    An event repaired or gone since the application is left out.
    """
    ids = {int(i) for i in repair.event_ids or []}
    return [
        item
        for item in _assess(repair.merchant_id, now, besides=repair.id)
        if item.event.id in ids
    ]


# Writing ------------------------------------------------------------------------


def _lock(model: type, row_id: int) -> None:
    """Serialise writers of one row until the commit (as ``lock_case`` does)."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        db.session.execute(
            db.select(model.id).where(model.id == row_id).with_for_update()
        )
    elif dialect == "sqlite":
        # SQLite locks the whole database for a writer: take the lock now.
        db.session.execute(db.text("UPDATE merchants SET id = id WHERE 0 = 1"))


def _event_label(event: CreditEvent) -> str:
    reference = (event.data or {}).get("reference")
    return f"#{event.id} ({reference})" if reference else f"#{event.id}"


def apply(
    merchant_id: int,
    applicant: User,
    event_ids: Iterable[Any],
    commitment: str,
    *,
    now: datetime,
) -> CreditRepair:
    """Apply for the repair of some of a merchant's ledger events.

    :param merchant_id: the merchant whose credit is to be repaired.
    :param applicant: a staff member of that merchant.
    :param event_ids: the ledger events to repair (each must be eligible now).
    :param commitment: the written commitment (for an obligation that was not
        performed in time: how and when it was performed since).
    :param now: the time of the application.
    :raise PermissionDenied: when the applicant is not staff of the merchant.
    :raise Conflict: (``repair_pending``) while another application waits.
    :raise ValidationError: with ``fields`` (``commitment``, ``event_ids``) for
        a missing or short commitment, no events, or events that cannot be
        repaired (yet).
    :return: the pending application.
    """
    if (
        applicant is None
        or applicant.role != Role.merchant.value
        or applicant.merchant_id != merchant_id
    ):
        raise PermissionDenied(_l("Only the merchant's staff may apply."))
    if db.session.get(Merchant, merchant_id) is None:
        raise NotFound()
    fields: dict[str, list[Any]] = {}
    text = (commitment or "").strip()
    if not text:
        fields["commitment"] = [_l("Write your commitment.")]
    elif len(text) < MIN_COMMITMENT:
        fields["commitment"] = [
            _l("Write at least %(n)d characters.", n=MIN_COMMITMENT)
        ]
    elif len(text) > MAX_TEXT:
        fields["commitment"] = [_l("At most %(n)d characters.", n=MAX_TEXT)]
    ids: list[int] = []
    for raw in event_ids or []:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            fields.setdefault("event_ids", []).append(_l("Choose events of the list."))
            break
        if value not in ids:
            ids.append(value)
    if not ids and "event_ids" not in fields:
        fields["event_ids"] = [_l("Choose at least one event to repair.")]
    # One application at a time: concurrent applications take turns here.
    _lock(Merchant, merchant_id)
    if pending_of(merchant_id) is not None:
        raise Conflict(
            _l(
                "An application for credit repair is already waiting for a "
                "regulator's decision; wait for it before applying again."
            ),
            code="repair_pending",
        )
    assessed = {item.event.id: item for item in _assess(merchant_id, now)}
    for event_id in ids:
        item = assessed.get(event_id)
        if item is None:
            message = _l(
                "Event #%(id)s is not a negative event of your record that can "
                "be repaired.",
                id=event_id,
            )
        elif item.reason == TOO_EARLY:
            message = _l(
                "%(event)s can be repaired from %(date)s.",
                event=_event_label(item.event),
                date=local_time(item.when, "yyyy-MM-dd"),
            )
        elif item.reason == CASE_OPEN:
            message = _l(
                "%(event)s: its complaint is still open; meet the obligation first.",
                event=_event_label(item.event),
            )
        else:
            continue
        fields.setdefault("event_ids", []).append(message)
    if fields:
        raise ValidationError(
            _l("The application cannot be sent; see the marked fields."),
            fields=fields,
        )
    repair = CreditRepair(
        merchant_id=merchant_id,
        applicant_id=applicant.id,
        event_ids=sorted(ids),
        commitment=text,
        created_at=now,
        status="pending",
    )
    db.session.add(repair)
    db.session.flush()
    logger.info(
        "credit repair %s applied for merchant %s by user %s (events %s)",
        repair.id,
        merchant_id,
        applicant.id,
        repair.event_ids,
    )
    return repair


def _snapshot(merchant_id: int, now: datetime) -> dict[str, Any]:
    row = ledger.standing_of(merchant_id, now=now)
    return {
        "score": row.score_tenths / 10,
        "grade": row.grade,
        "listed": row.listed,
        "trusted": row.trusted,
    }


def decide(
    repair_id: int,
    regulator: User,
    approve: bool,
    reason: str | None,
    *,
    now: datetime,
    performance_verified: bool = False,
) -> CreditRepair:
    """Approve or refuse a pending application.

    Approving marks the events repaired (they stay in the ledger but stop
    counting), appends a ``repaired`` row to the feed and recomputes the
    standing (which appends ``grade``/``delisted``... rows for what changed).

    :param repair_id: the application.
    :param regulator: the deciding regulator.
    :param approve: True to approve, False to refuse.
    :param reason: the reasons; required to refuse.
    :param performance_verified: the regulator checked that the obligations of
        complaints closed as not complied with were performed since (required
        to approve such events).
    :raise PermissionDenied: for anyone but a regulator.
    :raise NotFound: for an unknown application.
    :raise Conflict: (``already_decided``) when it was decided already;
        (``nothing_to_repair``) when none of its events is left to repair.
    :raise ValidationError: with ``fields`` (``reason``,
        ``performance_verified``).
    :return: the decided application.
    """
    if regulator is None or regulator.role != Role.regulator.value:
        raise PermissionDenied(_l("Only a regulator decides on credit repair."))
    _lock(CreditRepair, repair_id)
    repair = db.session.scalar(
        db.select(CreditRepair)
        .where(CreditRepair.id == repair_id)
        .execution_options(populate_existing=True)
    )
    if repair is None:
        raise NotFound()
    if repair.status != "pending":
        raise Conflict(
            _l("This application was decided already."), code="already_decided"
        )
    text = (reason or "").strip()
    fields: dict[str, list[Any]] = {}
    if not approve and not text:
        fields["reason"] = [_l("Give the reasons for the refusal.")]
    elif len(text) > MAX_TEXT:
        fields["reason"] = [_l("At most %(n)d characters.", n=MAX_TEXT)]
    items: list[Eligibility] = []
    if approve:
        items = assess_application(repair, now=now)
        if not items:
            raise Conflict(
                _l("None of the events of this application is left to repair."),
                code="nothing_to_repair",
            )
        blocked = [item for item in items if not item.eligible]
        if blocked:
            # Cannot happen through the pages (the periods only grow and closed
            # cases stay closed), but the ledger may have been rebuilt since.
            raise Conflict(
                _l(
                    "%(event)s cannot be repaired now.",
                    event=_event_label(blocked[0].event),
                ),
                code="not_repairable",
            )
        if any(item.needs_performance for item in items) and not performance_verified:
            fields["performance_verified"] = [
                _l(
                    "Confirm that you checked that the award or settlement was "
                    "performed."
                )
            ]
    if fields:
        raise ValidationError(
            _l("The decision cannot be recorded; see the marked fields."),
            fields=fields,
        )
    repair.status = "approved" if approve else "refused"
    repair.decided_by_id = regulator.id
    repair.decided_at = now
    repair.decision_reason = text or None
    if approve:
        _repair_events(repair, items, now=now, verified=performance_verified)
    db.session.flush()
    record_audit(
        regulator,
        "credit_repair.approve" if approve else "credit_repair.refuse",
        object_type="credit_repair",
        object_id=repair.id,
        details={
            "merchant_id": repair.merchant_id,
            "event_ids": [item.event.id for item in items] or list(repair.event_ids),
            "reason": repair.decision_reason,
            "performance_verified": bool(performance_verified),
        },
        now=now,
    )
    logger.info(
        "credit repair %s %s for merchant %s by regulator %s",
        repair.id,
        repair.status,
        repair.merchant_id,
        regulator.id,
    )
    return repair


def _repair_events(
    repair: CreditRepair, items: list[Eligibility], *, now: datetime, verified: bool
) -> None:
    """Mark the events repaired, record it in the feed, recompute the standing."""
    merchant_id = repair.merchant_id
    before = _snapshot(merchant_id, now)
    for item in items:
        item.event.repaired_at = now
        item.event.repair_id = repair.id
    db.session.flush()
    after = ledger.compute(merchant_id, now=now)
    change = CreditChange(
        merchant_id=merchant_id,
        kind="repaired",
        old=before,
        new={
            "score": after.score_tenths / 10,
            "grade": after.grade,
            "listed": after.listed,
            "trusted": after.trusted,
            "repair_id": repair.id,
            "events": [
                {
                    "id": item.event.id,
                    "kind": item.event.kind,
                    "reference": (item.event.data or {}).get("reference"),
                    "occurred_at": item.event.occurred_at.isoformat(),
                }
                for item in items
            ],
            "performance_verified": verified,
        },
        at=now,
    )
    db.session.add(change)
    db.session.flush()
    for listener in ledger.change_listeners:
        listener(change)
    # Appends the grade / delisted / trusted rows for what the repair changed.
    ledger.refresh_standing(merchant_id, now=now)
