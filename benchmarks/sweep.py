"""Benchmark of the SLA sweep on PostgreSQL (issue #3 item 9).

On a throwaway database holding ``--cases`` open cases (default 200,000), of which
``--overdue`` (default 20,000) are past their deadline, it measures:

(a) **escalation throughput**: ``run_sweep`` as the app runs it, once with the
    default ``batch_size=200`` and once with ``--big-batch`` (1000), each on the
    same overdue cases (reset in between); escalations per second with their
    events and notifications, SQL statements per escalation, and a check that
    every overdue case got exactly one ``expire`` event and no other case any;
(b) **the empty sweep**: ``--empty-sweeps`` sweeps (default 20) when no case is
    due among all the open ones: median, p99 and max in ms;
(c) **lateness**: ``--late-cases`` (default 500) cases whose deadlines fall over
    the next ``--late-spread`` seconds (default 20, real wall clock) while the
    real APScheduler job (:mod:`mediation.sla.scheduler`) runs with
    ``SWEEP_INTERVAL_SECONDS=1``; per case, the ``expire`` event's time minus
    ``due_at``: p50, p99, max, how many early (< 0) and how many escalated twice.

Aims: (a) at least 5,000 escalations a second; (c) p99 lateness under 2 s at a
1-second interval, never early, never twice. (b) has no aim; it is the price of
every sweep on a quiet system.

Usage::

    python benchmarks/sweep.py [--cases 200000] [--overdue 20000]
                               [--database-url URL] [--keep-database]

The database (default ``bench_sweep`` on 127.0.0.1:5432) is created through the
``postgres`` database, built with ``flask --app mediation db upgrade`` and dropped
at the end; its name must start with ``bench``. Cases are loaded with Core
multi-row INSERTs (one consumer, one merchant with one staff account, no
platform, no events): the minimum the sweep reads. Exit code 0 when the run
completed and the correctness checks held (whatever the speed verdict), 1 when a
check failed, 2 when it could not run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``mediation`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.filing import (  # noqa: E402
    RESULTS_DIR,
    _check_bench_name,
    _load_average,
    _run,
    create_database,
    drop_database,
    machine_info,
    normalise_url,
    percentile,
    print_flush,
    seed,
    server_env,
    upgrade_schema,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_sweep"
MIN_ESCALATIONS_PER_S = 5000.0
MAX_LATENESS_P99_S = 2.0
INSERT_BATCH = 10_000
log = print_flush


# Setup ---------------------------------------------------------------------


def make_app(url: str):
    """Return the app as the scheduler process builds it, on ``url``."""
    from mediation import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench-secret",
            "LOG_LEVEL": "WARNING",
            "MAIL_SERVER": None,
            "REDIS_URL": None,
            "SCHEDULER_ENABLED": False,
            "SWEEP_INTERVAL_SECONDS": 1,
        }
    )


def case_rows(
    n: int, *, consumer_id: int, merchant_id: int, due_at, start: int, now: datetime
) -> list[dict[str, Any]]:
    """Return ``n`` bare open cases awaiting the merchant (Core INSERT rows)."""
    rows = []
    for i in range(start, start + n):
        rows.append(
            {
                "consumer_id": consumer_id,
                "merchant_id": merchant_id,
                "merchant_name": "Bench Appliances Flagship Store",
                "category": "quality_defect",
                "order_ref": f"SW{i:09d}",
                "order_date": date(2026, 10, 1),
                "amount_paid": 19900,
                "claim_type": "refund",
                "claim_amount": 19900,
                "description": "The kettle leaks from the base after a week.",
                "status": "awaiting_merchant",
                "due_at": due_at(i),
                "filed_at": now - timedelta(days=5),
                "updated_at": now - timedelta(days=5),
                "version": 1,
                "arbitration_consent": False,
                "was_mediated": False,
            }
        )
    return rows


def load_cases(app, cases: int, overdue: int, now: datetime) -> dict[str, Any]:
    """Insert the open cases (the overdue ones first, ids 1..overdue); ANALYZE."""
    from mediation.auth.models import User
    from mediation.cases.models import Case
    from mediation.extensions import db

    started = time.perf_counter()
    with app.app_context():
        consumer_id = db.session.scalar(
            db.select(User.id).where(User.email == "consumer0@bench.example.com")
        )
        merchant_id = db.session.scalar(
            db.select(User.merchant_id).where(User.email == "staff@bench.example.com")
        )
        table = Case.__table__

        def due(i: int) -> datetime:
            if i < overdue:  # 1 minute to ~3 days late
                return now - timedelta(seconds=60 + (i * 7) % 259_200)
            return now + timedelta(days=1 + i % 10, seconds=i % 86_400)

        with db.engine.begin() as conn:
            for start in range(0, cases, INSERT_BATCH):
                n = min(INSERT_BATCH, cases - start)
                conn.execute(
                    table.insert(),
                    case_rows(
                        n,
                        consumer_id=consumer_id,
                        merchant_id=merchant_id,
                        due_at=due,
                        start=start,
                        now=now,
                    ),
                )
        overdue_ids = list(
            db.session.scalars(
                db.select(Case.id).where(Case.due_at <= now).order_by(Case.id)
            )
        )
        db.session.rollback()
        analyze(app)
    seconds = time.perf_counter() - started
    return {
        "consumer_id": consumer_id,
        "merchant_id": merchant_id,
        "overdue_ids": overdue_ids,
        "load_seconds": round(seconds, 1),
    }


def analyze(app) -> None:
    """VACUUM ANALYZE the tables the sweep reads and writes (outside a transaction)."""
    from mediation.extensions import db

    with app.app_context():
        with db.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as conn:
            conn.exec_driver_sql("VACUUM ANALYZE cases, case_events, notifications")


def reset_overdue(app, overdue_ids: list[int], now: datetime) -> None:
    """Put the escalated cases back as they were loaded (overdue, no events)."""
    from mediation.extensions import db

    with app.app_context():
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "DELETE FROM notifications WHERE case_id = ANY(%(ids)s)",
                {"ids": overdue_ids},
            )
            conn.exec_driver_sql(
                "DELETE FROM case_events WHERE case_id = ANY(%(ids)s)",
                {"ids": overdue_ids},
            )
            conn.exec_driver_sql(
                "UPDATE cases SET status = 'awaiting_merchant', was_mediated = false, "
                "remind_at = NULL, reminded_at = NULL, mediator_id = NULL, "
                "platform_escalated_at = NULL, updated_at = filed_at, "
                "due_at = %(due)s - (60 + id %% 259200) * interval '1 second' "
                "WHERE id = ANY(%(ids)s)",
                {"ids": overdue_ids, "due": now.replace(tzinfo=None)},
            )
    analyze(app)


# Statement counting ---------------------------------------------------------


class StatementCounter:
    """Count the SQL statements sent through the app's engine."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.count = 0
        self.by_verb: dict[str, int] = {}
        self._engine = engine
        event.listen(engine, "before_cursor_execute", self._on)

    def _on(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        verb = statement.lstrip().split(None, 1)[0].upper()
        self.by_verb[verb] = self.by_verb.get(verb, 0) + 1

    def reset(self) -> None:
        self.count = 0
        self.by_verb = {}

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self._engine, "before_cursor_execute", self._on)


