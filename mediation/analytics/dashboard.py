"""The regulator's dashboard: ``/supervision/`` and each chart's data as CSV.

Thin adapters: read the filters (:mod:`mediation.analytics.stats_filters`),
build the charts (:mod:`mediation.analytics.dashboard_charts`), render. Only
regulators reach them (403 for other roles, sign-in for visitors).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response, render_template, request, url_for
from flask_babel import gettext as _

from mediation import clock, labels
from mediation.analytics import bp, stats_filters
from mediation.analytics import dashboard_charts as charts
from mediation.analytics import stats_regions as regions
from mediation.analytics.dashboard_attention import attention
from mediation.analytics.stats import time_zone
from mediation.auth.models import Role
from mediation.auth.permissions import role_required
from mediation.errors import NotFound, ValidationError


def _parsed() -> stats_filters.Parsed:
    today = clock.now_utc().astimezone(time_zone()).date()
    return stats_filters.parse(request.args, today=today)


@bp.get("/supervision/")
@role_required(Role.regulator)
def dashboard():
    parsed = _parsed()
    built = charts.build_all(parsed.filters)
    today = clock.now_utc().astimezone(time_zone()).date()
    dims = {k: v for k, v in parsed.query_args().items() if k not in ("from", "to")}
    presets = []
    for key, label in stats_filters.PRESETS.items():
        start, end = stats_filters.preset_period(key, today)
        presets.append(
            {
                "key": key,
                "label": label,
                "url": url_for(
                    "analytics.dashboard",
                    **{**dims, "from": start.isoformat(), "to": end.isoformat()},
                ),
                "active": (start, end)
                == (parsed.filters.date_from, parsed.filters.date_to),
            }
        )
    return render_template(
        "analytics/dashboard.html",
        active="dashboard",
        parsed=parsed,
        filters=parsed.filters,
        previous=parsed.filters.previous(),
        charts=built,
        headlines=charts.headlines(built),
        presets=presets,
        categories=labels.CATEGORY,
        platforms=stats_filters.platform_choices(),
        region_label=regions.label(parsed.filters.region),
        csv_args=parsed.query_args(),
        period_text=period_text(parsed),
        attention=attention(),
    )


@bp.get("/supervision/data/<chart>.csv")
@role_required(Role.regulator)
def chart_csv(chart: str):
    if chart not in charts.CHARTS:
        raise NotFound()
    parsed = _parsed()
    if parsed.errors:
        raise ValidationError(
            " ".join(str(message) for message in parsed.errors.values()),
            fields=parsed.errors,
        )
    builder, stem = charts.CHARTS[chart]
    built = builder(parsed.filters)
    f = parsed.filters
    name = f"{stem}_{f.date_from.isoformat()}_{f.date_to.isoformat()}.csv"
    return Response(
        to_csv(built),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def to_csv(chart: charts.Chart) -> bytes:
    """Return a chart's table as CSV: UTF-8 with a BOM (Excel reads the Chinese
    names), CRLF line ends, one header row; text that a spreadsheet would run as
    a formula gets a leading apostrophe."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.title for column in chart.columns])
    for row in chart.csv_rows():
        writer.writerow([_cell(value) for value in row])
    return out.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value and value[0] in "=+-@\t\r":
        # A negative number written as text (a change) stays a number.
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def period_text(parsed: stats_filters.Parsed) -> str:
    """Return the period as the page's heading names it."""
    f = parsed.filters
    return _(
        "%(start)s to %(end)s", start=f.date_from.isoformat(), end=f.date_to.isoformat()
    )
