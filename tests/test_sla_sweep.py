"""The SLA sweep: escalations, auto-assignment, reminders, idempotence, the pause."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.cases import lifecycle as lc
from mediation.cases.chain import verify_events
from mediation.cases.models import Case, CaseEvent
from mediation.cases.services import apply_action, pause_clock, resume_clock
from mediation.extensions import db
from mediation.notifications.models import Notification
from mediation.notifications.outbox import outbox
from mediation.sla.scheduler import JOB_ID, blocking_scheduler, start_in_process
from mediation.sla.sweep import run_sweep

MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
#: 3 working days after MONDAY: Thursday 5 March 23:59:59 Shanghai.
MERCHANT_DUE = datetime(2026, 3, 5, 15, 59, 59, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture()
def parties(app, make_user, make_merchant):
    clock.freeze(MONDAY)
    platform = make_merchant(name="Mall", kind="platform")
    shop = make_merchant(name="Kettle Shop", platform_id=platform.id)
    lone = make_merchant(name="Lone Shop")
    willing = make_merchant(name="Willing Shop", arbitration_consent=True)
    return {
        "consumer": make_user("consumer"),
        "shop": shop,
        "platform": platform,
        "lone": lone,
        "willing": willing,
        "shop_staff": make_user("merchant", merchant_id=shop.id),
        "platform_staff": make_user("merchant", merchant_id=platform.id),
        "lone_staff": make_user("merchant", merchant_id=lone.id),
        "willing_staff": make_user("merchant", merchant_id=willing.id),
    }


def _case(app, case_id: int) -> Case:
    """Return a fresh copy of the case (call inside an app context)."""
    db.session.expire_all()
    return db.session.get(Case, case_id)


def _sweep(app, **kw):
    report = run_sweep(app, **kw)
    outbox.join()  # its e-mail bookkeeping must not race the next write
    return report


def _act(app, case_id, action, user=None, relation="system", **payload) -> None:
    with app.app_context():
        case = db.session.get(Case, case_id)
        actor = db.session.get(User, user.id) if user is not None else None
        apply_action(
            case, action, payload, actor=actor, relation=relation, now=clock.now_utc()
        )
        db.session.commit()
    outbox.join()


def _state(app, case_id) -> dict:
    with app.app_context():
        case = _case(app, case_id)
        events = db.session.scalars(
            db.select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.seq)
        ).all()
        assert verify_events(events) == []
        return {
            "status": case.status,
            "due_at": case.due_at,
            "remind_at": case.remind_at,
            "reminded_at": case.reminded_at,
            "mediator_id": case.mediator_id,
            "arbitrator_id": case.arbitrator_id,
            "actions": [e.action for e in events],
            "last": events[-1].data,
        }


def _sweep_at_due(app, case_id):
    """Move the clock just past the case's deadline and sweep."""
    due = _state(app, case_id)["due_at"]
    clock.freeze(due + SECOND)
    return _sweep(app, now=due + SECOND)


def _notes(app, kind: str, user=None) -> int:
    with app.app_context():
        query = db.select(db.func.count(Notification.id)).where(
            Notification.kind == kind
        )
        if user is not None:
            query = query.where(Notification.user_id == user.id)
        return db.session.scalar(query)


def _offer(app, case_id, staff, relation="merchant"):
    _act(
        app,
        case_id,
        "offer",
        staff,
        relation,
        type="refund",
        amount=19900,
        deadline=date(2099, 1, 1),
        text="Full refund",
    )


# Escalation paths -----------------------------------------------------------


