"""``recompute-credit``'s set-based path gives what the per-case path gives.

The per-case path is :func:`ledger.sync_case` for every case, then
:func:`ledger.refresh_standing` for every merchant with a ledger or a standing
(what ``recompute`` did before it went set-based). Both run from the same
starting state (consistent, damaged, empty) on a few dozen varied cases, and
must leave the same ledger, the same standings and the same feed, and call the
change listeners with the same changes in the same order.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.credit import bulk, ledger
from mediation.credit.models import (
    CreditChange,
    CreditEvent,
    CreditRepair,
    CreditStanding,
)
from mediation.extensions import db
from mediation.sla.sweep import run_sweep

MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
OFFER = {
    "type": "refund",
    "amount": 9900,
    "deadline": date(2026, 4, 30),
    "text": "Refund of 99 yuan.",
}
AWARD = {
    "findings": "The kettle leaked.",
    "reasons": "Not fit for use.",
    "decision": "partly_granted",
    "orders": [
        {
            "type": "refund",
            "amount": 12000,
            "deadline": date(2026, 4, 30),
            "text": "Refund.",
        }
    ],
}
EVENT_COLUMNS = (
    "merchant_id",
    "case_id",
    "kind",
    "points",
    "occurred_at",
    "data",
    "lists",
    "repaired_at",
    "repair_id",
    "created_at",
)
STANDING_COLUMNS = (
    "merchant_id",
    "score_tenths",
    "grade",
    "listed",
    "trusted",
    "next_change_at",
    "explanation",
    "updated_at",
)


@pytest.fixture(autouse=True)
def _monday():
    clock.freeze(MONDAY)
    yield
    clock.unfreeze()


@pytest.fixture()
def heard():
    """Record what the change listeners are told."""
    calls: list[tuple[int, str, dict, dict]] = []

    def listener(change: CreditChange) -> None:
        assert change.id is not None
        calls.append((change.merchant_id, change.kind, change.old, change.new))

    ledger.change_listeners.append(listener)
    yield calls
    ledger.change_listeners.remove(listener)


@pytest.fixture()
def history(app, make_user, make_merchant, make_case):
    """A few dozen cases covering every kind of credit event and none."""
    platform = make_merchant(name="Big Mall", kind="platform", arbitration_consent=True)
    shop = make_merchant(
        name="Kettle Shop", arbitration_consent=True, platform_id=platform.id
    )
    lone = make_merchant(name="Lone Shop", arbitration_consent=True)
    quiet = make_merchant(name="Quiet Shop")
    fresh = make_merchant(name="Fresh Shop")  # no cases at all
    people = {
        "consumer": make_user("consumer", name="Zhang San"),
        "shop": make_user("merchant", merchant_id=shop.id),
        "lone": make_user("merchant", merchant_id=lone.id),
        "platform": make_user("merchant", merchant_id=platform.id),
        "mediator": make_user("mediator"),
        "arbitrator": make_user("arbitrator"),
    }
    consumer = people["consumer"]
    n = iter(range(1000))

    def new(merchant=None, **kw):
        return make_case(consumer, merchant, order_ref=f"O-{next(n)}", **kw)

    def act(case_id, action, who, relation, **payload):
        with app.app_context():
            case = db.session.get(Case, case_id)
            actor = db.session.get(User, people[who].id) if who else None
            services.apply_action(
                case,
                action,
                payload,
                actor=actor,
                relation=relation,
                now=clock.now_utc(),
            )
            db.session.commit()

    def direct(merchant, who, score=None):
        case_id = new(merchant)
        act(case_id, "offer", who, "merchant", **OFFER)
        act(case_id, "accept_offer", "consumer", "consumer")
        act(case_id, "mark_fulfilled", who, "merchant")
        act(case_id, "confirm_fulfilment", "consumer", "consumer")
        if score:
            act(case_id, "rate", "consumer", "consumer", score=score)

    def mediated(merchant, who, decliner):
        case_id = new(merchant)
        act(case_id, "reject", who, "merchant", reason="No.")
        act(case_id, "take", "mediator", "mediator")
        act(case_id, "propose", "mediator", "mediator", **OFFER)
        party = "merchant" if decliner == who else "consumer"
        act(case_id, "decline_proposal", decliner, party, reason="No.")
        act(case_id, "end_mediation", "mediator", "mediator", reason="Failed.")
        return case_id

    def awarded(decision, *, fulfilled=None):
        case_id = new(lone, arbitration_consent=True)
        act(case_id, "reject", "lone", "merchant", reason="No.")
        act(case_id, "take", "mediator", "mediator")
        act(case_id, "end_mediation", "mediator", "mediator", reason="No.")
        act(case_id, "take", "arbitrator", "arbitrator")
        award = {**AWARD, "decision": decision}
        if decision == "rejected":
            award["orders"] = []
        act(case_id, "issue_award", "arbitrator", "arbitrator", **award)
        if fulfilled is False:
            act(case_id, "report_unfulfilled", "consumer", "consumer")
        elif fulfilled:
            act(case_id, "mark_fulfilled", "lone", "merchant")
            act(case_id, "confirm_fulfilment", "consumer", "consumer")
            act(case_id, "rate", "consumer", "consumer", score=2)

    # Silences first: the sweeps move the clock.
    for _ in range(3):
        new(quiet)  # three silences in a year: listed
    escalated = [new(shop) for _ in range(4)]
    stall_silent = new(None, merchant_name="Street Stall", platform_id=platform.id)
    clock.freeze(datetime(2026, 3, 5, 16, 0, tzinfo=UTC))
    run_sweep(app, now=clock.now_utc())
    act(escalated[0], "reject", "shop", "merchant", reason="Late.")  # late response
    act(escalated[1], "offer", "platform", "platform", **OFFER)  # platform steps in
    act(escalated[1], "accept_offer", "consumer", "consumer")
    act(escalated[1], "confirm_fulfilment", "consumer", "consumer")
    clock.freeze(datetime(2026, 3, 10, 16, 0, tzinfo=UTC))
    run_sweep(app, now=clock.now_utc())  # the platform stays silent on the rest
    assert stall_silent
    clock.freeze(datetime(2026, 3, 16, 2, 0, tzinfo=UTC))
    for score in (5, 4, 5, 3):
        direct(lone, "lone", score)
    for score in (4, 5, 3, None, 2, 5):
        direct(shop, "shop", score)
    direct(platform, "platform", 4)  # the platform's own sales: platform norm
    stall = new(None, merchant_name="Street Stall", platform_id=platform.id)
    act(stall, "offer", "platform", "platform", **OFFER)
    act(stall, "accept_offer", "consumer", "consumer")
    act(stall, "confirm_fulfilment", "consumer", "consumer")
    act(stall, "rate", "consumer", "consumer", score=1)
    mediated(lone, "lone", "lone")  # mediation failed through the merchant
    mediated(shop, "shop", "consumer")  # the consumer declined: nothing
    mediated(shop, "shop", "shop")
    mediated(lone, "lone", "consumer")
    awarded("partly_granted", fulfilled=False)  # award against, not fulfilled
    awarded("granted", fulfilled=True)
    awarded("rejected")
    withdrawn = new(lone)
    act(withdrawn, "withdraw", "consumer", "consumer", reason="Sorted out.")
    new(shop)  # still open
    with app.app_context():
        cases = db.session.scalar(db.select(db.func.count(Case.id)))
        kinds = set(db.session.scalars(db.select(CreditEvent.kind)))
        applicant = people["lone"].id
    assert cases >= 29
    assert kinds >= {
        "late_response",
        "no_response",
        "escalation_unanswered",
        "escalation_resolved",
        "resolved_directly",
        "mediation_failed",
        "award_against",
        "not_fulfilled",
    }
    return {
        "lone": lone,
        "shop": shop,
        "platform": platform,
        "fresh": fresh,
        "applicant": applicant,
    }


# The two paths ----------------------------------------------------------------


def per_case(now: datetime) -> None:
    """``recompute`` as it was: one case, then one merchant, at a time."""
    touched: set[int] = set()
    for case in db.session.scalars(db.select(Case).order_by(Case.id)).all():
        touched |= ledger.sync_case(case, now=now)
    merchants = set(
        db.session.scalars(db.select(CreditEvent.merchant_id).distinct()).all()
    ) | set(db.session.scalars(db.select(CreditStanding.merchant_id)).all())
    for merchant_id in sorted(merchants | touched):
        ledger.refresh_standing(merchant_id, now=now)


def state() -> tuple[list, list, list]:
    """The ledger, the standings and the feed (feed in cursor order, ids aside)."""
    events = sorted(
        (
            tuple(getattr(e, c) for c in EVENT_COLUMNS)
            for e in db.session.scalars(db.select(CreditEvent))
        ),
        # Events of no case (a mass-complaint alert) first, then by case.
        key=lambda e: (e[0], e[1] is not None, e[1] or 0, e[2], e[4]),
    )
    standings = sorted(
        tuple(getattr(s, c) for c in STANDING_COLUMNS)
        for s in db.session.scalars(db.select(CreditStanding))
    )
    feed = [
        (c.merchant_id, c.kind, c.old, c.new, c.at)
        for c in db.session.scalars(db.select(CreditChange).order_by(CreditChange.id))
    ]
    return events, standings, feed


def saved() -> dict[str, list[dict[str, Any]]]:
    """The credit tables' rows (ids aside), to start both paths from them."""

    def rows(model, order):
        columns = [c.name for c in model.__table__.columns if c.name != "id"]
        return [
            {c: getattr(obj, c) for c in columns}
            for obj in db.session.scalars(db.select(model).order_by(order))
        ]

    return {
        "events": rows(CreditEvent, CreditEvent.id),
        "standings": rows(CreditStanding, CreditStanding.merchant_id),
        "changes": rows(CreditChange, CreditChange.id),
    }


