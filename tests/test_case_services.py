"""The case service: filing, routing, direct settlement and the event chain."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.cases import lifecycle as lc
from mediation.cases.chain import verify_events
from mediation.cases.models import Case, CaseEvent
from mediation.cases.services import allowed_actions, apply_action
from mediation.errors import InvalidTransition, ValidationError
from mediation.extensions import db


@pytest.fixture()
def parties(make_user, make_merchant):
    platform = make_merchant(name="Mall", kind="platform")
    shop = make_merchant(name="Kettle Shop", platform_id=platform.id)
    return {
        "consumer": make_user("consumer"),
        "merchant": make_user("merchant", merchant_id=shop.id),
        "platform_staff": make_user("merchant", merchant_id=platform.id),
        "shop": shop,
        "platform": platform,
    }


def _act(case_id, action, user_id, relation, **payload):
    case = db.session.get(Case, case_id)
    actor = db.session.get(User, user_id) if user_id else None
    apply_action(
        case, action, payload, actor=actor, relation=relation, now=clock.now_utc()
    )
    db.session.commit()
    return case


def test_filing_routes_a_registered_shop_to_the_merchant(app, parties, make_case):
    clock.freeze(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai
    case_id = make_case(parties["consumer"], parties["shop"])
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert case.status == lc.AWAITING_MERCHANT
        assert case.reference == f"MC-2026-{case_id:06d}"
        assert case.platform_id == parties["platform"].id
        # 3 working days: Thu 5 March 23:59:59 Shanghai.
        assert case.due_at == datetime(2026, 3, 5, 15, 59, 59, tzinfo=UTC)
        assert [e.action for e in case.events] == ["file", "route"]
        assert [v.number for v in case.versions] == [1]


def test_direct_settlement_walk_keeps_an_intact_chain(app, parties, make_case):
    case_id = make_case(parties["consumer"], parties["shop"])
    c, m = parties["consumer"].id, parties["merchant"].id
    with app.app_context():
        _act(
            case_id,
            "amend",
            c,
            "consumer",
            description="It leaks and the handle broke.",
        )
        _act(
            case_id,
            "offer",
            m,
            "merchant",
            type="refund",
            amount=19900,
            deadline=date(2099, 1, 1),
            text="Full refund",
        )
        case = _act(case_id, "accept_offer", c, "consumer")
        assert case.status == lc.SETTLED
        assert allowed_actions(case, "merchant") == ["mark_fulfilled"]
        _act(case_id, "mark_fulfilled", m, "merchant")
        case = _act(case_id, "confirm_fulfilment", c, "consumer")
        assert case.status == lc.RESOLVED
        assert case.outcome == "settled_directly"
        assert case.version == 2
        events = db.session.scalars(
            db.select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.seq)
        ).all()
        assert verify_events(events) == []
        events[2].data = {"description": "tampered"}
        assert verify_events(events)[0].seq == 3


def test_amending_after_the_merchant_answered_is_refused(app, parties, make_case):
    case_id = make_case(parties["consumer"], parties["shop"])
    with app.app_context():
        _act(
            case_id,
            "reject",
            parties["merchant"].id,
            "merchant",
            reason="Not our product",
        )
        with pytest.raises(InvalidTransition):
            _act(
                case_id,
                "amend",
                parties["consumer"].id,
                "consumer",
                description="x" * 20,
            )


def test_offer_needs_type_deadline_and_text(app, parties, make_case):
    case_id = make_case(parties["consumer"], parties["shop"])
    with app.app_context():
        with pytest.raises(ValidationError) as err:
            _act(
                case_id,
                "offer",
                parties["merchant"].id,
                "merchant",
                type="cash",
                amount=-1,
            )
        assert set(err.value.fields) == {"type", "amount", "deadline", "text"}


def test_unregistered_shop_on_a_platform_goes_to_the_platform(app, parties, make_case):
    case_id = make_case(
        parties["consumer"],
        merchant=None,
        merchant_name="Unknown kettles",
        platform_id=parties["platform"].id,
    )
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert case.status == lc.AWAITING_PLATFORM
        assert allowed_actions(case, "platform") == [
            "offer",
            "reject",
            "request_evidence",
        ]


def test_unregistered_shop_without_platform_waits_in_intake(
    app, parties, make_case, make_user
):
    regulator = make_user("regulator")
    case_id = make_case(
        parties["consumer"], merchant=None, merchant_name="Street stall"
    )
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert case.status == lc.SUBMITTED
        case = _act(
            case_id,
            "link_merchant",
            regulator.id,
            "regulator",
            merchant_id=parties["shop"].id,
        )
        assert case.status == lc.AWAITING_MERCHANT
        assert case.merchant_id == parties["shop"].id
