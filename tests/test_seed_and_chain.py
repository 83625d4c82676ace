"""The demo data and the verify-chain command."""

from __future__ import annotations

from mediation.cases.models import Case, CaseEvent
from mediation.extensions import db
from mediation.notifications.models import Notification
from mediation.notifications.outbox import outbox


def test_seed_demo_loads_once_and_every_chain_is_intact(app, runner):
    result = runner.invoke(args=["seed-demo", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "demo data loaded" in result.output
    with app.app_context():
        statuses = set(db.session.scalars(db.select(Case.status)).all())
    assert {
        "awaiting_merchant",
        "offer_pending",
        "in_mediation",
        "resolved",
        "awaiting_platform",
        "submitted",
    } <= statuses
    again = runner.invoke(args=["seed-demo", "--if-empty"])
    assert again.exit_code == 0 and "not loaded" in again.output
    refused = runner.invoke(args=["seed-demo"])
    assert refused.exit_code != 0
    check = runner.invoke(args=["verify-chain"])
    with app.app_context():
        cases = db.session.scalar(db.select(db.func.count(Case.id)))
    assert check.exit_code == 0 and f"chain intact: {cases} case(s)" in check.output
    # The dashboard's statistics and monthly summaries are already what a
    # rebuild from the timelines gives.
    rebuilt = runner.invoke(args=["rebuild-stats"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "0 changed; monthly summaries:" in rebuilt.output
    assert rebuilt.output.rstrip().split("derived, ")[1].startswith("0 changed")


def test_seed_demo_keeps_every_notification_for_its_mail(app, runner, caplog):
    """Nothing the demo does forgets objects whose mail waits for the commit;
    the notifications stay in the bell, their mail marked as not to be sent."""
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert not [r for r in caplog.records if "after-commit callback" in r.getMessage()]
    outbox.join()
    assert not [r for r in caplog.records if "mail (not sent" in r.getMessage()]
    with app.app_context():
        statuses = dict(
            db.session.execute(
                db.select(Notification.email_status, db.func.count()).group_by(
                    Notification.email_status
                )
            ).all()
        )
    assert set(statuses) == {"skipped"} and statuses["skipped"] > 1000


def test_verify_chain_reports_a_tampered_event(app, runner):
    runner.invoke(args=["seed-demo"])
    with app.app_context():
        case = db.session.scalars(
            db.select(Case).where(Case.order_ref == "JX20260930777")
        ).one()
        event = db.session.scalars(
            db.select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.seq == 3)
        ).one()
        event.data = {**event.data, "amount": 1}
        db.session.commit()
        reference = case.reference
    result = runner.invoke(args=["verify-chain", reference])
    assert result.exit_code != 0
    assert "event 3: hash does not match content" in result.output
    missing = runner.invoke(args=["verify-chain", "MC-1999-999999"])
    assert missing.exit_code != 0 and "no case" in missing.output
