"""Arbitration: the handlers of the arbitration actions and what they read.

Every action here is a lifecycle action applied by
:func:`mediation.cases.services.apply_action` (the lifecycle table decides who
may act and when; these handlers check the payload, write the arbitration rows
and return the timeline event's data). Services flush, never commit.

- Information requests stop the award deadline until every open request is
  answered or lapses (``Case.info_due_at`` holds the earliest request deadline;
  the SLA sweep applies ``lapse_info``).
- An award is never edited: a correction adds a version. Each version's
  ``content`` is hashed (:func:`award_sha256`); the document prints the hash and
  the timeline event carries it.
- The correction window is 5 working days from the first version; the award is
  final after it, once no correction request is open.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l

from mediation import clock
from mediation.arbitration.models import (
    Award,
    AwardCorrection,
    Decision,
    DecisionStatus,
    InfoRequest,
    Objection,
    OrderType,
    RequestStatus,
)
from mediation.auth.models import Role, User
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case, Evidence
from mediation.cases.services import (
    _reason,
    business_calendar,
    handles,
    merchant_side,
    pause_clock,
    resume_clock,
    time_zone,
)
from mediation.errors import Conflict, ValidationError
from mediation.extensions import db
from mediation.notifications.services import notify
from mediation.sla.policy import END_OF_DAY, end_of_working_days

#: Working days after the award in which a correction may be requested.
CORRECTION_WINDOW_DAYS = 5
#: Longest text of findings and reasons (characters).
AWARD_TEXT_MAX = 20000


def _party(relation: str) -> str:
    """The party a relation acts for: a platform acts for the merchant side."""
    return "consumer" if relation == "consumer" else "merchant"


# Reading ------------------------------------------------------------------


def award_versions(case: Case) -> list[Award]:
    """Return every version of the case's award, oldest first."""
    return list(
        db.session.scalars(
            db.select(Award).where(Award.case_id == case.id).order_by(Award.version)
        ).all()
    )


def current_award(case: Case) -> Award | None:
    """Return the case's award in force (its latest version), or None."""
    return db.session.scalars(
        db.select(Award)
        .where(Award.case_id == case.id)
        .order_by(Award.version.desc())
        .limit(1)
    ).first()


def info_requests(case: Case) -> list[InfoRequest]:
    """Return the case's information requests, oldest first."""
    return list(
        db.session.scalars(
            db.select(InfoRequest)
            .where(InfoRequest.case_id == case.id)
            .order_by(InfoRequest.id)
        ).all()
    )


def open_info_requests(case: Case) -> list[InfoRequest]:
    """Return the requests still waiting for an answer, oldest first."""
    return [r for r in info_requests(case) if r.status == RequestStatus.open.value]


def objections(case: Case) -> list[Objection]:
    """Return the objections to the case's arbitrators, oldest first."""
    return list(
        db.session.scalars(
            db.select(Objection)
            .where(Objection.case_id == case.id)
            .order_by(Objection.id)
        ).all()
    )


def open_objection(case: Case) -> Objection | None:
    """Return the objection waiting for a regulator's decision, or None."""
    return next(
        (o for o in objections(case) if o.status == DecisionStatus.open.value), None
    )


def corrections(case: Case) -> list[AwardCorrection]:
    """Return the correction requests of the case's award, oldest first."""
    return list(
        db.session.scalars(
            db.select(AwardCorrection)
            .where(AwardCorrection.case_id == case.id)
            .order_by(AwardCorrection.id)
        ).all()
    )


def open_correction(case: Case) -> AwardCorrection | None:
    """Return the correction request waiting for the arbitrator, or None."""
    return next(
        (c for c in corrections(case) if c.status == DecisionStatus.open.value), None
    )


def is_final(case: Case, now: datetime | None = None) -> bool:
    """Say whether the case's award is final: issued, its correction window over,
    and no correction request open."""
    award = current_award(case)
    if award is None:
        return False
    now = now or clock.now_utc()
    return now >= award.correction_until and open_correction(case) is None


