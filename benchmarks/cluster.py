"""Benchmark of the scale-out deployment: one vs two server processes behind nginx.

The cluster is the one ``make cluster`` runs (``deploy/cluster.py``): nginx with
cookie stickiness in front of N gunicorn processes (``gunicorn.conf.py``), on
PostgreSQL, with Redis for the Socket.IO message queue, presence and rate
limits (rate limiting itself off, as in the other benchmarks). For N = 1, then
N = 2 (the baseline first, in the same run, on the same machine and database):

- **filing**: ``POST /api/v1/cases`` through nginx from ``--concurrency``
  clients, each with its own consumer token and keep-alive connection (the
  load loop of ``benchmarks/filing.py``); nginx spreads requests without a
  sticky cookie over the processes (``least_conn``). The filings go to
  ``--merchants`` merchants and every complaint category in turn: the
  mass-complaint detection serialises the filings of one merchant and
  category (an advisory lock until the commit), so filings that all name one
  merchant and category (as ``benchmarks/filing.py``'s do) measure that lock,
  not the processes;
- **chat**: rooms of three over WebSockets through nginx (the load generator of
  ``benchmarks/chat.py``); each WebSocket lands where nginx puts it, so the
  members of a room are spread over the processes and Redis carries the
  messages between them; latency from the sender's emit to each other member's
  ``message_created``; p50/p99 and exactly-once delivery.

Aim (issue #8): two processes give at least 1.6 times the filing throughput of
one. On a 2-core machine PostgreSQL, nginx, Redis and the load generator share
the cores with the servers, so the report gives the CPU of each side per filing
and the load average before each run.

Usage::

    python benchmarks/cluster.py [--requests 2000] [--concurrency 16]
                                 [--warmup 200] [--rounds 1]
                                 [--chat-connections 300] [--rate 100]
                                 [--duration 20] [--skip-chat]
                                 [--database-url URL] [--redis-url URL]

The database (default ``bench_cluster`` on 127.0.0.1:5432) is created and
dropped; its name must start with ``bench``. Each run's processes are stopped
by their pid files, also on errors. Exit code 0 when every filing answered 201
and every chat message was delivered exactly once (whatever the verdict), 1
otherwise, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``mediation`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import chat as chat_bench  # noqa: E402
from benchmarks.filing import (  # noqa: E402
    RESULTS_DIR,
    Bodies,
    CpuProbe,
    _load_average,
    _postgres_database,
    _run,
    create_database,
    drop_database,
    machine_info,
    normalise_url,
    percentile,
    print_flush,
    seed,
    upgrade_schema,
)
from deploy.cluster import (  # noqa: E402
    Cluster,
    Node,
    cluster_env,
    free_port,
    read_pids,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_cluster"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
FILING_PATH = "/api/v1/cases"
#: The aim: filings/s with two processes over filings/s with one.
AIM_RATIO = 1.6
log = print_flush


class Probes:
    """CPU seconds of the server processes, nginx, the database and the client."""

    def __init__(self, servers: list[int], nginx: int | None, database: str | None):
        self._servers = [CpuProbe(pid, None) for pid in servers]
        self._nginx = CpuProbe(nginx, None) if nginx else None
        # A probe whose "server" is nobody counts the database backends only.
        self._db = CpuProbe(-1, database)

    def sample(self) -> dict[str, Any]:
        return {
            "servers": [p.sample() for p in self._servers],
            "nginx": self._nginx.sample() if self._nginx else None,
            "db": self._db.sample(),
        }

    def used(self, before: dict, after: dict) -> dict[str, float | None]:
        servers = [
            p.used(b, a)["server"] or 0.0
            for p, b, a in zip(
                self._servers, before["servers"], after["servers"], strict=True
            )
        ]
        out = {
            "server": sum(servers),
            "db": self._db.used(before["db"], after["db"])["db"],
            "client": self._db.used(before["db"], after["db"])["client"],
            "nginx": None,
        }
        if self._nginx:
            out["nginx"] = self._nginx.used(before["nginx"], after["nginx"])["server"]
        return out


#: The filings go round every category (the mass-complaint detection holds a
#: lock per merchant and category: one pair would serialise every filing).
CATEGORIES = (
    "counterfeit",
    "false_advertising",
    "fake_reviews",
    "fake_promotion",
    "unfair_terms",
    "quality_defect",
    "delivery",
    "refund_refused",
    "after_sales",
    "personal_info",
    "other",
)


def seed_merchants(url: str, count: int) -> list[int]:
    """Register ``count`` goods merchants (valid credit codes); return their ids."""
    from mediation import clock, create_app
    from mediation.extensions import db
    from mediation.merchants.services import register_merchant
    from mediation.merchants.uscc import check_character

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "LOG_LEVEL": "WARNING"})
    now = clock.now_utc()
    ids = []
    with app.app_context():
        for n in range(count):
            body = f"91330106MA2CL{n:04d}"
            merchant = register_merchant(
                {
                    "name": f"Bench Cluster Shop {n}",
                    "uscc": body + check_character(body),
                    "kind": "goods",
                    "region_code": "330106",
                },
                now=now,
            )
            ids.append(merchant.id)
        db.session.commit()
        db.engine.dispose()
    return ids


def start_cluster(
    processes: int, env: dict[str, str], workdir: Path, threads: int
) -> Cluster:
    """Start nginx and ``processes`` server processes (no scheduler)."""
    run_dir = workdir / f"cluster-{processes}-{uuid.uuid4().hex[:6]}"
    cluster = Cluster(
        run_dir=run_dir,
        listen_port=free_port(),
        nodes=[Node(f"app{k}", free_port()) for k in range(1, processes + 1)],
        env=env,
        scheduler=False,
        gunicorn_args=[
            "--threads",
            str(threads),
            "--worker-connections",
            str(threads + 50),
        ],
    )
    cluster.env = {**env, "PUBLIC_URL": cluster.url}
    cluster.start()
    return cluster


def filing_runs(
    cluster: Cluster,
    tokens: list[str],
    bodies: Bodies,
    probes: Probes,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Warm up, then measure ``--requests`` filings through nginx."""
    from benchmarks.filing import run_load

    warm = run_load(
        cluster.listen_port, FILING_PATH, "full", tokens, args.warmup, bodies, probes
    )
    if warm.errors:
        raise RuntimeError(f"warm-up filings failed: {warm.error_samples}")
    run = run_load(
        cluster.listen_port, FILING_PATH, "full", tokens, args.requests, bodies, probes
    )
    lat = sorted(run.latencies_ms)
    per = {
        side: (
            round(v * 1000 / run.requests, 2)
            if v is not None and run.requests
            else None
        )
        for side, v in run.cpu.items()
    }
    return {
        "requests": run.requests,
        "errors": run.errors,
        "error_samples": run.error_samples,
        "aborted": run.aborted,
        "seconds": round(run.seconds, 2),
        "throughput": round(run.throughput, 1),
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "cpu_ms_per_filing": per,
    }


