"""The clock pause: the merchant asks for evidence, its deadline waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediation import clock
from mediation.cases.models import Case
from mediation.extensions import db
from mediation.sla.sweep import run_sweep


def test_request_for_evidence_stops_the_merchant_clock_until_the_answer(
    app, client, make_user, make_merchant, make_case, token_for
):
    start = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 Shanghai
    clock.freeze(start)
    shop = make_merchant()
    merchant = make_user("merchant", merchant_id=shop.id)
    consumer = make_user()
    case_id = make_case(consumer, shop)
    with app.app_context():
        due = db.session.get(Case, case_id).due_at
    clock.advance(timedelta(hours=2))
    # Tokens live an hour in the tests: issue them at the moment they are used.
    m, c = token_for(merchant), token_for(consumer)
    response = client.post(
        f"/api/v1/cases/{case_id}/actions",
        json={
            "action": "request_evidence",
            "text": "Please send a photo of the label.",
        },
        headers=m,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["due_at"] is None
    assert "provide_evidence" not in body["allowed_actions"]
    consumer_view = client.get(f"/api/v1/cases/{case_id}", headers=c).get_json()
    assert "provide_evidence" in consumer_view["allowed_actions"]

    # Long after the original deadline nothing moves: the clock is stopped.
    clock.advance(timedelta(days=10))
    report = run_sweep(app, now=clock.now_utc())
    with app.app_context():
        assert db.session.get(Case, case_id).status == "awaiting_merchant"
    assert not report.steps

    response = client.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": "provide_evidence", "text": "Uploaded the label photo."},
        headers=token_for(consumer),
    )
    assert response.status_code == 200, response.get_json()
    with app.app_context():
        case = db.session.get(Case, case_id)
        left = due - (start + timedelta(hours=2))
        assert case.due_at == clock.now_utc() + left
        assert case.paused_at is None
        actions = [e.action for e in case.events]
    assert actions[-2:] == ["request_evidence", "provide_evidence"]


def test_request_for_evidence_needs_a_text_and_only_once(
    app, client, make_user, make_merchant, make_case, token_for
):
    shop = make_merchant()
    merchant = make_user("merchant", merchant_id=shop.id)
    case_id = make_case(make_user(), shop)
    m = token_for(merchant)
    empty = client.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": "request_evidence", "text": ""},
        headers=m,
    )
    assert empty.status_code == 422
    ok = client.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": "request_evidence", "text": "The order screenshot, please."},
        headers=m,
    )
    assert ok.status_code == 200
    again = client.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": "request_evidence", "text": "And the box."},
        headers=m,
    )
    assert again.status_code == 409