def restore(rows: dict[str, list[dict[str, Any]]]) -> None:
    for model in (CreditChange, CreditEvent, CreditStanding):
        db.session.execute(db.delete(model))
    db.session.add_all(CreditEvent(**r) for r in rows["events"])
    db.session.add_all(CreditStanding(**r) for r in rows["standings"])
    db.session.add_all(CreditChange(**r) for r in rows["changes"])
    db.session.commit()


def both_paths(app, start: dict, now: datetime, heard: list) -> tuple:
    """Run each path from ``start`` at ``now``; they must end the same."""
    results = []
    for path in (per_case, lambda now: ledger.recompute(now=now)):
        with app.app_context():
            restore(start)
            heard.clear()
            path(now)
            db.session.commit()
        with app.app_context():
            results.append((state(), list(heard)))
    (per_case_state, per_case_heard), (bulk_state, bulk_heard) = results
    assert bulk_state[0] == per_case_state[0]  # the ledger
    assert bulk_state[1] == per_case_state[1]  # the standings
    assert bulk_state[2] == per_case_state[2]  # the feed
    assert bulk_heard == per_case_heard
    return bulk_state


# Tests ------------------------------------------------------------------------


def test_bulk_recompute_matches_the_per_case_path_on_a_consistent_ledger(
    app, history, heard
):
    now = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
    with app.app_context():
        start = saved()
    events, standings, feed = both_paths(app, start, now, heard)
    assert len(events) == len(start["events"]) >= 15
    assert len(feed) == len(start["changes"])  # nothing new to report
    assert not heard


