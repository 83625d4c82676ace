"""Warning interviews: planning, the outcome, cancelling, each audited and
notified, through the services and the pages; merchant staff see their own."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.analytics import interviews
from mediation.analytics.audit_models import AuditEntry
from mediation.analytics.risk_models import WarningInterview
from mediation.auth.models import User
from mediation.errors import Conflict, ValidationError
from mediation.extensions import db
from mediation.merchants.models import Merchant
from mediation.notifications.models import Notification

#: Monday 2 March 2026, 10:00 in Shanghai.
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
TODAY = date(2026, 3, 2)


@pytest.fixture()
def people(make_user, make_merchant):
    clock.freeze(NOW)
    shop = make_merchant(name="Called Shop")
    other = make_merchant(name="Other Shop")
    yield {
        "shop": shop,
        "other": other,
        "staff": make_user("merchant", merchant_id=shop.id, name="Shop Staff"),
        "other_staff": make_user("merchant", merchant_id=other.id),
        "regulator": make_user("regulator", name="Reg One"),
        "consumer": make_user("consumer"),
    }
    clock.unfreeze()


def plan(app, people, **kw) -> int:
    with app.app_context():
        merchant = interviews.lock_merchant(people["shop"].id)
        interview = interviews.plan_interview(
            merchant,
            interviews.PlanInput(
                reason=kw.get("reason", "Too many unanswered complaints."),
                planned_for=kw.get("planned_for", TODAY + timedelta(days=7)),
            ),
            actor=db.session.get(User, people["regulator"].id),
            now=clock.now_utc(),
        )
        db.session.commit()
        return interview.id


def test_planning_is_audited_and_the_merchant_is_told(app, people):
    interview_id = plan(app, people)
    with app.app_context():
        interview = db.session.get(WarningInterview, interview_id)
        assert interview.status == "planned"
        assert interview.planned_for == TODAY + timedelta(days=7)
        assert interview.risk_score_tenths == 0  # nothing against it yet
        entry = db.session.scalar(
            db.select(AuditEntry).where(AuditEntry.action == "interview.plan")
        )
        assert (entry.object_type, entry.object_id) == ("merchant", people["shop"].id)
        assert entry.actor_id == people["regulator"].id
        assert entry.details["interview_id"] == interview_id
        notes = db.session.scalars(
            db.select(Notification).where(Notification.kind == "interview_planned")
        ).all()
        assert [n.user_id for n in notes] == [people["staff"].id]
        assert notes[0].params == {"merchant": "Called Shop", "date": "2026-03-09"}


@pytest.mark.parametrize(
    ("reason", "planned_for", "field"),
    [
        ("", TODAY + timedelta(days=3), "reason"),
        ("Why", None, "planned_for"),
        ("Why", TODAY - timedelta(days=1), "planned_for"),
        ("Why", TODAY + timedelta(days=400), "planned_for"),
        ("x" * 4001, TODAY, "reason"),
    ],
)
def test_planning_refuses_bad_input(app, people, reason, planned_for, field):
    with pytest.raises(ValidationError) as caught:
        plan(app, people, reason=reason, planned_for=planned_for)
    assert field in caught.value.fields


def test_one_planned_interview_at_a_time(app, people):
    plan(app, people)
    with pytest.raises(Conflict):
        plan(app, people)


def outcome(app, interview_id: int, people, **kw):
    with app.app_context():
        interview = interviews.get_interview(interview_id, lock=True)
        interviews.record_outcome(
            interview,
            interviews.OutcomeInput(
                held_on=kw.get("held_on", TODAY),
                summary=kw.get("summary", "The owner came and explained."),
                commitments=kw.get("commitments", "Answer within one day."),
                follow_up_on=kw.get("follow_up_on", TODAY + timedelta(days=30)),
            ),
            actor=db.session.get(User, people["regulator"].id),
            now=clock.now_utc(),
        )
        db.session.commit()


def test_recording_the_outcome(app, people):
    interview_id = plan(app, people, planned_for=TODAY)
    outcome(app, interview_id, people)
    with app.app_context():
        interview = db.session.get(WarningInterview, interview_id)
        assert interview.status == "held"
        assert interview.held_on == TODAY
        assert interview.commitments == "Answer within one day."
        assert interview.follow_up_on == TODAY + timedelta(days=30)
        assert interview.closed_by_id == people["regulator"].id
        assert (
            db.session.scalar(
                db.select(AuditEntry.details).where(
                    AuditEntry.action == "interview.held"
                )
            )["summary"]
            == "The owner came and explained."
        )
        assert (
            db.session.scalar(
                db.select(db.func.count(Notification.id)).where(
                    Notification.kind == "interview_held"
                )
            )
            == 1
        )
    with pytest.raises(Conflict):
        outcome(app, interview_id, people)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"held_on": None}, "held_on"),
        ({"held_on": TODAY + timedelta(days=1)}, "held_on"),
        ({"held_on": TODAY - timedelta(days=1)}, "held_on"),  # before it was planned
        ({"summary": " "}, "summary"),
        ({"follow_up_on": TODAY}, "follow_up_on"),
        ({"follow_up_on": TODAY + timedelta(days=500)}, "follow_up_on"),
    ],
)
def test_the_outcome_refuses_bad_input(app, people, changes, field):
    interview_id = plan(app, people, planned_for=TODAY)
    with pytest.raises(ValidationError) as caught:
        outcome(app, interview_id, people, **changes)
    assert field in caught.value.fields


def test_cancelling_needs_a_reason_and_closes_it(app, people):
    interview_id = plan(app, people)
    with app.app_context():
        interview = interviews.get_interview(interview_id, lock=True)
        regulator = db.session.get(User, people["regulator"].id)
        with pytest.raises(ValidationError):
            interviews.cancel_interview(interview, "", actor=regulator, now=NOW)
        interviews.cancel_interview(
            interview, "The shop closed.", actor=regulator, now=NOW
        )
        db.session.commit()
        assert interview.status == "cancelled"
        assert (
            db.session.scalar(
                db.select(AuditEntry.details).where(
                    AuditEntry.action == "interview.cancel"
                )
            )["reason"]
            == "The shop closed."
        )
        with pytest.raises(Conflict):
            interviews.cancel_interview(interview, "Again", actor=regulator, now=NOW)
    # A new one can be planned once none is planned.
    assert plan(app, people) != interview_id


# The pages ---------------------------------------------------------------------------


def test_a_regulator_plans_records_and_cancels_from_the_pages(
    app, client, auth, people
):
    auth.login(people["regulator"])
    shop_id = people["shop"].id
    page = client.get(f"/supervision/risk/merchants/{shop_id}")
    assert page.status_code == 200 and b'data-testid="plan-interview-form"' in page.data
    # Bad input: the form again with its errors, never a 500.
    for body in (
        {"reason": "", "planned_for": "2026-03-09"},
        {"reason": "Why", "planned_for": "2026-13-45"},
        {"reason": "Why", "planned_for": "2026-03-01"},
    ):
        refused = client.post(
            f"/supervision/risk/merchants/{shop_id}/interviews", data=body
        )
        assert refused.status_code == 422, body
        assert b'class="error"' in refused.data
    done = client.post(
        f"/supervision/risk/merchants/{shop_id}/interviews",
        data={"reason": "Unanswered complaints.", "planned_for": "2026-03-09"},
    )
    assert done.status_code == 303
    twice = client.post(
        f"/supervision/risk/merchants/{shop_id}/interviews",
        data={"reason": "Again.", "planned_for": "2026-03-10"},
    )
    assert twice.status_code == 409
    with app.app_context():
        interview_id = db.session.scalar(db.select(WarningInterview.id))
    listing = client.get("/supervision/interviews")
    assert listing.status_code == 200
    assert f'data-interview-id="{interview_id}"'.encode() in listing.data
    detail = f"/supervision/interviews/{interview_id}"
    assert client.get(detail).status_code == 200
    assert client.post(detail, data={"step": "nonsense"}).status_code == 422
    assert (
        client.post(
            detail, data={"step": "held", "held_on": "2026-03-09", "summary": "x"}
        ).status_code
        == 422
    )  # a day in the future
    held = client.post(
        detail,
        data={
            "step": "held",
            "held_on": "2026-03-02",
            "summary": "Came, promised to answer.",
            "commitments": "Answer in 24 h.",
            "follow_up_on": "2026-04-01",
        },
    )
    assert held.status_code == 303
    assert (
        client.post(detail, data={"step": "cancel", "cancel_reason": "x"}).status_code
        == 409
    )
    for shown in ("held", "follow_up", "cancelled", "bogus"):
        assert client.get(f"/supervision/interviews?list={shown}").status_code == 200
    follow_ups = client.get("/supervision/interviews?list=follow_up")
    assert f'data-interview-id="{interview_id}"'.encode() in follow_ups.data
    merchant_page = client.get(f"/supervision/risk/merchants/{shop_id}")
    assert b"Came, promised to answer." in merchant_page.data


def test_merchant_staff_see_their_own_interviews_only(app, client, auth, people):
    interview_id = plan(app, people, reason="Explain the unanswered complaints.")
    auth.login(people["staff"])
    own = client.get("/interviews/")
    assert own.status_code == 200
    assert f'data-interview-id="{interview_id}"'.encode() in own.data
    assert b"Explain the unanswered complaints." in own.data
    # Never the regulators' pages.
    assert client.get(f"/supervision/interviews/{interview_id}").status_code == 403
    auth.logout()
    auth.login(people["other_staff"])
    other = client.get("/interviews/")
    assert other.status_code == 200
    assert b"Explain the unanswered complaints." not in other.data
    assert b'data-testid="no-interviews"' in other.data
    auth.logout()
    auth.login(people["consumer"])
    assert client.get("/interviews/").status_code == 403


def test_interviews_stay_off_the_public_credit_page(app, client, people):
    plan(app, people, reason="A reason only the merchant may read.")
    page = client.get(f"/credit/merchants/{people['shop'].id}")
    assert page.status_code == 200
    assert b"A reason only the merchant may read." not in page.data


def test_an_unknown_merchant_or_interview_is_404(app, client, auth, people):
    auth.login(people["regulator"])
    assert client.get("/supervision/risk/merchants/999999").status_code == 404
    assert client.get("/supervision/interviews/999999").status_code == 404
    assert (
        client.post(
            "/supervision/risk/merchants/999999/interviews",
            data={"reason": "x", "planned_for": "2026-03-09"},
        ).status_code
        == 404
    )
    with app.app_context():
        assert db.session.get(Merchant, people["shop"].id) is not None
