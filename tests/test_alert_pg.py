"""Several detectors at once on PostgreSQL: a filing and the job, two jobs.

Each detector takes an advisory lock on the merchant and category before it
looks; the second waits for the first's commit and then joins its alert. The
unique partial index on active alerts is the last guarantee.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from mediation import clock
from mediation.analytics import alerts
from mediation.analytics.alert_jobs import run_detection
from mediation.analytics.alert_models import AlertSource, MassAlert
from mediation.auth.models import User
from mediation.cases.services import Filing, file_case
from mediation.extensions import db
from tests.alert_support import MONDAY, AlertWorld

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="runs in the PostgreSQL pass of .ci/run (TEST_DATABASE_URL)",
)


@pytest.fixture()
def world(app, make_user, make_merchant, make_case, token_for):
    clock.freeze(MONDAY)
    app.config["MASS_ALERT_THRESHOLD"] = 3
    yield AlertWorld(app, make_user, make_merchant, make_case, token_for)
    clock.unfreeze()


def _wait_for_advisory_waiter(app) -> None:
    """Return once some session waits on an advisory lock (the thread blocked).

    Polls pg_stat_activity: synchronisation, not a timing assertion; it fails
    only if nobody ever waits.
    """
    deadline = time.monotonic() + 30
    with app.app_context():
        while time.monotonic() < deadline:
            waiting = db.session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
                )
            )
            db.session.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the second detector never waited for the lock")


def test_the_job_waits_for_a_filing_that_raises_and_joins_its_alert(world):
    app = world.app
    world.file(2, every=timedelta(hours=1))
    outcome: dict[str, object] = {}

    def job() -> None:
        with app.app_context():
            found = alerts.detect(
                world.shop.id,
                "fake_promotion",
                now=clock.now_utc() + timedelta(minutes=1),
                source=AlertSource.job,
            )
            db.session.commit()
            outcome["raised"] = found.raised
            outcome["alert_id"] = found.alert.id if found.alert else None

    with app.app_context():
        # The third complaint is filed (and raises the alert) but not committed.
        case = file_case(
            db.session.get(User, world.users["C"].id),
            Filing(
                merchant_id=world.shop.id,
                category="fake_promotion",
                order_ref="RACE-1",
                order_date=MONDAY.date() - timedelta(days=3),
                amount_paid=100,
                claim_type="refund",
                claim_amount=100,
                description="The promotion price was never applied.",
            ),
            now=clock.now_utc(),
        )
        thread = threading.Thread(target=job)
        thread.start()
        _wait_for_advisory_waiter(app)
        db.session.commit()
        case_id = case.id
    thread.join(timeout=60)
    assert not thread.is_alive()
    (alert,) = world.alerts()
    assert outcome == {"raised": False, "alert_id": alert["id"]}
    assert alert["raised_by"] == "filing" and case_id in alert["case_ids"]
    assert alert["count"] == 3


def test_two_jobs_at_once_raise_one_alert(world):
    app = world.app
    world.file(2, category="other")
    assert world.alerts() == []
    app.config["MASS_ALERT_THRESHOLD"] = 2  # the job's business now
    barrier = threading.Barrier(2)
    reports = []

    def job() -> None:
        barrier.wait()
        reports.append(run_detection(app, now=clock.now_utc()))

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(world.alerts()) == 1
    assert sum(len(r.raised) for r in reports) == 1
    assert all(not r.failed for r in reports)


def test_the_unique_index_refuses_a_second_active_alert(world):
    world.file(3)
    (alert,) = world.alerts()
    with world.app.app_context():
        now = clock.now_utc()
        db.session.add(
            MassAlert(
                merchant_id=world.shop.id,
                category="fake_promotion",
                threshold=3,
                window_days=7,
                window_start=now,
                count=0,
                status="grouped",
                raised_at=now,
                raised_by="job",
                last_filed_at=now,
                updated_at=now,
            )
        )
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()
        # A closed alert of the same key is no obstacle.
        stored = db.session.get(MassAlert, alert["id"])
        stored.status = "resolved"
        db.session.add(
            MassAlert(
                merchant_id=world.shop.id,
                category="fake_promotion",
                threshold=3,
                window_days=7,
                window_start=now,
                count=0,
                status="open",
                raised_at=now,
                raised_by="job",
                last_filed_at=now,
                updated_at=now,
            )
        )
        db.session.flush()
        db.session.rollback()
