"""``GET /api/v1/stats``: the dashboard's numbers for systems (regulators only).

A thin adapter over :mod:`mediation.analytics.stats_queries`: the same filters
as the dashboard (:mod:`mediation.analytics.stats_filters`), grouped by one
dimension, every metric per group and in total. The YAML after ``---`` is the
endpoint's OpenAPI operation (see :mod:`mediation.api.spec`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields

from mediation import clock
from mediation.analytics import dashboard_charts as charts
from mediation.analytics import stats_filters
from mediation.analytics import stats_queries as q
from mediation.analytics.stats import time_zone
from mediation.analytics.stats_labels import OUTCOMES
from mediation.api import bp
from mediation.auth.models import Role
from mediation.auth.permissions import require_role
from mediation.errors import ValidationError

#: ``by`` values: API.md's, and the region levels by name.
BY = (
    "category",
    "region",
    "province",
    "city",
    "district",
    "merchant",
    "platform",
    "status",
)
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class StatsSlaStageSchema(Schema):
    """How one SLA stage kept its deadlines in the period."""

    stage = fields.String(
        metadata={
            "description": "`submitted` (intake), `awaiting_merchant`, "
            "`awaiting_platform`, `offer_pending`, `mediation_pickup`, "
            "`in_mediation`, `arbitration_pickup`, `in_arbitration`, "
            "`fulfilment`, `confirmation`."
        }
    )
    ended = fields.Integer(metadata={"description": "Stages that ended in the period."})
    with_deadline = fields.Integer(
        metadata={"description": "... of which ran on a deadline."}
    )
    on_time = fields.Integer(
        metadata={"description": "... of which ended by their deadline."}
    )
    share_on_time = fields.Float(
        allow_none=True, metadata={"description": "on_time / with_deadline (0-1)."}
    )
    previous_share_on_time = fields.Float(
        allow_none=True, metadata={"description": "The same in the previous period."}
    )
    median_seconds = fields.Float(
        allow_none=True,
        metadata={
            "description": "Median time to act: seconds from the stage's start to "
            "the action that ended it, less the time the clock stood still. "
            "Read off a histogram of buckets 2 % wide: within 1 % of the exact "
            "median."
        },
    )
    p90_seconds = fields.Float(
        allow_none=True,
        metadata={"description": "90th percentile of the same (within 1 %)."},
    )


class StatsSatisfactionSchema(Schema):
    """Consumers' ratings given in the period."""

    ratings = fields.Integer()
    average = fields.Float(allow_none=True, metadata={"description": "1 to 5."})
    distribution = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": 'Ratings per score, `{"1": n, ..., "5": n}`.'},
    )
    previous_ratings = fields.Integer()
    previous_average = fields.Float(allow_none=True)


class StatsValuesSchema(Schema):
    """Every metric of one group (or of all groups together)."""

    complaints = fields.Integer(metadata={"description": "Cases filed in the period."})
    previous_complaints = fields.Integer(
        metadata={"description": "Cases filed in the previous period."}
    )
    closed = fields.Integer(metadata={"description": "Cases closed in the period."})
    previous_closed = fields.Integer()
    outcomes = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={
            "description": "Cases closed per outcome: "
            + ", ".join(f"`{o}`" for o in OUTCOMES)
            + "."
        },
    )
    recovered = fields.Integer(
        metadata={
            "description": "Fen recovered for consumers in the cases closed as "
            "performed (accepted offer or agreement; award orders less costs)."
        }
    )
    previous_recovered = fields.Integer()
    sla = fields.List(fields.Nested(StatsSlaStageSchema))
    satisfaction = fields.Nested(StatsSatisfactionSchema)


class StatsGroupSchema(StatsValuesSchema):
    """The metrics of one group."""

    key = fields.Raw(
        allow_none=True,
        metadata={
            "description": "The group: a category or status code, a 6-digit "
            "division code, a merchant or platform id; null for cases without one "
            "(unknown region, no platform, unregistered shop)."
        },
    )
    label = fields.String(
        metadata={"description": "Its name, in the caller's language."}
    )


class StatsPeriodSchema(Schema):
    """A period of days (business time zone), both ends included."""

    from_ = fields.Date(data_key="from")
    to = fields.Date()


class StatsSchema(Schema):
    """Statistics for a period and its previous period, grouped."""

    from_ = fields.Date(data_key="from")
    to = fields.Date()
    previous = fields.Nested(StatsPeriodSchema)
    by = fields.String()
    filters = fields.Dict(
        metadata={
            "description": "The filters applied: `region`, `category`, `platform`."
        }
    )
    totals = fields.Nested(StatsValuesSchema)
    groups = fields.List(fields.Nested(StatsGroupSchema))
    more = fields.Boolean(
        metadata={"description": "More groups exist than `limit` returned."}
    )


_STATS = StatsSchema()