def test_sweep_escalates_silent_merchant_to_platform_then_mediation(app, parties):

    case_id = _file(app, parties, "shop")
    assert _state(app, case_id)["due_at"] == MERCHANT_DUE

    report = _sweep_at_due(app, case_id)
    state = _state(app, case_id)
    assert state["status"] == lc.AWAITING_PLATFORM
    assert report.steps == [(case_id, "expire", lc.AWAITING_MERCHANT, state["status"])]
    assert state["actions"][-2:] == ["remind", "expire"]
    assert state["last"] == {
        "stage": "awaiting_merchant",
        "due_at": MERCHANT_DUE.isoformat(),
        "late_party": "merchant",
    }
    assert state["due_at"] > clock.now_utc()
    assert state["reminded_at"] is None

    _sweep_at_due(app, case_id)
    state = _state(app, case_id)
    assert state["status"] == lc.IN_MEDIATION
    assert state["last"]["late_party"] == "platform"
    assert state["last"]["stage"] == "awaiting_platform"


def test_sweep_sends_silent_merchant_without_platform_to_mediation(app, parties):
    case_id = _file(app, parties, "lone")
    _sweep_at_due(app, case_id)
    state = _state(app, case_id)
    assert state["status"] == lc.IN_MEDIATION
    assert state["last"]["late_party"] == "merchant"


def test_sweep_treats_an_unanswered_offer_as_rejected(app, parties):
    case_id = _file(app, parties, "lone")
    _offer(app, case_id, parties["lone_staff"])
    assert _state(app, case_id)["status"] == lc.OFFER_PENDING
    _sweep_at_due(app, case_id)
    state = _state(app, case_id)
    assert state["status"] == lc.IN_MEDIATION
    assert state["last"]["stage"] == "offer_pending"
    assert state["last"]["late_party"] == "consumer"


def test_sweep_assigns_an_untaken_case_to_the_least_loaded_mediator_of_its_category(
    app, parties, make_user
):
    other_field = _mediator(app, make_user, ["delivery"])
    busy = _mediator(app, make_user, [])
    free = _mediator(app, make_user, ["quality_defect"])
    also_free = _mediator(app, make_user, [])
    _mediator(app, make_user, [], active=False)
    # ``busy`` already mediates one open case.
    first = _file(app, parties, "lone", order_ref="ORDER-0")
    _act(app, first, "reject", parties["lone_staff"], "merchant", reason="No")
    _act(app, first, "take", busy, "mediator")

    case_id = _file(app, parties, "lone")
    _act(app, case_id, "reject", parties["lone_staff"], "merchant", reason="No")
    report = _sweep_at_due(app, case_id)
    state = _state(app, case_id)
    assert report.steps == [(case_id, "auto_assign", lc.IN_MEDIATION, lc.IN_MEDIATION)]
    # ``free`` and ``also_free`` tie on load: the lower id wins.
    assert state["mediator_id"] == min(free.id, also_free.id) == free.id
    assert state["mediator_id"] not in (other_field.id, busy.id)
    assert state["last"]["late_party"] == "mediator"
    # The conclusion deadline (10 working days) now runs.
    assert state["due_at"] - clock.now_utc() > timedelta(days=10)


def test_pickup_reminder_goes_to_the_mediators_of_the_category(app, parties, make_user):
    other_field = _mediator(app, make_user, ["delivery"])
    general = _mediator(app, make_user, [])
    specialist = _mediator(app, make_user, ["quality_defect"])
    case_id = _file(app, parties, "lone")
    _act(app, case_id, "reject", parties["lone_staff"], "merchant", reason="No")
    remind_at = _state(app, case_id)["remind_at"]
    assert remind_at is not None
    report = _sweep(app, now=remind_at)
    assert report.reminded == [(case_id, "mediation_pickup")]
    assert _notes(app, "case_reminder", general) == 1
    assert _notes(app, "case_reminder", specialist) == 1
    assert _notes(app, "case_reminder", other_field) == 0


def test_sweep_leaves_an_untaken_case_alone_when_nobody_can_take_it(app, parties):
    case_id = _file(app, parties, "lone")
    _act(app, case_id, "reject", parties["lone_staff"], "merchant", reason="No")
    before = _state(app, case_id)
    report = _sweep_at_due(app, case_id)
    after = _state(app, case_id)
    assert report.steps == []
    assert report.skipped == [(case_id, "nobody to assign")]
    assert after["status"] == lc.IN_MEDIATION and after["mediator_id"] is None
    assert after["actions"] == before["actions"] + ["remind"]


