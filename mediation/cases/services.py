"""Case services: filing, amending and the one function that applies an action.

Every status change in the platform goes through :func:`apply_action`: it asks
the lifecycle table, runs the action's handler, appends the chained
:class:`CaseEvent`, moves the deadline, logs, and queues notifications and the
``case_updated`` socket event for after the commit. Services flush, never commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l

from mediation import labels
from mediation.auth.models import Role, User
from mediation.cases import lifecycle as lc
from mediation.cases.chain import event_digest
from mediation.cases.models import (
    AMENDABLE_FIELDS,
    Case,
    CaseEvent,
    CaseVersion,
    Category,
    Offer,
    OfferStatus,
    RemedyType,
)
from mediation.errors import Conflict, InvalidTransition, NotFound, ValidationError
from mediation.extensions import db
from mediation.merchants.models import Merchant, MerchantKind
from mediation.notifications.services import notify
from mediation.sla.calendar import BusinessCalendar, calendar_for
from mediation.sla.policy import (
    DEFAULT_REMINDER_LEAD,
    case_stage,
    deadline_for,
    reminder_at,
)
from mediation.unit_of_work import after_commit, current_bulk

logger = logging.getLogger(__name__)


# Settings -----------------------------------------------------------------


def sla_policy() -> dict[str, tuple[int, str]]:
    """Return the resolved stage-deadline table of the running app."""
    return current_app.config["SLA_POLICY_TABLE"]


def time_zone() -> ZoneInfo:
    """Return the platform's business time zone."""
    return ZoneInfo(current_app.config["TIME_ZONE"])


# Facts and allowed actions --------------------------------------------------


def open_offer(case: Case, kind: str) -> Offer | None:
    """Return the case's open offer (``offer``) or proposal (``proposal``)."""
    for offer in reversed(case.offers):
        if offer.kind == kind and offer.status == OfferStatus.open.value:
            return offer
    return None


def merchant_side(case: Case) -> Merchant | None:
    """Return the merchant that answers for the case (the platform for an
    unregistered shop)."""
    return case.merchant or case.platform


def facts_for(case: Case) -> lc.Facts:
    """Collect what the lifecycle table needs to know about ``case``."""
    side = merchant_side(case)
    proposal = open_offer(case, "proposal")
    accepted: set[str] = set()
    if proposal is not None:
        if proposal.consumer_accepted_at:
            accepted.add("consumer")
        if proposal.merchant_accepted_at:
            accepted.add("merchant")
    return lc.Facts(
        **arbitration.facts(case),
        has_merchant=case.merchant_id is not None,
        has_platform=case.platform_id is not None,
        consumer_consented=case.arbitration_consent,
        merchant_consented=bool(side and side.arbitration_consent),
        answered=case.answered_at is not None,
        was_mediated=case.was_mediated,
        fulfilment_marked=case.fulfilment_marked_at is not None,
        has_mediator=case.mediator_id is not None,
        has_arbitrator=case.arbitrator_id is not None,
        rated=case.satisfaction is not None,
        has_open_proposal=proposal is not None,
        proposal_accepted_by=frozenset(accepted),
        clock_paused=case.paused_at is not None,
    )


def allowed_actions(case: Case, relation: str | None) -> list[str]:
    """Return the actions open to ``relation`` on ``case`` now.

    These are the lifecycle table's actions that have a handler, less the
    system's own (routing, deadlines).
    """
    return [
        a
        for a in lc.allowed_actions(case.status, relation, facts_for(case))
        if a in HANDLERS and a not in SYSTEM_ACTIONS
    ]


# Timeline -------------------------------------------------------------------


def record_event(
    case: Case,
    *,
    actor: User | None,
    role: str,
    action: str,
    from_status: str | None,
    data: dict[str, Any] | None = None,
    now: datetime,
) -> CaseEvent:
    """Append a hash-chained event to the case timeline.

    :param actor: the acting user, or None for the system.
    :param role: the actor's relation to the case (``system`` for the platform).
    """
    # The head of the chain is remembered on the instance within a transaction
    # (filing writes two events); otherwise it is read. Two writers racing for
    # the same seq collide on the (case_id, seq) unique constraint.
    head = case.__dict__.get("_chain_head")
    if head is None:
        head = db.session.execute(
            db.select(CaseEvent.seq, CaseEvent.hash)
            .where(CaseEvent.case_id == case.id)
            .order_by(CaseEvent.seq.desc())
            .limit(1)
        ).first() or (0, None)
    seq = head[0] + 1
    prev_hash = head[1]
    payload = _jsonable(data or {})
    event = CaseEvent(
        case_id=case.id,
        seq=seq,
        at=now,
        actor_id=actor.id if actor else None,
        actor_role=role,
        action=action,
        from_status=from_status,
        to_status=case.status,
        data=payload,
        prev_hash=prev_hash,
    )
    event.hash = event_digest(
        case_id=case.id,
        seq=seq,
        at=now,
        actor_id=event.actor_id,
        actor_role=role,
        action=action,
        from_status=from_status,
        to_status=case.status,
        data=payload,
        prev_hash=prev_hash,
    )
    bulk = current_bulk()
    if bulk is not None:
        # A batch job (the SLA sweep): one multi-row INSERT for the whole batch.
        bulk.add(
            CaseEvent,
            {
                "case_id": case.id,
                "seq": seq,
                "at": now,
                "actor_id": event.actor_id,
                "actor_role": role,
                "action": action,
                "from_status": from_status,
                "to_status": case.status,
                "data": payload,
                "prev_hash": prev_hash,
                "hash": event.hash,
            },
        )
    else:
        event.actor = actor
        if "events" in case.__dict__:  # keep a loaded timeline current
            case.events.append(event)
        # No flush here: the unit of work writes the events of one request
        # together (SQLAlchemy batches the INSERTs); the next query or the
        # commit flushes.
        db.session.add(event)
    case.__dict__["_chain_head"] = (seq, event.hash)
    logger.info(
        "case event",
        extra={
            "case_id": case.id,
            "reference": case.reference,
            "actor_id": event.actor_id,
            "actor_role": role,
            "action": action,
            "from_status": from_status,
            "to_status": case.status,
        },
    )
    return event


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


