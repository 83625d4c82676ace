"""The supervision statistics: numbers against hand-computed expectations, the live
hook against ``rebuild-stats``, the sweep's batches, arbitration and the fold.

The world (default SLA policy, Asia/Shanghai, March 2026; the previous period of
the same length is 29 January to 28 February):

* shop S (西湖区 330106) sells on platform P (南山区 440305); shop T (朝阳区
  110105) sells on no platform;
* c1 against S (quality defect), filed Mon 2 March 10:00: offer after 24 h,
  accepted after 24 h, marked fulfilled after 24 h, confirmed after 24 h
  (resolved, settled directly, 150 yuan recovered), rated 5;
* c2 against S (quality defect), filed Mon 2 March 10:00: S asks for evidence at
  12:00 (the clock stops with 302,399 s left), the consumer provides it on Wed
  4 March 12:00 (deadline now Sat 7 March 23:59:59), S offers on Fri 6 March
  12:00 (50 h of time to act), the consumer rejects the offer on Mon 9 March
  10:00 (70 h): waiting for a mediator;
* c3 against T (delivery), filed Mon 2 March 10:00: T stays silent, the sweep
  expires it after the deadline (Thu 5 March 23:59:59, a breach) into
  mediation; the consumer withdraws on Mon 9 March 10:00;
* c4 against T (delivery), filed Mon 16 February, withdrawn the next day (the
  previous period);
* c5 against an unregistered shop on P (counterfeit), filed Tue 3 March 10:00:
  the platform offers after 24 h; the offer waits;
* c6 against an unregistered shop on no platform (other), filed Tue 3 March
  10:00: the regulator dismisses it after 48 h (region unknown).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.analytics import stats, stats_spans
from mediation.analytics import stats_queries as q
from mediation.analytics.stats_labels import OUTCOMES
from mediation.analytics.stats_models import CaseStats, StageSpan
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.extensions import db
from mediation.sla.sweep import run_sweep

TZ_OFFSET = timedelta(hours=8)
MARCH = q.Filters(date(2026, 3, 1), date(2026, 3, 31))


def near(seconds: float):
    """A percentile read off the histogram: within 1 % of the exact value."""
    return pytest.approx(seconds, rel=stats_spans.PERCENTILE_ERROR)


def local(day: int, hour: int, month: int = 3, minute: int = 0) -> datetime:
    """Return 2026-<month>-<day> <hour>:<minute> in Shanghai, as UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) - TZ_OFFSET


@pytest.fixture()
def world(app, make_user, make_merchant, make_case):
    platform = make_merchant(name="Platform P", kind="platform", region_code="440305")
    shop = make_merchant(name="Shop S", region_code="330106", platform_id=platform.id)
    other = make_merchant(name="Shop T", region_code="110105")
    people = {
        "consumer": make_user("consumer"),
        "S": make_user("merchant", merchant_id=shop.id),
        "T": make_user("merchant", merchant_id=other.id),
        "P": make_user("merchant", merchant_id=platform.id),
        "regulator": make_user("regulator"),
        "mediator": make_user("mediator"),
    }
    return {
        "app": app,
        "platform": platform,
        "shop": shop,
        "other": other,
        "people": people,
        "make_case": make_case,
    }


def act(app, case_id, action, who, relation, at, **payload):
    clock.freeze(at)
    with app.app_context():
        case = db.session.get(Case, case_id)
        actor = db.session.get(User, who.id) if who is not None else None
        services.apply_action(
            case, action, payload, actor=actor, relation=relation, now=at
        )
        db.session.commit()


def file(world, at, merchant=None, **kw):
    clock.freeze(at)
    return world["make_case"](world["people"]["consumer"], merchant, **kw)


def offer(amount: int = 15000) -> dict:
    return {
        "type": "refund",
        "amount": amount,
        "deadline": date(2026, 3, 20),
        "text": "Refund.",
    }


