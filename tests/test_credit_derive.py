"""What ``derive`` reads of a timeline, as declared next to it in ``ledger.py``.

``recompute-credit`` reads only the events ``derive`` can use
(:func:`ledger.derive_reads`: :data:`ledger.DERIVE_ACTIONS`,
:data:`ledger.DERIVE_ENTERING`), and of those only the ``data`` of the ones whose
data it reads (:func:`ledger.derive_reads_data`). These property-based tests
generate timelines
that follow the lifecycle table (and, for good measure, timelines that follow
nothing) and check that ``derive`` gives the same facts, ``data`` included,
from the filtered timeline as from the whole one. Pure: no database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediation.cases import lifecycle as lc
from mediation.credit import ledger
from mediation.credit.ledger import Fact, _why

START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
MERCHANT, PLATFORM = 7, 9


class CaseRow(NamedTuple):
    id: int
    reference: str
    merchant_id: int | None
    platform_id: int | None
    outcome: str | None


class EventRow(NamedTuple):
    seq: int
    at: datetime
    actor_role: str
    action: str
    from_status: str | None
    to_status: str
    data: Any


#: What events carry in ``data``: the keys ``derive`` reads with the values the
#: services write, values they never write, and keys ``derive`` never reads.
JUNK = [
    {},
    {"text": "A long complaint text", "amount": 9900},
    {"reason": "No.", "orders": [{"type": "refund", "amount": 1}]},
    {"late_party": "merchant", "deadline": "2026-03-05", "kind": "x"},
]
ODD = [
    {},
    {"stage": None},
    {"stage": "in_mediation"},
    {"stage": 3},
    {"party": "consumer"},
    {"party": None},
    {"party": ""},
    {"decision": "other"},
    {"decision": None, "sha256": None},
    {"sha256": 12},
    {"noncompliance": None},
    {"noncompliance": {}},
    {"noncompliance": {"amount": 5}},
]
DECISIONS = ["granted", "partly_granted", "rejected"]


def written(action: str, role: str, before: str | None, after: str) -> dict:
    """What the services write for an event, as far as ``derive`` cares."""
    data: dict[str, Any] = {}
    if action == "expire":
        data["stage"] = before
    if action in ("accept_proposal", "decline_proposal"):
        data["party"] = "merchant" if role == "platform" else role
    if after == lc.CLOSED_NONCOMPLIANT:
        data["noncompliance"] = {"kind": "award_not_performed", "amount": 100}
    return data


#: One draw per event: (None instead of data?, junk, odd values, decision).
data_choices = st.tuples(
    st.integers(0, 19),
    st.sampled_from(JUNK),
    st.sampled_from(ODD[:1] * 4 + ODD),
    st.sampled_from(DECISIONS),
)


def data_for(choice, action: str, role: str, before: str | None, after: str) -> Any:
    none, junk, odd, decision = choice
    if none == 0:
        return None
    data = written(action, role, before, after) | junk
    if action in ("issue_award", "correct_award"):
        data |= {"decision": decision, "sha256": f"{none:02x}"}
    return data | odd


def _transitions() -> dict[str, list[tuple[str, str, str]]]:
    """Every (role, action, next status) the table allows from each status, for
    some facts (found by trying many)."""
    import random

    rng = random.Random(6)
    names = [name for name, kind in lc.Facts.__annotations__.items() if kind == "bool"]
    variants = [lc.Facts()]
    for _ in range(3000):
        values = {name: rng.random() < 0.5 for name in names}
        for name in ("proposal_accepted_by", "info_pending_for", "objected_by"):
            values[name] = frozenset(p for p in lc.PARTIES if rng.random() < 0.4)
        variants.append(lc.Facts(**values))
    out: dict[str, set[tuple[str, str, str]]] = {s: set() for s in lc.STATUSES}
    for status, role, action in lc.TABLE:
        for situation in variants:
            if lc.is_allowed(status, role, action, situation):
                after = lc.next_status(status, role, action, situation)
                out[status].add((role, action, after))
    #: Events the services write outside the table (no status change).
    for status in lc.STATUSES:
        out[status] |= {("system", "remind", status), ("system", "note", status)}
    return {status: sorted(moves) for status, moves in out.items()}


TRANSITIONS = _transitions()
GIVING_UP = ("withdraw", "dismiss")
#: Actions that keep the status but lead somewhere.
STEPS = ("take", "auto_assign", "propose", "accept_proposal", "decline_proposal")
cases = st.builds(
    CaseRow,
    id=st.just(1),
    reference=st.just("MC-2026-000001"),
    merchant_id=st.sampled_from([MERCHANT, MERCHANT, None]),
    platform_id=st.sampled_from([PLATFORM, PLATFORM, None]),
    outcome=st.sampled_from(
        ["settled_directly", "settled_directly", None, "settled_in_mediation", "x"]
    ),
)


@st.composite
def lifecycle_timelines(draw) -> list[EventRow]:
    """A filing, then a walk through the lifecycle table (with reminders and
    other events that change no status)."""
    first = data_for(draw(data_choices), "file", "consumer", None, lc.SUBMITTED)
    events = [EventRow(1, START, "consumer", "file", None, lc.SUBMITTED, first)]
    status = lc.SUBMITTED
    for _ in range(draw(st.integers(0, 30))):
        moves = TRANSITIONS[status]
        # Mostly a step towards an outcome: no withdrawal or dismissal (allowed
        # almost everywhere, most walks would end there), no side business.
        onwards = [
            m
            for m in moves
            if m[1] not in GIVING_UP and (m[2] != status or m[1] in STEPS)
        ]
        if onwards and draw(st.integers(0, 4)):
            moves = onwards
        role, action, after = draw(st.sampled_from(moves))
        events.append(
            EventRow(
                len(events) + 1,
                START + timedelta(hours=len(events)),
                role,
                action,
                status,
                after,
                data_for(draw(data_choices), action, role, status, after),
            )
        )
        status = after
    return events


@st.composite
def arbitrary_timelines(draw) -> list[EventRow]:
    """Events in any order, statuses that follow nothing."""
    events = []
    for n in range(draw(st.integers(0, 20))):
        action = draw(st.sampled_from(lc.ACTIONS + ("remind", "file")))
        role = draw(st.sampled_from(lc.ROLES))
        before = draw(st.one_of(st.none(), st.sampled_from(lc.STATUSES)))
        after = draw(st.sampled_from(lc.STATUSES))
        data = data_for(draw(data_choices), action, role, before, after)
        at = START + timedelta(hours=n)
        events.append(EventRow(n + 1, at, role, action, before, after, data))
    return events


def facts_of(case: CaseRow, events: list[EventRow]) -> list[tuple]:
    return [
        (f.merchant_id, f.kind, f.occurred_at, f.data, f.lists)
        for f in ledger.derive(case, events)
    ]


def as_read(events: list[EventRow]) -> list[EventRow]:
    """The timeline as ``recompute-credit`` reads it: the events ``derive`` can
    read, and the ``data`` of those whose data it reads."""
    return [
        event
        if ledger.derive_reads_data(event.action, event.from_status, event.to_status)
        else event._replace(data=None)
        for event in events
        if ledger.derive_reads(event.action, event.from_status, event.to_status)
    ]


@settings(max_examples=400, deadline=None)
@given(case=cases, events=lifecycle_timelines())
def test_derive_gives_the_same_facts_from_what_it_reads_of_a_lifecycle(case, events):
    assert facts_of(case, as_read(events)) == facts_of(case, events)


@settings(max_examples=200, deadline=None)
@given(case=cases, events=arbitrary_timelines())
def test_derive_gives_the_same_facts_from_what_it_reads_of_any_timeline(case, events):
    assert facts_of(case, as_read(events)) == facts_of(case, events)


def test_the_generated_lifecycles_reach_the_facts():
    """The property above is only as good as its timelines: they must give the
    facts of the lifecycle's usual paths (the rarest are hand-written below)."""
    found: set[str] = set()

    @settings(max_examples=500, deadline=None, database=None, derandomize=True)
    @given(case=cases, events=lifecycle_timelines())
    def collect(case, events):
        found.update(kind for _, kind, *_ in facts_of(case, events))

    collect()
    assert found >= {
        "no_response",
        "late_response",
        "escalation_unanswered",
        "resolved_directly",
        "mediation_failed",
        "award_against",
        "not_fulfilled",
    }