# Filing -------------------------------------------------------------------


@dataclass
class Filing:
    """A validated complaint as the consumer filed it."""

    category: str
    order_ref: str
    order_date: date
    amount_paid: int
    claim_type: str
    description: str
    claim_amount: int = 0
    merchant_id: int | None = None
    merchant_name: str | None = None
    platform_id: int | None = None
    arbitration_consent: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def find_possible_duplicates(
    consumer: User, merchant_id: int | None, merchant_name: str | None, order_ref: str
) -> list[Case]:
    """Return the consumer's open or closed cases on the same merchant and order."""
    query = db.select(Case).where(
        Case.consumer_id == consumer.id,
        db.func.lower(Case.order_ref) == order_ref.strip().lower(),
    )
    if merchant_id is not None:
        query = query.where(Case.merchant_id == merchant_id)
    elif merchant_name:
        query = query.where(
            db.func.lower(Case.merchant_name) == merchant_name.strip().lower()
        )
    return list(db.session.scalars(query.order_by(Case.id)).all())


def _resolve_parties(filing: Filing) -> tuple[Merchant | None, Merchant | None, str]:
    """Return (merchant, platform, shop name) for a filing.

    :raise ValidationError: for an unknown merchant or a platform that is not one.
    """
    errors: dict[str, str] = {}
    merchant = platform = None
    if filing.merchant_id is not None:
        merchant = db.session.get(Merchant, filing.merchant_id)
        if merchant is None:
            errors["merchant_id"] = _l("No registered merchant has this id.")
    if filing.platform_id is not None:
        platform = db.session.get(Merchant, filing.platform_id)
        if platform is None or platform.kind != MerchantKind.platform.value:
            errors["platform_id"] = _l("This is not a registered platform.")
    if merchant is None and not (filing.merchant_name or "").strip() and not errors:
        errors["merchant_name"] = _l("Name the shop or choose a registered merchant.")
    if errors:
        raise ValidationError(fields=errors)
    if merchant is not None:
        name = merchant.name
        if platform is None and merchant.platform_id is not None:
            platform = merchant.platform
    else:
        name = filing.merchant_name.strip()
    return merchant, platform, name


def validate_filing_values(values: dict[str, Any], *, today: date) -> None:
    """Check the domain rules of filing fields (shared by filing and amending).

    :raise ValidationError: naming each field that breaks a rule.
    """
    errors: dict[str, Any] = {}
    if "category" in values and values["category"] not in {c.value for c in Category}:
        errors["category"] = _l("Choose one of the listed categories.")
    if "claim_type" in values and values["claim_type"] not in {
        t.value for t in RemedyType
    }:
        errors["claim_type"] = _l("Choose one of the listed claim types.")
    if "order_date" in values and values["order_date"] > today:
        errors["order_date"] = _l("The order date cannot be in the future.")
    for name in ("amount_paid", "claim_amount"):
        if name in values and values[name] < 0:
            errors[name] = _l("Amounts cannot be negative.")
    if "description" in values and len((values["description"] or "").strip()) < 10:
        errors["description"] = _l(
            "Describe what went wrong in at least 10 characters."
        )
    if "order_ref" in values and not (values["order_ref"] or "").strip():
        errors["order_ref"] = _l("Give the order number.")
    if errors:
        raise ValidationError(fields=errors)


