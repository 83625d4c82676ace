"""How Flask-Login finds the user: session cookie or API bearer token."""

from __future__ import annotations

from flask import g
from sqlalchemy.orm import joinedload

from mediation import clock
from mediation.auth.models import ApiToken, User
from mediation.extensions import db, login_manager


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """Return the user of a session id ``"<id>:<nonce>"`` (None if stale)."""
    user_id, _, nonce = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.session_nonce != nonce or not user.is_active_account:
        return None
    return user


@login_manager.request_loader
def load_user_from_token(request) -> User | None:
    """Return the user of a valid ``Authorization: Bearer`` token, else None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    row = db.session.scalar(
        db.select(ApiToken)
        .options(joinedload(ApiToken.user))  # token and user in one query
        .where(ApiToken.token_hash == ApiToken.hash_token(token.strip()))
    )
    now = clock.now_utc()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    if not row.user.is_active_account:
        return None
    g.api_token = row
    return row.user