@pytest.fixture()
def played(world):
    """Play the six cases of the module docstring; return their ids."""
    app, p = world["app"], world["people"]
    shop, other, platform = world["shop"], world["other"], world["platform"]
    ids = {}
    ids["c4"] = file(world, local(16, 10, month=2), other, category="delivery")
    act(
        app,
        ids["c4"],
        "withdraw",
        p["consumer"],
        "consumer",
        local(17, 10, 2),
        reason="Sorted out.",
    )
    ids["c1"] = file(world, local(2, 10), shop, order_ref="O-1")
    ids["c2"] = file(world, local(2, 10), shop, order_ref="O-2")
    ids["c3"] = file(world, local(2, 10), other, category="delivery", order_ref="O-3")
    act(
        app,
        ids["c2"],
        "request_evidence",
        p["S"],
        "merchant",
        local(2, 12),
        text="A photo, please.",
    )
    ids["c5"] = file(
        world,
        local(3, 10),
        None,
        merchant_name="Unregistered shop",
        platform_id=platform.id,
        category="counterfeit",
        order_ref="O-5",
    )
    ids["c6"] = file(
        world, local(3, 10), None, merchant_name="Street stall", category="other"
    )
    act(app, ids["c1"], "offer", p["S"], "merchant", local(3, 10), **offer())
    act(app, ids["c1"], "accept_offer", p["consumer"], "consumer", local(4, 10))
    act(app, ids["c2"], "provide_evidence", p["consumer"], "consumer", local(4, 12))
    act(app, ids["c5"], "offer", p["P"], "platform", local(4, 10), **offer(9900))
    act(app, ids["c1"], "mark_fulfilled", p["S"], "merchant", local(5, 10))
    act(
        app,
        ids["c6"],
        "dismiss",
        p["regulator"],
        "regulator",
        local(5, 10),
        reason="Out of scope.",
    )
    # The sweep, a minute after T's deadline (end of Thu 5 March, local).
    report = run_sweep(app, now=local(5, 23, minute=59) + timedelta(seconds=119))
    assert (ids["c3"], "expire", "awaiting_merchant", "in_mediation") in report.steps
    act(app, ids["c1"], "confirm_fulfilment", p["consumer"], "consumer", local(6, 10))
    act(app, ids["c1"], "rate", p["consumer"], "consumer", local(6, 11), score=5)
    act(app, ids["c2"], "offer", p["S"], "merchant", local(6, 12), **offer())
    act(
        app,
        ids["c2"],
        "reject_offer",
        p["consumer"],
        "consumer",
        local(9, 10),
        reason="Not enough.",
    )
    act(
        app,
        ids["c3"],
        "withdraw",
        p["consumer"],
        "consumer",
        local(9, 10),
        reason="Gave up.",
    )
    return ids


def snapshot(app) -> tuple[list[dict], list[tuple]]:
    """Return the statistics tables (spans without their ids), comparable."""
    with app.app_context():
        facts = [
            {c.name: getattr(row, c.name) for c in CaseStats.__table__.columns}
            for row in db.session.scalars(
                db.select(CaseStats).order_by(CaseStats.case_id)
            )
        ]
        spans = sorted(
            tuple(
                getattr(row, c.name)
                for c in StageSpan.__table__.columns
                if c.name != "id"
            )
            for row in db.session.scalars(db.select(StageSpan))
        )
    return facts, spans


def spans_of(app, case_id: int) -> list[StageSpan]:
    with app.app_context():
        rows = list(
            db.session.scalars(
                db.select(StageSpan)
                .where(StageSpan.case_id == case_id)
                .order_by(StageSpan.ended_at, StageSpan.id)
            )
        )
        db.session.expunge_all()
        return rows


# The hand-computed numbers ---------------------------------------------------------


def test_complaints_per_category_region_and_platform_against_the_previous_period(
    app, world, played
):
    with app.app_context():
        by_category = {
            g.key: (g.current, g.previous) for g in q.complaints_by(MARCH, "category")
        }
        assert by_category == {
            "quality_defect": (2, 0),
            "delivery": (1, 1),
            "counterfeit": (1, 0),
            "other": (1, 0),
        }
        assert q.complaints_total(MARCH).current == 5
        assert q.complaints_total(MARCH).previous == 1
        # The unregistered shop on P counts in P's region; the one on no
        # platform in no region.
        provinces = {
            g.key: (g.current, g.previous) for g in q.complaints_by(MARCH, "province")
        }
        assert provinces == {
            "330000": (2, 0),
            "110000": (1, 1),
            "440000": (1, 0),
            None: (1, 0),
        }
        zhejiang = q.Filters(MARCH.date_from, MARCH.date_to, region="330000")
        assert zhejiang.region_level == "city"
        assert [(g.key, g.current) for g in q.complaints_by(zhejiang, "city")] == [
            ("330100", 2)
        ]
        hangzhou = q.Filters(MARCH.date_from, MARCH.date_to, region="330100")
        assert [(g.key, g.current) for g in q.complaints_by(hangzhou, "district")] == [
            ("330106", 2)
        ]
        platforms = {
            g.key: (g.current, g.previous) for g in q.complaints_by(MARCH, "platform")
        }
        p_id = world["platform"].id
        assert platforms == {p_id: (3, 0), None: (2, 1)}
        only_p = q.Filters(MARCH.date_from, MARCH.date_to, platform=p_id)
        assert q.complaints_total(only_p).current == 3
        none = q.Filters(MARCH.date_from, MARCH.date_to, platform=q.NO_PLATFORM)
        assert (
            q.complaints_total(none).current,
            q.complaints_total(none).previous,
        ) == (2, 1)
        delivery = q.Filters(MARCH.date_from, MARCH.date_to, category="delivery")
        assert q.complaints_total(delivery).current == 1
        merchants = q.complaints_by(MARCH, "merchant")
        assert (merchants[0].key, merchants[0].current) == (world["shop"].id, 2)


