"""The registry in the JSON API: search, read, register and edit merchants."""

from __future__ import annotations

from flask import request

from mediation import clock
from mediation.api import bp
from mediation.api.common import load, page_arg, paginate
from mediation.auth.models import Role
from mediation.auth.permissions import require_role
from mediation.extensions import db
from mediation.merchants import services
from mediation.merchants.schemas import (
    CreateMerchantSchema,
    MerchantPageSchema,
    MerchantSchema,
    MerchantSearchArgsSchema,
    UpdateMerchantSchema,
)


@bp.get("/merchants")
def merchant_list():
    """Search the registry by name or credit code.
    ---
    get:
      tags: [merchants]
      summary: Search the merchant registry
      description: >-
        Anyone may search. `q` matches a fragment of the name or the start of the
        credit code; items are sorted by name. `grade` is null until credit
        records are computed.
      parameters:
        - {in: query, name: q, schema: {type: string, maxLength: 100}}
        - in: query
          name: kind
          schema: {type: string, enum: [goods, service, platform]}
        - {in: query, name: platform_id, schema: {type: integer}}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
      responses:
        200:
          description: a page of merchants
          content: {application/json: {schema: MerchantPageSchema}}
        400: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    page = page_arg()
    args = MerchantSearchArgsSchema().load_or_raise(request.args.to_dict())
    query = services.search_merchants(
        args.get("q"), kind=args.get("kind"), platform_id=args.get("platform_id")
    )
    return MerchantPageSchema().dump(paginate(query, page))


@bp.get("/merchants/<int:merchant_id>")
def merchant_get(merchant_id: int):
    """Read one registry entry.
    ---
    get:
      tags: [merchants]
      summary: Read a registry entry
      parameters:
        - {in: path, name: merchant_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: the merchant
          content: {application/json: {schema: MerchantSchema}}
        404: {$ref: "#/components/responses/Error"}
    """
    return MerchantSchema().dump(services.get_merchant(merchant_id))


@bp.post("/merchants")
def merchant_create():
    """Register a merchant (regulator).
    ---
    post:
      tags: [merchants]
      summary: Register a merchant
      description: >-
        Regulators only. The credit code is checked (length, alphabet and the
        GB 32100-2015 check character) and must not be registered yet; errors
        come back as 422 with the offending field in `fields`.
      requestBody:
        required: true
        content: {application/json: {schema: CreateMerchantSchema}}
      responses:
        201:
          description: the new registry entry
          content: {application/json: {schema: MerchantSchema}}
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    regulator = require_role(Role.regulator)
    values = load(CreateMerchantSchema())
    merchant = services.register_merchant(values, now=clock.now_utc(), actor=regulator)
    db.session.commit()
    return MerchantSchema().dump(merchant), 201


@bp.patch("/merchants/<int:merchant_id>")
def merchant_update(merchant_id: int):
    """Edit a registry entry (regulator).
    ---
    patch:
      tags: [merchants]
      summary: Edit a registry entry
      description: >-
        Regulators only. Send the fields that change. A platform with shops on
        it cannot change its kind (409).
      parameters:
        - {in: path, name: merchant_id, required: true, schema: {type: integer}}
      requestBody:
        required: true
        content: {application/json: {schema: UpdateMerchantSchema}}
      responses:
        200:
          description: the changed entry
          content: {application/json: {schema: MerchantSchema}}
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        409: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    regulator = require_role(Role.regulator)
    merchant = services.get_merchant(merchant_id)
    values = load(UpdateMerchantSchema())
    services.update_merchant(merchant, values, now=clock.now_utc(), actor=regulator)
    db.session.commit()
    return MerchantSchema().dump(merchant)