def chat_run(
    cluster: Cluster,
    rooms: list[dict[str, Any]],
    probes: Probes,
    args: argparse.Namespace,
    tag: str,
) -> dict[str, Any]:
    """Drive the chat rooms through nginx; return latency and completeness."""
    options = argparse.Namespace(
        clients_per_process=args.clients_per_process,
        rate=args.rate,
        warmup=args.chat_warmup,
        duration=args.duration,
        drain=args.drain,
        connect_concurrency=8,
    )
    pids = [pid for name, pid in read_pids(cluster.run_dir).items() if name != "nginx"]
    result = chat_bench.run_load(
        rooms,
        [cluster.url],
        options,
        tag,
        [probes],
        chat_bench.server_processes([p for p in pids if p]),
    )
    cpu = result.pop("cpu")[0]
    sent = result.get("sent", 0)
    keep = (
        "connections",
        "sent",
        "acked_ok",
        "delivered",
        "expected_deliveries",
        "missing",
        "duplicates",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "ack_p99_ms",
        "disconnects",
        "error_samples",
    )
    out = {k: result.get(k) for k in keep}
    out["complete"] = chat_bench._complete(result)
    out["cpu_ms_per_message"] = {
        side: (round(v * 1000 / sent, 2) if v is not None and sent else None)
        for side, v in cpu.items()
    }
    return out


