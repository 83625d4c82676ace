"""Account API: bearer tokens and consumer registration under /api/v1."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, url_for
from flask_babel import gettext as _

from mediation import clock
from mediation.api import bp
from mediation.api.common import current_token, load
from mediation.auth import services
from mediation.auth.permissions import login_required, require_user
from mediation.auth.schemas import (
    CreateTokenSchema,
    RegisterUserSchema,
    TokenSchema,
    UserSchema,
)
from mediation.errors import Unauthorized
from mediation.extensions import db, limiter


@bp.post("/auth/tokens")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def create_token():
    """Issue an API token.
    ---
    post:
      tags: [auth]
      summary: Issue a bearer token
      description: >-
        Exchange e-mail and password for a bearer token, valid for
        API_TOKEN_TTL_HOURS. Rate limited like the sign-in form.
      security: []
      requestBody:
        required: true
        content: {application/json: {schema: CreateTokenSchema}}
      responses:
        201:
          description: the token
          content: {application/json: {schema: TokenSchema}}
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
        429: {$ref: "#/components/responses/Error"}
    """
    data = load(CreateTokenSchema())
    user = services.authenticate(data["email"], data["password"])
    if user is None:
        raise Unauthorized(
            _("The e-mail address or the password is wrong."),
            code="invalid_credentials",
        )
    ttl = timedelta(hours=current_app.config["API_TOKEN_TTL_HOURS"])
    secret, row = services.issue_token(user, now=clock.now_utc(), ttl=ttl)
    db.session.commit()
    body = TokenSchema().dump({"token": secret, "expires_at": row.expires_at})
    return body, 201, {"Cache-Control": "no-store"}


@bp.delete("/auth/tokens/current")
def revoke_current_token():
    """Revoke the bearer token of this request.
    ---
    delete:
      tags: [auth]
      summary: Revoke the bearer token used for this call
      responses:
        204: {description: revoked; later calls with it are anonymous}
        401: {$ref: "#/components/responses/Error"}
    """
    require_user()  # loads the caller, and with a bearer token, the token row
    token = current_token()
    if token is None:
        raise Unauthorized(_("Send the token to revoke as a bearer token."))
    services.revoke_token(token, now=clock.now_utc())
    db.session.commit()
    return "", 204


@bp.post("/users")
def register_user():
    """Register a consumer account.
    ---
    post:
      tags: [users]
      summary: Register a consumer
      description: >-
        Self-registration always creates a consumer; staff accounts are created
        by a regulator.
      security: []
      requestBody:
        required: true
        content: {application/json: {schema: RegisterUserSchema}}
      responses:
        201:
          description: the new user
          content: {application/json: {schema: UserSchema}}
        400: {$ref: "#/components/responses/Error"}
        409: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    data = load(RegisterUserSchema())
    user = services.register_consumer(
        email=data["email"],
        password=data["password"],
        name=data["name"],
        locale=data["locale"],
        now=clock.now_utc(),
    )
    db.session.commit()
    return UserSchema().dump(user), 201, {"Location": url_for("api.me")}


@bp.get("/users/me")
@login_required
def me():
    """Return the caller's account.
    ---
    get:
      tags: [users]
      summary: The signed-in user
      responses:
        200:
          description: the user
          content: {application/json: {schema: UserSchema}}
        401: {$ref: "#/components/responses/Error"}
    """
    return UserSchema().dump(require_user())
