"""Benchmark of the risk list on PostgreSQL (issue #7, "Risk list").

On a throwaway database holding ``--merchants`` merchants (default 100,000) and
``--cases`` complaints (default 400,000) of the last 120 days, clustered on a
few merchants, with the credit facts the risk model reads (missed answer
deadlines, non-compliance, standings), fulfilment expiries on the timelines and
confirmed text tags, it times:

* ``refresh:first``: :func:`refresh_risk_scores` from an empty list (every row
  written), then ``refresh:again`` at the same moment (nothing changes: the
  scheduler's usual run);
* ``refresh:one``: :func:`refresh_merchant_risk` of the merchant at the top;
* ``list:*``: the list's query, one page of 20 with its count, as the page runs
  it: no filter, a region prefix, a category, a minimum score, page 100;
* ``page:*``: the regulator's pages over HTTP (test client, real templates):
  the list and a merchant's risk page (computed live with its cases).

Each timing but the refreshes runs ``--runs`` times after a warm-up; p50 and
p95 are reported, with ``SELECT 1`` as the floor. Aim: every list query and
page p95 under 300 ms; a full refresh well within the job's interval.

Usage::

    python benchmarks/risk.py [--merchants 100000] [--cases 400000] [--runs 20]
                              [--database-url URL] [--keep-database]
    python benchmarks/risk.py --quick          # 5,000 merchants, 20,000 cases

The database (default ``bench_risk`` on 127.0.0.1:5432) is created through the
``postgres`` database, built with ``flask db upgrade`` and dropped at the end;
its name must start with ``bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
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
    create_database,
    database_version,
    drop_database,
    normalise_url,
    print_flush,
    server_env,
    upgrade_schema,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_risk"
AIM_P95_MS = 300.0
CONSUMERS = 2000
PLATFORMS = 200
DAYS = 120
log = print_flush
CATEGORIES = {
    "quality_defect": 24,
    "delivery": 16,
    "refund_refused": 14,
    "false_advertising": 10,
    "after_sales": 10,
    "counterfeit": 8,
    "fake_promotion": 6,
    "unfair_terms": 4,
    "personal_info": 3,
    "fake_reviews": 2,
    "other": 3,
}
PROVINCES = ["11", "31", "32", "33", "35", "37", "42", "44", "51", "61"]
DESCRIPTION = "The kettle leaks from the base after two days of use."


def generate(url: str, args: argparse.Namespace, now: datetime) -> dict[str, int]:
    """Write the world with COPY; return the row counts."""
    import psycopg

    rng = random.Random(20261207)
    naive_now = now.replace(tzinfo=None)
    counts: dict[str, int] = {}
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    with conn.cursor() as cur:
        with cur.copy(
            "COPY users (id, email, password_hash, name, role, locale, created_at, "
            "is_active_account, categories, session_nonce) FROM STDIN"
        ) as copy:
            for i in range(1, CONSUMERS + 2):
                role = "regulator" if i == CONSUMERS + 1 else "consumer"
                copy.write_row(
                    (i, f"bench{i}@example.com", "x", f"User {i}", role, "en",
                     naive_now, True, "[]", "n")
                )  # fmt: skip
        regions = []
        with cur.copy(
            "COPY merchants (id, name, uscc, kind, platform_id, region_code, "
            "arbitration_consent, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(1, args.merchants + 1):
                region = (
                    rng.choice(PROVINCES)
                    + f"{rng.randrange(1, 20):02d}{rng.randrange(1, 12):02d}"
                )
                regions.append(region)
                platform = None
                kind = "platform" if i <= PLATFORMS else "goods"
                if kind == "goods" and rng.random() < 0.8:
                    platform = 1 + int(PLATFORMS * rng.random() ** 2)
                copy.write_row(
                    (i, f"Merchant {i}", f"BENCH{i:013d}", kind, platform, region,
                     False, naive_now, naive_now)
                )  # fmt: skip
        counts["merchants"] = args.merchants
        shops = list(range(PLATFORMS + 1, args.merchants + 1))
        weights = [1.0 / (n + 1) ** 0.7 for n in range(len(shops))]
        rng.shuffle(shops)
        picks = rng.choices(shops, weights=weights, k=args.cases)
        categories = rng.choices(
            list(CATEGORIES), weights=list(CATEGORIES.values()), k=args.cases
        )
        breaches: list[tuple] = []
        noncompliant: list[tuple] = []
        expiries: list[tuple] = []
        tags: list[tuple] = []
        with cur.copy(
            "COPY cases (id, reference, consumer_id, merchant_id, merchant_name, "
            "category, order_ref, order_date, amount_paid, claim_type, claim_amount, "
            "description, arbitration_consent, status, version, was_mediated, "
            "filed_at, updated_at) FROM STDIN"
        ) as copy:
            for n in range(args.cases):
                case_id = n + 1
                merchant = picks[n]
                filed = naive_now - timedelta(seconds=rng.randrange(DAYS * 86400))
                copy.write_row(
                    (case_id, f"MC-B-{case_id:08d}", 1 + n % CONSUMERS, merchant,
                     f"Merchant {merchant}", categories[n], f"O{case_id}",
                     (filed - timedelta(days=3)).date(), 9900, "refund", 9900,
                     DESCRIPTION, False, "resolved", 1, False, filed, filed)
                )  # fmt: skip
                roll = rng.random()
                if roll < 0.05:
                    breaches.append((merchant, case_id, filed + timedelta(days=4)))
                elif roll < 0.053:
                    noncompliant.append((merchant, case_id, filed + timedelta(days=20)))
                elif roll < 0.063:
                    expiries.append((case_id, filed + timedelta(days=12)))
                elif roll < 0.068:
                    tags.append((case_id, "fake_reviews"))
        counts["cases"] = args.cases
        with cur.copy(
            "COPY credit_events (merchant_id, case_id, kind, points, occurred_at, "
            "data, lists, created_at) FROM STDIN"
        ) as copy:
            for merchant, case_id, at in breaches:
                copy.write_row(
                    (merchant, case_id, "no_response", -5, at, "{}", False, at)
                )
            for merchant, case_id, at in noncompliant:
                copy.write_row(
                    (merchant, case_id, "not_fulfilled", -20, at, "{}", True, at)
                )
        counts["credit_events"] = len(breaches) + len(noncompliant)
        standing: dict[int, tuple[int, bool]] = {}
        for merchant, _c, _a in breaches:
            score, listed = standing.get(merchant, (1000, False))
            standing[merchant] = (score - 50, listed)
        for merchant, _c, _a in noncompliant:
            score, _listed = standing.get(merchant, (1000, False))
            standing[merchant] = (score - 200, True)
        with cur.copy(
            "COPY credit_standings (merchant_id, score_tenths, grade, listed, "
            "trusted, updated_at) FROM STDIN"
        ) as copy:
            for merchant, (score, listed) in standing.items():
                grade = (
                    "D"
                    if listed or score < 600
                    else ("C" if score < 750 else ("B" if score < 900 else "A"))
                )
                copy.write_row((merchant, score, grade, listed, False, naive_now))
        counts["credit_standings"] = len(standing)
        with cur.copy(
            "COPY case_events (case_id, seq, at, actor_role, action, from_status, "
            "to_status, data, hash) FROM STDIN"
        ) as copy:
            for case_id, at in expiries:
                copy.write_row(
                    (case_id, 1, at, "system", "expire", "settled", "in_mediation",
                     json.dumps({"stage": "fulfilment", "late_party": "merchant"}),
                     "0" * 64)
                )  # fmt: skip
        counts["expiries"] = len(expiries)
        with cur.copy(
            "COPY case_tags (case_id, category, confirmed_by_id, confirmed_at) "
            "FROM STDIN"
        ) as copy:
            for case_id, category in tags:
                copy.write_row((case_id, category, CONSUMERS + 1, naive_now))
        counts["case_tags"] = len(tags)
        for table in ("users", "merchants", "cases", "credit_events", "case_events"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
    conn.commit()
    conn.autocommit = True
    conn.execute("ANALYZE")
    conn.close()
    return counts


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1)}


def timed(fn, runs: int) -> dict[str, float]:
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def measure(url: str, args: argparse.Namespace, now: datetime) -> list[dict]:
    os.environ.update(server_env(url, str(ROOT / "instance" / "bench-evidence")))
    from mediation import clock, create_app
    from mediation.analytics import risk
    from mediation.analytics.risk_models import RiskScore
    from mediation.extensions import db

    clock.freeze(now)
    app = create_app({"WTF_CSRF_ENABLED": False, "TESTING": True})
    rows: list[dict] = []

    def add(name: str, result: dict[str, Any]) -> None:
        row = {"name": name, **result}
        rows.append(row)
        log(f"  {name:<24} " + ", ".join(f"{k} {v}" for k, v in result.items()))

    with app.app_context():
        add(
            "trivial", timed(lambda: db.session.execute(db.text("SELECT 1")), args.runs)
        )
        for name in ("refresh:first", "refresh:again"):
            started = time.perf_counter()
            report = risk.refresh_risk_scores(now=now)
            db.session.commit()
            add(
                name,
                {
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "scored": report.scored,
                    "written": report.changed,
                },
            )
        top = db.session.scalar(
            db.select(RiskScore.merchant_id).order_by(RiskScore.score_tenths.desc())
        )

        def one() -> None:
            risk.refresh_merchant_risk(top, now=now)
            db.session.commit()

        add("refresh:one", timed(one, args.runs))
        filters = {
            "list:all": risk.RiskFilters(),
            "list:region": risk.RiskFilters(region="3301"),
            "list:category": risk.RiskFilters(category="counterfeit"),
            "list:min_score": risk.RiskFilters(min_score=30),
        }
        for name, chosen in filters.items():
            add(
                name,
                timed(lambda chosen=chosen: risk.risk_page(chosen, 1, 20), args.runs),
            )
        add(
            "list:page_100",
            timed(lambda: risk.risk_page(risk.RiskFilters(), 100, 20), args.runs),
        )
    client = app.test_client()
    with app.app_context():
        from mediation.auth.models import User

        regulator = db.session.scalar(db.select(User).where(User.role == "regulator"))
    with client.session_transaction() as session:
        session["_user_id"] = regulator.get_id()
        session["_fresh"] = True
    for name, path in (
        ("page:list", "/supervision/risk"),
        ("page:list_filtered", "/supervision/risk?region=33&min_score=10"),
        ("page:merchant", f"/supervision/risk/merchants/{top}"),
    ):

        def get(path=path) -> None:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)

        add(name, timed(get, args.runs))
    clock.unfreeze()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--merchants", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=400_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.merchants, args.cases, args.runs = 5000, 20_000, 5
    url = normalise_url(args.database_url)
    now = datetime.now(UTC).replace(microsecond=0)
    log(f"risk benchmark: {args.merchants:,} merchants, {args.cases:,} cases")
    create_database(url)
    try:
        upgrade_schema(server_env(url, str(ROOT / "instance" / "bench-evidence")))
        started = time.perf_counter()
        counts = generate(url, args, now)
        log(f"  generated in {time.perf_counter() - started:.1f} s: {counts}")
        rows = measure(url, args, now)
        verdict = all(
            r["p95"] < AIM_P95_MS
            for r in rows
            if r["name"].startswith(("list:", "page:"))
        )
        log("aim (list and page p95 < 300 ms): " + ("met" if verdict else "missed"))
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"risk-{date.today().isoformat()}.json"
        out.write_text(
            json.dumps(
                {
                    "database": database_version(url),
                    "counts": counts,
                    "runs": args.runs,
                    "rows": rows,
                    "aim_met": verdict,
                    "load": os.getloadavg(),
                },
                indent=2,
            )
        )
        log(f"results: {out.relative_to(ROOT)}")
    finally:
        if not args.keep_database:
            drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