def pending_mail(app) -> int:
    from mediation.extensions import db

    with app.app_context():
        n = db.session.execute(
            db.text("SELECT count(*) FROM notifications WHERE email_status='pending'")
        ).scalar_one()
        db.session.rollback()
        return n


def drain_mail(app, timeout: float = 180.0) -> float:
    """Wait until no notification is left pending (the outbox sent them all)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if pending_mail(app) == 0:
            break
        time.sleep(0.5)
    return round(time.perf_counter() - started, 1)


# (a) Escalation throughput ---------------------------------------------------


def measure_escalation(
    app, overdue_ids: list[int], batch_size: int, *, profile: bool = False
) -> dict[str, Any]:
    """Run sweeps at batch ``batch_size`` until nothing is due; check the events."""
    from mediation import clock
    from mediation.extensions import db
    from mediation.sla.sweep import run_sweep

    with app.app_context():
        engine = db.engine
    counter = StatementCounter(engine)
    profiler = cProfile.Profile() if profile else None
    sweeps, steps, failed, skipped = 0, 0, 0, 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    try:
        while True:
            if profiler:
                profiler.enable()
            report = run_sweep(app, now=clock.now_utc(), batch_size=batch_size)
            if profiler:
                profiler.disable()
            sweeps += 1
            steps += len(report.steps)
            failed += len(report.failed)
            skipped += len(report.skipped)
            if not report.steps or sweeps >= 10:
                break
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        statements = counter.count
        by_verb = dict(counter.by_verb)
    finally:
        counter.close()
    check = check_events(app, overdue_ids)
    out = {
        "batch_size": batch_size,
        "sweeps": sweeps,
        "escalations": steps,
        "failed": failed,
        "skipped": skipped,
        "seconds": round(seconds, 2),
        "per_second": round(steps / seconds, 1) if seconds else 0.0,
        "ms_per_escalation": round(seconds * 1000 / steps, 2) if steps else None,
        "client_cpu_ms_per_escalation": round(cpu * 1000 / steps, 2) if steps else None,
        "statements": statements,
        "statements_per_escalation": round(statements / steps, 2) if steps else None,
        "statements_by_verb": by_verb,
        **check,
    }
    if profiler:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(35)
        out["profile"] = buf.getvalue()
    return out


def check_events(app, overdue_ids: list[int]) -> dict[str, Any]:
    """Each overdue case exactly one expire event; no event on any other case."""
    from mediation.extensions import db

    with app.app_context():
        rows = db.session.execute(
            db.text(
                "SELECT case_id, count(*) FILTER (WHERE action = 'expire'), count(*) "
                "FROM case_events GROUP BY case_id"
            )
        ).all()
        db.session.rollback()
    wanted = set(overdue_ids)
    expire = {cid: n for cid, n, _ in rows}
    return {
        "cases_with_one_expire": sum(1 for cid in wanted if expire.get(cid) == 1),
        "cases_missing_expire": sum(1 for cid in wanted if not expire.get(cid)),
        "cases_expired_twice": sum(1 for n in expire.values() if n > 1),
        "events_on_other_cases": sum(
            total for cid, _, total in rows if cid not in wanted
        ),
    }


# (b) Empty sweep ---------------------------------------------------------------


def measure_empty(app, sweeps: int) -> dict[str, Any]:
    """Time ``sweeps`` sweeps that find nothing to do."""
    from mediation import clock
    from mediation.extensions import db
    from mediation.sla.sweep import run_sweep

    with app.app_context():
        open_cases = db.session.execute(
            db.text(
                "SELECT count(*) FROM cases WHERE closed_at IS NULL "
                "AND status NOT IN ('resolved', 'closed_unresolved', 'rejected')"
            )
        ).scalar_one()
        db.session.rollback()
        engine = db.engine
    counter = StatementCounter(engine)
    times = []
    busy = 0
    try:
        run_sweep(app, now=clock.now_utc())  # warm-up (connection, plans)
        counter.reset()
        for _ in range(sweeps):
            started = time.perf_counter()
            report = run_sweep(app, now=clock.now_utc())
            times.append((time.perf_counter() - started) * 1000)
            busy += len(report.steps) + len(report.reminded)
        statements = counter.count
    finally:
        counter.close()
    times.sort()
    return {
        "open_cases": open_cases,
        "sweeps": sweeps,
        "work_done": busy,
        "median_ms": round(statistics.median(times), 1),
        "p99_ms": percentile(times, 99),
        "max_ms": round(max(times), 1),
        "statements_per_sweep": round(statements / sweeps, 1),
    }


# (c) Lateness under the real scheduler ------------------------------------------


def measure_lateness(
    app, ctx: dict[str, Any], n: int, spread: float, lead: float
) -> dict[str, Any]:
    """Deadlines over the next ``spread`` s; the real job at a 1 s interval."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from mediation import clock
    from mediation.cases.models import Case
    from mediation.extensions import db
    from mediation.sla.scheduler import add_sweep_job, interval_seconds

    now = clock.now_utc()
    first = now + timedelta(seconds=lead)
    offset = 10_000_000  # order_refs apart from the loaded cases

    def due(i: int) -> datetime:
        return first + timedelta(seconds=spread * (i - offset) / max(1, n - 1))

    with app.app_context():
        with db.engine.begin() as conn:
            rows = case_rows(
                n,
                consumer_id=ctx["consumer_id"],
                merchant_id=ctx["merchant_id"],
                due_at=due,
                start=offset,
                now=now,
            )
            ids = list(
                conn.execute(
                    Case.__table__.insert().returning(Case.__table__.c.id), rows
                ).scalars()
            )
    inserted = time.perf_counter()
    scheduler = BackgroundScheduler(timezone=UTC, daemon=True)
    add_sweep_job(scheduler, app)
    scheduler.start()
    deadline_wall = first + timedelta(seconds=spread + 15)
    try:
        while clock.now_utc() < deadline_wall:
            time.sleep(0.5)
            if clock.now_utc() > first + timedelta(seconds=spread) and _all_expired(
                app, ids
            ):
                break
    finally:
        scheduler.shutdown(wait=True)
    with app.app_context():
        rows = db.session.execute(
            db.text(
                "SELECT c.id, c.due_at, e.at FROM cases c LEFT JOIN case_events e "
                "ON e.case_id = c.id AND e.action = 'expire' "
                "WHERE c.id = ANY(:ids) ORDER BY c.id"
            ).bindparams(ids=ids)
        ).all()
        db.session.rollback()
    per_case: dict[int, list[float]] = {}
    due_by_id = {cid: due(offset + k) for k, cid in enumerate(ids)}
    for cid, _due_now, at in rows:
        per_case.setdefault(cid, [])
        if at is not None:
            late = (at.replace(tzinfo=UTC) - due_by_id[cid]).total_seconds()
            per_case[cid].append(late)
    lateness = sorted(v[0] for v in per_case.values() if v)
    return {
        "cases": n,
        "spread_s": spread,
        "interval_s": interval_seconds(app),
        "escalated": len(lateness),
        "not_escalated": sum(1 for v in per_case.values() if not v),
        "escalated_twice": sum(1 for v in per_case.values() if len(v) > 1),
        "early": sum(1 for x in lateness if x < 0),
        "p50_s": _round(percentile_raw(lateness, 50)),
        "p99_s": _round(percentile_raw(lateness, 99)),
        "max_s": _round(lateness[-1] if lateness else None),
        "min_s": _round(lateness[0] if lateness else None),
        "insert_to_end_s": round(time.perf_counter() - inserted, 1),
    }


