"""CSV exports of cases: the page ``/supervision/exports``, its download, and
``GET /api/v1/exports/cases.csv`` for scripts.

Regulators export any cases (with the consumers' personal data if they tick
it); mediators and arbitrators the cases they handle, never personal data.
Every download is recorded in the audit log before its rows are sent
(:func:`mediation.analytics.exports.start_case_export`).
"""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request, stream_with_context
from werkzeug.datastructures import MultiDict

from mediation import clock
from mediation.analytics import bp, exports
from mediation.api import bp as api_bp
from mediation.auth.models import Role, User
from mediation.auth.permissions import require_role
from mediation.cases.views import signed_in
from mediation.errors import ValidationError
from mediation.extensions import db
from mediation.merchants import services as merchant_services
from mediation.merchants.models import Merchant

EXPORTERS = (Role.regulator, Role.mediator, Role.arbitrator)
#: The filter arguments the page keeps between its two buttons.
FILTER_ARGS = (
    "from",
    "to",
    "status",
    "category",
    "region",
    "merchant_id",
    "merchant",
    "platform_id",
    "personal",
)


def _filter_args() -> MultiDict:
    """Return the request's filter arguments (the rest, like ``lang``, dropped)."""
    return MultiDict(
        [(k, v) for k, v in request.args.items(multi=True) if k in FILTER_ARGS]
    )


def _page(user: User, args: MultiDict, errors: dict[str, Any], count, status: int):
    merchant = None
    merchant_id = args.get("merchant_id", "")
    if merchant_id.isascii() and merchant_id.isdigit() and 0 < int(merchant_id) < 2**31:
        merchant = db.session.get(Merchant, int(merchant_id))
    return render_template(
        "analytics/exports.html",
        args=args,
        errors={
            k: str(v if not isinstance(v, list) else v[0]) for k, v in errors.items()
        },
        count=count,
        merchant=merchant,
        platforms=merchant_services.platforms(),
        statuses=exports.STATUSES,
        categories=exports.CATEGORIES,
        regulator=user.role == Role.regulator.value,
        scope=exports.export_scope(user),
        columns=exports.COLUMNS,
        personal_columns=exports.PERSONAL_COLUMNS,
        max_rows=exports.max_rows(),
    ), status


@bp.get("/supervision/exports")
@signed_in
def exports_page():
    """Choose the filters of a CSV export of cases; count the matches
    (regulators; mediators and arbitrators for their own cases)."""
    user: User = require_role(*EXPORTERS)
    args = _filter_args()
    count = None
    if request.args.get("count"):
        try:
            count = exports.count_cases(user, exports.parse_filters(args))
        except ValidationError as exc:
            return _page(user, args, exc.fields or {}, None, 422)
    return _page(user, args, {}, count, 200)


def _csv_response(export: exports.CaseExport) -> Response:
    response = Response(
        stream_with_context(exports.csv_chunks(export)),
        mimetype="text/csv",
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{exports.filename(export)}"'
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Export-Rows"] = str(len(export.ids))
    return response


@bp.get("/supervision/exports/cases.csv")
@signed_in
def export_cases():
    """Download the cases matching the filters as CSV; recorded in the audit log."""
    user: User = require_role(*EXPORTERS)
    args = _filter_args()
    if request.method == "HEAD":
        # A link checker or a prefetch exports nothing (and records nothing).
        return Response(mimetype="text/csv")
    try:
        filters = exports.parse_filters(args)
        export = exports.start_case_export(
            user, filters, channel="page", now=clock.now_utc()
        )
    except ValidationError as exc:
        db.session.rollback()
        errors = dict(exc.fields or {})
        if not errors:
            errors["_schema"] = exc.message
        return _page(user, args, errors, None, 422)
    db.session.commit()
    return _csv_response(export)


@api_bp.get("/exports/cases.csv")
def api_export_cases():
    """Export cases as CSV (regulators; mediators and arbitrators: their cases).
    ---
    get:
      tags: [exports]
      summary: Export cases as CSV
      description: >-
        Regulators export every case; mediators the cases they mediate or
        mediated, arbitrators those they arbitrate or arbitrated; anyone else
        403. One row per case, in filing order, with a header row: UTF-8 with
        a byte-order mark, CRLF line ends, times in the platform's time zone
        (`YYYY-MM-DD HH:MM:SS`), amounts twice (`amount_paid` in yuan with two
        decimals, `amount_paid_fen` in integer fen). `personal=1` adds
        `consumer_name`, `consumer_email`, `consumer_phone`, `order_ref`
        (regulators only: 403 `personal_data_not_allowed` otherwise). Every
        export is recorded in the audit log (who, the filters, the row
        count, personal data or not) before the rows are sent; the count is
        also in `X-Export-Rows`. More than `EXPORT_MAX_ROWS` (200,000) rows:
        422 `too_many_rows`.
      parameters:
        - {in: query, name: from, schema: {type: string, format: date}}
        - {in: query, name: to, schema: {type: string, format: date}}
        - in: query
          name: status
          description: Status codes, repeated or comma-separated.
          schema: {type: string}
        - in: query
          name: category
          description: Category codes, repeated or comma-separated.
          schema: {type: string}
        - in: query
          name: region
          description: Start of the merchant's administrative division code.
          schema: {type: string, pattern: "^[0-9]{1,6}$"}
        - {in: query, name: merchant_id, schema: {type: integer}}
        - in: query
          name: merchant
          description: A fragment of the merchant's name (without merchant_id).
          schema: {type: string, maxLength: 100}
        - {in: query, name: platform_id, schema: {type: integer}}
        - {in: query, name: personal, schema: {type: boolean, default: false}}
      responses:
        200:
          description: the CSV file
          content: {text/csv: {schema: {type: string}}}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    user: User = require_role(*EXPORTERS)
    exports.export_scope(user)
    filters = exports.parse_filters(_filter_args())
    if request.method == "HEAD":
        return Response(mimetype="text/csv")
    export = exports.start_case_export(
        user, filters, channel="api", now=clock.now_utc()
    )
    db.session.commit()
    return _csv_response(export)
