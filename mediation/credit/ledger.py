"""The credit ledger: derived from case facts by one function, kept live.

:func:`derive` reads a case and its timeline and says which credit events the
case gives which merchant. The same function serves the live update (after every
case event that can matter, :func:`on_case_event`, called by ``apply_action``)
and ``flask recompute-credit`` (:func:`recompute`), so both give the same ledger.
Services flush, never commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import and_, or_

from mediation.cases import lifecycle as lc
from mediation.cases.models import Case, CaseEvent
from mediation.credit import model as credit_model
from mediation.credit.models import CreditChange, CreditEvent, CreditStanding
from mediation.extensions import db
from mediation.merchants.models import Merchant, MerchantKind
from mediation.unit_of_work import current_bulk

logger = logging.getLogger(__name__)

#: Case actions after which a case's credit facts may have changed.
CREDIT_ACTIONS = frozenset(
    {
        "expire",
        "offer",
        "reject",
        "end_mediation",
        "issue_award",
        "correct_award",
        "accept_offer",
        "confirm_fulfilment",
        "report_unfulfilled",
        "link_merchant",
    }
)

#: Called with each new :class:`CreditChange` (webhooks subscribe here).
change_listeners: list[Callable[[CreditChange], None]] = []


def credit_config() -> dict[str, Any]:
    """Return the running app's credit model (``CREDIT_MODEL``)."""
    return current_app.config.get("CREDIT_MODEL") or credit_model.DEFAULT_MODEL


def norm_of(merchant: Merchant | None) -> str:
    """Return the points norm of a merchant: ``platform`` or ``merchant``."""
    if merchant is not None and merchant.kind == MerchantKind.platform.value:
        return "platform"
    return "merchant"


@dataclass(frozen=True)
class Fact:
    """A credit event a case gives a merchant (before its points are looked up)."""

    merchant_id: int
    kind: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict, compare=False)
    lists: bool = False

    @property
    def key(self) -> tuple[int, str]:
        return (self.merchant_id, self.kind)


def _why(case: Case, event: CaseEvent, **extra: Any) -> dict[str, Any]:
    return {
        "reference": case.reference,
        "seq": event.seq,
        "action": event.action,
        **extra,
    }


#: The timeline events :func:`derive` can ever read: those with one of these
#: actions, and those entering one of these statuses (``from_status`` another
#: one). Every other event passes every test of :func:`derive` untouched, so
#: the facts of a timeline filtered to these events (in order) are the facts of
#: the whole timeline (tested on generated lifecycles in
#: ``tests/test_credit_derive.py``). ``recompute-credit`` reads only these.
#: Keep them in step with the rules below.
DERIVE_ACTIONS = frozenset(
    {
        "expire",
        "offer",
        "reject",
        "end_mediation",
        "accept_proposal",
        "decline_proposal",
        "issue_award",
        "correct_award",
    }
)
DERIVE_ENTERING = frozenset({lc.CLOSED_NONCOMPLIANT, lc.RESOLVED})


#: Of those, the events whose ``data`` :func:`derive` reads: with these actions,
#: or entering this status. It never looks at the others' ``data``, which bulk
#: reads may leave out (tested as above).
DERIVE_DATA_ACTIONS = frozenset(
    {"expire", "accept_proposal", "decline_proposal", "issue_award", "correct_award"}
)
DERIVE_DATA_ENTERING = frozenset({lc.CLOSED_NONCOMPLIANT})


def derive_reads(action: str, from_status: str | None, to_status: str) -> bool:
    """Say whether :func:`derive` can read a timeline event (see
    :data:`DERIVE_ACTIONS`)."""
    return action in DERIVE_ACTIONS or (
        to_status in DERIVE_ENTERING and from_status != to_status
    )


def derive_reads_data(action: str, from_status: str | None, to_status: str) -> bool:
    """Say whether :func:`derive` can read the ``data`` of a timeline event (see
    :data:`DERIVE_DATA_ACTIONS`)."""
    return action in DERIVE_DATA_ACTIONS or (
        to_status in DERIVE_DATA_ENTERING and from_status != to_status
    )


