"""A merchant's credit in the JSON API: ``GET /api/v1/merchants/{id}/credit``."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from mediation import clock
from mediation.api import bp
from mediation.credit import ledger, queries
from mediation.credit import model as credit_model
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
        metadata={"description": "The newest 200 events, newest first."},
    )
    event_count = fields.Integer(metadata={"description": "All events in the ledger."})
    next_change_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "When the standing changes by itself next."},
    )
    as_of = fields.DateTime(metadata={"description": "When this was computed."})


_CREDIT = MerchantCreditSchema()


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
        Anyone may read it. The standing is computed at the time of the request
        from the merchant's ledger by the model of the methodology page
        (`/credit/methodology`): score, grade A-D, the dishonesty list with its
        reasons, the trusted online merchant mark, the factors with what each adds,
        satisfaction, and the ledger events (with their weight now). Consumers'
        personal data is never part of it.
      security: []
      parameters:
        - {in: path, name: merchant_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: the merchant's credit
          content: {application/json: {schema: MerchantCreditSchema}}
        404: {$ref: "#/components/responses/Error"}
    """
    merchant = merchant_services.get_merchant(merchant_id)
    now = clock.now_utc()
    model = ledger.credit_config()
    credit = queries.merchant_credit(merchant, now=now, model=model)
    return _CREDIT.dump(_credit_json(credit, now=now, model=model))
