"""Mediation proposals and their outcomes: settlement with the agreement and its
hash on the timeline, declining, and ending a failed mediation (arbitration or a
referral note), in the services, the case page and the API."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.cases import lifecycle as lc
from mediation.cases import services
from mediation.cases.chain import verify_events
from mediation.cases.models import Case, CaseEvent, Offer
from mediation.errors import InvalidTransition, ValidationError
from mediation.extensions import db
from mediation.sla.sweep import run_sweep
from tests.conftest import PASSWORD

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
PROPOSAL = {
    "type": "refund",
    "amount": 12000,
    "deadline": date(2026, 3, 12),
    "text": "Refund of 120 yuan; the consumer keeps the kettle.\n退款120元。",
}


@pytest.fixture(autouse=True)
def _monday():
    clock.freeze(MONDAY)
    yield
    clock.unfreeze()


@pytest.fixture()
def people(make_user, make_merchant):
    consenting = make_merchant(name="Kettle Shop", arbitration_consent=True)
    refusing = make_merchant(name="Tea House", arbitration_consent=False)
    return {
        "shop": consenting,
        "refusing_shop": refusing,
        "consumer": make_user("consumer", name="Zhang San"),
        "merchant": make_user("merchant", merchant_id=consenting.id, name="Staff K"),
        "tea_staff": make_user("merchant", merchant_id=refusing.id, name="Staff T"),
        "mediator": make_user("mediator", name="Mia Mediator"),
    }


def apply(app, case_id: int, action: str, user, relation: str, **payload) -> None:
    with app.app_context():
        case = db.session.get(Case, case_id)
        actor = db.session.get(User, user.id) if user is not None else None
        services.apply_action(
            case, action, payload, actor=actor, relation=relation, now=clock.now_utc()
        )
        db.session.commit()


def mediated_case(app, make_case, people, *, shop="shop", consent=False) -> int:
    """A case in mediation, taken by the mediator."""
    staff = people["merchant"] if shop == "shop" else people["tea_staff"]
    case_id = make_case(people["consumer"], people[shop], arbitration_consent=consent)
    apply(app, case_id, "reject", staff, "merchant", reason="Not our fault.")
    apply(app, case_id, "take", people["mediator"], "mediator")
    return case_id


def proposed_case(app, make_case, people, **kw) -> int:
    case_id = mediated_case(app, make_case, people, **kw)
    apply(app, case_id, "propose", people["mediator"], "mediator", **PROPOSAL)
    return case_id


def last_event(app, case_id: int) -> CaseEvent:
    with app.app_context():
        event = db.session.scalar(
            db.select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.seq.desc())
            .limit(1)
        )
        db.session.expunge(event)
        return event


def load(app, case_id: int) -> Case:
    with app.app_context():
        case = db.session.get(Case, case_id)
        case.offers  # noqa: B018  (loaded before leaving the session)
        db.session.expunge_all()
        return case


def canonical_sha256(value) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def login(client, user) -> None:
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302


def page(response) -> str:
    return response.get_data(as_text=True)


def act(client, case_id: int, action: str, **fields):
    data = {f"{action}-{name}": value for name, value in fields.items()}
    return client.post(f"/cases/{case_id}/actions/{action}?lang=en", data=data)


# Services ------------------------------------------------------------------------


def test_both_acceptances_settle_with_the_agreement_and_its_hash(
    app, make_case, people
):
    case_id = proposed_case(app, make_case, people)
    apply(app, case_id, "accept_proposal", people["consumer"], "consumer")
    first = last_event(app, case_id)
    assert first.to_status == lc.IN_MEDIATION
    assert first.data == {"offer_id": first.data["offer_id"], "party": "consumer"}

    clock.advance(timedelta(hours=2))
    apply(app, case_id, "accept_proposal", people["merchant"], "merchant")
    case = load(app, case_id)
    assert case.status == lc.SETTLED
    (proposal,) = case.offers
    assert proposal.status == "accepted" and proposal.decided_at == clock.now_utc()

    event = last_event(app, case_id)
    assert (event.action, event.from_status, event.to_status) == (
        "accept_proposal",
        lc.IN_MEDIATION,
        lc.SETTLED,
    )
    agreement = event.data["agreement"]
    assert agreement == {
        "reference": case.reference,
        "proposal_id": proposal.id,
        "type": "refund",
        "amount": 12000,
        "deadline": "2026-03-12",
        "text": PROPOSAL["text"],
    }
    # Anyone can recompute the hash from the timeline.
    assert event.data["agreement_sha256"] == canonical_sha256(agreement)
    assert re.fullmatch(r"[0-9a-f]{64}", event.data["agreement_sha256"])
    with app.app_context():
        events = db.session.scalars(
            db.select(CaseEvent).where(CaseEvent.case_id == case_id)
        ).all()
        assert verify_events(sorted(events, key=lambda e: e.seq)) == []


def test_the_merchant_may_accept_first(app, make_case, people):
    case_id = proposed_case(app, make_case, people)
    apply(app, case_id, "accept_proposal", people["merchant"], "merchant")
    assert load(app, case_id).status == lc.IN_MEDIATION
    apply(app, case_id, "accept_proposal", people["consumer"], "consumer")
    event = last_event(app, case_id)
    assert event.to_status == lc.SETTLED and event.data["party"] == "consumer"
    assert event.data["agreement_sha256"] == canonical_sha256(event.data["agreement"])


def test_declining_lapses_the_proposal_for_both_parties(app, make_case, people):
    case_id = proposed_case(app, make_case, people)
    apply(app, case_id, "accept_proposal", people["consumer"], "consumer")
    with app.app_context(), pytest.raises(ValidationError):
        case = db.session.get(Case, case_id)
        services.apply_action(
            case,
            "decline_proposal",
            {"reason": "  "},
            actor=db.session.get(User, people["merchant"].id),
            relation="merchant",
            now=clock.now_utc(),
        )
    apply(
        app,
        case_id,
        "decline_proposal",
        people["merchant"],
        "merchant",
        reason="120 yuan is too much.",
    )
    case = load(app, case_id)
    assert case.status == lc.IN_MEDIATION
    (proposal,) = case.offers
    assert proposal.status == "rejected"
    assert proposal.decision_reason == "120 yuan is too much."
    event = last_event(app, case_id)
    assert event.data == {
        "offer_id": proposal.id,
        "party": "merchant",
        "reason": "120 yuan is too much.",
    }
    # Nothing is open to accept or decline any more...
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert services.allowed_actions(case, "consumer") == [
            "consent_arbitration",
            "withdraw",
        ]
        with pytest.raises(InvalidTransition):
            services.apply_action(
                case,
                "accept_proposal",
                {},
                actor=db.session.get(User, people["consumer"].id),
                relation="consumer",
                now=clock.now_utc(),
            )
    # ...until the mediator proposes again.
    apply(
        app,
        case_id,
        "propose",
        people["mediator"],
        "mediator",
        **{**PROPOSAL, "amount": 8000},
    )
    case = load(app, case_id)
    assert [o.status for o in case.offers] == ["rejected", "open"]


def test_a_new_proposal_lapses_the_previous_one(app, make_case, people):
    case_id = proposed_case(app, make_case, people)
    apply(app, case_id, "accept_proposal", people["consumer"], "consumer")
    apply(
        app,
        case_id,
        "propose",
        people["mediator"],
        "mediator",
        **{**PROPOSAL, "amount": 9000},
    )
    case = load(app, case_id)
    assert [o.status for o in case.offers] == ["lapsed", "open"]
    # The consumer's acceptance of the old proposal does not count for the new.
    apply(app, case_id, "accept_proposal", people["merchant"], "merchant")
    assert load(app, case_id).status == lc.IN_MEDIATION


def test_a_failed_mediation_with_both_consents_goes_to_arbitration(
    app, make_case, people
):
    case_id = proposed_case(app, make_case, people, consent=True)
    apply(
        app,
        case_id,
        "end_mediation",
        people["mediator"],
        "mediator",
        result="failed",
        reason="The parties are 100 yuan apart.",
    )
    case = load(app, case_id)
    assert case.status == lc.IN_ARBITRATION
    assert [o.status for o in case.offers] == ["lapsed"]
    assert last_event(app, case_id).data == {
        "result": "failed",
        "reason": "The parties are 100 yuan apart.",
        "next": lc.IN_ARBITRATION,
    }


@pytest.mark.parametrize(
    ("shop", "consent", "missing"),
    [
        ("shop", False, ["consumer"]),
        ("refusing_shop", True, ["merchant"]),
        ("refusing_shop", False, ["consumer", "merchant"]),
    ],
)
def test_a_failed_mediation_without_both_consents_closes_with_a_referral(
    app, make_case, people, shop, consent, missing
):
    case_id = mediated_case(app, make_case, people, shop=shop, consent=consent)
    apply(
        app,
        case_id,
        "end_mediation",
        people["mediator"],
        "mediator",
        reason="No agreement.",
    )
    case = load(app, case_id)
    assert case.status == lc.CLOSED_UNRESOLVED
    assert case.outcome == lc.CLOSED_UNRESOLVED and case.closed_at is not None
    assert last_event(app, case_id).data == {
        "result": "failed",
        "reason": "No agreement.",
        "next": lc.CLOSED_UNRESOLVED,
        "referral": {"no_consent": missing, "options": ["regulator_12315", "court"]},
    }


def test_ending_a_mediation_needs_a_reason_and_the_result_failed(
    app, make_case, people
):
    case_id = mediated_case(app, make_case, people)
    for payload in ({"reason": ""}, {"result": "settled", "reason": "Done."}):
        with app.app_context(), pytest.raises(ValidationError):
            services.apply_action(
                db.session.get(Case, case_id),
                "end_mediation",
                payload,
                actor=db.session.get(User, people["mediator"].id),
                relation="mediator",
                now=clock.now_utc(),
            )
    assert load(app, case_id).status == lc.IN_MEDIATION


def test_both_parties_accepting_at_the_same_moment_settle_the_case(
    app, make_case, people, token_for
):
    case_id = proposed_case(app, make_case, people)
    parties = [people["consumer"], people["merchant"]]
    headers = [token_for(p) for p in parties]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def accept(index: int) -> None:
        client = app.test_client()
        barrier.wait(timeout=10)
        response = client.post(
            f"/api/v1/cases/{case_id}/actions",
            json={"action": "accept_proposal"},
            headers=headers[index],
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [200, 200]
    # The second acceptance saw the first: the case is settled, not stuck.
    assert load(app, case_id).status == lc.SETTLED
    assert "agreement_sha256" in last_event(app, case_id).data


# The case page ---------------------------------------------------------------------


def test_proposal_accepted_by_both_on_the_case_page_shows_the_agreement(
    app, client, make_case, people
):
    case_id = mediated_case(app, make_case, people)
    login(client, people["mediator"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-action="propose"' in html
    response = act(
        client,
        case_id,
        "propose",
        type="refund",
        amount="120.00",
        deadline="2026-03-12",
        text="Refund of 120 yuan <b>now</b>.",
    )
    assert response.status_code == 303
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    card = html.split('data-testid="proposal-card"')[1].split("</section>")[0]
    assert "Refund ¥120.00" in card
    assert "&lt;b&gt;now&lt;/b&gt;" in card  # escaped
    assert 'data-testid="proposal-consumer" data-accepted="false"' in card

    login(client, people["consumer"])
    assert act(client, case_id, "accept_proposal").status_code == 303
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    card = html.split('data-testid="proposal-card"')[1].split("</section>")[0]
    assert 'data-testid="proposal-consumer" data-accepted="true"' in card
    assert 'data-testid="proposal-merchant" data-accepted="false"' in card
    assert 'data-action="accept_proposal"' not in html  # accepted already
    assert 'data-testid="settlement"' not in html

    login(client, people["merchant"])
    assert act(client, case_id, "accept_proposal").status_code == 303
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-status="settled" data-testid="case-status"' in html
    assert 'data-testid="proposal-card"' not in html
    event = last_event(app, case_id)
    digest = event.data["agreement_sha256"]
    settlement = html.split('data-testid="settlement"')[1].split("</section>")[0]
    assert "Refund of 120 yuan &lt;b&gt;now&lt;/b&gt;." in settlement
    assert f'data-testid="agreement-hash">{digest}<' in settlement
    item = html.split('data-event-action="accept_proposal"')[-1].split("</li>")[0]
    assert 'data-testid="event-agreement"' in item
    assert f'data-testid="agreement-hash">{digest}<' in item
    assert "Refund ¥120.00" in item and "2026-03-12" in item


def test_declining_on_the_case_page_needs_a_reason(app, client, make_case, people):
    case_id = proposed_case(app, make_case, people)
    login(client, people["consumer"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-action="decline_proposal"' in html
    response = act(client, case_id, "decline_proposal", reason="")
    assert response.status_code == 422
    assert "Give a reason." in page(response)
    response = act(client, case_id, "decline_proposal", reason="I want all back.")
    assert response.status_code == 303
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    row = html.split('data-testid="offer"')[1].split("</tr>")[0]
    assert 'data-offer-status="rejected"' in row
    assert "Declined" in row and "I want all back." in row
    assert 'data-testid="proposal-card"' not in html
    assert 'data-action="accept_proposal"' not in html


def test_the_assigned_mediator_ends_the_mediation_from_the_case_page(
    app, client, make_case, people
):
    case_id = proposed_case(app, make_case, people)  # consumer did not consent
    login(client, people["mediator"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    block = html.split('data-testid="action-end_mediation"')[1].split("</form>")[0]
    assert 'data-next="closed_unresolved"' in block
    assert "end_mediation-reason" in block
    response = act(client, case_id, "end_mediation", reason="")
    assert response.status_code == 422
    assert load(app, case_id).status == lc.IN_MEDIATION
    response = act(client, case_id, "end_mediation", reason="No common ground.")
    assert response.status_code == 303
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-status="closed_unresolved" data-testid="case-status"' in html
    item = html.split('data-event-action="end_mediation"')[-1].split("</li>")[0]
    assert "No common ground." in item
    assert 'data-testid="referral-note"' in item
    assert "12315" in item and "Consumer" in item
    # The same page in Chinese.
    html = page(client.get(f"/cases/{case_id}?lang=zh_CN"))
    assert 'data-testid="referral-note"' in html


def test_ending_with_both_consents_says_the_case_goes_to_arbitration(
    app, client, make_case, people
):
    case_id = mediated_case(app, make_case, people, consent=True)
    login(client, people["mediator"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-next="in_arbitration"' in html
    assert act(client, case_id, "end_mediation", reason="Stuck.").status_code == 303
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-status="in_arbitration" data-testid="case-status"' in html
    item = html.split('data-event-action="end_mediation"')[-1].split("</li>")[0]
    assert 'data-testid="event-next"' in item
    assert 'data-testid="referral-note"' not in item


def test_a_mediation_that_runs_out_of_time_shows_the_referral_too(
    app, client, make_case, people
):
    case_id = mediated_case(app, make_case, people)
    clock.advance(timedelta(days=30))
    run_sweep(app, now=clock.now_utc())
    assert load(app, case_id).status == lc.CLOSED_UNRESOLVED
    login(client, people["consumer"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    item = html.split('data-event-action="expire"')[-1].split("</li>")[0]
    assert 'data-testid="referral-note"' in item


def test_only_the_assigned_mediator_is_offered_propose_and_end(
    app, client, make_case, people, make_user
):
    case_id = mediated_case(app, make_case, people)
    other = make_user("mediator", name="Max Mediator")
    login(client, other)
    assert client.get(f"/cases/{case_id}").status_code == 404
    assert act(client, case_id, "propose", **{"type": "refund"}).status_code == 404
    assert act(client, case_id, "end_mediation", reason="x").status_code == 404
    login(client, people["consumer"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-action="end_mediation"' not in html
    assert 'data-action="propose"' not in html


# The API ---------------------------------------------------------------------------


def test_the_api_walks_propose_accept_accept_to_settled(
    app, client, make_case, people, token_for
):
    case_id = mediated_case(app, make_case, people)
    url = f"/api/v1/cases/{case_id}/actions"
    mediator = token_for(people["mediator"])
    response = client.post(
        url,
        json={
            "action": "propose",
            "type": "repair",
            "amount": 0,
            "deadline": "2026-03-20",
            "text": "Free repair within two weeks.",
        },
        headers=mediator,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["offers"][-1]["kind"] == "proposal"
    assert body["offers"][-1]["status"] == "open"

    consumer = token_for(people["consumer"])
    body = client.post(url, json={"action": "accept_proposal"}, headers=consumer)
    body = body.get_json()
    assert body["status"] == lc.IN_MEDIATION
    assert "accept_proposal" not in body["allowed_actions"]
    merchant = token_for(people["merchant"])
    response = client.post(url, json={"action": "accept_proposal"}, headers=merchant)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == lc.SETTLED
    settled = body["timeline"][-1]
    assert settled["action"] == "accept_proposal"
    assert settled["data"]["agreement"]["text"] == "Free repair within two weeks."
    assert settled["data"]["agreement"]["deadline"] == "2026-03-20"
    assert settled["data"]["agreement_sha256"] == canonical_sha256(
        settled["data"]["agreement"]
    )
    events = client.get(f"/api/v1/cases/{case_id}/events", headers=consumer)
    assert events.get_json()["chain_intact"] is True

    # Accepting again: nothing open any more.
    again = client.post(url, json={"action": "accept_proposal"}, headers=consumer)
    assert again.status_code == 409


def test_the_api_declines_and_ends_a_mediation(
    app, client, make_case, people, token_for
):
    case_id = proposed_case(app, make_case, people)
    url = f"/api/v1/cases/{case_id}/actions"
    merchant = token_for(people["merchant"])
    response = client.post(url, json={"action": "decline_proposal"}, headers=merchant)
    assert response.status_code == 422
    assert "reason" in response.get_json()["error"]["fields"]
    response = client.post(
        url,
        json={"action": "decline_proposal", "reason": "Too much."},
        headers=merchant,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["offers"][-1]["status"] == "rejected"
    assert body["timeline"][-1]["data"]["reason"] == "Too much."

    mediator = token_for(people["mediator"])
    for bad in (
        {"action": "end_mediation"},
        {"action": "end_mediation", "result": "settled", "reason": "x"},
        {"action": "end_mediation", "reason": 5},
    ):
        response = client.post(url, json=bad, headers=mediator)
        assert response.status_code == 422, bad
    response = client.post(
        url,
        json={"action": "end_mediation", "result": "failed", "reason": "Stuck."},
        headers=mediator,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == lc.CLOSED_UNRESOLVED
    data = body["timeline"][-1]["data"]
    assert data["next"] == lc.CLOSED_UNRESOLVED
    assert data["referral"]["no_consent"] == ["consumer"]
    assert body["allowed_actions"] == []


def test_parties_cannot_end_or_propose_and_outsiders_get_404(
    app, client, make_case, people, token_for, make_user
):
    case_id = mediated_case(app, make_case, people)
    url = f"/api/v1/cases/{case_id}/actions"
    for who in ("consumer", "merchant"):
        for body in (
            {"action": "end_mediation", "reason": "x"},
            {"action": "propose", **{**PROPOSAL, "deadline": "2026-03-12"}},
        ):
            response = client.post(url, json=body, headers=token_for(people[who]))
            assert response.status_code == 409, (who, body["action"])
    outsider = make_user("consumer")
    response = client.post(
        url,
        json={"action": "accept_proposal"},
        headers=token_for(outsider),
    )
    assert response.status_code == 404
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Offer.id))) == 0