def file_case(consumer: User, filing: Filing, *, now: datetime) -> Case:
    """File a complaint and route it to the merchant, the platform or intake.

    :param consumer: the filing consumer.
    :param filing: validated input.
    :raise ValidationError: when a field breaks a domain rule.
    :return: the new case, flushed, with its reference and first events.
    """
    tz = time_zone()
    values = {k: getattr(filing, k) for k in AMENDABLE_FIELDS}
    validate_filing_values(values, today=now.astimezone(tz).date())
    merchant, platform, name = _resolve_parties(filing)
    case = Case(
        consumer=consumer,
        merchant=merchant,
        platform=platform,
        # A new case has no offers, versions, evidence or events to load.
        offers=[],
        versions=[],
        evidence=[],
        events=[],
        consumer_id=consumer.id,
        merchant_id=merchant.id if merchant else None,
        merchant_name=name,
        platform_id=platform.id if platform else None,
        category=filing.category,
        order_ref=filing.order_ref.strip(),
        order_date=filing.order_date,
        amount_paid=filing.amount_paid,
        claim_type=filing.claim_type,
        claim_amount=filing.claim_amount,
        description=filing.description.strip(),
        arbitration_consent=filing.arbitration_consent,
        status=lc.SUBMITTED,
        filed_at=now,
        updated_at=now,
        version=1,
    )
    db.session.add(case)
    db.session.flush()
    case.__dict__["_chain_head"] = (0, None)
    case.reference = f"MC-{now.astimezone(tz).year}-{case.id:06d}"
    if merchant is None:
        case.platform_escalated_at = now if platform else None
    case.versions.append(
        CaseVersion(
            case_id=case.id,
            number=1,
            fields=case.filing_fields(),
            author_id=consumer.id,
            created_at=now,
        )
    )
    record_event(
        case,
        actor=consumer,
        role="consumer",
        action="file",
        from_status=None,
        data={
            "merchant_id": case.merchant_id,
            "merchant_name": name,
            "platform_id": case.platform_id,
            "arbitration_consent": case.arbitration_consent,
            **case.filing_fields(),
        },
        now=now,
    )
    facts = facts_for(case)
    if lc.is_allowed(case.status, "system", "route", facts):
        apply_action(case, "route", {}, actor=None, relation="system", now=now)
    else:
        _set_deadline(case, now)
        notify(
            _regulators(),
            "case_intake",
            {"reference": case.reference},
            case_id=case.id,
            now=now,
        )
    analytics_hooks.case_filed(case, now=now)
    return case


# Applying actions -----------------------------------------------------------

Handler = Callable[[Case, dict[str, Any], User | None, str, datetime], dict[str, Any]]
HANDLERS: dict[str, Handler] = {}
SYSTEM_ACTIONS = frozenset({"route", "expire", "auto_assign", "lapse_info"})


def handles(*actions: str) -> Callable[[Handler], Handler]:
    """Register a handler for ``actions`` (it returns the event's data)."""

    def decorator(fn: Handler) -> Handler:
        for action in actions:
            HANDLERS[action] = fn
        return fn

    return decorator


def apply_action(
    case: Case,
    action: str,
    payload: dict[str, Any],
    *,
    actor: User | None,
    relation: str,
    now: datetime,
) -> Case:
    """Apply one lifecycle action to a case: the one way a case changes.

    :param payload: validated fields of the action (see API.md).
    :param actor: the acting user; None for the system.
    :param relation: the actor's relation to the case (lifecycle role).
    :raise InvalidTransition: when the table refuses the action now.
    :raise ValidationError: when the payload breaks a domain rule.
    """
    handler = HANDLERS.get(action)
    facts = facts_for(case)
    if handler is None or not lc.is_allowed(case.status, relation, action, facts):
        raise InvalidTransition(
            _l(
                "“%(action)s” is not possible while the case is “%(status)s”.",
                action=action,
                status=case.status,
            )
        )
    from_status = case.status
    stage_before = _stage(case)
    due_before = case.due_at
    # Decided on the facts before the handler runs: the table already accounts
    # for the actor's own step (e.g. the second acceptance of a proposal).
    target = lc.next_status(case.status, relation, action, facts)
    data = handler(case, payload, actor, relation, now) or {}
    case.status = target
    case.updated_at = now
    if target != from_status:
        _entered(case, target, from_status, now)
    if (
        target != from_status
        or _stage(case) != stage_before
        or action in ("reassign", "auto_assign")
    ):
        _set_deadline(case, now)
    record_event(
        case,
        actor=actor,
        role=relation,
        action=action,
        from_status=from_status,
        data=data,
        now=now,
    )
    from mediation.chat.services import on_case_event  # chat imports case models

    on_case_event(case, action=action, from_status=from_status, data=data, now=now)
    credit_ledger.on_case_event(case, action=action, from_status=from_status, now=now)
    analytics_hooks.case_event(
        case,
        action=action,
        actor=actor,
        relation=relation,
        from_status=from_status,
        stage_before=stage_before,
        due_before=due_before,
        now=now,
    )
    # A grouped case given to its group's mediator is not "nobody took it".
    grouped = (
        action == "auto_assign" and "group_id" in data and not data.get("late_party")
    )
    _notify_parties(case, "group_assign" if grouped else action, actor, now)
    _announce(case)
    return case


def _stage(case: Case) -> str | None:
    return case_stage(case)


def business_calendar() -> BusinessCalendar:
    """Return the running app's business calendar (working days, holidays)."""
    return calendar_for(current_app)


