"""Mass-complaint alerts and case groups (issue #7).

A :class:`MassAlert` says that one merchant drew at least N complaints of one
category within W days; :class:`MassAlertCase` links it to those complaints. A
merchant has at most one *active* (open or grouped) alert per category at a
time, enforced by a unique partial index, so two detectors (the scheduled job
in two processes, or the job and a filing) can never raise the same alert
twice. A :class:`CaseGroup` gathers related complaints against one merchant so
that one mediator handles them together; its cases point at it
(``cases.group_id``) and share one chat room, stored on the group's first case
(``room_case_id``).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class AlertStatus(str, enum.Enum):
    """Where an alert stands: open, then grouped, resolved or dismissed."""

    open = "open"
    #: Some of its complaints were grouped for one mediator; still active.
    grouped = "grouped"
    resolved = "resolved"
    #: Unfounded: the credit fact it recorded is withdrawn.
    dismissed = "dismissed"


#: Statuses of an alert that new complaints of its merchant and category join.
ACTIVE_STATUSES = (AlertStatus.open.value, AlertStatus.grouped.value)
_ACTIVE_SQL = text("status IN ('open', 'grouped')")


class AlertSource(str, enum.Enum):
    """What raised an alert."""

    filing = "filing"
    job = "job"


class MassAlert(db.Model):
    """A merchant drew at least ``threshold`` complaints of one category within
    ``window_days`` days."""

    __tablename__ = "mass_alerts"
    __table_args__ = (
        # One active alert per merchant and category: the guarantee behind the
        # detectors' locks (see mediation.analytics.alerts).
        Index(
            "ix_mass_alerts_active_key",
            "merchant_id",
            "category",
            unique=True,
            postgresql_where=_ACTIVE_SQL,
            sqlite_where=_ACTIVE_SQL,
        ),
        Index("ix_mass_alerts_status_raised", "status", "raised_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    category: Mapped[str] = mapped_column(String(30))
    #: The threshold N and window W in force when it was raised.
    threshold: Mapped[int] = mapped_column()
    window_days: Mapped[int] = mapped_column()
    #: The start of the counting window when raised (raised_at - W days):
    #: complaints filed since then join the alert while it is active.
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    #: How many complaints it holds (its links).
    count: Mapped[int] = mapped_column()
    #: ``open``, ``grouped``, ``resolved`` or ``dismissed``.
    status: Mapped[str] = mapped_column(String(20), default=AlertStatus.open.value)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: ``filing`` (the complaint that reached the threshold) or ``job``.
    raised_by: Mapped[str] = mapped_column(String(20))
    #: When its newest complaint was filed.
    last_filed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The credit fact it recorded (``mass_alert``); None once withdrawn.
    #: ``use_alter``: credit events point at cases, which point at groups,
    #: which point at alerts.
    credit_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("credit_events.id", use_alter=True, ondelete="SET NULL")
    )
    #: Who resolved or dismissed it, when, and the note or reason given.
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    merchant = relationship("Merchant")
    resolved_by = relationship("User")
    links = relationship(
        "MassAlertCase",
        back_populates="alert",
        order_by="MassAlertCase.case_id",
        cascade="all, delete-orphan",
    )
    groups = relationship("CaseGroup", back_populates="alert", order_by="CaseGroup.id")

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def reference(self) -> str:
        return f"A-{self.id:06d}"

    def __repr__(self) -> str:
        return f"<MassAlert {self.id} {self.merchant_id}/{self.category} {self.status}>"


class MassAlertCase(db.Model):
    """One complaint of an alert."""

    __tablename__ = "mass_alert_cases"

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("mass_alerts.id"), primary_key=True
    )
    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id"), primary_key=True, index=True
    )
    #: When the complaint joined the alert (raised, or filed later).
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())

    alert = relationship("MassAlert", back_populates="links")
    case = relationship("Case")


class CaseGroup(db.Model):
    """Related complaints against one merchant, handled by one mediator."""

    __tablename__ = "case_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    category: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(200))
    #: The mediator who handles every grouped case in mediation.
    mediator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The alert it was made from (None: grouped without one).
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("mass_alerts.id"), index=True
    )
    #: The case whose chat rooms hold the group's room (key ``group``): its
    #: first case. ``use_alter``: cases point at groups too.
    room_case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", use_alter=True, ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    merchant = relationship("Merchant")
    mediator = relationship("User", foreign_keys=[mediator_id])
    created_by = relationship("User", foreign_keys=[created_by_id])
    alert = relationship("MassAlert", back_populates="groups")
    cases = relationship(
        "Case",
        foreign_keys="Case.group_id",
        order_by="Case.id",
        viewonly=True,
    )

    @property
    def reference(self) -> str:
        return group_reference(self.id)

    def __repr__(self) -> str:
        return f"<CaseGroup {self.id} {self.merchant_id}/{self.category}>"


def group_reference(group_id: int) -> str:
    """Return the public reference of a case group (``G-000012``)."""
    return f"G-{group_id:06d}"
