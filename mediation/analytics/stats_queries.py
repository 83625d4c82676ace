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

Where the numbers come from (:func:`plan`): the whole months of either period
that have current monthly summaries (:mod:`mediation.analytics.stats_summaries`)
are read from those, for the filters the summaries are kept for (none, one
category, one province, one platform); the other days (the partial months at
the edges, the month running now) and the other filters (a city, a county, a
merchant, several dimensions at once) from the narrow tables. The two parts are
added up here; counts and sums are the same either way. The median and 90th
percentile of the time to act are read off a histogram (buckets 2 % wide) on
both paths: within 1 % of the exact value, and a month gives the same numbers
before and after it is summarized.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_

from mediation.analytics import stats_regions as regions
from mediation.analytics import stats_spans as spans
from mediation.analytics import stats_summaries as summaries
from mediation.analytics.stats_labels import OUTCOMES, STAGES
from mediation.analytics.stats_models import CaseMonth, CaseStats, SpanMonth, StageSpan
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


def _in(column: Any, days: Days) -> ColumnElement:
    """Return the condition of a range of narrow days (each range is queried on
    its own: one index range scan, an index-only scan where the index carries
    the columns, where an ``OR`` of ranges makes PostgreSQL visit the table)."""
    return column.between(days.start, days.end)


# Summaries or narrow rows -----------------------------------------------------------

#: Groupings that are a scope of the monthly summaries.
SCOPED = ("category", "province", "platform")
CURRENT, PREVIOUS = "current", "previous"


@dataclass(frozen=True)
class Days:
    """Days read from the narrow rows, and how their rows count.

    :param counted: the days lie in a period: each row counts in the period
        of its date.
    :param minus: the days belong to a summarized month counted whole in this
        period (``current``/``previous``): their rows are taken away from it.
    """

    start: date
    end: date
    counted: bool = True
    minus: str | None = None

    def spread(self, cur: list[int], prev: list[int]) -> tuple[list[int], list[int]]:
        """Return what the values of the rows dated in the current and in the
        previous period add to the current and to the previous period."""
        take_cur = 1 if self.minus == CURRENT else 0
        take_prev = 1 if self.minus == PREVIOUS else 0
        keep = 1 if self.counted else 0
        pairs = list(zip(cur, prev, strict=True))
        to_cur = [(keep - take_cur) * c - take_cur * p for c, p in pairs]
        to_prev = [(keep - take_prev) * p - take_prev * c for c, p in pairs]
        return to_cur, to_prev


@dataclass(frozen=True)
class Plan:
    """Where a query reads a period from.

    :param scope: the summaries' scope (None: narrow rows only).
    :param key: the scope's key (None: every key, grouped by it).
    :param months: months read from the summaries, each with whether it counts
        (whole) in the current period.
    :param ranges: days read from the narrow tables.
    """

    scope: str | None
    key: str | None
    months: tuple[tuple[date, bool], ...]
    ranges: tuple[Days, ...]

    @property
    def current_months(self) -> list[date]:
        return [month for month, current in self.months if current]


def scope_of(filters: Filters, by: str | None = None) -> tuple[str, str | None] | None:
    """Return the summaries' (scope, key) that answer a query, or None.

    A query qualifies when it filters by at most one of a category, a province
    and a platform, and groups by nothing or by that same dimension.

    :param by: the grouping of the result (``outcomes``, ``sla``,
        ``satisfaction`` group by the scope's key).
    """
    if filters.merchants is not None:
        return None
    used: dict[str, str] = {}
    if filters.region:
        if regions.level_of(filters.region) != "province":
            return None
        used["province"] = filters.region
    if filters.category:
        used["category"] = filters.category
    if filters.platform is not None:
        used["platform"] = (
            "" if filters.platform == NO_PLATFORM else str(filters.platform)
        )
    if by is not None:
        if by not in SCOPED or any(name != by for name in used):
            return None
        return by, used.get(by)
    if len(used) > 1:
        return None
    if not used:
        return "all", ""
    ((name, key),) = used.items()
    return name, key