_ANSWER_STAGES = ("awaiting_merchant", "awaiting_platform")
_ANSWERS = ("offer", "reject")
_AWARDS = ("issue_award", "correct_award")
_MEDIATION_ENDS = ("end_mediation", "expire")
_PROPOSAL_ANSWERS = ("decline_proposal", "accept_proposal")
_IN_MEDIATION, _RESOLVED = lc.IN_MEDIATION, lc.RESOLVED
_CLOSED_NONCOMPLIANT = lc.CLOSED_NONCOMPLIANT


def derive(case: Case, events: list[CaseEvent]) -> list[Fact]:
    """Return the credit facts of ``case`` from its timeline (oldest first).

    - ``no_response`` / ``late_response``: the merchant's answer deadline passed
      (it answered later: late; never: no response). For the platform of a
      registered shop the same facts are ``escalation_unanswered`` /
      ``escalation_late``.
    - ``resolved_directly`` (``escalation_resolved`` for a platform answering an
      escalation): the case was resolved on a merchant's (platform's) offer.
    - ``mediation_failed``: mediation ended without agreement after the merchant
      side declined the last proposal.
    - ``award_against``: the award in force grants the claim in full or in part.
    - ``not_fulfilled``: the case closed as not complied with (also lists).
    """
    facts: list[Fact] = []
    merchant_id, platform_id = case.merchant_id, case.platform_id
    side = merchant_id or platform_id
    awards = []
    for n, event in enumerate(events):
        action = event.action
        if action in _AWARDS:
            awards.append(event)
        if action == "expire":
            data = event.data or {}
            stage = data.get("stage")
            if stage in _ANSWER_STAGES:
                if stage == "awaiting_merchant" and merchant_id is not None:
                    who, role = merchant_id, "merchant"
                    kinds = ("late_response", "no_response")
                elif platform_id is not None:
                    who, role = platform_id, "platform"
                    kinds = (
                        ("escalation_late", "escalation_unanswered")
                        if merchant_id is not None
                        else ("late_response", "no_response")
                    )
                else:
                    continue
                answered = any(
                    e.action in _ANSWERS and e.actor_role == role
                    for e in events[n + 1 :]
                )
                facts.append(
                    Fact(
                        who,
                        kinds[0] if answered else kinds[1],
                        event.at,
                        _why(case, event, stage=stage),
                    )
                )
                continue
        to_status, from_status = event.to_status, event.from_status
        if action in _MEDIATION_ENDS and (
            from_status == _IN_MEDIATION and to_status != _IN_MEDIATION
        ):
            declines = [e for e in events[:n] if e.action in _PROPOSAL_ANSWERS]
            if (
                side is not None
                and declines
                and declines[-1].action == "decline_proposal"
                and (declines[-1].data or {}).get("party") == "merchant"
            ):
                facts.append(
                    Fact(side, "mediation_failed", event.at, _why(case, event))
                )
        elif to_status == _CLOSED_NONCOMPLIANT and from_status != to_status:
            if side is not None:
                fact = (event.data or {}).get("noncompliance") or {}
                facts.append(
                    Fact(
                        side,
                        "not_fulfilled",
                        event.at,
                        _why(case, event, what=fact.get("kind")),
                        lists=True,
                    )
                )
        elif (
            to_status == _RESOLVED
            and from_status != to_status
            and case.outcome == "settled_directly"
        ):
            offers = [e for e in events[:n] if e.action == "offer"]
            role = offers[-1].actor_role if offers else "merchant"
            if role == "platform" and merchant_id is not None and platform_id:
                facts.append(
                    Fact(
                        platform_id,
                        "escalation_resolved",
                        event.at,
                        _why(case, event),
                    )
                )
            elif side is not None:
                facts.append(
                    Fact(side, "resolved_directly", event.at, _why(case, event))
                )
    if side is not None and awards:
        last = awards[-1]
        decision = (last.data or {}).get("decision")
        if decision in ("granted", "partly_granted"):
            first = awards[0]
            facts.append(
                Fact(
                    side,
                    "award_against",
                    first.at,
                    _why(case, last, decision=decision, sha256=last.data.get("sha256")),
                )
            )
    # One event of a kind per case and merchant: the first occurrence.
    seen: dict[tuple[int, str], Fact] = {}
    for fact in facts:
        seen.setdefault(fact.key, fact)
    return list(seen.values())