def test_volume_buckets_and_the_previous_period_line_up(app, world, played):
    with app.app_context():
        buckets = q.volume(MARCH)
        assert len(buckets) == 31 and q.bucket_unit(MARCH) == "day"
        per_day = {b.start.day: b.current for b in buckets if b.current}
        assert per_day == {2: 3, 3: 2}
        # 16 February is day 19 of the previous period (29 Jan .. 28 Feb).
        assert buckets[18].previous_start == date(2026, 2, 16)
        assert buckets[18].previous == 1
        year = q.Filters(date(2025, 4, 1), date(2026, 3, 31))
        months = q.volume(year)
        assert q.bucket_unit(year) == "month" and len(months) == 12
        assert (months[-1].start, months[-1].current) == (date(2026, 3, 1), 5)
        assert months[-2].current == 1


def test_outcomes_amounts_and_satisfaction(app, world, played):
    with app.app_context():
        outcomes = {o.outcome: o for o in q.outcomes(MARCH)[None]}
        assert list(outcomes) == list(OUTCOMES)
        assert (
            outcomes["settled_directly"].current,
            outcomes["settled_directly"].recovered,
        ) == (1, 15000)
        assert (
            outcomes["withdrawn"].current == 1 and outcomes["withdrawn"].previous == 1
        )
        assert outcomes["rejected"].current == 1
        assert sum(o.current for o in outcomes.values()) == 3
        rating = q.satisfaction(MARCH)[None]
        assert rating.current == {1: 0, 2: 0, 3: 0, 4: 0, 5: 1}
        assert rating.average == 5.0 and rating.previous_average is None


def test_sla_per_stage_with_a_pause_and_an_expiry(app, world, played):
    with app.app_context():
        rows = {s.stage: s for s in q.sla(MARCH)[None]}
    merchant = rows["awaiting_merchant"]
    assert (merchant.ended, merchant.with_deadline, merchant.on_time) == (3, 3, 2)
    # 24 h (c1), 50 h without the 48 h pause (c2), 3 d 14 h 0 min 59 s (c3);
    # percentiles come from the histogram: within 1 % of the exact values.
    assert merchant.median_seconds == near(180_000)
    assert merchant.p90_seconds == near(180_000 + 0.8 * (309_659 - 180_000))
    assert merchant.previous_share == 1.0
    offer_pending = rows["offer_pending"]
    assert (offer_pending.ended, offer_pending.on_time) == (2, 2)
    assert offer_pending.median_seconds == near((86_400 + 252_000) / 2)
    assert offer_pending.p90_seconds == near(86_400 + 0.9 * 165_600)
    assert rows["awaiting_platform"].on_time == 1
    assert rows["awaiting_platform"].median_seconds == near(86_400)
    assert rows["submitted"].median_seconds == near(172_800)
    assert rows["submitted"].on_time == 1
    assert rows["fulfilment"].on_time == rows["confirmation"].on_time == 1
    pickup = rows["mediation_pickup"]
    assert (pickup.ended, pickup.on_time) == (1, 1)
    assert pickup.median_seconds == near(295_141)
    overall = q.sla_overall(rows.values())
    assert (overall.with_deadline, overall.on_time) == (10, 9)


