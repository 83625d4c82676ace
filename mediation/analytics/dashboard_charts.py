"""The dashboard's charts: each one a table (what the page shows under the chart and
what its CSV holds) plus what Chart.js needs to draw it.

One function per chart, all built from :mod:`mediation.analytics.stats_queries`
with the same filters; the page, the CSV downloads and the headline numbers use
the same objects, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask_babel import format_decimal, format_percent
from flask_babel import gettext as _

from mediation import labels
from mediation.analytics import stats_labels
from mediation.analytics import stats_queries as q
from mediation.analytics import stats_regions as regions
from mediation.analytics import stats_spans as spans
from mediation.extensions import db
from mediation.formatting import yuan
from mediation.merchants.models import Merchant

#: How many merchants the merchants chart shows.
TOP_MERCHANTS = 20
#: How many regions and platforms the bar charts show (the table has them all).
TOP_BARS = 25


@dataclass
class Column:
    """A column of a chart's table: its header and how to show a value."""

    title: str
    #: ``text``, ``count``, ``change``, ``share``, ``hours``, ``money``, ``score``
    kind: str = "text"


@dataclass
class Chart:
    """One chart of the dashboard with its data table."""

    id: str
    title: str
    #: Chart.js type: ``bar``, ``line`` or ``doughnut``.
    kind: str
    columns: list[Column]
    #: Raw values per row (numbers unformatted; money in fen, time in seconds).
    rows: list[list[Any]]
    #: Chart.js ``data``: labels and datasets (numbers only).
    data: dict[str, Any]
    #: Chart.js options the script merges in (axes, stacking, orientation).
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: What the query returned (the headline numbers add it up).
    source: Any = None

    @property
    def empty(self) -> bool:
        return not self.rows

    def display_rows(self) -> list[list[str]]:
        """Return the table's cells formatted for the page (current language)."""
        return [
            [
                _show(value, column.kind)
                for value, column in zip(row, self.columns, strict=True)
            ]
            for row in self.rows
        ]

    def csv_rows(self) -> list[list[Any]]:
        """Return the table for a spreadsheet: plain numbers (yuan with two
        decimals, hours with two, shares as fractions), no thousands separators."""
        return [
            [
                _raw(value, column.kind)
                for value, column in zip(row, self.columns, strict=True)
            ]
            for row in self.rows
        ]


