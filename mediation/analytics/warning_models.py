"""Consumer warnings (消费警示): what regulators publish on the public site."""

from __future__ import annotations

import enum
import re
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db

_BLANK_LINE = re.compile(r"\n[ \t\u3000]*\n")


class WarningStatus(str, enum.Enum):
    draft = "draft"
    published = "published"
    withdrawn = "withdrawn"


#: The registered merchants a warning names (any number, none for a general one).
warning_merchants = Table(
    "consumer_warning_merchants",
    db.metadata,
    Column("warning_id", ForeignKey("consumer_warnings.id"), primary_key=True),
    Column("merchant_id", ForeignKey("merchants.id"), primary_key=True, index=True),
)


class ConsumerWarning(db.Model):
    """A consumer warning: written as a draft, published, perhaps withdrawn.

    A published warning is never edited (what the public read stays on
    record); a withdrawn one leaves the public pages but keeps its text, who
    withdrew it, when and why.
    """

    __tablename__ = "consumer_warnings"
    __table_args__ = (
        Index("ix_consumer_warnings_status_published", "status", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    #: Plain text; blank lines separate paragraphs (escaped when shown).
    body: Mapped[str] = mapped_column(Text)
    #: A complaint category of API.md, or ``general``.
    category: Mapped[str] = mapped_column(String(30), index=True)
    #: ``draft``, ``published``, ``withdrawn``.
    status: Mapped[str] = mapped_column(String(20), default=WarningStatus.draft.value)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: Why it was withdrawn (required to withdraw; shown to regulators only).
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)

    author = relationship("User", foreign_keys=[author_id])
    published_by = relationship("User", foreign_keys=[published_by_id])
    withdrawn_by = relationship("User", foreign_keys=[withdrawn_by_id])
    merchants = relationship(
        "Merchant", secondary=warning_merchants, order_by="Merchant.name"
    )

    @property
    def is_public(self) -> bool:
        return self.status == WarningStatus.published.value

    def paragraphs(self) -> list[str]:
        """Return the body split at blank lines (each shown as one paragraph)."""
        text = self.body.replace("\r\n", "\n").replace("\r", "\n")
        return [p.strip("\n") for p in _BLANK_LINE.split(text) if p.strip()]

    def __repr__(self) -> str:
        return f"<ConsumerWarning {self.id} {self.status}>"
