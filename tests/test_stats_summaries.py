"""The dashboard's monthly summaries: the same numbers as the narrow tables, the
percentiles within their bound, and late changes to a month that has ended.

Most tests use a synthetic history (rows of ``stats_cases`` and
``stats_stage_spans`` written directly, as ``rebuild-stats`` would derive them:
the summaries are derived from those tables only) from September 2025 to
14 April 2026, "now" being 15 April 2026 (months up to March are summarized).
The late changes go through the real case services.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from mediation import clock
from mediation.analytics import dashboard_charts as charts
from mediation.analytics import stats_queries as q
from mediation.analytics import stats_regions as regions
from mediation.analytics import stats_spans, stats_summaries
from mediation.analytics.stats_jobs import JOB_ID, add_summary_job, summarize_months
from mediation.analytics.stats_models import (
    CaseMonth,
    CaseStats,
    SpanMonth,
    StageSpan,
    StatsMonth,
)
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.extensions import db
from mediation.sla.sweep import run_sweep

TZ = timedelta(hours=8)
NOW = datetime(2026, 4, 15, 2, tzinfo=UTC)  # 10:00 in Shanghai
FIRST = date(2025, 9, 1)
LAST = date(2026, 4, 14)
STAGES = ("awaiting_merchant", "offer_pending", "in_mediation", "fulfilment")
OUTCOMES = ("settled_directly", "settled_in_mediation", "withdrawn", "rejected")
CATEGORIES = ("quality_defect", "delivery", "counterfeit")


def utc(day: date, seconds: int = 36_000) -> datetime:
    """Return a local day at ``seconds`` after midnight in Shanghai, as UTC."""
    return (
        datetime(day.year, day.month, day.day, tzinfo=UTC)
        - TZ
        + timedelta(seconds=seconds)
    )


@pytest.fixture()
def history(app, make_user, make_merchant):
    """Write 700 cases with their spans, closings and ratings; summarize the
    months up to March 2026; return the merchants by name."""
    rng = random.Random(20260415)
    consumer = make_user("consumer")
    p1 = make_merchant(name="P1", kind="platform", region_code="440305")
    p2 = make_merchant(name="P2", kind="platform", region_code="330106")
    shops = [
        make_merchant(name=f"Shop {n}", region_code=code, platform_id=platform)
        for n, (code, platform) in enumerate(
            [
                ("330106", p1.id),
                ("330106", None),
                ("330203", p2.id),
                ("440305", p1.id),
                ("440106", None),
                ("110105", p2.id),
            ]
        )
    ]
    cases, facts, spans = [], [], []
    days = (LAST - FIRST).days
    for n in range(700):
        case_id = 100_000 + n
        filed_on = FIRST + timedelta(days=rng.randrange(days + 1))
        draw = rng.random()
        if draw < 0.08:  # an unregistered shop on P1, or on no platform
            merchant, platform = None, (p1.id if draw < 0.05 else None)
            code = "440305" if platform else None
        else:
            shop = rng.choice(shops)
            merchant, platform, code = shop.id, shop.platform_id, shop.region_code
        region, city, province = regions.rollup(code)
        category = rng.choice(CATEGORIES)
        dims = {
            "category": category,
            "merchant_id": merchant,
            "platform_id": platform,
            "region_code": region,
            "city_code": city,
            "province_code": province,
        }
        moment = utc(filed_on, rng.randrange(86_400))
        for stage in STAGES[: rng.randint(1, len(STAGES))]:
            seconds = int(rng.lognormvariate(11, 1.2))
            ended = moment + timedelta(seconds=seconds)
            if (ended + TZ).date() > LAST:
                break
            on_time = None if stage == "in_mediation" else rng.random() < 0.8
            spans.append(
                {
                    "case_id": case_id,
                    "stage": stage,
                    "started_at": moment,
                    "due_at": None,
                    "ended_at": ended,
                    "ended_on": (ended + TZ).date(),
                    "active_seconds": seconds,
                    "time_bucket": stats_spans.time_bucket(seconds),
                    "on_time": on_time,
                    "ended_by": "offer",
                    "ended_role": "merchant",
                    **dims,
                }
            )
            moment = ended
        closed_on = (moment + TZ).date()
        closed = moment > utc(filed_on) and rng.random() < 0.7
        outcome = rng.choice(OUTCOMES) if closed else None
        rated_on = closed_on + timedelta(days=rng.randint(0, 20)) if closed else None
        rating = rng.randint(1, 5) if rated_on and rated_on <= LAST else None
        facts.append(
            {
                "case_id": case_id,
                "filed_at": utc(filed_on),
                "filed_on": filed_on,
                **dims,
                "status": "resolved" if closed else "awaiting_merchant",
                "outcome": outcome,
                "closed_at": moment if closed else None,
                "closed_on": closed_on if closed else None,
                "recovered": rng.choice((0, 9900, 15000)) if closed else 0,
                "satisfaction": rating,
                "rated_on": rated_on if rating else None,
                "stage_paused_seconds": 0,
            }
        )
        cases.append(
            {
                "id": case_id,
                "reference": f"MC-T-{case_id}",
                "consumer_id": consumer.id,
                "merchant_id": merchant,
                "merchant_name": "Shop",
                "platform_id": platform,
                "category": category,
                "order_ref": f"O-{n}",
                "order_date": filed_on,
                "amount_paid": 19900,
                "claim_type": "refund",
                "description": "The kettle leaks.",
                "status": "resolved" if closed else "awaiting_merchant",
                "filed_at": utc(filed_on),
                "updated_at": utc(filed_on),
            }
        )
    with app.app_context():
        db.session.execute(db.insert(Case), cases)
        db.session.execute(db.insert(CaseStats), facts)
        db.session.execute(db.insert(StageSpan), spans)
        report = stats_summaries.summarize_due_months(now=NOW)
        db.session.commit()
    assert report.months[0] == date(2025, 9, 1) and report.months[-1] == date(
        2026, 3, 1
    )
    return {"p1": p1, "p2": p2, "shops": shops}


def periods() -> dict[str, tuple[date, date]]:
    return {
        # Partial months at both ends of both periods (13 September to 14
        # December before it), whole months in between.
        "15 Dec - 20 Mar": (date(2025, 12, 15), date(2026, 3, 20)),
        # Whole months now; the previous period ends on a whole month.
        "Q1 2026": (date(2026, 1, 1), date(2026, 3, 31)),
        # January split 24 / 7 days (counted whole in the previous period).
        "25 Jan - 20 Mar": (date(2026, 1, 25), date(2026, 3, 20)),
        # Short: January split 9 / 22 days, most of February outside.
        "10 Jan - 5 Feb": (date(2026, 1, 10), date(2026, 2, 5)),
        # The month running now: narrow rows only.
        "this month": (date(2026, 4, 1), date(2026, 4, 14)),
    }


def filter_sets(history) -> dict[str, dict]:
    return {
        "none": {},
        "category": {"category": "delivery"},
        "province": {"region": "330000"},
        "city": {"region": "330100"},
        "county": {"region": "330106"},
        "platform": {"platform": history["p1"].id},
        "no platform": {"platform": q.NO_PLATFORM},
        "category and province": {"category": "delivery", "region": "440000"},
    }


def everything(filters: q.Filters) -> dict:
    """Return every number the page and the API compute for ``filters``."""
    out = {}
    for chart_id, chart in charts.build_all(filters).items():
        out[chart_id] = (chart.rows, chart.data)
    out["total"] = q.complaints_total(filters)
    for by in ("category", "province", "city", "district", "platform", "merchant"):
        out[f"complaints by {by}"] = q.complaints_by(filters, by)
    for by in (None, *q.SCOPED, "district", "status"):
        out[f"outcomes by {by}"] = q.outcomes(filters, by)
        out[f"satisfaction by {by}"] = {
            k: asdict(v) for k, v in q.satisfaction(filters, by).items()
        }
        out[f"sla by {by}"] = q.sla(filters, by)
    return out


def narrow_only() -> None:
    """Make every month unsummarized in this transaction (rolled back after)."""
    db.session.execute(db.update(StatsMonth).values(is_stale=True))


def test_summaries_give_the_numbers_of_the_narrow_tables(app, history):
    """Every number, for every filter the summaries answer (the others, and
    the month running now, read the narrow rows only)."""
    used = 0
    for period, (start, end) in periods().items():
        for name, kw in filter_sets(history).items():
            filters = q.Filters(start, end, **kw)
            if q.scope_of(filters) is None or period == "this month":
                continue
            with app.test_request_context("/?lang=en"):
                source = q.plan(filters, q.scope_of(filters))
                used += len(source.months)
                summarized = everything(filters)
                narrow_only()
                assert not q.plan(filters, q.scope_of(filters)).months
                narrow = everything(filters)
                db.session.rollback()
            for key in narrow:
                assert summarized[key] == narrow[key], (period, name, key)
    # The summaries did serve: unfiltered 15 Dec - 20 Mar counts September to
    # March from them, less the narrow rows of the days that are not in the
    # period they count in (fewer than reading the partial months' days).
    assert used > 20
    with app.app_context():
        filters = q.Filters(*periods()["15 Dec - 20 Mar"])
        source = q.plan(filters, q.scope_of(filters))
        assert source.months == (
            (date(2025, 9, 1), False),
            (date(2025, 10, 1), False),
            (date(2025, 11, 1), False),
            (date(2025, 12, 1), True),
            (date(2026, 1, 1), True),
            (date(2026, 2, 1), True),
            (date(2026, 3, 1), True),
        )
        assert source.ranges == (
            q.Days(date(2025, 9, 1), date(2025, 9, 9), counted=False, minus="previous"),
            q.Days(date(2025, 12, 1), date(2025, 12, 14), minus="current"),
            q.Days(
                date(2026, 3, 21), date(2026, 3, 31), counted=False, minus="current"
            ),
        )
        # A few days of a month: read directly.
        filters = q.Filters(*periods()["10 Jan - 5 Feb"])
        source = q.plan(filters, q.scope_of(filters))
        assert source.months == ((date(2025, 12, 1), False), (date(2026, 1, 1), True))
        assert source.ranges == (
            q.Days(
                date(2025, 12, 1), date(2025, 12, 13), counted=False, minus="previous"
            ),
            q.Days(date(2026, 1, 1), date(2026, 1, 9), minus="current"),
            q.Days(date(2026, 2, 1), date(2026, 2, 5)),
        )


def test_the_top_merchants_are_those_of_the_full_ordering(app, history):
    """The top of a period is found in the period alone, then the previous
    period is counted for it: the same list as ordering every group."""
    short = {"one day": (date(2026, 4, 14), date(2026, 4, 14))}
    with app.app_context():
        for period, (start, end) in {**periods(), **short}.items():
            for name, kw in filter_sets(history).items():
                filters = q.Filters(start, end, **kw)
                for by in ("merchant", "district", "status"):
                    everyone = q.complaints_by(filters, by)
                    for limit in (1, 3, 5, 100):
                        top = q.complaints_by(filters, by, limit=limit)
                        assert top == everyone[:limit], (period, name, by, limit)


def test_which_filters_the_summaries_answer(app):
    p1 = 7
    month = (date(2026, 1, 1), date(2026, 1, 31))
    with app.app_context():
        assert q.scope_of(q.Filters(*month)) == ("all", "")
        assert q.scope_of(q.Filters(*month, category="delivery")) == (
            "category",
            "delivery",
        )
        assert q.scope_of(q.Filters(*month, region="330000")) == ("province", "330000")
        assert q.scope_of(q.Filters(*month, platform=p1)) == ("platform", str(p1))
        assert q.scope_of(q.Filters(*month, platform=q.NO_PLATFORM)) == (
            "platform",
            "",
        )
        # A city, two dimensions, a merchant list: the narrow tables.
        assert q.scope_of(q.Filters(*month, region="330100")) is None
        assert q.scope_of(q.Filters(*month, category="delivery", platform=p1)) is None
        assert q.scope_of(q.Filters(*month, merchants=(1,))) is None
        # Grouped (the API): by the scope's own dimension only.
        assert q.scope_of(q.Filters(*month), "province") == ("province", None)
        assert q.scope_of(q.Filters(*month, region="330000"), "province") == (
            "province",
            "330000",
        )
        assert q.scope_of(q.Filters(*month, category="delivery"), "province") is None
        assert q.scope_of(q.Filters(*month), "status") is None


# Percentiles ----------------------------------------------------------------------


def test_percentiles_are_within_one_percent_of_the_exact_ones(app, history):
    filters = q.Filters(*periods()["15 Dec - 20 Mar"])
    with app.app_context():
        rows = {s.stage: s for s in q.sla(filters)[None]}
        for stage, row in rows.items():
            values = sorted(
                db.session.scalars(
                    db.select(StageSpan.active_seconds).where(
                        StageSpan.stage == stage,
                        StageSpan.ended_on.between(filters.date_from, filters.date_to),
                    )
                )
            )
            assert len(values) == row.ended > 50
            for estimate, p in ((row.median_seconds, 0.5), (row.p90_seconds, 0.9)):
                exact = q.percentile(values, p)
                assert abs(estimate - exact) <= stats_spans.PERCENTILE_ERROR * exact


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.integers(min_value=0, max_value=10**8), min_size=1),
    p=st.floats(min_value=0, max_value=1),
)
def test_a_histogram_percentile_is_within_one_percent(values, p):
    histogram: dict[int, int] = {}
    for value in values:
        bucket = stats_spans.time_bucket(value)
        assert stats_spans.bucket_floor(bucket) <= value
        assert value < stats_spans.bucket_floor(bucket + 1) or bucket == 0
        histogram[bucket] = histogram.get(bucket, 0) + 1
    exact = q.percentile(sorted(values), p)
    estimate = stats_spans.histogram_percentile(histogram, p)
    assert abs(estimate - exact) <= stats_spans.PERCENTILE_ERROR * exact + 1e-6


def test_buckets_are_two_percent_wide_and_exact_below_fifty_seconds():
    assert stats_spans.time_bucket(0) == 0 and stats_spans.bucket_value(0) == 0
    for seconds in range(1, 51):
        assert stats_spans.bucket_value(stats_spans.time_bucket(seconds)) == seconds
    bucket = stats_spans.time_bucket(86_400)
    low, high = stats_spans.bucket_floor(bucket), stats_spans.bucket_floor(bucket + 1)
    assert low <= 86_400 < high and 1.0 < high / low <= 1.0201
    assert stats_spans.histogram_percentile({}, 0.5) is None
    assert stats_spans.histogram_percentile({bucket: 3}, 0.9) == (low + high - 1) / 2


# Sealing, the job and the command -------------------------------------------------


def test_a_month_is_summarized_a_day_after_it_ended(app):
    def sealed(y, m, d, hour):
        return stats_summaries.last_sealed_month(
            datetime(y, m, d, hour, tzinfo=UTC) - TZ
        )

    with app.app_context():
        assert sealed(2026, 4, 1, 23) == date(2026, 2, 1)
        assert sealed(2026, 4, 2, 0) == date(2026, 3, 1)
        with pytest.raises(ValueError):
            stats_summaries.summarize_month(date(2026, 4, 1), now=NOW)


def test_the_job_derives_the_months_due_once(app, history):
    with app.app_context():
        assert summarize_months(now=NOW).months == []
        db.session.execute(
            db.update(StatsMonth)
            .where(StatsMonth.month == date(2026, 1, 1))
            .values(is_stale=True)
        )
        db.session.commit()
        report = summarize_months(now=NOW)
        assert (report.months, report.changed) == ([date(2026, 1, 1)], [])
        # A month later, April is due.
        later = summarize_months(now=NOW + timedelta(days=31))
        assert later.months == later.changed == [date(2026, 4, 1)]
        assert summarize_months(now=NOW + timedelta(days=31)).months == []


def test_the_job_has_a_stable_id_and_never_overlaps(app):
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        add_summary_job(scheduler, app)
        add_summary_job(scheduler, app)
        (job,) = scheduler.get_jobs()
        assert job.id == JOB_ID and job.max_instances == 1 and job.coalesce
        assert job.misfire_grace_time is None
    finally:
        scheduler.shutdown(wait=False)


def test_a_rederivation_repairs_tampered_summaries_and_writes_nothing_after(
    app, history
):
    with app.app_context():
        report = stats_summaries.summarize_due_months(now=NOW, every=True)
        assert (len(report.months), report.changed) == (7, [])
        january = (SpanMonth.month == date(2026, 1, 1)) & (SpanMonth.scope == "all")
        db.session.execute(db.update(SpanMonth).where(january).values(on_time=0))
        db.session.execute(
            db.delete(CaseMonth).where(
                CaseMonth.month == date(2025, 11, 1), CaseMonth.measure == "day"
            )
        )
        db.session.commit()
        report = stats_summaries.summarize_due_months(now=NOW, every=True)
        assert report.changed == [date(2025, 11, 1), date(2026, 1, 1)]
        db.session.commit()
    with app.test_request_context("/?lang=en"):
        filters = q.Filters(date(2025, 11, 1), date(2026, 1, 31))
        summarized = everything(filters)
        narrow_only()
        assert summarized == everything(filters)
        db.session.rollback()


# Late changes to a month that has ended -------------------------------------------


def act(app, case_id, action, who, relation, at, **payload):
    clock.freeze(at)
    with app.app_context():
        services.apply_action(
            db.session.get(Case, case_id),
            action,
            payload,
            actor=db.session.get(User, who.id) if who else None,
            relation=relation,
            now=at,
        )
        db.session.commit()


def by_month(app, month: date, **kw) -> dict:
    with app.test_request_context("/?lang=en"):
        return everything(q.Filters(month, summaries_last_day(month), **kw))


def summaries_last_day(month: date) -> date:
    return stats_summaries.last_day(month)


def stale(app, month: date) -> bool:
    with app.app_context():
        return db.session.get(StatsMonth, month).is_stale


def test_a_merchant_linked_after_the_month_moves_its_complaint_there(
    app, make_user, make_merchant, make_case
):
    consumer = make_user("consumer")
    regulator = make_user("regulator")
    shop = make_merchant(name="Shop T", region_code="110105")
    clock.freeze(utc(date(2026, 1, 20)))
    case_id = make_case(
        consumer, None, merchant_name="Shop T?", order_date=date(2026, 1, 10)
    )
    january = date(2026, 1, 1)
    feb_5 = utc(date(2026, 2, 5))
    with app.app_context():
        stats_summaries.summarize_month(january, now=feb_5)
        db.session.commit()
    assert stale(app, january) is False
    before = by_month(app, january)
    assert before["regions"][0][0][:2] == ["Unknown region", ""]
    act(
        app,
        case_id,
        "link_merchant",
        regulator,
        "regulator",
        feb_5,
        merchant_id=shop.id,
    )
    # The complaint of January now counts in Beijing: January is read from the
    # narrow rows until it is derived again.
    assert stale(app, january) is True
    after = by_month(app, january)
    assert after["regions"][0][0][:2] == ["北京市", "110000"]
    with app.app_context():
        assert summarize_months(now=feb_5).months == [january]
    assert stale(app, january) is False
    assert by_month(app, january) == after
    with app.app_context():
        beijing = q.Filters(january, summaries_last_day(january), region="110000")
        assert q.plan(beijing, q.scope_of(beijing)).months == ((january, True),)
        assert q.complaints_total(beijing).current == 1


def test_an_amended_category_moves_the_stage_that_ended_last_month(
    app, make_user, make_merchant, make_case
):
    consumer = make_user("consumer")
    platform = make_merchant(name="P", kind="platform", region_code="440305")
    shop = make_merchant(name="S", region_code="330106", platform_id=platform.id)
    clock.freeze(utc(date(2026, 1, 20)))
    case_id = make_case(consumer, shop, order_date=date(2026, 1, 10))
    # S stays silent: the sweep escalates to the platform in January.
    report = run_sweep(app, now=utc(date(2026, 1, 28)))
    assert report.steps and report.steps[0][1] == "expire"
    january = date(2026, 1, 1)
    feb_10 = utc(date(2026, 2, 10))
    with app.app_context():
        stats_summaries.summarize_month(january, now=feb_10)
        db.session.commit()
    quality = by_month(app, january, category="quality_defect")
    assert quality["sla"][0][0][:2] == ["Merchant's answer", 1]
    act(app, case_id, "amend", consumer, "consumer", feb_10, category="delivery")
    assert stale(app, january) is True
    assert by_month(app, january, category="quality_defect")["sla"][0] == []
    delivery = by_month(app, january, category="delivery")
    assert delivery["sla"][0][0][:2] == ["Merchant's answer", 1]
    with app.app_context():
        assert summarize_months(now=feb_10).changed == [january]
    assert by_month(app, january, category="delivery") == delivery
    # The live path leaves the month running now alone.
    with app.app_context():
        assert db.session.get(StatsMonth, date(2026, 2, 1)) is None


def test_a_case_derived_late_marks_the_months_it_adds_to(
    app, make_user, make_merchant, make_case
):
    consumer = make_user("consumer")
    staff_shop = make_merchant(name="S", region_code="330106")
    staff = make_user("merchant", merchant_id=staff_shop.id)
    clock.freeze(utc(date(2026, 1, 20)))
    case_id = make_case(consumer, staff_shop, order_date=date(2026, 1, 10))
    offer = {
        "type": "refund",
        "amount": 100,
        "deadline": date(2026, 3, 1),
        "text": "Refund.",
    }
    act(app, case_id, "offer", staff, "merchant", utc(date(2026, 1, 21)), **offer)
    january = date(2026, 1, 1)
    with app.app_context():
        # As if the case was older than the statistics.
        db.session.execute(db.delete(StageSpan))
        db.session.execute(db.delete(CaseStats))
        stats_summaries.summarize_month(january, now=utc(date(2026, 2, 3)))
        db.session.commit()
    assert by_month(app, january)["total"].current == 0
    act(app, case_id, "accept_offer", consumer, "consumer", utc(date(2026, 2, 3)))
    assert stale(app, january) is True
    derived = by_month(app, january)
    assert derived["total"].current == 1
    assert derived["sla"][0][0][:2] == ["Merchant's answer", 1]
    with app.app_context():
        summarize_months(now=utc(date(2026, 2, 3)))
    assert by_month(app, january) == derived


def test_the_live_path_never_writes_a_summary(app, make_user, make_merchant, make_case):
    """Filing, acting and sweeping touch no summary row: nothing hot to lock."""
    consumer = make_user("consumer")
    shop = make_merchant(name="S", region_code="330106")
    clock.freeze(utc(date(2026, 3, 2)))
    case_id = make_case(consumer, shop, order_date=date(2026, 3, 1))
    run_sweep(app, now=utc(date(2026, 3, 9)))
    act(
        app,
        case_id,
        "withdraw",
        consumer,
        "consumer",
        utc(date(2026, 3, 10)),
        reason="Sorted out.",
    )
    with app.app_context():
        for model in (StatsMonth, SpanMonth, CaseMonth):
            count = db.select(db.func.count()).select_from(model)
            assert db.session.scalar(count) == 0
        assert len(db.session.scalars(db.select(StageSpan)).all()) == 2


# PostgreSQL: a derivation and a late change at the same time --------------------

ON_POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


def _wait_for_a_lock_wait(app) -> None:
    """Return once another session waits for a row lock (or fail after 30 s)."""
    with app.app_context():
        for _ in range(600):
            waiting = db.session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
            db.session.rollback()
            if waiting:
                return
            threading.Event().wait(0.05)
    raise AssertionError("no session waited for the month's row")


def _late_change(month: date) -> None:
    """Move one span of ``month`` to another category and mark the month."""
    span = db.session.scalars(
        db.select(StageSpan)
        .where(StageSpan.ended_on.between(month, stats_summaries.last_day(month)))
        .order_by(StageSpan.id)
        .limit(1)
    ).one()
    span.category = "other"
    db.session.flush()
    stats_summaries.mark_stale([span.ended_on])


def _consistent(app, month: date) -> None:
    """The month is stale, or its summaries give the narrow rows' numbers."""
    with app.test_request_context("/?lang=en"):
        if db.session.get(StatsMonth, month).is_stale:
            return
        for category in ("other", None):
            filters = q.Filters(
                month, stats_summaries.last_day(month), category=category
            )
            assert q.plan(filters, q.scope_of(filters)).months
            summarized = everything(filters)
            narrow_only()
            assert summarized == everything(filters)
            db.session.rollback()


