"""The baseline endpoint of the filing benchmark: what it accepts and inserts.

Only its behaviour is tested here; its speed is measured by
``benchmarks/filing.py``, never asserted in the suite.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from mediation import clock, create_app
from mediation.cases.models import Case, CaseEvent, CaseVersion
from mediation.extensions import db
from tests.conftest import _empty_tables, _testing

URL = "/api/v1/_bench/baseline"
ON_POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgres")


@pytest.fixture()
def app(database_url, tmp_path) -> Iterator:
    """The app with the benchmark endpoints on (overrides conftest's ``app``)."""
    app = create_app(
        {
            **_testing(),
            "SQLALCHEMY_DATABASE_URI": database_url,
            "EVIDENCE_DIR": str(tmp_path / "evidence"),
            "BENCHMARK_ENDPOINTS": True,
        }
    )
    yield app
    clock.unfreeze()
    with app.app_context():
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


def filing_body(merchant: int, **overrides: Any) -> dict[str, Any]:
    body = {
        "merchant_id": merchant,
        "category": "quality_defect",
        "order_ref": "BENCH-1",
        "order_date": "2026-01-05",
        "amount_paid": 19900,
        "claim": {"type": "refund", "amount": 19900},
        "description": "The kettle leaks after two days of use.",
        "arbitration_consent": False,
    }
    body.update(overrides)
    return body


def test_baseline_inserts_one_bare_submitted_case(
    app, client, make_user, make_merchant, token_for
):
    consumer = make_user()
    merchant = make_merchant()

    response = client.post(
        URL, json=filing_body(merchant.id), headers=token_for(consumer)
    )

    assert response.status_code == 201
    case_id = response.get_json()["id"]
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert case.consumer_id == consumer.id
        assert case.merchant_id == merchant.id
        assert case.status == "submitted"
        assert case.order_ref == "BENCH-1"
        assert (case.claim_type, case.claim_amount) == ("refund", 19900)
        # Bare: nothing of the real filing besides the row.
        assert db.session.scalar(db.select(db.func.count(CaseEvent.id))) == 0
        assert db.session.scalar(db.select(db.func.count(CaseVersion.id))) == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"category": "not_a_category"},
        {"amount_paid": "199.00"},
        {"claim": {"type": "refund", "amount": -1}},
        {"order_date": "05/01/2026"},
        {"unexpected": "field"},
        {"merchant_id": None},
    ],
    ids=[
        "category",
        "amount-string",
        "negative-claim",
        "date-format",
        "unknown",
        "no-merchant",
    ],
)
def test_baseline_refuses_a_bad_body_with_422(
    app, client, make_user, make_merchant, token_for, overrides
):
    consumer = make_user()
    merchant = make_merchant()

    response = client.post(
        URL, json=filing_body(merchant.id, **overrides), headers=token_for(consumer)
    )

    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_error"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Case.id))) == 0


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite does not enforce foreign keys")
def test_baseline_refuses_an_unknown_merchant_with_422(
    app, client, make_user, token_for
):
    consumer = make_user()

    response = client.post(URL, json=filing_body(999_999), headers=token_for(consumer))

    assert response.status_code == 422
    assert "merchant_id" in response.get_json()["error"]["fields"]


def test_baseline_needs_a_signed_in_consumer(
    client, make_user, make_merchant, token_for
):
    merchant = make_merchant()
    staff = make_user("merchant", merchant_id=merchant.id)

    anonymous = client.post(URL, json=filing_body(merchant.id))
    as_staff = client.post(URL, json=filing_body(merchant.id), headers=token_for(staff))

    assert anonymous.status_code == 401
    assert anonymous.get_json()["error"]["code"] == "unauthorized"
    assert as_staff.status_code == 403


def test_baseline_does_not_exist_without_the_benchmark_setting(database_url, tmp_path):
    app = create_app(
        {
            **_testing(),
            "SQLALCHEMY_DATABASE_URI": database_url,
            "EVIDENCE_DIR": str(tmp_path / "evidence"),
        }
    )

    response = app.test_client().post(URL, json={})

    assert response.status_code == 404
    with app.app_context():
        db.engine.dispose()
