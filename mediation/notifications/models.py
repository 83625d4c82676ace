"""In-app notifications (the bell) and their e-mail state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    #: Message key; the text is rendered in the reader's language when shown.
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: ``pending``, ``sent``, ``logged`` (no SMTP server), ``failed`` or
    #: ``skipped`` (the demo data's: no mail is sent for them).
    email_status: Mapped[str | None] = mapped_column(String(20))

    user = relationship("User")
    case = relationship("Case")