# Writing the ledger -----------------------------------------------------------


def _case_events(case: Case) -> list[CaseEvent]:
    return list(
        db.session.scalars(
            db.select(CaseEvent)
            .where(CaseEvent.case_id == case.id)
            .order_by(CaseEvent.seq)
        ).all()
    )


def sync_case(case: Case, *, now: datetime) -> set[int]:
    """Make the ledger hold exactly the credit events ``case`` gives.

    Repaired events keep their repair. :return: the merchants whose ledger changed.
    """
    db.session.flush()
    wanted = {f.key: f for f in derive(case, _case_events(case))}
    existing = {
        (e.merchant_id, e.kind): e
        for e in db.session.scalars(
            db.select(CreditEvent).where(CreditEvent.case_id == case.id)
        ).all()
    }
    changed: set[int] = set()
    config = credit_config()
    merchants: dict[int, Merchant | None] = {}
    for key, row in existing.items():
        if key not in wanted:
            db.session.delete(row)
            changed.add(key[0])
    for key, fact in wanted.items():
        row = existing.get(key)
        if row is not None and row.occurred_at == fact.occurred_at:
            continue
        if fact.merchant_id not in merchants:
            merchants[fact.merchant_id] = db.session.get(Merchant, fact.merchant_id)
        points = credit_model.points_for(
            fact.kind, norm_of(merchants[fact.merchant_id]), config
        )
        if row is None:
            db.session.add(
                CreditEvent(
                    merchant_id=fact.merchant_id,
                    case_id=case.id,
                    kind=fact.kind,
                    points=points,
                    occurred_at=fact.occurred_at,
                    data=fact.data,
                    lists=fact.lists,
                    created_at=now,
                )
            )
        else:
            row.points, row.occurred_at = points, fact.occurred_at
            row.data, row.lists = fact.data, fact.lists
        changed.add(fact.merchant_id)
    db.session.flush()
    return changed


def on_case_event(
    case: Case, *, action: str, from_status: str | None, now: datetime
) -> None:
    """Keep the ledger and standings current after a case event (``apply_action``).

    In a batch (the SLA sweep) the timeline rows are written at the end of the
    batch, so the ledger follows then, once per case.
    """
    side = case.merchant_id or case.platform_id
    closing = lc.is_closed(case.status) and from_status != case.status
    if action in CREDIT_ACTIONS or closing:

        def changed() -> set[int]:
            merchants = sync_case(case, now=now)
            if closing and side is not None:
                # Its resolved cases (the trusted mark) may have changed without
                # any ledger event (a settlement in mediation performed).
                merchants.add(side)
            return merchants

        def work() -> None:
            for merchant_id in sorted(changed()):
                refresh_standing(merchant_id, now=now)

    elif action == "rate" and side is not None:

        def work() -> None:
            refresh_standing(side, now=now)

    else:
        return
    bulk = current_bulk()
    if bulk is None:
        work()
        return
    # A batch: each case's ledger once its rows are written, then every merchant
    # touched refreshed once (not once per case: a batch often holds many cases
    # of one merchant, and a refresh reads its whole ledger).
    touched: set[int] = bulk.cache.setdefault(("credit", "touched"), set())
    if side is not None and action == "rate":
        touched.add(side)
    else:
        bulk.after_write[("credit", case.id)] = lambda: touched.update(changed())

    def refresh_touched() -> None:
        for merchant_id in sorted(touched):
            refresh_standing(merchant_id, now=now)
        touched.clear()

    # Kept last: after every case's ledger work.
    bulk.after_write.pop(("credit", "refresh"), None)
    bulk.after_write[("credit", "refresh")] = refresh_touched


