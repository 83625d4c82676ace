"""The SLA sweep: send due reminders and move overdue cases on, in batches.

One sweep is one job (STYLE.md rules 3 and 8): it works in its own application
context and session, commits once per batch, and is safe to run in several
processes at once. On PostgreSQL each batch is claimed with ``SELECT ... FOR
UPDATE SKIP LOCKED``, so concurrent sweepers never take the same case; SQLite has
no row locks and serialises writers, which is enough for its single sweeper.

Rules the sweep keeps:

* **Idempotent.** A case is claimed only while its deadline (or reminder) is
  still due; each step sets the next deadline and resets ``reminded_at``, so a
  second sweep at the same ``now`` finds nothing to do.
* **One step per case per sweep.** A case whose next deadline is already past
  (a backlog after downtime) moves again in the next sweep, not in this one.
  Every step thus gets its own timeline event and deadline facts, and a
  backlog drains one stage per sweep interval.
* **A reminder before every automatic step.** When a due case still owes its
  reminder (``remind_at`` set, ``reminded_at`` empty: the sweeper was down), the
  reminder goes out first and the step follows in the same sweep; the party
  could not act on it anyway, but the record shows the warning was sent. A
  stage shorter than the reminder lead has no reminder (``remind_at`` None).
* **Cases with nothing to do stay put.** A due case that no system action fits
  (an arbitrator is deciding, intake waits for the regulator, nobody can be
  assigned) is skipped and reported; it changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from flask import Flask
from sqlalchemy import and_, or_
from sqlalchemy.orm import selectinload

from mediation.cases import lifecycle as lc
from mediation.cases.models import Case, CaseEvent
from mediation.cases.services import (
    apply_action,
    facts_for,
    pick_assignee,
    send_reminder,
)
from mediation.extensions import db
from mediation.unit_of_work import bulk_inserts

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep did."""

    now: datetime
    #: ``(case_id, stage)`` of each reminder sent.
    reminded: list[tuple[int, str | None]] = field(default_factory=list)
    #: ``(case_id, action, from_status, to_status)`` of each step.
    steps: list[tuple[int, str, str, str]] = field(default_factory=list)
    #: ``(case_id, reason)`` of due cases left as they are.
    skipped: list[tuple[int, str]] = field(default_factory=list)
    #: Ids of cases whose step failed (logged; retried by the next sweep).
    failed: list[int] = field(default_factory=list)

    def merge(self, other: SweepReport) -> None:
        """Add what ``other`` (a committed batch) did to this report."""
        self.reminded += other.reminded
        self.steps += other.steps
        self.skipped += other.skipped
        self.failed += other.failed

    def lines(self) -> list[str]:
        """Return a human-readable account, one line per case, then a summary."""
        out = [f"reminded case {cid} ({stage})" for cid, stage in self.reminded]
        out += [f"case {cid}: {act} {a} -> {b}" for cid, act, a, b in self.steps]
        out += [f"case {cid}: skipped ({why})" for cid, why in self.skipped]
        out += [f"case {cid}: failed (see the log)" for cid in self.failed]
        out.append(
            f"sweep at {self.now.isoformat()}: {len(self.reminded)} reminder(s), "
            f"{len(self.steps)} step(s), {len(self.skipped)} skipped, "
            f"{len(self.failed)} failed"
        )
        return out


def run_sweep(app: Flask, *, now: datetime, batch_size: int = 200) -> SweepReport:
    """Run one SLA sweep at ``now``: reminders first, then the overdue steps.

    :param app: the application (the sweep pushes its own app context, so its
        session is its own, whatever the caller holds).
    :param now: the sweep's time (aware UTC), normally ``clock.now_utc()``.
    :param batch_size: cases claimed (and committed) per transaction.
    :return: what was done.
    """
    report = SweepReport(now=now)
    with app.app_context():
        try:
            _info_lapses(report, now, batch_size)
            _reminders(report, now, batch_size)
            _steps(report, now, batch_size)
            _credit_windows(report, now)
        finally:
            db.session.rollback()
    logger.info(
        "sla sweep",
        extra={
            "reminded": len(report.reminded),
            "steps": len(report.steps),
            "skipped": len(report.skipped),
            "failed": len(report.failed),
        },
    )
    return report