@pytest.mark.skipif(not ON_POSTGRES, reason="row locks: PostgreSQL")
def test_a_derivation_waits_for_a_late_change_in_progress(app, history):
    january = date(2026, 1, 1)
    errors: list[BaseException] = []

    def derive() -> None:
        try:
            with app.app_context():
                stats_summaries.summarize_month(january, now=NOW)
                db.session.commit()
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    with app.app_context():
        _late_change(january)  # not committed yet: holds January's row
        worker = threading.Thread(target=derive)
        worker.start()
        _wait_for_a_lock_wait(app)
        db.session.commit()
    worker.join()
    assert not errors
    # The derivation ran after the change committed: current and right.
    with app.app_context():
        assert db.session.get(StatsMonth, january).is_stale is False
    _consistent(app, january)


@pytest.mark.skipif(not ON_POSTGRES, reason="row locks: PostgreSQL")
def test_a_late_change_during_a_derivation_leaves_the_month_stale(app, history):
    january = date(2026, 1, 1)
    derived, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def derive() -> None:
        try:
            with app.app_context():
                stats_summaries.summarize_month(january, now=NOW)
                derived.set()
                release.wait(30)
                db.session.commit()
        except BaseException as error:
            errors.append(error)
            derived.set()

    def change() -> None:
        try:
            with app.app_context():
                _late_change(january)
                db.session.commit()
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=derive)
    worker.start()
    derived.wait(30)
    changer = threading.Thread(target=change)
    changer.start()
    _wait_for_a_lock_wait(app)  # the change waits for the derivation's row
    release.set()
    worker.join()
    changer.join()
    assert not errors
    # The derivation did not see the change: the month says so.
    with app.app_context():
        assert db.session.get(StatsMonth, january).is_stale is True
    _consistent(app, january)