def facts(case: Case) -> dict[str, Any]:
    """Return the lifecycle facts of arbitration (``Facts`` fields) for ``case``.

    Only cases in arbitration or awarded have any; the others cost no query.
    """
    if case.status == lc.IN_ARBITRATION:
        objected = objections(case)
        return {
            "info_pending_for": frozenset(r.party for r in open_info_requests(case)),
            "objected_by": frozenset(o.party for o in objected),
            "objection_pending": any(
                o.status == DecisionStatus.open.value for o in objected
            ),
        }
    if case.status == lc.AWARDED:
        award = current_award(case)
        return {
            "has_award": award is not None,
            "correction_open": award is not None
            and clock.now_utc() < award.correction_until,
            "correction_pending": open_correction(case) is not None,
        }
    return {}


def performance_due(case: Case) -> datetime | None:
    """Return the end of the latest order deadline of the award in force (UTC)."""
    award = current_award(case)
    if award is None:
        return None
    days = [
        date.fromisoformat(o["deadline"])
        for o in award.orders or []
        if o.get("deadline")
    ]
    if not days:
        return None
    return _end_of(max(days))


def _end_of(day: date) -> datetime:
    """Return 23:59:59 of ``day`` in the business time zone, as aware UTC."""
    return datetime.combine(day, END_OF_DAY, tzinfo=time_zone()).astimezone(UTC)


def _today(now: datetime) -> date:
    return now.astimezone(time_zone()).date()


def _regulators() -> list[User]:
    return list(
        db.session.scalars(
            db.select(User).where(
                User.role == Role.regulator.value, User.is_active_account.is_(True)
            )
        ).all()
    )


# Arbitrators ------------------------------------------------------------------


def check_not_mediator(case: Case, user: User) -> None:
    """Refuse an arbitrator who mediated the case.

    :raise ValidationError: when ``user`` was the case's mediator.
    """
    if case.mediator_id is not None and user.id == case.mediator_id:
        raise ValidationError(
            _l("An arbitrator never decides a case they mediated."),
            code="mediated_case",
        )


def eligible_arbitrators(case: Case) -> list[User]:
    """Return the active arbitrators who may take over ``case`` (not its mediator,
    not the current arbitrator, nobody a party objected to successfully)."""
    excluded = {case.mediator_id, case.arbitrator_id} | {
        o.arbitrator_id
        for o in objections(case)
        if o.status == DecisionStatus.upheld.value
    }
    return [
        u
        for u in db.session.scalars(
            db.select(User)
            .where(User.role == Role.arbitrator.value, User.is_active_account.is_(True))
            .order_by(User.name, User.id)
        ).all()
        if u.id not in excluded
    ]


# Information requests ---------------------------------------------------------


def _sync_info_due(case: Case) -> None:
    """Set ``info_due_at`` to the earliest open request's deadline (or None)."""
    open_ = [
        r
        for r in db.session.scalars(
            db.select(InfoRequest).where(
                InfoRequest.case_id == case.id,
                InfoRequest.status == RequestStatus.open.value,
            )
        ).all()
    ]
    case.info_due_at = min((r.due_at for r in open_), default=None)


@handles("request_info")
def _request_info(case, payload, actor, relation, now):
    errors: dict[str, Any] = {}
    party = payload.get("party")
    if party not in lc.PARTIES:
        errors["party"] = _l("Choose the consumer or the merchant.")
    question = (payload.get("question") or "").strip()
    if not question:
        errors["question"] = _l("Say what you need to know or see.")
    deadline = payload.get("deadline")
    if not isinstance(deadline, date):
        errors["deadline"] = _l("Give the last day to answer.")
    elif deadline < _today(now):
        errors["deadline"] = _l("The deadline cannot be in the past.")
    if errors:
        raise ValidationError(fields=errors)
    request = InfoRequest(
        case_id=case.id,
        party=party,
        question=question,
        deadline=deadline,
        due_at=_end_of(deadline),
        requested_by_id=actor.id,
        created_at=now,
    )
    db.session.add(request)
    # The award deadline stops until the party answers or its deadline passes.
    if case.paused_at is None and case.due_at is not None:
        pause_clock(case, now=now)
    db.session.flush()
    _sync_info_due(case)
    return {
        "request_id": request.id,
        "party": party,
        "question": question,
        "deadline": deadline,
        "award_clock_remaining_seconds": case.paused_remaining,
    }


