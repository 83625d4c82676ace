"""The case endpoints of the JSON API: filing, lists, details, actions, evidence.

Each endpoint parses with a schema, loads the case through the access checks,
calls one service, commits, and serializes with the schemas of
:mod:`mediation.cases.schemas`. The YAML after ``---`` in each docstring is the
endpoint's OpenAPI operation (see :mod:`mediation.api.spec`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import jsonify, request, url_for
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from mediation import clock
from mediation.api import bp
from mediation.api.common import json_body, page_arg, paginate
from mediation.api.spec import spec_component
from mediation.auth import permissions
from mediation.auth.models import Role, User
from mediation.cases import chain, services
from mediation.cases import evidence as evidence_files
from mediation.cases.models import Case, IdempotencyKey
from mediation.cases.schemas import (
    ACTION_SCHEMAS,
    CaseEventsSchema,
    CaseListArgsSchema,
    CaseSchema,
    CaseSummarySchema,
    EvidenceSchema,
    FileCaseSchema,
    load_action,
)
from mediation.errors import Conflict, PermissionDenied, ValidationError
from mediation.extensions import db

logger = logging.getLogger(__name__)

#: Path ids stop at PostgreSQL's ``integer``: larger ones are simply not found.
CASE = "<int(max=2147483647):case_id>"
EVIDENCE = "<int(max=2147483647):evidence_id>"
# Schemas are built once: building one deep-copies its fields (a real cost per
# request), and marshmallow 4 schemas hold no per-call state.
FILE_CASE = FileCaseSchema()
CASE_LIST_ARGS = CaseListArgsSchema()
CASE_SUMMARIES = CaseSummarySchema(many=True)
CASE_EVENTS = CaseEventsSchema()
CASE_SCHEMA = CaseSchema()
EVIDENCE_SCHEMA = EvidenceSchema()

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 200
#: Account roles whose lists put the nearest deadline first (they must act).
DEADLINE_FIRST = (Role.merchant.value, Role.mediator.value, Role.arbitrator.value)


# Filing -------------------------------------------------------------------------


@bp.post("/cases")
def create_case():
    """File a complaint.

    Consumers only. Name a registered merchant (`merchant_id`) or type the shop's
    name (`merchant_name`, with `platform_id` when it sells on a registered
    platform). A likely duplicate (same merchant and order) is still filed; the
    answer then carries a `possible_duplicate` warning.

    Retries are safe with an `Idempotency-Key` header: the same key with the same
    body files once and answers again 201 with the case first filed (and the
    header `Idempotent-Replayed: true`); the same key with another body is
    refused (422, `idempotency_key_reused`). Keys are per user.
    ---
    post:
      security: [{bearerAuth: []}, {cookieAuth: []}]
      parameters:
        - in: header
          name: Idempotency-Key
          required: false
          schema: {type: string, maxLength: 200}
          description: Any unique string per intended filing, e.g. a UUID.
      requestBody:
        required: true
        content:
          application/json:
            schema: FileCaseSchema
      responses:
        201:
          description: The case as filed, with `warnings`.
          headers:
            Location:
              description: The case's URL.
              schema: {type: string}
            Idempotent-Replayed:
              description: "`true` when this answers a retry."
              schema: {type: string}
          content:
            application/json:
              schema: CaseFiledSchema
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_role(Role.consumer)
    body = json_body()
    key = _idempotency_key()
    digest = _body_hash(body)
    if key is not None:
        stored = _stored_filing(user, key, digest)
        if stored is not None:
            return _filed(stored, user, replayed=True)
    values = FILE_CASE.load_or_raise(body)
    now = clock.now_utc()
    case = services.file_case(user, _filing(values), now=now)
    if key is not None:
        try:
            with db.session.begin_nested():
                db.session.add(
                    IdempotencyKey(
                        user_id=user.id,
                        key=key,
                        request_hash=digest,
                        case_id=case.id,
                        created_at=now,
                    )
                )
        except IntegrityError:
            # A concurrent request with the same key filed first: drop this filing
            # and answer with that one.
            db.session.rollback()
            stored = _stored_filing(user, key, digest)
            if stored is None:
                raise Conflict(
                    gettext("The request was retried at the same time; try again.")
                ) from None
            return _filed(stored, user, replayed=True)
    db.session.commit()
    logger.info("case filed via API", extra={"case_id": case.id, "actor_id": user.id})
    return _filed(case, user)


def _filing(values: dict[str, Any]) -> services.Filing:
    """Turn the loaded filing body into the service's :class:`~services.Filing`."""
    return services.Filing(
        category=values["category"],
        order_ref=values["order_ref"],
        order_date=values["order_date"],
        amount_paid=values["amount_paid"],
        claim_type=values["claim"]["type"],
        claim_amount=values["claim"]["amount"],
        description=values["description"],
        merchant_id=values.get("merchant_id"),
        merchant_name=values.get("merchant_name"),
        platform_id=values.get("platform_id"),
        arbitration_consent=values["arbitration_consent"],
    )


