"""Statistics for supervision: the per-case facts and the stage spans, kept live.

:func:`on_case_filed` and :func:`on_case_event` are called by the case services
(through :mod:`mediation.analytics.hooks`) inside the case's transaction: they
keep one :class:`~mediation.analytics.stats_models.CaseStats` row per case and
append a :class:`~mediation.analytics.stats_models.StageSpan` whenever a case
leaves an SLA stage, folding each action with
:func:`mediation.analytics.stats_spans.advance`. :func:`rebuild` derives the
same rows from the case timelines (``flask --app mediation rebuild-stats``),
through the same fold, for databases that have cases from before, or to repair.
The rare paths that change rows of a month that has ended (a dimension change,
a case derived late, the rebuild) mark that month's summaries stale
(:mod:`mediation.analytics.stats_summaries`); ``rebuild-stats`` then derives the
summaries of every month again.

Cheap on purpose: filing adds one INSERT; an action one UPDATE (and one INSERT
when a stage ends), flushed with the rest of the request; in a sweep batch the
work waits for the end of the batch and costs three statements for the batch.
Services flush, never commit.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import delete, insert
from sqlalchemy.orm import aliased

from mediation import clock
from mediation.analytics import stats_regions as regions
from mediation.analytics import stats_spans as spans
from mediation.analytics import stats_summaries as summaries
from mediation.analytics.stats_models import DIMENSIONS, CaseStats, StageSpan
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case, CaseEvent, OfferStatus
from mediation.extensions import db
from mediation.merchants.models import Merchant
from mediation.sla.policy import case_stage, deadline_for
from mediation.unit_of_work import current_bulk

logger = logging.getLogger(__name__)

#: Actions that may change a case's dimensions (category, merchant, platform).
DIMENSION_ACTIONS = frozenset({"amend", "link_merchant"})
_ROW_KEY = "_stats_row"
_BULK_KEY = ("stats", "steps")


def time_zone() -> ZoneInfo:
    """Return the business time zone (days of the statistics are local days)."""
    return ZoneInfo(current_app.config["TIME_ZONE"])


def local_day(moment: datetime, tz: ZoneInfo | None = None) -> date:
    """Return the local day (business time zone) of a UTC moment."""
    return moment.astimezone(tz or time_zone()).date()


# The facts of one case ----------------------------------------------------------


def case_dimensions(case: Case) -> dict[str, Any]:
    """Return the dimensions of a case: category, merchant, platform, region.

    The region is the shop's; a case about an unregistered shop counts under
    its platform's region, and under no region (unknown) without either.
    """
    side = case.merchant if case.merchant_id is not None else case.platform
    region, city, province = regions.rollup(side.region_code if side else None)
    return {
        "category": case.category,
        "merchant_id": case.merchant_id,
        "platform_id": case.platform_id,
        "region_code": region,
        "city_code": city,
        "province_code": province,
    }


def recovered_for(case: Case) -> int:
    """Return the fen the consumer recovered in a closed case (live path).

    What was performed: the award in force (less the costs) when the award was
    complied with, the last accepted offer or mediation agreement when a
    settlement was; 0 otherwise. :func:`stats_spans.recovered_from_timeline`
    reads the same from the timeline.
    """
    if case.outcome not in spans.RECOVERY_OUTCOMES:
        return 0
    if case.outcome == "award_complied":
        from mediation.arbitration.services import current_award

        award = current_award(case)
        return spans.orders_total(award.orders or []) if award else 0
    accepted = [o for o in case.offers if o.status == OfferStatus.accepted.value]
    if not accepted:
        return 0
    last = max(accepted, key=lambda o: (o.decided_at or o.created_at, o.id))
    return int(last.amount or 0)


def _state_of(row: CaseStats) -> spans.SpanState | None:
    if row.stage is None or row.stage_started_at is None:
        return None
    return spans.SpanState(
        stage=row.stage,
        started_at=row.stage_started_at,
        due_at=row.stage_due_at,
        paused_at=row.stage_paused_at,
        paused_remaining=row.stage_paused_remaining,
        paused_seconds=row.stage_paused_seconds or 0,
    )


def _state_values(state: spans.SpanState | None) -> dict[str, Any]:
    if state is None:
        return {
            "stage": None,
            "stage_started_at": None,
            "stage_due_at": None,
            "stage_paused_at": None,
            "stage_paused_remaining": None,
            "stage_paused_seconds": 0,
        }
    return {
        "stage": state.stage,
        "stage_started_at": state.started_at,
        "stage_due_at": state.due_at,
        "stage_paused_at": state.paused_at,
        "stage_paused_remaining": state.paused_remaining,
        "stage_paused_seconds": state.paused_seconds,
    }


def span_values(
    case_id: int, span: spans.Span, dims: dict[str, Any], tz: ZoneInfo
) -> dict[str, Any]:
    """Return the column values of a stage span row."""
    return {
        "case_id": case_id,
        "stage": span.stage,
        "started_at": span.started_at,
        "due_at": span.due_at,
        "ended_at": span.ended_at,
        "ended_on": local_day(span.ended_at, tz),
        "active_seconds": span.active_seconds,
        "time_bucket": spans.time_bucket(span.active_seconds),
        "on_time": span.on_time,
        "ended_by": span.ended_by,
        "ended_role": span.ended_role,
        **{name: dims[name] for name in DIMENSIONS},
    }


def _live_step(case: Case, action: str, relation: str, now: datetime) -> spans.Step:
    return spans.Step(
        at=now,
        action=action,
        role=relation,
        stage=case_stage(case),
        due_at=case.due_at,
        paused=case.paused_at is not None,
        paused_remaining=case.paused_remaining,
    )


@dataclass
class _Change:
    """What one action changes in a case's statistics (taken at the action)."""

    case: Case
    step: spans.Step
    status: str
    dims: dict[str, Any] | None = None
    closed: dict[str, Any] = field(default_factory=dict)
    rating: dict[str, Any] = field(default_factory=dict)


