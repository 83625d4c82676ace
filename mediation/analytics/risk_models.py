"""Tables of the risk list and warning interviews (issue #7).

- :class:`RiskScore`: each merchant's stored risk score with its factors, so the
  list sorts and filters without computing anything (refreshed by the
  scheduler's job, by ``flask refresh-risk`` and for one merchant on demand).
  Only merchants with a score above 0 have a row.
- :class:`RiskScoreCategory`: the complaints of the long window per category of
  each scored merchant (the list's category filter).
- :class:`RiskRefresh`: one row per full refresh (when the list was computed).
- :class:`WarningInterview`: a regulator's warning interview (约谈警示) with a
  merchant: planned, then held (with its outcome) or cancelled.

The tables of complaint text tagging live in :mod:`mediation.analytics.tagging_models`
(imported here so that the metadata sees them).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.analytics.tagging_models import CaseTag, TextFlag  # noqa: F401
from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class RiskScore(db.Model):
    """A merchant's current risk score and the factors behind it."""

    __tablename__ = "risk_scores"
    __table_args__ = (
        Index("ix_risk_scores_score_merchant", "score_tenths", "merchant_id"),
    )

    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id"), primary_key=True
    )
    #: Score with one decimal, times ten: 425 = 42.5 (0-1000).
    score_tenths: Mapped[int] = mapped_column()
    #: ``high``, ``elevated``, ``watch``, ``low`` (the model's levels).
    level: Mapped[str] = mapped_column(String(20))
    #: ``up``, ``down``, ``flat``: the short window against the one before it.
    trend: Mapped[str] = mapped_column(String(8))
    complaints_recent: Mapped[int] = mapped_column(default=0)
    complaints_previous: Mapped[int] = mapped_column(default=0)
    complaints_long: Mapped[int] = mapped_column(default=0)
    sla_breaches: Mapped[int] = mapped_column(default=0)
    noncompliance: Mapped[int] = mapped_column(default=0)
    grade: Mapped[str | None] = mapped_column(String(1))
    listed: Mapped[bool] = mapped_column(default=False)
    #: ``{factor: {"value", "points", "cap", "capped"}}`` in the model's order.
    factors: Mapped[dict] = mapped_column(JSON, default=dict)
    #: SHA-256 of the row's content and categories: a refresh rewrites a row
    #: only when it changes.
    digest: Mapped[str] = mapped_column(String(64))
    #: The moment these values were computed for (the ``now`` of the refresh
    #: that last changed them).
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    merchant = relationship("Merchant")

    @property
    def score(self) -> float:
        return self.score_tenths / 10


class RiskScoreCategory(db.Model):
    """Complaints of a scored merchant in one category (long window)."""

    __tablename__ = "risk_score_categories"
    __table_args__ = (Index("ix_risk_score_categories_category", "category"),)

    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(30), primary_key=True)
    complaints: Mapped[int] = mapped_column()


class RiskRefresh(db.Model):
    """One full refresh of the risk list (the job, or ``flask refresh-risk``)."""

    __tablename__ = "risk_refreshes"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The moment the scores were computed for.
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Merchants with a score above 0; rows written or changed; rows removed.
    scored: Mapped[int] = mapped_column(default=0)
    changed: Mapped[int] = mapped_column(default=0)
    removed: Mapped[int] = mapped_column(default=0)


class WarningInterview(db.Model):
    """A warning interview (约谈警示) of a merchant by the regulator.

    ``planned`` until a regulator records that it was ``held`` (date, summary,
    the merchant's commitments, a follow-up date) or ``cancelled`` (reason).
    A merchant has at most one planned interview at a time.
    """

    __tablename__ = "warning_interviews"
    __table_args__ = (
        Index("ix_warning_interviews_merchant_status", "merchant_id", "status"),
        Index("ix_warning_interviews_status_planned", "status", "planned_for"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    #: ``planned``, ``held``, ``cancelled``.
    status: Mapped[str] = mapped_column(String(20), default="planned")
    #: Why the merchant is called in (shown to the merchant).
    reason: Mapped[str] = mapped_column(Text)
    #: The day planned for the interview (business time zone).
    planned_for: Mapped[date] = mapped_column(Date)
    planned_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The risk score and its largest factors when the merchant was marked.
    risk_score_tenths: Mapped[int | None] = mapped_column()
    risk_factors: Mapped[list] = mapped_column(JSON, default=list)
    held_on: Mapped[date | None] = mapped_column(Date)
    summary: Mapped[str | None] = mapped_column(Text)
    #: What the merchant undertook to do (整改承诺).
    commitments: Mapped[str | None] = mapped_column(Text)
    #: When the regulator checks on the commitments.
    follow_up_on: Mapped[date | None] = mapped_column(Date)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    #: Who recorded the outcome or the cancellation, and when.
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    merchant = relationship("Merchant")
    planned_by = relationship("User", foreign_keys=[planned_by_id])
    closed_by = relationship("User", foreign_keys=[closed_by_id])


__all__ = [
    "CaseTag",
    "RiskRefresh",
    "RiskScore",
    "RiskScoreCategory",
    "TextFlag",
    "WarningInterview",
]
