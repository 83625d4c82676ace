"""Users, roles, API tokens and merchant-staff claims."""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class Role(str, enum.Enum):
    consumer = "consumer"
    merchant = "merchant"
    mediator = "mediator"
    arbitrator = "arbitrator"
    regulator = "regulator"


STAFF_ROLES = (Role.merchant, Role.mediator, Role.arbitrator, Role.regulator)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20), index=True)
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    phone: Mapped[str | None] = mapped_column(String(30))
    #: Merchant staff belong to exactly one merchant.
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchants.id"), index=True
    )
    is_active_account: Mapped[bool] = mapped_column(default=True)
    #: Mediators: complaint categories they handle (empty: all).
    categories: Mapped[list] = mapped_column(JSON, default=list)
    #: Part of the session id: changing it signs out every session of the user.
    session_nonce: Mapped[str] = mapped_column(
        String(32), default=lambda: secrets.token_hex(8)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    merchant = relationship("Merchant", foreign_keys=[merchant_id])

    def set_password(self, password: str, method: str = "scrypt") -> None:
        """Hash and store ``password`` (werkzeug scrypt; ``method`` sets its cost)."""
        self.password_hash = generate_password_hash(password, method=method)
        self.session_nonce = secrets.token_hex(8)

    def check_password(self, password: str) -> bool:
        """Return True when ``password`` matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_nonce}"

    @property
    def is_active(self) -> bool:
        return self.is_active_account

    def has_role(self, *roles: Role | str) -> bool:
        """Return True when the user has one of ``roles``."""
        return self.role in {r.value if isinstance(r, Role) else r for r in roles}

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role} {self.email}>"


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: SHA-256 of the token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user = relationship("User")

    @staticmethod
    def hash_token(token: str) -> str:
        """Return the stored form of a bearer token."""
        return hashlib.sha256(token.encode()).hexdigest()


class ClaimStatus(str, enum.Enum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class MerchantClaim(db.Model):
    """A registered user's request to act as staff of a merchant."""

    __tablename__ = "merchant_claims"
    __table_args__ = (
        Index("ix_merchant_claims_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    #: What the claimant says proves the relation (job title, business licence ...).
    statement: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=ClaimStatus.pending.value)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user = relationship("User", foreign_keys=[user_id])
    merchant = relationship("Merchant")