def _change_of(
    case: Case, action: str, relation: str, from_status: str | None, now: datetime
) -> _Change:
    change = _Change(
        case=case, step=_live_step(case, action, relation, now), status=case.status
    )
    if action in DIMENSION_ACTIONS:
        change.dims = case_dimensions(case)
    if lc.is_closed(case.status) and from_status != case.status:
        closed_at = case.closed_at or now
        change.closed = {
            "outcome": case.outcome,
            "closed_at": closed_at,
            "closed_on": local_day(closed_at),
            "recovered": recovered_for(case),
        }
    if action == "rate":
        change.rating = {"satisfaction": case.satisfaction, "rated_on": local_day(now)}
    return change


def _apply(row: CaseStats, change: _Change, tz: ZoneInfo) -> dict[str, Any] | None:
    """Apply one change to a case's row; return the span row it ended, if any."""
    state, ended = spans.advance(_state_of(row), change.step)
    for name, value in _state_values(state).items():
        setattr(row, name, value)
    row.status = change.status
    for name, value in {**change.closed, **change.rating}.items():
        setattr(row, name, value)
    if change.dims is not None and any(
        getattr(row, name) != change.dims[name] for name in DIMENSIONS
    ):
        for name in DIMENSIONS:
            setattr(row, name, change.dims[name])
        # Spans carry the case's dimensions: a linked merchant or an amended
        # category moves the case's earlier stages with it.
        moved = db.session.scalars(
            db.update(StageSpan)
            .where(StageSpan.case_id == row.case_id)
            .values(**change.dims)
            .returning(StageSpan.ended_on)
        ).all()
        # ... out of the months they counted in, which may have ended.
        summaries.mark_stale(
            [row.filed_on, row.closed_on, row.rated_on, *moved],
            before=local_day(change.step.at, tz),
        )
    if ended is None:
        return None
    return span_values(row.case_id, ended, _dims_of(row), tz)


def _dims_of(row: CaseStats) -> dict[str, Any]:
    return {name: getattr(row, name) for name in DIMENSIONS}


