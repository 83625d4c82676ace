"""The risk list from the database: facts read from cases, tags and the credit
ledger; scores stored, refreshed idempotently, ordered and filtered; the job
and the command. Expected scores are worked out by hand from the model."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from mediation import clock
from mediation.analytics import risk, risk_jobs, tagging
from mediation.analytics.risk_models import (
    RiskRefresh,
    RiskScore,
    RiskScoreCategory,
)
from mediation.analytics.tagging_models import CaseTag, TextFlag
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.credit.models import CreditEvent
from mediation.extensions import db

#: Monday 2 March 2026, 10:00 in Shanghai.
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _frozen():
    clock.freeze(NOW)
    yield
    clock.unfreeze()


def file_at(make_case, when: datetime, consumer, merchant=None, **kw) -> int:
    """File a case through the services at ``when``."""
    clock.freeze(when)
    kw.setdefault("order_ref", f"R-{when:%Y%m%d%H%M%S}-{kw.get('category', 'q')}")
    kw.setdefault("order_date", (when - 2 * DAY).date())
    try:
        return make_case(consumer, merchant, **kw)
    finally:
        clock.freeze(NOW)


def act(app, case_id: int, action: str, user, relation: str, when: datetime, **payload):
    with app.app_context():
        case = db.session.get(Case, case_id)
        actor = db.session.get(User, user.id) if user is not None else None
        services.apply_action(
            case, action, payload, actor=actor, relation=relation, now=when
        )
        db.session.commit()


def expire(app, case_id: int) -> datetime:
    """Let the case's current deadline pass (the sweep's step)."""
    with app.app_context():
        due = db.session.get(Case, case_id).due_at
    when = due + timedelta(hours=1)
    act(app, case_id, "expire", None, "system", when)
    return when


def refresh(app, now: datetime = NOW) -> risk.RefreshReport:
    with app.app_context():
        report = risk.refresh_risk_scores(now=now)
        db.session.commit()
        return report


def stored(app, merchant_id: int) -> RiskScore | None:
    with app.app_context():
        row = db.session.get(RiskScore, merchant_id)
        if row is not None:
            db.session.expunge(row)
        return row


def facts_of(app, merchant_id: int, now: datetime = NOW):
    with app.app_context():
        return risk.merchant_risk(merchant_id, now=now)


@pytest.fixture()
def world(app, make_user, make_merchant, make_case):
    """Merchant M with complaints in every window, one missed answer deadline and
    one complaint dismissed by a regulator."""
    m = make_merchant(name="Risky Shop", region_code="330106")
    consumer = make_user("consumer")
    ids = {
        "older": file_at(make_case, NOW - 40 * DAY, consumer, m),
        "counterfeit": file_at(
            make_case,
            NOW - 20 * DAY,
            consumer,
            m,
            category="counterfeit",
            description="The charger is a fake brand product.",
        ),
        "silent": file_at(make_case, NOW - 10 * DAY, consumer, m),
        "recent": file_at(make_case, NOW - 5 * DAY, consumer, m),
        "ancient": file_at(make_case, NOW - 100 * DAY, consumer, m),
        "rejected": file_at(make_case, NOW - 3 * DAY, consumer, m),
    }
    expire(app, ids["silent"])
    with app.app_context():
        # A complaint a regulator rejected (duplicate, out of scope) never counts.
        db.session.get(Case, ids["rejected"]).status = "rejected"
        db.session.commit()
    return {"merchant": m, "consumer": consumer, "ids": ids}


def test_each_factor_is_read_from_the_database(app, world):
    m = world["merchant"]
    facts, result = facts_of(app, m.id)
    assert facts.complaints_recent == 3  # counterfeit, silent, recent
    assert facts.complaints_previous == 1  # older (40 days ago)
    assert facts.complaints_long == 4  # the ancient and the rejected do not count
    assert facts.weighted == 3.0  # one counterfeit complaint
    assert facts.categories == {"quality_defect": 3, "counterfeit": 1}
    assert facts.sla_breaches == 1  # the silent one: no_response
    assert facts.noncompliance == 0
    assert facts.grade == "A" and not facts.listed  # 100 - 5
    # 3x2 + 4x0.5 + (3-1)x2 + 3x1 + 1x3 = 6 + 2 + 4 + 3 + 3
    assert result.score == 18.0
    assert result.trend == "up"


def test_a_confirmed_tag_makes_a_complaint_weigh_as_its_hot_spot(app, world):
    m = world["merchant"]
    regulator_id = _regulator(app)
    with app.app_context():
        db.session.add(
            CaseTag(
                case_id=world["ids"]["recent"],
                category="fake_reviews",
                confirmed_by_id=regulator_id,
                confirmed_at=NOW,
            )
        )
        db.session.commit()
    facts, result = facts_of(app, m.id)
    assert facts.weighted == 6.0  # the quality complaint now weighs 3
    assert facts.categories["fake_reviews"] == 1
    assert result.score == 21.0


def test_a_missed_fulfilment_deadline_is_a_breach(
    app, make_user, make_merchant, make_case
):
    m = make_merchant(name="Slow Refunds")
    staff = make_user("merchant", merchant_id=m.id)
    consumer = make_user("consumer")
    case_id = file_at(make_case, NOW - 20 * DAY, consumer, m)
    offered = NOW - 19 * DAY
    act(
        app,
        case_id,
        "offer",
        staff,
        "merchant",
        offered,
        type="refund",
        amount=19900,
        deadline=(offered + 3 * DAY).date(),
        text="Refund.",
    )
    act(
        app, case_id, "accept_offer", consumer, "consumer", offered + timedelta(hours=1)
    )
    expire(app, case_id)  # the fulfilment deadline passes: back to mediation
    facts, result = facts_of(app, m.id)
    assert facts.sla_breaches == 1
    with app.app_context():
        evidence = risk.factor_evidence(m.id, now=NOW)
        assert [kind for kind, _c, _at in evidence["sla_breaches"].events] == [
            "expire:fulfilment"
        ]
    # 1x2 + 1x0.5 + 1x2 (trend) + 1x3
    assert result.score == 7.5


def test_non_compliance_and_the_dishonesty_list(
    app, make_user, make_merchant, make_case
):
    m = make_merchant(name="Never Pays")
    staff = make_user("merchant", merchant_id=m.id)
    consumer = make_user("consumer")
    mediator = make_user("mediator")
    case_id = file_at(make_case, NOW - 9 * DAY, consumer, m)
    t = NOW - 8 * DAY
    act(app, case_id, "reject", staff, "merchant", t, reason="No.")
    act(app, case_id, "take", mediator, "mediator", t)
    act(
        app,
        case_id,
        "propose",
        mediator,
        "mediator",
        t,
        type="refund",
        amount=100,
        deadline=(t + 2 * DAY).date(),
        text="Refund.",
    )
    act(app, case_id, "accept_proposal", consumer, "consumer", t)
    act(app, case_id, "accept_proposal", staff, "merchant", t)
    act(app, case_id, "report_unfulfilled", consumer, "consumer", NOW - DAY)
    facts, result = facts_of(app, m.id)
    assert facts.noncompliance == 1
    assert facts.grade == "D" and facts.listed
    # 1x2 + 1x0.5 + 1x2 + 10 (non-compliance) + min(8 + 2, 10) (credit)
    assert result.score == 24.5
    # A repaired event no longer counts.
    with app.app_context():
        event = db.session.scalar(
            db.select(CreditEvent).where(
                CreditEvent.merchant_id == m.id, CreditEvent.kind == "not_fulfilled"
            )
        )
        event.repaired_at = NOW
        db.session.commit()
    facts, _result = facts_of(app, m.id)
    assert facts.noncompliance == 0


def test_a_platform_answers_for_its_unregistered_shops(
    app, make_user, make_merchant, make_case
):
    platform = make_merchant(name="Mall", kind="platform")
    shop = make_merchant(name="Registered Shop", platform_id=platform.id)
    consumer = make_user("consumer")
    file_at(make_case, NOW - DAY, consumer, shop)
    file_at(
        make_case,
        NOW - DAY,
        consumer,
        None,
        merchant_name="Unknown Gadgets",
        platform_id=platform.id,
        category="counterfeit",
    )
    shop_facts, _ = facts_of(app, shop.id)
    platform_facts, _ = facts_of(app, platform.id)
    assert shop_facts.complaints_recent == 1
    assert platform_facts.complaints_recent == 1
    assert platform_facts.categories == {"counterfeit": 1}


def test_the_full_refresh_stores_what_a_single_computation_gives(app, world):
    m = world["merchant"]
    report = refresh(app)
    assert (report.scored, report.changed, report.removed) == (1, 1, 0)
    row = stored(app, m.id)
    assert row.score == 18.0 and row.level == "watch" and row.trend == "up"
    assert (row.complaints_recent, row.complaints_previous) == (3, 1)
    assert row.factors["trend"]["points"] == 4.0
    with app.app_context():
        cats = dict(
            db.session.execute(
                db.select(RiskScoreCategory.category, RiskScoreCategory.complaints)
            ).all()
        )
    assert cats == {"quality_defect": 3, "counterfeit": 1}


def test_the_refresh_is_idempotent(app, world, make_case):
    refresh(app)
    first = stored(app, world["merchant"].id)
    again = refresh(app)
    assert (again.scored, again.changed, again.removed) == (1, 0, 0)
    second = stored(app, world["merchant"].id)
    assert second.factors == first.factors
    assert second.computed_at == first.computed_at
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(RiskRefresh.id))) == 2
    # New data changes the row on the next refresh...
    file_at(make_case, NOW - DAY, world["consumer"], world["merchant"])
    assert refresh(app).changed == 1
    assert stored(app, world["merchant"].id).score == 22.5  # 8 + 2.5 + 6 + 3 + 3
    # ...and a merchant whose complaints all leave the windows leaves the list.
    later = NOW + 400 * DAY
    assert refresh(app, later).removed == 1
    assert stored(app, world["merchant"].id) is None


def test_one_merchant_is_refreshed_cheaply(app, world, make_user, make_merchant):
    other = make_merchant(name="Other")
    refresh(app)
    with app.app_context():
        # The other merchant's row is left alone by a one-merchant refresh.
        db.session.add(
            RiskScore(
                merchant_id=other.id,
                score_tenths=55,
                level="low",
                trend="flat",
                factors={},
                digest="x",
                computed_at=NOW,
            )
        )
        db.session.commit()
        db.session.get(Case, world["ids"]["recent"]).status = "rejected"
        db.session.commit()
        row = risk.refresh_merchant_risk(world["merchant"].id, now=NOW)
        db.session.commit()
        assert row.score == 13.5  # one recent complaint fewer: 4 + 1.5 + 2 + 3 + 3
        assert db.session.get(RiskScore, other.id).score_tenths == 55
        # A merchant with nothing against it has no row.
        assert risk.refresh_merchant_risk(other.id, now=NOW) is None
        db.session.commit()
        assert db.session.get(RiskScore, other.id) is None


def _regulator(app) -> int:
    with app.app_context():
        from mediation.auth.services import create_user

        user = create_user(
            email=f"reg{datetime.now().timestamp()}@example.com",
            password="correct-horse-9",
            name="Reg",
            role="regulator",
            now=NOW,
        )
        db.session.commit()
        return user.id


@pytest.fixture()
def listed(app, make_user, make_merchant, make_case):
    """Three merchants at risk, in different regions and on different platforms."""
    mall = make_merchant(name="Mall", kind="platform", region_code="330100")
    a = make_merchant(name="Alpha Shop", region_code="330106", platform_id=mall.id)
    b = make_merchant(name="Beta Shop", region_code="310104")
    c = make_merchant(name="Gamma Shop", region_code="330102")
    consumer = make_user("consumer")
    for n in range(4):
        file_at(make_case, NOW - (n + 1) * DAY, consumer, a, order_ref=f"A{n}")
    for n in range(2):
        file_at(
            make_case,
            NOW - (n + 1) * DAY,
            consumer,
            b,
            order_ref=f"B{n}",
            category="fake_promotion",
        )
    file_at(make_case, NOW - DAY, consumer, c, order_ref="C0")
    refresh(app)
    return {"mall": mall, "a": a, "b": b, "c": c}


def _names(app, filters: risk.RiskFilters) -> list[str]:
    with app.app_context():
        return [
            row.merchant.name for row in db.session.scalars(risk.risk_list(filters))
        ]


def test_the_list_is_ordered_by_score_and_filtered(app, listed):
    # A: 4 complaints: 8 + 2 + 8 = 18; B: 2 fake promotions: 4 + 1 + 4 + 4 = 13;
    # C: 1 complaint: 2 + 0.5 + 2 = 4.5.
    assert _names(app, risk.RiskFilters()) == ["Alpha Shop", "Beta Shop", "Gamma Shop"]
    assert _names(app, risk.RiskFilters(region="3301")) == ["Alpha Shop", "Gamma Shop"]
    assert _names(app, risk.RiskFilters(region="31")) == ["Beta Shop"]
    assert _names(app, risk.RiskFilters(platform_id=listed["mall"].id)) == [
        "Alpha Shop"
    ]
    assert _names(app, risk.RiskFilters(category="fake_promotion")) == ["Beta Shop"]
    assert _names(app, risk.RiskFilters(min_score=13)) == ["Alpha Shop", "Beta Shop"]
    assert _names(app, risk.RiskFilters(q="gamma")) == ["Gamma Shop"]
    with app.app_context():
        rows = {r.merchant_id: r for r in db.session.scalars(db.select(RiskScore))}
        assert [risk.rank_of(rows[listed[k].id]) for k in "abc"] == [1, 2, 3]
        # A page and the count of all rows, with and without merchant filters.
        for filters, total in (
            (risk.RiskFilters(), 3),
            (risk.RiskFilters(region="3301"), 2),
            (risk.RiskFilters(category="fake_promotion", min_score=10), 1),
            (risk.RiskFilters(q="shop", min_score=5), 2),
        ):
            page = risk.risk_page(filters, 1, 2)
            assert page.total == total, filters
            assert len(page.items) == min(total, 2)
            assert page.pages == (2 if total > 2 else 1)
        assert [
            r.merchant.name for r in risk.risk_page(risk.RiskFilters(), 2, 2).items
        ] == ["Gamma Shop"]


def test_the_scheduled_job_refreshes_and_commits(app, listed):
    with app.app_context():
        db.session.execute(db.delete(RiskScoreCategory))
        db.session.execute(db.delete(RiskScore))
        db.session.commit()
    report = risk_jobs.refresh_job(app)
    assert report.scored == 3 and report.changed == 3
    assert stored(app, listed["a"].id).score == 18.0
    assert risk_jobs.refresh_job(app).changed == 0


def test_the_job_has_a_stable_id_and_never_overlaps(app):
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        risk_jobs.add_risk_job(scheduler, app)
        risk_jobs.add_risk_job(scheduler, app)  # replaces, never doubles
        jobs = scheduler.get_jobs()
        assert [job.id for job in jobs] == ["risk-refresh"]
        job = jobs[0]
        assert job.misfire_grace_time is None
        assert job.coalesce is True
        assert job.max_instances == 1
    finally:
        scheduler.shutdown(wait=False)


def test_the_refresh_command(app, runner, listed):
    result = runner.invoke(args=["refresh-risk"])
    assert result.exit_code == 0, result.output
    assert "3 merchant(s) at risk, 0 written, 0 removed" in result.output
    one = runner.invoke(args=["refresh-risk", "--merchant", str(listed["a"].id)])
    assert one.exit_code == 0 and "risk score 18.0 (watch)" in one.output
    nobody = runner.invoke(args=["refresh-risk", "--merchant", str(listed["mall"].id)])
    assert "risk score 0 (not listed)" in nobody.output
    missing = runner.invoke(args=["refresh-risk", "--merchant", "999999"])
    assert missing.exit_code != 0 and "no merchant 999999" in missing.output


def test_confirmed_flags_feed_the_category_factor(app, make_user, make_merchant):
    """Filing through the services raises a flag; confirming it adds weight."""
    m = make_merchant(name="Brushing Shop")
    consumer = make_user("consumer")
    regulator_id = _regulator(app)
    with app.app_context():
        case = services.file_case(
            db.session.get(User, consumer.id),
            services.Filing(
                merchant_id=m.id,
                category="quality_defect",
                order_ref="X1",
                order_date=date(2026, 2, 20),
                amount_paid=1000,
                claim_type="refund",
                claim_amount=1000,
                description="质量很差，而且这家店一直在刷单。",
            ),
            now=NOW - DAY,
        )
        db.session.commit()
        flag = db.session.scalar(db.select(TextFlag).where(TextFlag.case_id == case.id))
        assert flag.suggested_category == "fake_reviews"
        assert risk.merchant_risk(m.id, now=NOW)[0].weighted == 0
        tagging.confirm_flag(flag, actor=db.session.get(User, regulator_id), now=NOW)
        db.session.commit()
        assert risk.merchant_risk(m.id, now=NOW)[0].weighted == 3.0