def timeline(*steps: tuple[str, str, str, str, dict | None]) -> list[EventRow]:
    return [
        EventRow(n + 1, START + timedelta(hours=n), role, action, before, after, data)
        for n, (role, action, before, after, data) in enumerate(steps)
    ]


STAGE_M = {"stage": "awaiting_merchant", "late_party": "merchant"}
STAGE_P = {"stage": "awaiting_platform", "late_party": "platform"}
SHOP_ON_MALL = CaseRow(1, "MC-2026-000001", MERCHANT, PLATFORM, "settled_directly")
RARE = {
    # The shop stays silent, the platform settles: escalation_resolved.
    "escalation_resolved": timeline(
        ("consumer", "file", None, "submitted", {"text": "..."}),
        ("system", "route", "submitted", "awaiting_merchant", {}),
        ("system", "remind", "awaiting_merchant", "awaiting_merchant", {}),
        ("system", "expire", "awaiting_merchant", "awaiting_platform", STAGE_M),
        ("platform", "offer", "awaiting_platform", "offer_pending", {"amount": 1}),
        ("consumer", "accept_offer", "offer_pending", "settled", {}),
        ("platform", "mark_fulfilled", "settled", "settled", {}),
        ("consumer", "confirm_fulfilment", "settled", "resolved", {}),
        ("consumer", "rate", "resolved", "resolved", {"score": 5}),
    ),
    # Not reachable through the table (a platform cannot answer once its
    # deadline passed), but derive knows it: escalation_late.
    "escalation_late": timeline(
        ("system", "route", "submitted", "awaiting_merchant", {}),
        ("system", "expire", "awaiting_merchant", "awaiting_platform", STAGE_M),
        ("system", "expire", "awaiting_platform", "in_mediation", STAGE_P),
        ("platform", "reject", "in_mediation", "in_mediation", {"reason": "No"}),
    ),
}