def _segments(month: date, filters: Filters) -> list[tuple[date, date, str | None]]:
    """Return a month cut where the periods start and end: (first, last, the
    period the days are in, None outside both)."""
    start, end = filters.previous().date_from, filters.date_to
    last = summaries.last_day(month)
    cuts = {month, last + timedelta(days=1)}
    cuts |= {d for d in (start, filters.date_from, end + timedelta(days=1))}
    points = sorted(d for d in cuts if month <= d <= last + timedelta(days=1))
    out = []
    for first, following in zip(points, points[1:], strict=False):
        upto = following - timedelta(days=1)
        if upto < start or first > end:
            side = None
        else:
            side = CURRENT if first >= filters.date_from else PREVIOUS
        out.append((first, upto, side))
    return out


def plan(
    filters: Filters, scope: tuple[str, str | None] | None, *, per_day: bool = False
) -> Plan:
    """Split both periods into summarized months and narrow day ranges.

    A month whose summaries are built and current is read from them when that
    reads fewer narrow rows: counted whole in one period, less the rows of its
    days outside that period (read from the narrow table; those in the other
    period count there too). Other months, and every month without current
    summaries, are read from the narrow rows of their days in the periods.

    :param per_day: the query reads the summaries' complaints per day: a
        summarized month needs no narrow rows at all.
    """
    start, end = filters.previous().date_from, filters.date_to
    if scope is None:
        return Plan(None, None, (), (Days(start, end),))
    built = summaries.summarized_months(start, end)
    months: list[tuple[date, bool]] = []
    ranges: list[Days] = []

    def add(days: Days) -> None:
        last = ranges[-1] if ranges else None
        if (
            last is not None
            and last == replace(last, counted=True, minus=None)
            and days == replace(days, counted=True, minus=None)
            and last.end + timedelta(days=1) == days.start
        ):
            ranges[-1] = Days(last.start, days.end)
        else:
            ranges.append(days)

    for month in summaries.months_between(start, end):
        segments = _segments(month, filters)
        inside = [(a, b, side) for a, b, side in segments if side is not None]
        if month in built and per_day:
            months.append((month, False))
            continue
        size = (summaries.last_day(month) - month).days + 1
        best: tuple[int, str] | None = None
        for a, b, side in inside:
            cost = size - ((b - a).days + 1)
            if best is None or cost < best[0]:
                best = (cost, side)
        direct = sum((b - a).days + 1 for a, b, _side in inside)
        if month not in built or best is None or direct <= best[0]:
            for a, b, _side in inside:
                add(Days(a, b))
            continue
        whole_in = best[1]
        months.append((month, whole_in == CURRENT))
        for a, b, side in segments:
            if side != whole_in:
                add(Days(a, b, counted=side is not None, minus=whole_in))
    return Plan(scope[0], scope[1], tuple(months), tuple(ranges))


def _summary_where(model: Any, source: Plan) -> list[ColumnElement]:
    where = [
        model.scope == source.scope,
        model.month.in_([month for month, _current in source.months]),
    ]
    if source.key is not None:
        where.append(model.scope_key == source.key)
    return where


def _from_text(dimension: str, text: str) -> Any:
    """Return a summary's key or item as the narrow column's value."""
    if dimension in ("category", "outcome"):
        return text or None
    if dimension in ("platform", "rating"):
        return int(text) if text else None
    if dimension == "day":
        return date.fromisoformat(text)
    return text or None  # province, city


def _sorted_counts(counts: dict[Any, list[int]], limit: int | None) -> list[Count]:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0] is None, kv[0]))
    if limit is not None:
        ordered = ordered[:limit]
    return [Count(key, cur, prev) for key, (cur, prev) in ordered]


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


def _keyed(row: Any, grouped: bool) -> tuple[Any, ...]:
    """Return a result row as (group key, values...), the key None ungrouped."""
    return tuple(row) if grouped else (None, *row)


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
    source = plan(filters, _complaints_scope(filters, by))
    current = CaseStats.filed_on >= filters.date_from
    group = group_column(CaseStats, by)
    cur = _count_if(current)

    def query(days: Days) -> Any:
        return (
            db.select(group.label("key"), cur.label("cur"), _count_if(~current))
            .where(_in(CaseStats.filed_on, days), *_dims(CaseStats, filters))
            .group_by(group)
        )

    if not source.months and limit is not None:
        return _top_complaints(filters, group, limit)
    if not source.months:  # one range: both periods
        ordered = query(source.ranges[0]).order_by(cur.desc(), group.asc().nulls_last())
        return [Count(key, int(c), int(p)) for key, c, p in db.session.execute(ordered)]
    counts: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for item, c, p in _complaint_months(source, by):
        counts[_from_text(by, item)][0] += int(c)
        counts[_from_text(by, item)][1] += int(p)
    for days in source.ranges:
        for key, c, p in db.session.execute(query(days)):
            ([to_cur], [to_prev]) = days.spread([int(c)], [int(p)])
            counts[key][0] += to_cur
            counts[key][1] += to_prev
    return _sorted_counts({k: v for k, v in counts.items() if any(v)}, limit)