def test_the_pause_moves_the_deadline_and_the_expiry_is_a_breach(app, world, played):
    paused = spans_of(app, played["c2"])[0]
    assert paused.stage == "awaiting_merchant" and paused.ended_by == "offer"
    # 302,399 s were left when the clock stopped on Mon 12:00; it ran again on
    # Wed 12:00: the deadline moved to Sat 7 March 23:59:59.
    assert paused.due_at == local(7, 23, minute=59) + timedelta(seconds=59)
    assert paused.on_time is True and paused.active_seconds == 180_000
    expired = spans_of(app, played["c3"])[0]
    assert (expired.ended_by, expired.ended_role, expired.on_time) == (
        "expire",
        "system",
        False,
    )
    assert expired.due_at == local(5, 23, minute=59) + timedelta(seconds=59)
    assert expired.active_seconds == 309_659
    with app.app_context():
        row = db.session.get(CaseStats, played["c2"])
        assert (row.stage, row.stage_paused_at) == ("mediation_pickup", None)
        assert row.status == "in_mediation" and row.outcome is None


# Live and rebuilt -------------------------------------------------------------------


def test_rebuild_from_the_timelines_gives_what_the_hook_kept(
    app, world, played, runner
):
    live = snapshot(app)
    result = runner.invoke(args=["rebuild-stats"])
    assert result.exit_code == 0, result.output
    assert "from 6 case(s): 0 changed" in result.output
    # February (c4) has ended: its monthly summaries are derived, then kept.
    assert "monthly summaries: 1 month(s) derived, 1 changed" in result.output
    again = runner.invoke(args=["rebuild-stats"]).output
    assert "0 changed; monthly summaries: 1 month(s) derived, 0 changed" in again
    with app.app_context():
        db.session.execute(db.delete(StageSpan))
        db.session.execute(db.delete(CaseStats))
        db.session.commit()
        counts = stats.rebuild()
        db.session.commit()
    assert counts == {"cases": 6, "changed": 6}
    assert snapshot(app) == live


def test_a_case_without_statistics_is_derived_at_its_next_action(app, world, played):
    with app.app_context():
        db.session.execute(
            db.delete(StageSpan).where(StageSpan.case_id == played["c5"])
        )
        db.session.execute(
            db.delete(CaseStats).where(CaseStats.case_id == played["c5"])
        )
        db.session.commit()
    act(
        app,
        played["c5"],
        "accept_offer",
        world["people"]["consumer"],
        "consumer",
        local(10, 10),
    )
    with app.app_context():
        row = db.session.get(CaseStats, played["c5"])
        assert (row.status, row.stage) == ("settled", "fulfilment")
        assert [s.stage for s in spans_of(app, played["c5"])] == [
            "awaiting_platform",
            "offer_pending",
        ]


def test_linking_the_merchant_moves_the_case_and_its_stages_to_its_region(
    app, world, played
):
    act(
        app,
        played["c6"],
        "rate",
        world["people"]["consumer"],
        "consumer",
        local(10, 10),
        score=2,
    )
    case_id = file(
        world, local(10, 10), None, merchant_name="Shop T?", category="other"
    )
    act(
        app,
        case_id,
        "link_merchant",
        world["people"]["regulator"],
        "regulator",
        local(11, 10),
        merchant_id=world["other"].id,
    )
    with app.app_context():
        row = db.session.get(CaseStats, case_id)
        assert (row.merchant_id, row.province_code, row.city_code) == (
            world["other"].id,
            "110000",
            "110100",
        )
        (intake,) = spans_of(app, case_id)
        assert (intake.stage, intake.province_code, intake.on_time) == (
            "submitted",
            "110000",
            True,
        )
        rating = q.satisfaction(MARCH)[None]
        assert rating.current[2] == 1 and rating.ratings == 2
    live = snapshot(app)
    with app.app_context():
        assert stats.rebuild()["changed"] == 0
        db.session.commit()
    assert snapshot(app) == live


# Arbitration: information requests, the award, the amount recovered ------------------


