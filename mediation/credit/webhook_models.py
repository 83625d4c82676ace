"""The attempt log of webhook deliveries (one row per HTTP attempt).

Kept apart from :mod:`mediation.credit.models` only because that module is the
lead's; it belongs beside :class:`~mediation.credit.models.WebhookDelivery`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class WebhookAttempt(db.Model):
    """One attempt to deliver a webhook: when, and what the receiver answered."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id"), index=True
    )
    #: 1 for the first attempt of the delivery, 2 for the first retry ...
    number: Mapped[int] = mapped_column()
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The receiver's HTTP status; None when no answer came (refused, timeout).
    status_code: Mapped[int | None] = mapped_column()
    #: Why the attempt failed (None when it succeeded).
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(default=0)

    delivery = relationship("WebhookDelivery")


__all__ = ["WebhookAttempt"]