def run_scenario(
    processes: int,
    env: dict[str, str],
    workdir: Path,
    tokens: list[str],
    bodies: Bodies,
    rooms: list[dict[str, Any]],
    database: str | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    load = _load_average()
    log(f"{processes} server process(es) behind nginx (load average {load})")
    threads = 3 * len(rooms) + args.concurrency + 50
    cluster = start_cluster(processes, env, workdir, threads)
    row: dict[str, Any] = {"processes": processes, "load_average_before": load}
    try:
        pids = read_pids(cluster.run_dir)
        servers = [pid for name, pid in pids.items() if name.startswith("app") and pid]
        probes = Probes(servers, pids.get("nginx"), database)
        row["filing"] = filing_runs(cluster, tokens, bodies, probes, args)
        f = row["filing"]
        log(
            f"  filing: {f['throughput']} req/s, p50 {f['p50_ms']} ms, "
            f"p99 {f['p99_ms']} ms, {f['errors']} errors; CPU ms/filing "
            f"{f['cpu_ms_per_filing']}"
        )
        if not args.skip_chat:
            row["load_average_before_chat"] = _load_average()
            row["chat"] = chat_run(cluster, rooms, probes, args, f"cluster-{processes}")
            c = row["chat"]
            log(
                f"  chat: {c['connections']} connections, delivered "
                f"{c['delivered']}/{c['expected_deliveries']}, p50 {c['p50_ms']} ms, "
                f"p99 {c['p99_ms']} ms" + ("" if c["complete"] else "  INCOMPLETE")
            )
        row["requests_per_process"] = requests_per_process(cluster)
    except Exception:
        for node in cluster.nodes:
            log(cluster.tail(node.name, 10))
        raise
    finally:
        cluster.stop()
    return row


def requests_per_process(cluster: Cluster) -> dict[str, int]:
    """Count nginx's requests per upstream address (how the load was spread)."""
    counts: dict[str, int] = {}
    path = cluster.run_dir / "logs" / "nginx-access.log"
    if not path.exists():
        return counts
    by_address = {n.address: n.name for n in cluster.nodes}
    with path.open(errors="replace") as fh:
        for line in fh:
            address = line.rsplit(" ", 1)[-1].strip()
            name = by_address.get(address)
            if name:
                counts[name] = counts.get(name, 0) + 1
    return counts


def _ms(value: Any) -> str:
    return (
        "-"
        if value is None
        else f"{value:.1f}"
        if isinstance(value, float)
        else str(value)
    )


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| processes | filings/s | filing p50 (ms) | filing p99 (ms) | CPU ms/filing: "
        "servers, db, nginx, client | chat p50 (ms) | chat p99 (ms) | chat delivered "
        "| load average before |",
        "|---:|---:|---:|---:|---|---:|---:|---|---|",
    ]
    for row in rows:
        f = row["filing"]
        cpu = f["cpu_ms_per_filing"]
        c = row.get("chat") or {}
        delivered = (
            f"{c.get('delivered')}/{c.get('expected_deliveries')}"
            + (", dup " + str(c.get("duplicates")) if c.get("duplicates") else "")
            if c
            else "-"
        )
        lines.append(
            f"| {row['processes']} | {f['throughput']} | {_ms(f['p50_ms'])} "
            f"| {_ms(f['p99_ms'])} | "
            + ", ".join(_ms(cpu.get(k)) for k in ("server", "db", "nginx", "client"))
            + f" | {_ms(c.get('p50_ms'))} | {_ms(c.get('p99_ms'))} | {delivered} "
            f"| {row['load_average_before']} |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(n: int) -> float:
        values = [r["filing"]["throughput"] for r in rows if r["processes"] == n]
        return sum(values) / len(values) if values else 0.0

    one, two = mean(1), mean(2)
    ratio = two / one if one else 0.0
    return {
        "one": round(one, 1),
        "two": round(two, 1),
        "ratio": round(ratio, 2),
        "ratio_ok": ratio >= AIM_RATIO,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--merchants",
        type=int,
        default=32,
        help="merchants the filings go to, with every category (default 32)",
    )
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat 1 then 2 processes (default 1)"
    )
    parser.add_argument("--chat-connections", type=int, default=300)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--chat-warmup", type=float, default=5.0)
    parser.add_argument("--drain", type=float, default=5.0)
    parser.add_argument("--clients-per-process", type=int, default=400)
    parser.add_argument("--skip-chat", action="store_true")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency, args.rounds, args.merchants) < 1:
        parser.error("need --requests, --concurrency, --rounds, --merchants >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = normalise_url(args.database_url)
    redis_reason = chat_bench.redis_available(args.redis_url)
    if redis_reason:
        raise RuntimeError(f"Redis at {args.redis_url}: {redis_reason}")
    chat_bench.raise_nofile()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    load_before = _load_average()
    log(f"database {url}; load average {load_before}")
    create_database(url)
    rows: list[dict[str, Any]] = []
    try:
        env = cluster_env(
            run_dir=workdir,
            public_url="http://127.0.0.1",
            database_url=url,
            redis_url=args.redis_url,
            channel=f"bench-cluster-{uuid.uuid4().hex[:8]}",
        )
        env.update(
            LOG_LEVEL="WARNING",
            RATELIMIT_ENABLED="0",
            MAIL_SERVER="",
            SOCKETIO_CORS_ORIGINS="*",
            EVIDENCE_DIR=str(workdir / "evidence"),
        )
        upgrade_schema(env)
        merchant_id, tokens = seed(url, args.concurrency)
        merchant_ids = [merchant_id, *seed_merchants(url, args.merchants - 1)]
        rooms = []
        if not args.skip_chat:
            (rooms,) = chat_bench.seed_rooms(
                url, [chat_bench.rooms_for(args.chat_connections)]
            )
        log(f"seeded {len(tokens)} consumers and {len(rooms)} chat rooms")
        bodies = Bodies(merchant_ids, CATEGORIES, label="cl")
        database = _postgres_database(url)
        for _ in range(args.rounds):
            for processes in (1, 2):
                rows.append(
                    run_scenario(
                        processes, env, workdir, tokens, bodies, rooms, database, args
                    )
                )
        machine = machine_info(url, ["gunicorn", "-c", "gunicorn.conf.py"], load_before)
    finally:
        if not args.keep_database:
            drop_database(url)
    result = {
        "benchmark": "cluster",
        "settings": {k: v for k, v in vars(args).items()},
        "machine": machine,
        "rows": rows,
        "verdict": verdict(rows),
        "load_average_after": _load_average(),
    }
    failed = any(r["filing"]["errors"] or r["filing"]["aborted"] for r in rows) or any(
        r.get("chat") and not r["chat"]["complete"] for r in rows
    )
    result["failed"] = failed
    report(result)
    if not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log(f"FAILED: see the logs under {workdir}")
    return 1 if failed else 0


def report(result: dict[str, Any]) -> None:
    v = result["verdict"]
    log("")
    log(table(result["rows"]))
    log("")
    log(
        f"filing throughput, two processes over one: {v['ratio']} "
        f"({v['two']} / {v['one']} req/s; aim >= {AIM_RATIO}): "
        + ("PASS" if v["ratio_ok"] else "MISS")
    )
    log(f"load average after: {result['load_average_after']}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"cluster-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    log(f"\nresults written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(_run(main))