def _resume_when_answered(case: Case, now: datetime) -> None:
    _sync_info_due(case)
    if case.info_due_at is None and case.paused_at is not None:
        resume_clock(case, now=now)


@handles("answer_info")
def _answer_info(case, payload, actor, relation, now):
    party = _party(relation)
    waiting = [r for r in open_info_requests(case) if r.party == party]
    wanted = payload.get("request_id")
    request = (
        next((r for r in waiting if r.id == wanted), None)
        if wanted is not None
        else (waiting[0] if waiting else None)
    )
    if request is None:
        raise ValidationError(
            fields={"request_id": _l("There is no open request of yours to answer.")}
        )
    text = (payload.get("text") or "").strip()
    if not text:
        raise ValidationError(fields={"text": _l("Write your answer.")})
    ids = [int(i) for i in payload.get("evidence_ids") or []]
    if ids:
        found = set(
            db.session.scalars(
                db.select(Evidence.id).where(
                    Evidence.case_id == case.id, Evidence.id.in_(ids)
                )
            ).all()
        )
        if found != set(ids):
            raise ValidationError(
                fields={"evidence_ids": _l("Choose files of this case.")}
            )
    request.status = RequestStatus.answered.value
    request.answer_text = text
    request.answer_evidence_ids = sorted(set(ids))
    request.answered_by_id = actor.id
    request.answered_at = now
    db.session.flush()
    _resume_when_answered(case, now)
    return {
        "request_id": request.id,
        "party": party,
        "text": text,
        "evidence_ids": request.answer_evidence_ids,
        "award_due_at": case.due_at,
    }


@handles("lapse_info")
def _lapse_info(case, payload, actor, relation, now):
    lapsed = [r for r in open_info_requests(case) if r.due_at <= now]
    if not lapsed:
        raise Conflict(_l("No information request of this case is past its deadline."))
    for request in lapsed:
        request.status = RequestStatus.lapsed.value
    db.session.flush()
    _resume_when_answered(case, now)
    return {
        "request_ids": [r.id for r in lapsed],
        "late_party": sorted({r.party for r in lapsed}),
        "award_due_at": case.due_at,
    }


# Objections -------------------------------------------------------------------


@handles("object_arbitrator")
def _object(case, payload, actor, relation, now):
    data = _reason(payload)
    objection = Objection(
        case_id=case.id,
        party=_party(relation),
        author_id=actor.id,
        arbitrator_id=case.arbitrator_id,
        reason=data["reason"],
        created_at=now,
    )
    db.session.add(objection)
    db.session.flush()
    notify(
        _regulators(),
        "objection_filed",
        {"reference": case.reference},
        case_id=case.id,
        now=now,
    )
    return {
        "objection_id": objection.id,
        "party": objection.party,
        "arbitrator_id": case.arbitrator_id,
        **data,
    }


@handles("decide_objection")
def _decide_objection(case, payload, actor, relation, now):
    objection = open_objection(case)
    if objection is None:
        raise Conflict(_l("No objection is waiting for a decision."))
    decision = payload.get("decision")
    errors: dict[str, Any] = {}
    if decision not in (DecisionStatus.upheld.value, DecisionStatus.dismissed.value):
        errors["decision"] = _l("Uphold or dismiss the objection.")
    reason = (payload.get("reason") or "").strip()
    if not reason:
        errors["reason"] = _l("Give a reason.")
    replacement = None
    if decision == DecisionStatus.upheld.value:
        wanted = payload.get("user_id")
        replacement = next(
            (u for u in eligible_arbitrators(case) if u.id == wanted), None
        )
        if replacement is None or replacement.id == objection.arbitrator_id:
            errors["user_id"] = _l(
                "Choose another arbitrator (not the one objected to, not the mediator)."
            )
    if errors:
        raise ValidationError(fields=errors)
    objection.status = decision
    objection.decided_by_id = actor.id
    objection.decided_at = now
    objection.decision_reason = reason
    data: dict[str, Any] = {
        "objection_id": objection.id,
        "decision": decision,
        "reason": reason,
    }
    if replacement is not None:
        objection.replacement_id = replacement.id
        case.arbitrator_id, case.arbitrator = replacement.id, replacement
        data["user_id"] = replacement.id
        if case.paused_at is None:
            # The new arbitrator gets the full time for the award.
            from mediation.cases.services import _set_deadline

            _set_deadline(case, now)
    return data


