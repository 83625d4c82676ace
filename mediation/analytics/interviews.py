"""Warning interviews (约谈警示): a regulator calls a merchant in, then records
what came of it.

A regulator marks a merchant for an interview (reason, planned day), which is
then ``planned``; later a regulator records that it was ``held`` (the day, a
summary, the merchant's commitments, a follow-up day) or ``cancelled`` (reason).
Every step is in the audit log and the merchant's staff are notified; they see
their own merchant's interviews (never another merchant's). Interviews are not
published on the public credit page: they are supervision measures, not
findings of fact, and they do not count in the credit model.

Services flush, never commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l

from mediation.analytics import risk
from mediation.analytics.audit import record_audit
from mediation.analytics.risk_models import WarningInterview
from mediation.auth.models import Role, User
from mediation.errors import Conflict, NotFound, ValidationError
from mediation.extensions import db
from mediation.merchants.models import Merchant
from mediation.notifications.messages import MESSAGES
from mediation.notifications.services import notify

logger = logging.getLogger(__name__)

STATUSES = ("planned", "held", "cancelled")
#: Longest reason, summary or commitment text.
TEXT_MAX = 4000
#: How far ahead an interview may be planned, and a follow-up set.
PLAN_AHEAD_DAYS = 366

# The merchant's staff hear of each step (no case: the notification has no link;
# the text names the page).
MESSAGES.setdefault(
    "interview_planned",
    _l(
        "The market regulator has called %(merchant)s to a warning interview on "
        "%(date)s. See Warning interviews."
    ),
)
MESSAGES.setdefault(
    "interview_held",
    _l(
        "The outcome of the warning interview of %(merchant)s was recorded. "
        "See Warning interviews."
    ),
)
MESSAGES.setdefault(
    "interview_cancelled",
    _l("The warning interview of %(merchant)s planned for %(date)s was cancelled."),
)


@dataclass
class PlanInput:
    """What a regulator gives to call a merchant in."""

    reason: str
    planned_for: date | None


@dataclass
class OutcomeInput:
    """What a regulator records after the interview."""

    held_on: date | None
    summary: str
    commitments: str = ""
    follow_up_on: date | None = None


def today(now: datetime) -> date:
    """Return the business day of ``now`` (``TIME_ZONE``)."""
    return now.astimezone(ZoneInfo(current_app.config["TIME_ZONE"])).date()


def _text(value: str | None, name: str, errors: dict, *, required: bool) -> str:
    text = (value or "").strip()
    if required and not text:
        errors[name] = [_l("This field is required.")]
    elif len(text) > TEXT_MAX:
        errors[name] = [_l("At most %(max)d characters.", max=TEXT_MAX)]
    return text


def _staff(merchant_id: int) -> list[User]:
    return list(
        db.session.scalars(
            db.select(User).where(
                User.role == Role.merchant.value,
                User.merchant_id == merchant_id,
                User.is_active_account.is_(True),
            )
        )
    )


def lock_merchant(merchant_id: int) -> Merchant:
    """Load a merchant, locked until the commit (one planned interview at a time).

    :raise NotFound: when there is no such merchant.
    """
    query = db.select(Merchant).where(Merchant.id == merchant_id)
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        query = query.with_for_update(of=Merchant)
    elif dialect == "sqlite":
        db.session.execute(db.text("UPDATE merchants SET id = id WHERE 0 = 1"))
    merchant = db.session.scalar(query.execution_options(populate_existing=True))
    if merchant is None:
        raise NotFound()
    return merchant


def get_interview(interview_id: int, *, lock: bool = False) -> WarningInterview:
    """Load an interview (locked until the commit when ``lock``).

    :raise NotFound: when there is no such interview.
    """
    query = db.select(WarningInterview).where(WarningInterview.id == interview_id)
    if lock:
        dialect = db.session.get_bind().dialect.name
        if dialect == "postgresql":
            query = query.with_for_update(of=WarningInterview)
        elif dialect == "sqlite":
            db.session.execute(
                db.text("UPDATE warning_interviews SET id = id WHERE 0 = 1")
            )
        query = query.execution_options(populate_existing=True)
    interview = db.session.scalar(query)
    if interview is None:
        raise NotFound()
    return interview


def planned_interview(merchant_id: int) -> WarningInterview | None:
    """Return the merchant's planned interview, if any."""
    return db.session.scalar(
        db.select(WarningInterview).where(
            WarningInterview.merchant_id == merchant_id,
            WarningInterview.status == "planned",
        )
    )