def _values(
    count: q.Count | None,
    outcomes: list[q.Outcome] | None,
    stages: list[q.Sla] | None,
    rating: q.Satisfaction | None,
) -> dict[str, Any]:
    outcomes = outcomes or []
    rating = rating or q.Satisfaction()
    return {
        "complaints": count.current if count else 0,
        "previous_complaints": count.previous if count else 0,
        "closed": sum(o.current for o in outcomes),
        "previous_closed": sum(o.previous for o in outcomes),
        "outcomes": {o.outcome: o.current for o in outcomes}
        or dict.fromkeys(OUTCOMES, 0),
        "recovered": sum(o.recovered for o in outcomes),
        "previous_recovered": sum(o.previous_recovered for o in outcomes),
        "sla": [
            {
                "stage": s.stage,
                "ended": s.ended,
                "with_deadline": s.with_deadline,
                "on_time": s.on_time,
                "share_on_time": s.share,
                "previous_share_on_time": s.previous_share,
                "median_seconds": s.median_seconds,
                "p90_seconds": s.p90_seconds,
            }
            for s in stages or []
            if s.ended
        ],
        "satisfaction": {
            "ratings": rating.ratings,
            "average": rating.average,
            "distribution": {str(k): v for k, v in rating.current.items()},
            "previous_ratings": rating.previous_ratings,
            "previous_average": rating.previous_average,
        },
    }


def _limit() -> int:
    raw = request.args.get("limit", "")
    if not raw:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationError(
            fields={"limit": _l("Give a whole number from 1 to 1000.")}
        )
    return int(raw)


@bp.get("/stats")
def stats():
    """Read complaint statistics for a period, grouped.
    ---
    get:
      tags: [supervision]
      summary: Complaint statistics for a period
      description: >-
        Regulators only. Counts what happened in the period (local days of the
        business time zone, both ends included; default: this month) and in the
        previous period of the same length: complaints filed, cases closed per
        outcome with the amounts recovered for consumers, SLA compliance per
        stage (stages that ended in the period: share on time, median and 90th
        percentile time to act), and satisfaction (ratings given). Grouped by
        `by`: `category`, `region` (provinces; below a `region` filter its
        cities, then its counties), `province`, `city`, `district`, `merchant`
        (registered shops, most complaints first), `platform` (null: shops on
        no platform) or `status` (the cases' status now). Groups are listed
        with the most complaints first; `limit` cuts the list (`more` says so).
        The same numbers as the dashboard at `/supervision/` with the same
        query string.
      security: [{bearerAuth: []}, {cookieAuth: []}]
      parameters:
        - {in: query, name: from, schema: {type: string, format: date}}
        - {in: query, name: to, schema: {type: string, format: date}}
        - in: query
          name: period
          description: instead of from/to
          schema:
            type: string
            enum: [this_month, last_month, last_30_days, last_12_months]
        - in: query
          name: by
          schema:
            type: string
            default: category
            enum: [category, region, province, city, district, merchant,
                   platform, status]
        - in: query
          name: region
          description: a 2-, 4- or 6-digit division code, or a name
          schema: {type: string}
        - {in: query, name: category, schema: {type: string}}
        - in: query
          name: platform
          description: a platform's id, or `none`
          schema: {type: string}
        - in: query
          name: limit
          schema: {type: integer, minimum: 1, maximum: 1000, default: 50}
      responses:
        200:
          description: the statistics
          content: {application/json: {schema: StatsSchema}}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    require_role(Role.regulator)
    today = clock.now_utc().astimezone(time_zone()).date()
    parsed = stats_filters.parse(request.args, today=today)
    errors = dict(parsed.errors)
    by = request.args.get("by") or "category"
    if by not in BY:
        errors["by"] = _l("Group by one of: %(names)s.", names=", ".join(BY))
    limit = _limit() if "limit" not in errors else DEFAULT_LIMIT
    if errors:
        raise ValidationError(fields=errors)
    filters = parsed.filters
    if by == "region":
        by = filters.region_level
    counts = q.complaints_by(filters, by, limit=limit + 1 if by == "merchant" else None)
    if by == "merchant":
        counts = [c for c in counts if c.key is not None]
        scoped = replace(filters, merchants=tuple(c.key for c in counts[:limit]))
    else:
        scoped = filters
    outcomes = q.outcomes(scoped, by)
    stages = q.sla(scoped, by)
    ratings = q.satisfaction(scoped, by)
    by_key = {c.key: c for c in counts}
    keys = list(by_key)
    if by != "merchant":
        keys += [k for k in (*outcomes, *stages, *ratings) if k not in by_key]
        keys = list(dict.fromkeys(keys))
    more = len(keys) > limit
    keys = keys[:limit]
    names = (
        charts.merchant_names([k for k in keys if isinstance(k, int)])
        if by in ("merchant", "platform")
        else None
    )
    groups = [
        {
            "key": key,
            "label": charts.key_label(by, key, names),
            **_values(
                by_key.get(key), outcomes.get(key), stages.get(key), ratings.get(key)
            ),
        }
        for key in keys
    ]
    totals = _values(
        q.complaints_total(filters),
        q.outcomes(filters)[None],
        q.sla(filters)[None],
        q.satisfaction(filters)[None],
    )
    previous = filters.previous()
    return _STATS.dump(
        {
            "from_": filters.date_from,
            "to": filters.date_to,
            "previous": {"from_": previous.date_from, "to": previous.date_to},
            "by": by,
            "filters": {
                "region": filters.region,
                "category": filters.category,
                "platform": parsed.query_args().get("platform"),
            },
            "totals": totals,
            "groups": groups,
            "more": more,
        }
    )