# The award --------------------------------------------------------------------


def award_sha256(content: dict[str, Any]) -> str:
    """Return the SHA-256 (hex) of an award's canonical JSON content.

    Canonical: keys sorted, no spaces, UTF-8, as the timeline's chain hashes; so
    anyone holding the content can recompute the printed hash.
    """
    blob = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _orders(payload: dict[str, Any], now: datetime, decision: str | None) -> list:
    raw = payload.get("orders") or []
    if not isinstance(raw, list):
        raise ValidationError(fields={"orders": _l("Give the orders as a list.")})
    problems: dict[str, Any] = {}
    out: list[dict[str, Any]] = []
    types = {t.value for t in OrderType}
    for n, order in enumerate(raw):
        if not isinstance(order, dict):
            problems[str(n)] = {"type": _l("Choose one of the listed types.")}
            continue
        errors: dict[str, Any] = {}
        if order.get("type") not in types:
            errors["type"] = _l("Choose one of the listed types.")
        amount = order.get("amount", 0) or 0
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            errors["amount"] = _l("Amounts cannot be negative.")
        deadline = order.get("deadline")
        if isinstance(deadline, str):
            try:
                deadline = date.fromisoformat(deadline)
            except ValueError:
                deadline = None
        if not isinstance(deadline, date):
            errors["deadline"] = _l("Give a date by which it will be done.")
        elif deadline < _today(now):
            errors["deadline"] = _l("The deadline cannot be in the past.")
        text = (order.get("text") or "").strip()
        if not text:
            errors["text"] = _l("Say what is ordered.")
        if errors:
            problems[str(n)] = errors
            continue
        out.append(
            {
                "type": order["type"],
                "amount": amount,
                "deadline": deadline.isoformat(),
                "text": text,
            }
        )
    if problems:
        raise ValidationError(fields={"orders": problems})
    if decision in (Decision.granted.value, Decision.partly_granted.value) and not [
        o for o in out if o["type"] != OrderType.costs.value
    ]:
        raise ValidationError(
            fields={"orders": _l("An award that grants the claim orders something.")}
        )
    return out