# The hooks ------------------------------------------------------------------------


def on_case_filed(case: Case, *, now: datetime) -> None:
    """Start the statistics of a new complaint (after it was routed).

    :param case: the new case, flushed; its first stage already runs.
    """
    state = spans.start(
        spans.Step(
            at=now,
            action="file",
            role="consumer",
            stage=case_stage(case),
            due_at=case.due_at,
        )
    )
    row = CaseStats(
        case_id=case.id,
        filed_at=case.filed_at,
        filed_on=local_day(case.filed_at),
        status=case.status,
        recovered=0,
        **case_dimensions(case),
        **_state_values(state),
    )
    db.session.add(row)
    case.__dict__[_ROW_KEY] = row


def on_case_event(
    case: Case,
    *,
    action: str,
    relation: str = "system",
    from_status: str | None,
    stage_before: str | None,
    due_before: datetime | None,
    now: datetime,
) -> None:
    """Keep the statistics of a case current after one of its lifecycle actions.

    Closes the running stage into a span when the stage changed, follows the
    deadline (pauses included), and records closing, outcome, amount recovered,
    rating and changed dimensions. In a sweep batch the work is queued and done
    for the whole batch once its timeline rows are written.

    :param relation: the actor's relation to the case (``system``: the sweep).
    :param stage_before: the stage before the action (cross-checked, logged).
    """
    if action in spans.NO_SPAN_ACTIONS and from_status == lc.SUBMITTED:
        # Routing is part of filing: on_case_filed starts the case's statistics.
        return
    change = _change_of(case, action, relation, from_status, now)
    bulk = current_bulk()
    if bulk is not None:
        pending: list[_Change] = bulk.cache.setdefault(_BULK_KEY, [])
        pending.append(change)
        bulk.after_write[_BULK_KEY] = lambda: _apply_batch(pending)
        return
    row = case.__dict__.get(_ROW_KEY)
    if row is None or row not in db.session:
        row = db.session.get(CaseStats, case.id)
    if row is None:
        # A case from before the statistics (or a gap): derive it whole.
        rebuild(case_ids=[case.id])
        return
    if row.stage != stage_before:
        logger.warning(
            "stats stage out of step",
            extra={"case_id": case.id, "stored": row.stage, "before": stage_before},
        )
    span = _apply(row, change, time_zone())
    case.__dict__[_ROW_KEY] = row
    if span is not None:
        db.session.add(StageSpan(**span))


def _apply_batch(pending: list[_Change]) -> None:
    """Apply a sweep batch's queued changes: one SELECT, one INSERT, the UPDATEs."""
    if not pending:
        return
    ids = sorted({change.case.id for change in pending})
    rows = {
        row.case_id: row
        for row in db.session.scalars(
            db.select(CaseStats).where(CaseStats.case_id.in_(ids))
        ).all()
    }
    missing = [case_id for case_id in ids if case_id not in rows]
    if missing:
        rebuild(case_ids=missing)
    tz = time_zone()
    new_spans = []
    for change in pending:
        row = rows.get(change.case.id)
        if row is None:
            continue  # rebuilt from its (now written) timeline
        span = _apply(row, change, tz)
        if span is not None:
            new_spans.append(span)
    if new_spans:
        db.session.execute(insert(StageSpan), new_spans)
    pending.clear()


# Rebuild from the timelines -------------------------------------------------------

#: Cases per round trip of the rebuild.
CHUNK = 2000


def deadlines() -> spans.Deadlines:
    """Return how the running app computes deadlines (policy, calendar, orders)."""
    from mediation.cases.services import business_calendar, sla_policy

    policy = sla_policy()
    tz = time_zone()
    calendar = business_calendar()
    cache: dict[tuple[str, datetime], datetime | None] = {}

    def stage_due(stage: str, start: datetime) -> datetime | None:
        key = (stage, start)
        if key not in cache:
            cache[key] = deadline_for(stage, start, policy, tz, calendar=calendar)
        return cache[key]

    def orders_due(orders: list[dict[str, Any]]) -> datetime | None:
        days = [date.fromisoformat(o["deadline"]) for o in orders if o.get("deadline")]
        if not days:
            return None
        end = datetime.combine(max(days), time(23, 59, 59), tzinfo=tz)
        return end.astimezone(UTC)

    return spans.Deadlines(stage_due=stage_due, orders_due=orders_due)


