"""The case API: filing, idempotency, lists, details, actions and the timeline."""

from __future__ import annotations

import os
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from mediation import clock
from mediation.cases.chain import event_digest
from mediation.extensions import db
from tests.conftest import PASSWORD

#: A Monday morning in Beijing: deadlines fall on working days.
NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
ON_POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgres")


def filing_body(merchant_id: int | None = None, **overrides: Any) -> dict[str, Any]:
    """Return a valid filing body (overrides replace or add fields)."""
    body: dict[str, Any] = {
        "category": "quality_defect",
        "order_ref": "TB-2026-0001",
        "order_date": "2026-02-20",
        "amount_paid": 19900,
        "claim": {"type": "refund", "amount": 19900},
        "description": "The kettle leaks after two days of use.",
        "arbitration_consent": False,
    }
    if merchant_id is not None:
        body["merchant_id"] = merchant_id
    body.update(overrides)
    return body


def offer_body(**overrides: Any) -> dict[str, Any]:
    """Return a valid ``offer`` action body."""
    body = {
        "action": "offer",
        "type": "refund",
        "amount": 19900,
        "deadline": (NOW.date() + timedelta(days=7)).isoformat(),
        "text": "Full refund to the original payment method.",
    }
    body.update(overrides)
    return body


def assert_error(response, status: int, code: str | None = None) -> dict[str, Any]:
    """Check the API.md error shape and return the error object."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "fields"}
    if "fields" in error:
        assert isinstance(error["fields"], dict)
    if code is not None:
        assert error["code"] == code
    return error


@pytest.fixture(name="frozen")
def frozen_fixture():
    clock.freeze(NOW)
    yield NOW
    clock.unfreeze()


class _Lazy(dict):
    """A mapping that makes each entry on first use (password hashing is slow)."""

    def __init__(self, make) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key):
        value = self[key] = self._make(key)
        return value


class World:
    """Two shops and, made when first used, users of every role with tokens."""

    def __init__(self, make_user, make_merchant, token_for) -> None:
        self.merchant = make_merchant(name="Good Kettles")
        self.other_shop = make_merchant(name="Other Shop")
        accounts = {
            "consumer": ("consumer", {"name": "Li Lei"}),
            "consumer2": ("consumer", {"name": "Han Meimei"}),
            "staff": ("merchant", {"merchant_id": self.merchant.id}),
            "other_staff": ("merchant", {"merchant_id": self.other_shop.id}),
            "mediator": ("mediator", {}),
            "arbitrator": ("arbitrator", {}),
            "regulator": ("regulator", {}),
        }

        def user(name: str):
            role, kw = accounts[name]
            return make_user(role, **kw)

        self.users = _Lazy(user)
        self.h = _Lazy(lambda name: token_for(self.users[name]))


@pytest.fixture(name="world")
def world_fixture(frozen, make_user, make_merchant, token_for) -> World:
    return World(make_user, make_merchant, token_for)


def file(client, headers, body, **kw):
    return client.post("/api/v1/cases", json=body, headers=headers, **kw)


def act(client, headers, case_id, body):
    return client.post(f"/api/v1/cases/{case_id}/actions", json=body, headers=headers)


def get_case(client, headers, case_id):
    response = client.get(f"/api/v1/cases/{case_id}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


# The full walk ----------------------------------------------------------------------


def test_full_walk_from_token_to_resolved_with_intact_chain(client, world):
    consumer = world.users["consumer"]
    response = client.post(
        "/api/v1/auth/tokens", json={"email": consumer.email, "password": PASSWORD}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    me = {"Authorization": f"Bearer {response.get_json()['token']}"}
    shop = world.h["staff"]

    response = file(
        client, me, filing_body(world.merchant.id, arbitration_consent=True)
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    case = response.get_json()
    case_id = case["id"]
    assert response.headers["Location"].endswith(f"/api/v1/cases/{case_id}")
    assert case["warnings"] == []
    assert case["status"] == "awaiting_merchant"
    assert case["reference"].startswith("MC-2026-")
    assert case["merchant"] == {"id": world.merchant.id, "name": "Good Kettles"}
    assert case["consumer"] == {"id": consumer.id, "name": "Li Lei"}
    assert case["claim"] == {"type": "refund", "amount": 19900}
    assert case["order_date"] == "2026-02-20"
    assert case["amount_paid"] == 19900
    assert case["arbitration_consent"] is True
    assert case["filed_at"].endswith(("+00:00", "Z"))
    assert datetime.fromisoformat(case["due_at"]) > NOW
    assert case["closed_at"] is None and case["outcome"] is None
    assert case["platform"] is None and case["mediator"] is None
    assert case["version"] == 1 and case["versions"][0]["number"] == 1
    assert case["versions"][0]["fields"]["order_ref"] == "TB-2026-0001"
    assert case["offers"] == [] and case["evidence"] == []
    assert set(case["allowed_actions"]) == {"amend", "withdraw"}
    assert [e["action"] for e in case["timeline"]] == ["file", "route"]
    assert "email" not in str(case)

    merchant_view = get_case(client, shop, case_id)
    assert set(merchant_view["allowed_actions"]) == {
        "offer",
        "reject",
        "request_evidence",
    }

    response = act(client, shop, case_id, offer_body())
    assert response.status_code == 200, response.get_data(as_text=True)
    case = response.get_json()
    assert case["status"] == "offer_pending"
    assert case["allowed_actions"] == []
    [offer] = case["offers"]
    assert offer["kind"] == "offer" and offer["status"] == "open"
    assert offer["amount"] == 19900 and offer["type"] == "refund"
    assert offer["deadline"] == "2026-03-09"

    case = get_case(client, me, case_id)
    assert set(case["allowed_actions"]) == {"accept_offer", "reject_offer", "withdraw"}

    response = act(client, me, case_id, {"action": "accept_offer"})
    assert response.status_code == 200, response.get_data(as_text=True)
    case = response.get_json()
    assert case["status"] == "settled"
    assert case["offers"][0]["status"] == "accepted"
    assert set(case["allowed_actions"]) == {
        "confirm_fulfilment",
        "report_unfulfilled",
        "withdraw",
    }
    assert get_case(client, shop, case_id)["allowed_actions"] == ["mark_fulfilled"]

    response = act(client, shop, case_id, {"action": "mark_fulfilled", "text": "Paid."})
    assert response.status_code == 200
    assert response.get_json()["allowed_actions"] == []

    response = act(client, me, case_id, {"action": "confirm_fulfilment"})
    assert response.status_code == 200
    case = response.get_json()
    assert case["status"] == "resolved"
    assert case["outcome"] == "settled_directly"
    assert case["closed_at"] is not None and case["due_at"] is None
    assert case["allowed_actions"] == ["rate"]
    assert get_case(client, shop, case_id)["allowed_actions"] == []

    response = act(client, me, case_id, {"action": "rate", "score": 5, "comment": "Ok"})
    assert response.status_code == 200
    case = response.get_json()
    assert case["allowed_actions"] == []

    actions = [e["action"] for e in case["timeline"]]
    assert actions == [
        "file",
        "route",
        "offer",
        "accept_offer",
        "mark_fulfilled",
        "confirm_fulfilment",
        "rate",
    ]
    timeline = case["timeline"]
    assert [e["seq"] for e in timeline] == list(range(1, len(timeline) + 1))
    assert timeline[0]["prev_hash"] is None
    for before, after in zip(timeline, timeline[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
    assert timeline[1]["actor"] == {"id": None, "name": None, "role": "system"}
    assert timeline[2]["actor"]["role"] == "merchant"
    assert timeline[3]["actor"] == {
        "id": consumer.id,
        "name": "Li Lei",
        "role": "consumer",
    }
    assert timeline[3]["from_status"] == "offer_pending"
    assert timeline[3]["to_status"] == "settled"

    response = client.get(f"/api/v1/cases/{case_id}/events", headers=shop)
    assert response.status_code == 200
    events = response.get_json()
    assert events["chain_intact"] is True and events["broken"] == []
    assert events["case_id"] == case_id
    assert [e["hash"] for e in events["events"]] == [e["hash"] for e in timeline]
    for event in events["events"]:
        assert len(event["hash"]) == 64


def test_timeline_hashes_recompute_and_tampering_shows(app, client, world, make_case):
    case_id = make_case(world.users["consumer"], world.merchant)
    events = client.get(f"/api/v1/cases/{case_id}/events", headers=world.h["consumer"])
    first = events.get_json()["events"][0]
    recomputed = event_digest(
        case_id=case_id,
        seq=first["seq"],
        at=datetime.fromisoformat(first["at"]),
        actor_id=first["actor"]["id"],
        actor_role=first["actor"]["role"],
        action=first["action"],
        from_status=first["from_status"],
        to_status=first["to_status"],
        data=first["data"],
        prev_hash=first["prev_hash"],
    )
    assert recomputed == first["hash"]

    with app.app_context():
        db.session.execute(
            text(
                "UPDATE case_events SET to_status = 'resolved'"
                " WHERE case_id = :c AND seq = 1"
            ),
            {"c": case_id},
        )
        db.session.commit()
    response = client.get(
        f"/api/v1/cases/{case_id}/events", headers=world.h["regulator"]
    )
    body = response.get_json()
    assert body["chain_intact"] is False
    assert body["broken"] == [{"seq": 1, "reason": "hash does not match content"}]


# Filing -----------------------------------------------------------------------------


def test_filing_needs_a_consumer(client, world):
    assert_error(file(client, {}, filing_body(world.merchant.id)), 401, "unauthorized")
    for role in ("staff", "mediator", "arbitrator", "regulator"):
        response = file(client, world.h[role], filing_body(world.merchant.id))
        assert_error(response, 403, "forbidden")


def test_filing_against_an_unregistered_shop_goes_to_intake(client, world):
    response = file(
        client, world.h["consumer"], filing_body(merchant_name="Kettle King")
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    case = response.get_json()
    assert case["status"] == "submitted"
    assert case["merchant"] is None and case["merchant_name"] == "Kettle King"
    regulator_view = get_case(client, world.h["regulator"], case["id"])
    assert set(regulator_view["allowed_actions"]) == {"link_merchant", "dismiss"}

    response = act(
        client,
        world.h["regulator"],
        case["id"],
        {"action": "link_merchant", "merchant_id": world.merchant.id},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    case = response.get_json()
    assert case["status"] == "awaiting_merchant"
    assert case["merchant"]["id"] == world.merchant.id


def test_filing_on_a_platform_names_the_platform(client, world, make_merchant):
    platform = make_merchant(name="Big Mall", kind="platform")
    body = filing_body(merchant_name="Tiny Stall", platform_id=platform.id)
    response = file(client, world.h["consumer"], body)
    assert response.status_code == 201, response.get_data(as_text=True)
    case = response.get_json()
    assert case["platform"] == {"id": platform.id, "name": "Big Mall"}
    assert case["status"] == "awaiting_platform"


def test_filing_without_any_merchant_is_refused(client, world):
    response = file(client, world.h["consumer"], filing_body())
    error = assert_error(response, 422, "validation_error")
    assert "merchant_name" in error["fields"]


def test_filing_against_an_unknown_merchant_is_refused(client, world):
    response = file(client, world.h["consumer"], filing_body(987654))
    error = assert_error(response, 422, "validation_error")
    assert "merchant_id" in error["fields"]


def test_possible_duplicate_is_filed_with_a_warning(client, world):
    first = file(client, world.h["consumer"], filing_body(world.merchant.id))
    assert first.status_code == 201 and first.get_json()["warnings"] == []
    again = file(
        client,
        world.h["consumer"],
        filing_body(
            world.merchant.id, order_ref=" tb-2026-0001 ", description="x" * 20
        ),
    )
    assert again.status_code == 201
    body = again.get_json()
    assert body["id"] != first.get_json()["id"]
    [warning] = body["warnings"]
    assert warning["code"] == "possible_duplicate"
    assert warning["case_ids"] == [first.get_json()["id"]]
    assert warning["message"]

    other_order = file(
        client, world.h["consumer"], filing_body(world.merchant.id, order_ref="TB-2")
    )
    assert other_order.get_json()["warnings"] == []
    someone_else = file(client, world.h["consumer2"], filing_body(world.merchant.id))
    assert someone_else.get_json()["warnings"] == []


# Idempotency ------------------------------------------------------------------------


def _count_cases(client, headers) -> int:
    return client.get("/api/v1/cases", headers=headers).get_json()["total"]


def test_same_idempotency_key_and_body_files_once(client, world):
    headers = {**world.h["consumer"], "Idempotency-Key": "7d4e9a52-retry"}
    body = filing_body(world.merchant.id)
    first = file(client, headers, body)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    # The same JSON with its keys in another order is the same request.
    second = file(client, headers, dict(reversed(list(body.items()))))
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json()["id"] == first.get_json()["id"]
    assert second.get_json()["reference"] == first.get_json()["reference"]
    assert second.get_json()["warnings"] == []
    assert _count_cases(client, world.h["consumer"]) == 1


def test_replay_repeats_the_original_warnings(client, world):
    file(client, world.h["consumer"], filing_body(world.merchant.id))
    headers = {**world.h["consumer"], "Idempotency-Key": "dup-1"}
    first = file(client, headers, filing_body(world.merchant.id))
    second = file(client, headers, filing_body(world.merchant.id))
    assert first.get_json()["warnings"] == second.get_json()["warnings"] != []


def test_same_idempotency_key_with_another_body_is_refused(client, world):
    headers = {**world.h["consumer"], "Idempotency-Key": "key-1"}
    assert file(client, headers, filing_body(world.merchant.id)).status_code == 201
    response = file(client, headers, filing_body(world.merchant.id, amount_paid=1))
    error = assert_error(response, 422, "idempotency_key_reused")
    assert "Idempotency-Key" in error["fields"]
    assert _count_cases(client, world.h["consumer"]) == 1


def test_different_users_may_use_the_same_idempotency_key(client, world):
    body = filing_body(world.merchant.id)
    one = file(client, {**world.h["consumer"], "Idempotency-Key": "k"}, body)
    two = file(client, {**world.h["consumer2"], "Idempotency-Key": "k"}, body)
    assert one.status_code == two.status_code == 201
    assert one.get_json()["id"] != two.get_json()["id"]
    assert "Idempotent-Replayed" not in two.headers


def test_a_refused_filing_does_not_use_up_the_key(client, world):
    headers = {**world.h["consumer"], "Idempotency-Key": "k2"}
    assert (
        file(
            client, headers, filing_body(world.merchant.id, amount_paid=-1)
        ).status_code
        == 422
    )
    response = file(client, headers, filing_body(world.merchant.id))
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers


@pytest.mark.parametrize("key", ["", "   ", "x" * 201, "tab\there"])
def test_bad_idempotency_keys_are_refused(client, world, key):
    headers = {**world.h["consumer"], "Idempotency-Key": key}
    error = assert_error(file(client, headers, filing_body(world.merchant.id)), 422)
    assert "Idempotency-Key" in error["fields"]


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="concurrent writers need PostgreSQL")
def test_concurrent_retries_with_one_key_file_once(app, world):
    headers = {**world.h["consumer"], "Idempotency-Key": "race-1"}
    body = filing_body(world.merchant.id)
    barrier = threading.Barrier(6)
    results: list[tuple[int, int | None]] = []

    def retry() -> None:
        with app.test_client() as client:
            barrier.wait()
            response = client.post("/api/v1/cases", json=body, headers=headers)
            results.append(
                (response.status_code, (response.get_json() or {}).get("id"))
            )

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {status for status, _ in results} == {201}
    assert len({case_id for _, case_id in results}) == 1
    with app.test_client() as client:
        assert _count_cases(client, world.h["consumer"]) == 1


# Lists ------------------------------------------------------------------------------


def test_lists_show_only_visible_cases_newest_first(client, world, make_case):
    mine = [
        make_case(world.users["consumer"], world.merchant, order_ref=f"A-{i}")
        for i in range(3)
    ]
    theirs = make_case(world.users["consumer2"], world.other_shop)
    body = client.get("/api/v1/cases", headers=world.h["consumer"]).get_json()
    assert [c["id"] for c in body["items"]] == list(reversed(mine))
    assert (body["page"], body["total"], body["pages"]) == (1, 3, 1)
    assert body["per_page"] >= 3
    item = body["items"][0]
    assert {"id", "reference", "status", "due_at", "claim", "merchant"} <= set(item)
    assert "timeline" not in item

    staff = client.get("/api/v1/cases", headers=world.h["staff"]).get_json()
    assert {c["id"] for c in staff["items"]} == set(mine)
    other = client.get("/api/v1/cases", headers=world.h["other_staff"]).get_json()
    assert [c["id"] for c in other["items"]] == [theirs]
    everything = client.get("/api/v1/cases", headers=world.h["regulator"]).get_json()
    assert everything["total"] == 4
    queue = client.get("/api/v1/cases", headers=world.h["mediator"]).get_json()
    assert queue["items"] == []
    assert_error(client.get("/api/v1/cases"), 401)


def test_merchant_lists_put_the_nearest_deadline_first(client, world, make_case):
    early = make_case(world.users["consumer"], world.merchant, order_ref="E")
    clock.advance(timedelta(minutes=10))
    late = make_case(world.users["consumer2"], world.merchant, order_ref="L")
    clock.advance(timedelta(minutes=10))
    closed = make_case(world.users["consumer"], world.merchant, order_ref="C")
    response = act(
        client, world.h["consumer"], closed, {"action": "withdraw", "reason": "No"}
    )
    assert response.status_code == 200
    body = client.get("/api/v1/cases", headers=world.h["staff"]).get_json()
    assert [c["id"] for c in body["items"]] == [early, late, closed]
    body = client.get("/api/v1/cases", headers=world.h["regulator"]).get_json()
    assert [c["id"] for c in body["items"]] == [closed, late, early]


def test_list_filters_by_status_and_pages(app, client, world, make_case):
    app.config["PAGE_SIZE"] = 2
    ids = [
        make_case(world.users["consumer"], world.merchant, order_ref=f"P{i}")
        for i in range(3)
    ]
    act(client, world.h["consumer"], ids[0], {"action": "withdraw", "reason": "Solved"})
    body = client.get(
        "/api/v1/cases?status=withdrawn", headers=world.h["consumer"]
    ).get_json()
    assert [c["id"] for c in body["items"]] == [ids[0]]
    body = client.get(
        "/api/v1/cases?status=awaiting_merchant&page=2", headers=world.h["consumer"]
    ).get_json()
    assert (body["page"], body["per_page"], body["total"], body["pages"]) == (
        2,
        2,
        2,
        1,
    )
    assert body["items"] == []
    body = client.get("/api/v1/cases?page=2", headers=world.h["consumer"]).get_json()
    assert [c["id"] for c in body["items"]] == [ids[0]]
    body = client.get("/api/v1/cases?status=", headers=world.h["consumer"]).get_json()
    assert body["total"] == 3


# Access -----------------------------------------------------------------------------


def test_cases_of_others_are_not_found(client, world, make_case):
    case_id = make_case(world.users["consumer"], world.merchant)
    for who in ("consumer2", "other_staff", "mediator", "arbitrator"):
        assert_error(client.get(f"/api/v1/cases/{case_id}", headers=world.h[who]), 404)
        response = act(
            client, world.h[who], case_id, {"action": "withdraw", "reason": "x"}
        )
        assert_error(response, 404, "not_found")
        events = client.get(f"/api/v1/cases/{case_id}/events", headers=world.h[who])
        assert_error(events, 404)
    assert_error(client.get(f"/api/v1/cases/{case_id}"), 401)
    assert get_case(client, world.h["regulator"], case_id)["allowed_actions"] == []


def test_mediators_see_cases_waiting_in_their_queue(client, world, make_case):
    case_id = make_case(world.users["consumer"], world.merchant)
    act(
        client,
        world.h["staff"],
        case_id,
        {"action": "reject", "reason": "Not our fault"},
    )
    case = get_case(client, world.h["mediator"], case_id)
    assert case["status"] == "in_mediation"
    assert case["allowed_actions"] == ["take"]
    response = act(client, world.h["mediator"], case_id, {"action": "take"})
    assert response.status_code == 200
    case = response.get_json()
    mediator = world.users["mediator"]
    assert case["mediator"] == {"id": mediator.id, "name": mediator.name}
    assert set(case["allowed_actions"]) == {"propose", "end_mediation"}


# Actions ----------------------------------------------------------------------------


def test_actions_not_open_now_answer_409(client, world, make_case):
    case_id = make_case(world.users["consumer"], world.merchant)
    consumer, staff = world.h["consumer"], world.h["staff"]
    assert_error(
        act(client, consumer, case_id, offer_body()), 409, "invalid_transition"
    )
    assert_error(act(client, consumer, case_id, {"action": "accept_offer"}), 409)
    assert_error(act(client, staff, case_id, {"action": "mark_fulfilled"}), 409)
    assert_error(act(client, consumer, case_id, {"action": "rate", "score": 3}), 409)
    response = act(
        client, world.h["regulator"], case_id, {"action": "dismiss", "reason": "x"}
    )
    assert_error(response, 409)
    assert get_case(client, consumer, case_id)["status"] == "awaiting_merchant"


def test_amend_maps_the_claim_and_keeps_versions(client, world, make_case):
    case_id = make_case(world.users["consumer"], world.merchant)
    response = act(
        client,
        world.h["consumer"],
        case_id,
        {
            "action": "amend",
            "claim": {"amount": 10000},
            "description": "It leaks badly.",
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    case = response.get_json()
    assert case["claim"] == {"type": "refund", "amount": 10000}
    assert case["version"] == 2
    assert [v["number"] for v in case["versions"]] == [1, 2]
    assert case["versions"][1]["fields"]["claim_amount"] == 10000
    assert case["timeline"][-1]["data"]["changes"]["claim_amount"] == [19900, 10000]

    response = act(client, world.h["consumer"], case_id, {"action": "amend"})
    error = assert_error(response, 422)
    assert "_schema" in error["fields"]
    response = act(
        client, world.h["consumer"], case_id, {"action": "amend", "claim": {}}
    )
    assert_error(response, 422)
    response = act(
        client,
        world.h["consumer"],
        case_id,
        {"action": "amend", "claim": {"type": "repair"}},
    )
    assert response.get_json()["claim"] == {"type": "repair", "amount": 10000}


def test_reject_then_withdraw_closes_the_case(client, world, make_case):
    case_id = make_case(world.users["consumer"], world.merchant)
    response = act(client, world.h["staff"], case_id, {"action": "reject"})
    assert "reason" in assert_error(response, 422)["fields"]
    response = act(
        client, world.h["staff"], case_id, {"action": "reject", "reason": "No"}
    )
    assert response.get_json()["status"] == "in_mediation"
    response = act(
        client,
        world.h["consumer"],
        case_id,
        {"action": "withdraw", "reason": "Gave up"},
    )
    case = response.get_json()
    assert case["status"] == "withdrawn"
    assert case["outcome"] == "withdrawn"
    assert case["allowed_actions"] == ["rate"]


def test_offer_with_a_past_deadline_is_refused(client, world, make_case):
    case_id = make_case(world.users["consumer"], world.merchant)
    response = act(client, world.h["staff"], case_id, offer_body(deadline="2026-03-01"))
    assert "deadline" in assert_error(response, 422)["fields"]


def test_case_detail_dates_and_times_are_iso(client, world, make_case):
    case_id = make_case(world.users["consumer"], world.merchant)
    case = get_case(client, world.h["consumer"], case_id)
    assert date.fromisoformat(case["order_date"]) == date(2026, 1, 5)
    for name in ("filed_at", "updated_at", "due_at"):
        assert datetime.fromisoformat(case[name]).utcoffset() == timedelta(0)
    for event in case["timeline"]:
        assert datetime.fromisoformat(event["at"]).utcoffset() == timedelta(0)