def _idempotency_key() -> str | None:
    """Return the request's ``Idempotency-Key`` header, or None.

    :raise ValidationError: for an empty, over-long or non-printable key.
    """
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise ValidationError(
            fields={
                IDEMPOTENCY_HEADER: gettext(
                    "Use 1 to %(n)d printable characters.", n=IDEMPOTENCY_KEY_MAX
                )
            }
        )
    return key


def _body_hash(body: dict[str, Any]) -> str:
    """Return the SHA-256 of the canonical JSON of ``body`` (key order ignored)."""
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


def _stored_filing(user: User, key: str, digest: str) -> Case | None:
    """Return the case filed earlier with this key, or None for a new key.

    :raise ValidationError: when the key was used with another body.
    """
    row = db.session.scalar(
        db.select(IdempotencyKey).where(
            IdempotencyKey.user_id == user.id, IdempotencyKey.key == key
        )
    )
    if row is None:
        return None
    if row.request_hash != digest:
        raise ValidationError(
            gettext("This Idempotency-Key was already used for another request."),
            code="idempotency_key_reused",
            fields={IDEMPOTENCY_HEADER: gettext("Use a new key for a new request.")},
        )
    return db.session.get(Case, row.case_id)


def _filed(case: Case, user: User, *, replayed: bool = False):
    """Answer a filing: 201, the case, its warnings, its URL."""
    body = _case_body(case, "consumer")
    body["warnings"] = _filing_warnings(user, case)
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_case", case_id=case.id)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _filing_warnings(user: User, case: Case) -> list[dict[str, Any]]:
    """Name the consumer's earlier cases on the same merchant and order."""
    earlier = [
        other.id
        for other in services.find_possible_duplicates(
            user, case.merchant_id, case.merchant_name, case.order_ref
        )
        if other.id < case.id
    ]
    if not earlier:
        return []
    return [
        {
            "code": "possible_duplicate",
            "case_ids": earlier,
            "message": gettext(
                "You already filed a complaint about this order with this merchant."
            ),
        }
    ]


# Reading ------------------------------------------------------------------------


@bp.get("/cases")
def list_cases():
    """List the cases the caller may see.

    Consumers and regulators get the newest first; merchant staff, mediators and
    arbitrators get the nearest deadline first (closed cases last).
    ---
    get:
      security: [{bearerAuth: []}, {cookieAuth: []}]
      parameters:
        - in: query
          name: status
          required: false
          schema:
            type: string
            enum: [submitted, awaiting_merchant, awaiting_platform, offer_pending,
                   in_mediation, in_arbitration, settled, awarded, resolved,
                   closed_unresolved, closed_noncompliant, withdrawn, rejected]
        - in: query
          name: page
          required: false
          schema: {type: integer, minimum: 1, default: 1}
      responses:
        200:
          description: One page of cases.
          content:
            application/json:
              schema: CasePageSchema
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    args = CASE_LIST_ARGS.load_or_raise(
        {k: v for k, v in request.args.items() if v != ""}
    )
    page = page_arg()
    query = permissions.visible_cases(user).options(
        selectinload(Case.consumer),
        selectinload(Case.merchant),
        selectinload(Case.platform),
        selectinload(Case.mediator),
        selectinload(Case.arbitrator),
    )
    if "status" in args:
        query = query.where(Case.status == args["status"])
    if user.role in DEADLINE_FIRST:
        query = query.order_by(Case.due_at.is_(None), Case.due_at, Case.id)
    else:
        query = query.order_by(Case.filed_at.desc(), Case.id.desc())
    result = paginate(query, page)
    result["items"] = CASE_SUMMARIES.dump(result["items"])
    return jsonify(result)


@bp.get(f"/cases/{CASE}")
def get_case(case_id: int):
    """Show a case with its timeline and the actions open to the caller.

    Parties, assigned staff and regulators; anyone else gets 404.
    ---
    get:
      security: [{bearerAuth: []}, {cookieAuth: []}]
      responses:
        200:
          description: The case.
          content:
            application/json:
              schema: CaseSchema
        401: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    case, relation = permissions.get_case_for(user, case_id)
    return jsonify(_case_body(case, relation))