def _show(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "count":
        return format_decimal(value)
    if kind == "change":
        sign = "+" if value > 0 else ""
        return sign + format_percent(value, "#,##0.0%")
    if kind == "share":
        return format_percent(value, "#,##0.0%")
    if kind == "hours":
        return format_decimal(value / 3600, "#,##0.0")
    if kind == "money":
        return yuan(value)
    if kind == "score":
        return format_decimal(value, "0.00")
    return str(value)


def _raw(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if kind == "money":
        whole, cents = divmod(int(value), 100)
        return f"{whole}.{cents:02d}"
    if kind == "hours":
        return f"{value / 3600:.2f}"
    if kind in ("change", "share"):
        return f"{value:.4f}"
    if kind == "score":
        return f"{value:.2f}"
    return value if kind == "count" else str(value)


# Names ------------------------------------------------------------------------


def merchant_names(ids: list[int]) -> dict[int, str]:
    """Return id -> name of the given merchants (one query)."""
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    return dict(
        db.session.execute(
            db.select(Merchant.id, Merchant.name).where(Merchant.id.in_(ids))
        ).all()
    )


def key_label(by: str, key: Any, names: dict[int, str] | None = None) -> str:
    """Return the display name of a group key of a grouping."""
    if by == "category":
        return str(labels.CATEGORY.get(key, key))
    if by == "status":
        return str(labels.STATUS.get(key, key))
    if by in ("province", "city", "district"):
        return regions.label(key) if key else str(stats_labels.UNKNOWN_REGION)
    if by == "platform":
        if key is None:
            return str(stats_labels.NO_PLATFORM)
        return (names or {}).get(key) or f"#{key}"
    if by == "merchant":
        if key is None:
            return str(stats_labels.UNREGISTERED_SHOP)
        return (names or {}).get(key) or f"#{key}"
    return str(key)


# The charts ---------------------------------------------------------------------


def _period_label(start: date, end: date) -> str:
    return (
        start.isoformat()
        if start == end
        else f"{start.isoformat()} – {end.isoformat()}"
    )


def volume_chart(filters: q.Filters) -> Chart:
    """Complaints filed over time, with the previous period drawn alongside."""
    buckets = q.volume(filters)
    unit = q.bucket_unit(filters)
    columns = [
        Column(_("Period")),
        Column(_("Complaints"), "count"),
        Column(_("Previous period")),
        Column(_("Complaints then"), "count"),
    ]
    rows = [
        [
            _period_label(b.start, b.end),
            b.current,
            _period_label(b.previous_start, b.previous_end),
            b.previous,
        ]
        for b in buckets
    ]
    step = {"day": _("per day"), "week": _("per week"), "month": _("per month")}[unit]
    return Chart(
        source=buckets,
        id="volume",
        title=_("Complaints over time (%(step)s)", step=step),
        kind="line",
        columns=columns,
        rows=rows,
        data={
            "labels": [b.start.isoformat() for b in buckets],
            "datasets": [
                {"label": _("This period"), "data": [b.current for b in buckets]},
                {
                    "label": _("Previous period"),
                    "data": [b.previous for b in buckets],
                    "borderDash": [6, 4],
                },
            ],
        },
    )


def _comparison(
    chart_id: str,
    title: str,
    by: str,
    groups: list[q.Count],
    heading: str,
    names: dict[int, str] | None = None,
    *,
    horizontal: bool = False,
    extra: Callable[[q.Count], list[Any]] | None = None,
    extra_columns: list[Column] | None = None,
) -> Chart:
    """A bar chart of complaints per group: this period against the previous."""
    columns = [
        Column(heading),
        Column(_("Complaints"), "count"),
        Column(_("Previous period"), "count"),
        Column(_("Change"), "change"),
        *(extra_columns or []),
    ]
    rows = [
        [
            key_label(by, g.key, names),
            g.current,
            g.previous,
            g.change,
            *(extra(g) if extra else []),
        ]
        for g in groups
    ]
    shown = groups[:TOP_BARS]
    return Chart(
        id=chart_id,
        title=title,
        kind="bar",
        columns=columns,
        rows=rows,
        data={
            "labels": [key_label(by, g.key, names) for g in shown],
            "datasets": [
                {"label": _("This period"), "data": [g.current for g in shown]},
                {"label": _("Previous period"), "data": [g.previous for g in shown]},
            ],
        },
        options={"indexAxis": "y"} if horizontal else {},
    )


def categories_chart(filters: q.Filters) -> Chart:
    """Complaints per category against the previous period (every category listed)."""
    found = {g.key: g for g in q.complaints_by(filters, "category")}
    groups = [found.get(code) or q.Count(code, 0, 0) for code in labels.CATEGORY]
    groups.sort(key=lambda g: (-g.current, -g.previous))
    return _comparison(
        "categories",
        _("Complaints by category"),
        "category",
        groups,
        _("Category"),
        horizontal=True,
    )


def regions_chart(filters: q.Filters) -> Chart:
    """Complaints per province (or per city, district below a region filter)."""
    level = filters.region_level
    groups = q.complaints_by(filters, level)
    title = {
        "province": _("Complaints by province"),
        "city": _("Complaints by city"),
        "district": _("Complaints by county or district"),
    }[level]
    chart = _comparison("regions", title, level, groups, _("Region"), horizontal=True)
    chart.columns.insert(1, Column(_("Code")))
    for row, group in zip(chart.rows, groups, strict=True):
        row.insert(1, group.key or "")
        row[0] = (
            (regions.name_of(group.key) or group.key)
            if group.key
            else str(stats_labels.UNKNOWN_REGION)
        )
    chart.data["labels"] = [
        (regions.name_of(g.key) or g.key) if g.key else str(stats_labels.UNKNOWN_REGION)
        for g in groups[:TOP_BARS]
    ]
    return chart


def merchants_chart(filters: q.Filters) -> Chart:
    """The merchants with the most complaints in the period (registered shops)."""
    groups = [
        g
        for g in q.complaints_by(filters, "merchant", limit=TOP_MERCHANTS + 1)
        if g.key is not None and g.current > 0
    ][:TOP_MERCHANTS]
    names = merchant_names([g.key for g in groups])
    details = _merchant_details([g.key for g in groups])
    chart = _comparison(
        "merchants",
        _("Merchants with the most complaints"),
        "merchant",
        groups,
        _("Merchant"),
        names,
        horizontal=True,
        extra=lambda g: list(details.get(g.key, ("", ""))),
        extra_columns=[Column(_("Region")), Column(_("Platform"))],
    )
    chart.columns.insert(1, Column(_("Merchant id")))
    for row, group in zip(chart.rows, groups, strict=True):
        row.insert(1, group.key)
    return chart


def _merchant_details(ids: list[int]) -> dict[int, tuple[str, str]]:
    if not ids:
        return {}
    rows = db.session.execute(
        db.select(Merchant.id, Merchant.region_code, Merchant.platform_id).where(
            Merchant.id.in_(ids)
        )
    ).all()
    platforms = merchant_names([r.platform_id for r in rows])
    return {
        r.id: (
            regions.label(r.region_code),
            platforms.get(r.platform_id, "") if r.platform_id else "",
        )
        for r in rows
    }


def platforms_chart(filters: q.Filters) -> Chart:
    """Complaints per platform (shops on no platform in one row)."""
    groups = q.complaints_by(filters, "platform")
    names = merchant_names([g.key for g in groups])
    return _comparison(
        "platforms",
        _("Complaints by platform"),
        "platform",
        groups,
        _("Platform"),
        names,
        horizontal=True,
    )


def sla_chart(filters: q.Filters) -> Chart:
    """Per stage: the share kept on time, median and 90th percentile time to act."""
    stages = q.sla(filters)[None]
    columns = [
        Column(_("Stage")),
        Column(_("Stages ended"), "count"),
        Column(_("With a deadline"), "count"),
        Column(_("On time"), "count"),
        Column(_("Overdue"), "count"),
        Column(_("Share on time"), "share"),
        Column(_("Previous period"), "share"),
        Column(_("Median time to act (hours)"), "hours"),
        Column(_("90th percentile (hours)"), "hours"),
    ]
    current = [s for s in stages if s.ended]
    rows = [
        [
            str(stats_labels.STAGE.get(s.stage, s.stage)),
            s.ended,
            s.with_deadline,
            s.on_time,
            s.breached,
            s.share,
            s.previous_share,
            s.median_seconds,
            s.p90_seconds,
        ]
        for s in current
    ]
    return Chart(
        source=stages,
        id="sla",
        title=_("Deadlines kept, per stage"),
        kind="bar",
        columns=columns,
        rows=rows,
        data={
            "labels": [str(stats_labels.STAGE.get(s.stage, s.stage)) for s in current],
            "datasets": [
                {
                    "label": _("Share on time (%)"),
                    "data": [
                        round(100 * s.share, 1) if s.share is not None else None
                        for s in current
                    ],
                    "yAxisID": "y",
                },
                {
                    "label": _("Median time to act (hours)"),
                    "data": [_hours(s.median_seconds) for s in current],
                    "yAxisID": "y1",
                },
                {
                    "label": _("90th percentile (hours)"),
                    "data": [_hours(s.p90_seconds) for s in current],
                    "yAxisID": "y1",
                },
            ],
        },
        options={
            "scales": {
                "y": {
                    "min": 0,
                    "max": 100,
                    "title": {"display": True, "text": "%"},
                },
                "y1": {
                    "position": "right",
                    "min": 0,
                    "grid": {"drawOnChartArea": False},
                    "title": {"display": True, "text": _("hours")},
                },
            }
        },
        description=_(
            "Stages that ended in the period. Time to act runs from the start of "
            "the stage to the action that ended it, without the time the clock "
            "stood still (waiting for the consumer's evidence or an answer to the "
            "arbitrator). A stage ended by its deadline passing counts as overdue. "
            "The median and the 90th percentile are read off a histogram of the "
            "times to act (steps %(step)s apart): within %(error)s of the exact "
            "values.",
            step=format_percent(spans.BUCKET_RATIO - 1),
            error=format_percent(spans.PERCENTILE_ERROR),
        ),
    )


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 1)


def outcomes_chart(filters: q.Filters) -> Chart:
    """Cases closed per outcome, and the amounts recovered for consumers."""
    rows_ = q.outcomes(filters)[None]
    columns = [
        Column(_("Outcome")),
        Column(_("Cases closed"), "count"),
        Column(_("Previous period"), "count"),
        Column(_("Change"), "change"),
        Column(_("Recovered for consumers"), "money"),
        Column(_("Recovered then"), "money"),
    ]
    rows = [
        [
            str(stats_labels.OUTCOME.get(o.outcome, o.outcome)),
            o.current,
            o.previous,
            q.change(o.current, o.previous),
            o.recovered,
            o.previous_recovered,
        ]
        for o in rows_
    ]
    return Chart(
        source=rows_,
        id="outcomes",
        title=_("Outcomes of the cases closed"),
        kind="bar",
        columns=columns,
        rows=rows,
        data={
            "labels": [
                str(stats_labels.OUTCOME.get(o.outcome, o.outcome)) for o in rows_
            ],
            "datasets": [
                {"label": _("This period"), "data": [o.current for o in rows_]},
                {"label": _("Previous period"), "data": [o.previous for o in rows_]},
            ],
        },
        description=_(
            "Recovered: what the consumers received in the cases closed as "
            "performed (the accepted offer or mediation agreement, or the award's "
            "orders without the costs)."
        ),
    )


def satisfaction_chart(filters: q.Filters) -> Chart:
    """Consumers' ratings given in the period (1 to 5 stars)."""
    found = q.satisfaction(filters)[None]
    columns = [
        Column(_("Rating")),
        Column(_("Ratings"), "count"),
        Column(_("Previous period"), "count"),
    ]
    rows = [
        [f"{score} ★", found.current[score], found.previous[score]]
        for score in range(1, 6)
    ]
    if not found.ratings and not found.previous_ratings:
        rows = []
    return Chart(
        source=found,
        id="satisfaction",
        title=_("Satisfaction"),
        kind="bar",
        columns=columns,
        rows=rows,
        data={
            "labels": [f"{score} ★" for score in range(1, 6)],
            "datasets": [
                {
                    "label": _("This period"),
                    "data": [found.current[s] for s in range(1, 6)],
                },
                {
                    "label": _("Previous period"),
                    "data": [found.previous[s] for s in range(1, 6)],
                },
            ],
        },
    )


#: Chart id -> (builder, file name stem of its CSV).
CHARTS: dict[str, tuple[Callable[[q.Filters], Chart], str]] = {
    "volume": (volume_chart, "complaints-over-time"),
    "categories": (categories_chart, "complaints-by-category"),
    "regions": (regions_chart, "complaints-by-region"),
    "sla": (sla_chart, "sla-per-stage"),
    "outcomes": (outcomes_chart, "outcomes"),
    "satisfaction": (satisfaction_chart, "satisfaction"),
    "merchants": (merchants_chart, "complaints-by-merchant"),
    "platforms": (platforms_chart, "complaints-by-platform"),
}


@dataclass
class Headline:
    """A headline number with its value in the previous period."""

    title: str
    kind: str
    current: Any
    previous: Any
    testid: str

    @property
    def shown(self) -> str:
        return _show(self.current, self.kind)

    @property
    def previous_shown(self) -> str:
        return _show(self.previous, self.kind)

    @property
    def change(self) -> float | None:
        if self.kind == "share" or self.kind == "score":
            return None
        return q.change(self.current, self.previous)

    @property
    def delta_shown(self) -> str:
        """Return the change as shown: relative for counts, points for shares."""
        if self.current is None or self.previous is None:
            return ""
        if self.kind == "share":
            points = 100 * (self.current - self.previous)
            return _(
                "%(points)s pts", points=format_decimal(points, "+#,##0.0;-#,##0.0")
            )
        if self.kind == "score":
            return format_decimal(self.current - self.previous, "+0.00;-0.00")
        change = self.change
        return _show(change, "change") if change is not None else ""


def headlines(charts: dict[str, Chart]) -> list[Headline]:
    """Return the headline numbers, added up from the charts' own data."""
    volume = charts["volume"].source
    outcomes = charts["outcomes"].source
    stages = q.sla_overall(charts["sla"].source)
    ratings: q.Satisfaction = charts["satisfaction"].source
    return [
        Headline(
            _("Complaints filed"),
            "count",
            sum(b.current for b in volume),
            sum(b.previous for b in volume),
            "headline-complaints",
        ),
        Headline(
            _("Cases closed"),
            "count",
            sum(o.current for o in outcomes),
            sum(o.previous for o in outcomes),
            "headline-closed",
        ),
        Headline(
            _("Recovered for consumers"),
            "money",
            sum(o.recovered for o in outcomes),
            sum(o.previous_recovered for o in outcomes),
            "headline-recovered",
        ),
        Headline(
            _("Deadlines kept"),
            "share",
            stages.share,
            stages.previous_share,
            "headline-sla",
        ),
        Headline(
            _("Average satisfaction"),
            "score",
            ratings.average,
            ratings.previous_average,
            "headline-satisfaction",
        ),
    ]


def build_all(filters: q.Filters) -> dict[str, Chart]:
    """Return every chart of the dashboard for the filters."""
    return {chart_id: builder(filters) for chart_id, (builder, _stem) in CHARTS.items()}
