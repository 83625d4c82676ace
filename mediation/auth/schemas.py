"""JSON shapes of the account API: users and bearer tokens."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from mediation.schemas import BaseSchema


class CreateTokenSchema(BaseSchema):
    """Credentials exchanged for a bearer token."""

    email = fields.String(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(max=1024))


class TokenSchema(Schema):
    """A new bearer token: the secret is returned once and never stored."""

    token = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


class RegisterUserSchema(BaseSchema):
    """Self-registration of a consumer."""

    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(max=1024))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    locale = fields.String(
        load_default="zh_CN", validate=validate.OneOf(["zh_CN", "en"])
    )


class UserSchema(Schema):
    """A user as the API shows it to the user themself."""

    id = fields.Integer(dump_only=True)
    email = fields.String()
    name = fields.String()
    role = fields.String(
        metadata={
            "enum": ["consumer", "merchant", "mediator", "arbitrator", "regulator"]
        }
    )
    locale = fields.String(metadata={"enum": ["zh_CN", "en"]})
    merchant_id = fields.Integer(allow_none=True)
