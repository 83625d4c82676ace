"""The demo data and the verify-chain command."""

from __future__ import annotations

from mediation.auth.models import User
from mediation.auth.services import PUBLIC_PASSWORD_HASH
from mediation.cases.models import Case, CaseEvent
from mediation.extensions import db
from mediation.notifications.models import Notification
from mediation.notifications.outbox import outbox
from mediation.seed import DEMO_PASSWORD


def test_seed_demo_loads_once_and_every_chain_is_intact(app, runner, caplog):
    """One seed (15 s on a slow machine) for everything about the demo data."""
    app.config["PASSWORD_HASH_METHOD"] = "scrypt"  # production's cost
    result = runner.invoke(args=["seed-demo", "--if-empty"])
    assert result.exit_code == 0, result.output
    # Nothing the demo does forgets objects whose mail waits for the commit;
    # the notifications stay in the bell, their mail marked as not to be sent.
    assert not [r for r in caplog.records if "after-commit callback" in r.getMessage()]
    outbox.join()
    assert not [r for r in caplog.records if "mail (not sent" in r.getMessage()]
    with app.app_context():
        mail = dict(
            db.session.execute(
                db.select(Notification.email_status, db.func.count()).group_by(
                    Notification.email_status
                )
            ).all()
        )
    assert set(mail) == {"skipped"} and mail["skipped"] > 1000
    # The demo accounts' password is public: hashed at the cheap cost, and the
    # configured cost is back for every other account.
    assert app.config["PASSWORD_HASH_METHOD"] == "scrypt"
    with app.app_context():
        users = db.session.scalars(db.select(User)).all()
    assert len(users) > 40
    assert {u.password_hash.split("$")[0] for u in users} == {PUBLIC_PASSWORD_HASH}
    assert all(u.check_password(DEMO_PASSWORD) for u in users)
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


def test_verify_chain_reports_a_tampered_event(
    app, runner, make_user, make_merchant, make_case
):
    case_id = make_case(make_user("consumer"), make_merchant())
    with app.app_context():
        case = db.session.get(Case, case_id)
        events = db.session.scalars(
            db.select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.seq)
        ).all()
        assert len(events) >= 2
        event = events[1]
        event.data = {**(event.data or {}), "amount": 1}
        db.session.commit()
        reference, seq = case.reference, event.seq
    every = runner.invoke(args=["verify-chain"])
    assert every.exit_code != 0
    result = runner.invoke(args=["verify-chain", reference])
    assert result.exit_code != 0
    assert f"event {seq}: hash does not match content" in result.output
    missing = runner.invoke(args=["verify-chain", "MC-1999-999999"])
    assert missing.exit_code != 0 and "no case" in missing.output