def plan_interview(
    merchant: Merchant, data: PlanInput, *, actor: User, now: datetime
) -> WarningInterview:
    """Mark a merchant for a warning interview.

    The merchant should be loaded with :func:`lock_merchant`, so two regulators
    cannot plan two interviews at once.

    :raise ValidationError: without a reason or day, or for a day in the past
        or more than a year ahead.
    :raise Conflict: when the merchant already has a planned interview.
    """
    errors: dict = {}
    reason = _text(data.reason, "reason", errors, required=True)
    day = today(now)
    if data.planned_for is None:
        errors["planned_for"] = [_l("Give the day of the interview.")]
    elif data.planned_for < day:
        errors["planned_for"] = [_l("The day must not be in the past.")]
    elif data.planned_for > day + timedelta(days=PLAN_AHEAD_DAYS):
        errors["planned_for"] = [_l("Plan the interview within a year.")]
    if errors:
        raise ValidationError(fields=errors)
    if planned_interview(merchant.id) is not None:
        raise Conflict(
            _l("This merchant already has a planned warning interview."),
            code="interview_planned",
        )
    facts, result = risk.merchant_risk(merchant.id, now=now)
    interview = WarningInterview(
        merchant_id=merchant.id,
        status="planned",
        reason=reason,
        planned_for=data.planned_for,
        planned_by_id=actor.id,
        created_at=now,
        updated_at=now,
        risk_score_tenths=result.score_tenths,
        risk_factors=[
            {"name": f.name, "value": f.value, "points": f.points} for f in result.top()
        ],
    )
    db.session.add(interview)
    db.session.flush()
    record_audit(
        actor,
        "interview.plan",
        object_type="merchant",
        object_id=merchant.id,
        details={
            "interview_id": interview.id,
            "planned_for": interview.planned_for,
            "reason": reason,
            "risk_score": result.score,
        },
        now=now,
    )
    notify(
        _staff(merchant.id),
        "interview_planned",
        {"merchant": merchant.name, "date": interview.planned_for.isoformat()},
        now=now,
    )
    logger.info(
        "warning interview planned",
        extra={"merchant_id": merchant.id, "interview_id": interview.id},
    )
    return interview


def _require_planned(interview: WarningInterview) -> None:
    if interview.status != "planned":
        raise Conflict(
            _l("This interview was already held or cancelled."),
            code="interview_closed",
        )


def record_outcome(
    interview: WarningInterview, data: OutcomeInput, *, actor: User, now: datetime
) -> WarningInterview:
    """Record that a planned interview was held, with its outcome.

    :raise ValidationError: without a day or summary, a day in the future or
        before the interview was planned, or a follow-up not after the day held.
    :raise Conflict: when the interview is not planned any more.
    """
    errors: dict = {}
    summary = _text(data.summary, "summary", errors, required=True)
    commitments = _text(data.commitments, "commitments", errors, required=False)
    day = today(now)
    planned_on = today(interview.created_at)
    if data.held_on is None:
        errors["held_on"] = [_l("Give the day the interview was held.")]
    elif data.held_on > day:
        errors["held_on"] = [_l("The day must not be in the future.")]
    elif data.held_on < planned_on:
        errors["held_on"] = [
            _l("The day must not be before the interview was planned.")
        ]
    if data.follow_up_on is not None:
        if data.held_on is not None and data.follow_up_on <= data.held_on:
            errors["follow_up_on"] = [
                _l("The follow-up must come after the interview.")
            ]
        elif data.follow_up_on > day + timedelta(days=PLAN_AHEAD_DAYS):
            errors["follow_up_on"] = [_l("Set the follow-up within a year.")]
    if errors:
        raise ValidationError(fields=errors)
    _require_planned(interview)
    interview.status = "held"
    interview.held_on = data.held_on
    interview.summary = summary
    interview.commitments = commitments or None
    interview.follow_up_on = data.follow_up_on
    interview.closed_by_id = actor.id
    interview.closed_at = now
    interview.updated_at = now
    record_audit(
        actor,
        "interview.held",
        object_type="merchant",
        object_id=interview.merchant_id,
        details={
            "interview_id": interview.id,
            "held_on": interview.held_on,
            "follow_up_on": interview.follow_up_on,
            "summary": summary,
            "commitments": commitments,
        },
        now=now,
    )
    merchant = db.session.get(Merchant, interview.merchant_id)
    notify(
        _staff(interview.merchant_id),
        "interview_held",
        {"merchant": merchant.name if merchant else ""},
        now=now,
    )
    db.session.flush()
    return interview


def cancel_interview(
    interview: WarningInterview, reason: str, *, actor: User, now: datetime
) -> WarningInterview:
    """Cancel a planned interview, with a reason.

    :raise ValidationError: without a reason.
    :raise Conflict: when the interview is not planned any more.
    """
    errors: dict = {}
    text = _text(reason, "cancel_reason", errors, required=True)
    if errors:
        raise ValidationError(fields=errors)
    _require_planned(interview)
    interview.status = "cancelled"
    interview.cancel_reason = text
    interview.closed_by_id = actor.id
    interview.closed_at = now
    interview.updated_at = now
    record_audit(
        actor,
        "interview.cancel",
        object_type="merchant",
        object_id=interview.merchant_id,
        details={"interview_id": interview.id, "reason": text},
        now=now,
    )
    merchant = db.session.get(Merchant, interview.merchant_id)
    notify(
        _staff(interview.merchant_id),
        "interview_cancelled",
        {
            "merchant": merchant.name if merchant else "",
            "date": interview.planned_for.isoformat(),
        },
        now=now,
    )
    db.session.flush()
    return interview


def interviews_of(merchant_id: int) -> list[WarningInterview]:
    """Return a merchant's interviews, the latest first."""
    return list(
        db.session.scalars(
            db.select(WarningInterview)
            .where(WarningInterview.merchant_id == merchant_id)
            .order_by(WarningInterview.created_at.desc(), WarningInterview.id.desc())
        )
    )