# Standings --------------------------------------------------------------------


def entries_of(merchant_id: int) -> list[credit_model.Entry]:
    """Return a merchant's ledger as the model reads it."""
    return [
        credit_model.Entry(
            kind=e.kind,
            points=e.points,
            occurred_at=e.occurred_at,
            lists=e.lists,
            repaired=e.repaired_at is not None,
            id=e.id,
        )
        for e in db.session.scalars(
            db.select(CreditEvent)
            .where(CreditEvent.merchant_id == merchant_id)
            .order_by(CreditEvent.occurred_at, CreditEvent.id)
        ).all()
    ]


def side_cases(merchant_id: int):
    """Cases a merchant answers for: its own, and unregistered shops' on a platform."""
    return or_(
        Case.merchant_id == merchant_id,
        and_(Case.merchant_id.is_(None), Case.platform_id == merchant_id),
    )


def ratings_of(merchant_id: int) -> list[tuple[datetime, int]]:
    """Return ``(closed_at, score)`` of the merchant's cases rated by consumers."""
    return [
        (closed_at, score)
        for closed_at, score in db.session.execute(
            db.select(Case.closed_at, Case.satisfaction).where(
                side_cases(merchant_id),
                Case.satisfaction.is_not(None),
                Case.closed_at.is_not(None),
            )
        ).all()
    ]


def resolved_count(merchant_id: int) -> int:
    """Return how many of the merchant's cases closed as resolved."""
    return db.session.scalar(
        db.select(db.func.count(Case.id)).where(
            side_cases(merchant_id), Case.status == lc.RESOLVED
        )
    )


def compute(merchant_id: int, *, now: datetime) -> credit_model.Standing:
    """Return a merchant's standing at ``now`` from its ledger and ratings."""
    return credit_model.standing(
        entries_of(merchant_id),
        now=now,
        model=credit_config(),
        ratings=ratings_of(merchant_id),
        resolved_cases=resolved_count(merchant_id),
    )


