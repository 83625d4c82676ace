"""Benchmark of the supervision dashboard's queries on PostgreSQL (issue #7 item 8).

On a throwaway database holding ``--cases`` complaints (default 1,000,000) of
``--merchants`` merchants (default 100,000, of which ``--platforms`` are
platforms) spread over ``--months`` months up to today, it times every query of
the dashboard: each chart's builder (the function the page and the chart's CSV
call: :data:`mediation.analytics.dashboard_charts.CHARTS`), for the default
period (this month) and for the last 12 months, without and with typical
filters (a category, the province, the city and the platform with the most
complaints). Each is run ``--runs`` times after one warm-up; p50 and p95 are
reported. Aim: p95 under 300 ms per query. For information, the 12 months once
more with every month read from the narrow tables (what the page costs while
the summaries of a month are stale or not built yet).

Baselines in the same process, on the same data:

* ``trivial``: ``SELECT 1`` (a round trip; the floor of any query);
* ``base:*``: the complaints-per-category and per-province charts computed the
  way they would be without the summary tables: on the wide ``cases`` table
  (``filed_at`` range, joined to ``merchants`` for the region).

The generator writes the rows directly with ``COPY`` (users, merchants, cases,
and the two narrow statistics tables, consistent with each other: they say what
``rebuild-stats`` would derive for such cases; the timelines themselves are not
generated, nothing measured here reads them). Then ``VACUUM ANALYZE``, and the
monthly summaries of every month that has ended, derived the way production
derives them (:func:`mediation.analytics.stats_summaries.summarize_due_months`,
what the scheduled job and ``rebuild-stats`` run), timed; and the job's work
after a late change (one month derived again) is timed too.

Usage::

    python benchmarks/dashboard.py [--cases 1000000] [--merchants 100000]
                                   [--months 24] [--runs 20]
                                   [--database-url URL] [--keep-database]
    python benchmarks/dashboard.py --quick      # 20,000 cases, a quick check

The database (default ``bench_dashboard`` on 127.0.0.1:5432) is created through
the ``postgres`` database, built with ``flask --app mediation db upgrade`` and
dropped at the end; its name must start with ``bench``. Exit code 0 when the
run completed (whatever the verdict), 2 when it could not run.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``mediation`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.filing import (  # noqa: E402
    RESULTS_DIR,
    _load_average,
    create_database,
    database_version,
    drop_database,
    normalise_url,
    print_flush,
    server_env,
    upgrade_schema,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_dashboard"
AIM_P95_MS = 300.0
CONSUMERS = 5000
TZ = timedelta(hours=8)  # Asia/Shanghai has no daylight saving
log = print_flush
DESCRIPTION = (
    "The electric kettle I bought leaks from the base after two days; "
    "the shop's customer service stopped answering my messages."
)

CATEGORIES = {
    "quality_defect": 22,
    "delivery": 16,
    "refund_refused": 14,
    "false_advertising": 12,
    "after_sales": 10,
    "counterfeit": 8,
    "fake_promotion": 6,
    "unfair_terms": 4,
    "personal_info": 3,
    "fake_reviews": 2,
    "other": 3,
}
#: Provinces weighted roughly by online trade (the rest share what is left).
PROVINCE_WEIGHTS = {
    "44": 16,
    "33": 14,
    "32": 10,
    "31": 9,
    "11": 8,
    "37": 5,
    "35": 5,
    "51": 4,
    "42": 4,
    "41": 4,
}
#: Outcomes of closed cases and their shares, with the stages each went through.
_DIRECT = ["awaiting_merchant", "offer_pending", "fulfilment", "confirmation"]
_MEDIATED = ["awaiting_merchant", "mediation_pickup", "in_mediation"]
_PERFORMED = ["fulfilment", "confirmation"]
_ARBITRATED = [*_MEDIATED, "arbitration_pickup", "in_arbitration", *_PERFORMED]
OUTCOMES = [
    ("settled_directly", 45, _DIRECT),
    ("settled_in_mediation", 15, [*_MEDIATED, *_PERFORMED]),
    ("award_complied", 4, _ARBITRATED),
    ("closed_unresolved", 12, _MEDIATED),
    ("closed_noncompliant", 2, _DIRECT[:3]),
    ("withdrawn", 18, ["awaiting_merchant"]),
    ("rejected", 4, ["submitted"]),
]
STATUS_OF = {
    "settled_directly": "resolved",
    "settled_in_mediation": "resolved",
    "award_complied": "resolved",
}
#: Typical hours a stage takes, and its deadline (hours, for on-time).
STAGE_HOURS = {
    "submitted": (20, 60),
    "awaiting_merchant": (30, 84),
    "awaiting_platform": (20, 60),
    "offer_pending": (40, 130),
    "mediation_pickup": (10, 34),
    "in_mediation": (120, 330),
    "arbitration_pickup": (10, 34),
    "in_arbitration": (200, 500),
    "fulfilment": (60, 168),
    "confirmation": (40, 168),
}


# Generating -----------------------------------------------------------------------


class Generator:
    """Writes a consistent world with COPY, chunk by chunk."""

    def __init__(self, url: str, args: argparse.Namespace, today: date) -> None:
        import psycopg

        self.conn = psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://")
        )
        self.args = args
        self.today = today
        self.rng = random.Random(20261207)
        self.regions = _region_codes(self.rng)

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.conn.cursor() as cur:
            with cur.copy(
                "COPY users (id, email, password_hash, name, role, locale, created_at, "
                "is_active_account, categories, session_nonce) FROM STDIN"
            ) as copy:
                for i in range(1, CONSUMERS + 1):
                    copy.write_row(
                        (
                            i,
                            f"bench{i}@example.com",
                            "x",
                            f"Consumer {i}",
                            "consumer",
                            "zh_CN",
                            now,
                            True,
                            "[]",
                            "n",
                        )
                    )
        self.conn.commit()
        merchants = self._merchants(now)
        log(f"  {len(merchants['region']):,} merchants written")
        counts = self._cases(merchants)
        with self.conn.cursor() as cur:
            for table in (
                "users",
                "merchants",
                "cases",
                "stats_cases",
                "stats_stage_spans",
            ):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                    if table not in ("stats_cases",)
                    else "SELECT 1"
                )
        self.conn.commit()
        # As autovacuum leaves a table that has been written for a while: the
        # visibility map set (index-only scans) and fresh statistics.
        self.conn.autocommit = True
        self.conn.execute("VACUUM ANALYZE")
        counts["seconds"] = round(time.perf_counter() - started, 1)
        self.conn.close()
        return counts

    def _merchants(self, now: datetime) -> dict[str, list[Any]]:
        args, rng = self.args, self.rng
        region: list[str] = []
        platform_of: list[int | None] = []
        with (
            self.conn.cursor() as cur,
            cur.copy(
                "COPY merchants (id, name, uscc, kind, platform_id, region_code, "
                "arbitration_consent, created_at, updated_at) FROM STDIN"
            ) as copy,
        ):
            for i in range(1, args.merchants + 1):
                code = rng.choice(self.regions)
                if i <= args.platforms:
                    kind, platform = "platform", None
                else:
                    kind = "goods" if rng.random() < 0.85 else "service"
                    # Platforms by size: the first ones host most shops.
                    platform = (
                        1 + int(args.platforms * rng.random() ** 2.5)
                        if rng.random() < 0.8
                        else None
                    )
                region.append(code)
                platform_of.append(platform)
                copy.write_row(
                    (
                        i,
                        f"Merchant {i}",
                        f"BENCH{i:013d}",
                        kind,
                        platform,
                        code,
                        rng.random() < 0.5,
                        now,
                        now,
                    )
                )
        self.conn.commit()
        return {"region": region, "platform": platform_of}

    def _cases(self, merchants: dict[str, list[Any]]) -> dict[str, Any]:
        from mediation.analytics.stats_spans import time_bucket

        args, rng, today = self.args, self.rng, self.today
        first_day = today - timedelta(days=int(args.months * 30.44))
        span_days = (today - first_day).days
        # Complaints grow over time and cluster on a few merchants.
        shops = list(range(args.platforms + 1, args.merchants + 1))
        weights = [1.0 / (n + 1) ** 0.8 for n in range(len(shops))]
        rng.shuffle(shops)
        cumulative = []
        total = 0.0
        for weight in weights:
            total += weight
            cumulative.append(total)
        categories = list(CATEGORIES)
        category_weights = list(CATEGORIES.values())
        outcome_weights = [o[1] for o in OUTCOMES]
        written = {"cases": 0, "spans": 0}
        batch = 50_000
        case_id = 0
        # Filing times in order: ids grow with time, and the rows of a period lie
        # together on disk, as they do when cases are filed one after another.
        offsets = sorted(
            span_days * 86400 * rng.random() ** 0.8 for _ in range(args.cases)
        )
        origin = datetime(first_day.year, first_day.month, first_day.day) - TZ
        while case_id < args.cases:
            size = min(batch, args.cases - case_id)
            cases, facts, spans = [], [], []
            for _ in range(size):
                filed = origin + timedelta(seconds=int(offsets[case_id]))
                case_id += 1
                filed_on = (filed + TZ).date()
                draw = rng.random()
                if draw < 0.05:
                    merchant = None
                    platform = rng.randint(1, args.platforms)
                    region = merchants["region"][platform - 1]
                elif draw < 0.06:
                    merchant = platform = region = None
                else:
                    index = bisect.bisect_left(cumulative, rng.random() * total)
                    merchant = shops[min(index, len(shops) - 1)]
                    platform = merchants["platform"][merchant - 1]
                    region = merchants["region"][merchant - 1]
                category = rng.choices(categories, category_weights)[0]
                age = (today - filed_on).days
                closed = age > 3 and rng.random() < min(0.95, age / 40)
                if closed:
                    outcome, _share, stages = rng.choices(OUTCOMES, outcome_weights)[0]
                    status = STATUS_OF.get(outcome, outcome)
                else:
                    outcome, stages = (
                        None,
                        ["awaiting_merchant", "offer_pending"][: rng.randint(1, 2)],
                    )
                    status = stages[-1]
                if merchant is None and platform is None:
                    stages = ["submitted"] if closed else ["submitted"]
                    outcome, status = (
                        ("rejected", "rejected") if closed else (None, "submitted")
                    )
                elif merchant is None:
                    stages = [
                        "awaiting_platform" if s == "awaiting_merchant" else s
                        for s in stages
                    ]
                moment = filed
                case_spans = []
                for n, stage in enumerate(stages):
                    typical, deadline = STAGE_HOURS[stage]
                    hours = rng.expovariate(1 / typical)
                    ended = moment + timedelta(hours=hours)
                    if not closed and n == len(stages) - 1:
                        break  # the stage running now
                    if (ended + TZ).date() > today:
                        break
                    case_spans.append((stage, moment, ended, hours <= deadline))
                    moment = ended
                closed_at = moment if closed else None
                if closed and (moment + TZ).date() > today:
                    closed_at = None
                    outcome = None
                    status = stages[min(len(case_spans), len(stages) - 1)]
                closed_on = (closed_at + TZ).date() if closed_at else None
                paid = rng.choice((3990, 8800, 12900, 29900, 45900, 89900, 159900))
                recovered = paid if outcome in STATUS_OF else 0
                rated = closed_at is not None and rng.random() < 0.6
                score = (
                    rng.choices((1, 2, 3, 4, 5), (8, 10, 20, 32, 30))[0]
                    if rated
                    else None
                )
                rated_on = closed_on if rated else None
                city = region[:4] + "00" if region else None
                province = region[:2] + "0000" if region else None
                running = (
                    None
                    if closed_at
                    else (
                        stages[len(case_spans)]
                        if len(case_spans) < len(stages)
                        else None
                    )
                )
                mediated = outcome in (
                    "settled_in_mediation",
                    "award_complied",
                    "closed_unresolved",
                )
                cases.append(
                    (
                        case_id,
                        f"MC-{filed_on.year}-{case_id:07d}",
                        1 + case_id % CONSUMERS,
                        merchant,
                        f"Shop {merchant or 'unregistered'}",
                        platform,
                        category,
                        f"ORDER-{case_id}",
                        filed_on - timedelta(days=3),
                        paid,
                        "refund",
                        paid,
                        DESCRIPTION,
                        False,
                        status,
                        outcome,
                        1,
                        mediated,
                        score,
                        filed,
                        closed_at or moment,
                        closed_at,
                    )
                )
                facts.append(
                    (
                        case_id,
                        filed,
                        filed_on,
                        category,
                        merchant,
                        platform,
                        region,
                        city,
                        province,
                        status,
                        outcome,
                        closed_at,
                        closed_on,
                        recovered,
                        score,
                        rated_on,
                        running,
                        moment if running else None,
                        0,
                    )
                )
                for stage, start, end, on_time in case_spans:
                    seconds = int((end - start).total_seconds())
                    spans.append(
                        (
                            case_id,
                            stage,
                            start,
                            start + timedelta(hours=STAGE_HOURS[stage][1]),
                            end,
                            (end + TZ).date(),
                            seconds,
                            time_bucket(seconds),
                            on_time,
                            "offer",
                            "merchant",
                            category,
                            merchant,
                            platform,
                            region,
                            city,
                            province,
                        )
                    )
            self._copy(cases, facts, spans)
            written["cases"] += len(cases)
            written["spans"] += len(spans)
            log(f"  {written['cases']:,} cases, {written['spans']:,} spans written")
        return written

    def _copy(self, cases: list, facts: list, spans: list) -> None:
        with self.conn.cursor() as cur:
            with cur.copy(
                "COPY cases (id, reference, consumer_id, merchant_id, merchant_name, "
                "platform_id, category, order_ref, order_date, amount_paid, "
                "claim_type, claim_amount, description, arbitration_consent, "
                "status, outcome, version, was_mediated, satisfaction, filed_at, "
                "updated_at, closed_at) FROM STDIN"
            ) as copy:
                for row in cases:
                    copy.write_row(row)
            with cur.copy(
                "COPY stats_cases (case_id, filed_at, filed_on, category, merchant_id, "
                "platform_id, region_code, city_code, province_code, status, outcome, "
                "closed_at, closed_on, recovered, satisfaction, rated_on, stage, "
                "stage_started_at, stage_paused_seconds) FROM STDIN"
            ) as copy:
                for row in facts:
                    copy.write_row(row)
            with cur.copy(
                "COPY stats_stage_spans (case_id, stage, started_at, due_at, ended_at, "
                "ended_on, active_seconds, time_bucket, on_time, ended_by, ended_role, "
                "category, "
                "merchant_id, platform_id, region_code, city_code, province_code) "
                "FROM STDIN"
            ) as copy:
                for row in spans:
                    copy.write_row(row)
        self.conn.commit()


def _region_codes(rng: random.Random) -> list[str]:
    """Return county-level codes to draw from, weighted by province."""
    names = json.loads(
        (ROOT / "mediation" / "analytics" / "data" / "regions.json").read_text("utf-8")
    )
    counties = [c for c in names if not c.endswith("00")]
    out: list[str] = []
    for code in counties:
        out += [code] * PROVINCE_WEIGHTS.get(code[:2], 1)
    return out


# Measuring ------------------------------------------------------------------------


def make_app(url: str):
    os.environ.setdefault("SECRET_KEY", "bench-secret")
    from mediation import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench-secret",
            "LOG_LEVEL": "WARNING",
            "SCHEDULER_ENABLED": False,
        }
    )


def build_summaries(app) -> dict[str, Any]:
    """Derive the monthly summaries as the scheduled job does; time it."""
    from sqlalchemy import text

    from mediation.analytics import stats_summaries
    from mediation.extensions import db

    started = time.perf_counter()
    with app.app_context():
        report = stats_summaries.summarize_due_months(now=datetime.now(UTC))
        db.session.commit()
        seconds = time.perf_counter() - started
        rows = {
            table: db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("stats_span_months", "stats_case_months")
        }
        db.session.remove()
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM ANALYZE stats_span_months, stats_case_months"))
    return {
        "months": len(report.months),
        "seconds": round(seconds, 1),
        "seconds_per_month": round(seconds / max(1, len(report.months)), 2),
        "rows": rows,
    }


def time_rederivation(app, runs: int) -> dict[str, Any]:
    """Time the job's work after a late change: the latest month derived again
    (its summaries compared with the narrow rows and rewritten)."""
    from mediation.analytics import stats_summaries
    from mediation.analytics.stats_models import SpanMonth
    from mediation.extensions import db

    now = datetime.now(UTC)
    with app.app_context():
        month = stats_summaries.last_sealed_month(now)

        def run() -> None:
            stats_summaries.mark_stale([month])
            db.session.execute(
                db.update(SpanMonth).where(SpanMonth.month == month).values(on_time=0)
            )
            stats_summaries.summarize_month(month, now=now)
            db.session.rollback()

        timing = _time(run, runs)
        db.session.remove()
    return {"month": month.isoformat(), **timing}


def scenarios(app, today: date) -> list[tuple[str, Any]]:
    """Return (name, Filters) of the periods and filters measured: the province,
    the city and the platform with the most complaints (the worst cases)."""
    from sqlalchemy import text

    from mediation.analytics.stats_filters import preset_period
    from mediation.analytics.stats_queries import Filters
    from mediation.extensions import db

    month = preset_period("this_month", today)
    year = preset_period("last_12_months", today)

    def biggest(column: str) -> Any:
        return db.session.execute(
            text(
                f"SELECT {column} FROM stats_cases WHERE {column} IS NOT NULL "
                "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar()

    with app.app_context():
        platform = biggest("platform_id")
        province = biggest("province_code")
        city = biggest("city_code")
    out = []
    for label, period in (("this month", month), ("12 months", year)):
        out += [
            (label, Filters(*period)),
            (f"{label}, category", Filters(*period, category="quality_defect")),
            (f"{label}, province", Filters(*period, region=province)),
            (f"{label}, city", Filters(*period, region=city)),
            (f"{label}, biggest platform", Filters(*period, platform=platform)),
        ]
    return out


def _time(fn, runs: int) -> dict[str, Any]:
    fn()  # warm-up (plans, caches)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(_pct(samples, 50), 1),
        "p95_ms": round(_pct(samples, 95), 1),
        "max_ms": round(samples[-1], 1),
        "runs": runs,
    }


def _pct(values: list[float], p: float) -> float:
    rank = max(1, -(-len(values) * p // 100))
    return values[int(rank) - 1]


def _baselines(app, filters, runs: int) -> list[dict[str, Any]]:
    """The trivial query and the base-table version of two charts."""
    from sqlalchemy import text

    from mediation.extensions import db

    start = datetime.combine(filters.previous().date_from, datetime.min.time()) - TZ
    end = (
        datetime.combine(filters.date_to + timedelta(days=1), datetime.min.time()) - TZ
    )
    current = datetime.combine(filters.date_from, datetime.min.time()) - TZ
    params = {"start": start, "end": end, "current": current}
    queries = {
        "trivial: SELECT 1": "SELECT 1",
        "base: complaints by category on cases": (
            "SELECT category, count(*) FILTER (WHERE filed_at >= :current), "
            "count(*) FILTER (WHERE filed_at < :current) FROM cases "
            "WHERE filed_at >= :start AND filed_at < :end GROUP BY category"
        ),
        "base: complaints by province on cases + merchants": (
            "SELECT substr(coalesce(m.region_code, p.region_code), 1, 2), "
            "count(*) FILTER (WHERE c.filed_at >= :current), "
            "count(*) FILTER (WHERE c.filed_at < :current) FROM cases c "
            "LEFT JOIN merchants m ON m.id = c.merchant_id "
            "LEFT JOIN merchants p ON p.id = c.platform_id "
            "WHERE c.filed_at >= :start AND c.filed_at < :end GROUP BY 1"
        ),
    }
    out = []
    with app.app_context():
        for name, sql in queries.items():

            def run(sql=sql):
                db.session.execute(text(sql), params).all()
                db.session.rollback()

            out.append({"query": name, **_time(run, runs)})
    return out


def measure(app, today: date, runs: int) -> dict[str, Any]:
    from mediation.analytics import dashboard_charts as charts
    from mediation.analytics.stats_models import StatsMonth
    from mediation.extensions import db

    results: dict[str, Any] = {"scenarios": [], "baselines": {}}
    measured = scenarios(app, today)
    # For information: every month from the narrow rows (summaries stale).
    measured.append(("12 months, no summaries (fallback)", measured[5][1]))
    for name, filters in measured:
        rows = []
        fallback = name.endswith("(fallback)")
        times = max(3, runs // 4) if fallback else runs
        with app.test_request_context("/supervision/?lang=en"):
            for chart_id, (builder, _stem) in charts.CHARTS.items():

                def run(builder=builder, filters=filters, fallback=fallback):
                    if fallback:
                        db.session.execute(db.update(StatsMonth).values(is_stale=True))
                    builder(filters)
                    db.session.rollback()

                rows.append({"query": chart_id, **_time(run, times)})

            def page(filters=filters, fallback=fallback):
                if fallback:
                    db.session.execute(db.update(StatsMonth).values(is_stale=True))
                charts.build_all(filters)
                db.session.rollback()

            rows.append(
                {"query": "whole page (all charts)", **_time(page, max(3, runs // 4))}
            )
        results["scenarios"].append(
            {"name": name, "filters": _describe(filters), "rows": rows}
        )
        log(
            f"  {name}: "
            + ", ".join(f"{r['query']} p95 {r['p95_ms']} ms" for r in rows[:-1])
        )
        if name in ("this month", "12 months"):
            results["baselines"][name] = _baselines(app, filters, runs)
    return results


def _describe(filters) -> dict[str, Any]:
    return {
        "from": filters.date_from.isoformat(),
        "to": filters.date_to.isoformat(),
        "region": filters.region,
        "category": filters.category,
        "platform": filters.platform,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Data: {result['data']['cases']:,} cases, {result['data']['spans']:,} stage "
        f"spans, {result['args']['merchants']:,} merchants over "
        f"{result['args']['months']} months; {result['args']['runs']} runs per query "
        "after a warm-up. Milliseconds.",
        "",
        "| scenario | query | p50 | p95 | aim |",
        "|---|---|---:|---:|---|",
    ]
    for scenario in result["measure"]["scenarios"]:
        for row in scenario["rows"]:
            aim = (
                ""
                if row["query"].startswith("whole")
                else "info"
                if scenario["name"].endswith("(fallback)")
                else ("PASS" if row["p95_ms"] < AIM_P95_MS else "MISS")
            )
            lines.append(
                f"| {scenario['name']} | {row['query']} | {row['p50_ms']} | "
                f"{row['p95_ms']} | {aim} |"
            )
    lines += [
        "",
        "Baselines (same run):",
        "",
        "| period | query | p50 | p95 |",
        "|---|---|---:|---:|",
    ]
    for period, rows in result["measure"]["baselines"].items():
        for row in rows:
            lines.append(
                f"| {period} | {row['query']} | {row['p50_ms']} | {row['p95_ms']} |"
            )
    if "summaries" in result:
        built = result["summaries"]
        lines += [
            "",
            f"Monthly summaries derived from nothing: {built['months']} months in "
            f"{built['seconds']} s ({built['seconds_per_month']} s a month); rows: "
            + ", ".join(f"{t} {n:,}" for t, n in built["rows"].items())
            + ".",
        ]
    again = result.get("rederive_one_month")
    if again:
        lines.append(
            f"One month ({again['month']}) derived again after a change: p50 "
            f"{again['p50_ms']} ms, p95 {again['p95_ms']} ms."
        )
    machine = result["machine"]
    lines.append(
        f"Load average before: {machine['load_average_before']}; after: "
        f"{machine.get('load_average_after')}."
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=100_000)
    parser.add_argument("--platforms", type=int, default=20)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="measure an existing database"
    )
    parser.add_argument(
        "--quick", action="store_true", help="20,000 cases, 2,000 merchants"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.cases, args.merchants, args.runs = 20_000, 2_000, 5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = normalise_url(args.database_url)
    if not url.startswith("postgresql"):
        log("this benchmark needs PostgreSQL")
        return 2
    today = (datetime.now(UTC) + TZ).date()
    result: dict[str, Any] = {
        "args": vars(args),
        "machine": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(),
            "load_average_before": _load_average(),
            "database": database_version(url.rsplit("/", 1)[0] + "/postgres"),
        },
    }
    try:
        if not args.reuse:
            log(f"creating {url.rsplit('/', 1)[1]} and its schema")
            create_database(url)
            upgrade_schema(server_env(url, "/tmp"))
            log(f"generating {args.cases:,} cases")
            result["data"] = Generator(url, args, today).run()
            log(f"generated in {result['data']['seconds']} s")
        else:
            result["data"] = {"cases": args.cases, "spans": 0}
        app = make_app(url)
        if not args.reuse:
            log("deriving the monthly summaries")
            result["summaries"] = build_summaries(app)
            log(f"  {result['summaries']}")
        with app.app_context():
            from sqlalchemy import text

            from mediation.extensions import db

            result["data"]["spans"] = db.session.execute(
                text("SELECT count(*) FROM stats_stage_spans")
            ).scalar()
            result["data"]["cases"] = db.session.execute(
                text("SELECT count(*) FROM stats_cases")
            ).scalar()
            db.session.remove()
        log("measuring")
        result["measure"] = measure(app, today, args.runs)
        result["rederive_one_month"] = time_rederivation(app, max(3, args.runs // 4))
        log(f"  one month derived again: {result['rederive_one_month']}")
        with app.app_context():
            from mediation.extensions import db

            db.engine.dispose()
    finally:
        if not args.keep_database and not args.reuse:
            drop_database(url)
    result["machine"]["load_average_after"] = _load_average()
    text_ = markdown(result)
    print(text_)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"dashboard-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    log(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