def _top_complaints(filters: Filters, group: Any, limit: int) -> list[Count]:
    """Return the first ``limit`` groups by complaints in the period (then by
    key), from the narrow rows: the top is found in the current period alone
    and the previous period counted for those groups only (merchants: a scan
    of one period instead of two)."""
    previous = filters.previous()
    dims = _dims(CaseStats, filters)
    n = func.count()
    top = [
        Count(key, int(c), 0)
        for key, c in db.session.execute(
            db.select(group, n)
            .where(
                CaseStats.filed_on.between(filters.date_from, filters.date_to), *dims
            )
            .group_by(group)
            .order_by(n.desc(), group.asc().nulls_last())
            .limit(limit)
        )
    ]
    in_previous = CaseStats.filed_on.between(previous.date_from, previous.date_to)
    if len(top) < limit:
        # Every group of the period is listed: then those of the previous one
        # alone, by key (none of them had a complaint in the period).
        keys = [g.key for g in top if g.key is not None]
        if any(g.key is None for g in top):
            others = [group.not_in(keys) if keys else group.is_not(None)]
        else:
            others = [or_(group.is_(None), group.not_in(keys))] if keys else []
        top += [
            Count(key, 0, 0)
            for (key,) in db.session.execute(
                db.select(group)
                .where(in_previous, *dims, *others)
                .group_by(group)
                .order_by(group.asc().nulls_last())
                .limit(limit - len(top))
            )
        ]
    listed_keys = [g.key for g in top if g.key is not None]
    chosen = [group.in_(listed_keys)] if listed_keys else []
    if any(g.key is None for g in top):
        chosen.append(group.is_(None))
    if chosen:
        before = dict(
            db.session.execute(
                db.select(group, n)
                .where(in_previous, *dims, or_(*chosen))
                .group_by(group)
            ).all()
        )
        for g in top:
            g.previous = int(before.get(g.key, 0))
    return top


def _complaints_scope(filters: Filters, measure: str) -> tuple[str, str | None] | None:
    scope = scope_of(filters)
    if scope is None or measure not in summaries.COMPLAINT_MEASURES[scope[0]]:
        return None
    return scope


def _complaint_months(source: Plan, measure: str) -> Any:
    """Return (item, current, previous) complaints of the summarized months."""
    current = CaseMonth.month.in_(source.current_months)
    return db.session.execute(
        db.select(
            CaseMonth.item,
            _sum_if(current, CaseMonth.cases),
            _sum_if(~current, CaseMonth.cases),
        )
        .where(*_summary_where(CaseMonth, source), CaseMonth.measure == measure)
        .group_by(CaseMonth.item)
    ).all()


def _per_day(filters: Filters) -> dict[date, int]:
    """Return the complaints filed per day of both periods: the summaries'
    complaints per day for the summarized months, the narrow rows otherwise."""
    source = plan(filters, scope_of(filters), per_day=True)
    per_day: dict[date, int] = defaultdict(int)
    for days in source.ranges:
        for day, n in db.session.execute(
            db.select(CaseStats.filed_on, func.count())
            .where(_in(CaseStats.filed_on, days), *_dims(CaseStats, filters))
            .group_by(CaseStats.filed_on)
        ):
            per_day[day] += int(n)
    if source.months:
        first, last = filters.previous().date_from, filters.date_to
        for item, n in db.session.execute(
            db.select(CaseMonth.item, func.sum(CaseMonth.cases))
            .where(
                *_summary_where(CaseMonth, source),
                CaseMonth.measure == "day",
                # Days as text: ISO dates sort as the days do.
                CaseMonth.item.between(first.isoformat(), last.isoformat()),
            )
            .group_by(CaseMonth.item)
        ):
            per_day[date.fromisoformat(item)] += int(n)
    return per_day


