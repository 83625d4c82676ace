"""Stage spans: how long each SLA stage of a case ran and whether it kept its deadline.

Pure Python (no Flask, no database). A case's life is read as a sequence of
:class:`Step` values, one per lifecycle action, each saying which stage the case
is in *after* the action and what its deadline is then. :func:`advance` folds
one step into the state of the running stage and returns the finished
:class:`Span` when the stage changed. Two producers of steps feed the same fold:

* live, the case services' hook builds the step from the case after the action
  (:func:`mediation.analytics.stats.on_case_event`);
* ``rebuild-stats`` replays the timeline (:func:`timeline_steps`): the stage
  from the status and the assignment events, the deadline from the policy and
  the facts the timeline records (pauses with the time left, resumed
  deadlines, the deadline an expiry or a reminder names).

Rules (docs/ARCHITECTURE.md, Supervision: statistics):

* a span is one stage from its start to the action that changed the stage;
  reassigning within the stage or moving the deadline does not end it;
* the clock pause (``request_evidence``, information requests) stops the time
  to act and moves the deadline by the time it stood still;
* a stage ended by the deadline itself (``expire``, ``auto_assign``) is a
  breach, whatever the clock says; a stage ended while the clock stood is on
  time if time was left when it stopped;
* the routing of a new complaint (``route``) is part of filing: the moment in
  ``submitted`` before it is no span.

The time to act of each span also falls in a log-scale bucket
(:func:`time_bucket`, buckets 2 % wide), so that monthly summaries can keep a
histogram instead of the values; :func:`histogram_percentile` reads the median
and the 90th percentile off such a histogram within 1 % of the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from mediation.cases import lifecycle as lc
from mediation.sla.policy import stage_of

#: Actions that end a stage because its deadline passed.
BREACH_ACTIONS = frozenset({"expire", "auto_assign"})
#: Stage changes that are no span of their own.
NO_SPAN_ACTIONS = frozenset({"route"})
#: Award order types that do not go to the consumer.
NOT_RECOVERED_ORDERS = frozenset({"costs"})
#: Outcomes in which the consumer got what was agreed or awarded.
RECOVERY_OUTCOMES = frozenset(
    {"settled_directly", "settled_in_mediation", "award_complied"}
)


@dataclass(frozen=True)
class Step:
    """A case right after one lifecycle action, as far as deadlines go."""

    at: datetime
    action: str
    #: The actor's relation to the case (``system`` for the sweep).
    role: str
    #: The SLA stage after the action (None: closed, or no stage runs).
    stage: str | None
    #: The deadline after the action (None while the clock is stopped).
    due_at: datetime | None
    paused: bool = False
    #: Seconds the deadline had left when the clock stopped.
    paused_remaining: int | None = None


@dataclass(frozen=True)
class SpanState:
    """The stage running now."""

    stage: str
    started_at: datetime
    due_at: datetime | None
    paused_at: datetime | None = None
    paused_remaining: int | None = None
    #: Seconds the clock stood still in earlier pauses of this stage.
    paused_seconds: int = 0


@dataclass(frozen=True)
class Span:
    """A finished stage."""

    stage: str
    started_at: datetime
    due_at: datetime | None
    ended_at: datetime
    active_seconds: int
    on_time: bool | None
    ended_by: str
    ended_role: str


def start(step: Step) -> SpanState | None:
    """Return the state of the stage a step enters (None when none runs)."""
    if step.stage is None:
        return None
    return SpanState(
        stage=step.stage,
        started_at=step.at,
        due_at=None if step.paused else step.due_at,
        paused_at=step.at if step.paused else None,
        paused_remaining=step.paused_remaining if step.paused else None,
    )


def _seconds(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds()))


def close(state: SpanState, step: Step) -> Span:
    """Return the span that ``step`` ends (the stage of ``state``)."""
    stood = state.paused_seconds
    if state.paused_at is not None:
        stood += _seconds(step.at - state.paused_at)
        remaining = state.paused_remaining or 0
        # The clock stood still: the deadline is as far away as when it stopped.
        due = step.at + timedelta(seconds=remaining)
        on_time: bool | None = remaining > 0
    else:
        due = state.due_at
        on_time = None if due is None else step.at <= due
    if step.action in BREACH_ACTIONS:
        on_time = False
    return Span(
        stage=state.stage,
        started_at=state.started_at,
        due_at=due,
        ended_at=step.at,
        active_seconds=max(0, _seconds(step.at - state.started_at) - stood),
        on_time=on_time,
        ended_by=step.action,
        ended_role=step.role,
    )


def advance(
    state: SpanState | None, step: Step
) -> tuple[SpanState | None, Span | None]:
    """Fold one step into the running stage.

    :return: the new state, and the span that ended (None when the stage goes on).
    """
    if state is None or step.stage != state.stage:
        ended = None
        if state is not None and step.action not in NO_SPAN_ACTIONS:
            ended = close(state, step)
        return start(step), ended
    if step.paused and state.paused_at is None:
        return (
            replace(
                state,
                due_at=None,
                paused_at=step.at,
                paused_remaining=step.paused_remaining,
            ),
            None,
        )
    if not step.paused and state.paused_at is not None:
        return (
            replace(
                state,
                due_at=step.due_at,
                paused_at=None,
                paused_remaining=None,
                paused_seconds=state.paused_seconds
                + _seconds(step.at - state.paused_at),
            ),
            None,
        )
    if step.paused:
        return state, None
    return replace(state, due_at=step.due_at), None


def fold(steps: Iterable[Step]) -> tuple[SpanState | None, list[Span]]:
    """Return the stage running after ``steps`` and the spans they finished."""
    state: SpanState | None = None
    spans: list[Span] = []
    for step in steps:
        state, ended = advance(state, step)
        if ended is not None:
            spans.append(ended)
    return state, spans


# The timeline as steps (rebuild) ----------------------------------------------


class EventLike(Protocol):
    """The columns of a timeline event that the replay reads."""

    at: datetime
    action: str
    actor_role: str
    from_status: str | None
    to_status: str
    data: dict[str, Any] | None


@dataclass(frozen=True)
class Deadlines:
    """How deadlines are computed, as the running app computes them.

    :param stage_due: ``(stage, start) -> deadline`` (the policy on the calendar).
    :param orders_due: ``orders -> deadline`` of an award's latest order, or None.
    """

    stage_due: Callable[[str, datetime], datetime | None]
    orders_due: Callable[[list[dict[str, Any]]], datetime | None]


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def timeline_steps(events: Iterable[EventLike], deadlines: Deadlines) -> Iterator[Step]:
    """Replay a case's timeline (oldest first) as the steps the live hook sees.

    The stage follows the status and who is assigned; the deadline restarts
    where the case services restart it (a new stage, a reassignment, an
    objection upheld) and otherwise moves with the facts the events record. A
    deadline the timeline names (an expiry, an automatic assignment, a
    reminder) is taken as written, so a policy changed since does not matter
    for those.
    """
    status: str | None = None
    has_mediator = has_arbitrator = marked = paused = False
    remaining: int | None = None
    due: datetime | None = None
    orders: list[dict[str, Any]] = []

    def stage() -> str | None:
        if status is None:
            return None
        return stage_of(
            status,
            has_mediator=has_mediator,
            fulfilment_marked=marked,
            has_arbitrator=has_arbitrator,
        )

    def fresh(at: datetime) -> datetime | None:
        now_stage = stage()
        if now_stage is None:
            return None
        value = deadlines.stage_due(now_stage, at)
        if now_stage == "fulfilment" and status == lc.AWARDED and value is not None:
            by_orders = deadlines.orders_due(orders)
            if by_orders is not None and by_orders > value:
                value = by_orders
        return value

    for event in events:
        action = event.action
        data = event.data or {}
        if action == "file":
            status = event.to_status
            due = fresh(event.at)
            yield Step(event.at, action, event.actor_role, stage(), due)
            continue
        if status is None or action not in lc.ACTIONS:
            # Not a lifecycle action (a reminder, added evidence): a reminder
            # names the deadline in force.
            named = _time(data.get("due_at")) if action == "remind" else None
            if named is not None and not paused and stage() is not None:
                due = named
                yield Step(event.at, action, event.actor_role, stage(), due)
            continue
        before = stage()
        if action in BREACH_ACTIONS and data.get("due_at") and not paused:
            # The deadline that passed, as the sweep saw it.
            due = _time(data["due_at"])
            yield Step(event.at, "remind", "system", before, due)
        if action in ("issue_award", "correct_award"):
            orders = list(data.get("orders") or [])
        if action == "take":
            if event.actor_role == "mediator":
                has_mediator = True
            elif event.actor_role == "arbitrator":
                has_arbitrator = True
        elif action in ("auto_assign", "reassign"):
            if event.from_status == lc.IN_MEDIATION:
                has_mediator = True
            elif event.from_status == lc.IN_ARBITRATION:
                has_arbitrator = True
        elif action == "decide_objection" and data.get("user_id"):
            has_arbitrator = True
        elif action == "mark_fulfilled":
            marked = True
        status = event.to_status
        if status in (lc.SETTLED, lc.AWARDED) and event.from_status != status:
            marked = False
        after = stage()
        if after != before or action in ("reassign", "auto_assign"):
            due, paused, remaining = fresh(event.at), False, None
        elif (
            action == "decide_objection"
            and data.get("decision") == "upheld"
            and not paused
        ):
            due = fresh(event.at)
        elif action == "request_evidence":
            paused, remaining, due = True, data.get("remaining_seconds"), None
        elif action == "request_info":
            if not paused and data.get("award_clock_remaining_seconds") is not None:
                paused, due = True, None
                remaining = data["award_clock_remaining_seconds"]
        elif action == "provide_evidence":
            paused, remaining, due = False, None, _time(data.get("due_at"))
        elif action in ("answer_info", "lapse_info"):
            resumed = _time(data.get("award_due_at"))
            if paused and resumed is not None:
                paused, remaining, due = False, None, resumed
        elif action == "correct_award" and not marked and due is not None:
            later = deadlines.orders_due(orders)
            if later is not None and later > due:
                due = later
        if after is None:
            due, paused, remaining = None, False, None
        yield Step(
            event.at,
            action,
            event.actor_role,
            after,
            due,
            paused=paused,
            paused_remaining=remaining,
        )


def recovered_from_timeline(outcome: str | None, events: Iterable[EventLike]) -> int:
    """Return the fen recovered for the consumer, read from the timeline.

    The last accepted offer or mediation agreement for a settlement, the last
    award version's orders (less the costs) for an award complied with; 0 for
    every other outcome.
    """
    if outcome not in RECOVERY_OUTCOMES:
        return 0
    settled = 0
    awarded = 0
    for event in events:
        data = event.data or {}
        if event.action == "accept_offer":
            settled = int(data.get("amount") or 0)
        elif event.action == "accept_proposal" and data.get("agreement"):
            settled = int(data["agreement"].get("amount") or 0)
        elif event.action in ("issue_award", "correct_award"):
            awarded = orders_total(data.get("orders") or [])
    return awarded if outcome == "award_complied" else settled


def orders_total(orders: Iterable[dict[str, Any]]) -> int:
    """Return the fen an award orders paid to the consumer (costs excluded)."""
    return sum(
        int(order.get("amount") or 0)
        for order in orders
        if order.get("type") not in NOT_RECOVERED_ORDERS
    )


# Time to act as a histogram -------------------------------------------------------

#: Ratio between the bounds of two neighbouring buckets of time to act: each
#: bucket is 2 % wide.
BUCKET_RATIO = 1.02
#: The largest relative error of :func:`histogram_percentile` (half a bucket).
PERCENTILE_ERROR = (BUCKET_RATIO - 1) / 2
_LOG_RATIO = math.log(BUCKET_RATIO)


def bucket_floor(bucket: int) -> int:
    """Return the smallest number of seconds in ``bucket`` (0 for bucket 0).

    Bucket ``k >= 1`` holds the whole seconds from ``ceil(1.02 ** (k - 1))`` up to
    the next bucket's floor (exclusive); small buckets may hold none.
    """
    if bucket <= 0:
        return 0
    return math.ceil(BUCKET_RATIO ** (bucket - 1))


def time_bucket(seconds: int) -> int:
    """Return the histogram bucket of a time to act (0: no time at all)."""
    if seconds <= 0:
        return 0
    bucket = int(math.log(seconds) / _LOG_RATIO) + 1
    # The logarithm can land one off at a bound: settle it on the integer bounds
    # that bucket_floor (and so bucket_value) uses.
    while bucket > 1 and bucket_floor(bucket) > seconds:
        bucket -= 1
    while bucket_floor(bucket + 1) <= seconds:
        bucket += 1
    return bucket


def bucket_value(bucket: int) -> float:
    """Return the value that stands for every time to act of a bucket: the
    middle of the whole seconds it holds (at most 1 % from any of them)."""
    if bucket <= 0:
        return 0.0
    return (bucket_floor(bucket) + bucket_floor(bucket + 1) - 1) / 2


def histogram_percentile(counts: Mapping[int, int], p: float) -> float | None:
    """Return the ``p`` percentile of the times to act counted per bucket.

    Interpolated like PostgreSQL's ``percentile_cont`` on the buckets' values
    (:func:`bucket_value`); since every value stands within 1 % of the values it
    replaces, the result is within 1 % of ``percentile_cont`` on the exact
    values.

    :param counts: bucket -> number of spans (buckets without spans may be left
        out or be 0).
    :return: seconds, or None for an empty histogram.
    """
    ordered = sorted((b, n) for b, n in counts.items() if n > 0)
    total = sum(n for _b, n in ordered)
    if not total:
        return None
    position = p * (total - 1)
    low, high = math.floor(position), math.ceil(position)

    def value_at(index: int) -> float:
        seen = 0
        for bucket, n in ordered:
            seen += n
            if index < seen:
                return bucket_value(bucket)
        return bucket_value(ordered[-1][0])

    below, above = value_at(low), value_at(high)
    return below + (above - below) * (position - low)
