"""JSON shapes of the merchant registry (output and input schemas)."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from mediation.merchants.services import (
    COMMITMENT_MAX,
    KINDS,
    NAME_MAX,
    QUERY_MAX,
    SHOP_URL_MAX,
)
from mediation.schemas import BaseSchema

#: The credit grades of DESIGN.md "Credit records".
GRADES = ("A", "B", "C", "D")
REGION = "Six-digit administrative division code."
CONSENT = "The merchant agreed in advance to online arbitration."
#: A credit code as typed may carry spaces; the service normalises it.
USCC_INPUT_MAX = 40


class MerchantSchema(Schema):
    """A public registry entry."""

    id = fields.Integer(dump_only=True)
    name = fields.String(metadata={"description": "Registered name."})
    uscc = fields.String(
        metadata={"description": "Unified social credit code (GB 32100-2015)."}
    )
    kind = fields.String(validate=validate.OneOf(KINDS))
    platform_id = fields.Integer(
        allow_none=True,
        metadata={"description": "The platform operator this shop sells on, if any."},
    )
    shop_url = fields.String(allow_none=True)
    region_code = fields.String(metadata={"description": REGION})
    arbitration_consent = fields.Boolean(metadata={"description": CONSENT})
    commitment = fields.String(
        allow_none=True, metadata={"description": "Public commitment text."}
    )
    grade = fields.String(
        allow_none=True,
        dump_default=None,
        validate=validate.OneOf(GRADES),
        metadata={
            "description": (
                "Credit grade A-D. Always null until credit records are computed "
                "(the field is reserved so that clients need not change then)."
            )
        },
    )


class MerchantPageSchema(Schema):
    """One page of a registry search."""

    items = fields.List(fields.Nested(MerchantSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    pages = fields.Integer()


class MerchantSearchArgsSchema(BaseSchema):
    """Query arguments of the registry search (``page`` is read separately)."""

    class Meta:
        # Other query arguments (page, lang) belong to other readers.
        unknown = EXCLUDE

    q = fields.String(
        validate=validate.Length(max=QUERY_MAX),
        metadata={"description": "A fragment of the name or the start of the code."},
    )
    kind = fields.String(validate=validate.OneOf(KINDS))
    platform_id = fields.Integer(
        strict=False, metadata={"description": "Only shops on this platform."}
    )


class UpdateMerchantSchema(BaseSchema):
    """Edit a registry entry (regulator): the fields that change."""

    name = fields.String(validate=validate.Length(max=NAME_MAX))
    uscc = fields.String(
        validate=validate.Length(max=USCC_INPUT_MAX),
        metadata={"description": "Checked against the GB 32100-2015 check character."},
    )
    kind = fields.String(validate=validate.OneOf(KINDS))
    region_code = fields.String(metadata={"description": REGION})
    platform_id = fields.Integer(
        strict=True,
        allow_none=True,
        metadata={"description": "A merchant of kind platform; not for a platform."},
    )
    shop_url = fields.String(
        allow_none=True, validate=validate.Length(max=SHOP_URL_MAX)
    )
    arbitration_consent = fields.Boolean()
    commitment = fields.String(
        allow_none=True, validate=validate.Length(max=COMMITMENT_MAX)
    )


class CreateMerchantSchema(UpdateMerchantSchema):
    """Register a merchant (regulator): name, code, kind and region are required."""

    name = fields.String(required=True, validate=validate.Length(max=NAME_MAX))
    uscc = fields.String(
        required=True,
        validate=validate.Length(max=USCC_INPUT_MAX),
        metadata={"description": "Checked against the GB 32100-2015 check character."},
    )
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    region_code = fields.String(required=True, metadata={"description": REGION})