def _all_expired(app, ids: list[int]) -> bool:
    from mediation.extensions import db

    with app.app_context():
        left = db.session.execute(
            db.text(
                "SELECT count(*) FROM cases WHERE id = ANY(:ids) "
                "AND status = 'awaiting_merchant'"
            ).bindparams(ids=ids)
        ).scalar_one()
        db.session.rollback()
    return left == 0


def percentile_raw(values: list[float], p: float) -> float | None:
    if not values:
        return None
    rank = max(1, -(-len(values) * p // 100))
    return values[int(rank) - 1]


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


# Report ----------------------------------------------------------------------


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    best = max(r["per_second"] for r in result["escalation"])
    late = result["lateness"]
    checks_ok = all(
        r["cases_missing_expire"] == 0
        and r["cases_expired_twice"] == 0
        and r["events_on_other_cases"] == 0
        and r["failed"] == 0
        for r in result["escalation"]
    )
    return {
        "best_escalations_per_s": best,
        "throughput_ok": best >= MIN_ESCALATIONS_PER_S,
        "lateness_p99_ok": late["p99_s"] is not None
        and late["p99_s"] < MAX_LATENESS_P99_S
        and late["not_escalated"] == 0,
        "never_early": late["early"] == 0,
        "never_twice": late["escalated_twice"] == 0,
        "escalation_checks_ok": checks_ok,
    }


def mark(ok: bool, bold: str = "") -> str:
    return f"{bold}{'PASS' if ok else 'MISS'}{bold}"


def tables(result: dict[str, Any]) -> str:
    lines = [
        "| (a) escalation, batch size | escalations | sweeps | wall s | escalations/s "
        "| ms/escalation | client CPU ms/escalation | SQL statements/escalation "
        "| one expire each | twice | missing | events elsewhere |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["escalation"]:
        lines.append(
            f"| {r['batch_size']} | {r['escalations']} | {r['sweeps']} "
            f"| {r['seconds']} "
            f"| {r['per_second']:.0f} | {r['ms_per_escalation']} "
            f"| {r['client_cpu_ms_per_escalation']} "
            f"| {r['statements_per_escalation']} | {r['cases_with_one_expire']} "
            f"| {r['cases_expired_twice']} | {r['cases_missing_expire']} "
            f"| {r['events_on_other_cases']} |"
        )
    e = result["empty"]
    lines += [
        "",
        "| (b) empty sweep | open cases | sweeps | median ms | p99 ms | max ms "
        "| SQL statements/sweep |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| nothing due | {e['open_cases']} | {e['sweeps']} | {e['median_ms']} "
        f"| {e['p99_ms']} | {e['max_ms']} | {e['statements_per_sweep']} |",
    ]
    c = result["lateness"]
    lines += [
        "",
        "| (c) lateness, real scheduler | cases | deadlines over | interval "
        "| escalated | p50 s | p99 s | max s | min s | early | twice | not escalated |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| expire event `at` - `due_at` | {c['cases']} | {c['spread_s']:.0f} s "
        f"| {c['interval_s']} s | {c['escalated']} | {c['p50_s']} | {c['p99_s']} "
        f"| {c['max_s']} | {c['min_s']} | {c['early']} | {c['escalated_twice']} "
        f"| {c['not_escalated']} |",
    ]
    return "\n".join(lines)


def verdict_lines(result: dict[str, Any], bold: str = "") -> list[str]:
    v = result["verdict"]
    c = result["lateness"]
    return [
        f"- Escalations per second (best batch size): {bold}"
        f"{v['best_escalations_per_s']:.0f}{bold} (aim >= "
        f"{MIN_ESCALATIONS_PER_S:.0f}): {mark(v['throughput_ok'], bold)}",
        f"- Lateness p99 at a {c['interval_s']} s interval: {bold}{c['p99_s']} s{bold} "
        f"(aim < {MAX_LATENESS_P99_S:.0f} s): {mark(v['lateness_p99_ok'], bold)}",
        f"- Never early: {c['early']} early: {mark(v['never_early'], bold)}",
        f"- Never twice: {c['escalated_twice']} twice: {mark(v['never_twice'], bold)}",
        f"- (a) every overdue case exactly one expire event, none elsewhere, none "
        f"failed: {mark(v['escalation_checks_ok'], bold)}",
    ]


def markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    return "\n".join(
        [
            f"Run of {m['date']}: {s['cases']} open cases, {s['overdue']} overdue.",
            "",
            f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory']}",
            f"- OS: {m['os']}; Python {m['python']}; {m['database']}",
            f"- Load average before the run (1, 5, 15 min): "
            f"{m['load_average_before']} (other work on the machine)",
            "",
            tables(result),
            "",
            *verdict_lines(result, bold="**"),
        ]
    )


# Main --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200_000, help="open cases")
    parser.add_argument(
        "--overdue", type=int, default=20_000, help="of which past their deadline"
    )
    parser.add_argument(
        "--big-batch",
        type=int,
        default=1000,
        help="second batch size for (a), after the default 200 (0: skip)",
    )
    parser.add_argument("--empty-sweeps", type=int, default=20)
    parser.add_argument("--late-cases", type=int, default=500)
    parser.add_argument("--late-spread", type=float, default=20.0)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the batch-200 sweep of (a) (slows it; for diagnosis)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args(argv)
    if not 0 < args.overdue <= args.cases:
        parser.error("need 0 < --overdue <= --cases")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = normalise_url(args.database_url)
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() != "postgresql":
        raise RuntimeError("the sweep benchmark runs on PostgreSQL only")
    _check_bench_name(make_url(url).database or "")
    load_before = _load_average()
    total_started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    env = server_env(url, str(workdir / "evidence"))
    env.pop("BENCHMARK_ENDPOINTS", None)
    os.environ["EVIDENCE_DIR"] = str(workdir / "evidence")
    log(f"database {url}")
    create_database(url)
    try:
        upgrade_schema(env)
        seed(url, 1)
        app = make_app(url)
        from mediation import clock

        now = clock.now_utc()
        ctx = load_cases(app, args.cases, args.overdue, now)
        overdue_ids = ctx["overdue_ids"]
        log(
            f"loaded {args.cases} cases ({len(overdue_ids)} overdue) in "
            f"{ctx['load_seconds']} s"
        )
        escalation = []
        sizes = [200] + ([args.big_batch] if args.big_batch else [])
        for k, size in enumerate(sizes):
            if k:
                reset_overdue(app, overdue_ids, clock.now_utc())
            r = measure_escalation(
                app, overdue_ids, size, profile=args.profile and size == 200
            )
            r["mail_drain_s"] = drain_mail(app)
            escalation.append(r)
            log(
                f"(a) batch {size}: {r['escalations']} escalations in {r['seconds']} s "
                f"= {r['per_second']:.0f}/s, {r['statements_per_escalation']} "
                f"statements each {r['statements_by_verb']}; mail drained in "
                f"{r['mail_drain_s']} s more"
            )
            if "profile" in r:
                log(r["profile"])
        analyze(app)
        empty = measure_empty(app, args.empty_sweeps)
        log(f"(b) empty sweep: {empty}")
        lateness = measure_lateness(app, ctx, args.late_cases, args.late_spread, 3.0)
        log(f"(c) lateness: {lateness}")
        machine = machine_info(url, ["-"], load_before)
        machine.pop("gunicorn", None)
        with app.app_context():
            from mediation.extensions import db

            db.engine.dispose()
    finally:
        if not args.keep_database:
            drop_database(url)
    result = {
        "benchmark": "sweep",
        "settings": {
            "cases": args.cases,
            "overdue": args.overdue,
            "batch_sizes": sizes,
            "empty_sweeps": args.empty_sweeps,
            "late_cases": args.late_cases,
            "late_spread_s": args.late_spread,
            "database_url": url,
        },
        "machine": machine,
        "load_seconds": ctx["load_seconds"],
        "escalation": [
            {k: v for k, v in r.items() if k != "profile"} for r in escalation
        ],
        "empty": empty,
        "lateness": lateness,
        "total_seconds": round(time.perf_counter() - total_started, 1),
    }
    result["verdict"] = verdict(result)
    log("")
    log(tables(result))
    log("")
    for line in verdict_lines(result):
        log(line)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"sweep-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    total = result["total_seconds"]
    log(f"\nresults written to {out.relative_to(ROOT)} (total {total} s)")
    log("\n--- Markdown for BENCHMARKS.md ---\n")
    log(markdown(result))
    v = result["verdict"]
    ok = v["escalation_checks_ok"] and v["never_early"] and v["never_twice"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_run(main))
