"""A merchant's credit in the JSON API: ``GET /api/v1/merchants/{id}/credit``."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_babel import gettext
from marshmallow import Schema, fields

from mediation import clock
from mediation.api import bp
from mediation.api.common import INT_MAX, whole_number_arg
from mediation.credit import ledger, queries
from mediation.credit import model as credit_model
from mediation.credit.models import CreditEvent
from mediation.errors import BadRequest
from mediation.extensions import db
from mediation.merchants import services as merchant_services


class MerchantCreditFactorSchema(Schema):
    """One line of a grade's explanation: a kind of event and what it adds."""

    kind = fields.String(metadata={"description": "A key of the points table."})
    count = fields.Integer(
        metadata={"description": "Events of this kind in the ledger (repaired too)."}
    )
    points = fields.Float(
        metadata={"description": "What they add to the score now (weights applied)."}
    )
    full = fields.Integer(metadata={"description": "Events counting in full."})
    half = fields.Integer(metadata={"description": "Events counting half."})


class MerchantCreditEventSchema(Schema):
    """One ledger event: a fact of a case and its points."""

    id = fields.Integer()
    kind = fields.String(metadata={"description": "A key of the points table."})
    points = fields.Integer(metadata={"description": "Points at full weight."})
    occurred_at = fields.DateTime()
    case_reference = fields.String(
        allow_none=True, metadata={"description": "The case's public reference."}
    )
    weight = fields.Float(
        metadata={"description": "1, 0.5 or 0 by its age; 0 once repaired."}
    )
    lists = fields.Boolean(
        metadata={"description": "It puts the merchant on the dishonesty list."}
    )
    repaired = fields.Boolean()
    repaired_at = fields.DateTime(allow_none=True)


class MerchantSatisfactionSchema(Schema):
    """Consumers' ratings of the merchant's handling (the full-weight window)."""

    average = fields.Float(
        allow_none=True, metadata={"description": "1 to 5; null without ratings."}
    )
    ratings = fields.Integer()
    points = fields.Float(metadata={"description": "What satisfaction adds."})


class MerchantCreditSchema(Schema):
    """A merchant's credit standing now, its explanation and its ledger."""

    merchant_id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    norm = fields.String(
        metadata={"description": "The points table used: `merchant` or `platform`."}
    )
    score = fields.Float(metadata={"description": "One decimal."})
    grade = fields.String(metadata={"description": "A (low risk) to D (high risk)."})
    listed = fields.Boolean(metadata={"description": "On the dishonesty list."})
    trusted = fields.Boolean(metadata={"description": "Trusted online merchant mark."})
    listing_reasons = fields.List(
        fields.String(),
        metadata={
            "description": (
                "Why the merchant is listed: event kinds, or `no_response_count`."
            )
        },
    )
    factors = fields.List(fields.Nested(MerchantCreditFactorSchema))
    satisfaction = fields.Nested(MerchantSatisfactionSchema)
    events = fields.List(
        fields.Nested(MerchantCreditEventSchema),
        metadata={
            "description": (
                "The newest events (`events_limit`, default 200), newest first; "
                "older ones with `events_before`."
            )
        },
    )
    event_count = fields.Integer(metadata={"description": "All events in the ledger."})
    events_next = fields.Integer(
        allow_none=True,
        metadata={
            "description": (
                "When older events follow: the `events_before` of the next page "
                "(the id of the last event given); null at the oldest."
            )
        },
    )
    next_change_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "When the standing changes by itself next."},
    )
    as_of = fields.DateTime(metadata={"description": "When this was computed."})


_CREDIT = MerchantCreditSchema()
#: Events per answer by default, and the most one may ask for.
EVENTS_LIMIT = 200
MAX_EVENTS = 1000


def _credit_json(credit: queries.MerchantCredit, *, now, model) -> dict[str, Any]:
    standing = credit.standing
    return {
        "merchant_id": credit.merchant.id,
        "name": credit.merchant.name,
        "kind": credit.merchant.kind,
        "norm": credit.norm,
        "score": standing.score,
        "grade": standing.grade,
        "listed": standing.listed,
        "trusted": standing.trusted,
        "listing_reasons": standing.listing_reasons,
        "factors": standing.factors,
        "satisfaction": {
            "average": standing.satisfaction,
            "ratings": standing.ratings,
            "points": standing.satisfaction_points,
        },
        "events": [
            {
                "id": e.id,
                "kind": e.kind,
                "points": e.points,
                "occurred_at": e.occurred_at,
                "case_reference": (e.data or {}).get("reference"),
                "weight": 0.0
                if e.repaired_at is not None
                else credit_model.weight(e.occurred_at, now, model),
                "lists": e.lists or e.kind in model["listing"]["kinds"],
                "repaired": e.repaired_at is not None,
                "repaired_at": e.repaired_at,
            }
            for e in credit.events
        ],
        "event_count": credit.event_count,
        "events_next": credit.next_before,
        "next_change_at": standing.next_change_at,
        "as_of": now,
    }


@bp.get("/merchants/<int:merchant_id>/credit")
def merchant_credit(merchant_id: int):
    """Read a merchant's credit standing with its factors and ledger.
    ---
    get:
      tags: [credit]
      summary: A merchant's credit standing
      description: >-
        Anyone may read it. The standing at the time of the request by the model
        of the methodology page (`/credit/methodology`), as kept current with
        the merchant's ledger: score, grade A-D, the dishonesty list with its
        reasons, the trusted online merchant mark, the factors with what each
        adds, satisfaction, and the ledger events with their weight now, newest
        first, `events_limit` at a time (default 200): `events_next`, when not
        null, is the `events_before` that gives the next older ones.
        Consumers' personal data is never part of it.
      security: []
      parameters:
        - {in: path, name: merchant_id, required: true, schema: {type: integer}}
        - in: query
          name: events_limit
          schema: {type: integer, minimum: 1, maximum: 1000, default: 200}
        - in: query
          name: events_before
          description: >-
            Only events older than this one (an event id of this merchant's
            ledger, as given in `events_next`).
          schema: {type: integer, minimum: 1}
      responses:
        200:
          description: the merchant's credit
          content: {application/json: {schema: MerchantCreditSchema}}
        400: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
    """
    merchant = merchant_services.get_merchant(merchant_id)
    limit = whole_number_arg("events_limit", EVENTS_LIMIT, 1, MAX_EVENTS, "bad_limit")
    before = None
    if request.args.get("events_before") not in (None, ""):
        cursor = whole_number_arg("events_before", 0, 1, INT_MAX, "bad_cursor")
        before = db.session.get(CreditEvent, cursor)
        if before is None or before.merchant_id != merchant.id:
            raise BadRequest(
                gettext("events_before must be an event of this merchant's ledger."),
                code="bad_cursor",
            )
    now = clock.now_utc()
    model = ledger.credit_config()
    credit = queries.merchant_credit(
        merchant, now=now, model=model, events=limit, before=before
    )
    return _CREDIT.dump(_credit_json(credit, now=now, model=model))
