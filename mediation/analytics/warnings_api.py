"""Consumer warnings in the JSON API: ``/api/v1/warnings``.

Anyone reads the published warnings; regulators also read drafts and withdrawn
ones, write (``POST``: published at once, or a draft), publish a draft and
withdraw. Thin adapters over :mod:`mediation.analytics.warning_services`; the
YAML after ``---`` is each endpoint's OpenAPI operation.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, request
from flask_babel import gettext
from flask_login import current_user
from marshmallow import EXCLUDE, Schema, fields, validate

from mediation import clock
from mediation.analytics import warning_services as services
from mediation.api import bp
from mediation.api.common import load, page_arg, paginate
from mediation.auth.models import Role
from mediation.auth.permissions import require_role
from mediation.errors import NotFound, PermissionDenied, ValidationError
from mediation.extensions import db
from mediation.schemas import BaseSchema

WARNING = "<int(max=2147483647):warning_id>"


# Schemas --------------------------------------------------------------------


class WarningMerchantSchema(Schema):
    """A merchant a warning names."""

    id = fields.Integer()
    name = fields.String()
    uscc = fields.String(metadata={"description": "Unified social credit code."})


class WarningSchema(Schema):
    """A consumer warning. Regulators also get the draft and withdrawal fields."""

    id = fields.Integer()
    title = fields.String()
    body = fields.String(
        metadata={"description": "Plain text; blank lines separate paragraphs."}
    )
    category = fields.String(
        metadata={"description": "A complaint category code, or `general`."}
    )
    status = fields.String(
        metadata={
            "description": "`published` (others only for regulators: "
            "`draft`, `withdrawn`)."
        }
    )
    merchant_ids = fields.Method(
        "_merchant_ids",
        metadata={"description": "The registered merchants it names (may be empty)."},
    )
    merchants = fields.List(fields.Nested(WarningMerchantSchema))
    published_at = fields.DateTime(allow_none=True)
    url = fields.Method("_url", metadata={"description": "The public page."})
    created_at = fields.DateTime(metadata={"description": "Regulators only."})
    updated_at = fields.DateTime(metadata={"description": "Regulators only."})
    author_id = fields.Integer(metadata={"description": "Regulators only."})
    withdrawn_at = fields.DateTime(
        allow_none=True, metadata={"description": "Regulators only."}
    )
    withdrawal_reason = fields.String(
        allow_none=True, metadata={"description": "Regulators only."}
    )

    def _merchant_ids(self, warning) -> list[int]:
        return [m.id for m in warning.merchants]

    def _url(self, warning) -> str:
        return services.public_url(warning)


PUBLIC_FIELDS = (
    "id",
    "title",
    "body",
    "category",
    "status",
    "merchant_ids",
    "merchants",
    "published_at",
    "url",
)
_PUBLIC = WarningSchema(only=PUBLIC_FIELDS)
_FULL = WarningSchema()


class WarningPageSchema(Schema):
    """One page of warnings, newest first."""

    items = fields.List(fields.Nested(WarningSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    pages = fields.Integer()


class WarningListArgsSchema(BaseSchema):
    """Query arguments of the warning list (``page`` is read separately)."""

    class Meta:
        unknown = EXCLUDE

    category = fields.String(validate=validate.OneOf(services.CATEGORIES))
    merchant_id = fields.Integer(strict=False, validate=validate.Range(min=1))
    since = fields.String(validate=validate.Length(max=40))
    status = fields.String(validate=validate.OneOf((*services.STATUSES, "all")))


class CreateWarningSchema(BaseSchema):
    """A new consumer warning."""

    title = fields.String(
        required=True, validate=validate.Length(min=1, max=services.TITLE_MAX)
    )
    body = fields.String(
        required=True,
        validate=validate.Length(min=1, max=services.BODY_MAX),
        metadata={"description": "Plain text; blank lines separate paragraphs."},
    )
    category = fields.String(
        required=True,
        validate=validate.OneOf(services.CATEGORIES),
        metadata={"description": "A complaint category code, or `general`."},
    )
    merchant_ids = fields.List(
        fields.Integer(strict=True),
        load_default=list,
        validate=validate.Length(max=services.MERCHANTS_MAX),
        metadata={"description": "Registered merchants it names (optional)."},
    )
    status = fields.String(
        load_default="published",
        validate=validate.OneOf(("published", "draft")),
        metadata={
            "description": "`published` (default: on the public site at once) or "
            "`draft` (to check and publish later)."
        },
    )


class WithdrawWarningSchema(BaseSchema):
    """Why a published warning is withdrawn."""

    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=services.REASON_MAX),
        metadata={"description": "Kept on record for regulators; not published."},
    )


# Helpers --------------------------------------------------------------------


def _is_regulator() -> bool:
    return current_user.is_authenticated and current_user.role == Role.regulator.value


def _dump(warning) -> dict[str, Any]:
    return (_FULL if _is_regulator() else _PUBLIC).dump(warning)


def _since(raw: str | None) -> datetime | None:
    """Parse ``since``: an ISO 8601 time with offset, or a date (its start in the
    platform's time zone).

    :raise ValidationError: for anything else.
    """
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            zone = ZoneInfo(current_app.config["TIME_ZONE"])
            return datetime.combine(day, time.min, zone)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationError(
            fields={
                "since": gettext(
                    "Enter a date (YYYY-MM-DD) or a time with its offset (ISO 8601)."
                )
            }
        )
    return moment


# Endpoints ------------------------------------------------------------------


@bp.get("/warnings")
def warning_list():
    """List consumer warnings, newest first.
    ---
    get:
      tags: [warnings]
      summary: List consumer warnings
      description: >-
        Anyone may read the published warnings, newest first (by publication
        time). Filters: `category` (a complaint category code or `general`),
        `merchant_id` (warnings naming that merchant), `since` (published at
        or after: a date `YYYY-MM-DD`, taken in the platform's time zone, or a
        time with offset). Regulators may also ask for `status=draft`,
        `withdrawn` or `all` (anyone else 403) and get the draft and
        withdrawal fields.
      security: []
      parameters:
        - in: query
          name: category
          schema: {type: string}
        - {in: query, name: merchant_id, schema: {type: integer, minimum: 1}}
        - {in: query, name: since, schema: {type: string}}
        - in: query
          name: status
          schema: {type: string, enum: [published, draft, withdrawn, all]}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
      responses:
        200:
          description: a page of warnings
          content: {application/json: {schema: WarningPageSchema}}
        400: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    page = page_arg()
    args = WarningListArgsSchema().load_or_raise(request.args.to_dict())
    status = args.get("status", "published")
    if status != "published" and not _is_regulator():
        raise PermissionDenied(
            gettext("Only regulators see drafts and withdrawn warnings."),
            code="forbidden",
        )
    query = services.list_warnings(
        status=None if status == "all" else status,
        category=args.get("category"),
        merchant_id=args.get("merchant_id"),
        since=_since(args.get("since")),
    )
    result = paginate(query, page)
    result["items"] = [_dump(w) for w in result["items"]]
    return result


@bp.post("/warnings")
def warning_create():
    """Write a consumer warning (regulator).
    ---
    post:
      tags: [warnings]
      summary: Write a consumer warning
      description: >-
        Regulators only (401 without credentials, 403 for other roles). The
        warning is published at once unless `status` is `draft`; publishing
        puts it on the public site (`url`), on the credit pages of the
        merchants named, in the credit feed (items of kind `warning`) and
        sends `warning.published` to webhook subscribers. `merchant_ids` must
        name registered merchants (422 with the unknown numbers in
        `fields.merchant_ids`).
      requestBody:
        required: true
        content: {application/json: {schema: CreateWarningSchema}}
      responses:
        201:
          description: the new warning
          content: {application/json: {schema: WarningSchema}}
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    regulator = require_role(Role.regulator)
    data = load(CreateWarningSchema())
    warning = services.create_warning(
        data,
        actor=regulator,
        now=clock.now_utc(),
        publish=data["status"] == "published",
    )
    db.session.commit()
    return _FULL.dump(warning), 201


@bp.get(f"/warnings/{WARNING}")
def warning_get(warning_id: int):
    """Read one consumer warning.
    ---
    get:
      tags: [warnings]
      summary: Read a consumer warning
      description: >-
        Anyone may read a published warning; drafts and withdrawn warnings
        are 404 except for regulators.
      security: []
      responses:
        200:
          description: the warning
          content: {application/json: {schema: WarningSchema}}
        404: {$ref: "#/components/responses/Error"}
    """
    warning = services.get_warning(warning_id)
    if not warning.is_public and not _is_regulator():
        raise NotFound()
    return _dump(warning)


@bp.post(f"/warnings/{WARNING}/publish")
def warning_publish_api(warning_id: int):
    """Publish a draft warning (regulator).
    ---
    post:
      tags: [warnings]
      summary: Publish a draft warning
      description: >-
        Regulators only. 409 (`already_published`) unless it is a draft.
      responses:
        200:
          description: the published warning
          content: {application/json: {schema: WarningSchema}}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        409: {$ref: "#/components/responses/Error"}
    """
    regulator = require_role(Role.regulator)
    warning = services.get_warning_to_change(regulator, warning_id)
    services.publish_warning(warning, actor=regulator, now=clock.now_utc())
    db.session.commit()
    return _FULL.dump(warning)


@bp.post(f"/warnings/{WARNING}/withdraw")
def warning_withdraw_api(warning_id: int):
    """Withdraw a published warning (regulator).
    ---
    post:
      tags: [warnings]
      summary: Withdraw a published warning
      description: >-
        Regulators only. The warning leaves the public site and the credit
        pages (it stays on record with the reason); the feed gets items of
        kind `warning_withdrawn` and subscribers `warning.withdrawn`. 409
        (`not_published`) unless it is published.
      requestBody:
        required: true
        content: {application/json: {schema: WithdrawWarningSchema}}
      responses:
        200:
          description: the withdrawn warning
          content: {application/json: {schema: WarningSchema}}
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        409: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    regulator = require_role(Role.regulator)
    data = load(WithdrawWarningSchema())
    warning = services.get_warning_to_change(regulator, warning_id)
    services.withdraw_warning(
        warning, data["reason"], actor=regulator, now=clock.now_utc()
    )
    db.session.commit()
    return _FULL.dump(warning)