def test_arbitration_pause_award_and_recovered_amount_match_the_rebuild(
    app, world, make_user
):
    people = world["people"]
    arbitrator = make_user("arbitrator")
    with app.app_context():
        shop = db.session.get(type(world["shop"]), world["shop"].id)
        shop.arbitration_consent = True
        db.session.commit()
    case_id = file(world, local(2, 10), world["shop"], arbitration_consent=True)
    act(app, case_id, "reject", people["S"], "merchant", local(2, 12), reason="No.")
    act(app, case_id, "take", people["mediator"], "mediator", local(3, 10))
    act(
        app,
        case_id,
        "end_mediation",
        people["mediator"],
        "mediator",
        local(4, 10),
        result="failed",
        reason="No agreement.",
    )
    act(app, case_id, "take", arbitrator, "arbitrator", local(4, 12))
    act(
        app,
        case_id,
        "request_info",
        arbitrator,
        "arbitrator",
        local(5, 10),
        party="consumer",
        question="Receipt?",
        deadline=date(2026, 3, 10),
    )
    act(
        app,
        case_id,
        "answer_info",
        people["consumer"],
        "consumer",
        local(9, 10),
        text="Attached.",
    )
    orders = [
        {
            "type": "refund",
            "amount": 19900,
            "deadline": "2026-03-20",
            "text": "Refund.",
        },
        {"type": "costs", "amount": 3000, "deadline": "2026-03-20", "text": "Costs."},
    ]
    act(
        app,
        case_id,
        "issue_award",
        arbitrator,
        "arbitrator",
        local(10, 10),
        decision="granted",
        findings="Leaks.",
        reasons="Proven.",
        orders=orders,
    )
    act(app, case_id, "mark_fulfilled", people["S"], "merchant", local(12, 10))
    act(
        app,
        case_id,
        "confirm_fulfilment",
        people["consumer"],
        "consumer",
        local(13, 10),
    )
    with app.app_context():
        row = db.session.get(CaseStats, case_id)
        assert (row.outcome, row.recovered) == ("award_complied", 19900)
    award_span = next(s for s in spans_of(app, case_id) if s.stage == "in_arbitration")
    # Four days stood still (Thu 10:00 to Mon 10:00) out of six (Wed 12:00 to
    # Tue 10:00 ... the award came on Tue 10 March 10:00).
    assert award_span.active_seconds == int(
        (local(10, 10) - local(4, 12)).total_seconds() - 4 * 86_400
    )
    assert award_span.on_time is True
    fulfilment = next(s for s in spans_of(app, case_id) if s.stage == "fulfilment")
    # The award's orders run to 20 March: later than the 7 days of the policy.
    assert fulfilment.due_at == local(20, 23, minute=59) + timedelta(seconds=59)
    live = snapshot(app)
    with app.app_context():
        db.session.execute(db.delete(StageSpan))
        db.session.execute(db.delete(CaseStats))
        stats.rebuild()
        db.session.commit()
    assert snapshot(app) == live


# The fold on its own ------------------------------------------------------------------


def _step(hours: float, action: str, stage, due=None, **kw) -> stats_spans.Step:
    base = datetime(2026, 3, 2, 2, tzinfo=UTC)
    return stats_spans.Step(
        base + timedelta(hours=hours),
        action,
        kw.pop("role", "merchant"),
        stage,
        None if due is None else base + timedelta(hours=due),
        **kw,
    )


def test_the_fold_keeps_time_to_act_without_pauses_and_judges_the_deadline():
    state, spans = stats_spans.fold(
        [
            _step(0, "file", "submitted", due=48, role="consumer"),
            _step(0, "route", "awaiting_merchant", due=72, role="system"),
            _step(
                10,
                "request_evidence",
                "awaiting_merchant",
                paused=True,
                paused_remaining=62 * 3600,
            ),
            _step(30, "provide_evidence", "awaiting_merchant", due=92, role="consumer"),
            _step(90, "offer", "offer_pending", due=200),
            _step(300, "expire", "in_mediation", due=400, role="system"),
        ]
    )
    assert [s.stage for s in spans] == ["awaiting_merchant", "offer_pending"]
    answered, expired = spans
    assert (answered.active_seconds, answered.on_time) == (70 * 3600, True)
    assert expired.on_time is False and expired.ended_by == "expire"
    assert state.stage == "in_mediation"
    # Ended while the clock stands: on time while time was left.
    state, spans = stats_spans.fold(
        [
            _step(0, "file", "awaiting_merchant", due=10, role="consumer"),
            _step(
                5,
                "request_evidence",
                "awaiting_merchant",
                paused=True,
                paused_remaining=5 * 3600,
            ),
            _step(50, "withdraw", None, role="consumer"),
        ]
    )
    (span,) = spans
    assert (span.on_time, span.active_seconds, state) == (True, 5 * 3600, None)
    assert span.due_at == _step(55, "x", None).at


def test_percentiles_interpolate_like_postgresql():
    assert q.percentile([], 0.5) is None
    assert q.percentile([7], 0.9) == 7
    assert q.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert q.percentile([10, 20, 30, 40, 50], 0.9) == pytest.approx(46)
