"""Mass-complaint detection: the threshold and window edges, one alert per burst,
the filing and the job agreeing, the credit fact, notifications and the audit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mediation import clock
from mediation.analytics.alert_jobs import JOB_ID, run_detection
from mediation.analytics.alert_models import MassAlert
from mediation.analytics.alerts import dismiss_alert, resolve_alert
from mediation.analytics.audit_models import AuditEntry
from mediation.auth.models import User
from mediation.credit.models import CreditEvent, CreditStanding
from mediation.extensions import db
from mediation.notifications.messages import render
from mediation.notifications.models import Notification
from tests.alert_support import MONDAY, AlertWorld


@pytest.fixture()
def world(app, make_user, make_merchant, make_case, token_for):
    clock.freeze(MONDAY)
    yield AlertWorld(app, make_user, make_merchant, make_case, token_for)
    clock.unfreeze()


@pytest.fixture()
def small(app):
    """A rule of 3 complaints in 7 days (the edges are the same at any N)."""
    app.config["MASS_ALERT_THRESHOLD"] = 3
    app.config["MASS_ALERT_WINDOW_DAYS"] = 7


def _job(world):
    return run_detection(world.app, now=clock.now_utc())


def _close(world, alert_id, how, text="Handled in a warning interview."):
    with world.app.app_context():
        alert = db.session.get(MassAlert, alert_id)
        regulator = db.session.get(User, world.users["R"].id)
        if how == "resolve":
            resolve_alert(alert, actor=regulator, note=text, now=clock.now_utc())
        else:
            dismiss_alert(alert, actor=regulator, reason=text, now=clock.now_utc())
        db.session.commit()


# The threshold and the window ------------------------------------------------------


def test_nine_complaints_raise_nothing_the_tenth_raises_the_alert(world):
    first = world.file(9, every=timedelta(hours=12))
    assert world.alerts() == []
    clock.advance(timedelta(hours=1))
    (tenth,) = world.file()
    (alert,) = world.alerts()
    assert alert["status"] == "open"
    assert alert["raised_by"] == "filing"
    assert alert["count"] == 10 and alert["case_ids"] == sorted([*first, tenth])
    assert (alert["threshold"], alert["window_days"]) == (10, 7)
    assert alert["raised_at"] == clock.now_utc()


@pytest.mark.parametrize(
    ("late", "raised"),
    [(timedelta(0), True), (timedelta(seconds=1), False)],
    ids=["exactly 7 days: counts", "a second more: out"],
)
def test_the_window_includes_a_complaint_filed_exactly_w_days_before(
    world, small, late, raised
):
    world.file()  # the oldest
    clock.advance(timedelta(days=3))
    world.file()
    clock.advance(timedelta(days=4) + late)
    world.file()
    assert len(world.alerts()) == (1 if raised else 0)
    # The job applies the same rule at the same moment.
    report = _job(world)
    assert report.raised == [] and len(world.alerts()) == (1 if raised else 0)


def test_categories_merchants_and_unregistered_shops_count_apart(world, small):
    world.file(2, category="fake_promotion")
    world.file(1, category="false_advertising")
    world.file(1, category="fake_promotion", shop="T")
    world.file(3, category="fake_promotion", shop=None)  # no merchant: not counted
    assert world.alerts() == [] and _job(world).raised == []


def test_withdrawn_complaints_count_dismissed_ones_not(world, small):
    (withdrawn,) = world.file()
    world.act(withdrawn, "withdraw", "A", "consumer", reason="Sorted out.")
    # Dismissed at intake (out of scope): a shop that was never linked.
    (dismissed,) = world.file(shop=None)
    world.act(dismissed, "dismiss", "R", "regulator", reason="A duplicate.")
    world.file()
    assert world.alerts() == []
    world.file()
    (alert,) = world.alerts()
    assert withdrawn in alert["case_ids"] and dismissed not in alert["case_ids"]


# One alert per burst ---------------------------------------------------------------


def test_later_complaints_join_the_open_alert(world, small):
    burst = world.file(3, every=timedelta(hours=1))
    clock.advance(timedelta(days=2))
    later = world.file(2)
    (alert,) = world.alerts()
    assert alert["count"] == 5 and alert["case_ids"] == sorted(burst + later)


def test_a_resolved_burst_is_not_raised_again_a_new_burst_is(world, small):
    burst = world.file(3)
    (alert,) = world.alerts()
    _close(world, alert["id"], "resolve")
    assert _job(world).raised == []
    second = world.file(2)
    assert [a["status"] for a in world.alerts()] == ["resolved"]
    third = world.file()
    old, new = world.alerts()
    assert old["case_ids"] == sorted(burst) and old["status"] == "resolved"
    assert new["status"] == "open" and new["case_ids"] == sorted(second + third)


def test_grouped_alerts_are_still_active_and_take_new_complaints(world, small):
    from tests.alert_support import group_now

    burst = world.file(3)
    (alert,) = world.alerts()
    group_now(world, burst[:2], alert_id=alert["id"])
    assert world.alerts()[0]["status"] == "grouped"
    world.file()
    (alert,) = world.alerts()
    assert alert["status"] == "grouped" and alert["count"] == 4


# The job ---------------------------------------------------------------------------


def test_the_job_catches_an_amended_category_and_a_linked_shop(world, small):
    world.file(2, category="fake_promotion")
    (amended,) = world.file(category="other")
    (unregistered,) = world.file(shop=None)
    assert world.alerts() == []
    world.act(amended, "amend", "C", "consumer", category="fake_promotion")
    assert world.alerts() == []  # amending is not filing: the job sees it
    report = _job(world)
    (alert,) = world.alerts()
    assert report.raised == [(alert["id"], world.shop.id, "fake_promotion", 3)]
    assert alert["raised_by"] == "job" and amended in alert["case_ids"]
    world.act(
        unregistered, "link_merchant", "R", "regulator", merchant_id=world.shop.id
    )
    report = _job(world)
    assert report.joined == [(alert["id"], [unregistered])]
    assert world.alerts()[0]["count"] == 4


def test_the_job_and_filing_never_raise_twice(world, small):
    world.file(3)
    (alert,) = world.alerts()
    first, second = _job(world), _job(world)
    assert first.raised == second.raised == [] and first.joined == second.joined == []
    assert len(world.alerts()) == 1 and world.alerts()[0]["count"] == 3


def test_a_lower_threshold_is_applied_by_the_next_job_run(world, app):
    world.file(4)
    assert world.alerts() == []
    app.config["MASS_ALERT_THRESHOLD"] = 4
    report = _job(world)
    (alert,) = world.alerts()
    assert report.raised and alert["threshold"] == 4 and alert["raised_by"] == "job"
    world.file()  # the filing detector now joins the job's alert
    assert len(world.alerts()) == 1 and world.alerts()[0]["count"] == 5


def test_detect_alerts_command(world, small, runner):
    world.file(2)
    with world.app.app_context():
        world.app.config["MASS_ALERT_THRESHOLD"] = 2
    result = runner.invoke(args=["detect-alerts"])
    assert result.exit_code == 0, result.output
    assert "1 raised" in result.output
    again = runner.invoke(args=["detect-alerts"])
    assert "0 raised, 0 joined, 0 failed" in again.output


def test_the_scheduler_runs_detection_with_a_stable_id(app):
    from mediation.sla.scheduler import blocking_scheduler

    job = blocking_scheduler(app).get_job(JOB_ID)
    assert job is not None and job.misfire_grace_time is None
    assert job.coalesce is True and job.max_instances == 1


# The credit fact, the notifications, the audit -------------------------------------


def _credit(world):
    with world.app.app_context():
        events = [
            (e.kind, e.case_id, e.points, dict(e.data))
            for e in db.session.scalars(
                db.select(CreditEvent).where(CreditEvent.merchant_id == world.shop.id)
            )
        ]
        standing = db.session.get(CreditStanding, world.shop.id)
        return events, standing.score_tenths if standing else None


def test_raising_records_the_credit_fact_and_dismissal_withdraws_it(world, small):
    world.file(3)
    (alert,) = world.alerts()
    events, score = _credit(world)
    assert events == [
        (
            "mass_alert",
            None,
            -10,
            {
                "alert_id": alert["id"],
                "category": "fake_promotion",
                "count": 3,
                "window_days": 7,
                "threshold": 3,
            },
        )
    ]
    assert score == 900
    _close(world, alert["id"], "dismiss", "Three duplicates of one order.")
    (alert,) = world.alerts()
    assert alert["status"] == "dismissed" and alert["credit_event_id"] is None
    events, score = _credit(world)
    assert events == [] and score == 1000
    with world.app.app_context():
        stored = db.session.get(MassAlert, alert["id"])
        assert stored.resolution == "Three duplicates of one order."
        assert stored.resolved_by_id == world.users["R"].id
        assert stored.resolved_at == clock.now_utc()
    # The dismissed burst is not raised again by the job.
    assert _job(world).raised == []


def test_recompute_credit_keeps_the_alert_fact(world, small, runner):
    ids = world.file(3)
    world.act(
        ids[0],
        "offer",
        "S",
        "merchant",
        type="refund",
        amount=100,
        deadline=(clock.now_utc() + timedelta(days=3)).date(),
        text="Refund",
    )
    before = _credit(world)
    result = runner.invoke(args=["recompute-credit"])
    assert result.exit_code == 0, result.output
    after = _credit(world)
    assert ("mass_alert", None, -10) in [e[:3] for e in after[0]]
    assert sorted(map(repr, after[0])) == sorted(map(repr, before[0]))
    assert after[1] == before[1]


def test_regulators_are_notified_and_the_audit_log_records_it(world, small):
    ids = world.file(3)
    (alert,) = world.alerts()
    with world.app.app_context():
        notes = db.session.scalars(
            db.select(Notification).where(Notification.kind == "mass_alert")
        ).all()
        assert sorted(n.user_id for n in notes) == sorted(
            [world.users["R"].id, world.users["R2"].id]
        )
        assert {n.case_id for n in notes} == {ids[-1]}
        with world.app.test_request_context("/?lang=en"):
            text = render("mass_alert", notes[0].params)
        assert "Promo Shop" in text and "Fake promotion" in text and "3" in text
        (entry,) = db.session.scalars(
            db.select(AuditEntry).where(AuditEntry.action == "alert.raise")
        ).all()
        assert entry.actor_id is None and entry.actor_role == "system"
        assert entry.object_id == alert["id"]
        assert entry.details["case_ids"] == sorted(ids)


def test_closing_is_for_regulators_once_with_a_note(world, small):
    from mediation.errors import Conflict, PermissionDenied, ValidationError

    world.file(3)
    (alert,) = world.alerts()
    with world.app.app_context():
        stored = db.session.get(MassAlert, alert["id"])
        mediator = db.session.get(User, world.users["M"].id)
        regulator = db.session.get(User, world.users["R"].id)
        with pytest.raises(PermissionDenied):
            resolve_alert(stored, actor=mediator, note="x", now=clock.now_utc())
        with pytest.raises(ValidationError) as missing:
            resolve_alert(stored, actor=regulator, note="  ", now=clock.now_utc())
        assert "note" in missing.value.fields
        with pytest.raises(ValidationError):
            dismiss_alert(
                stored, actor=regulator, reason="x" * 2001, now=clock.now_utc()
            )
        resolve_alert(stored, actor=regulator, note="Done.", now=clock.now_utc())
        db.session.commit()
        with pytest.raises(Conflict):
            dismiss_alert(stored, actor=regulator, reason="Late.", now=clock.now_utc())
        entries = db.session.scalars(
            db.select(AuditEntry.action).where(AuditEntry.object_type == "alert")
        ).all()
        assert sorted(entries) == ["alert.raise", "alert.resolve"]