def _set_deadline(case: Case, now: datetime) -> None:
    """Start the deadline of the case's current stage (and its reminder) at ``now``."""
    stage = _stage(case)
    bulk = current_bulk()
    key = ("deadline", stage, now)
    if bulk is not None and key in bulk.cache:
        # Every case of a batch entering the same stage at ``now`` gets the same.
        case.due_at, case.remind_at = bulk.cache[key]
    else:
        case.due_at = deadline_for(
            stage, now, sla_policy(), time_zone(), calendar=business_calendar()
        )
        case.remind_at = reminder_for(stage, now, case.due_at)
        if bulk is not None:
            bulk.cache[key] = (case.due_at, case.remind_at)
    if stage == "fulfilment" and case.status == lc.AWARDED:
        # An award's orders may give the merchant longer than the policy does.
        due = arbitration.performance_due(case)
        if due is not None and case.due_at is not None and due > case.due_at:
            case.due_at = due
            case.remind_at = reminder_for(stage, now, due)
    case.reminded_at = None
    # A new stage starts a running clock.
    case.paused_at = None
    case.paused_remaining = None


def reminder_for(
    stage: str | None, start: datetime, due_at: datetime | None
) -> datetime | None:
    """Return when the reminder before ``due_at`` goes out (None: no reminder).

    :param stage: the policy stage the deadline belongs to.
    :param start: when the stage's clock started; a reminder before it is none.
    :param due_at: the stage's deadline.
    """
    if stage is None or due_at is None:
        return None
    # A stage not longer than the lead gets no reminder (None).
    return reminder_at(
        due_at,
        start,
        tuple(current_app.config.get("SLA_REMINDER_LEAD") or DEFAULT_REMINDER_LEAD),
        time_zone(),
        business_calendar(),
    )


def _entered(case: Case, status: str, from_status: str, now: datetime) -> None:
    """Bookkeeping when a case enters ``status``."""
    if status == lc.AWAITING_PLATFORM:
        case.platform_escalated_at = case.platform_escalated_at or now
    if status == lc.IN_MEDIATION:
        case.was_mediated = True
        for offer in case.offers:
            if offer.status == OfferStatus.open.value:
                offer.status = OfferStatus.lapsed.value
                offer.decided_at = now
    if status in (lc.SETTLED, lc.AWARDED):
        case.fulfilment_marked_at = None
    if status == lc.CLOSED_NONCOMPLIANT:
        arbitration.notify_noncompliance(case, now)
    if lc.is_closed(status):
        case.closed_at = now
        case.due_at = None
        case.outcome = _outcome(case, status, from_status)


def _outcome(case: Case, status: str, from_status: str) -> str:
    if status == lc.RESOLVED:
        if any(e.action == "issue_award" for e in case.events):
            return "award_complied"
        if case.was_mediated:
            return "settled_in_mediation"
        return "settled_directly"
    return status


def _regulators() -> list[User]:
    return list(
        db.session.scalars(
            db.select(User).where(User.role == Role.regulator.value)
        ).all()
    )


def staff_of(merchant_id: int | None) -> list[User]:
    """Return the active staff accounts of a merchant."""
    if merchant_id is None:
        return []
    bulk = current_bulk()
    key = ("staff_of", merchant_id)
    if bulk is not None and key in bulk.cache:
        return list(bulk.cache[key])
    staff = list(
        db.session.scalars(
            db.select(User).where(
                User.merchant_id == merchant_id, User.role == Role.merchant.value
            )
        ).all()
    )
    if bulk is not None:  # the same for every case of the batch
        bulk.cache[key] = staff
    return list(staff)


def case_audience(case: Case) -> list[User]:
    """Return everyone who follows the case: consumer, merchant side, assigned staff."""
    users: list[User] = [case.consumer]
    users += staff_of(case.merchant_id)
    if case.platform_escalated_at is not None or case.merchant_id is None:
        users += staff_of(case.platform_id)
    for assigned in (case.mediator, case.arbitrator):
        if assigned is not None:
            users.append(assigned)
    return users


def _notify_parties(case: Case, action: str, actor: User | None, now: datetime) -> None:
    """Tell everyone who follows the case, except the actor, what happened."""
    recipients = [u for u in case_audience(case) if actor is None or u.id != actor.id]
    params = {"reference": case.reference, "status": case.status}
    if action in ("route", "link_merchant"):
        # The merchant side has a new complaint to answer; the consumer learns
        # where it went.
        side = case.merchant_id or case.platform_id
        answering = {u.id for u in recipients if u.merchant_id == side}
        notify(
            [u for u in recipients if u.id in answering],
            "case_file",
            params,
            case_id=case.id,
            now=now,
        )
        recipients = [u for u in recipients if u.id not in answering]
        action = "route"
    notify(recipients, f"case_{action}", params, case_id=case.id, now=now)


def _announce(case: Case) -> None:
    """Tell connected browsers after the commit that the case changed."""
    from mediation.extensions import socketio

    payload = {
        "case_id": case.id,
        "status": case.status,
        "due_at": case.due_at.isoformat() if case.due_at else None,
    }
    room = f"case:{case.id}:joint"
    after_commit(
        lambda: socketio.emit("case_updated", payload, to=room, namespace="/chat")
    )