def test_mediation_timeout_goes_to_arbitration_when_both_consented(
    app, parties, make_user
):
    mediator = _mediator(app, make_user, [])
    loaded = make_user("arbitrator")
    arbitrator = make_user("arbitrator")
    case_id = _file(app, parties, "willing", arbitration_consent=True)
    _act(app, case_id, "reject", parties["willing_staff"], "merchant", reason="No")
    _act(app, case_id, "take", mediator, "mediator")
    _sweep_at_due(app, case_id)
    state = _state(app, case_id)
    assert state["status"] == lc.IN_ARBITRATION
    assert state["last"]["stage"] == "in_mediation"
    assert state["last"]["late_party"] == "mediator"
    # ``loaded`` arbitrates another open case; nobody took this one in time.
    other = _file(app, parties, "willing", order_ref="ORDER-2")
    with app.app_context():
        busy_case = _case(app, other)
        busy_case.arbitrator_id = loaded.id
        db.session.commit()
    _sweep_at_due(app, case_id)
    state = _state(app, case_id)
    assert state["status"] == lc.IN_ARBITRATION
    assert state["arbitrator_id"] == arbitrator.id
    assert state["actions"][-1] == "auto_assign"
    assert state["due_at"] > clock.now_utc()


def test_mediation_timeout_closes_unresolved_without_both_consents(
    app, parties, make_user
):
    mediator = _mediator(app, make_user, [])
    # The consumer consented; the merchant did not.
    case_id = _file(app, parties, "lone", arbitration_consent=True)
    _act(app, case_id, "reject", parties["lone_staff"], "merchant", reason="No")
    _act(app, case_id, "take", mediator, "mediator")
    _sweep_at_due(app, case_id)
    state = _state(app, case_id)
    assert state["status"] == lc.CLOSED_UNRESOLVED
    assert state["due_at"] is None and state["remind_at"] is None


def test_unfulfilled_settlement_goes_to_mediation_the_first_time(app, parties):
    case_id = _file(app, parties, "lone")
    _offer(app, case_id, parties["lone_staff"])
    _act(app, case_id, "accept_offer", parties["consumer"], "consumer")
    _sweep_at_due(app, case_id)
    state = _state(app, case_id)
    assert state["status"] == lc.IN_MEDIATION
    assert state["last"]["stage"] == "fulfilment"
    assert state["last"]["late_party"] == "merchant"


def test_unfulfilled_settlement_after_mediation_closes_noncompliant(
    app, parties, make_user
):
    mediator = _mediator(app, make_user, [])
    case_id = _file(app, parties, "lone")
    _act(app, case_id, "reject", parties["lone_staff"], "merchant", reason="No")
    _act(app, case_id, "take", mediator, "mediator")
    _act(
        app,
        case_id,
        "propose",
        mediator,
        "mediator",
        type="refund",
        amount=10000,
        deadline=date(2099, 1, 1),
        text="Half refund",
    )
    _act(app, case_id, "accept_proposal", parties["consumer"], "consumer")
    _act(app, case_id, "accept_proposal", parties["lone_staff"], "merchant")
    assert _state(app, case_id)["status"] == lc.SETTLED
    _sweep_at_due(app, case_id)
    assert _state(app, case_id)["status"] == lc.CLOSED_NONCOMPLIANT


def test_consumer_silence_after_marked_fulfilment_resolves_the_case(app, parties):
    case_id = _file(app, parties, "lone")
    _offer(app, case_id, parties["lone_staff"])
    _act(app, case_id, "accept_offer", parties["consumer"], "consumer")
    _act(app, case_id, "mark_fulfilled", parties["lone_staff"], "merchant")
    _sweep_at_due(app, case_id)
    state = _state(app, case_id)
    assert state["status"] == lc.RESOLVED
    assert state["last"]["stage"] == "confirmation"
    assert state["last"]["late_party"] == "consumer"


