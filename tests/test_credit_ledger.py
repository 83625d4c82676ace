"""The credit ledger from real cases: the points table case by case, platform
norms, listing, live updates and ``recompute-credit`` giving the same result."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.credit import ledger
from mediation.credit.models import CreditChange, CreditEvent, CreditStanding
from mediation.extensions import db
from mediation.sla.sweep import run_sweep

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
OFFER = {
    "type": "refund",
    "amount": 9900,
    "deadline": date(2026, 3, 20),
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
            "deadline": date(2026, 3, 20),
            "text": "Refund.",
        }
    ],
}


@pytest.fixture(autouse=True)
def _monday():
    clock.freeze(MONDAY)
    yield
    clock.unfreeze()


@pytest.fixture()
def people(make_user, make_merchant):
    platform = make_merchant(name="Big Mall", kind="platform", arbitration_consent=True)
    shop = make_merchant(
        name="Kettle Shop", arbitration_consent=True, platform_id=platform.id
    )
    lone = make_merchant(name="Lone Shop", arbitration_consent=True)
    return {
        "platform": platform,
        "shop": shop,
        "lone": lone,
        "consumer": make_user("consumer", name="Zhang San"),
        "staff": make_user("merchant", merchant_id=shop.id, name="Staff K"),
        "lone_staff": make_user("merchant", merchant_id=lone.id, name="Staff L"),
        "platform_staff": make_user("merchant", merchant_id=platform.id, name="Mall P"),
        "mediator": make_user("mediator", name="Mia"),
        "arbitrator": make_user("arbitrator", name="Ada"),
        "regulator": make_user("regulator", name="Rita"),
    }


def apply(app, case_id, action, user, relation, **payload):
    with app.app_context():
        case = db.session.get(Case, case_id)
        actor = db.session.get(User, user.id) if user is not None else None
        services.apply_action(
            case, action, payload, actor=actor, relation=relation, now=clock.now_utc()
        )
        db.session.commit()


def sweep_at(app, moment):
    clock.freeze(moment)
    return run_sweep(app, now=moment)


def ledger_of(app, merchant) -> list[tuple[str, int]]:
    with app.app_context():
        return sorted(
            (e.kind, e.points)
            for e in db.session.scalars(
                db.select(CreditEvent).where(CreditEvent.merchant_id == merchant.id)
            )
        )


def standing(app, merchant):
    with app.app_context():
        row = db.session.get(CreditStanding, merchant.id)
        return None if row is None else (row.score, row.grade, row.listed)


def test_a_direct_settlement_earns_a_point(app, make_case, people):
    case_id = make_case(people["consumer"], people["lone"])
    apply(app, case_id, "offer", people["lone_staff"], "merchant", **OFFER)
    apply(app, case_id, "accept_offer", people["consumer"], "consumer")
    apply(app, case_id, "mark_fulfilled", people["lone_staff"], "merchant")
    assert ledger_of(app, people["lone"]) == []
    apply(app, case_id, "confirm_fulfilment", people["consumer"], "consumer")
    assert ledger_of(app, people["lone"]) == [("resolved_directly", 1)]
    assert standing(app, people["lone"]) == (101, "A", False)
    with app.app_context():
        event = db.session.scalars(db.select(CreditEvent)).one()
        assert event.case_id == case_id
        assert event.data["reference"].startswith("MC-2026-")
        assert event.data["action"] == "confirm_fulfilment"


def test_silence_and_a_late_answer(app, make_case, people):
    # The lone shop never answers: no response. The platform's shop answers only
    # after its deadline, while the platform has the case: a late response.
    silent = make_case(people["consumer"], people["lone"])
    late = make_case(people["consumer"], people["shop"])
    sweep_at(app, datetime(2026, 3, 5, 16, 0, tzinfo=UTC))
    assert ledger_of(app, people["lone"]) == [("no_response", -5)]
    assert ledger_of(app, people["shop"]) == [("no_response", -5)]
    apply(app, late, "reject", people["staff"], "merchant", reason="Not ours.")
    assert ledger_of(app, people["shop"]) == [("late_response", -2)]
    assert standing(app, people["shop"]) == (98, "A", False)
    assert silent != late


def test_the_platform_is_judged_on_escalations(app, make_case, people):
    case_id = make_case(people["consumer"], people["shop"])
    sweep_at(app, datetime(2026, 3, 5, 16, 0, tzinfo=UTC))  # shop silent: platform
    sweep_at(app, datetime(2026, 3, 10, 16, 0, tzinfo=UTC))  # platform silent too
    assert ledger_of(app, people["platform"]) == [("escalation_unanswered", -5)]
    assert ledger_of(app, people["shop"]) == [("no_response", -5)]
    with app.app_context():
        assert db.session.get(Case, case_id).status == "in_mediation"


def test_a_platform_that_resolves_an_escalation_earns_the_point(app, make_case, people):
    case_id = make_case(people["consumer"], people["shop"])
    sweep_at(app, datetime(2026, 3, 5, 16, 0, tzinfo=UTC))
    apply(app, case_id, "offer", people["platform_staff"], "platform", **OFFER)
    apply(app, case_id, "accept_offer", people["consumer"], "consumer")
    apply(app, case_id, "confirm_fulfilment", people["consumer"], "consumer")
    assert ledger_of(app, people["platform"]) == [("escalation_resolved", 1)]
    assert ledger_of(app, people["shop"]) == [("no_response", -5)]


def test_mediation_failing_through_the_merchant(app, make_case, people):
    case_id = make_case(people["consumer"], people["lone"], arbitration_consent=False)
    apply(app, case_id, "reject", people["lone_staff"], "merchant", reason="No.")
    apply(app, case_id, "take", people["mediator"], "mediator")
    apply(app, case_id, "propose", people["mediator"], "mediator", **OFFER)
    apply(
        app, case_id, "decline_proposal", people["lone_staff"], "merchant", reason="No."
    )
    apply(
        app, case_id, "end_mediation", people["mediator"], "mediator", reason="Failed."
    )
    assert ledger_of(app, people["lone"]) == [("mediation_failed", -2)]


def test_a_consumer_declining_does_not_count_against_the_merchant(
    app, make_case, people
):
    case_id = make_case(people["consumer"], people["lone"], arbitration_consent=False)
    apply(app, case_id, "reject", people["lone_staff"], "merchant", reason="No.")
    apply(app, case_id, "take", people["mediator"], "mediator")
    apply(app, case_id, "propose", people["mediator"], "mediator", **OFFER)
    apply(
        app, case_id, "decline_proposal", people["consumer"], "consumer", reason="Low."
    )
    apply(
        app, case_id, "end_mediation", people["mediator"], "mediator", reason="Failed."
    )
    assert ledger_of(app, people["lone"]) == []


def awarded(app, make_case, people, **award):
    case_id = make_case(people["consumer"], people["lone"], arbitration_consent=True)
    apply(app, case_id, "reject", people["lone_staff"], "merchant", reason="No.")
    apply(app, case_id, "take", people["mediator"], "mediator")
    apply(app, case_id, "end_mediation", people["mediator"], "mediator", reason="No.")
    apply(app, case_id, "take", people["arbitrator"], "arbitrator")
    apply(
        app,
        case_id,
        "issue_award",
        people["arbitrator"],
        "arbitrator",
        **{**AWARD, **award},
    )
    return case_id


def test_an_award_against_the_merchant_and_its_non_performance(app, make_case, people):
    case_id = awarded(app, make_case, people)
    assert ledger_of(app, people["lone"]) == [("award_against", -3)]
    apply(app, case_id, "report_unfulfilled", people["consumer"], "consumer")
    assert ledger_of(app, people["lone"]) == [
        ("award_against", -3),
        ("not_fulfilled", -20),
    ]
    assert standing(app, people["lone"]) == (77, "D", True)
    with app.app_context():
        changes = [
            (c.kind, c.new.get("grade"), c.new.get("listed"))
            for c in db.session.scalars(
                db.select(CreditChange)
                .where(CreditChange.merchant_id == people["lone"].id)
                .order_by(CreditChange.id)
            )
        ]
    assert changes == [("grade", "D", True), ("listed", "D", True)]


def test_a_rejected_claim_is_no_award_against(app, make_case, people):
    awarded(app, make_case, people, decision="rejected", orders=[])
    assert ledger_of(app, people["lone"]) == []


def test_three_silences_in_a_year_list_the_merchant(app, make_case, people):
    for n in range(3):
        make_case(people["consumer"], people["lone"], order_ref=f"O-{n}")
    sweep_at(app, datetime(2026, 3, 5, 16, 0, tzinfo=UTC))
    assert standing(app, people["lone"]) == (85, "D", True)
    # A year later the silences count half and no longer list the merchant: the
    # sweep refreshes the standing when the window passes.
    sweep_at(app, datetime(2027, 3, 6, 0, 0, tzinfo=UTC))
    assert standing(app, people["lone"]) == (92.5, "A", False)


def test_recompute_gives_the_live_result_and_changes_nothing_more(
    app, make_case, people, runner
):
    awarded_id = awarded(app, make_case, people)
    apply(app, awarded_id, "report_unfulfilled", people["consumer"], "consumer")
    make_case(people["consumer"], people["shop"])
    direct = make_case(people["consumer"], people["lone"], order_ref="D-1")
    apply(app, direct, "offer", people["lone_staff"], "merchant", **OFFER)
    apply(app, direct, "accept_offer", people["consumer"], "consumer")
    apply(app, direct, "confirm_fulfilment", people["consumer"], "consumer")
    apply(app, direct, "rate", people["consumer"], "consumer", score=4)
    sweep_at(app, datetime(2026, 3, 9, 16, 0, tzinfo=UTC))

    def snapshot():
        with app.app_context():
            events = sorted(
                (e.merchant_id, e.case_id, e.kind, e.points, e.occurred_at, e.lists)
                for e in db.session.scalars(db.select(CreditEvent))
            )
            standings = sorted(
                (s.merchant_id, s.score_tenths, s.grade, s.listed, s.trusted)
                for s in db.session.scalars(db.select(CreditStanding))
            )
            feed = db.session.scalar(db.select(db.func.count(CreditChange.id)))
            return events, standings, feed

    live_events, live_standings, live_feed = snapshot()
    assert live_events and live_standings
    # Recomputing a consistent ledger changes nothing, not even the feed.
    result = runner.invoke(args=["recompute-credit"])
    assert result.exit_code == 0, result.output
    assert snapshot() == (live_events, live_standings, live_feed)
    # From scratch: the same ledger and standings.
    with app.app_context():
        db.session.execute(db.delete(CreditEvent))
        db.session.execute(db.delete(CreditStanding))
        db.session.commit()
    result = runner.invoke(args=["recompute-credit"])
    assert "credit recomputed" in result.output
    events, standings, _ = snapshot()
    assert (events, standings) == (live_events, live_standings)
    # Every event says why: its case and timeline entry.
    with app.app_context():
        for event in db.session.scalars(db.select(CreditEvent)):
            assert event.data["seq"] >= 1 and event.data["action"]


def test_the_window_refresh_is_idempotent(app, make_case, people):
    make_case(people["consumer"], people["lone"])
    sweep_at(app, datetime(2026, 3, 5, 16, 0, tzinfo=UTC))
    later = datetime(2027, 3, 6, 0, 0, tzinfo=UTC)
    sweep_at(app, later)
    with app.app_context():
        before = db.session.scalar(db.select(db.func.count(CreditChange.id)))
        assert ledger.refresh_due(now=later) == 0
        assert db.session.scalar(db.select(db.func.count(CreditChange.id))) == before
        row = db.session.get(CreditStanding, people["lone"].id)
        assert row.next_change_at > later
    assert timedelta(0) < row.next_change_at - later