def test_bulk_recompute_matches_the_per_case_path_from_scratch(app, history, heard):
    now = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
    empty = {"events": [], "standings": [], "changes": []}
    events, standings, feed = both_paths(app, empty, now, heard)
    assert events and standings
    assert {kind for _, kind, *_ in feed} >= {"grade", "listed"}
    assert len(heard) == len(feed)


def test_bulk_recompute_matches_the_per_case_path_on_a_damaged_ledger(
    app, history, heard
):
    """Missing, moved, foreign and repaired rows; wrong, missing and extra
    standings; and a year later, when windows have moved."""
    with app.app_context():
        repair = CreditRepair(
            merchant_id=history["lone"].id,
            applicant_id=history["applicant"],
            event_ids=[],
            commitment="We refund within a week from now on.",
            created_at=clock.now_utc(),
            status="approved",
        )
        db.session.add(repair)
        db.session.commit()
        start = saved()
        repair_id = repair.id
    events = start["events"]
    by_kind = {e["kind"]: e for e in events}
    # A repaired event whose fact stays: the repair must survive.
    by_kind["mediation_failed"].update(
        repaired_at=MONDAY + timedelta(days=20), repair_id=repair_id
    )
    # A fact at another time than its case says: updated, repair kept.
    by_kind["award_against"].update(
        occurred_at=by_kind["award_against"]["occurred_at"] - timedelta(days=3),
        points=-99,
        repaired_at=MONDAY + timedelta(days=21),
        repair_id=repair_id,
    )
    # A kind the case does not give (deleted), and a missing row (inserted).
    ghost = dict(by_kind["resolved_directly"], kind="no_response", points=-5)
    events.append(ghost)
    events.remove(by_kind["escalation_unanswered"])
    # Standings: one wrong, one missing, one for a merchant without a ledger.
    standings = start["standings"]
    standings[0].update(score_tenths=10, grade="D", listed=True, trusted=True)
    standings.pop()
    standings.append(dict(standings[0], merchant_id=history["fresh"].id))
    for now in (
        datetime(2026, 3, 20, 2, 0, tzinfo=UTC),
        datetime(2027, 3, 20, 2, 0, tzinfo=UTC),  # full weights became half
        datetime(2029, 6, 1, 2, 0, tzinfo=UTC),  # everything has expired
    ):
        _, _, feed = both_paths(app, start, now, heard)
        assert len(feed) > len(start["changes"])


