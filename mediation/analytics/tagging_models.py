"""Tables of complaint text tagging (issue #7).

- :class:`TextFlag`: the text of a complaint points to a hot-spot category other
  than the one the consumer chose; a regulator confirms or dismisses it.
- :class:`CaseTag`: a hot-spot category a regulator confirmed for a case, beside
  the category as filed (which never changes). Statistics and the risk model
  read this table: ``(case_id, category)``, one row per confirmed pair.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class TextFlag(db.Model):
    """A complaint whose text suggests another hot-spot category."""

    __tablename__ = "text_flags"
    __table_args__ = (
        Index("ix_text_flags_status_created", "status", "created_at"),
        Index("ix_text_flags_case_category", "case_id", "suggested_category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    #: The case's category when the flag was raised (or last updated).
    chosen_category: Mapped[str] = mapped_column(String(30))
    #: The hot-spot category the text points to.
    suggested_category: Mapped[str] = mapped_column(String(30), index=True)
    #: Distinct keywords that matched (as written in the rule set).
    keywords: Mapped[list] = mapped_column(JSON, default=list)
    #: Every match in ``text``: ``{"keyword", "lang", "start", "end"}``.
    matches: Mapped[list] = mapped_column(JSON, default=list)
    #: The complaint text the rules matched (for highlighting and the record).
    text: Mapped[str] = mapped_column(Text)
    #: SHA-256 of ``text``: a dismissed flag is not raised again for the same text.
    text_sha256: Mapped[str] = mapped_column(String(64))
    #: The complaint version the text belongs to.
    case_version: Mapped[int] = mapped_column(default=1)
    #: SHA-256 of the rule set that raised it.
    rules_sha256: Mapped[str] = mapped_column(String(64))
    #: ``pending``, ``confirmed``, ``dismissed``, ``obsolete`` (an amendment made
    #: it moot: the text no longer points there, or the category is now that one).
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: None when the system set the status (``obsolete``).
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Why it was dismissed (or made obsolete).
    reason: Mapped[str | None] = mapped_column(Text)

    case = relationship("Case")
    decided_by = relationship("User")


class CaseTag(db.Model):
    """A hot-spot category confirmed for a case besides its filed category."""

    __tablename__ = "case_tags"
    __table_args__ = (
        UniqueConstraint("case_id", "category"),
        Index("ix_case_tags_category", "category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    category: Mapped[str] = mapped_column(String(30))
    #: The flag it was confirmed from.
    flag_id: Mapped[int | None] = mapped_column(ForeignKey("text_flags.id"))
    confirmed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    case = relationship("Case")
    flag = relationship("TextFlag")
