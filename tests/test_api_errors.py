"""Bad input to the case API: the right status, the API.md error shape, never a 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# The fixtures of the case tests (frozen clock, users of every role) are reused.
from tests.test_api_cases import (  # noqa: F401
    assert_error,
    filing_body,
    frozen_fixture,
    offer_body,
    world_fixture,
)


def post_raw(client, headers, path, data, content_type="application/json"):
    return client.post(path, data=data, headers=headers, content_type=content_type)


# Bodies that are not JSON objects ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ('{"category": ', "application/json"),
        ("not json at all", "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('"a string"', "application/json"),
        ("null", "application/json"),
        ("42", "application/json"),
        ("", "application/json"),
        ('{"category": "delivery"}', "text/plain"),
        (b"\xff\xfe\x00garbage", "application/json"),
    ],
    ids=[
        "truncated",
        "text",
        "array",
        "string",
        "null",
        "number",
        "empty",
        "wrong-content-type",
        "bad-encoding",
    ],
)
def test_bodies_that_are_not_json_objects_are_400(
    client, world, make_case, data, content_type
):
    case_id = make_case(world.users["consumer"], world.merchant)
    for path in ("/api/v1/cases", f"/api/v1/cases/{case_id}/actions"):
        response = post_raw(client, world.h["consumer"], path, data, content_type)
        assert_error(response, 400, "malformed_json")


# Filing fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount_paid": "19900"}, "amount_paid"),
        ({"amount_paid": 199.5}, "amount_paid"),
        ({"amount_paid": 199.0}, "amount_paid"),
        ({"amount_paid": True}, "amount_paid"),
        ({"amount_paid": None}, "amount_paid"),
        ({"amount_paid": -1}, "amount_paid"),
        ({"amount_paid": 10**30}, "amount_paid"),
        ({"claim": {"type": "refund", "amount": 1.5}}, "claim"),
        ({"claim": {"type": "refund", "amount": False}}, "claim"),
        ({"claim": {"type": "money_back", "amount": 1}}, "claim"),
        ({"claim": "refund"}, "claim"),
        ({"claim": {"type": "refund", "amount": 1, "extra": 1}}, "claim"),
        ({"category": "rude_staff"}, "category"),
        ({"category": 7}, "category"),
        ({"order_date": "2026-13-01"}, "order_date"),
        ({"order_date": "05/01/2026"}, "order_date"),
        ({"order_date": "20260105"}, "order_date"),
        ({"order_date": 20260105}, "order_date"),
        ({"order_date": "2099-01-01"}, "order_date"),
        ({"order_ref": ""}, "order_ref"),
        ({"order_ref": "x" * 101}, "order_ref"),
        ({"order_ref": ["TB-1"]}, "order_ref"),
        ({"description": "short"}, "description"),
        ({"description": "lone surrogate \ud800 here"}, "description"),
        ({"arbitration_consent": "yes"}, "arbitration_consent"),
        ({"arbitration_consent": 1}, "arbitration_consent"),
        ({"merchant_id": "1"}, "merchant_id"),
        ({"merchant_id": 2**40}, "merchant_id"),
        ({"merchant_id": 0}, "merchant_id"),
        ({"platform_id": 12345}, "platform_id"),
        ({"merchant_name": "x" * 201}, "merchant_name"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_filing_fields_are_422_naming_the_field(client, world, overrides, field):
    body = {**filing_body(world.merchant.id), **overrides}
    response = client.post(
        "/api/v1/cases",
        data=json.dumps(body),
        headers=world.h["consumer"],
        content_type="application/json",
    )
    error = assert_error(response, 422, "validation_error")
    assert field in error["fields"], error


def test_nul_characters_are_refused(client, world):
    body = {**filing_body(world.merchant.id), "description": "Broken kettle \x00 NUL"}
    response = client.post("/api/v1/cases", json=body, headers=world.h["consumer"])
    # Refused by the app-wide NUL guard (400) or, without it, by the schema (422).
    assert response.status_code in (400, 422)
    assert_error(response, response.status_code)
    assert (
        client.get("/api/v1/cases", headers=world.h["consumer"]).get_json()["total"]
        == 0
    )


def test_deeply_nested_json_is_not_a_server_error(client, world):
    data = '{"a":' * 5000 + "1" + "}" * 5000
    response = post_raw(client, world.h["consumer"], "/api/v1/cases", data)
    assert assert_error(response, 400)["code"] == "malformed_json"


def test_unknown_field_message_says_so(client, world):
    response = client.post(
        "/api/v1/cases?lang=en",
        json=filing_body(world.merchant.id, colour="red"),
        headers=world.h["consumer"],
    )
    error = assert_error(response, 422)
    assert error["fields"] == {"colour": "Unknown field."}


def test_missing_fields_are_each_named(client, world):
    response = client.post("/api/v1/cases", json={}, headers=world.h["consumer"])
    error = assert_error(response, 422, "validation_error")
    for name in (
        "category",
        "order_ref",
        "order_date",
        "amount_paid",
        "claim",
        "description",
    ):
        assert name in error["fields"]
    assert "arbitration_consent" not in error["fields"]


def test_messages_follow_the_language(client, world):
    headers = {**world.h["consumer"], "Accept-Language": "en"}
    response = client.post("/api/v1/cases?lang=en", json={}, headers=headers)
    error = assert_error(response, 422)
    assert error["fields"]["category"] == "This field is required."


# Query arguments, ids, methods -------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["status=open", "status=AWAITING_MERCHANT", "status=1"]
)
def test_unknown_status_filter_is_422(client, world, query):
    error = assert_error(
        client.get(f"/api/v1/cases?{query}", headers=world.h["consumer"]), 422
    )
    assert "status" in error["fields"]


@pytest.mark.parametrize(
    "page", ["0", "-1", "abc", "1.5", "1e3", "\u0661", "100000000000000000000"]
)
def test_bad_page_is_400(client, world, page):
    response = client.get(f"/api/v1/cases?page={page}", headers=world.h["consumer"])
    assert_error(response, 400, "bad_page")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cases/999999",
        "/api/v1/cases/99999999999999999999999",
        "/api/v1/cases/-1",
        "/api/v1/cases/abc",
        "/api/v1/cases/999999/events",
        "/api/v1/cases/999999/evidence/1",
        "/api/v1/cases/1/evidence/99999999999999999999",
        "/api/v1/no-such-thing",
    ],
)
def test_unknown_cases_and_paths_are_404(client, world, path):
    assert_error(client.get(path, headers=world.h["regulator"]), 404, "not_found")


def test_actions_on_unknown_cases_are_404(client, world):
    for case_id in ("999999", "99999999999999999999999"):
        response = client.post(
            f"/api/v1/cases/{case_id}/actions",
            json={"action": "withdraw", "reason": "x"},
            headers=world.h["consumer"],
        )
        assert_error(response, 404)


def test_wrong_method_is_405_json(client, world):
    assert_error(client.delete("/api/v1/cases", headers=world.h["consumer"]), 405)
    assert_error(
        client.put("/api/v1/cases/1/actions", headers=world.h["consumer"]), 405
    )


def test_anonymous_and_bad_tokens_are_401(client, world):
    assert_error(client.get("/api/v1/cases"), 401, "unauthorized")
    bad = {"Authorization": "Bearer not-a-token"}
    assert_error(client.get("/api/v1/cases", headers=bad), 401)
    assert_error(client.post("/api/v1/cases", json=filing_body(1), headers=bad), 401)


# Actions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "action"),
        ({"action": None}, "action"),
        ({"action": "fly"}, "action"),
        ({"action": 5}, "action"),
        ({"action": ["offer"]}, "action"),
        ({"action": "route"}, "action"),
        ({"action": "expire"}, "action"),
        ({"action": "withdraw"}, "reason"),
        ({"action": "withdraw", "reason": 3}, "reason"),
        ({"action": "withdraw", "reason": "x", "note": "y"}, "note"),
        ({"action": "rate", "score": 6}, "score"),
        ({"action": "rate", "score": "5"}, "score"),
        ({"action": "rate", "score": 4.0}, "score"),
        ({"action": "amend", "order_date": "yesterday"}, "order_date"),
        ({"action": "amend", "amount_paid": -5}, "amount_paid"),
        ({"action": "amend", "merchant_id": 3}, "merchant_id"),
        ({"action": "amend", "claim": {"amount": "a lot"}}, "claim"),
        ({"action": "link_merchant", "merchant_id": "x"}, "merchant_id"),
        ({"action": "reassign"}, "user_id"),
        ({"action": "end_mediation", "result": "settled", "reason": "x"}, "result"),
        ({"action": "accept_offer", "text": 5}, "text"),
    ],
)
def test_bad_action_bodies_are_422(client, world, make_case, body, field):
    case_id = make_case(world.users["consumer"], world.merchant)
    response = client.post(
        f"/api/v1/cases/{case_id}/actions", json=body, headers=world.h["consumer"]
    )
    error = assert_error(response, 422, "validation_error")
    assert field in error["fields"], error


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": 1.5}, "amount"),
        ({"amount": -1}, "amount"),
        ({"type": "cash"}, "type"),
        ({"deadline": "next week"}, "deadline"),
        ({"deadline": None}, "deadline"),
        ({"text": ""}, "text"),
    ],
)
def test_bad_offers_are_422(client, world, make_case, overrides, field):
    case_id = make_case(world.users["consumer"], world.merchant)
    response = client.post(
        f"/api/v1/cases/{case_id}/actions",
        json=offer_body(**overrides),
        headers=world.h["staff"],
    )
    error = assert_error(response, 422)
    assert field in error["fields"], error


# Fuzzing ----------------------------------------------------------------------------

NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "../../etc/passwd",
        "9" * 40,
        "2026-01-05",
        "null",
        "<b>",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | NASTY_TEXT
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FILING_KEYS = st.sampled_from(
    [
        "merchant_id",
        "merchant_name",
        "platform_id",
        "category",
        "order_ref",
        "order_date",
        "amount_paid",
        "claim",
        "description",
        "arbitration_consent",
    ]
)
ACTION_NAMES = st.sampled_from(
    [
        "offer",
        "reject",
        "amend",
        "withdraw",
        "accept_offer",
        "reject_offer",
        "rate",
        "take",
        "propose",
        "end_mediation",
        "link_merchant",
        "dismiss",
        "reassign",
        "mark_fulfilled",
        "confirm_fulfilment",
        "report_unfulfilled",
        "request_info",
        "answer_info",
        "issue_award",
        "consent_arbitration",
        "route",
    ]
)
ACTION_KEYS = st.sampled_from(
    [
        "type",
        "amount",
        "deadline",
        "text",
        "reason",
        "score",
        "comment",
        "claim",
        "merchant_id",
        "user_id",
        "result",
        "order_date",
        "amount_paid",
        "category",
        "party",
        "question",
        "orders",
        "decision",
        "evidence_ids",
    ]
)


def _bodies(keys, extra=st.nothing()):
    """Mostly objects with the real field names, sometimes anything at all."""
    realistic = st.dictionaries(keys | st.text(max_size=8), JSONISH, max_size=8)
    return st.one_of(realistic, extra, JSONISH)


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(body=_bodies(FILING_KEYS))
def test_fuzzed_filings_never_fail_on_our_side(client, world, body):
    data = json.dumps(body)
    response = post_raw(client, world.h["consumer"], "/api/v1/cases", data)
    assert response.status_code < 500, (body, response.get_data(as_text=True))
    if response.status_code >= 400:
        assert_error(response, response.status_code)


@FUZZ
@given(
    body=_bodies(
        ACTION_KEYS,
        st.builds(
            lambda name, rest: {"action": name, **rest},
            ACTION_NAMES,
            st.dictionaries(ACTION_KEYS, JSONISH, max_size=5),
        ),
    ),
    who=st.sampled_from(["consumer", "staff", "regulator", "mediator"]),
)
def test_fuzzed_actions_never_fail_on_our_side(client, world, make_case, body, who):
    case_id = _fuzz_case(world, make_case)
    data = json.dumps(body)
    response = post_raw(client, world.h[who], f"/api/v1/cases/{case_id}/actions", data)
    assert response.status_code < 500, (body, response.get_data(as_text=True))
    if response.status_code >= 400:
        assert_error(response, response.status_code)


def _fuzz_case(world, make_case) -> int:
    """One case per test run (examples share it: its state drifts, which is fine)."""
    if not hasattr(world, "fuzz_case"):
        world.fuzz_case = make_case(world.users["consumer"], world.merchant)
    return world.fuzz_case