def test_bulk_recompute_of_some_cases_matches_the_per_case_path(app, history, heard):
    now = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
    with app.app_context():
        ids = db.session.scalars(db.select(Case.id).order_by(Case.id)).all()
    some = ids[::3]

    def per_some(now):
        touched: set[int] = set()
        for case_id in some:
            touched |= ledger.sync_case(db.session.get(Case, case_id), now=now)
        merchants = set(
            db.session.scalars(db.select(CreditEvent.merchant_id).distinct()).all()
        ) | set(db.session.scalars(db.select(CreditStanding.merchant_id)).all())
        for merchant_id in sorted(merchants | touched):
            ledger.refresh_standing(merchant_id, now=now)

    empty = {"events": [], "standings": [], "changes": []}
    results = []
    for path in (per_some, lambda now: ledger.recompute(now=now, case_ids=some)):
        with app.app_context():
            restore(empty)
            path(now)
            db.session.commit()
            results.append(state())
    assert results[0] == results[1]
    assert results[1][0]  # some events, from those cases only
    assert {e[1] for e in results[1][0]} <= set(some)


def test_bulk_recompute_reads_cases_in_chunks(app, history, heard, monkeypatch):
    """Chunk edges change nothing (a chunk of 4 cases splits the timelines)."""
    monkeypatch.setattr(bulk, "CHUNK", 4)
    monkeypatch.setattr(bulk, "WRITE_BATCH", 3)
    monkeypatch.setattr(bulk, "STREAM_BATCH", 5)
    now = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
    empty = {"events": [], "standings": [], "changes": []}
    both_paths(app, empty, now, heard)


def test_bulk_recompute_keeps_the_ledger_rows_of_no_case(app, history, heard):
    """A mass-complaint alert's event has no case: no case gives it, so neither
    path deletes or changes it, and it counts in its merchant's standing."""
    now = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
    lone = history["lone"].id
    with app.app_context():
        db.session.add(
            CreditEvent(
                merchant_id=lone,
                case_id=None,
                kind="mass_alert",
                points=-10,
                occurred_at=MONDAY + timedelta(days=2),
                data={"alert_id": 7},
                lists=False,
                created_at=MONDAY + timedelta(days=2),
            )
        )
        db.session.commit()
        start = saved()
    alert = (lone, None, "mass_alert", -10, MONDAY + timedelta(days=2), {"alert_id": 7})
    for begin in (
        start,
        dict(start, events=[e for e in start["events"] if e["case_id"] is None]),
    ):
        events, standings, _feed = both_paths(app, begin, now, heard)
        assert alert in [e[:6] for e in events]
        (standing,) = [s for s in standings if s[0] == lone]
        alerts = [e for e in events if e[0] == lone and e[2] == "mass_alert"]
        factors = {f[0]: f for f in standing[6]["factors"]}
        assert factors["mass_alert"][1:3] == [len(alerts), sum(e[3] for e in alerts)]


@pytest.mark.parametrize("read_ahead", [True, False])
def test_bulk_recompute_sees_what_its_transaction_wrote_before(
    app, history, heard, monkeypatch, read_ahead
):
    """On PostgreSQL the chunks are read ahead on a second connection in the
    same snapshot, which cannot see this transaction's own writes: after a
    write, everything goes through the session's connection. Either way the
    rows deleted (and not committed) just before come back."""
    monkeypatch.setattr(bulk, "READ_AHEAD", read_ahead)
    now = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
    with app.app_context():
        start = saved()

    def after_a_write(path):
        def run(now):
            db.session.execute(
                db.delete(CreditEvent).where(CreditEvent.kind == "mediation_failed")
            )
            db.session.flush()
            path(now)

        return run

    results = []
    for path in (per_case, lambda now: ledger.recompute(now=now)):
        with app.app_context():
            restore(start)
            after_a_write(path)(now)
            db.session.commit()
            results.append(state())
    assert results[0] == results[1]
    assert "mediation_failed" in {e[2] for e in results[1][0]}
