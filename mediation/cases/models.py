"""Cases, their versions, timeline, evidence, offers and idempotency keys."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class Category(str, enum.Enum):
    counterfeit = "counterfeit"
    false_advertising = "false_advertising"
    fake_reviews = "fake_reviews"
    fake_promotion = "fake_promotion"
    unfair_terms = "unfair_terms"
    quality_defect = "quality_defect"
    delivery = "delivery"
    refund_refused = "refund_refused"
    after_sales = "after_sales"
    personal_info = "personal_info"
    other = "other"


class RemedyType(str, enum.Enum):
    """Claim and offer types."""

    refund = "refund"
    replacement = "replacement"
    repair = "repair"
    compensation = "compensation"
    apology = "apology"
    other = "other"


#: The filing fields a consumer may amend (and that each CaseVersion keeps).
AMENDABLE_FIELDS = (
    "category",
    "order_ref",
    "order_date",
    "amount_paid",
    "claim_type",
    "claim_amount",
    "description",
)


class Case(db.Model):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_due_at", "status", "due_at"),
        Index("ix_cases_merchant_status", "merchant_id", "status"),
        Index("ix_cases_consumer_order", "consumer_id", "merchant_id", "order_ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Public reference, e.g. MC-2026-000123; set right after the insert.
    reference: Mapped[str | None] = mapped_column(String(20), unique=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: None while an unregistered shop waits in the regulator's intake queue.
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    #: The shop's name as the consumer typed it (always kept).
    merchant_name: Mapped[str] = mapped_column(String(200))
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchants.id"), index=True
    )
    category: Mapped[str] = mapped_column(String(30), index=True)
    order_ref: Mapped[str] = mapped_column(String(100))
    order_date: Mapped[date] = mapped_column(Date)
    #: Integer fen (CNY).
    amount_paid: Mapped[int] = mapped_column(BigInteger)
    claim_type: Mapped[str] = mapped_column(String(20))
    #: Integer fen; 0 for non-monetary claims.
    claim_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    description: Mapped[str] = mapped_column(Text)
    arbitration_consent: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(30))
    #: Deadline of the current stage (the SLA sweep acts on it).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the reminder before ``due_at`` goes out.
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    #: The reminder for the current deadline went out (reset with each new deadline).
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The clock is stopped while the case waits on the party it does not bind.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Seconds left on the deadline when the clock stopped.
    paused_remaining: Mapped[int | None] = mapped_column()
    #: The earliest deadline of the case's open information requests (arbitration):
    #: the sweep lapses a request when it passes. None when none is open.
    info_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    mediator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    arbitrator_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"), index=True
    )
    #: The case group whose mediator handles it with related complaints.
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("case_groups.id"), index=True
    )
    #: How the case ended (status of the closing event, or ``settled_directly``...).
    outcome: Mapped[str | None] = mapped_column(String(40))
    #: Current complaint version (1 = as filed).
    version: Mapped[int] = mapped_column(default=1)
    #: The case has been in mediation before (a second failure is non-compliance).
    was_mediated: Mapped[bool] = mapped_column(default=False)
    #: The merchant said the agreement or award is fulfilled.
    fulfilment_marked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the case went to the platform (the platform's staff see it from then).
    platform_escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: First answer (offer or rejection) by the merchant or platform.
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    satisfaction: Mapped[int | None] = mapped_column()
    satisfaction_comment: Mapped[str | None] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    consumer = relationship("User", foreign_keys=[consumer_id])
    merchant = relationship("Merchant", foreign_keys=[merchant_id])
    platform = relationship("Merchant", foreign_keys=[platform_id])
    mediator = relationship("User", foreign_keys=[mediator_id])
    arbitrator = relationship("User", foreign_keys=[arbitrator_id])
    group = relationship("CaseGroup", foreign_keys=[group_id])
    events = relationship(
        "CaseEvent", order_by="CaseEvent.seq", back_populates="case", lazy="select"
    )
    versions = relationship(
        "CaseVersion", order_by="CaseVersion.number", back_populates="case"
    )
    evidence = relationship("Evidence", order_by="Evidence.id", back_populates="case")
    offers = relationship("Offer", order_by="Offer.id", back_populates="case")

    def filing_fields(self) -> dict[str, Any]:
        """Return the amendable fields as JSON-ready values."""
        out: dict[str, Any] = {}
        for name in AMENDABLE_FIELDS:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, date) else value
        return out

    def __repr__(self) -> str:
        return f"<Case {self.reference} {self.status}>"


class CaseVersion(db.Model):
    """One version of the complaint text and fields, as filed or amended."""

    __tablename__ = "case_versions"
    __table_args__ = (UniqueConstraint("case_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    number: Mapped[int] = mapped_column()
    fields: Mapped[dict] = mapped_column(JSON)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    case = relationship("Case", back_populates="versions")


class CaseEvent(db.Model):
    """Append-only timeline entry, SHA-256 chained to the previous one."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: 1, 2, 3 ... within the case.
    seq: Mapped[int] = mapped_column()
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: None for the system (SLA sweep, routing).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: The actor's relation to the case when acting (consumer, merchant, platform...).
    actor_role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    case = relationship("Case", back_populates="events")
    actor = relationship("User")


class Evidence(db.Model):
    """A file attached to a case; the bytes live under EVIDENCE_DIR by SHA-256."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    uploader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    #: Type sniffed from the content, never taken from the name.
    content_type: Mapped[str] = mapped_column(String(100))
    original_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    case = relationship("Case", back_populates="evidence")
    uploader = relationship("User")


class OfferStatus(str, enum.Enum):
    open = "open"
    accepted = "accepted"
    rejected = "rejected"
    lapsed = "lapsed"


class Offer(db.Model):
    """A merchant's settlement offer or a mediator's proposal."""

    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: ``offer`` (merchant or platform) or ``proposal`` (mediator).
    kind: Mapped[str] = mapped_column(String(20))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    type: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Date by which the merchant fulfils if accepted.
    deadline: Mapped[date] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=OfferStatus.open.value)
    #: Proposals need both parties; these record each acceptance.
    consumer_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    merchant_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)

    case = relationship("Case", back_populates="offers")
    author = relationship("User")


class IdempotencyKey(db.Model):
    """Remembers an API filing so that a retry with the same key files once."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    #: SHA-256 of the request body: the same key with another body is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