def _award_fields(payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    decision = payload.get("decision")
    if decision not in {d.value for d in Decision}:
        errors["decision"] = _l("Choose the decision.")
    findings = (payload.get("findings") or "").strip()
    if not findings:
        errors["findings"] = _l("Write the findings.")
    elif len(findings) > AWARD_TEXT_MAX:
        errors["findings"] = _l("This text is too long.")
    reasons = (payload.get("reasons") or "").strip()
    if not reasons:
        errors["reasons"] = _l("Write the reasons.")
    elif len(reasons) > AWARD_TEXT_MAX:
        errors["reasons"] = _l("This text is too long.")
    try:
        orders = _orders(payload, now, decision)
    except ValidationError as exc:
        errors.update(exc.fields or {})
        orders = []
    if errors:
        raise ValidationError(fields=errors)
    return {
        "decision": decision,
        "findings": findings,
        "reasons": reasons,
        "orders": orders,
    }


def award_content(
    case: Case,
    fields: dict[str, Any],
    *,
    version: int,
    arbitrator: User,
    now: datetime,
    corrects: str | None,
) -> dict[str, Any]:
    """Return the canonical content of an award version (what is hashed)."""
    side = merchant_side(case)
    merchant: dict[str, Any] = {"name": side.name if side else case.merchant_name}
    uscc = getattr(side, "uscc", None) if side else None
    if uscc:
        merchant["uscc"] = uscc
    return {
        "reference": case.reference,
        "version": version,
        "consumer": {"name": case.consumer.name},
        "merchant": merchant,
        "arbitrator": {"name": arbitrator.name},
        "decision": fields["decision"],
        "findings": fields["findings"],
        "reasons": fields["reasons"],
        "orders": fields["orders"],
        "issued_on": _today(now).isoformat(),
        "issued_at": now.isoformat(),
        "corrects": corrects,
    }


def _new_version(
    case: Case,
    fields: dict[str, Any],
    *,
    arbitrator: User,
    now: datetime,
    previous: Award | None,
) -> Award:
    version = previous.version + 1 if previous else 1
    content = award_content(
        case,
        fields,
        version=version,
        arbitrator=arbitrator,
        now=now,
        corrects=previous.sha256 if previous else None,
    )
    window_end = (
        previous.correction_until
        if previous
        else end_of_working_days(
            now,
            CORRECTION_WINDOW_DAYS,
            time_zone(),
            calendar=business_calendar(),
        )
    )
    award = Award(
        case_id=case.id,
        version=version,
        decision=fields["decision"],
        findings=fields["findings"],
        reasons=fields["reasons"],
        orders=fields["orders"],
        arbitrator_id=arbitrator.id,
        issued_at=now,
        correction_until=window_end,
        content=content,
        sha256=award_sha256(content),
    )
    db.session.add(award)
    db.session.flush()
    return award


def _award_data(award: Award) -> dict[str, Any]:
    return {
        "award_id": award.id,
        "version": award.version,
        "sha256": award.sha256,
        "decision": award.decision,
        "orders": award.orders,
        "correction_until": award.correction_until,
    }


@handles("issue_award")
def _issue_award(case, payload, actor, relation, now):
    if current_award(case) is not None:
        raise Conflict(_l("This case already has an award; it cannot be changed."))
    award = _new_version(
        case, _award_fields(payload, now), arbitrator=actor, now=now, previous=None
    )
    return _award_data(award)


@handles("request_correction")
def _request_correction(case, payload, actor, relation, now):
    data = _reason(payload)
    award = current_award(case)
    correction = AwardCorrection(
        case_id=case.id,
        award_id=award.id,
        party=_party(relation),
        author_id=actor.id,
        reason=data["reason"],
        created_at=now,
    )
    db.session.add(correction)
    db.session.flush()
    return {"correction_id": correction.id, "party": correction.party, **data}


@handles("correct_award")
def _correct_award(case, payload, actor, relation, now):
    correction = open_correction(case)
    previous = current_award(case)
    if correction is None or previous is None:
        raise Conflict(_l("No correction request is waiting."))
    award = _new_version(
        case, _award_fields(payload, now), arbitrator=actor, now=now, previous=previous
    )
    correction.status = DecisionStatus.upheld.value
    correction.decided_at = now
    correction.decision_reason = (payload.get("reason") or "").strip() or None
    correction.new_award_id = award.id
    # Orders with later deadlines move the performance deadline on, never back.
    due = performance_due(case)
    if (
        due is not None
        and case.fulfilment_marked_at is None
        and case.due_at is not None
        and due > case.due_at
    ):
        case.due_at = due
    return {
        "correction_id": correction.id,
        "corrects": previous.sha256,
        **_award_data(award),
    }


@handles("refuse_correction")
def _refuse_correction(case, payload, actor, relation, now):
    data = _reason(payload)
    correction = open_correction(case)
    if correction is None:
        raise Conflict(_l("No correction request is waiting."))
    correction.status = DecisionStatus.dismissed.value
    correction.decided_at = now
    correction.decision_reason = data["reason"]
    return {"correction_id": correction.id, **data}


# Compliance -------------------------------------------------------------------


def noncompliance_fact(case: Case) -> dict[str, Any]:
    """Return the fact credit reads when a case closes as non-compliant.

    What was not performed (an award or a mediated settlement), by whom, and the
    hash of the award (or agreement) that bound the merchant.
    """
    side = merchant_side(case)
    fact: dict[str, Any] = {"merchant_id": side.id if side else None}
    award = current_award(case) if case.status == lc.AWARDED else None
    if award is not None:
        fact.update(
            kind="award_not_performed",
            award_id=award.id,
            award_sha256=award.sha256,
            amount=award.total(),
        )
    else:
        fact["kind"] = "settlement_not_performed"
    return fact


def notify_noncompliance(case: Case, now: datetime) -> None:
    """Tell the regulators that a case closed as non-compliant."""
    side = merchant_side(case)
    notify(
        _regulators(),
        "case_noncompliant",
        {"reference": case.reference, "merchant": side.name if side else ""},
        case_id=case.id,
        now=now,
    )