# Reminders and idempotence --------------------------------------------------


def test_reminder_goes_out_once_and_before_the_step(app, parties):
    case_id = _file(app, parties, "lone")
    state = _state(app, case_id)
    # One working day before the deadline: Wednesday 23:59:59 in Shanghai.
    assert state["remind_at"] == MERCHANT_DUE - timedelta(days=1)
    staff = parties["lone_staff"]

    report = _sweep(app, now=state["remind_at"] - SECOND)
    assert report.reminded == [] and _notes(app, "case_reminder") == 0

    at = state["remind_at"]
    report = _sweep(app, now=at)
    assert report.reminded == [(case_id, "awaiting_merchant")]
    assert report.steps == []
    assert _notes(app, "case_reminder", staff) == 1
    assert _notes(app, "case_reminder") == 1  # nobody else must act
    state = _state(app, case_id)
    assert state["reminded_at"] == at
    assert state["actions"][-1] == "remind"
    assert state["last"]["party"] == "merchant"

    _sweep(app, now=at + SECOND)
    assert _notes(app, "case_reminder") == 1
    assert _state(app, case_id)["actions"] == state["actions"]

    _sweep_at_due(app, case_id)
    after = _state(app, case_id)
    assert after["status"] == lc.IN_MEDIATION
    assert after["actions"][len(state["actions"]) :] == ["expire"]
    assert _notes(app, "case_reminder", staff) == 1


def test_a_second_sweep_at_the_same_time_changes_nothing(app, parties):
    ids = [_file(app, parties, "shop", order_ref=f"O-{n}") for n in range(3)]
    now = MERCHANT_DUE + SECOND
    first = _sweep(app, now=now)
    assert len(first.steps) == 3 and len(first.reminded) == 3
    before = [_state(app, i) for i in ids]
    notes = _notes(app, "case_reminder")

    second = _sweep(app, now=now)
    assert second.steps == [] and second.reminded == [] and second.failed == []
    assert [_state(app, i) for i in ids] == before
    assert _notes(app, "case_reminder") == notes


def test_backlog_after_downtime_is_handled_by_the_first_sweep(app, parties):
    ids = [_file(app, parties, "lone", order_ref=f"O-{n}") for n in range(5)]
    later = MONDAY + timedelta(days=30)
    clock.freeze(later)
    report = _sweep(app, now=later, batch_size=2)
    assert sorted(cid for cid, *_ in report.steps) == ids
    for case_id in ids:
        state = _state(app, case_id)
        assert state["status"] == lc.IN_MEDIATION
        # The missed reminder went out first, then one step.
        assert state["actions"][-2:] == ["remind", "expire"]
        assert state["due_at"] > later
    assert _notes(app, "case_reminder", parties["lone_staff"]) == 5