# Handlers -------------------------------------------------------------------


def _reason(payload: dict[str, Any]) -> dict[str, Any]:
    reason = (payload.get("reason") or "").strip()
    if not reason:
        raise ValidationError(fields={"reason": _l("Give a reason.")})
    return {"reason": reason}


@handles("route")
def _route(case, payload, actor, relation, now):
    return {"merchant_id": case.merchant_id, "platform_id": case.platform_id}


@handles("link_merchant")
def _link_merchant(case, payload, actor, relation, now):
    merchant = db.session.get(Merchant, payload.get("merchant_id"))
    if merchant is None or merchant.kind == MerchantKind.platform.value:
        raise ValidationError(fields={"merchant_id": _l("Choose a registered shop.")})
    case.merchant_id = merchant.id
    case.merchant = merchant
    if case.platform_id is None and merchant.platform_id is not None:
        case.platform_id = merchant.platform_id
    return {"merchant_id": merchant.id, "merchant_name": merchant.name}


@handles("dismiss", "reject", "reject_offer", "withdraw")
def _with_reason(case, payload, actor, relation, now):
    data = _reason(payload)
    if relation in ("merchant", "platform") and case.answered_at is None:
        case.answered_at = now
    if case.status == lc.OFFER_PENDING and relation == "consumer":
        offer = open_offer(case, "offer")
        if offer is not None:
            offer.status = OfferStatus.rejected.value
            offer.decided_at = now
            offer.decision_reason = data["reason"]
    return data


@handles("amend")
def _amend(case, payload, actor, relation, now):
    changes = {k: payload[k] for k in AMENDABLE_FIELDS if k in payload}
    validate_filing_values(changes, today=now.astimezone(time_zone()).date())
    diff = {}
    for name, value in changes.items():
        old = getattr(case, name)
        if isinstance(value, str):
            value = value.strip()
        if old != value:
            diff[name] = [old, value]
            setattr(case, name, value)
    if not diff:
        raise ValidationError(_l("Nothing was changed."), code="no_change")
    case.version += 1
    db.session.add(
        CaseVersion(
            case_id=case.id,
            number=case.version,
            fields=case.filing_fields(),
            author_id=actor.id,
            created_at=now,
        )
    )
    return {"version": case.version, "changes": diff}


