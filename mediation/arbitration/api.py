"""The award document through the API (GET /api/v1/cases/{id}/award).

JSON by default; the PDF with ``Accept: application/pdf``. The access rules and
the lookup are those of the award page (:mod:`mediation.arbitration.documents`).
The YAML after ``---`` in the docstring is the OpenAPI operation (see
:mod:`mediation.api.spec`).
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from marshmallow import Schema, fields

from mediation import clock
from mediation.api import bp
from mediation.arbitration import documents
from mediation.arbitration.models import Award
from mediation.arbitration.services import award_versions, is_final
from mediation.auth import permissions
from mediation.cases.models import Case

CASE = "<int(max=2147483647):case_id>"


class AwardOrderSchema(Schema):
    """One order of an award."""

    type = fields.String(
        metadata={
            "description": "`refund`, `replacement`, `repair`, `compensation`, "
            "`apology`, `costs` or `other`."
        }
    )
    amount = fields.Integer(metadata={"description": "Fen (0 when none)."})
    deadline = fields.String(metadata={"description": "YYYY-MM-DD."})
    text = fields.String()


class AwardVersionSchema(Schema):
    """One version of an award, in the list of versions."""

    version = fields.Integer()
    sha256 = fields.String()
    issued_at = fields.DateTime()
    decision = fields.String()


class AwardSchema(Schema):
    """An award version with its hash, and the list of every version."""

    case_id = fields.Integer()
    reference = fields.String()
    version = fields.Integer(
        metadata={"description": "1 as issued; 2, 3 ... after corrections."}
    )
    current = fields.Boolean(metadata={"description": "This is the version in force."})
    sha256 = fields.String(
        metadata={
            "description": "SHA-256 (hex) of `content` as canonical JSON (sorted "
            "keys, no spaces, UTF-8); the timeline event of the issue or "
            "correction carries the same hash."
        }
    )
    decision = fields.String(
        metadata={"description": "`granted`, `partly_granted` or `rejected`."}
    )
    findings = fields.String()
    reasons = fields.String()
    orders = fields.List(fields.Nested(AwardOrderSchema))
    issued_at = fields.DateTime()
    correction_until = fields.DateTime(
        metadata={"description": "End of the window to ask for a correction."}
    )
    final = fields.Boolean(
        metadata={
            "description": "The award in force, its correction window over and no "
            "correction request open."
        }
    )
    content = fields.Dict(
        metadata={
            "description": "Exactly what was hashed and what the document prints."
        }
    )
    versions = fields.List(fields.Nested(AwardVersionSchema))


AWARD_SCHEMA = AwardSchema()


@bp.get(f"/cases/{CASE}/award")
def get_award(case_id: int):
    """Show a case's award: JSON, or the PDF with `Accept: application/pdf`.

    The parties, the case's arbitrator and regulators. The current version unless
    `version` names an earlier one. 404 (`no_award`) while there is no award.
    ---
    get:
      security: [{bearerAuth: []}, {cookieAuth: []}]
      parameters:
        - in: query
          name: version
          required: false
          schema: {type: integer, minimum: 1}
          description: An earlier version (default the current one).
      responses:
        200:
          description: "The award; the PDF document with `Accept: application/pdf`."
          headers:
            Content-Disposition:
              description: >-
                For the PDF: `attachment; filename="<reference>-award-v<N>.pdf"`.
              schema: {type: string}
          content:
            application/json:
              schema: mediation.arbitration.api.AwardSchema
            application/pdf:
              schema: {type: string, format: binary}
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    case = documents.get_case_with_award_for(user, case_id)
    award = documents.find_award(case, documents.version_arg())
    if _wants_pdf():
        response = documents.pdf_response(case, award)
    else:
        response = jsonify(AWARD_SCHEMA.dump(_award_body(case, award)))
    response.vary.add("Accept")
    return response


def _wants_pdf() -> bool:
    """Say whether the client asked for the PDF rather than JSON."""
    best = request.accept_mimetypes.best_match(["application/json", "application/pdf"])
    return best == "application/pdf"


def _award_body(case: Case, award: Award) -> dict[str, Any]:
    """Return what :class:`AwardSchema` dumps for ``award`` of ``case``."""
    versions = award_versions(case)
    current = bool(versions) and versions[-1].version == award.version
    return {
        "case_id": case.id,
        "reference": case.reference,
        "version": award.version,
        "current": current,
        "sha256": award.sha256,
        "decision": award.decision,
        "findings": award.findings,
        "reasons": award.reasons,
        "orders": award.orders or [],
        "issued_at": award.issued_at,
        "correction_until": award.correction_until,
        "final": current and is_final(case, clock.now_utc()),
        "content": award.content,
        "versions": versions,
    }
