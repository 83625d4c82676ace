"""The audit log: one row per action of a regulator (and per data export)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class AuditEntry(db.Model):
    """Who did what to which object, when; append-only."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None for the system (a scheduled job).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    #: The actor's role when acting (``regulator``, ``mediator`` ...).
    actor_role: Mapped[str] = mapped_column(String(20))
    #: What was done, dotted: ``alert.resolve``, ``warning.publish``, ``export.cases``.
    action: Mapped[str] = mapped_column(String(60), index=True)
    #: The kind of object acted on (``case``, ``merchant``, ``alert`` ...).
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int | None] = mapped_column()
    #: The action's particulars (reasons, filters, counts); never passwords.
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    actor = relationship("User")