def _remedy(payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    if payload.get("type") not in {t.value for t in RemedyType}:
        errors["type"] = _l("Choose one of the listed types.")
    amount = payload.get("amount", 0) or 0
    if amount < 0:
        errors["amount"] = _l("Amounts cannot be negative.")
    deadline = payload.get("deadline")
    if deadline is None:
        errors["deadline"] = _l("Give a date by which it will be done.")
    elif deadline < now.astimezone(time_zone()).date():
        errors["deadline"] = _l("The deadline cannot be in the past.")
    text = (payload.get("text") or "").strip()
    if not text:
        errors["text"] = _l("Describe the offer.")
    if errors:
        raise ValidationError(fields=errors)
    return {
        "type": payload["type"],
        "amount": amount,
        "deadline": deadline,
        "text": text,
    }


@handles("offer", "propose")
def _offer(case, payload, actor, relation, now):
    remedy = _remedy(payload, now)
    kind = "proposal" if relation == "mediator" else "offer"
    previous = open_offer(case, kind)
    if previous is not None:
        previous.status = OfferStatus.lapsed.value
        previous.decided_at = now
    offer = Offer(
        case_id=case.id, kind=kind, author_id=actor.id, created_at=now, **remedy
    )
    db.session.add(offer)
    case.offers.append(offer)
    if kind == "offer" and case.answered_at is None:
        case.answered_at = now
    db.session.flush()
    return {"offer_id": offer.id, "kind": kind, **remedy}


@handles("accept_offer")
def _accept_offer(case, payload, actor, relation, now):
    offer = open_offer(case, "offer")
    if offer is None:
        raise Conflict(_l("There is no open offer to accept."))
    offer.status = OfferStatus.accepted.value
    offer.decided_at = now
    return {
        "offer_id": offer.id,
        "type": offer.type,
        "amount": offer.amount,
        "deadline": offer.deadline,
        "text": offer.text,
    }


@handles("accept_proposal")
def _accept_proposal(case, payload, actor, relation, now):
    proposal = open_offer(case, "proposal")
    if proposal is None:
        raise Conflict(_l("There is no open proposal to accept."))
    if relation == "consumer":
        proposal.consumer_accepted_at = now
    else:
        proposal.merchant_accepted_at = now
    data: dict[str, Any] = {
        "offer_id": proposal.id,
        "party": "consumer" if relation == "consumer" else "merchant",
    }
    if proposal.consumer_accepted_at and proposal.merchant_accepted_at:
        proposal.status = OfferStatus.accepted.value
        proposal.decided_at = now
        # The settlement: the agreed terms and their hash enter the timeline.
        agreement = agreement_of(case, proposal)
        data["agreement"] = agreement
        data["agreement_sha256"] = agreement_sha256(agreement)
    return data


def agreement_of(case: Case, proposal: Offer) -> dict[str, Any]:
    """Return the mediation agreement a proposal accepted by both parties makes.

    JSON-ready values only (the date as ``YYYY-MM-DD``), so that its hash can be
    recomputed from the timeline by anyone (:func:`agreement_sha256`).
    """
    return {
        "reference": case.reference,
        "proposal_id": proposal.id,
        "type": proposal.type,
        "amount": proposal.amount,
        "deadline": proposal.deadline.isoformat(),
        "text": proposal.text,
    }


def agreement_sha256(agreement: dict[str, Any]) -> str:
    """Return the SHA-256 (hex) of an agreement's canonical JSON.

    Canonical: keys sorted, no spaces, UTF-8 (as the event chain hashes).
    """
    blob = json.dumps(
        agreement, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@handles("decline_proposal")
def _decline_proposal(case, payload, actor, relation, now):
    """A party declines the open proposal: it lapses for both (declined)."""
    data = _reason(payload)
    proposal = open_offer(case, "proposal")
    if proposal is None:
        raise Conflict(_l("There is no open proposal to decline."))
    proposal.status = OfferStatus.rejected.value
    proposal.decided_at = now
    proposal.decision_reason = data["reason"]
    return {
        "offer_id": proposal.id,
        "party": "consumer" if relation == "consumer" else "merchant",
        **data,
    }


@handles("consent_arbitration")
def _consent(case, payload, actor, relation, now):
    case.arbitration_consent = True
    return {}


@handles("take")
def _take(case, payload, actor, relation, now):
    if relation == "mediator":
        case.mediator_id = actor.id
        case.mediator = actor
    else:
        arbitration.check_not_mediator(case, actor)
        case.arbitrator_id = actor.id
        case.arbitrator = actor
    return {"user_id": actor.id}


@handles("reassign")
def _reassign(case, payload, actor, relation, now):
    user = db.session.get(User, payload.get("user_id"))
    wanted = (
        Role.mediator.value if case.status == lc.IN_MEDIATION else Role.arbitrator.value
    )
    if user is None or user.role != wanted:
        raise ValidationError(
            fields={"user_id": _l("Choose a %(role)s.", role=labels.ROLE[wanted])}
        )
    if wanted == Role.mediator.value:
        case.mediator_id, case.mediator = user.id, user
        if payload.get("group_id"):
            # Grouping hands the case to the group's mediator (supervision).
            return {"user_id": user.id, "group_id": payload["group_id"]}
    else:
        if user.id == case.mediator_id:
            raise ValidationError(
                fields={
                    "user_id": _l("An arbitrator never decides a case they mediated.")
                }
            )
        if user.id not in {u.id for u in arbitration.eligible_arbitrators(case)}:
            raise ValidationError(
                fields={
                    "user_id": _l(
                        "Choose another arbitrator (not the one objected to, "
                        "not the mediator)."
                    )
                }
            )
        case.arbitrator_id, case.arbitrator = user.id, user
    return {"user_id": user.id}


@handles("end_mediation")
def _end_mediation(case, payload, actor, relation, now):
    if payload.get("result", "failed") != "failed":
        raise ValidationError(
            fields={"result": _l("The only result to give is “failed”.")}
        )
    data = _reason(payload)
    proposal = open_offer(case, "proposal")
    if proposal is not None:
        proposal.status = OfferStatus.lapsed.value
        proposal.decided_at = now
    return {"result": "failed", **data, **after_failed_mediation(case)}


def after_failed_mediation(case: Case) -> dict[str, Any]:
    """Say where a failed mediation leads, as timeline data.

    ``next`` is ``in_arbitration`` when both parties consented to arbitration,
    else ``closed_unresolved`` with a ``referral`` note: who had not consented
    and where the consumer can still turn (the market regulator's 12315
    complaint line, the people's court). Codes, not sentences: the timeline is
    hashed once and shown in each reader's language.
    """
    facts = facts_for(case)
    if facts.both_consented:
        return {"next": lc.IN_ARBITRATION}
    missing = [
        party
        for party, consented in (
            ("consumer", facts.consumer_consented),
            ("merchant", facts.merchant_consented),
        )
        if not consented
    ]
    return {
        "next": lc.CLOSED_UNRESOLVED,
        "referral": {"no_consent": missing, "options": list(REFERRAL_OPTIONS)},
    }


#: Where a consumer can turn after a mediation fails without arbitration.
REFERRAL_OPTIONS = ("regulator_12315", "court")


@handles("mark_fulfilled")
def _mark_fulfilled(case, payload, actor, relation, now):
    case.fulfilment_marked_at = now
    return {"text": (payload.get("text") or "").strip()}


@handles("confirm_fulfilment")
def _fulfilment(case, payload, actor, relation, now):
    return {"text": (payload.get("text") or "").strip()}


@handles("report_unfulfilled")
def _report_unfulfilled(case, payload, actor, relation, now):
    data: dict[str, Any] = {"text": (payload.get("text") or "").strip()}
    if lc.next_status(case.status, relation, "report_unfulfilled", facts_for(case)) == (
        lc.CLOSED_NONCOMPLIANT
    ):
        data["noncompliance"] = arbitration.noncompliance_fact(case)
    return data


@handles("rate")
def _rate(case, payload, actor, relation, now):
    score = payload.get("score")
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise ValidationError(fields={"score": _l("Give a score from 1 to 5.")})
    case.satisfaction = score
    case.satisfaction_comment = (payload.get("comment") or "").strip() or None
    return {"score": score, "comment": case.satisfaction_comment}


@handles("expire")
def _expire(case, payload, actor, relation, now):
    # The fact credit reads later: which deadline passed and who missed it.
    stage = _stage(case)
    data: dict[str, Any] = {
        "stage": stage,
        "due_at": case.due_at,
        "late_party": STAGE_PARTY.get(stage or ""),
    }
    if case.status == lc.IN_MEDIATION:
        # Where the failed mediation leads (arbitration, or a referral note).
        data.update(after_failed_mediation(case))
    elif lc.next_status(case.status, relation, "expire", facts_for(case)) == (
        lc.CLOSED_NONCOMPLIANT
    ):
        data["noncompliance"] = arbitration.noncompliance_fact(case)
    return data


@handles("auto_assign")
def _auto_assign(case, payload, actor, relation, now):
    stage = _stage(case)
    user = pick_assignee(case)
    if user is None:
        raise Conflict(_l("No mediator or arbitrator is available for this case."))
    data: dict[str, Any] = {"late_party": STAGE_PARTY.get(stage or "")}
    if case.status == lc.IN_MEDIATION:
        if user.id == _group_mediator_id(case):
            # Given to the mediator of its case group; a missed pick-up only if
            # the deadline had passed (the group's mediator was unavailable).
            data["group_id"] = case.group_id
            if case.due_at is None or case.due_at > now:
                data["late_party"] = None
        case.mediator_id, case.mediator = user.id, user
    else:
        case.arbitrator_id, case.arbitrator = user.id, user
    return {"user_id": user.id, "stage": stage, "due_at": case.due_at, **data}


# Deadlines: who must act, assignment, reminders, the clock ------------------

#: Policy stage -> the party whose deadline it is (``late_party`` of ``expire``).
STAGE_PARTY: dict[str, str] = {
    "submitted": "regulator",
    "awaiting_merchant": "merchant",
    "awaiting_platform": "platform",
    "offer_pending": "consumer",
    "mediation_pickup": "mediator",
    "in_mediation": "mediator",
    "arbitration_pickup": "arbitrator",
    "in_arbitration": "arbitrator",
    "fulfilment": "merchant",
    "confirmation": "consumer",
}


def _active(role: Role) -> list[User]:
    return list(
        db.session.scalars(
            db.select(User)
            .where(User.role == role.value, User.is_active_account.is_(True))
            .order_by(User.id)
        ).all()
    )


def _handles_category(user: User, category: str) -> bool:
    return not user.categories or category in user.categories


def _group_mediator_id(case: Case) -> int | None:
    """Return the active mediator of the case's group, if it is grouped."""
    if case.group_id is None:
        return None
    from mediation.analytics.groups import group_mediator_id

    return group_mediator_id(case)


def pick_assignee(case: Case) -> User | None:
    """Return who the sweep assigns to an unassigned case in mediation or arbitration.

    A case of a case group goes to the group's mediator (while that mediator is
    active). Otherwise a mediator must handle the case's category (an empty list
    handles all); an arbitrator must not have mediated the case. Among those,
    the one with the fewest open cases wins; a tie goes to the lowest id.

    :return: the user, or None when nobody qualifies (or the status takes nobody).
    """
    if case.status == lc.IN_MEDIATION:
        grouped = _group_mediator_id(case)
        if grouped is not None:
            return db.session.get(User, grouped)
        column = Case.mediator_id
        users = [
            u for u in _active(Role.mediator) if _handles_category(u, case.category)
        ]
    elif case.status == lc.IN_ARBITRATION:
        column = Case.arbitrator_id
        users = sorted(arbitration.eligible_arbitrators(case), key=lambda u: u.id)
    else:
        return None
    if not users:
        return None
    if current_bulk() is not None:
        # Autoflush is off in a batch: count the assignments made earlier in it.
        db.session.flush()
    load = dict(
        db.session.execute(
            db.select(column, db.func.count(Case.id))
            .where(column.in_([u.id for u in users]))
            .where(Case.status.in_(lc.OPEN_STATUSES))
            .group_by(column)
        ).all()
    )
    return min(users, key=lambda u: (load.get(u.id, 0), u.id))


def responsible_users(case: Case) -> list[User]:
    """Return who must act before the case's current deadline (reminder recipients).

    Nobody assigned yet: every mediator handling the category (pick-up), every
    arbitrator, or else the regulators.
    """
    stage = _stage(case)
    users: list[User] = []
    if stage in ("awaiting_merchant", "fulfilment"):
        side = merchant_side(case)
        users = staff_of(side.id if side else None)
    elif stage == "awaiting_platform":
        users = staff_of(case.platform_id)
    elif stage in ("offer_pending", "confirmation"):
        users = [case.consumer]
    elif stage == "mediation_pickup":
        users = [
            u for u in _active(Role.mediator) if _handles_category(u, case.category)
        ]
    elif stage == "in_mediation" and case.mediator is not None:
        users = [case.mediator]
    elif stage in ("arbitration_pickup", "in_arbitration"):
        users = (
            [case.arbitrator]
            if case.arbitrator
            else [u for u in _active(Role.arbitrator) if u.id != case.mediator_id]
        )
    if not users and stage is not None:
        users = _regulators()
    return users


def send_reminder(case: Case, *, now: datetime) -> list[User]:
    """Remind whoever must act that the case's deadline is near; once per deadline.

    Notifies in-app and by e-mail (kind ``case_reminder``), sets ``reminded_at``
    and appends a ``remind`` event (not a lifecycle action) to the timeline.

    :return: the users reminded (empty when already reminded or no deadline runs).
    """
    if case.due_at is None or case.reminded_at is not None:
        return []
    stage = _stage(case)
    users = responsible_users(case)
    local_due = case.due_at.astimezone(time_zone()).strftime("%Y-%m-%d %H:%M")
    notify(
        users,
        "case_reminder",
        {"reference": case.reference, "due_at": local_due},
        case_id=case.id,
        now=now,
    )
    case.reminded_at = now
    data = {
        "stage": stage,
        "due_at": case.due_at,
        "party": STAGE_PARTY.get(stage or ""),
        "user_ids": sorted(u.id for u in users if u.is_active_account),
    }
    record_event(
        case,
        actor=None,
        role="system",
        action="remind",
        from_status=case.status,
        data=data,
        now=now,
    )
    from mediation.chat.services import on_case_event  # chat imports case models

    # In mediation the conversation hears of the coming deadline too.
    on_case_event(case, action="remind", from_status=case.status, data=data, now=now)
    return users


def pause_clock(case: Case, *, now: datetime) -> None:
    """Stop the case's deadline clock, keeping the time left on it.

    The deadline and its reminder are cleared while paused, so no sweep acts on
    the case; :func:`resume_clock` restores the remaining time.

    :raise Conflict: when the clock is already stopped or no deadline runs.
    """
    if case.paused_at is not None:
        raise Conflict(_l("The clock of this case is already stopped."))
    if case.due_at is None:
        raise Conflict(_l("No deadline runs on this case."))
    case.paused_remaining = max(0, int((case.due_at - now).total_seconds()))
    case.paused_at = now
    case.due_at = None
    case.remind_at = None
    case.updated_at = now
    logger.info(
        "case clock paused",
        extra={"case_id": case.id, "remaining": case.paused_remaining},
    )


def resume_clock(case: Case, *, now: datetime) -> None:
    """Restart a stopped clock: the deadline becomes ``now`` plus the time left.

    The reminder is recomputed for the new deadline unless it already went out.

    :raise Conflict: when the clock is not stopped.
    """
    if case.paused_at is None:
        raise Conflict(_l("The clock of this case is not stopped."))
    remaining = timedelta(seconds=case.paused_remaining or 0)
    case.due_at = now + remaining
    case.remind_at = (
        reminder_for(_stage(case), now, case.due_at)
        if case.reminded_at is None
        else None
    )
    case.paused_at = None
    case.paused_remaining = None
    case.updated_at = now
    logger.info(
        "case clock resumed",
        extra={"case_id": case.id, "due_at": case.due_at.isoformat()},
    )


@handles("request_evidence")
def _request_evidence(case, payload, actor, relation, now):
    """The merchant side asks for more evidence: its deadline stops meanwhile."""
    text = (payload.get("text") or "").strip()
    if not text:
        raise ValidationError(fields={"text": _l("Say what evidence you need.")})
    pause_clock(case, now=now)
    return {"text": text, "remaining_seconds": case.paused_remaining}


@handles("provide_evidence")
def _provide_evidence(case, payload, actor, relation, now):
    """The consumer answers the request: the merchant side's clock runs again."""
    resume_clock(case, now=now)
    return {"text": (payload.get("text") or "").strip(), "due_at": case.due_at}


def get_offer(case: Case, offer_id: int) -> Offer:
    """Return an offer of the case.

    :raise NotFound: when the offer belongs to another case or does not exist.
    """
    offer = db.session.get(Offer, offer_id)
    if offer is None or offer.case_id != case.id:
        raise NotFound()
    return offer


# The arbitration handlers register themselves (they import this module's helpers).
from mediation.analytics import hooks as analytics_hooks  # noqa: E402
from mediation.arbitration import services as arbitration  # noqa: E402
from mediation.credit import ledger as credit_ledger  # noqa: E402