def model_digest(model: dict[str, Any]) -> str:
    """Return a short fingerprint of a credit model (stored with each standing's
    explanation: a standing computed under another model is not used)."""
    text = json.dumps(model, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def explanation_of(result: credit_model.Standing, digest: str) -> dict[str, Any]:
    """Return what a stored standing keeps of the model's explanation (the
    factors, the listing reasons, satisfaction), as JSON."""
    return {
        "model": digest,
        "factors": [
            [f.kind, f.count, f.points, f.full, f.half] for f in result.factors
        ],
        "listing_reasons": list(result.listing_reasons),
        "satisfaction": result.satisfaction,
        "satisfaction_points": result.satisfaction_points,
        "ratings": result.ratings,
    }


def stored_standing(
    row: CreditStanding | None, *, now: datetime, model: dict[str, Any]
) -> credit_model.Standing | None:
    """Return the standing a stored row says holds at ``now``, or None when it
    may not: no row or no explanation, computed under another model, computed
    after ``now``, or ``now`` at or past its ``next_change_at`` (the sweep has
    not refreshed it yet).

    Everything else that moves a standing (the ledger, ratings, resolved cases,
    repairs) refreshes it in the same transaction, so a row that passes these
    tests is what :func:`compute` would give at ``now``.
    """
    if row is None or not row.explanation:
        return None
    explanation = row.explanation
    if explanation.get("model") != model_digest(model):
        return None
    if now < row.updated_at or (
        row.next_change_at is not None and now >= row.next_change_at
    ):
        return None
    return credit_model.Standing(
        score=row.score_tenths / 10,
        grade=row.grade,
        listed=row.listed,
        trusted=row.trusted,
        factors=[credit_model.Factor(*f) for f in explanation["factors"]],
        listing_reasons=list(explanation["listing_reasons"]),
        satisfaction=explanation["satisfaction"],
        satisfaction_points=explanation["satisfaction_points"],
        ratings=explanation["ratings"],
        next_change_at=row.next_change_at,
    )


def current_standing(merchant_id: int, *, now: datetime) -> credit_model.Standing:
    """Return a merchant's standing at ``now``: the stored one while it holds
    (:func:`stored_standing`: no ledger read), else computed from the ledger
    (:func:`compute`; nothing is written)."""
    model = credit_config()
    result = stored_standing(
        db.session.get(CreditStanding, merchant_id), now=now, model=model
    )
    return result if result is not None else compute(merchant_id, now=now)


def _snapshot(row: CreditStanding | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {
        "score": row.score_tenths / 10,
        "grade": row.grade,
        "listed": row.listed,
        "trusted": row.trusted,
    }


def refresh_standing(merchant_id: int, *, now: datetime) -> CreditStanding:
    """Recompute and store a merchant's standing; append feed rows for changes."""
    result = compute(merchant_id, now=now)
    row = db.session.get(CreditStanding, merchant_id)
    before = _snapshot(row)
    if row is None:
        row = CreditStanding(merchant_id=merchant_id)
        db.session.add(row)
    row.score_tenths = result.score_tenths
    row.grade = result.grade
    row.listed = result.listed
    row.trusted = result.trusted
    row.next_change_at = result.next_change_at
    row.explanation = explanation_of(result, model_digest(credit_config()))
    row.updated_at = now
    after = _snapshot(row)
    for kind in _changes(before, after):
        change = CreditChange(
            merchant_id=merchant_id, kind=kind, old=before, new=after, at=now
        )
        db.session.add(change)
        db.session.flush()
        for listener in change_listeners:
            listener(change)
    return row


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    if not before:
        # A first standing is news only when it is not the blank slate.
        blank = {"grade": "A", "listed": False}
        if after.get("grade") == blank["grade"] and not after.get("listed"):
            return []
        before = {"grade": None, "listed": False, "trusted": False}
    kinds = []
    if before.get("grade") != after["grade"]:
        kinds.append("grade")
    if before.get("listed") != after["listed"]:
        kinds.append("listed" if after["listed"] else "delisted")
    if bool(before.get("trusted")) != after["trusted"]:
        kinds.append("trusted" if after["trusted"] else "untrusted")
    return kinds


def standing_of(merchant_id: int, *, now: datetime) -> CreditStanding:
    """Return the stored standing, computing it first when there is none."""
    row = db.session.get(CreditStanding, merchant_id)
    if row is None:
        row = refresh_standing(merchant_id, now=now)
    return row


def refresh_due(*, now: datetime, limit: int = 1000) -> int:
    """Refresh the standings that change by themselves by ``now`` (an event left a
    window). :return: how many were refreshed."""
    query = (
        db.select(CreditStanding.merchant_id)
        .where(CreditStanding.next_change_at <= now)
        .order_by(CreditStanding.merchant_id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        # Several sweepers: each standing is refreshed by one of them.
        query = query.with_for_update(skip_locked=True)
    ids = db.session.scalars(query).all()
    for merchant_id in ids:
        refresh_standing(merchant_id, now=now)
    return len(ids)


def recompute(
    *, now: datetime, case_ids: Iterable[int] | None = None
) -> dict[str, int]:
    """Rebuild every ledger from the case history, then every standing.

    The same :func:`derive` and the same model as the live updates, with the
    I/O done set-based (:mod:`mediation.credit.bulk`): recomputing a consistent
    ledger changes nothing, and the result is the one :func:`sync_case` per case
    and :func:`refresh_standing` per merchant would give.

    :param case_ids: only these cases' ledger rows (every standing is refreshed).
    :return: counts of cases and merchants processed (and of rows written).
    """
    from mediation.credit import bulk

    return bulk.recompute(now=now, case_ids=case_ids)