@pytest.mark.parametrize("kind", sorted(RARE))
def test_derive_gives_the_same_rare_facts_from_what_it_reads(kind):
    events = RARE[kind]
    assert kind in {fact[1] for fact in facts_of(SHOP_ON_MALL, events)}
    assert facts_of(SHOP_ON_MALL, as_read(events)) == facts_of(SHOP_ON_MALL, events)


# The rules as they were, to check that the faster derive gives the same --------


def previous_derive(case, events) -> list[Fact]:
    """``ledger.derive`` as it was before it was made faster (commit 6d1ea72)."""
    facts: list[Fact] = []
    side = case.merchant_id or case.platform_id
    for n, event in enumerate(events):
        data = event.data or {}
        later = events[n + 1 :]
        if event.action == "expire" and data.get("stage") in (
            "awaiting_merchant",
            "awaiting_platform",
        ):
            stage = data["stage"]
            if stage == "awaiting_merchant" and case.merchant_id is not None:
                who, role = case.merchant_id, "merchant"
                kinds = ("late_response", "no_response")
            elif case.platform_id is not None:
                who, role = case.platform_id, "platform"
                kinds = (
                    ("escalation_late", "escalation_unanswered")
                    if case.merchant_id is not None
                    else ("late_response", "no_response")
                )
            else:
                continue
            answered = any(
                e.action in ("offer", "reject") and e.actor_role == role for e in later
            )
            facts.append(
                Fact(
                    who,
                    kinds[0] if answered else kinds[1],
                    event.at,
                    _why(case, event, stage=stage),
                )
            )
        elif event.action in ("end_mediation", "expire") and (
            event.from_status == lc.IN_MEDIATION and event.to_status != lc.IN_MEDIATION
        ):
            declines = [
                e
                for e in events[:n]
                if e.action in ("decline_proposal", "accept_proposal")
            ]
            if (
                side is not None
                and declines
                and declines[-1].action == "decline_proposal"
                and (declines[-1].data or {}).get("party") == "merchant"
            ):
                facts.append(
                    Fact(side, "mediation_failed", event.at, _why(case, event))
                )
        elif event.to_status == lc.CLOSED_NONCOMPLIANT and event.from_status != (
            lc.CLOSED_NONCOMPLIANT
        ):
            if side is not None:
                fact = data.get("noncompliance") or {}
                facts.append(
                    Fact(
                        side,
                        "not_fulfilled",
                        event.at,
                        _why(case, event, what=fact.get("kind")),
                        lists=True,
                    )
                )
        elif (
            event.to_status == lc.RESOLVED
            and event.from_status != lc.RESOLVED
            and case.outcome == "settled_directly"
        ):
            offers = [e for e in events[:n] if e.action == "offer"]
            role = offers[-1].actor_role if offers else "merchant"
            if role == "platform" and case.merchant_id is not None and case.platform_id:
                facts.append(
                    Fact(
                        case.platform_id,
                        "escalation_resolved",
                        event.at,
                        _why(case, event),
                    )
                )
            elif side is not None:
                facts.append(
                    Fact(side, "resolved_directly", event.at, _why(case, event))
                )
    awards = [e for e in events if e.action in ("issue_award", "correct_award")]
    if side is not None and awards:
        last = awards[-1]
        decision = (last.data or {}).get("decision")
        if decision in ("granted", "partly_granted"):
            first = awards[0]
            facts.append(
                Fact(
                    side,
                    "award_against",
                    first.at,
                    _why(case, last, decision=decision, sha256=last.data.get("sha256")),
                )
            )
    # One event of a kind per case and merchant: the first occurrence.
    seen: dict[tuple[int, str], Fact] = {}
    for fact in facts:
        seen.setdefault(fact.key, fact)
    return list(seen.values())


def test_derive_gives_what_it_gave_before_it_was_made_faster():
    @settings(max_examples=300, deadline=None)
    @given(case=cases, events=st.one_of(lifecycle_timelines(), arbitrary_timelines()))
    def same(case, events):
        before = [
            (f.merchant_id, f.kind, f.occurred_at, f.data, f.lists)
            for f in previous_derive(case, events)
        ]
        assert facts_of(case, events) == before

    same()
    for events in RARE.values():
        assert facts_of(SHOP_ON_MALL, events) == [
            (f.merchant_id, f.kind, f.occurred_at, f.data, f.lists)
            for f in previous_derive(SHOP_ON_MALL, events)
        ]
