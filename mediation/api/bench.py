"""The baseline endpoint of ``benchmarks/filing.py`` (only with BENCHMARK_ENDPOINTS).

It does the least any filing must do (authenticate the consumer's token, parse
and validate the same body with the same schema as ``POST /api/v1/cases``,
insert one row, commit) so that the benchmark can say how much the real filing
adds on top: no duplicate check, no idempotency key, no version, no events, no
routing, no notifications.
"""

from __future__ import annotations

from flask import Blueprint
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from mediation import clock
from mediation.api.common import load
from mediation.auth.models import Role
from mediation.auth.permissions import require_role
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case
from mediation.cases.schemas import FileCaseSchema
from mediation.errors import ValidationError
from mediation.extensions import csrf, db

bp = Blueprint("bench", __name__, url_prefix="/api/v1/_bench")
csrf.exempt(bp)


@bp.post("/baseline")
def baseline():
    """Insert one bare case from a filing body; 201 ``{"id"}``.

    Never registered in production: create_app adds this blueprint only when
    ``BENCHMARK_ENDPOINTS`` is on.
    """
    consumer = require_role(Role.consumer)
    data = load(FileCaseSchema())
    if data.get("merchant_id") is None and not data.get("merchant_name"):
        message = gettext("Name the shop or choose a registered merchant.")
        raise ValidationError(fields={"merchant_name": message})
    now = clock.now_utc()
    claim = data["claim"]
    case = Case(
        consumer_id=consumer.id,
        merchant_id=data.get("merchant_id"),
        merchant_name=data.get("merchant_name") or "",
        platform_id=data.get("platform_id"),
        category=data["category"],
        order_ref=data["order_ref"],
        order_date=data["order_date"],
        amount_paid=data["amount_paid"],
        claim_type=claim["type"],
        claim_amount=claim["amount"],
        description=data["description"],
        arbitration_consent=data["arbitration_consent"],
        status=lc.SUBMITTED,
        filed_at=now,
        updated_at=now,
        version=1,
    )
    db.session.add(case)
    try:
        db.session.flush()
        case_id = case.id  # read before the commit expires it (no extra SELECT)
        db.session.commit()
    except IntegrityError:
        # An unknown merchant or platform id: bad input, not a server error.
        db.session.rollback()
        raise ValidationError(
            fields={"merchant_id": gettext("No registered merchant has this id.")}
        ) from None
    return {"id": case_id}, 201
