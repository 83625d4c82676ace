"""Benchmark of the credit records on PostgreSQL (issue #6 item 9).

On a throwaway database holding ``--merchants`` merchants (default 100,000, of
which ``--platforms`` are platforms) and ``--cases`` complaint histories (default
900,000, which give about 1,000,000 ledger events), it measures:

(a) ``flask recompute-credit`` (:func:`mediation.credit.ledger.recompute`, the
    set-based path of :mod:`mediation.credit.bulk`) for everything: once from an
    empty ledger (every event and standing written) and once over the consistent
    ledger it built (nothing to write). Aim: under 30 s. The baseline in the same
    run is the per-case path (``sync_case`` per case, ``refresh_standing`` per
    merchant: what ``recompute`` did before) timed on a sample and extrapolated;
(b) refreshing every standing from the existing ledger
    (:func:`mediation.credit.bulk.refresh_standings`), against
    ``refresh_standing`` per merchant on a sample, extrapolated;
(c) the public credit page ``/credit/merchants/<id>`` (and the API
    ``/api/v1/merchants/<id>/credit``) under load from ``--concurrency`` clients
    in gunicorn, against ``/health`` under the same load: p50/p90/p99.

Correctness checks (exit code 1 when one fails): the recompute over a
consistent ledger writes nothing and appends no feed row; the per-case path on a
sample of cases and merchants finds nothing to change in what the bulk path
wrote; the ledger holds the events the seeded histories were built to give,
kind by kind; every page request answers 200.

Usage::

    python benchmarks/credit.py [--merchants 100000] [--cases 900000]
                                [--requests 2000] [--concurrency 8]
                                [--profile] [--database-url URL] [--keep-database]

The database (default ``bench_credit`` on 127.0.0.1:5432) is created through the
``postgres`` database, built with ``flask --app mediation db upgrade`` and
dropped at the end; its name must start with ``bench``. Users, merchants, cases
and their timelines are loaded with Core multi-row INSERTs. Exit code 0 when the
run completed and the checks held (whatever the speed verdict), 1 when a check
failed, 2 when it could not run.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import http.client
import io
import json
import os
import pstats
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``mediation`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.filing import (  # noqa: E402
    HOST,
    RESULTS_DIR,
    CpuProbe,
    _check_bench_name,
    _load_average,
    _run,
    create_database,
    drop_database,
    machine_info,
    normalise_url,
    percentile,
    print_flush,
    running_server,
    server_env,
    upgrade_schema,
)
from benchmarks.sweep import StatementCounter  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_credit"
AIM_SECONDS = 30.0
INSERT_CASES = 2000  # cases (and their events) per INSERT batch
CONSUMERS = 20_000
MEDIATORS = 40
ARBITRATORS = 15
#: The timeline's hash chain is not verified by anything measured here: the
#: seeded events carry placeholder hashes (64 hex characters, not a chain).
PLACEHOLDER_HASH = "0" * 64
log = print_flush


# Seeding ----------------------------------------------------------------------

#: Histories and their shares (percent). Each gives, by construction, the
#: credit events in ``expected`` (checked against the ledger after the run).
SCENARIOS = [
    ("direct", 20),  # offer, accepted, performed, confirmed: resolved directly
    ("silent", 20),  # the merchant never answers (then the platform, if any)
    ("late", 10),  # the shop answers after its deadline, on the platform's turn
    ("mediation_failed", 15),  # mediation ends after the merchant declines
    ("award", 10),  # arbitration: award granted / partly / rejected
    ("not_fulfilled", 4),  # award not performed (reported or deadline passed)
    ("settled_in_mediation", 8),  # 1 in 5 then not performed
    ("withdrawn", 5),
    ("consumer_declines", 3),  # the consumer declines the proposal
    ("open", 5),  # filed in the last days, waiting for the merchant
]
DESCRIPTION = (
    "The electric kettle I bought leaks from the base after two days of use; "
    "the shop's customer service stopped answering my messages."
)
COMMENTS = [
    "Quick refund, thank you.",
    "Took a while but was resolved.",
    "The shop only answered after the platform stepped in.",
    "Not happy with how long it took.",
    None,
]


class Timeline:
    """Builds one case's events (the columns ``derive`` reads, and the rest)."""

    def __init__(self, rng: random.Random, case_id: int, start: datetime) -> None:
        self.rng = rng
        self.case_id = case_id
        self.t = start
        self.status: str | None = None
        self.rows: list[dict[str, Any]] = []
        self.mediated = False
        self.answered_at: datetime | None = None
        self.escalated_at: datetime | None = None
        self.closed_at: datetime | None = None

    def add(
        self,
        role: str,
        action: str,
        to: str,
        data: dict[str, Any] | None = None,
        *,
        hours: tuple[int, int] = (1, 30),
        actor: int | None = None,
    ) -> None:
        self.t += timedelta(minutes=self.rng.randint(hours[0] * 60, hours[1] * 60))
        seq = len(self.rows) + 1
        self.rows.append(
            {
                "case_id": self.case_id,
                "seq": seq,
                "at": self.t,
                "actor_id": actor,
                "actor_role": role,
                "action": action,
                "from_status": self.status,
                "to_status": to,
                "data": data or {},
                "prev_hash": None if seq == 1 else PLACEHOLDER_HASH,
                "hash": PLACEHOLDER_HASH,
            }
        )
        if to == "in_mediation":
            self.mediated = True
        if to == "awaiting_platform" and self.escalated_at is None:
            self.escalated_at = self.t
        if to in ("resolved", "closed_unresolved", "closed_noncompliant", "withdrawn"):
            self.closed_at = self.t
        self.status = to

    def due(self, days: int) -> str:
        return (self.t + timedelta(days=days)).isoformat()