def complaints_total(filters: Filters) -> Count:
    """Return the complaints filed in the period and the previous one."""
    per_day = _per_day(filters)
    current = sum(n for day, n in per_day.items() if day >= filters.date_from)
    return Count(None, current, sum(per_day.values()) - current)


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
    per_day = _per_day(filters)
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
    source = plan(filters, scope_of(filters, by))
    current = CaseStats.closed_on >= filters.date_from
    group = group_column(CaseStats, by)
    columns = [
        CaseStats.outcome,
        _count_if(current),
        _sum_if(current, CaseStats.recovered),
        _count_if(~current),
        _sum_if(~current, CaseStats.recovered),
    ]
    #: (key, outcome, cases, recovered in the period, the same before)
    rows: list[tuple[Any, ...]] = []
    for days in source.ranges:
        query = (
            db.select(*_with_group(columns, group))
            .where(_in(CaseStats.closed_on, days), *_dims(CaseStats, filters))
            .group_by(*([group] if group is not None else []), CaseStats.outcome)
        )
        for key, name, *values in (
            _keyed(row, group is not None) for row in db.session.execute(query)
        ):
            to_cur, to_prev = days.spread(
                [int(v) for v in values[:2]], [int(v) for v in values[2:]]
            )
            rows.append((key, name, *to_cur, *to_prev))
    if source.months:
        month_current = CaseMonth.month.in_(source.current_months)
        summary = (
            db.select(
                CaseMonth.scope_key,
                CaseMonth.item,
                _sum_if(month_current, CaseMonth.cases),
                _sum_if(month_current, CaseMonth.amount),
                _sum_if(~month_current, CaseMonth.cases),
                _sum_if(~month_current, CaseMonth.amount),
            )
            .where(*_summary_where(CaseMonth, source), CaseMonth.measure == "outcome")
            .group_by(CaseMonth.scope_key, CaseMonth.item)
        )
        rows += [
            (
                _from_text(by, key) if by else None,
                _from_text("outcome", item),
                *values,
            )
            for key, item, *values in db.session.execute(summary)
        ]
    found: dict[Any, dict[str, Outcome]] = defaultdict(dict)
    for key, name, cur, rec, prev, prev_rec in rows:
        entry = found[key].setdefault(name, Outcome(name or "other"))
        entry.current += int(cur)
        entry.recovered += int(rec)
        entry.previous += int(prev)
        entry.previous_recovered += int(prev_rec)
    # Rows taken away (days outside the period) may leave nothing behind.
    found = defaultdict(
        dict,
        {
            key: kept
            for key, by_outcome in found.items()
            if (
                kept := {
                    name: o for name, o in by_outcome.items() if o.current or o.previous
                }
            )
        },
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
    source = plan(filters, scope_of(filters, by))
    current = CaseStats.rated_on >= filters.date_from
    group = group_column(CaseStats, by)
    columns = [CaseStats.satisfaction, _count_if(current), _count_if(~current)]
    rows: list[tuple[Any, ...]] = []
    for days in source.ranges:
        query = (
            db.select(*_with_group(columns, group))
            .where(
                _in(CaseStats.rated_on, days),
                CaseStats.satisfaction.is_not(None),
                *_dims(CaseStats, filters),
            )
            .group_by(*([group] if group is not None else []), CaseStats.satisfaction)
        )
        for key, score, cur, prev in (
            _keyed(row, group is not None) for row in db.session.execute(query)
        ):
            ([to_cur], [to_prev]) = days.spread([int(cur)], [int(prev)])
            rows.append((key, score, to_cur, to_prev))
    if source.months:
        month_current = CaseMonth.month.in_(source.current_months)
        summary = (
            db.select(
                CaseMonth.scope_key,
                CaseMonth.item,
                _sum_if(month_current, CaseMonth.cases),
                _sum_if(~month_current, CaseMonth.cases),
            )
            .where(*_summary_where(CaseMonth, source), CaseMonth.measure == "rating")
            .group_by(CaseMonth.scope_key, CaseMonth.item)
        )
        rows += [
            (_from_text(by, key) if by else None, _from_text("rating", item), c, p)
            for key, item, c, p in db.session.execute(summary)
        ]
    result: dict[Any, Satisfaction] = defaultdict(Satisfaction)
    for key, score, cur, prev in rows:
        if score in range(1, 6):
            result[key].current[score] += int(cur)
            result[key].previous[score] += int(prev)
    # Rows taken away (days outside the period) may leave nothing behind.
    found = {
        key: value
        for key, value in result.items()
        if any(value.current.values()) or any(value.previous.values())
    }
    if by is None:
        found.setdefault(None, Satisfaction())
    return found


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
    #: percentile, read off the histogram of 2 % buckets (within 1 %).
    median_seconds: float | None = None
    p90_seconds: float | None = None
    previous_ended: int = 0
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
    source = plan(filters, scope_of(filters, by))
    #: (key, stage) -> ended, with a deadline, on time; the same before.
    counts: dict[tuple[Any, str], list[int]] = defaultdict(lambda: [0] * 6)
    times: dict[tuple[Any, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    _narrow_sla(filters, by, source, counts, times)
    if source.months:
        _summary_sla(by, source, counts, times)
    found: dict[Any, dict[str, Sla]] = defaultdict(dict)
    for (key, stage), values in counts.items():
        if values[0] or values[3]:  # rows taken away may leave nothing behind
            found[key][stage] = Sla(
                stage,
                *values[:3],
                previous_ended=values[3],
                previous_with_deadline=values[4],
                previous_on_time=values[5],
            )
    for (key, stage), histogram in times.items():
        if stage in found.get(key, {}):
            found[key][stage].median_seconds = spans.histogram_percentile(
                histogram, PERCENTILES[0]
            )
            found[key][stage].p90_seconds = spans.histogram_percentile(
                histogram, PERCENTILES[1]
            )
    if by is None:
        found.setdefault(None, {})
    order = {stage: n for n, stage in enumerate(STAGES)}
    return {
        key: sorted(stages.values(), key=lambda s: (order.get(s.stage, 99), s.stage))
        for key, stages in found.items()
    }


def _narrow_sla(
    filters: Filters,
    by: str | None,
    source: Plan,
    counts: dict[tuple[Any, str], list[int]],
    times: dict[tuple[Any, str], dict[int, int]],
) -> None:
    """Add the plan's narrow days to the counts and to the current period's
    histogram of time to act."""
    current = StageSpan.ended_on >= filters.date_from
    group = group_column(StageSpan, by)
    has_deadline = StageSpan.on_time.is_not(None)
    kept = StageSpan.on_time.is_(True)
    keys = [*([group] if group is not None else []), StageSpan.stage]
    columns = [
        _count_if(side)
        for side in (current, ~current)
        for side in (side, and_(side, has_deadline), and_(side, kept))
    ]
    for days in source.ranges:
        # Per time bucket: the counts add up per stage, the current period's
        # make the histogram (one pass over the range).
        query = (
            db.select(*keys, StageSpan.time_bucket, *columns)
            .where(_in(StageSpan.ended_on, days), *_dims(StageSpan, filters))
            .group_by(*keys, StageSpan.time_bucket)
        )
        if by == "status":
            query = query.join(CaseStats, CaseStats.case_id == StageSpan.case_id)
        for row in db.session.execute(query):
            key = row[0] if group is not None else None
            stage, bucket, *values = row[-8:]
            to_cur, to_prev = days.spread(
                [int(v) for v in values[:3]], [int(v) for v in values[3:]]
            )
            if to_cur[0]:
                times[(key, stage)][bucket] += to_cur[0]
            total = counts[(key, stage)]
            for n, value in enumerate((*to_cur, *to_prev)):
                total[n] += value


def _summary_sla(
    by: str | None,
    source: Plan,
    counts: dict[tuple[Any, str], list[int]],
    times: dict[tuple[Any, str], dict[int, int]],
) -> None:
    """Add the plan's summarized months to the counts and the histogram."""
    m = SpanMonth
    current = m.month.in_(source.current_months)
    rows = db.session.execute(
        db.select(
            m.scope_key,
            m.stage,
            current,
            m.spans,
            m.with_deadline,
            m.on_time,
            # The previous period needs no percentiles: no histogram to read.
            case((current, m.times), else_=None),
        ).where(*_summary_where(m, source))
    )
    for scope_key, stage, is_current, *values, pairs in rows:
        key = _from_text(by, scope_key) if by else None
        total = counts[(key, stage)]
        for n, value in enumerate(values, start=0 if is_current else 3):
            total[n] += value
        if is_current:
            histogram = times[(key, stage)]
            flat = iter(pairs)
            for bucket, n in zip(flat, flat, strict=True):
                histogram[bucket] += n


def percentile(sorted_values: list[int] | list[float], p: float) -> float | None:
    """Return the exact ``p`` percentile of sorted values with linear
    interpolation (PostgreSQL's ``percentile_cont``): what the histogram's
    estimate is held against."""
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
