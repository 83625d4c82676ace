"""The queries of the dashboard and of ``GET /api/v1/stats``.

Everything here reads the two summary tables (``stats_cases``,
``stats_stage_spans``), never the wide ``cases`` table. Each metric counts what
happened in the period, by its own date:

* complaints: cases *filed* in the period;
* outcomes and amounts recovered: cases *closed* in the period;
* satisfaction: ratings *given* in the period;
* SLA: stages that *ended* in the period.

Every query covers the chosen period and the previous period of the same length
in one pass (``current``/``previous``), so each chart shows the change.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func

from mediation.analytics import stats_regions as regions
from mediation.analytics.stats_labels import OUTCOMES, STAGES
from mediation.analytics.stats_models import CaseStats, StageSpan
from mediation.extensions import db

#: Groupings of ``GET /api/v1/stats`` and of the charts (``region`` is resolved
#: to ``province``, ``city`` or ``district`` by the region filter).
DIMENSIONS = ("category", "province", "city", "district", "merchant", "platform")
GROUPINGS = (*DIMENSIONS, "status")
_COLUMN = {
    "category": "category",
    "province": "province_code",
    "city": "city_code",
    "district": "region_code",
    "merchant": "merchant_id",
    "platform": "platform_id",
}
#: Platform filter value for cases without a platform (independent shops).
NO_PLATFORM = 0
PERCENTILES = (0.5, 0.9)


@dataclass(frozen=True)
class Filters:
    """What the statistics are about: a period of local days and dimensions.

    :param date_from: first day (business time zone), inclusive.
    :param date_to: last day, inclusive.
    :param region: a 6-digit division code of any level (province, city,
        county); cases of shops in it.
    :param category: a complaint category code.
    :param platform: a platform's merchant id; :data:`NO_PLATFORM` (0) for
        cases of shops on no platform.
    """

    date_from: date
    date_to: date
    region: str | None = None
    category: str | None = None
    platform: int | None = None
    #: Only these merchants (the API's merchant grouping asks for its top ones).
    merchants: tuple[int, ...] | None = None

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    def previous(self) -> Filters:
        """Return the same filters for the period of equal length just before."""
        return replace(
            self,
            date_from=self.date_from - timedelta(days=self.days),
            date_to=self.date_from - timedelta(days=1),
        )

    @property
    def region_level(self) -> str:
        """Return the level shown below the region filter (the region chart's)."""
        return regions.children(self.region)


# Building blocks ---------------------------------------------------------------


def _dims(table: Any, filters: Filters) -> list[ColumnElement]:
    conditions: list[ColumnElement] = []
    if filters.region:
        level = regions.level_of(filters.region)
        column = getattr(table, regions.COLUMN[level])
        conditions.append(column == filters.region)
    if filters.category:
        conditions.append(table.category == filters.category)
    if filters.platform is not None:
        conditions.append(
            table.platform_id.is_(None)
            if filters.platform == NO_PLATFORM
            else table.platform_id == filters.platform
        )
    if filters.merchants is not None:
        conditions.append(table.merchant_id.in_(filters.merchants))
    return conditions


def _period(column: Any, filters: Filters) -> tuple[ColumnElement, ColumnElement]:
    """Return (both periods' condition, "in the current period" condition)."""
    start = filters.previous().date_from
    return column.between(start, filters.date_to), column >= filters.date_from


def _count_if(condition: ColumnElement) -> ColumnElement:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _sum_if(condition: ColumnElement, value: Any) -> ColumnElement:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def group_column(table: Any, by: str | None) -> Any:
    """Return the column ``table`` groups by for a grouping (None: no grouping)."""
    if by is None:
        return None
    if by == "status":
        return CaseStats.status
    return getattr(table, _COLUMN[by])


def _with_group(columns: list[Any], group: Any) -> list[Any]:
    return [group.label("key"), *columns] if group is not None else columns


# Complaints ---------------------------------------------------------------------


@dataclass
class Count:
    """Complaints filed in a group: in the period and in the previous one."""

    key: Any
    current: int
    previous: int

    @property
    def change(self) -> float | None:
        return change(self.current, self.previous)


def change(current: float | None, previous: float | None) -> float | None:
    """Return the relative change (0.25 = +25 %), or None without a base."""
    if current is None or not previous:
        return None
    return (current - previous) / previous


def complaints_by(
    filters: Filters, by: str, *, limit: int | None = None
) -> list[Count]:
    """Return complaints filed per group, biggest first (then by key).

    :param by: one of :data:`GROUPINGS`.
    :param limit: keep the first ``limit`` groups (merchants: the top ones).
    """
    both, current = _period(CaseStats.filed_on, filters)
    group = group_column(CaseStats, by)
    cur = _count_if(current)
    query = (
        db.select(group.label("key"), cur.label("cur"), _count_if(~current))
        .where(both, *_dims(CaseStats, filters))
        .group_by(group)
        .order_by(cur.desc(), group.asc().nulls_last())
    )
    if limit is not None:
        query = query.limit(limit)
    return [Count(key, int(c), int(p)) for key, c, p in db.session.execute(query)]


def complaints_total(filters: Filters) -> Count:
    """Return the complaints filed in the period and the previous one."""
    both, current = _period(CaseStats.filed_on, filters)
    row = db.session.execute(
        db.select(_count_if(current), _count_if(~current)).where(
            both, *_dims(CaseStats, filters)
        )
    ).one()
    return Count(None, int(row[0]), int(row[1]))


@dataclass
class Bucket:
    """One point of the volume chart: a span of days and its complaints."""

    start: date
    end: date
    current: int = 0
    previous: int = 0
    previous_start: date | None = None
    previous_end: date | None = None


def bucket_unit(filters: Filters) -> str:
    """Return ``day``, ``week`` or ``month``: the step of the volume chart."""
    if filters.days <= 62:
        return "day"
    if filters.days <= 186:
        return "week"
    return "month"


def buckets_of(filters: Filters) -> list[Bucket]:
    """Return the empty buckets of the period (weeks start on Monday, months on
    the 1st; the first and last may be partial) with their previous-period twins."""
    unit = bucket_unit(filters)
    out: list[Bucket] = []
    day = filters.date_from
    shift = timedelta(days=filters.days)
    while day <= filters.date_to:
        if unit == "day":
            end = day
        elif unit == "week":
            end = day + timedelta(days=6 - day.weekday())
        else:
            following = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
            end = following - timedelta(days=1)
        end = min(end, filters.date_to)
        out.append(
            Bucket(
                start=day,
                end=end,
                previous_start=day - shift,
                previous_end=end - shift,
            )
        )
        day = end + timedelta(days=1)
    return out


def volume(filters: Filters) -> list[Bucket]:
    """Return complaints filed per day, week or month, with the previous period
    aligned bucket by bucket (the same offset into its period)."""
    both, _current = _period(CaseStats.filed_on, filters)
    per_day = dict(
        db.session.execute(
            db.select(CaseStats.filed_on, func.count())
            .where(both, *_dims(CaseStats, filters))
            .group_by(CaseStats.filed_on)
        ).all()
    )
    buckets = buckets_of(filters)
    for bucket in buckets:
        bucket.current = _days_total(per_day, bucket.start, bucket.end)
        bucket.previous = _days_total(
            per_day, bucket.previous_start, bucket.previous_end
        )
    return buckets


def _days_total(per_day: dict[date, int], start: date, end: date) -> int:
    total, day = 0, start
    while day <= end:
        total += int(per_day.get(day, 0))
        day += timedelta(days=1)
    return total


# Outcomes and amounts -------------------------------------------------------------


@dataclass
class Outcome:
    """Cases closed with one outcome, and what the consumers recovered in them."""

    outcome: str
    current: int = 0
    previous: int = 0
    recovered: int = 0
    previous_recovered: int = 0


def outcomes(filters: Filters, by: str | None = None) -> dict[Any, list[Outcome]]:
    """Return the cases closed in the period per outcome (every outcome listed).

    :param by: a grouping, or None for one group keyed None.
    :return: group key -> outcomes in :data:`OUTCOMES` order.
    """
    both, current = _period(CaseStats.closed_on, filters)
    group = group_column(CaseStats, by)
    columns = [
        CaseStats.outcome,
        _count_if(current),
        _count_if(~current),
        _sum_if(current, CaseStats.recovered),
        _sum_if(~current, CaseStats.recovered),
    ]
    query = (
        db.select(*_with_group(columns, group))
        .where(both, *_dims(CaseStats, filters))
        .group_by(*([group] if group is not None else []), CaseStats.outcome)
    )
    found: dict[Any, dict[str, Outcome]] = defaultdict(dict)
    for row in db.session.execute(query):
        key, values = (row[0], row[1:]) if group is not None else (None, row)
        name, cur, prev, rec, prev_rec = values
        found[key][name] = Outcome(
            name or "other", int(cur), int(prev), int(rec), int(prev_rec)
        )
    if by is None:
        found.setdefault(None, {})
    result: dict[Any, list[Outcome]] = {}
    for key, by_outcome in found.items():
        ordered = [by_outcome.get(name) or Outcome(name) for name in OUTCOMES]
        ordered += [o for name, o in by_outcome.items() if name not in OUTCOMES]
        result[key] = ordered
    return result


# Satisfaction -----------------------------------------------------------------------


@dataclass
class Satisfaction:
    """Ratings (1 to 5) given in the period and in the previous one."""

    current: dict[int, int] = field(
        default_factory=lambda: dict.fromkeys(range(1, 6), 0)
    )
    previous: dict[int, int] = field(
        default_factory=lambda: dict.fromkeys(range(1, 6), 0)
    )

    @staticmethod
    def _average(counts: dict[int, int]) -> float | None:
        total = sum(counts.values())
        if not total:
            return None
        return sum(score * n for score, n in counts.items()) / total

    @property
    def ratings(self) -> int:
        return sum(self.current.values())

    @property
    def previous_ratings(self) -> int:
        return sum(self.previous.values())

    @property
    def average(self) -> float | None:
        return self._average(self.current)

    @property
    def previous_average(self) -> float | None:
        return self._average(self.previous)


def satisfaction(filters: Filters, by: str | None = None) -> dict[Any, Satisfaction]:
    """Return the distribution of ratings given in the period, per group."""
    both, current = _period(CaseStats.rated_on, filters)
    group = group_column(CaseStats, by)
    columns = [CaseStats.satisfaction, _count_if(current), _count_if(~current)]
    query = (
        db.select(*_with_group(columns, group))
        .where(both, CaseStats.satisfaction.is_not(None), *_dims(CaseStats, filters))
        .group_by(*([group] if group is not None else []), CaseStats.satisfaction)
    )
    result: dict[Any, Satisfaction] = defaultdict(Satisfaction)
    if by is None:
        result[None] = Satisfaction()
    for row in db.session.execute(query):
        key, values = (row[0], row[1:]) if group is not None else (None, row)
        score, cur, prev = values
        if score in range(1, 6):
            result[key].current[score] = int(cur)
            result[key].previous[score] = int(prev)
    return dict(result)


# SLA ------------------------------------------------------------------------


@dataclass
class Sla:
    """How the stages that ended in the period kept their deadlines."""

    stage: str
    #: Stages that ended in the period (with or without a deadline).
    ended: int = 0
    #: ... of which had a deadline, and of those kept it.
    with_deadline: int = 0
    on_time: int = 0
    #: Time to act (seconds, the clock's pauses left out): median and 90th
    #: percentile, interpolated like PostgreSQL's ``percentile_cont``.
    median_seconds: float | None = None
    p90_seconds: float | None = None
    previous_with_deadline: int = 0
    previous_on_time: int = 0

    @property
    def breached(self) -> int:
        return self.with_deadline - self.on_time

    @property
    def share(self) -> float | None:
        return self.on_time / self.with_deadline if self.with_deadline else None

    @property
    def previous_share(self) -> float | None:
        if not self.previous_with_deadline:
            return None
        return self.previous_on_time / self.previous_with_deadline


def sla(filters: Filters, by: str | None = None) -> dict[Any, list[Sla]]:
    """Return per stage how many stages ended in the period, how many kept their
    deadline, and the median and 90th percentile of the time to act.

    :return: group key -> one :class:`Sla` per stage that ended in either
        period, in the order of :data:`~mediation.analytics.stats_labels.STAGES`.
    """
    both, current = _period(StageSpan.ended_on, filters)
    group = group_column(StageSpan, by)
    has_deadline = StageSpan.on_time.is_not(None)
    kept = StageSpan.on_time.is_(True)
    columns = [
        StageSpan.stage,
        _count_if(current),
        _count_if(and_(current, has_deadline)),
        _count_if(and_(current, kept)),
        _count_if(and_(~current, has_deadline)),
        _count_if(and_(~current, kept)),
    ]
    query = (
        db.select(*_with_group(columns, group))
        .where(both, *_dims(StageSpan, filters))
        .group_by(*([group] if group is not None else []), StageSpan.stage)
    )
    if by == "status":
        query = query.join(CaseStats, CaseStats.case_id == StageSpan.case_id)
    found: dict[Any, dict[str, Sla]] = defaultdict(dict)
    for row in db.session.execute(query):
        key, values = (row[0], row[1:]) if group is not None else (None, row)
        stage, ended, with_deadline, on_time, prev_with, prev_on = values
        found[key][stage] = Sla(
            stage,
            int(ended),
            int(with_deadline),
            int(on_time),
            previous_with_deadline=int(prev_with),
            previous_on_time=int(prev_on),
        )
    for (key, stage), (median, p90) in _percentiles(filters, by).items():
        if stage in found.get(key, {}):
            found[key][stage].median_seconds = median
            found[key][stage].p90_seconds = p90
    if by is None:
        found.setdefault(None, {})
    order = {stage: n for n, stage in enumerate(STAGES)}
    return {
        key: sorted(stages.values(), key=lambda s: (order.get(s.stage, 99), s.stage))
        for key, stages in found.items()
    }


def _percentiles(
    filters: Filters, by: str | None
) -> dict[tuple[Any, str], tuple[float | None, float | None]]:
    """Return (group, stage) -> (median, p90) of the current period's time to act.

    PostgreSQL computes them (``percentile_cont``); elsewhere the values are
    read in order and interpolated the same way here.
    """
    group = group_column(StageSpan, by)
    where = [
        StageSpan.ended_on.between(filters.date_from, filters.date_to),
        *_dims(StageSpan, filters),
    ]
    keys = [*([group] if group is not None else []), StageSpan.stage]
    dialect = db.session.get_bind().dialect.name
    out: dict[tuple[Any, str], tuple[float | None, float | None]] = {}
    if dialect == "postgresql":
        columns = [
            func.percentile_cont(p).within_group(StageSpan.active_seconds)
            for p in PERCENTILES
        ]
        query = db.select(*keys, *columns).where(*where).group_by(*keys)
        if by == "status":
            query = query.join(CaseStats, CaseStats.case_id == StageSpan.case_id)
        for row in db.session.execute(query):
            key = row[0] if group is not None else None
            stage, median, p90 = row[-3:]
            out[(key, stage)] = (_float(median), _float(p90))
        return out
    query = (
        db.select(*keys, StageSpan.active_seconds)
        .where(*where)
        .order_by(*keys, StageSpan.active_seconds)
    )
    if by == "status":
        query = query.join(CaseStats, CaseStats.case_id == StageSpan.case_id)
    values: dict[tuple[Any, str], list[int]] = defaultdict(list)
    for row in db.session.execute(query):
        key = row[0] if group is not None else None
        values[(key, row[-2])].append(row[-1])
    for name, sorted_values in values.items():
        out[name] = tuple(percentile(sorted_values, p) for p in PERCENTILES)
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def percentile(sorted_values: list[int] | list[float], p: float) -> float | None:
    """Return the ``p`` percentile of sorted values with linear interpolation
    (PostgreSQL's ``percentile_cont``)."""
    if not sorted_values:
        return None
    position = p * (len(sorted_values) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    fraction = position - low
    return float(
        sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction
    )


def sla_overall(rows: Iterable[Sla]) -> Sla:
    """Return the stages of a group added up (for the headline: on-time share)."""
    total = Sla("all")
    for row in rows:
        total.ended += row.ended
        total.with_deadline += row.with_deadline
        total.on_time += row.on_time
        total.previous_with_deadline += row.previous_with_deadline
        total.previous_on_time += row.previous_on_time
    return total
