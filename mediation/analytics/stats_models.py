"""Tables of the supervision statistics: one narrow row per case, one per stage span.

Both are summaries of the case timelines, kept current by the case services'
hook (:func:`mediation.analytics.stats.on_case_event`) and rebuilt from the
timelines by ``flask rebuild-stats`` (the same derivation). The dashboard and
``GET /api/v1/stats`` read only these two tables: the ``cases`` table is wide
(texts, many columns) and knows nothing about how long each stage took.

Dates (``*_on``) are days in the business time zone (``TIME_ZONE``), so that a
period of days is a plain range on an index; times (``*_at``) are UTC.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class CaseStats(db.Model):
    """The facts of one case that the statistics count, and its open stage."""

    __tablename__ = "stats_cases"
    __table_args__ = (
        Index("ix_stats_cases_filed_on_category", "filed_on", "category"),
        Index("ix_stats_cases_category_filed_on", "category", "filed_on"),
        Index("ix_stats_cases_province_filed_on", "province_code", "filed_on"),
        Index("ix_stats_cases_city_filed_on", "city_code", "filed_on"),
        Index("ix_stats_cases_platform_filed_on", "platform_id", "filed_on"),
        Index("ix_stats_cases_merchant_filed_on", "merchant_id", "filed_on"),
        Index("ix_stats_cases_closed_on", "closed_on"),
        Index("ix_stats_cases_rated_on", "rated_on"),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The local day of filing (business time zone).
    filed_on: Mapped[date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(30))
    #: The registered shop (None: an unregistered shop).
    merchant_id: Mapped[int | None] = mapped_column(Integer)
    platform_id: Mapped[int | None] = mapped_column(Integer)
    #: Administrative division of the shop, else of its platform; None: unknown.
    region_code: Mapped[str | None] = mapped_column(String(6))
    #: ``region_code`` rolled up to its city (first 4 digits + "00").
    city_code: Mapped[str | None] = mapped_column(String(6))
    #: ``region_code`` rolled up to its province (first 2 digits + "0000").
    province_code: Mapped[str | None] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(30))
    #: How the case ended (``Case.outcome``); None while open.
    outcome: Mapped[str | None] = mapped_column(String(40))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_on: Mapped[date | None] = mapped_column(Date)
    #: Fen recovered for the consumer: the performed settlement or award.
    recovered: Mapped[int] = mapped_column(BigInteger, default=0)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    rated_on: Mapped[date | None] = mapped_column(Date)
    #: The SLA stage running now (None when closed or no stage runs).
    stage: Mapped[str | None] = mapped_column(String(30))
    stage_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The stage's deadline as it stands (None while the clock is stopped).
    stage_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the clock stopped, and the seconds it had left then.
    stage_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stage_paused_remaining: Mapped[int | None] = mapped_column(Integer)
    #: Seconds the clock stood still in this stage (earlier pauses).
    stage_paused_seconds: Mapped[int] = mapped_column(Integer, default=0)


class StageSpan(db.Model):
    """One SLA stage of one case, from its start to the action that ended it."""

    __tablename__ = "stats_stage_spans"
    __table_args__ = (
        Index("ix_stats_stage_spans_ended_on_stage", "ended_on", "stage"),
        Index("ix_stats_stage_spans_category_ended_on", "category", "ended_on"),
        Index("ix_stats_stage_spans_province_ended_on", "province_code", "ended_on"),
        Index("ix_stats_stage_spans_city_ended_on", "city_code", "ended_on"),
        Index("ix_stats_stage_spans_platform_ended_on", "platform_id", "ended_on"),
        Index("ix_stats_stage_spans_merchant_ended_on", "merchant_id", "ended_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: The policy stage (``awaiting_merchant``, ``mediation_pickup`` ...).
    stage: Mapped[str] = mapped_column(String(30))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The deadline in force when the stage ended (moved by clock pauses);
    #: None for a stage without one.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The local day the stage ended (business time zone).
    ended_on: Mapped[date] = mapped_column(Date)
    #: Time to act: seconds from start to end, less the time the clock stood.
    active_seconds: Mapped[int] = mapped_column(Integer)
    #: Ended by its deadline (True) or not; None when the stage had no deadline.
    on_time: Mapped[bool | None] = mapped_column()
    #: The action that ended the stage, and the actor's relation to the case.
    ended_by: Mapped[str] = mapped_column(String(40))
    ended_role: Mapped[str] = mapped_column(String(20))
    # The case's dimensions, copied so that SLA queries filter without a join.
    category: Mapped[str] = mapped_column(String(30))
    merchant_id: Mapped[int | None] = mapped_column(Integer)
    platform_id: Mapped[int | None] = mapped_column(Integer)
    region_code: Mapped[str | None] = mapped_column(String(6))
    city_code: Mapped[str | None] = mapped_column(String(6))
    province_code: Mapped[str | None] = mapped_column(String(6))


#: The columns both tables share, by which the statistics filter and group.
DIMENSIONS = (
    "category",
    "merchant_id",
    "platform_id",
    "region_code",
    "city_code",
    "province_code",
)
