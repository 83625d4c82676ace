"""Tables of the supervision statistics: one narrow row per case, one per stage span.

Both are summaries of the case timelines, kept current by the case services'
hook (:func:`mediation.analytics.stats.on_case_event`) and rebuilt from the
timelines by ``flask rebuild-stats`` (the same derivation). The dashboard and
``GET /api/v1/stats`` read only these tables: the ``cases`` table is wide
(texts, many columns) and knows nothing about how long each stage took.

The monthly summaries (:class:`SpanMonth`, :class:`CaseMonth`, one
:class:`StatsMonth` per month saying whether they are current) add up the two
narrow tables per local month for the filters that cover many cases (none, a
category, a province, a platform); :mod:`mediation.analytics.stats_summaries`
derives them, :mod:`mediation.analytics.stats_queries` reads whole months from
them and everything else from the narrow tables.

Dates (``*_on``) are days in the business time zone (``TIME_ZONE``), so that a
period of days is a plain range on an index; times (``*_at``) are UTC.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class CaseStats(db.Model):
    """The facts of one case that the statistics count, and its open stage."""

    __tablename__ = "stats_cases"
    __table_args__ = (
        Index("ix_stats_cases_filed_on_category", "filed_on", "category"),
        # The merchants chart under a filter: an index-only scan of the filter's
        # index (PostgreSQL ``INCLUDE``).
        *(
            Index(
                f"ix_stats_cases_{name}_filed_on",
                column,
                "filed_on",
                postgresql_include=["merchant_id"],
            )
            for name, column in (
                ("category", "category"),
                ("province", "province_code"),
                ("city", "city_code"),
                ("platform", "platform_id"),
            )
        ),
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


#: What the SLA query reads of a span besides its filters: carried in the
#: indexes (PostgreSQL ``INCLUDE``), so that a filtered period is an index-only
#: scan instead of a visit to every heap page holding one of its spans.
SPAN_INCLUDE = ("stage", "on_time", "time_bucket")


def _span_index(name: str, *columns: str) -> Index:
    include = [c for c in SPAN_INCLUDE if c not in columns]
    return Index(name, *columns, postgresql_include=include)


class StageSpan(db.Model):
    """One SLA stage of one case, from its start to the action that ended it."""

    __tablename__ = "stats_stage_spans"
    __table_args__ = (
        _span_index("ix_stats_stage_spans_ended_on_stage", "ended_on", "stage"),
        _span_index("ix_stats_stage_spans_category_ended_on", "category", "ended_on"),
        _span_index(
            "ix_stats_stage_spans_province_ended_on", "province_code", "ended_on"
        ),
        _span_index("ix_stats_stage_spans_city_ended_on", "city_code", "ended_on"),
        _span_index(
            "ix_stats_stage_spans_platform_ended_on", "platform_id", "ended_on"
        ),
        _span_index(
            "ix_stats_stage_spans_merchant_ended_on", "merchant_id", "ended_on"
        ),
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
    #: ``active_seconds`` as a histogram bucket (``stats_spans.time_bucket``).
    time_bucket: Mapped[int] = mapped_column(SmallInteger)
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


# Monthly summaries ------------------------------------------------------------------

#: The filters the monthly summaries are kept for: ``all`` (no filter) and one
#: dimension each. ``scope_key`` holds the filter's value as text: a category
#: code, a province code, a platform id; ``""`` for none (unknown region, no
#: platform) and for ``all``.
SCOPES = ("all", "category", "province", "platform")


class StatsMonth(db.Model):
    """Whether the monthly summaries of one month are current.

    The dashboard reads a month from the summaries only when its row says they
    are built and not stale; otherwise from the narrow tables.
    """

    __tablename__ = "stats_months"

    #: The first day of the month (business time zone).
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    #: When the summaries were last derived (None: never).
    built_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: A narrow row of the month changed after it was summarized.
    is_stale: Mapped[bool] = mapped_column(Boolean, default=False)


class SpanMonth(db.Model):
    """Stage spans that ended in a month, per filter and stage, with the
    histogram of their time to act."""

    __tablename__ = "stats_span_months"
    __table_args__ = (Index("ix_stats_span_months_month", "month"),)

    scope: Mapped[str] = mapped_column(String(10), primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(30), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    stage: Mapped[str] = mapped_column(String(30), primary_key=True)
    spans: Mapped[int] = mapped_column(Integer)
    #: ... of which had a deadline, and of those kept it.
    with_deadline: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)
    #: ``[time bucket, spans, time bucket, spans, ...]`` by bucket
    #: (``stats_spans.time_bucket``): a few hundred pairs, where the narrow
    #: table has a row per span.
    times: Mapped[list] = mapped_column(JSON)


class CaseMonth(db.Model):
    """Cases counted in a month, per filter: filed (per category, province,
    city, platform and day), closed (per outcome, with the fen recovered) and
    rated (per score)."""

    __tablename__ = "stats_case_months"
    __table_args__ = (Index("ix_stats_case_months_month", "month"),)

    scope: Mapped[str] = mapped_column(String(10), primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(30), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    #: What ``item`` is: ``category``, ``province``, ``city``, ``platform``,
    #: ``day`` (complaints filed, by that), ``outcome`` (cases closed),
    #: ``rating`` (ratings given, by score).
    measure: Mapped[str] = mapped_column(String(10), primary_key=True)
    #: The group as text (``""`` for none).
    item: Mapped[str] = mapped_column(String(40), primary_key=True)
    cases: Mapped[int] = mapped_column(Integer)
    #: Fen recovered (``outcome`` rows; 0 otherwise).
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
