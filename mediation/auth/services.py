"""Account services: registration, staff accounts, tokens, merchant claims."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import lazy_gettext as _l

from mediation.analytics.audit import record_audit
from mediation.auth.models import ApiToken, ClaimStatus, MerchantClaim, Role, User
from mediation.errors import Conflict, NotFound, ValidationError
from mediation.extensions import db
from mediation.merchants.models import Merchant
from mediation.notifications.services import notify

MIN_PASSWORD_LENGTH = 8


def normalise_email(email: str) -> str:
    """Return the canonical form of an address.

    :raise ValidationError: for an address that is not valid.
    """
    try:
        return validate_email(
            (email or "").strip(), check_deliverability=False
        ).normalized.lower()
    except EmailNotValidError:
        raise ValidationError(
            fields={"email": _l("Enter a valid e-mail address.")}
        ) from None


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            fields={
                "password": _l("Use at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
            }
        )


#: The hash cost of accounts whose password is public (the demo data's, the
#: test suite's): scrypt with N=1024, ~1 ms instead of ~160 ms on the CI machine.
PUBLIC_PASSWORD_HASH = "scrypt:1024:8:1"


@contextlib.contextmanager
def public_passwords() -> Iterator[None]:
    """Hash passwords at :data:`PUBLIC_PASSWORD_HASH` inside the block.

    For accounts whose password is printed for everyone (the demo data): a
    costly hash protects no secret, and ``seed-demo`` makes some fifty of them.
    """
    config = current_app.config
    method = config["PASSWORD_HASH_METHOD"]
    config["PASSWORD_HASH_METHOD"] = PUBLIC_PASSWORD_HASH
    try:
        yield
    finally:
        config["PASSWORD_HASH_METHOD"] = method


def create_user(
    *,
    email: str,
    password: str,
    name: str,
    role: Role | str,
    now: datetime,
    locale: str = "zh_CN",
    merchant_id: int | None = None,
    phone: str | None = None,
    categories: list[str] | None = None,
    actor: User | None = None,
) -> User:
    """Create an account of any role.

    :param actor: the regulator creating a staff account (recorded in the audit
        log); None for self-registration, the command line and the demo data.
    :raise ValidationError: for a bad e-mail, short password, empty name, unknown
        role or locale, or a merchant account without a merchant.
    :raise Conflict: when the e-mail is taken.
    """
    role_value = role.value if isinstance(role, Role) else role
    errors = {}
    if role_value not in {r.value for r in Role}:
        errors["role"] = _l("Unknown role.")
    if not (name or "").strip():
        errors["name"] = _l("Enter your name.")
    if locale not in ("zh_CN", "en"):
        errors["locale"] = _l("Choose Chinese or English.")
    if role_value == Role.merchant.value:
        if merchant_id is None or db.session.get(Merchant, merchant_id) is None:
            errors["merchant_id"] = _l(
                "Merchant staff must belong to a registered merchant."
            )
    if categories:
        from mediation.cases.models import Category

        if role_value != Role.mediator.value:
            errors["categories"] = _l("Only mediators handle categories.")
        elif set(categories) - {c.value for c in Category}:
            errors["categories"] = _l("Choose among the listed categories.")
    if role_value != Role.merchant.value and merchant_id is not None:
        errors["merchant_id"] = _l("Only merchant staff belong to a merchant.")
    if errors:
        raise ValidationError(fields=errors)
    address = normalise_email(email)
    _check_password(password)
    if db.session.scalar(db.select(User.id).where(User.email == address)):
        raise Conflict(
            _l("An account with this e-mail already exists."),
            code="email_taken",
            fields={"email": _l("An account with this e-mail already exists.")},
        )
    user = User(
        email=address,
        name=name.strip(),
        role=role_value,
        locale=locale,
        merchant_id=merchant_id,
        phone=(phone or "").strip() or None,
        created_at=now,
        categories=sorted(set(categories or [])),
    )
    user.set_password(password, current_app.config["PASSWORD_HASH_METHOD"])
    db.session.add(user)
    db.session.flush()
    if actor is not None:
        record_audit(
            actor,
            "user.create",
            object_type="user",
            object_id=user.id,
            details={
                "email": user.email,
                "name": user.name,
                "role": user.role,
                "merchant_id": user.merchant_id,
                "categories": user.categories,
            },
            now=now,
        )
    return user


def register_consumer(
    *, email: str, password: str, name: str, now: datetime, locale: str = "zh_CN"
) -> User:
    """Self-registration: always a consumer account."""
    return create_user(
        email=email,
        password=password,
        name=name,
        role=Role.consumer,
        now=now,
        locale=locale,
    )


def set_locale(user: User, locale: str) -> None:
    """Remember the user's language (``zh_CN`` or ``en``).

    :raise ValidationError: for another language.
    """
    if locale not in ("zh_CN", "en"):
        raise ValidationError(fields={"locale": _l("Choose Chinese or English.")})
    user.locale = locale


def authenticate(email: str, password: str) -> User | None:
    """Return the active user with these credentials, or None."""
    try:
        address = normalise_email(email)
    except ValidationError:
        return None
    user = db.session.scalar(db.select(User).where(User.email == address))
    if (
        user is None
        or not user.is_active_account
        or not user.check_password(password or "")
    ):
        return None
    return user


def issue_token(user: User, *, now: datetime, ttl: timedelta) -> tuple[str, ApiToken]:
    """Create an API token; return the secret (shown once) and its row."""
    secret = secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        token_hash=ApiToken.hash_token(secret),
        created_at=now,
        expires_at=now + ttl,
    )
    db.session.add(row)
    db.session.flush()
    return secret, row


def revoke_token(token: ApiToken, *, now: datetime) -> None:
    """Revoke a token; later requests with it are anonymous."""
    token.revoked_at = token.revoked_at or now


def submit_claim(
    user: User, merchant: Merchant, statement: str, *, now: datetime
) -> MerchantClaim:
    """A registered user asks to act as staff of ``merchant``.

    :raise ValidationError: without a statement.
    :raise Conflict: when staff already, or a claim is pending.
    """
    if not (statement or "").strip():
        raise ValidationError(
            fields={"statement": _l("Explain how you are related to this merchant.")}
        )
    if user.role != Role.consumer.value:
        raise Conflict(_l("Only a personal account can claim a merchant."))
    pending = db.session.scalar(
        db.select(MerchantClaim.id).where(
            MerchantClaim.user_id == user.id,
            MerchantClaim.status == ClaimStatus.pending.value,
        )
    )
    if pending:
        raise Conflict(_l("You already have a pending request."))
    claim = MerchantClaim(
        user_id=user.id,
        merchant_id=merchant.id,
        statement=statement.strip(),
        created_at=now,
    )
    db.session.add(claim)
    db.session.flush()
    return claim


def decide_claim(
    claim: MerchantClaim, *, approve: bool, note: str | None, actor: User, now: datetime
) -> MerchantClaim:
    """Approve (the user becomes merchant staff) or reject a pending claim.

    :raise Conflict: when the claim was already decided.
    """
    if claim.status != ClaimStatus.pending.value:
        raise Conflict(_l("This request has already been decided."))
    claim.status = (ClaimStatus.approved if approve else ClaimStatus.rejected).value
    claim.decided_by_id = actor.id
    claim.decided_at = now
    claim.decision_note = (note or "").strip() or None
    if approve:
        claim.user.role = Role.merchant.value
        claim.user.merchant_id = claim.merchant_id
        # The account's powers changed: old sessions must sign in again.
        claim.user.session_nonce = secrets.token_hex(8)
    notify(
        [claim.user],
        "claim_approved" if approve else "claim_rejected",
        {"merchant": claim.merchant.name},
        now=now,
    )
    record_audit(
        actor,
        "claim.approve" if approve else "claim.reject",
        object_type="claim",
        object_id=claim.id,
        details={
            "user_id": claim.user_id,
            "email": claim.user.email,
            "merchant_id": claim.merchant_id,
            "merchant": claim.merchant.name,
            "note": claim.decision_note,
        },
        now=now,
    )
    return claim


def get_user(user_id: int) -> User:
    """Return a user.

    :raise NotFound: for an unknown id.
    """
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound()
    return user
