"""Arbitration records: awards (every version), information requests, objections
to the arbitrator and requests to correct an award.

Each row is written by a lifecycle action's handler (``mediation.arbitration.
services``), in the same transaction as the action's timeline event.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class Decision(str, enum.Enum):
    """What an award does with the consumer's claim."""

    granted = "granted"
    partly_granted = "partly_granted"
    rejected = "rejected"


class OrderType(str, enum.Enum):
    """What an award orders (the remedy types, and the costs of the arbitration)."""

    refund = "refund"
    replacement = "replacement"
    repair = "repair"
    compensation = "compensation"
    apology = "apology"
    costs = "costs"
    other = "other"


class RequestStatus(str, enum.Enum):
    open = "open"
    answered = "answered"
    lapsed = "lapsed"


class DecisionStatus(str, enum.Enum):
    """Objections and correction requests: open until decided."""

    open = "open"
    upheld = "upheld"
    dismissed = "dismissed"


class Award(db.Model):
    """One version of a case's award; a correction adds a version, never edits one.

    ``content`` is exactly what was hashed (canonical JSON, see
    :func:`mediation.arbitration.services.award_sha256`); the document (page and
    PDF) prints it and ``sha256``, and the timeline event of the issue or
    correction carries the same hash.
    """

    __tablename__ = "awards"
    __table_args__ = (UniqueConstraint("case_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: 1 as issued; 2, 3 ... for each correction.
    version: Mapped[int] = mapped_column()
    #: ``granted``, ``partly_granted`` or ``rejected``.
    decision: Mapped[str] = mapped_column(String(20))
    findings: Mapped[str] = mapped_column(Text)
    reasons: Mapped[str] = mapped_column(Text)
    #: List of ``{"type", "amount" (fen), "deadline" (YYYY-MM-DD), "text"}``.
    orders: Mapped[list] = mapped_column(JSON, default=list)
    arbitrator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: End of the correction window (5 working days after the first version).
    correction_until: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The canonical content that ``sha256`` is the hash of.
    content: Mapped[dict] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64), index=True)

    case = relationship("Case")
    arbitrator = relationship("User")

    def total(self, *types: str) -> int:
        """Return the sum (fen) of the orders of ``types`` (all when none given)."""
        return sum(
            int(o.get("amount") or 0)
            for o in self.orders or []
            if not types or o.get("type") in types
        )


class InfoRequest(db.Model):
    """The arbitrator asks a party for a document or an answer, by a deadline.

    While any request of the case is open, the award deadline is stopped; the
    case's ``info_due_at`` is the earliest open request's ``due_at`` (the sweep
    lapses a request whose deadline passed).
    """

    __tablename__ = "info_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: ``consumer`` or ``merchant`` (the merchant side, platform included).
    party: Mapped[str] = mapped_column(String(20))
    question: Mapped[str] = mapped_column(Text)
    #: The last day to answer (business time zone).
    deadline: Mapped[date] = mapped_column(Date)
    #: The end of ``deadline`` (23:59:59 local), in UTC.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.open.value)
    answer_text: Mapped[str | None] = mapped_column(Text)
    #: Evidence ids attached to the answer (files of the case).
    answer_evidence_ids: Mapped[list] = mapped_column(JSON, default=list)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    case = relationship("Case")
    requested_by = relationship("User", foreign_keys=[requested_by_id])
    answered_by = relationship("User", foreign_keys=[answered_by_id])


class Objection(db.Model):
    """A party objects to the arbitrator (once per party); a regulator decides."""

    __tablename__ = "arbitrator_objections"
    __table_args__ = (UniqueConstraint("case_id", "party"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    party: Mapped[str] = mapped_column(String(20))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The arbitrator objected to.
    arbitrator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default=DecisionStatus.open.value)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)
    #: Who took over when the objection was upheld.
    replacement_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    case = relationship("Case")
    author = relationship("User", foreign_keys=[author_id])
    arbitrator = relationship("User", foreign_keys=[arbitrator_id])
    replacement = relationship("User", foreign_keys=[replacement_id])


class AwardCorrection(db.Model):
    """A party asks for a clerical or computational error of the award to be
    corrected; the arbitrator corrects it (a new version) or refuses, with reasons.
    """

    __tablename__ = "award_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: The version the request is about.
    award_id: Mapped[int] = mapped_column(ForeignKey("awards.id"))
    party: Mapped[str] = mapped_column(String(20))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: ``open``, ``upheld`` (corrected: a new version) or ``dismissed`` (refused).
    status: Mapped[str] = mapped_column(String(20), default=DecisionStatus.open.value)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)
    #: The version that corrected the award (when upheld).
    new_award_id: Mapped[int | None] = mapped_column(ForeignKey("awards.id"))

    case = relationship("Case")
    award = relationship("Award", foreign_keys=[award_id])
    new_award = relationship("Award", foreign_keys=[new_award_id])
    author = relationship("User")


@event.listens_for(Award, "before_update")
def _award_is_immutable(mapper, connection, target: Award) -> None:
    """An issued award is never edited: a correction adds a version."""
    raise AwardImmutable(f"award {target.id} (version {target.version}) is issued")


class AwardImmutable(RuntimeError):
    """Somebody tried to change an issued award in place."""