@dataclass
class _Event:
    at: datetime
    action: str
    actor_role: str
    from_status: str | None
    to_status: str
    data: dict[str, Any] | None


def derive_case(
    case: Any,
    region_code: str | None,
    events: Sequence[_Event],
    dl: spans.Deadlines,
    tz: ZoneInfo,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the statistics row and the span rows of one case, from its timeline.

    :param case: anything with the case's columns (``id``, ``filed_at``,
        ``category``, ``merchant_id``, ``platform_id``, ``status``, ``outcome``,
        ``closed_at``, ``satisfaction``).
    :param region_code: the shop's region code (the platform's for an
        unregistered shop), or None.
    """
    region, city, province = regions.rollup(region_code)
    dims = {
        "category": case.category,
        "merchant_id": case.merchant_id,
        "platform_id": case.platform_id,
        "region_code": region,
        "city_code": city,
        "province_code": province,
    }
    state, ended = spans.fold(spans.timeline_steps(events, dl))
    rated = [e for e in events if e.action == "rate"]
    closed_at = case.closed_at
    row = {
        "case_id": case.id,
        "filed_at": case.filed_at,
        "filed_on": local_day(case.filed_at, tz),
        **dims,
        "status": case.status,
        "outcome": case.outcome if lc.is_closed(case.status) else None,
        "closed_at": closed_at,
        "closed_on": local_day(closed_at, tz) if closed_at else None,
        "recovered": spans.recovered_from_timeline(case.outcome, events),
        "satisfaction": case.satisfaction,
        "rated_on": local_day(rated[-1].at, tz)
        if rated and case.satisfaction is not None
        else None,
        **_state_values(state),
    }
    return row, [span_values(case.id, span, dims, tz) for span in ended]


_FACT_COLUMNS = [c.name for c in CaseStats.__table__.columns]
_SPAN_COLUMNS = [c.name for c in StageSpan.__table__.columns if c.name != "id"]
_ENDED_ON = _SPAN_COLUMNS.index("ended_on")


def _span_key(values: dict[str, Any]) -> tuple:
    return tuple(values[name] for name in _SPAN_COLUMNS)


def rebuild(*, case_ids: Iterable[int] | None = None) -> dict[str, int]:
    """Derive every case's statistics from its timeline; write what differs.

    The same fold as the live hook (:func:`stats_spans.advance`), with the
    steps read from the timeline (:func:`stats_spans.timeline_steps`). Rows that
    already hold what the timeline gives stay untouched, so a rebuild of a
    consistent database writes nothing.

    :param case_ids: only these cases (default: all).
    :return: counts of ``cases`` read, and of cases whose rows were ``changed``.
    """
    db.session.flush()
    tz = time_zone()
    dl = deadlines()
    if case_ids is None:
        ids = list(db.session.scalars(db.select(Case.id).order_by(Case.id)).all())
    else:
        ids = sorted(set(case_ids))
    counts = {"cases": 0, "changed": 0}
    touched: set[date] = set()
    for offset in range(0, len(ids), CHUNK):
        chunk = ids[offset : offset + CHUNK]
        counts["cases"] += len(chunk)
        counts["changed"] += _rebuild_chunk(chunk, dl, tz, touched)
    # Once, months in order: the rows other transactions lock in the same order.
    summaries.mark_stale(touched)
    return counts


def _days_of(row: dict[str, Any] | None) -> list[date | None]:
    if row is None:
        return []
    return [row["filed_on"], row["closed_on"], row["rated_on"]]


def _rebuild_chunk(
    ids: list[int], dl: spans.Deadlines, tz: ZoneInfo, touched: set[date]
) -> int:
    """Rewrite the rows of these cases that differ from their timelines.

    :param touched: receives the days of the rows rewritten (old and new).
    """
    shop = aliased(Merchant)
    platform = aliased(Merchant)
    cases = db.session.execute(
        db.select(
            Case.id,
            Case.filed_at,
            Case.category,
            Case.merchant_id,
            Case.platform_id,
            Case.status,
            Case.outcome,
            Case.closed_at,
            Case.satisfaction,
            shop.region_code.label("shop_region"),
            platform.region_code.label("platform_region"),
        )
        .outerjoin(shop, shop.id == Case.merchant_id)
        .outerjoin(platform, platform.id == Case.platform_id)
        .where(Case.id.in_(ids))
        .order_by(Case.id)
    ).all()
    timelines: dict[int, list[_Event]] = {case_id: [] for case_id in ids}
    for case_id, *values in db.session.execute(
        db.select(
            CaseEvent.case_id,
            CaseEvent.at,
            CaseEvent.action,
            CaseEvent.actor_role,
            CaseEvent.from_status,
            CaseEvent.to_status,
            CaseEvent.data,
        )
        .where(CaseEvent.case_id.in_(ids))
        .order_by(CaseEvent.case_id, CaseEvent.seq)
    ):
        timelines[case_id].append(_Event(*values))
    stored = {
        row.case_id: {name: getattr(row, name) for name in _FACT_COLUMNS}
        for row in db.session.scalars(
            db.select(CaseStats).where(CaseStats.case_id.in_(ids))
        ).all()
    }
    stored_spans: dict[int, list[tuple]] = {case_id: [] for case_id in ids}
    for span in db.session.scalars(
        db.select(StageSpan).where(StageSpan.case_id.in_(ids))
    ).all():
        stored_spans[span.case_id].append(
            _span_key({name: getattr(span, name) for name in _SPAN_COLUMNS})
        )
    changed_rows: list[dict[str, Any]] = []
    changed_spans: dict[int, list[dict[str, Any]]] = {}
    for case in cases:
        region = case.shop_region if case.merchant_id is not None else None
        if case.merchant_id is None:
            region = case.platform_region
        row, case_spans = derive_case(case, region, timelines[case.id], dl, tz)
        if stored.get(case.id) != row:
            changed_rows.append(row)
            touched.update(d for d in _days_of(stored.get(case.id)) if d)
            touched.update(d for d in _days_of(row) if d)
        if Counter(stored_spans[case.id]) != Counter(map(_span_key, case_spans)):
            changed_spans[case.id] = case_spans
            touched.update(key[_ENDED_ON] for key in stored_spans[case.id])
            touched.update(span["ended_on"] for span in case_spans)
    changed = {row["case_id"] for row in changed_rows} | set(changed_spans)
    if changed_rows:
        db.session.execute(
            delete(CaseStats).where(
                CaseStats.case_id.in_([row["case_id"] for row in changed_rows])
            )
        )
        db.session.execute(insert(CaseStats), changed_rows)
    if changed_spans:
        db.session.execute(
            delete(StageSpan).where(StageSpan.case_id.in_(list(changed_spans)))
        )
        rows = [span for group in changed_spans.values() for span in group]
        if rows:
            db.session.execute(insert(StageSpan), rows)
    # ORM objects of these rows (a live hook's cache) must not hide the rewrite.
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, (CaseStats, StageSpan)) and (
            getattr(obj, "case_id", None) in changed
        ):
            db.session.expire(obj)
    return len(changed)


@click.command("rebuild-stats")
@with_appcontext
def rebuild_stats_command() -> None:
    """Rebuild the dashboard's statistics (case facts, stage spans) from the
    case timelines, then the monthly summaries of every month that ended."""
    started = clock.now_utc()
    counts = rebuild()
    report = summaries.summarize_due_months(now=started, every=True)
    db.session.commit()
    seconds = (clock.now_utc() - started).total_seconds()
    click.echo(
        f"statistics rebuilt from {counts['cases']} case(s): "
        f"{counts['changed']} changed; {report.line()} ({seconds:.1f} s)"
    )