def _claim(query, column, batch_size: int, after: tuple | None) -> list[Case]:
    """Return the next batch of ``query`` after the cursor, locked on PostgreSQL.

    The cursor is ``(column value, id)`` of the last case of the previous batch:
    a keyset, so a large backlog costs no growing ``NOT IN`` list (PostgreSQL
    takes at most 65,535 parameters). Cases moved on no longer match the query;
    cases left as they are lie behind the cursor.

    What the services read of each case (offers, parties, the head of the
    timeline) is loaded for the whole batch here, a few queries in all, instead
    of one lazy load per case.
    """
    if after is not None:
        value, last_id = after
        query = query.where(
            or_(column > value, and_(column == value, Case.id > last_id))
        )
    query = query.order_by(column, Case.id).limit(batch_size)
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Case)
    elif dialect == "sqlite":
        # Take SQLite's write lock before reading: a transaction that reads first
        # and writes later fails at once ("database is locked") when another
        # writer (the mail outbox, a request) is mid-way, instead of waiting.
        db.session.execute(db.text("UPDATE cases SET id = id WHERE 0 = 1"))
    query = query.options(
        selectinload(Case.offers),
        selectinload(Case.consumer),
        selectinload(Case.merchant),
        selectinload(Case.platform),
        selectinload(Case.mediator),
        selectinload(Case.arbitrator),
    )
    # Fresh rows: what another sweeper committed a moment ago counts.
    cases = list(
        db.session.scalars(query.execution_options(populate_existing=True)).all()
    )
    _load_chain_heads(cases)
    return cases