class Seeder:
    """Generates merchants, cases and timelines deterministically."""

    def __init__(self, merchants: int, platforms: int, now: datetime) -> None:
        self.rng = random.Random(20261122)
        self.now = now
        self.merchants = merchants
        step = max(1, merchants // platforms) if platforms else 0
        self.platform_ids = (
            [i for i in range(step, merchants + 1, step)][:platforms] if step else []
        )
        platform_set = set(self.platform_ids)
        self.kind: dict[int, str] = {}
        self.platform_of: dict[int, int | None] = {}
        for m in range(1, merchants + 1):
            if m in platform_set:
                self.kind[m], self.platform_of[m] = "platform", None
                continue
            self.kind[m] = "goods" if m % 5 else "service"
            on_platform = self.platform_ids and self.rng.random() < 0.6
            self.platform_of[m] = (
                self.rng.choice(self.platform_ids) if on_platform else None
            )
        self.expected: collections.Counter[str] = collections.Counter()
        self.scenarios: collections.Counter[str] = collections.Counter()
        self.events = 0
        self.rated = 0
        names, weights = zip(*SCENARIOS, strict=True)
        self._names, self._weights = list(names), list(weights)

    # Rows -------------------------------------------------------------------

    def merchant_rows(self) -> list[dict[str, Any]]:
        from mediation.merchants.uscc import check_character

        rows = []
        for m in range(1, self.merchants + 1):
            body = f"91330106{m:09d}"
            kind = self.kind[m]
            rows.append(
                {
                    "id": m,
                    "name": (
                        f"Bench Mall {m}" if kind == "platform" else f"Bench Shop {m}"
                    ),
                    "uscc": body + check_character(body),
                    "kind": kind,
                    "platform_id": self.platform_of[m],
                    "region_code": "330106",
                    "arbitration_consent": m % 3 == 0,
                    "created_at": self.now - timedelta(days=1500),
                    "updated_at": self.now - timedelta(days=1500),
                }
            )
        return rows

    def cases(
        self, first_id: int, n: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Return ``n`` cases from id ``first_id`` on, and their events."""
        case_rows, event_rows = [], []
        for case_id in range(first_id, first_id + n):
            case, events = self.case(case_id)
            case_rows.append(case)
            event_rows.extend(events)
        self.events += len(event_rows)
        return case_rows, event_rows

    def case(self, case_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        rng = self.rng
        scenario = rng.choices(self._names, self._weights)[0]
        self.scenarios[scenario] += 1
        if self.platform_ids and rng.random() < 0.03:
            merchant_id, platform_id = None, rng.choice(self.platform_ids)
        else:  # a long tail: a few merchants have thousands of cases
            merchant_id = 1 + int(self.merchants * rng.random() ** 2)
            merchant_id = min(merchant_id, self.merchants)
            platform_id = self.platform_of[merchant_id]
        if scenario == "open":
            start = self.now - timedelta(hours=rng.randint(2, 96))
        else:  # closed histories over 40 months: full, half and no weight
            start = self.now - timedelta(minutes=rng.randint(100 * 1440, 1220 * 1440))
        tl = Timeline(rng, case_id, start)
        consumer = rng.randint(1, CONSUMERS)
        mediator = CONSUMERS + rng.randint(1, MEDIATORS)
        arbitrator = CONSUMERS + MEDIATORS + rng.randint(1, ARBITRATORS)
        consent = scenario in ("award", "not_fulfilled") or rng.random() < 0.3
        side = merchant_id or platform_id
        # Who answers for the merchant side at first: the shop, or the platform
        # for an unregistered shop.
        first = "merchant" if merchant_id else "platform"
        expected: list[str] = []
        case = {
            "id": case_id,
            "reference": f"MC-{start.year}-{case_id:06d}",
            "consumer_id": consumer,
            "merchant_id": merchant_id,
            "merchant_name": f"Bench Shop {merchant_id}"
            if merchant_id
            else f"Street Stall {case_id}",
            "platform_id": platform_id,
            "category": rng.choice(
                ["quality_defect", "non_delivery", "misrepresentation", "refund"]
            ),
            "order_ref": f"ORD{case_id:09d}",
            "order_date": (start - timedelta(days=rng.randint(3, 30))).date(),
            "amount_paid": rng.randint(10, 5000) * 100,
            "claim_type": "refund",
            "claim_amount": 0,
            "description": DESCRIPTION,
            "arbitration_consent": consent,
            "version": 1,
            "mediator_id": None,
            "arbitrator_id": None,
            "outcome": None,
            "satisfaction": None,
            "satisfaction_comment": None,
            "due_at": None,
            "fulfilment_marked_at": None,
        }
        case["claim_amount"] = case["amount_paid"]
        tl.add(
            "consumer",
            "file",
            "submitted",
            {
                "merchant_id": merchant_id,
                "merchant_name": case["merchant_name"],
                "platform_id": platform_id,
                "arbitration_consent": consent,
                "category": case["category"],
                "order_ref": case["order_ref"],
                "order_date": case["order_date"].isoformat(),
                "amount_paid": case["amount_paid"],
                "claim_type": "refund",
                "claim_amount": case["claim_amount"],
                "description": DESCRIPTION,
            },
            hours=(0, 0),
            actor=consumer,
        )
        tl.add(
            "system",
            "route",
            "awaiting_merchant" if merchant_id else "awaiting_platform",
            {"merchant_id": merchant_id, "platform_id": platform_id},
            hours=(0, 0),
        )

        def offer(role: str) -> None:
            tl.add(
                role,
                "offer",
                "offer_pending",
                {
                    "offer_id": case_id,
                    "type": "refund",
                    "amount": case["claim_amount"],
                    "deadline": tl.due(10)[:10],
                    "text": "We refund the full amount.",
                },
            )
            tl.answered_at = tl.answered_at or tl.t

        def perform(role: str, *, closing: str = "resolved") -> None:
            tl.add(role, "mark_fulfilled", tl.status, {}, hours=(24, 120))
            case["fulfilment_marked_at"] = tl.t
            tl.add("consumer", "confirm_fulfilment", closing, {}, hours=(2, 72))

        def settle_directly(role: str) -> None:
            offer(role)
            tl.add("consumer", "accept_offer", "settled", {"offer_id": case_id})
            perform(role)
            case["outcome"] = "settled_directly"

        def silence(stage: str, to: str, party: str) -> None:
            tl.add(
                "system",
                "remind",
                stage,
                {"stage": stage, "due_at": tl.due(1), "party": party, "user_ids": []},
                hours=(48, 72),
            )
            tl.add(
                "system",
                "expire",
                to,
                {"stage": stage, "due_at": tl.t.isoformat(), "late_party": party},
                hours=(20, 28),
            )

        def mediate(decider: str | None, *, result: str = "closed_unresolved") -> None:
            """Mediation; ``decider`` declines the proposal (None: nobody acts)."""
            tl.add(
                "system",
                "auto_assign",
                "in_mediation",
                {"user_id": mediator, "stage": "in_mediation"},
            )
            case["mediator_id"] = mediator
            tl.add(
                "mediator",
                "propose",
                "in_mediation",
                {"offer_id": case_id, "type": "refund", "amount": 5000},
                hours=(24, 96),
                actor=mediator,
            )
            tl.add(
                "consumer",
                "accept_proposal",
                "in_mediation",
                {"offer_id": case_id, "party": "consumer"},
                actor=consumer,
            )
            if decider is None:
                silence("in_mediation", result, "mediator")
                return
            tl.add(
                decider,
                "decline_proposal",
                "in_mediation",
                {
                    "offer_id": case_id,
                    "party": "merchant" if decider != "consumer" else "consumer",
                    "reason": "Too much.",
                },
            )
            tl.add(
                "mediator",
                "end_mediation",
                result,
                {"result": "failed", "reason": "No agreement."},
                actor=mediator,
            )

        def reject(role: str) -> None:
            tl.add(role, "reject", "in_mediation", {"reason": "Not our fault."})
            tl.answered_at = tl.answered_at or tl.t

        def arbitrate(decision: str) -> None:
            tl.add(
                "arbitrator",
                "take",
                "in_arbitration",
                {"user_id": arbitrator},
                actor=arbitrator,
            )
            case["arbitrator_id"] = arbitrator
            if rng.random() < 0.3:
                tl.add(
                    "arbitrator",
                    "request_info",
                    "in_arbitration",
                    {"parties": ["merchant"], "text": "Send the invoice."},
                    actor=arbitrator,
                )
                tl.add(first, "answer_info", "in_arbitration", {"text": "Attached."})
            tl.add(
                "arbitrator",
                "issue_award",
                "awarded",
                {
                    "award_id": case_id,
                    "version": 1,
                    "sha256": f"{rng.getrandbits(256):064x}",
                    "decision": decision,
                    "orders": [] if decision == "rejected" else [{"type": "refund"}],
                },
                hours=(120, 480),
                actor=arbitrator,
            )

        def noncompliance(kind: str) -> dict[str, Any]:
            return {"merchant_id": side, "kind": kind, "award_id": case_id}

        if scenario == "direct" or (
            scenario == "late" and not (merchant_id and platform_id)
        ):
            settle_directly(first)
            expected.append("resolved_directly")
        elif scenario == "silent":
            stage = "awaiting_merchant" if merchant_id else "awaiting_platform"
            if merchant_id and platform_id:
                silence(stage, "awaiting_platform", "merchant")
                expected.append("no_response")
                if rng.random() < 0.5:  # the platform steps in and settles
                    settle_directly("platform")
                    expected.append("escalation_resolved")
                else:
                    silence("awaiting_platform", "in_mediation", "platform")
                    expected.append("escalation_unanswered")
                    mediate(None)
            else:
                silence(
                    stage, "in_mediation", "merchant" if merchant_id else "platform"
                )
                expected.append("no_response")
                mediate(None)
        elif scenario == "late":  # a shop on a platform answers on the platform's turn
            silence("awaiting_merchant", "awaiting_platform", "merchant")
            expected.append("late_response")
            if rng.random() < 0.5:
                settle_directly("merchant")
                expected.append("resolved_directly")
            else:
                reject("merchant")
                mediate("consumer")
        elif scenario == "mediation_failed":
            reject(first)
            mediate(first)
            expected.append("mediation_failed")
        elif scenario in ("award", "not_fulfilled"):
            reject(first)
            mediate(first, result="in_arbitration")
            expected.append("mediation_failed")
            if scenario == "award":
                decision = rng.choices(
                    ["granted", "partly_granted", "rejected"], [40, 40, 20]
                )[0]
            else:
                decision = rng.choice(["granted", "partly_granted"])
            arbitrate(decision)
            if decision != "rejected":
                expected.append("award_against")
            if scenario == "award" and decision != "rejected":
                perform(first)
                case["outcome"] = "award_complied"
            elif scenario == "not_fulfilled":
                fact = noncompliance("award_not_performed")
                if rng.random() < 0.6:
                    tl.add(
                        "consumer",
                        "report_unfulfilled",
                        "closed_noncompliant",
                        {"text": "Nothing was refunded.", "noncompliance": fact},
                        hours=(240, 720),
                        actor=consumer,
                    )
                else:
                    tl.add(
                        "system",
                        "expire",
                        "closed_noncompliant",
                        {
                            "stage": "awarded",
                            "late_party": "merchant",
                            "noncompliance": fact,
                        },
                        hours=(240, 720),
                    )
                expected.append("not_fulfilled")
        elif scenario == "settled_in_mediation":
            reject(first)
            mediate_ok = {"offer_id": case_id, "party": "merchant"}
            tl.add(
                "system",
                "auto_assign",
                "in_mediation",
                {"user_id": mediator, "stage": "in_mediation"},
            )
            case["mediator_id"] = mediator
            tl.add("mediator", "propose", "in_mediation", {"offer_id": case_id})
            tl.add("consumer", "accept_proposal", "in_mediation", {"party": "consumer"})
            tl.add(first, "accept_proposal", "settled", mediate_ok)
            if rng.random() < 0.2:
                tl.add(
                    "consumer",
                    "report_unfulfilled",
                    "closed_noncompliant",
                    {
                        "text": "Never paid.",
                        "noncompliance": noncompliance("settlement_not_performed"),
                    },
                    hours=(240, 480),
                )
                expected.append("not_fulfilled")
            else:
                perform(first)
                case["outcome"] = "settled_in_mediation"
        elif scenario == "withdrawn":
            tl.add("consumer", "withdraw", "withdrawn", {"reason": "Sorted out."})
        elif scenario == "consumer_declines":
            reject(first)
            mediate("consumer")
        # "open": filed and routed, nothing more yet.
        if scenario == "open":
            case["due_at"] = tl.t + timedelta(days=5)
        case.update(
            status=tl.status,
            filed_at=start,
            updated_at=tl.t,
            closed_at=tl.closed_at,
            was_mediated=tl.mediated,
            answered_at=tl.answered_at,
            platform_escalated_at=tl.escalated_at,
        )
        if tl.closed_at is not None:
            case["outcome"] = case["outcome"] or tl.status
            if tl.status == "resolved" and rng.random() < 0.35:
                score = rng.choices([5, 4, 3, 2, 1], [45, 30, 12, 8, 5])[0]
                comment = rng.choice(COMMENTS)
                tl.add(
                    "consumer",
                    "rate",
                    "resolved",
                    {"score": score, "comment": comment},
                    actor=consumer,
                )
                case["satisfaction"] = score
                case["satisfaction_comment"] = comment
                case["updated_at"] = tl.t
                self.rated += 1
        self.expected.update(expected)
        return case, tl.rows


def seed(url: str, args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """Load users, merchants, cases and timelines with Core INSERTs; ANALYZE."""
    from sqlalchemy import create_engine, text

    from mediation.auth.models import User
    from mediation.cases.models import Case, CaseEvent
    from mediation.merchants.models import Merchant

    started = time.perf_counter()
    seeder = Seeder(args.merchants, args.platforms, now)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            users = [
                {
                    "id": i,
                    "email": f"consumer{i}@bench.example.com",
                    "password_hash": "!",  # nobody logs in
                    "name": f"Bench Consumer {i}",
                    "role": "consumer",
                    "locale": "zh_CN",
                    "is_active_account": True,
                    "categories": [],
                    "session_nonce": f"{i:016x}",
                    "created_at": now - timedelta(days=1500),
                }
                for i in range(1, CONSUMERS + 1)
            ]
            for i in range(CONSUMERS + 1, CONSUMERS + MEDIATORS + ARBITRATORS + 1):
                role = "mediator" if i <= CONSUMERS + MEDIATORS else "arbitrator"
                users.append(
                    users[0]
                    | {
                        "id": i,
                        "email": f"{role}{i}@bench.example.com",
                        "name": f"Bench {role.title()} {i}",
                        "role": role,
                        "session_nonce": f"{i:016x}",
                    }
                )
            conn.execute(User.__table__.insert(), users)
            # Platforms first: shops refer to them.
            rows = sorted(seeder.merchant_rows(), key=lambda r: r["kind"] != "platform")
            for start in range(0, len(rows), 10_000):
                conn.execute(Merchant.__table__.insert(), rows[start : start + 10_000])
        log(f"seeded {len(users)} users and {args.merchants} merchants")
        done = 0
        next_report = 100_000
        while done < args.cases:
            n = min(INSERT_CASES, args.cases - done)
            cases, events = seeder.cases(done + 1, n)
            with engine.begin() as conn:
                conn.execute(Case.__table__.insert(), cases)
                conn.execute(CaseEvent.__table__.insert(), events)
            done += n
            if done >= next_report:
                log(
                    f"  {done} cases, {seeder.events} events "
                    f"({time.perf_counter() - started:.0f} s)"
                )
                next_report += 100_000
        with engine.begin() as conn:
            for table in ("users", "merchants", "cases"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    finally:
        engine.dispose()
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "users": CONSUMERS + MEDIATORS + ARBITRATORS,
        "merchants": args.merchants,
        "platforms": len(seeder.platform_ids),
        "shops_on_platforms": sum(1 for p in seeder.platform_of.values() if p),
        "cases": args.cases,
        "case_events": seeder.events,
        "rated_cases": seeder.rated,
        "scenarios": dict(seeder.scenarios),
        "expected_ledger": dict(seeder.expected),
        "expected_ledger_total": sum(seeder.expected.values()),
    }


# Measuring ------------------------------------------------------------------


def make_app(url: str):
    from mediation import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench-secret",
            "LOG_LEVEL": "WARNING",
            "MAIL_SERVER": None,
            "REDIS_URL": None,
            "SCHEDULER_ENABLED": False,
        }
    )


class Breakdown:
    """Wall time and CPU time of its thread per part of the bulk path (timing
    wrappers; for the profile). The reads run in a reader thread, overlapping
    the rest: their wall time is not part of the main thread's."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self.cpu: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self._undo: list[Callable[[], None]] = []

    def _wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        seconds, cpu, calls = self.seconds, self.cpu, self.calls
        clock, thread_clock = time.perf_counter, time.thread_time

        def timed(*args: Any, **kwargs: Any) -> Any:
            began, began_cpu = clock(), thread_clock()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] += clock() - began
                cpu[label] += thread_clock() - began_cpu
                calls[label] += 1

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def _wrap_generator(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        seconds, cpu, calls = self.seconds, self.cpu, self.calls
        clock, thread_clock = time.perf_counter, time.thread_time

        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            iterator = original(*args, **kwargs)
            while True:
                began, began_cpu = clock(), thread_clock()
                try:
                    item = next(iterator)
                except StopIteration:
                    seconds[label] += clock() - began
                    cpu[label] += thread_clock() - began_cpu
                    return
                seconds[label] += clock() - began
                cpu[label] += thread_clock() - began_cpu
                calls[label] += 1
                yield item

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        from mediation.credit import bulk, ledger
        from mediation.credit import model as credit_model

        self._wrap(bulk, "_timelines", "ledger: read timelines")
        self._wrap(bulk, "_ledger_rows", "ledger: read ledger rows")
        self._wrap(ledger, "derive", "ledger: derive (the rules)")
        self._wrap(bulk._LedgerWriter, "insert", "ledger: write, new rows (COPY)")
        self._wrap(bulk._LedgerWriter, "flush", "ledger: write, end of COPY, others")
        self._wrap(bulk, "_merchant_kinds", "ledger: read merchant norms")
        self._wrap(bulk, "_standing_inputs", "standings: read ratings, standings")
        self._wrap_generator(bulk, "_stream_ledger", "standings: stream ledger")
        self._wrap(credit_model, "standing", "standings: model.standing (the rules)")
        self._wrap(bulk, "_upsert_standings", "standings: upsert")
        self._wrap(bulk, "_cases", "ledger: read cases")
        self._wrap(bulk, "_append_changes", "standings: feed rows (ORM) and listeners")
        try:
            yield
        finally:
            while self._undo:
                self._undo.pop()()


def measure_recompute(
    app, database: str, label: str, *, breakdown: bool = False, profile: bool = False
) -> dict[str, Any]:
    """Run ``ledger.recompute`` for everything, commit; time it."""
    from mediation import clock
    from mediation.credit import ledger
    from mediation.extensions import db

    parts = Breakdown() if breakdown else None
    profiler = cProfile.Profile() if profile else None
    probe = CpuProbe(-1, database)
    with app.app_context():
        counter = StatementCounter(db.engine)
        cpu_before = probe.sample()
        began = time.perf_counter()
        try:
            with parts.active() if parts else contextlib.nullcontext():
                if profiler:
                    profiler.enable()
                counts = ledger.recompute(now=clock.now_utc())
                db.session.commit()
                if profiler:
                    profiler.disable()
        finally:
            counter.close()
        seconds = time.perf_counter() - began
        cpu = probe.used(cpu_before, probe.sample())
        db.session.remove()
    out = {
        "label": label,
        "seconds": round(seconds, 2),
        **counts,
        "statements": counter.count,
        "client_cpu_s": round(cpu["client"], 1),
        "db_cpu_s": None if cpu["db"] is None else round(cpu["db"], 1),
    }
    if parts:
        out["breakdown"] = {k: round(v, 2) for k, v in parts.seconds.most_common()}
        out["breakdown_cpu"] = {k: round(v, 2) for k, v in parts.cpu.most_common()}
        out["breakdown_calls"] = dict(parts.calls)
    if profiler:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(25)
        out["profile"] = buf.getvalue()
    return out


def measure_standings(app, database: str) -> dict[str, Any]:
    """(b) ``bulk.refresh_standings`` for every merchant, from the ledger; commit."""
    from mediation import clock
    from mediation.credit import bulk
    from mediation.extensions import db

    probe = CpuProbe(-1, database)
    with app.app_context():
        cpu_before = probe.sample()
        began = time.perf_counter()
        counts = bulk.refresh_standings(now=clock.now_utc())
        db.session.commit()
        seconds = time.perf_counter() - began
        cpu = probe.used(cpu_before, probe.sample())
        db.session.remove()
    return {
        "seconds": round(seconds, 2),
        **counts,
        "client_cpu_s": round(cpu["client"], 1),
        "db_cpu_s": None if cpu["db"] is None else round(cpu["db"], 1),
    }


def truncate_ledger(app) -> None:
    """Empty the ledger, the standings and the feed.

    The ledger is emptied with DELETE, then vacuumed: mass-complaint alerts
    (none here) refer to their ledger events, and a TRUNCATE ... CASCADE would
    follow alerts to case groups and the cases themselves.
    """
    from mediation.extensions import db

    with app.app_context():
        db.session.execute(db.text("TRUNCATE credit_changes, credit_standings"))
        db.session.execute(db.text("DELETE FROM credit_events"))
        db.session.commit()
        with db.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as conn:
            conn.exec_driver_sql("VACUUM ANALYZE credit_events")
        db.session.remove()


def ledger_counts(app) -> dict[str, Any]:
    from mediation.extensions import db

    with app.app_context():
        by_kind = dict(
            db.session.execute(
                db.text("SELECT kind, count(*) FROM credit_events GROUP BY kind")
            ).all()
        )
        merchants, biggest = db.session.execute(
            db.text(
                "SELECT count(*), max(n) FROM (SELECT merchant_id, count(*) n "
                "FROM credit_events GROUP BY merchant_id) s"
            )
        ).one()
        standings = db.session.execute(
            db.text(
                "SELECT grade, count(*), count(*) FILTER (WHERE listed), "
                "count(*) FILTER (WHERE trusted) FROM credit_standings "
                "GROUP BY grade ORDER BY grade"
            )
        ).all()
        feed = db.session.scalar(db.text("SELECT count(*) FROM credit_changes"))
        db.session.remove()
    return {
        "events": sum(by_kind.values()),
        "by_kind": by_kind,
        "merchants_with_events": merchants,
        "largest_ledger": biggest,
        "standings_by_grade": {
            g: [n, listed, trusted] for g, n, listed, trusted in standings
        },
        "feed_rows": feed,
    }


def measure_per_case(app, sample: int) -> dict[str, Any]:
    """The per-case path (``sync_case`` per case, ``refresh_standing`` per
    merchant) on a random sample, in a transaction that is rolled back.

    Over the consistent ledger it must find nothing to change (the check that
    the bulk path wrote what the per-case path would); then, with the sample's
    ledger rows deleted, it rebuilds them (the from-scratch cost per case).
    """
    from mediation import clock
    from mediation.cases.models import Case
    from mediation.credit import ledger
    from mediation.credit.models import CreditChange, CreditEvent, CreditStanding
    from mediation.extensions import db

    rng = random.Random(7)
    now = clock.now_utc()
    with app.app_context():
        total_cases = db.session.scalar(db.select(db.func.max(Case.id)))
        case_ids = sorted(rng.sample(range(1, total_cases + 1), sample))
        merchants = sorted(
            rng.sample(
                list(db.session.scalars(db.select(CreditStanding.merchant_id))), sample
            )
        )
        before = {
            s.merchant_id: (
                s.score_tenths,
                s.grade,
                s.listed,
                s.trusted,
                s.next_change_at,
            )
            for s in db.session.scalars(
                db.select(CreditStanding).where(
                    CreditStanding.merchant_id.in_(merchants)
                )
            )
        }
        feed_before = db.session.scalar(db.select(db.func.count(CreditChange.id)))
        # Consistent ledger: nothing to change.
        began = time.perf_counter()
        touched: set[int] = set()
        for case_id in case_ids:
            touched |= ledger.sync_case(db.session.get(Case, case_id), now=now)
        sync_consistent = time.perf_counter() - began
        began = time.perf_counter()
        for merchant_id in merchants:
            ledger.refresh_standing(merchant_id, now=now)
        db.session.flush()
        refresh = time.perf_counter() - began
        after = {
            s.merchant_id: (
                s.score_tenths,
                s.grade,
                s.listed,
                s.trusted,
                s.next_change_at,
            )
            for s in db.session.scalars(
                db.select(CreditStanding).where(
                    CreditStanding.merchant_id.in_(merchants)
                )
            )
        }
        feed_after = db.session.scalar(db.select(db.func.count(CreditChange.id)))
        # From scratch: the sample's rows deleted, then rebuilt case by case.
        deleted = db.session.execute(
            db.delete(CreditEvent).where(CreditEvent.case_id.in_(case_ids))
        ).rowcount
        db.session.expire_all()
        began = time.perf_counter()
        rebuilt: set[int] = set()
        for case_id in case_ids:
            rebuilt |= ledger.sync_case(db.session.get(Case, case_id), now=now)
        sync_scratch = time.perf_counter() - began
        db.session.rollback()
        db.session.remove()
    return {
        "sample": sample,
        "sync_consistent_ms_per_case": round(sync_consistent * 1000 / sample, 2),
        "sync_scratch_ms_per_case": round(sync_scratch * 1000 / sample, 2),
        "refresh_ms_per_merchant": round(refresh * 1000 / sample, 2),
        "rows_rebuilt": deleted,
        "changed_cases_merchants": len(touched),
        "changed_standings": sum(1 for m in merchants if before.get(m) != after.get(m)),
        "feed_rows_added": feed_after - feed_before,
    }


# (c) Pages under load ---------------------------------------------------------


def page_targets(app, count: int) -> dict[str, list[int]]:
    """Merchant ids to ask for: a random sample, and the largest ledgers."""
    from mediation.extensions import db

    rng = random.Random(11)
    with app.app_context():
        total = db.session.scalar(db.text("SELECT max(id) FROM merchants"))
        largest = list(
            db.session.scalars(
                db.text(
                    "SELECT merchant_id FROM credit_events GROUP BY merchant_id "
                    "ORDER BY count(*) DESC LIMIT 20"
                )
            )
        )
        sizes = dict(
            db.session.execute(
                db.text(
                    "SELECT merchant_id, count(*) FROM credit_events "
                    "WHERE merchant_id = ANY(:ids) GROUP BY merchant_id"
                ).bindparams(ids=largest)
            ).all()
        )
        db.session.remove()
    return {
        "random": [rng.randint(1, total) for _ in range(count)],
        "largest": largest,
        "largest_sizes": [sizes[m] for m in largest],
    }


def run_get_load(
    port: int, paths: list[str], concurrency: int, probe: CpuProbe
) -> dict[str, Any]:
    """GET every path once, from ``concurrency`` keep-alive connections."""
    queue = list(reversed(paths))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(concurrency + 1)

    def worker() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        start.wait()
        while True:
            with lock:
                if not queue:
                    break
                path = queue.pop()
            began = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                status = 0
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
                path = f"{path} {exc!r}"
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                latencies.append(elapsed)
                if status != 200 and len(errors) < 1000:
                    errors.append(f"{status} {path}")
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    cpu_before = probe.sample()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    cpu = probe.used(cpu_before, probe.sample())
    return {
        "latencies": latencies,
        "errors": errors,
        "seconds": seconds,
        "cpu": cpu,
    }


def measure_pages(
    url: str, app, workdir: Path, requests: int, concurrency: int, database: str
) -> dict[str, Any]:
    targets = page_targets(app, requests * 2)
    env = server_env(url, str(workdir / "evidence"))
    env.pop("BENCHMARK_ENDPOINTS", None)
    endpoints: dict[str, Callable[[int], list[str]]] = {
        "baseline": lambda n: ["/health"] * n,
        "page": lambda n: [f"/credit/merchants/{m}" for m in targets["random"][:n]],
        "api": lambda n: [
            f"/api/v1/merchants/{m}/credit" for m in targets["random"][n : 2 * n]
        ],
        "page, 20 largest ledgers": lambda n: [
            f"/credit/merchants/{targets['largest'][i % 20]}" for i in range(n)
        ],
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in endpoints}
    with running_server(env, workdir / "gunicorn.log", "mediation:create_app()") as (
        port,
        pid,
    ):
        probe = CpuProbe(pid, database)
        for paths in endpoints.values():  # warm-up
            run_get_load(port, paths(min(100, requests))[:100], concurrency, probe)
        half = requests // 2
        for _round in range(2):
            for name, paths in endpoints.items():
                n = half if name != "page, 20 largest ledgers" else max(20, half // 10)
                run = run_get_load(port, paths(n), concurrency, probe)
                runs[name].append(run)
                log(
                    f"(c) {name}: {len(run['latencies'])} requests, "
                    f"{len(run['latencies']) / run['seconds']:.0f} req/s, "
                    f"{len(run['errors'])} errors"
                )
    summary = []
    for name, mine in runs.items():
        latencies = sorted(x for r in mine for x in r["latencies"])
        seconds = sum(r["seconds"] for r in mine)
        server = sum(r["cpu"]["server"] or 0 for r in mine)
        db_cpu = sum(r["cpu"]["db"] or 0 for r in mine)
        n = len(latencies)
        summary.append(
            {
                "endpoint": name,
                "requests": n,
                "errors": sum(len(r["errors"]) for r in mine),
                "error_samples": [e for r in mine for e in r["errors"]][:5],
                "throughput": round(n / seconds, 1) if seconds else 0.0,
                "p50_ms": percentile(latencies, 50),
                "p90_ms": percentile(latencies, 90),
                "p99_ms": percentile(latencies, 99),
                "max_ms": percentile(latencies, 100),
                "server_cpu_ms": round(server * 1000 / n, 1) if n else None,
                "db_cpu_ms": round(db_cpu * 1000 / n, 1) if n else None,
            }
        )
    return {
        "concurrency": concurrency,
        "largest_ledgers": targets["largest_sizes"],
        "summary": summary,
    }


# Report ---------------------------------------------------------------------


def mark(ok: bool, bold: str = "") -> str:
    return f"{bold}{'PASS' if ok else 'MISSED'}{bold}"


def check(ok: bool, bold: str = "") -> str:
    return f"{bold}{'PASS' if ok else 'FAILED'}{bold}"


def tables(result: dict[str, Any]) -> str:
    s = result["seeded"]
    led = result["ledger"]
    lines = [
        "| seeded | count |",
        "|---|---:|",
        f"| merchants (platforms; shops on a platform) | {s['merchants']} "
        f"({s['platforms']}; {s['shops_on_platforms']}) |",
        f"| cases | {s['cases']} |",
        f"| case events (timeline rows) | {s['case_events']} |",
        f"| rated cases | {s['rated_cases']} |",
        f"| ledger events derived (expected by construction) | {led['events']} "
        f"({s['expected_ledger_total']}) |",
        f"| merchants with a ledger; largest ledger | {led['merchants_with_events']}; "
        f"{led['largest_ledger']} |",
        f"| seeding time | {s['seconds']} s |",
        "",
        "| (a) recompute, everything | wall s | cases | merchants | inserted | updated "
        "| deleted | standings written | feed rows | SQLAlchemy statements "
        "| client CPU s | PostgreSQL CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["recompute"]:
        lines.append(
            f"| {r['label']} | **{r['seconds']}** | {r['cases']} | {r['merchants']} "
            f"| {r['inserted']} | {r['updated']} | {r['deleted']} "
            f"| {r['standings_written']} | {r['changes']} | {r['statements']} "
            f"| {r['client_cpu_s']} | {r['db_cpu_s']} |"
        )
    b = result["standings"]
    p = result["per_case"]
    lines += [
        "",
        "| (b) refresh every standing from the ledger | wall s | merchants "
        "| standings written | feed rows | client CPU s | PostgreSQL CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| `bulk.refresh_standings` | **{b['seconds']}** | {b['merchants']} "
        f"| {b['standings_written']} | {b['changes']} | {b['client_cpu_s']} "
        f"| {b['db_cpu_s']} |",
        "",
        f"Baseline, the per-case path on a random sample of {p['sample']} cases and "
        f"{p['sample']} merchants (rolled back), extrapolated linearly:",
        "",
        "| per-case path | ms each | extrapolated to the whole run |",
        "|---|---:|---:|",
        f"| `sync_case`, consistent ledger (per case) "
        f"| {p['sync_consistent_ms_per_case']} "
        f"| {p['sync_consistent_ms_per_case'] * s['cases'] / 1000:.0f} s |",
        f"| `sync_case`, ledger rows deleted first (per case) "
        f"| {p['sync_scratch_ms_per_case']} "
        f"| {p['sync_scratch_ms_per_case'] * s['cases'] / 1000:.0f} s |",
        f"| `refresh_standing` (per merchant) | {p['refresh_ms_per_merchant']} "
        f"| {p['refresh_ms_per_merchant'] * b['merchants'] / 1000:.0f} s |",
    ]
    profile = result.get("breakdown")
    if profile:
        lines += [
            "",
            f"Where the time goes ({profile['label']}, with timing wrappers: "
            f"{profile['seconds']} s in all; the reads run in the reader thread, "
            "overlapping the rest, so the wall times do not add up):",
            "",
            "| part | wall s | CPU s of its thread | calls |",
            "|---|---:|---:|---:|",
        ]
        cpu = profile.get("breakdown_cpu", {})
        for part, secs in profile["breakdown"].items():
            calls = profile["breakdown_calls"].get(part, "")
            lines.append(f"| {part} | {secs} | {cpu.get(part, '')} | {calls} |")
    pages = result.get("pages")
    if pages:
        lines += [
            "",
            f"| (c) endpoint, concurrency {pages['concurrency']} | requests | errors "
            "| req/s | p50 ms | p90 ms | p99 ms | max ms | server CPU ms/req "
            "| PostgreSQL CPU ms/req |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        paths = {
            "baseline": "`/health`",
            "page": "`/credit/merchants/<id>`, random merchants",
            "api": "`/api/v1/merchants/<id>/credit`, random merchants",
            "page, 20 largest ledgers": "`/credit/merchants/<id>`, the 20 largest "
            f"ledgers ({min(pages['largest_ledgers'])}-"
            f"{max(pages['largest_ledgers'])} events)",
        }
        for row in pages["summary"]:
            lines.append(
                f"| {paths[row['endpoint']]} | {row['requests']} | {row['errors']} "
                f"| {row['throughput']} | {row['p50_ms']} | {row['p90_ms']} "
                f"| {row['p99_ms']} | {row['max_ms']} | {row['server_cpu_ms']} "
                f"| {row['db_cpu_ms']} |"
            )
    return "\n".join(lines)


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    scratch, consistent = result["recompute"][0], result["recompute"][1]
    p = result["per_case"]
    led = result["ledger"]
    expected = result["seeded"]["expected_ledger"]
    pages = result.get("pages")
    return {
        "scratch_ok": scratch["seconds"] < AIM_SECONDS,
        "consistent_ok": consistent["seconds"] < AIM_SECONDS,
        "consistent_writes_nothing": (
            consistent["inserted"]
            == consistent["updated"]
            == consistent["deleted"]
            == 0
            and consistent["changes"] == 0
            and consistent["standings_written"] == 0
        ),
        "per_case_agrees": p["changed_cases_merchants"] == 0
        and p["changed_standings"] == 0
        and p["feed_rows_added"] == 0,
        "ledger_as_built": led["by_kind"] == expected,
        "pages_ok": pages is None or all(r["errors"] == 0 for r in pages["summary"]),
    }


def verdict_lines(result: dict[str, Any], bold: str = "") -> list[str]:
    v = result["verdict"]
    scratch, consistent = result["recompute"][0], result["recompute"][1]
    return [
        f"- Recompute from an empty ledger: {bold}{scratch['seconds']} s{bold} "
        f"(aim < {AIM_SECONDS:.0f} s): {mark(v['scratch_ok'], bold)}",
        f"- Recompute over the consistent ledger: {bold}{consistent['seconds']} s"
        f"{bold} (aim < {AIM_SECONDS:.0f} s): {mark(v['consistent_ok'], bold)}",
        "- The second recompute wrote nothing and added no feed row: "
        + check(v["consistent_writes_nothing"], bold),
        "- The per-case path finds nothing to change in what the bulk path wrote "
        "(sample): " + check(v["per_case_agrees"], bold),
        "- The ledger holds, kind by kind, what the seeded histories were built to "
        "give: " + check(v["ledger_as_built"], bold),
        "- Every page request answered 200: " + check(v["pages_ok"], bold),
    ]


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    return "\n".join(
        [
            f"Run of {m['date']}.",
            "",
            f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory']}",
            f"- OS: {m['os']}; Python {m['python']}; {m['database']}",
            f"- Load average before the run (1, 5, 15 min): "
            f"{m['load_average_before']}; before (a): {m['load_average_recompute']}",
            "",
            tables(result),
            "",
            *verdict_lines(result, bold="**"),
        ]
    )


# Main -------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merchants", type=int, default=100_000)
    parser.add_argument("--platforms", type=int, default=1_000)
    parser.add_argument("--cases", type=int, default=900_000)
    parser.add_argument(
        "--sample", type=int, default=1000, help="cases and merchants of the baseline"
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="(c) measured requests per endpoint"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile a recompute over the consistent ledger (slow)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args(argv)
    if args.merchants < 10 or args.cases < 10 or args.platforms >= args.merchants:
        parser.error("need --merchants >= 10, --cases >= 10, --platforms < --merchants")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = normalise_url(args.database_url)
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() != "postgresql":
        raise RuntimeError("the credit benchmark runs on PostgreSQL only")
    database = make_url(url).database or ""
    _check_bench_name(database)
    load_before = _load_average()
    total_started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-credit-"))
    env = server_env(url, str(workdir / "evidence"))
    env.pop("BENCHMARK_ENDPOINTS", None)
    os.environ["EVIDENCE_DIR"] = str(workdir / "evidence")
    log(f"database {url}")
    create_database(url)
    result: dict[str, Any] = {"benchmark": "credit"}
    try:
        upgrade_schema(env)
        from mediation import clock

        # One moment for every measurement: standings move by themselves as
        # events leave their windows (about a thousand window edges a minute
        # here), which would make runs minutes apart differ.
        now = clock.now_utc().replace(microsecond=0)
        clock.freeze(now)
        seeded = seed(url, args, now)
        log(
            f"seeded {seeded['cases']} cases, {seeded['case_events']} events in "
            f"{seeded['seconds']} s; expecting {seeded['expected_ledger_total']} "
            "ledger events"
        )
        app = make_app(url)
        load_recompute = _load_average()
        recompute = [measure_recompute(app, database, "from an empty ledger")]
        log(f"(a) {recompute[-1]}")
        ledger = ledger_counts(app)
        log(f"ledger: {ledger}")
        recompute.append(measure_recompute(app, database, "over the consistent ledger"))
        log(f"(a) {recompute[-1]}")
        standings = measure_standings(app, database)
        log(f"(b) {standings}")
        per_case = measure_per_case(app, args.sample)
        log(f"baseline (per-case path): {per_case}")
        truncate_ledger(app)
        breakdown = measure_recompute(
            app, database, "from an empty ledger", breakdown=True
        )
        log(f"breakdown: {breakdown}")
        profiled = None
        if args.profile:
            profiled = measure_recompute(
                app, database, "over the consistent ledger, cProfile", profile=True
            )
            log(profiled["profile"])
        pages = None
        if not args.skip_pages:
            pages = measure_pages(
                url, app, workdir, args.requests, args.concurrency, database
            )
        machine = machine_info(url, ["-"], load_before)
        machine.pop("gunicorn", None)
        machine["load_average_recompute"] = load_recompute
        with app.app_context():
            from mediation.extensions import db

            db.engine.dispose()
    finally:
        if not args.keep_database:
            drop_database(url)
    result.update(
        settings={
            k: getattr(args, k)
            for k in ("merchants", "platforms", "cases", "sample", "requests")
        }
        | {"concurrency": args.concurrency, "database_url": url},
        machine=machine,
        seeded=seeded,
        ledger=ledger,
        recompute=recompute,
        standings=standings,
        per_case=per_case,
        breakdown=breakdown,
        pages=pages,
        total_seconds=round(time.perf_counter() - total_started, 1),
    )
    if profiled:
        result["profile"] = profiled["profile"]
    result["verdict"] = verdict(result)
    log("")
    log(tables(result))
    log("")
    for line in verdict_lines(result):
        log(line)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"credit-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    total = result["total_seconds"]
    log(f"\nresults written to {out.relative_to(ROOT)} (total {total} s)")
    log("\n--- Markdown for BENCHMARKS.md ---\n")
    log(markdown(result))
    v = result["verdict"]
    if v["pages_ok"]:  # else keep the server log
        shutil.rmtree(workdir, ignore_errors=True)
    ok = (
        v["consistent_writes_nothing"]
        and v["per_case_agrees"]
        and v["ledger_as_built"]
        and v["pages_ok"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_run(main))
