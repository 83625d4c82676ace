"""Concurrent SLA sweepers on PostgreSQL: SKIP LOCKED gives each case one step."""

from __future__ import annotations

import os
import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case, CaseEvent
from mediation.extensions import db
from mediation.sla.sweep import run_sweep

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="runs in the PostgreSQL pass of .ci/run (TEST_DATABASE_URL)",
)

CASES = 2000
SWEEPERS = 4
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


def _insert_due_cases(app, consumer_id: int, merchant_id: int) -> None:
    """Insert CASES overdue cases awaiting the merchant in one transaction."""
    past = NOW - timedelta(days=3)
    rows = [
        {
            "reference": f"MC-PG-{n:06d}",
            "consumer_id": consumer_id,
            "merchant_id": merchant_id,
            "merchant_name": "Lone Shop",
            "category": "quality_defect",
            "order_ref": f"ORDER-{n}",
            "order_date": date(2026, 2, 20),
            "amount_paid": 19900,
            "claim_type": "refund",
            "claim_amount": 19900,
            "description": "The kettle leaks after two days of use.",
            "arbitration_consent": False,
            "status": lc.AWAITING_MERCHANT,
            "due_at": past + timedelta(seconds=n),
            "version": 1,
            "was_mediated": False,
            "filed_at": past - timedelta(days=5),
            "updated_at": past - timedelta(days=5),
        }
        for n in range(CASES)
    ]
    with app.app_context():
        db.session.execute(db.insert(Case), rows)
        db.session.commit()


def test_four_concurrent_sweepers_step_each_case_exactly_once(
    app, make_user, make_merchant
):
    clock.freeze(NOW)
    consumer = make_user("consumer")
    shop = make_merchant(name="Lone Shop")
    _insert_due_cases(app, consumer.id, shop.id)

    barrier = threading.Barrier(SWEEPERS)
    reports, errors = [], []

    def sweeper() -> None:
        try:
            barrier.wait()
            reports.append(run_sweep(app, now=NOW, batch_size=50))
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=sweeper) for _ in range(SWEEPERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(len(r.failed) for r in reports) == 0
    assert sum(len(r.steps) for r in reports) == CASES
    with app.app_context():
        per_case = dict(
            db.session.execute(
                db.select(CaseEvent.case_id, db.func.count(CaseEvent.id))
                .where(CaseEvent.action == "expire")
                .group_by(CaseEvent.case_id)
            ).all()
        )
        assert len(per_case) == CASES
        assert set(per_case.values()) == {1}
        statuses = dict(
            db.session.execute(
                db.select(Case.status, db.func.count(Case.id)).group_by(Case.status)
            ).all()
        )
        assert statuses == {lc.IN_MEDIATION: CASES}

    # Everything moved on: another round of sweepers finds nothing to do.
    again = run_sweep(app, now=NOW)
    assert again.steps == [] and again.failed == []
