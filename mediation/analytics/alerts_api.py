"""The alerts endpoint of the JSON API: ``GET /api/v1/alerts``.

A thin adapter: parse the query, narrow the alerts to those the caller may see
(regulators: all; mediators: those that include a case they mediate; others:
403), page, serialize. The YAML after ``---`` is the OpenAPI operation.
"""

from __future__ import annotations

from flask import jsonify, request
from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy.orm import selectinload

from mediation.analytics import alerts
from mediation.analytics.alert_models import ACTIVE_STATUSES, AlertStatus, MassAlert
from mediation.api import bp
from mediation.api.common import page_arg, paginate
from mediation.auth import permissions
from mediation.auth.models import Role
from mediation.cases.models import Category
from mediation.cases.schemas import MAX_ID
from mediation.schemas import BaseSchema

#: ``status`` values: one status, or ``active`` (open and grouped).
STATUS_FILTERS = (*(s.value for s in AlertStatus), "active")


class AlertListArgsSchema(BaseSchema):
    """Query arguments of ``GET /api/v1/alerts`` (``page`` is read separately)."""

    class Meta:
        # page and lang belong to other readers.
        unknown = EXCLUDE

    status = fields.String(
        validate=validate.OneOf(
            STATUS_FILTERS, error=_l("Choose one of the allowed values.")
        )
    )
    category = fields.String(
        validate=validate.OneOf(
            [c.value for c in Category],
            error=_l("Choose one of the listed categories."),
        )
    )
    merchant_id = fields.Integer(
        validate=validate.Range(1, MAX_ID, error=_l("This is not a valid id."))
    )


class AlertSchema(Schema):
    """A mass-complaint alert (API.md: merchant_id, category, count, window_days,
    case_ids, status)."""

    id = fields.Integer()
    reference = fields.String(metadata={"example": "A-000012"})
    merchant_id = fields.Integer()
    merchant_name = fields.Function(lambda a: a.merchant.name if a.merchant else None)
    category = fields.String(metadata={"description": "A complaint category code."})
    count = fields.Integer(metadata={"description": "Complaints in the alert."})
    threshold = fields.Integer(
        metadata={"description": "N: complaints that raised it (the rule then)."}
    )
    window_days = fields.Integer(metadata={"description": "W: the window in days."})
    window_start = fields.DateTime(
        metadata={
            "description": "Start of the window when raised; later "
            "complaints of the merchant and category join while it is active."
        }
    )
    case_ids = fields.List(
        fields.Integer(), metadata={"description": "Ids of its complaints."}
    )
    status = fields.String(
        metadata={"description": "`open`, `grouped`, `resolved` or `dismissed`."}
    )
    raised_at = fields.DateTime()
    raised_by = fields.String(metadata={"description": "`filing` or `job`."})
    last_filed_at = fields.DateTime(
        metadata={"description": "When its newest complaint was filed."}
    )
    group_ids = fields.Function(
        lambda a: [g.id for g in a.groups],
        metadata={"description": "Case groups made from it."},
    )
    credit_recorded = fields.Function(
        lambda a: a.credit_event_id is not None,
        metadata={
            "description": "Its `mass_alert` credit fact is on the merchant's "
            "record (false once dismissed)."
        },
    )
    resolved_at = fields.DateTime(allow_none=True)
    resolution = fields.String(
        allow_none=True,
        metadata={
            "description": "The note of a resolution, the reason of a dismissal."
        },
    )


class AlertPageSchema(Schema):
    """One page of alerts."""

    items = fields.List(fields.Nested(AlertSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    pages = fields.Integer()


ARGS = AlertListArgsSchema()
ALERT = AlertSchema()


@bp.get("/alerts")
def list_alerts():
    """List mass-complaint alerts, newest first.

    Regulators see every alert; a mediator sees the alerts that include a case
    they mediate; other roles get 403. `status=active` lists the open and the
    grouped ones.
    ---
    get:
      security: [{bearerAuth: []}, {cookieAuth: []}]
      parameters:
        - in: query
          name: status
          required: false
          schema:
            type: string
            enum: [open, grouped, resolved, dismissed, active]
        - in: query
          name: category
          required: false
          schema:
            type: string
            enum: [counterfeit, false_advertising, fake_reviews, fake_promotion,
                   unfair_terms, quality_defect, delivery, refund_refused,
                   after_sales, personal_info, other]
        - in: query
          name: merchant_id
          required: false
          schema: {type: integer, minimum: 1}
        - in: query
          name: page
          required: false
          schema: {type: integer, minimum: 1, default: 1}
      responses:
        200:
          description: One page of alerts.
          content:
            application/json:
              schema: AlertPageSchema
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_role(Role.regulator, Role.mediator)
    args = ARGS.load_or_raise({k: v for k, v in request.args.items() if v != ""})
    page = page_arg()
    query = alerts.visible_alerts(user).options(
        selectinload(MassAlert.merchant), selectinload(MassAlert.groups)
    )
    status = args.get("status")
    if status == "active":
        query = query.where(MassAlert.status.in_(ACTIVE_STATUSES))
    elif status:
        query = query.where(MassAlert.status == status)
    if "category" in args:
        query = query.where(MassAlert.category == args["category"])
    if "merchant_id" in args:
        query = query.where(MassAlert.merchant_id == args["merchant_id"])
    result = paginate(
        query.order_by(MassAlert.raised_at.desc(), MassAlert.id.desc()), page
    )
    case_ids = alerts.case_ids_of(result["items"])
    result["items"] = [
        {**ALERT.dump(alert), "case_ids": case_ids.get(alert.id, [])}
        for alert in result["items"]
    ]
    return jsonify(result)
