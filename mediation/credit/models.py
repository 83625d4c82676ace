"""Credit records: each merchant's ledger of credit events, its current standing,
the public change feed, credit-repair applications and webhook subscriptions.

The ledger is derived from case facts by one function
(:func:`mediation.credit.ledger.derive`), both live (after every case event) and
by ``flask recompute-credit``; the standing (score, grade, listing, mark) is
computed from the ledger by the model of :mod:`mediation.credit.model`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class CreditEvent(db.Model):
    """One entry of a merchant's ledger: a fact of a case and its points.

    ``(case_id, merchant_id, kind)`` is unique: a case gives a merchant each kind
    of event at most once, so deriving twice changes nothing. Its index, case
    first, also serves every lookup by case (no index of its own: one index
    fewer to maintain for each of the million rows a rebuild writes).
    """

    __tablename__ = "credit_events"
    __table_args__ = (
        UniqueConstraint("case_id", "merchant_id", "kind"),
        Index("ix_credit_events_merchant_occurred", "merchant_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    #: A key of the points table (``late_response``, ``no_response`` ...).
    kind: Mapped[str] = mapped_column(String(40))
    #: Points at full weight (the table's value when the event happened).
    points: Mapped[int] = mapped_column()
    #: When the fact happened (its case event's time): the time windows count from it.
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Why: the case reference, the timeline event (seq, action) and its facts.
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    #: The event puts the merchant on the dishonesty list (until repaired).
    lists: Mapped[bool] = mapped_column(default=False)
    #: Approved credit repair: the event stays visible but no longer counts.
    repaired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    repair_id: Mapped[int | None] = mapped_column(ForeignKey("credit_repairs.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    merchant = relationship("Merchant")
    case = relationship("Case")


class CreditStanding(db.Model):
    """A merchant's current standing, kept up to date with its ledger."""

    __tablename__ = "credit_standings"

    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id"), primary_key=True
    )
    #: Score with one decimal, times ten (integer arithmetic): 1000 = 100.0.
    score_tenths: Mapped[int] = mapped_column(index=True)
    grade: Mapped[str] = mapped_column(String(1), index=True)
    listed: Mapped[bool] = mapped_column(default=False, index=True)
    trusted: Mapped[bool] = mapped_column(default=False)
    #: When the standing changes by itself next (an event leaves a window).
    next_change_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    #: The model's explanation of the standing (factors, listing reasons,
    #: satisfaction) and the model's fingerprint: the credit page and API show
    #: it without reading the ledger (``ledger.stored_standing``). None: not
    #: stored yet (the page computes the standing from the ledger).
    explanation: Mapped[dict | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    merchant = relationship("Merchant")

    @property
    def score(self) -> float:
        return self.score_tenths / 10


class CreditChange(db.Model):
    """The public change feed: one row per change of a merchant's standing.

    The id is the feed's cursor (``since``): rows are only appended. Consumer
    warnings appear here too (:mod:`mediation.analytics.warning_services`): one
    row per merchant they name, or one without a merchant.
    """

    __tablename__ = "credit_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None only for a consumer warning that names no merchant.
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchants.id"), index=True
    )
    #: ``grade``, ``listed``, ``delisted``, ``repaired``, ``trusted``, ``untrusted``;
    #: ``warning`` and ``warning_withdrawn`` (``new`` describes the warning).
    kind: Mapped[str] = mapped_column(String(20))
    old: Mapped[dict] = mapped_column(JSON, default=dict)
    new: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    merchant = relationship("Merchant")


class CreditRepair(db.Model):
    """A merchant's application to repair its credit, and the regulator's decision."""

    __tablename__ = "credit_repairs"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The ledger events the application asks to repair.
    event_ids: Mapped[list] = mapped_column(JSON, default=list)
    commitment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: ``pending``, ``approved``, ``refused``.
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)

    merchant = relationship("Merchant")
    applicant = relationship("User", foreign_keys=[applicant_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])


class WebhookSubscription(db.Model):
    """A URL that receives signed deliveries of case and credit events."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: The merchant (platform) whose shops' events it receives; None: all (regulator).
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    url: Mapped[str] = mapped_column(String(500))
    #: HMAC-SHA256 key, shown once to the subscriber.
    secret: Mapped[str] = mapped_column(String(100))
    #: Event kinds delivered (``credit.grade``, ``credit.listed``, ``case.filed`` ...).
    events: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    owner = relationship("User")


class WebhookDelivery(db.Model):
    """One delivery (and its attempts) of one event to one subscription."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id"), index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSON)
    #: ``pending``, ``delivered``, ``failed`` (gave up).
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    subscription = relationship("WebhookSubscription")


__all__ = [
    "CreditChange",
    "CreditEvent",
    "CreditRepair",
    "CreditStanding",
    "WebhookDelivery",
    "WebhookSubscription",
]