def _refuse_updates_of(app, case_id: int) -> None:
    """Make the database itself refuse any UPDATE of one case (a real failure)."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(
                db.text(
                    "CREATE FUNCTION refuse_case() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.id = {case_id} THEN RAISE EXCEPTION 'refused'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            db.session.execute(
                db.text(
                    "CREATE TRIGGER refuse_case BEFORE UPDATE ON cases "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_case()"
                )
            )
        else:
            db.session.execute(
                db.text(
                    "CREATE TRIGGER refuse_case BEFORE UPDATE ON cases "
                    f"WHEN NEW.id = {case_id} BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        db.session.commit()


def _allow_updates(app) -> None:
    with app.app_context():
        db.session.execute(db.text("DROP TRIGGER refuse_case ON cases")) if (
            db.engine.dialect.name == "postgresql"
        ) else db.session.execute(db.text("DROP TRIGGER refuse_case"))
        if db.engine.dialect.name == "postgresql":
            db.session.execute(db.text("DROP FUNCTION refuse_case()"))
        db.session.commit()


def test_one_failing_case_holds_up_no_other_in_its_batch(app, parties):
    # A batch runs in one piece (one multi-row INSERT per table, one commit);
    # when the database refuses one case, the batch is redone case by case.
    ids = [_file(app, parties, "lone", order_ref=f"O-{n}") for n in range(4)]
    broken = ids[1]
    before = _state(app, broken)
    _refuse_updates_of(app, broken)
    try:
        now = MERCHANT_DUE + SECOND
        clock.freeze(now)
        report = _sweep(app, now=now, batch_size=10)
    finally:
        _allow_updates(app)
    assert set(report.failed) == {broken}  # its reminder and its step
    assert sorted(cid for cid, *_ in report.steps) == [i for i in ids if i != broken]
    for case_id in ids:
        state = _state(app, case_id)  # chains intact, no half-written step
        if case_id == broken:
            assert state == before
        else:
            assert state["status"] == lc.IN_MEDIATION
            assert state["actions"][-2:] == ["remind", "expire"]
    # Exactly one reminder per escalated case; none for the refused one.
    assert _notes(app, "case_reminder", parties["lone_staff"]) == 3

    # The next sweep, once the database accepts it again, moves it on.
    report = _sweep(app, now=now)
    assert [cid for cid, *_ in report.steps] == [broken]
    assert _state(app, broken)["status"] == lc.IN_MEDIATION


def test_batched_sweep_writes_events_and_notifications_like_single_steps(app, parties):
    # The same cases swept in batches of 1 and of 50 give the same records.
    a = [_file(app, parties, "shop", order_ref=f"A-{n}") for n in range(3)]
    now = MERCHANT_DUE + SECOND
    clock.freeze(now)
    _sweep(app, now=now, batch_size=1)
    one_by_one = [_state(app, i) for i in a]
    with app.app_context():
        db.session.execute(db.delete(Notification))
        db.session.commit()
    b = [_file(app, parties, "shop", order_ref=f"B-{n}") for n in range(3)]
    for case_id in b:
        with app.app_context():
            case = db.session.get(Case, case_id)
            case.due_at, case.remind_at = MERCHANT_DUE, MERCHANT_DUE - SECOND
            db.session.commit()
    _sweep(app, now=now, batch_size=50)
    batched = [_state(app, i) for i in b]
    assert [s["actions"] for s in batched] == [s["actions"] for s in one_by_one]
    assert [s["status"] for s in batched] == [lc.AWAITING_PLATFORM] * 3
    assert [s["due_at"] for s in batched] == [s["due_at"] for s in one_by_one]
    with app.app_context():
        kinds = db.session.execute(
            db.select(Notification.case_id, Notification.kind, Notification.user_id)
            .where(
                Notification.case_id.in_(b),
                Notification.kind.in_(["case_reminder", "case_expire"]),
            )
            .order_by(Notification.id)
        ).all()
    expected = set()
    for case_id in b:
        expected |= {
            (case_id, "case_reminder", parties["shop_staff"].id),
            (case_id, "case_expire", parties["consumer"].id),
            (case_id, "case_expire", parties["shop_staff"].id),
            (case_id, "case_expire", parties["platform_staff"].id),
        }
    assert set(kinds) == expected and len(kinds) == len(expected)


def test_a_closed_or_withdrawn_case_is_never_swept(app, parties):
    case_id = _file(app, parties, "lone")
    _act(app, case_id, "withdraw", parties["consumer"], "consumer", reason="Solved")
    report = _sweep(app, now=MERCHANT_DUE + timedelta(days=60))
    assert report.steps == [] and report.reminded == []


# The clock pause --------------------------------------------------------------


def test_pause_and_resume_keep_the_remaining_time(app, parties):
    case_id = _file(app, parties, "lone")
    paused_at = MONDAY + timedelta(hours=5)
    remaining = MERCHANT_DUE - paused_at
    with app.app_context():
        pause_clock(_case(app, case_id), now=paused_at)
        db.session.commit()
    state = _state(app, case_id)
    assert state["due_at"] is None and state["remind_at"] is None

    # Long past the old deadline: a paused case is neither reminded nor moved.
    report = _sweep(app, now=MERCHANT_DUE + timedelta(days=20))
    assert report.steps == [] and report.reminded == []

    resumed_at = MERCHANT_DUE + timedelta(days=20)
    with app.app_context():
        case = _case(app, case_id)
        assert case.paused_remaining == int(remaining.total_seconds())
        resume_clock(case, now=resumed_at)
        db.session.commit()
    state = _state(app, case_id)
    assert state["status"] == lc.AWAITING_MERCHANT
    assert state["due_at"] == resumed_at + remaining
    assert resumed_at < state["remind_at"] < state["due_at"]

    report = _sweep(app, now=state["due_at"] + SECOND)
    assert report.steps == [(case_id, "expire", lc.AWAITING_MERCHANT, lc.IN_MEDIATION)]


def test_pausing_twice_or_resuming_a_running_clock_is_refused(app, parties):
    from mediation.errors import Conflict

    case_id = _file(app, parties, "lone")
    with app.app_context():
        case = _case(app, case_id)
        with pytest.raises(Conflict):
            resume_clock(case, now=MONDAY)
        pause_clock(case, now=MONDAY)
        with pytest.raises(Conflict):
            pause_clock(case, now=MONDAY)


# Command line and scheduler ----------------------------------------------------


def test_sweep_command_prints_what_it_did(app, parties, runner):
    case_id = _file(app, parties, "lone")
    clock.freeze(MERCHANT_DUE + SECOND)
    result = runner.invoke(args=["sweep"])
    assert result.exit_code == 0, result.output
    assert f"case {case_id}: expire awaiting_merchant -> in_mediation" in result.output
    assert "1 reminder(s), 1 step(s)" in result.output
    assert _state(app, case_id)["status"] == lc.IN_MEDIATION


def test_scheduler_job_never_drops_or_overlaps_runs(app):
    app.config["SWEEP_INTERVAL_SECONDS"] = 45
    scheduler = blocking_scheduler(app)
    job = scheduler.get_job(JOB_ID)
    assert job.misfire_grace_time is None
    assert job.coalesce is True and job.max_instances == 1
    assert job.trigger.interval == timedelta(seconds=45)


def test_scheduler_command_runs_a_blocking_scheduler(app, runner, monkeypatch):
    from apscheduler.schedulers.blocking import BlockingScheduler

    started = []
    monkeypatch.setattr(
        BlockingScheduler, "start", lambda self: started.append(self.get_job(JOB_ID))
    )
    result = runner.invoke(args=["scheduler"])
    assert result.exit_code == 0, result.output
    assert "SLA sweep every 30 s" in result.output
    assert [job.id for job in started] == [JOB_ID]


def test_no_in_process_scheduler_under_test(app):
    app.config["SCHEDULER_ENABLED"] = True
    assert start_in_process(app) is None


# Helpers ------------------------------------------------------------------------


def _file(app, parties, shop: str, **kw) -> int:
    from mediation.cases.services import Filing, file_case

    with app.app_context():
        filing = Filing(
            category=kw.pop("category", "quality_defect"),
            order_ref=kw.pop("order_ref", "ORDER-1"),
            order_date=date(2026, 2, 20),
            amount_paid=19900,
            claim_type="refund",
            claim_amount=19900,
            description="The kettle leaks after two days of use.",
            merchant_id=parties[shop].id,
            **kw,
        )
        consumer = db.session.get(User, parties["consumer"].id)
        case = file_case(consumer, filing, now=clock.now_utc())
        db.session.commit()
        case_id = case.id
    outbox.join()
    return case_id


def _mediator(app, make_user, categories: list[str], active: bool = True):
    user = make_user("mediator")
    with app.app_context():
        row = db.session.get(User, user.id)
        row.categories = categories
        row.is_active_account = active
        db.session.commit()
    return user