@bp.get(f"/cases/{CASE}/events")
def case_events(case_id: int):
    """Show the timeline of a case with its hash chain checked.

    Every event carries the SHA-256 `hash` of its content and the `prev_hash` of
    the event before; `chain_intact` says whether every link still matches.
    ---
    get:
      security: [{bearerAuth: []}, {cookieAuth: []}]
      responses:
        200:
          description: The events, oldest first.
          content:
            application/json:
              schema: CaseEventsSchema
        401: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    case, _ = permissions.get_case_for(user, case_id)
    events = list(case.events)
    broken = chain.verify_events(events)
    return jsonify(
        CASE_EVENTS.dump(
            {
                "case_id": case.id,
                "reference": case.reference,
                "chain_intact": not broken,
                "broken": [{"seq": b.seq, "reason": b.reason} for b in broken],
                "events": events,
            }
        )
    )


def _case_body(case: Case, relation: str | None) -> dict[str, Any]:
    """Serialize a case for a caller with ``relation`` to it."""
    body = CASE_SCHEMA.dump(case)
    body["allowed_actions"] = services.allowed_actions(case, relation)
    return body


# Acting -------------------------------------------------------------------------


@bp.post(f"/cases/{CASE}/actions")
def act_on_case(case_id: int):
    """Take one lifecycle action on a case.

    The body names the `action` and carries its fields (see `CaseAction`); the
    case's `allowed_actions` lists those open to the caller now. An action that is
    not open now answers 409. The answer is the case as `GET` shows it.

    Actions on one case are applied one after the other. A mediator (or
    arbitrator) who takes a case that someone else took a moment before gets
    409 `already_taken`.
    ---
    post:
      security: [{bearerAuth: []}, {cookieAuth: []}]
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/CaseAction"}
      responses:
        200:
          description: The case after the action.
          content:
            application/json:
              schema: CaseSchema
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        409: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    body = json_body()
    # Locked until the commit: two people acting at once take turns, and a
    # mediator who takes a case another just took is told so (409).
    case, relation = permissions.get_case_to_act(user, case_id, body.get("action"))
    action, payload = load_action(body)
    try:
        services.apply_action(
            case, action, payload, actor=user, relation=relation, now=clock.now_utc()
        )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise _changed_meanwhile() from None
    return jsonify(_case_body(case, permissions.case_relation(user, case)))


def _changed_meanwhile() -> Conflict:
    return Conflict(
        gettext("The case changed at the same moment; reload it and try again."),
        code="concurrent_change",
    )


@spec_component
def _case_action_component(spec: APISpec, plugin: MarshmallowPlugin) -> None:
    """Describe the action body: one variant per payload schema, ``action`` named."""
    by_schema: dict[type, list[str]] = {}
    for action, schema in ACTION_SCHEMAS.items():
        by_schema.setdefault(schema, []).append(action)
    variants = []
    for schema, actions in by_schema.items():
        variant = copy.deepcopy(plugin.converter.schema2jsonschema(schema()))
        variant["title"] = schema.__name__.removesuffix("Schema")
        variant.setdefault("properties", {})["action"] = {
            "type": "string",
            "enum": actions,
        }
        variant["required"] = ["action", *variant.get("required", [])]
        variants.append(variant)
    spec.components.schema(
        "CaseAction",
        {
            "description": '`{"action": <name>, ...fields of that action}`.',
            "oneOf": variants,
        },
    )


# Evidence -----------------------------------------------------------------------


@bp.post(f"/cases/{CASE}/evidence")
def upload_evidence(case_id: int):
    """Attach an evidence file to a case.

    Parties only, while the case is open. The type is sniffed from the content:
    JPEG, PNG, WebP, PDF, plain text or MP4. The file's SHA-256 enters the
    timeline.
    ---
    post:
      security: [{bearerAuth: []}, {cookieAuth: []}]
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              required: [file]
              properties:
                file: {type: string, format: binary}
      responses:
        201:
          description: The stored file.
          content:
            application/json:
              schema: EvidenceSchema
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        413: {$ref: "#/components/responses/Error"}
        415: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    case, relation = permissions.get_case_for(user, case_id)
    if not permissions.can_upload_evidence(relation, case):
        raise PermissionDenied(
            gettext(
                "Only the parties may add evidence, and only while the case is open."
            )
        )
    upload = request.files.get("file")
    if upload is None:
        raise ValidationError(fields={"file": gettext("Choose a file to upload.")})
    try:
        item = evidence_files.add_evidence(
            case,
            upload.stream,
            upload.filename,
            actor=user,
            relation=relation,
            now=clock.now_utc(),
        )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise _changed_meanwhile() from None
    response = jsonify(EVIDENCE_SCHEMA.dump(item))
    response.status_code = 201
    response.headers["Location"] = url_for(
        "api.download_evidence", case_id=case.id, evidence_id=item.id
    )
    return response


@bp.get(f"/cases/{CASE}/evidence/{EVIDENCE}")
def download_evidence(case_id: int, evidence_id: int):
    """Download an evidence file.

    Always an attachment, with the sniffed type and `X-Content-Type-Options:
    nosniff`. Anyone who may see the case.
    ---
    get:
      security: [{bearerAuth: []}, {cookieAuth: []}]
      responses:
        200:
          description: The file.
          content:
            application/octet-stream:
              schema: {type: string, format: binary}
        401: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    case, _ = permissions.get_case_for(user, case_id)
    return evidence_files.send_evidence(evidence_files.get_evidence(case, evidence_id))
