"""Online arbitration in the services, the sweep and the API: consent, the
arbitrator's independence, information requests and the award clock, objections,
immutable awards, the correction window, and compliance."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.arbitration import services as arbitration
from mediation.arbitration.models import (
    Award,
    AwardImmutable,
    InfoRequest,
)
from mediation.auth.models import User
from mediation.auth.permissions import case_relation, visible_cases
from mediation.cases import lifecycle as lc
from mediation.cases import services
from mediation.cases.chain import verify_events
from mediation.cases.models import Case, Evidence
from mediation.chat.services import room_access
from mediation.errors import InvalidTransition, ValidationError
from mediation.extensions import db
from mediation.notifications.models import Notification
from mediation.sla.sweep import run_sweep

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
AWARD = {
    "findings": "The kettle leaked; the merchant's delivery record shows no test.",
    "reasons": "A product must be fit for use (Consumer Rights Protection Law).\n"
    "部分支持申请人的请求。",
    "decision": "partly_granted",
    "orders": [
        {
            "type": "refund",
            "amount": 12000,
            "deadline": date(2026, 3, 20),
            "text": "Refund 120 yuan to the consumer. 退款120元。",
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
    shop = make_merchant(name="Kettle Shop", arbitration_consent=True)
    other = make_merchant(name="Tea House", arbitration_consent=False)
    return {
        "shop": shop,
        "other_shop": other,
        "consumer": make_user("consumer", name="Zhang San"),
        "merchant": make_user("merchant", merchant_id=shop.id, name="Staff K"),
        "other_staff": make_user("merchant", merchant_id=other.id, name="Staff T"),
        "mediator": make_user("mediator", name="Mia Mediator"),
        "arbitrator": make_user("arbitrator", name="Ada Arbiter"),
        "arbitrator2": make_user("arbitrator", name="Bo Arbiter"),
        "regulator": make_user("regulator", name="Rita Regulator"),
    }


def apply(app, case_id: int, action: str, user, relation: str, **payload) -> None:
    with app.app_context():
        case = db.session.get(Case, case_id)
        actor = db.session.get(User, user.id) if user is not None else None
        services.apply_action(
            case, action, payload, actor=actor, relation=relation, now=clock.now_utc()
        )
        db.session.commit()


def load(app, case_id: int) -> dict:
    with app.app_context():
        case = db.session.get(Case, case_id)
        return {
            "status": case.status,
            "due_at": case.due_at,
            "paused_at": case.paused_at,
            "paused_remaining": case.paused_remaining,
            "info_due_at": case.info_due_at,
            "arbitrator_id": case.arbitrator_id,
            "outcome": case.outcome,
            "events": [(e.action, dict(e.data or {})) for e in case.events],
        }


def in_mediation(app, make_case, people, *, shop="shop", consent=True) -> int:
    staff = people["merchant"] if shop == "shop" else people["other_staff"]
    case_id = make_case(people["consumer"], people[shop], arbitration_consent=consent)
    apply(app, case_id, "reject", staff, "merchant", reason="Not our fault.")
    apply(app, case_id, "take", people["mediator"], "mediator")
    return case_id


def in_arbitration(app, make_case, people, *, take=True) -> int:
    case_id = in_mediation(app, make_case, people)
    apply(app, case_id, "end_mediation", people["mediator"], "mediator", reason="No.")
    assert load(app, case_id)["status"] == lc.IN_ARBITRATION
    if take:
        apply(app, case_id, "take", people["arbitrator"], "arbitrator")
    return case_id


def awarded(app, make_case, people, **award) -> int:
    case_id = in_arbitration(app, make_case, people)
    apply(
        app,
        case_id,
        "issue_award",
        people["arbitrator"],
        "arbitrator",
        **{**AWARD, **award},
    )
    return case_id


# Consent ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consumer", "merchant_consents", "ending"),
    list(
        itertools.product(
            ("at_filing", "later", "never"), (True, False), ("end_mediation", "sla")
        )
    ),
)
def test_every_consent_combination(
    app, make_case, people, consumer, merchant_consents, ending
):
    shop = "shop" if merchant_consents else "other_shop"
    case_id = in_mediation(
        app, make_case, people, shop=shop, consent=consumer == "at_filing"
    )
    if consumer == "later":
        apply(app, case_id, "consent_arbitration", people["consumer"], "consumer")
    if ending == "end_mediation":
        apply(
            app, case_id, "end_mediation", people["mediator"], "mediator", reason="No."
        )
    else:
        clock.freeze(MONDAY + timedelta(days=30))
        run_sweep(app, now=clock.now_utc())
    state = load(app, case_id)
    both = consumer != "never" and merchant_consents
    last_action, data = state["events"][-1]
    assert last_action == ("end_mediation" if ending == "end_mediation" else "expire")
    if both:
        assert state["status"] == lc.IN_ARBITRATION
        assert data["next"] == lc.IN_ARBITRATION
        assert "referral" not in data
    else:
        assert state["status"] == lc.CLOSED_UNRESOLVED
        missing = [
            p
            for p, ok in (
                ("consumer", consumer != "never"),
                ("merchant", merchant_consents),
            )
            if not ok
        ]
        assert data["referral"] == {
            "no_consent": missing,
            "options": ["regulator_12315", "court"],
        }


def test_the_consumer_consents_until_mediation_ends_and_only_once(
    app, make_case, people
):
    case_id = in_mediation(app, make_case, people, consent=False)
    apply(app, case_id, "consent_arbitration", people["consumer"], "consumer")
    with pytest.raises(InvalidTransition):
        apply(app, case_id, "consent_arbitration", people["consumer"], "consumer")
    # After mediation ended there is nothing left to consent to.
    other = in_mediation(app, make_case, people, shop="other_shop", consent=False)
    apply(app, other, "end_mediation", people["mediator"], "mediator", reason="No.")
    with pytest.raises(InvalidTransition):
        apply(app, other, "consent_arbitration", people["consumer"], "consumer")


# The arbitrator -------------------------------------------------------------


def test_an_arbitrator_who_mediated_the_case_cannot_see_or_take_it(
    app, make_case, people, make_user
):
    case_id = in_arbitration(app, make_case, people, take=False)
    # The mediator later became an arbitrator (the same person).
    with app.app_context():
        mediator = db.session.get(User, people["mediator"].id)
        mediator.role = "arbitrator"
        db.session.commit()
        case = db.session.get(Case, case_id)
        assert case_relation(mediator, case) is None
        assert case_relation(db.session.get(User, people["arbitrator"].id), case) == (
            "arbitrator"
        )
        visible = db.session.scalars(visible_cases(mediator)).all()
        assert case_id not in [c.id for c in visible]
        # The handler refuses too, whatever the caller checked.
        with pytest.raises(ValidationError) as caught:
            services.apply_action(
                case,
                "take",
                {},
                actor=mediator,
                relation="arbitrator",
                now=clock.now_utc(),
            )
        assert caught.value.code == "mediated_case"
        db.session.rollback()
        # Nor does the sweep ever assign them (the other arbitrators are busy).
        for name in ("arbitrator", "arbitrator2"):
            db.session.get(User, people[name].id).is_active_account = False
        db.session.commit()
        case = db.session.get(Case, case_id)
        assert services.pick_assignee(case) is None


def test_the_sweep_assigns_an_arbitrator_when_nobody_takes_the_case(
    app, make_case, people
):
    case_id = in_arbitration(app, make_case, people, take=False)
    state = load(app, case_id)
    # One working day for the pick-up: Tuesday 23:59:59 in Shanghai.
    assert state["due_at"] == datetime(2026, 3, 3, 15, 59, 59, tzinfo=UTC)
    clock.freeze(datetime(2026, 3, 3, 16, 0, tzinfo=UTC))
    report = run_sweep(app, now=clock.now_utc())
    assert (
        case_id,
        "auto_assign",
        lc.IN_ARBITRATION,
        lc.IN_ARBITRATION,
    ) in report.steps
    state = load(app, case_id)
    assert state["arbitrator_id"] in (people["arbitrator"].id, people["arbitrator2"].id)
    # The award deadline starts then: 15 working days.
    assert state["due_at"] > clock.now_utc() + timedelta(days=15)


def test_a_party_objects_once_and_the_regulator_decides(app, make_case, people):
    case_id = in_arbitration(app, make_case, people)
    apply(
        app,
        case_id,
        "object_arbitrator",
        people["merchant"],
        "merchant",
        reason="He knows the consumer.",
    )
    with app.app_context():
        regulators = db.session.scalars(
            db.select(Notification).where(
                Notification.user_id == people["regulator"].id,
                Notification.kind == "objection_filed",
            )
        ).all()
        assert len(regulators) == 1
    # No award while the objection waits; nobody objects twice at once.
    with pytest.raises(InvalidTransition):
        apply(app, case_id, "issue_award", people["arbitrator"], "arbitrator", **AWARD)
    with pytest.raises(InvalidTransition):
        apply(
            app,
            case_id,
            "object_arbitrator",
            people["consumer"],
            "consumer",
            reason="x",
        )
    # Upholding needs a replacement who is neither the arbitrator nor the mediator.
    for user_id in (None, people["arbitrator"].id, people["mediator"].id):
        with pytest.raises(ValidationError):
            apply(
                app,
                case_id,
                "decide_objection",
                people["regulator"],
                "regulator",
                decision="upheld",
                reason="Conflict of interest.",
                user_id=user_id,
            )
    apply(
        app,
        case_id,
        "decide_objection",
        people["regulator"],
        "regulator",
        decision="upheld",
        reason="Conflict of interest.",
        user_id=people["arbitrator2"].id,
    )
    state = load(app, case_id)
    assert state["arbitrator_id"] == people["arbitrator2"].id
    assert state["events"][-1][1]["decision"] == "upheld"
    # The merchant objected once already; the consumer still may, once.
    with pytest.raises(InvalidTransition):
        apply(
            app,
            case_id,
            "object_arbitrator",
            people["merchant"],
            "merchant",
            reason="Again.",
        )
    apply(
        app,
        case_id,
        "object_arbitrator",
        people["consumer"],
        "consumer",
        reason="Slow.",
    )
    apply(
        app,
        case_id,
        "decide_objection",
        people["regulator"],
        "regulator",
        decision="dismissed",
        reason="No ground.",
    )
    assert load(app, case_id)["arbitrator_id"] == people["arbitrator2"].id
    with pytest.raises(InvalidTransition):
        apply(
            app,
            case_id,
            "object_arbitrator",
            people["consumer"],
            "consumer",
            reason="x",
        )
    apply(app, case_id, "issue_award", people["arbitrator2"], "arbitrator", **AWARD)
    assert load(app, case_id)["status"] == lc.AWARDED


# Information requests and the award clock --------------------------------


def test_an_information_request_stops_the_award_clock_until_answered(
    app, make_case, people
):
    case_id = in_arbitration(app, make_case, people)
    due = load(app, case_id)["due_at"]
    left = int((due - clock.now_utc()).total_seconds())
    apply(
        app,
        case_id,
        "request_info",
        people["arbitrator"],
        "arbitrator",
        party="merchant",
        question="Send the delivery record.",
        deadline=date(2026, 3, 6),
    )
    state = load(app, case_id)
    assert state["due_at"] is None and state["paused_at"] == MONDAY
    assert state["paused_remaining"] == left
    # The end of Friday 6 March in Shanghai.
    assert state["info_due_at"] == datetime(2026, 3, 6, 15, 59, 59, tzinfo=UTC)
    with pytest.raises(InvalidTransition):
        apply(app, case_id, "issue_award", people["arbitrator"], "arbitrator", **AWARD)
    # Only the party asked answers.
    with pytest.raises(InvalidTransition):
        apply(app, case_id, "answer_info", people["consumer"], "consumer", text="Me?")
    # Two days later the merchant answers, with a file of the case.
    clock.freeze(MONDAY + timedelta(days=2))
    with app.app_context():
        evidence = Evidence(
            case_id=case_id,
            uploader_id=people["merchant"].id,
            sha256="a" * 64,
            size=10,
            content_type="application/pdf",
            original_name="waybill.pdf",
            created_at=clock.now_utc(),
        )
        db.session.add(evidence)
        db.session.commit()
        evidence_id = evidence.id
    with pytest.raises(ValidationError):
        apply(
            app,
            case_id,
            "answer_info",
            people["merchant"],
            "merchant",
            text="Here.",
            evidence_ids=[evidence_id + 999],
        )
    apply(
        app,
        case_id,
        "answer_info",
        people["merchant"],
        "merchant",
        text="The waybill is attached.",
        evidence_ids=[evidence_id],
    )
    state = load(app, case_id)
    assert state["paused_at"] is None and state["info_due_at"] is None
    # The clock runs on with the time it had left: the deadline moved by 2 days.
    assert state["due_at"] == clock.now_utc() + timedelta(seconds=left)
    assert state["due_at"] == due + timedelta(days=2)
    with app.app_context():
        request = db.session.scalars(db.select(InfoRequest)).one()
        assert request.status == "answered"
        assert request.answer_evidence_ids == [evidence_id]
    apply(app, case_id, "issue_award", people["arbitrator"], "arbitrator", **AWARD)


def test_an_unanswered_request_lapses_at_its_deadline_and_the_clock_runs_again(
    app, make_case, people
):
    case_id = in_arbitration(app, make_case, people)
    left = load(app, case_id)["paused_remaining"]
    apply(
        app,
        case_id,
        "request_info",
        people["arbitrator"],
        "arbitrator",
        party="consumer",
        question="Photo of the leak?",
        deadline=date(2026, 3, 4),
    )
    apply(
        app,
        case_id,
        "request_info",
        people["arbitrator"],
        "arbitrator",
        party="merchant",
        question="Delivery record?",
        deadline=date(2026, 3, 5),
    )
    left = load(app, case_id)["paused_remaining"]
    # The first deadline passes: that request lapses, the other keeps the clock stopped.
    clock.freeze(datetime(2026, 3, 4, 16, 0, tzinfo=UTC))
    report = run_sweep(app, now=clock.now_utc())
    assert (case_id, "lapse_info", lc.IN_ARBITRATION, lc.IN_ARBITRATION) in report.steps
    state = load(app, case_id)
    assert state["paused_at"] is not None
    assert state["info_due_at"] == datetime(2026, 3, 5, 15, 59, 59, tzinfo=UTC)
    assert state["events"][-1][1]["late_party"] == ["consumer"]
    # A second sweep at the same time does nothing more.
    assert run_sweep(app, now=clock.now_utc()).steps == []
    clock.freeze(datetime(2026, 3, 5, 16, 0, tzinfo=UTC))
    run_sweep(app, now=clock.now_utc())
    state = load(app, case_id)
    assert state["paused_at"] is None and state["info_due_at"] is None
    assert state["due_at"] == clock.now_utc() + timedelta(seconds=left)
    with app.app_context():
        statuses = db.session.scalars(
            db.select(InfoRequest.status).order_by(InfoRequest.id)
        ).all()
        assert statuses == ["lapsed", "lapsed"]


def test_a_request_needs_a_party_a_question_and_a_future_deadline(
    app, make_case, people
):
    case_id = in_arbitration(app, make_case, people)
    with pytest.raises(ValidationError) as caught:
        apply(
            app,
            case_id,
            "request_info",
            people["arbitrator"],
            "arbitrator",
            party="mediator",
            question=" ",
            deadline=date(2026, 3, 1),
        )
    assert set(caught.value.fields) == {"party", "question", "deadline"}
    assert load(app, case_id)["paused_at"] is None


# The award ----------------------------------------------------------------


def test_the_award_is_hashed_recorded_and_never_edited(app, make_case, people):
    case_id = awarded(app, make_case, people)
    state = load(app, case_id)
    assert state["status"] == lc.AWARDED
    action, data = state["events"][-1]
    assert action == "issue_award"
    with app.app_context():
        award = db.session.scalars(db.select(Award)).one()
        assert data["sha256"] == award.sha256 == arbitration.award_sha256(award.content)
        assert award.content["reference"] == db.session.get(Case, case_id).reference
        assert award.content["orders"][0] == {
            "type": "refund",
            "amount": 12000,
            "deadline": "2026-03-20",
            "text": "Refund 120 yuan to the consumer. 退款120元。",
        }
        assert award.content["merchant"]["name"] == "Kettle Shop"
        assert award.content["issued_on"] == "2026-03-02"
        # Correction window: 5 working days, to Monday 9 March 23:59:59 Shanghai.
        assert award.correction_until == datetime(2026, 3, 9, 15, 59, 59, tzinfo=UTC)
        award.findings = "Something else."
        with pytest.raises(AwardImmutable):
            db.session.flush()
        db.session.rollback()
        assert verify_events(db.session.get(Case, case_id).events) == []
    # Issued once: there is no second issue, nor a correction nobody asked for.
    for action in ("issue_award", "correct_award"):
        with pytest.raises(InvalidTransition):
            apply(app, case_id, action, people["arbitrator"], "arbitrator", **AWARD)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"decision": "maybe"}, "decision"),
        ({"findings": " "}, "findings"),
        ({"orders": []}, "orders"),
        (
            {
                "orders": [
                    {
                        "type": "costs",
                        "amount": 100,
                        "deadline": date(2026, 3, 9),
                        "text": "Costs",
                    }
                ]
            },
            "orders",
        ),
        (
            {
                "orders": [
                    {
                        "type": "refund",
                        "amount": -1,
                        "deadline": date(2026, 3, 9),
                        "text": "x",
                    }
                ]
            },
            "orders",
        ),
        (
            {
                "orders": [
                    {
                        "type": "refund",
                        "amount": 1,
                        "deadline": date(2026, 3, 1),
                        "text": "x",
                    }
                ]
            },
            "orders",
        ),
    ],
)
def test_a_bad_award_is_refused_with_the_field(app, make_case, people, change, field):
    case_id = in_arbitration(app, make_case, people)
    with pytest.raises(ValidationError) as caught:
        apply(
            app,
            case_id,
            "issue_award",
            people["arbitrator"],
            "arbitrator",
            **{**AWARD, **change},
        )
    assert field in caught.value.fields
    assert load(app, case_id)["status"] == lc.IN_ARBITRATION


def test_a_rejection_may_order_nothing(app, make_case, people):
    case_id = awarded(app, make_case, people, decision="rejected", orders=[])
    assert load(app, case_id)["status"] == lc.AWARDED


def test_correction_window(app, make_case, people):
    case_id = awarded(app, make_case, people)
    with app.app_context():
        assert not arbitration.is_final(db.session.get(Case, case_id))
    apply(
        app,
        case_id,
        "request_correction",
        people["consumer"],
        "consumer",
        reason="The refund should be 199 yuan, the price paid.",
    )
    # One request at a time.
    with pytest.raises(InvalidTransition):
        apply(
            app,
            case_id,
            "request_correction",
            people["merchant"],
            "merchant",
            reason="x",
        )
    corrected = {
        **AWARD,
        "orders": [
            {**AWARD["orders"][0], "amount": 19900, "deadline": date(2026, 3, 25)}
        ],
    }
    apply(
        app, case_id, "correct_award", people["arbitrator"], "arbitrator", **corrected
    )
    with app.app_context():
        case = db.session.get(Case, case_id)
        v1, v2 = arbitration.award_versions(case)
        assert (v1.version, v2.version) == (1, 2)
        assert v1.orders[0]["amount"] == 12000  # kept as issued
        assert v2.content["corrects"] == v1.sha256
        assert v2.correction_until == v1.correction_until
        assert arbitration.current_award(case).sha256 == v2.sha256
        # The later order deadline moves the performance deadline on.
        assert case.due_at == datetime(2026, 3, 25, 15, 59, 59, tzinfo=UTC)
    events = load(app, case_id)["events"]
    assert [a for a, _ in events[-3:]] == [
        "issue_award",
        "request_correction",
        "correct_award",
    ]
    assert events[-1][1]["corrects"] == events[-3][1]["sha256"]
    assert events[-1][1]["sha256"] != events[-3][1]["sha256"]
    # The merchant asks too; the arbitrator refuses with reasons.
    apply(
        app,
        case_id,
        "request_correction",
        people["merchant"],
        "merchant",
        reason="Typo in my name.",
    )
    with pytest.raises(ValidationError):
        apply(
            app,
            case_id,
            "refuse_correction",
            people["arbitrator"],
            "arbitrator",
            reason=" ",
        )
    apply(
        app,
        case_id,
        "refuse_correction",
        people["arbitrator"],
        "arbitrator",
        reason="The name is right.",
    )
    # After the window: no more requests, and the award is final.
    clock.freeze(datetime(2026, 3, 9, 16, 0, tzinfo=UTC))
    with pytest.raises(InvalidTransition):
        apply(
            app,
            case_id,
            "request_correction",
            people["consumer"],
            "consumer",
            reason="Late.",
        )
    with app.app_context():
        assert arbitration.is_final(db.session.get(Case, case_id))


# Compliance ---------------------------------------------------------------


def test_the_merchant_performs_and_the_consumer_confirms(app, make_case, people):
    case_id = awarded(app, make_case, people)
    # The order's deadline (20 March) is later than the 7 days of the policy.
    assert load(app, case_id)["due_at"] == datetime(2026, 3, 20, 15, 59, 59, tzinfo=UTC)
    apply(
        app, case_id, "mark_fulfilled", people["merchant"], "merchant", text="Refunded."
    )
    apply(app, case_id, "confirm_fulfilment", people["consumer"], "consumer")
    state = load(app, case_id)
    assert state["status"] == lc.RESOLVED and state["outcome"] == "award_complied"


def test_non_performance_closes_the_case_records_the_fact_and_tells_the_regulator(
    app, make_case, people
):
    case_id = awarded(app, make_case, people)
    apply(
        app,
        case_id,
        "report_unfulfilled",
        people["consumer"],
        "consumer",
        text="Nothing came.",
    )
    state = load(app, case_id)
    assert state["status"] == lc.CLOSED_NONCOMPLIANT
    with app.app_context():
        award = db.session.scalars(db.select(Award)).one()
        assert state["events"][-1][1]["noncompliance"] == {
            "kind": "award_not_performed",
            "merchant_id": people["shop"].id,
            "award_id": award.id,
            "award_sha256": award.sha256,
            "amount": 12000,
        }
        kinds = db.session.scalars(
            db.select(Notification.kind).where(
                Notification.user_id == people["regulator"].id
            )
        ).all()
        assert "case_noncompliant" in kinds


def test_silence_past_the_deadline_closes_as_non_compliant(app, make_case, people):
    case_id = awarded(app, make_case, people)
    clock.freeze(datetime(2026, 3, 20, 16, 0, tzinfo=UTC))
    run_sweep(app, now=clock.now_utc())
    state = load(app, case_id)
    assert state["status"] == lc.CLOSED_NONCOMPLIANT
    action, data = state["events"][-1]
    assert action == "expire" and data["noncompliance"]["kind"] == "award_not_performed"


# Access -------------------------------------------------------------------


def test_the_arbitrator_reads_the_joint_room_only(
    app, make_case, people, client, token_for
):
    case_id = in_arbitration(app, make_case, people)
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert room_access(case, db.session.get(User, people["arbitrator"].id)) == {
            "joint": "read"
        }
        assert room_access(case, db.session.get(User, people["arbitrator2"].id)) == {}
    headers = token_for(people["arbitrator"])
    joint = client.get(f"/api/v1/cases/{case_id}/messages?room=joint", headers=headers)
    assert joint.status_code == 200
    for party in ("consumer", "merchant"):
        caucus = client.get(
            f"/api/v1/cases/{case_id}/messages?room=caucus&party={party}",
            headers=headers,
        )
        assert caucus.status_code in (403, 404), caucus.get_json()
    # Another shop's staff never reads the case at all.
    other = client.get(
        f"/api/v1/cases/{case_id}/messages?room=joint",
        headers=token_for(people["other_staff"]),
    )
    assert other.status_code == 404


# The API --------------------------------------------------------------------


def test_the_arbitration_actions_through_the_api(
    app, make_case, people, client, token_for
):
    case_id = in_arbitration(app, make_case, people, take=False)
    url = f"/api/v1/cases/{case_id}/actions"
    arbitrator, merchant = (
        token_for(people["arbitrator"]),
        token_for(people["merchant"]),
    )
    assert (
        client.post(url, json={"action": "take"}, headers=arbitrator).status_code == 200
    )
    bad = client.post(
        url,
        json={"action": "request_info", "party": "merchant", "question": "Record?"},
        headers=arbitrator,
    )
    assert bad.status_code in (400, 422) and "deadline" in str(bad.get_json())
    asked = client.post(
        url,
        json={
            "action": "request_info",
            "party": "merchant",
            "question": "Send the delivery record.",
            "deadline": "2026-03-06",
        },
        headers=arbitrator,
    )
    assert asked.status_code == 200, asked.get_json()
    assert (
        "answer_info"
        in client.get(f"/api/v1/cases/{case_id}", headers=merchant).get_json()[
            "allowed_actions"
        ]
    )
    answered = client.post(
        url,
        json={"action": "answer_info", "text": "Signed by the consumer."},
        headers=merchant,
    )
    assert answered.status_code == 200, answered.get_json()
    award = {
        "action": "issue_award",
        **{k: v for k, v in AWARD.items() if k != "orders"},
        "orders": [{**AWARD["orders"][0], "deadline": "2026-03-20"}],
    }
    no_orders = client.post(
        url, json={**award, "orders": [{"type": "refund"}]}, headers=arbitrator
    )
    assert no_orders.status_code in (400, 422)
    issued = client.post(url, json=award, headers=arbitrator)
    assert issued.status_code == 200, issued.get_json()
    assert issued.get_json()["status"] == "awarded"
    consumer = token_for(people["consumer"])
    asked = client.post(
        url,
        json={"action": "request_correction", "reason": "Amount."},
        headers=consumer,
    )
    assert asked.status_code == 200
    assert (
        client.post(
            url, json={"action": "request_correction", "reason": "x"}, headers=merchant
        ).status_code
        == 409
    )
    refused = client.post(
        url,
        json={"action": "refuse_correction", "reason": "Right."},
        headers=arbitrator,
    )
    assert refused.status_code == 200
    # A regulator acts only on objections; the merchant cannot issue awards.
    assert client.post(url, json=award, headers=merchant).status_code in (403, 409)


def test_an_arbitrator_removed_on_objection_is_never_given_the_case_again(
    app, make_case, people, make_user
):
    from mediation.cases.queue import reassign_candidates

    third = make_user("arbitrator", name="Cy Arbiter")
    case_id = in_arbitration(app, make_case, people)
    apply(
        app,
        case_id,
        "object_arbitrator",
        people["consumer"],
        "consumer",
        reason="Bias.",
    )
    apply(
        app,
        case_id,
        "decide_objection",
        people["regulator"],
        "regulator",
        decision="upheld",
        reason="Bias shown.",
        user_id=people["arbitrator2"].id,
    )
    with app.app_context():
        case = db.session.get(Case, case_id)
        names = [u.name for u, _ in reassign_candidates(case)]
        assert names == ["Cy Arbiter"]
    with pytest.raises(ValidationError):
        apply(
            app,
            case_id,
            "reassign",
            people["regulator"],
            "regulator",
            user_id=people["arbitrator"].id,
        )
    apply(app, case_id, "reassign", people["regulator"], "regulator", user_id=third.id)
    assert load(app, case_id)["arbitrator_id"] == third.id