def _load_chain_heads(cases: list[Case]) -> None:
    """Remember each case's last timeline event (read under the row lock)."""
    if not cases:
        return
    ids = [case.id for case in cases]
    last = (
        db.select(CaseEvent.case_id, db.func.max(CaseEvent.seq).label("seq"))
        .where(CaseEvent.case_id.in_(ids))
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    heads = {
        case_id: (seq, digest)
        for case_id, seq, digest in db.session.execute(
            db.select(CaseEvent.case_id, CaseEvent.seq, CaseEvent.hash).join(
                last,
                and_(CaseEvent.case_id == last.c.case_id, CaseEvent.seq == last.c.seq),
            )
        )
    }
    for case in cases:
        case.__dict__["_chain_head"] = heads.get(case.id, (0, None))


def _open_unpaused():
    return db.select(Case).where(
        Case.status.in_(lc.OPEN_STATUSES), Case.paused_at.is_(None)
    )


def _reminders(report: SweepReport, now: datetime, batch_size: int) -> None:
    query = _open_unpaused().where(Case.remind_at <= now, Case.reminded_at.is_(None))
    _in_batches(
        report,
        now,
        query,
        Case.remind_at,
        batch_size,
        due=_reminder_due,
        work=_remind,
    )


def _steps(report: SweepReport, now: datetime, batch_size: int) -> None:
    query = _open_unpaused().where(Case.due_at <= now)
    _in_batches(report, now, query, Case.due_at, batch_size, due=_step_due, work=_step)


def _credit_windows(report: SweepReport, now: datetime) -> None:
    """Refresh the credit standings an ageing event changes by itself (an event
    leaving its 12- or 36-month window)."""
    from mediation.credit.ledger import refresh_due

    while refresh_due(now=now, limit=500):
        db.session.commit()
    db.session.commit()


def _info_lapses(report: SweepReport, now: datetime, batch_size: int) -> None:
    """Lapse the arbitrator's information requests whose deadline passed.

    The award deadline stopped while they were open; it runs again once none is.
    """
    query = db.select(Case).where(
        Case.status == lc.IN_ARBITRATION, Case.info_due_at <= now
    )
    _in_batches(
        report,
        now,
        query,
        Case.info_due_at,
        batch_size,
        due=_info_lapse_due,
        work=_lapse,
    )


def _info_lapse_due(case: Case, now: datetime) -> bool:
    return (
        case.status == lc.IN_ARBITRATION
        and case.info_due_at is not None
        and case.info_due_at <= now
    )


def _lapse(report: SweepReport, case: Case, now: datetime) -> None:
    apply_action(case, "lapse_info", {}, actor=None, relation="system", now=now)
    report.steps.append((case.id, "lapse_info", case.status, case.status))


def _in_batches(report, now, query, column, batch_size, *, due, work) -> None:
    """Claim ``query`` batch by batch and run ``work`` on each case still ``due``.

    Each batch first runs in one piece: the services run case by case, their
    appended rows (events, notifications) are written with one multi-row INSERT,
    and the batch commits once. If anything in it fails, the batch is rolled
    back, claimed again and run case by case, each case in its own savepoint, so
    one broken case holds up no other and is reported as failed.
    """
    after: tuple | None = None
    name = column.key
    while True:
        batch = _claim(query, column, batch_size, after)
        if not batch:
            return
        # The cursor is taken before the work moves the deadlines on.
        cursor = (getattr(batch[-1], name), batch[-1].id)
        trial = SweepReport(now=now)
        try:
            with bulk_inserts():
                for case in batch:
                    # Checked again on the locked row: the deadline may have moved.
                    if due(case, now):
                        work(trial, case, now)
            db.session.commit()
        except Exception:
            db.session.rollback()
            logger.warning(
                "sla sweep batch failed; retrying it case by case", exc_info=True
            )
            batch = _claim(query, column, batch_size, after)
            if not batch:
                return
            cursor = (getattr(batch[-1], name), batch[-1].id)
            for case in batch:
                if due(case, now):
                    _guarded(report, case, lambda c: work(report, c, now))
            db.session.commit()
        else:
            report.merge(trial)
        after = cursor


def _reminder_due(case: Case, now: datetime) -> bool:
    return (
        not lc.is_closed(case.status)
        and case.paused_at is None
        and case.due_at is not None
        and case.remind_at is not None
        and case.remind_at <= now
        and case.reminded_at is None
    )


def _step_due(case: Case, now: datetime) -> bool:
    return (
        not lc.is_closed(case.status)
        and case.paused_at is None
        and case.due_at is not None
        and case.due_at <= now
    )


def _guarded(report: SweepReport, case: Case, work) -> None:
    """Run ``work(case)`` in a savepoint: one failing case spoils no other."""
    case_id = case.id
    try:
        with db.session.begin_nested():
            work(case)
    except Exception:  # one broken case must not stop the sweep of the others
        case.__dict__.pop("_chain_head", None)
        logger.exception("sla sweep failed on case", extra={"case_id": case_id})
        report.failed.append(case_id)


def _remind(report: SweepReport, case: Case, now: datetime) -> None:
    stage = _stage_name(case)
    send_reminder(case, now=now)
    report.reminded.append((case.id, stage))


def _step(report: SweepReport, case: Case, now: datetime) -> None:
    if _reminder_due(case, now):
        # The sweeper was down when the reminder was due: warn first, then act.
        _remind(report, case, now)
    facts = facts_for(case)
    if lc.is_allowed(case.status, "system", "auto_assign", facts):
        if pick_assignee(case) is None:
            report.skipped.append((case.id, "nobody to assign"))
            return
        action = "auto_assign"
    elif lc.is_allowed(case.status, "system", "expire", facts):
        action = "expire"
    else:
        report.skipped.append((case.id, f"no automatic step in {case.status}"))
        return
    from_status = case.status
    apply_action(case, action, {}, actor=None, relation="system", now=now)
    report.steps.append((case.id, action, from_status, case.status))


def _stage_name(case: Case) -> str | None:
    from mediation.sla.policy import case_stage

    return case_stage(case)
