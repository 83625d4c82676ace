"""The lifecycle table: parametrized rows and property-based walks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediation.cases import lifecycle as lc
from mediation.cases.lifecycle import Facts

PLATFORM = Facts(has_platform=True)
CONSENTED = Facts(consumer_consented=True, merchant_consented=True, has_mediator=True)

ROWS = [
    # status, role, action, facts, expected next status
    ("submitted", "system", "route", Facts(), "awaiting_merchant"),
    (
        "submitted",
        "system",
        "route",
        Facts(has_merchant=False, has_platform=True),
        "awaiting_platform",
    ),
    (
        "submitted",
        "regulator",
        "link_merchant",
        Facts(has_merchant=False),
        "awaiting_merchant",
    ),
    ("submitted", "regulator", "dismiss", Facts(), "rejected"),
    ("awaiting_merchant", "merchant", "offer", Facts(), "offer_pending"),
    ("awaiting_merchant", "merchant", "reject", Facts(), "in_mediation"),
    ("awaiting_merchant", "system", "expire", PLATFORM, "awaiting_platform"),
    ("awaiting_merchant", "system", "expire", Facts(), "in_mediation"),
    ("awaiting_merchant", "consumer", "amend", Facts(), "awaiting_merchant"),
    ("awaiting_platform", "platform", "offer", PLATFORM, "offer_pending"),
    ("awaiting_platform", "platform", "reject", PLATFORM, "in_mediation"),
    ("awaiting_platform", "merchant", "offer", PLATFORM, "offer_pending"),
    ("awaiting_platform", "system", "expire", PLATFORM, "in_mediation"),
    ("offer_pending", "consumer", "accept_offer", Facts(), "settled"),
    ("offer_pending", "consumer", "reject_offer", Facts(), "in_mediation"),
    ("offer_pending", "system", "expire", Facts(), "in_mediation"),
    ("in_mediation", "mediator", "take", Facts(), "in_mediation"),
    ("in_mediation", "system", "auto_assign", Facts(), "in_mediation"),
    ("in_mediation", "mediator", "end_mediation", CONSENTED, "in_arbitration"),
    (
        "in_mediation",
        "mediator",
        "end_mediation",
        Facts(has_mediator=True),
        "closed_unresolved",
    ),
    ("in_mediation", "system", "expire", Facts(has_mediator=True), "closed_unresolved"),
    (
        "in_mediation",
        "consumer",
        "accept_proposal",
        Facts(
            has_mediator=True,
            has_open_proposal=True,
            proposal_accepted_by=frozenset({"merchant"}),
        ),
        "settled",
    ),
    (
        "in_mediation",
        "merchant",
        "accept_proposal",
        Facts(has_mediator=True, has_open_proposal=True),
        "in_mediation",
    ),
    ("in_arbitration", "arbitrator", "take", Facts(), "in_arbitration"),
    (
        "in_arbitration",
        "arbitrator",
        "issue_award",
        Facts(has_arbitrator=True),
        "awarded",
    ),
    ("settled", "merchant", "mark_fulfilled", Facts(), "settled"),
    ("settled", "consumer", "confirm_fulfilment", Facts(), "resolved"),
    ("settled", "consumer", "report_unfulfilled", Facts(), "in_mediation"),
    (
        "settled",
        "consumer",
        "report_unfulfilled",
        Facts(was_mediated=True),
        "closed_noncompliant",
    ),
    ("settled", "system", "expire", Facts(fulfilment_marked=True), "resolved"),
    ("settled", "system", "expire", Facts(), "in_mediation"),
    ("awarded", "consumer", "report_unfulfilled", Facts(), "closed_noncompliant"),
    ("awarded", "system", "expire", Facts(), "closed_noncompliant"),
    ("awarded", "system", "expire", Facts(fulfilment_marked=True), "resolved"),
    ("awarded", "consumer", "confirm_fulfilment", Facts(), "resolved"),
    ("awaiting_merchant", "consumer", "withdraw", Facts(), "withdrawn"),
    ("in_arbitration", "consumer", "withdraw", Facts(), "withdrawn"),
    ("resolved", "consumer", "rate", Facts(), "resolved"),
]


@pytest.mark.parametrize("status,role,action,facts,expected", ROWS)
def test_table_row_gives_next_status(status, role, action, facts, expected):
    assert lc.next_status(status, role, action, facts) == expected


REFUSED = [
    ("awaiting_merchant", "consumer", "offer", Facts()),
    ("awaiting_merchant", "merchant", "accept_offer", Facts()),
    ("awaiting_merchant", "platform", "offer", PLATFORM),  # not escalated yet
    ("offer_pending", "consumer", "amend", Facts(answered=True)),
    ("awaiting_merchant", "consumer", "amend", Facts(answered=True)),
    ("in_mediation", "mediator", "take", Facts(has_mediator=True)),
    ("in_mediation", "mediator", "propose", Facts()),
    ("in_mediation", "consumer", "accept_proposal", Facts(has_mediator=True)),
    ("submitted", "system", "route", Facts(has_merchant=False)),
    ("resolved", "consumer", "rate", Facts(rated=True)),
    ("resolved", "consumer", "withdraw", Facts()),
    ("settled", "merchant", "mark_fulfilled", Facts(fulfilment_marked=True)),
    ("awaiting_platform", "platform", "link_merchant", Facts(has_merchant=False)),
    ("submitted", "consumer", "dismiss", Facts()),
]


@pytest.mark.parametrize("status,role,action,facts", REFUSED)
def test_table_refuses_missing_or_guarded_rows(status, role, action, facts):
    assert not lc.is_allowed(status, role, action, facts)
    with pytest.raises(lc.TransitionNotAllowed):
        lc.next_status(status, role, action, facts)


def test_every_row_uses_known_names():
    for (status, role, action), _rule in lc.TABLE.items():
        assert status in lc.STATUSES
        assert role in lc.ROLES
        assert action in lc.ACTIONS


def test_every_open_status_can_be_left():
    """No open status is a dead end for the system or the consumer."""
    for status in lc.OPEN_STATUSES:
        assert lc.is_allowed(status, "consumer", "withdraw", Facts())


facts_strategy = st.builds(
    Facts,
    has_merchant=st.booleans(),
    has_platform=st.booleans(),
    consumer_consented=st.booleans(),
    merchant_consented=st.booleans(),
    answered=st.booleans(),
    was_mediated=st.booleans(),
    fulfilment_marked=st.booleans(),
    has_mediator=st.booleans(),
    has_arbitrator=st.booleans(),
    rated=st.booleans(),
    has_open_proposal=st.booleans(),
    proposal_accepted_by=st.frozensets(st.sampled_from(lc.PARTIES)),
    info_pending_for=st.frozensets(st.sampled_from(lc.PARTIES)),
    objected_by=st.frozensets(st.sampled_from(lc.PARTIES)),
)
steps = st.lists(
    st.tuples(st.sampled_from(lc.ROLES), st.sampled_from(lc.ACTIONS), facts_strategy),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(start=st.sampled_from(lc.STATUSES), walk=steps)
def test_random_walks_stay_inside_the_table(start, walk):
    status = start
    for role, action, facts in walk:
        allowed = lc.is_allowed(status, role, action, facts)
        if lc.is_closed(status) and action != "rate":
            assert not allowed
        if not allowed:
            with pytest.raises(lc.TransitionNotAllowed):
                lc.next_status(status, role, action, facts)
            continue
        assert action in lc.allowed_actions(status, role, facts)
        new = lc.next_status(status, role, action, facts)
        assert new in lc.STATUSES
        if lc.is_closed(status):
            assert new == status  # only rating, which changes nothing
        status = new


@given(
    status=st.sampled_from(sorted(lc.CLOSED_STATUSES)),
    role=st.sampled_from(lc.ROLES),
    facts=facts_strategy,
)
def test_closed_cases_accept_nothing_but_rate(status, role, facts):
    assert set(lc.allowed_actions(status, role, facts)) <= {"rate"}
