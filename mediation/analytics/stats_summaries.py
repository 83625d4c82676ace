"""Monthly summaries of the statistics, derived from the narrow tables.

A long period (12 months against the 12 before) would make every dashboard
query read most of ``stats_cases`` and ``stats_stage_spans``. So each local
month, once it has ended, is added up once into two small tables, for the
filters that cover many cases (:data:`~mediation.analytics.stats_models.SCOPES`:
none, a category, a province, a platform):

* ``stats_span_months``: per stage, the spans that ended in the month, how many
  had a deadline and how many kept it, and the histogram of their time to act
  (percentiles within 1 %, see :func:`stats_spans.histogram_percentile`);
* ``stats_case_months``: the complaints filed per category, province, city (in
  the province scope), platform and day; the cases closed per outcome with the
  fen recovered; the ratings given per score.

One derivation, :func:`summarize_month`, used by the scheduled job
(:func:`summarize_due_months`), by ``rebuild-stats`` and by the benchmark's
generator. The case services never write the summaries (no row of them is hot
while complaints are filed and swept). Queries read a month from the summaries
only when its :class:`~mediation.analytics.stats_models.StatsMonth` says they
are built and current; otherwise, and for the days of a period that do not fill
a month, from the narrow tables.

What can change in a month after it ended:

* nothing the live path adds: spans end, cases close and are rated *now*, so
  in the current month, which is never summarized. A month is summarized only
  :data:`SEAL_DELAY` after it ended, so that a transaction that took its time
  (a sweep with its ``now`` fixed at its start) has committed by then;
* a complaint's dimensions (amended category, merchant linked by the intake):
  its row (by filing day) and its earlier spans move with it;
* a case derived from its timeline late (filed before the statistics
  existed), and ``rebuild-stats``.

Those paths call :func:`mark_stale` for the months they touched, in their own
transaction: the month is read from the narrow tables until the job (or
``rebuild-stats``) derives it again. On PostgreSQL the month's
:class:`~mediation.analytics.stats_models.StatsMonth` row is the lock both sides
take, so a derivation never misses a change committed while it ran.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import String, case, cast, func, literal, union_all
from sqlalchemy.dialects import postgresql, sqlite

from mediation.analytics import stats
from mediation.analytics.stats_models import (
    CaseMonth,
    CaseStats,
    SpanMonth,
    StageSpan,
    StatsMonth,
)
from mediation.extensions import db

logger = logging.getLogger(__name__)

#: How long after its last day a month waits before it is summarized.
SEAL_DELAY = timedelta(days=1)
#: Measures of ``stats_case_months`` counted by filing day, per scope.
COMPLAINT_MEASURES = {
    "all": ("category", "province", "platform", "day"),
    "category": ("category", "province", "platform", "day"),
    "province": ("category", "province", "city", "platform", "day"),
    "platform": ("category", "province", "platform", "day"),
}


# Months -------------------------------------------------------------------------


def month_of(day: date) -> date:
    """Return the first day of the month of ``day``."""
    return day.replace(day=1)


def next_month(month: date) -> date:
    """Return the first day of the month after ``month``."""
    return (month.replace(day=1) + timedelta(days=32)).replace(day=1)


def last_day(month: date) -> date:
    """Return the last day of the month of ``month``."""
    return next_month(month) - timedelta(days=1)


def months_between(first: date, last: date) -> list[date]:
    """Return the first days of the months from ``first``'s to ``last``'s."""
    out, month = [], month_of(first)
    while month <= last:
        out.append(month)
        month = next_month(month)
    return out


def last_sealed_month(now: datetime) -> date:
    """Return the latest month that may be summarized at ``now`` (UTC).

    :data:`SEAL_DELAY` after its last local day has ended.
    """
    return month_of(month_of(stats.local_day(now - SEAL_DELAY)) - timedelta(days=1))


def summarized_months(first: date, last: date) -> set[date]:
    """Return the months between ``first`` and ``last`` whose summaries are
    built and current (the ones a query may read instead of the narrow rows)."""
    return set(
        db.session.scalars(
            db.select(StatsMonth.month).where(
                StatsMonth.month.between(month_of(first), last),
                StatsMonth.built_at.is_not(None),
                StatsMonth.is_stale.is_(False),
            )
        )
    )


# Keeping them honest ---------------------------------------------------------------


def _insert(model: Any) -> Any:
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model)


def mark_stale(days: Iterable[date | None], *, before: date | None = None) -> None:
    """Mark the months of ``days`` as changed since they were summarized.

    Called in the transaction that changed narrow rows of those days; queries
    read those months from the narrow tables until they are derived again.

    :param before: only months before this one (the current month is never
        summarized; leaving it out keeps its row cold).
    """
    months = sorted({month_of(d) for d in days if d is not None})
    if before is not None:
        months = [m for m in months if m < month_of(before)]
    if not months:
        return
    statement = _insert(StatsMonth).values(
        [{"month": m, "built_at": None, "is_stale": True} for m in months]
    )
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[StatsMonth.month], set_={"is_stale": True}
        )
    )


def _lock(month: date) -> StatsMonth:
    """Return the month's row, locked until the commit (PostgreSQL)."""
    db.session.execute(
        _insert(StatsMonth)
        .values(month=month, built_at=None, is_stale=True)
        .on_conflict_do_nothing(index_elements=[StatsMonth.month])
    )
    return db.session.scalars(
        db.select(StatsMonth)
        .where(StatsMonth.month == month)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


# The derivation ------------------------------------------------------------------


def _key(scope: str, table: Any) -> Any:
    """Return the scope's key of a narrow row, as text ("" for none)."""
    if scope == "all":
        return literal("", String)
    if scope == "category":
        return table.category
    if scope == "province":
        return func.coalesce(table.province_code, "")
    return func.coalesce(cast(table.platform_id, String), "")


def _spans_select(month: date) -> Any:
    """Return the SELECT of a month's spans per scope, stage and time bucket."""
    s = StageSpan
    parts = []
    for scope in ("all", "category", "province", "platform"):
        key = _key(scope, s)
        groups = [*([key] if scope != "all" else []), s.stage, s.time_bucket]
        parts.append(
            db.select(
                literal(scope, String).label("scope"),
                key.label("scope_key"),
                s.stage,
                s.time_bucket,
                func.count().label("spans"),
                func.count(s.on_time).label("with_deadline"),
                func.coalesce(
                    func.sum(case((s.on_time.is_(True), 1), else_=0)), 0
                ).label("on_time"),
            )
            .where(s.ended_on.between(month, last_day(month)))
            .group_by(*groups)
        )
    return union_all(*parts)


def _span_rows(month: date) -> list[dict[str, Any]]:
    """Return a month's ``stats_span_months`` rows, derived from the spans."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for scope, key, stage, bucket, spans, with_deadline, on_time in db.session.execute(
        _spans_select(month)
    ):
        row = rows.setdefault(
            (scope, key, stage),
            {
                "scope": scope,
                "scope_key": key,
                "month": month,
                "stage": stage,
                "spans": 0,
                "with_deadline": 0,
                "on_time": 0,
                "times": [],
            },
        )
        row["spans"] += int(spans)
        row["with_deadline"] += int(with_deadline)
        row["on_time"] += int(on_time)
        row["times"].append((int(bucket), int(spans)))
    for row in rows.values():
        # Flat: one list of ints per row (no list per bucket: reading a year of
        # them must not make the garbage collector walk the whole process).
        row["times"] = [n for pair in sorted(row["times"]) for n in pair]
    return list(rows.values())


def _item(measure: str) -> Any:
    c = CaseStats
    return {
        "category": c.category,
        "province": func.coalesce(c.province_code, ""),
        "city": func.coalesce(c.city_code, ""),
        "platform": func.coalesce(cast(c.platform_id, String), ""),
        "day": cast(c.filed_on, String),
        "outcome": func.coalesce(c.outcome, ""),
        "rating": cast(c.satisfaction, String),
    }[measure]


def _cases_select(month: date) -> Any:
    """Return the SELECT of a month's ``stats_case_months`` rows."""
    c = CaseStats
    days = (month, last_day(month))
    parts = []
    for scope, complaint_measures in COMPLAINT_MEASURES.items():
        key = _key(scope, c)
        for measure in (*complaint_measures, "outcome", "rating"):
            item = _item(measure)
            if measure == "outcome":
                where = [c.closed_on.between(*days)]
                amount = func.coalesce(func.sum(c.recovered), 0)
            elif measure == "rating":
                where = [c.rated_on.between(*days), c.satisfaction.is_not(None)]
                amount = literal(0)
            else:
                where = [c.filed_on.between(*days)]
                amount = literal(0)
            parts.append(
                db.select(
                    literal(scope, String).label("scope"),
                    key.label("scope_key"),
                    literal(measure, String).label("measure"),
                    item.label("item"),
                    func.count().label("cases"),
                    amount.label("amount"),
                )
                .where(*where)
                .group_by(*([key] if scope != "all" else []), item)
            )
    return union_all(*parts)


def _case_rows(month: date) -> list[dict[str, Any]]:
    """Return a month's ``stats_case_months`` rows, derived from the cases."""
    return [
        {
            "scope": scope,
            "scope_key": key,
            "month": month,
            "measure": measure,
            "item": item,
            "cases": int(cases),
            "amount": int(amount),
        }
        for scope, key, measure, item, cases, amount in db.session.execute(
            _cases_select(month)
        )
    ]


def _rewrite(model: Any, rows: list[dict[str, Any]], month: date) -> bool:
    """Replace a month's rows of ``model`` with ``rows`` when they differ."""
    columns = [column.name for column in model.__table__.columns]
    stored = db.session.execute(
        db.select(*(getattr(model, name) for name in columns)).where(
            model.month == month
        )
    ).all()
    derived = [tuple(row[name] for name in columns) for row in rows]
    if sorted(map(tuple, stored)) == sorted(derived):
        return False
    if stored:
        db.session.execute(db.delete(model).where(model.month == month))
    if rows:
        db.session.execute(db.insert(model), rows)
    return True


def summarize_month(month: date, *, now: datetime) -> bool:
    """Derive one month's summaries from the narrow tables (writes what differs).

    :param month: any day of the month (business time zone).
    :param now: the time (UTC); the month must have ended :data:`SEAL_DELAY`
        before it.
    :return: whether the stored summaries changed.
    :raise ValueError: for a month that has not ended long enough ago.
    """
    month = month_of(month)
    if month > last_sealed_month(now):
        raise ValueError(f"{month:%Y-%m} has not ended {SEAL_DELAY} ago")
    db.session.flush()
    row = _lock(month)
    changed = _rewrite(SpanMonth, _span_rows(month), month)
    changed = _rewrite(CaseMonth, _case_rows(month), month) or changed
    row.built_at = now
    row.is_stale = False
    db.session.flush()
    return changed


@dataclass
class SummaryReport:
    """What a round of summarizing did."""

    months: list[date] = field(default_factory=list)
    changed: list[date] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"monthly summaries: {len(self.months)} month(s) derived, "
            f"{len(self.changed)} changed"
        )


def months_due(*, now: datetime, every: bool = False) -> list[date]:
    """Return the months to summarize at ``now``, oldest first.

    :param every: every month with statistics up to the last sealed one
        (``rebuild-stats``); otherwise only those never built or stale.
    """
    first = db.session.scalar(db.select(func.min(CaseStats.filed_on)))
    last = last_sealed_month(now)
    if first is None or month_of(first) > last:
        return []
    months = months_between(first, last)
    if every:
        return months
    current = summarized_months(months[0], last)
    return [m for m in months if m not in current]


def summarize_due_months(*, now: datetime, every: bool = False) -> SummaryReport:
    """Derive the summaries of the months that need it (the caller commits).

    :param every: rederive every sealed month (``rebuild-stats``), writing only
        those that differ.
    """
    report = SummaryReport()
    for month in months_due(now=now, every=every):
        report.months.append(month)
        if summarize_month(month, now=now):
            report.changed.append(month)
    return report
