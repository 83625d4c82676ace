"""Benchmark of complaint filing through the real API under gunicorn (``make bench``).

Two endpoints of one gunicorn server are loaded by the same client, in turns:

- ``baseline``: ``POST /api/v1/_bench/baseline`` authenticates the consumer by
  bearer token, validates the filing body with the real input schema and inserts
  one bare ``Case`` row (the floor of any filing: HTTP, auth, JSON, one INSERT,
  one COMMIT);
- ``full``: ``POST /api/v1/cases``, the real filing (duplicate check, idempotency
  key, version, hash-chained events, routing to the merchant, notifications).

The aims (issue "filing benchmark"): full filing at no less than half the
baseline's throughput, and a full-filing p99 under 100 ms, at concurrency 16.

Usage::

    python benchmarks/filing.py [--requests 3000] [--concurrency 16]
                                [--warmup 200] [--rounds 2]
                                [--database-url URL] [--keep-database]

The default database is a fresh PostgreSQL database ``bench_filing`` on
127.0.0.1:5432 (created through the ``postgres`` database, dropped at the end);
``--database-url sqlite:///bench.db`` runs on SQLite instead. To protect real
data, the benchmark only uses databases (or SQLite files) whose name starts with
``bench``. All traffic goes to 127.0.0.1. Misses against the aims are reported,
not hidden: the exit code is 0 unless a request failed (then 1) or the run could
not start (2).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_filing"
HOST = "127.0.0.1"
SECRET_KEY = "bench-secret"
PASSWORD = "bench-password-2026"
ENDPOINTS = {
    "baseline": "/api/v1/_bench/baseline",
    "full": "/api/v1/cases",
}
#: Seconds a request may take before the run is stopped as failed.
REQUEST_TIMEOUT = 10
#: The aims of the issue.
MIN_RATIO = 0.5
MAX_FULL_P99_MS = 100.0
#: The WSGI application, as deployments start it.
APP = "mediation:create_app()"
GUNICORN_ARGS = [
    "-k",
    "gthread",
    "-w",
    "1",
    "--threads",
    "200",
    "--no-control-socket",
]

if str(ROOT) not in sys.path:  # run as a script: make ``mediation`` importable
    sys.path.insert(0, str(ROOT))


# Database -----------------------------------------------------------------


def normalise_url(url: str) -> str:
    """Return ``url`` with the psycopg 3 driver for PostgreSQL URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _check_bench_name(name: str) -> None:
    """Refuse to drop anything that is not obviously a benchmark database.

    :raise RuntimeError: when ``name`` does not start with ``bench``.
    """
    if not Path(name).name.startswith("bench"):
        raise RuntimeError(
            f"refusing to use {name!r}: the benchmark recreates and drops its "
            "database, so its name must start with 'bench'"
        )


def create_database(url: str) -> None:
    """Create the benchmark database from nothing (dropping a leftover one)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        _check_bench_name(path)
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        return
    _check_bench_name(parsed.database or "")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = parsed.database
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """Drop the benchmark database (or remove the SQLite file)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with contextlib.suppress(FileNotFoundError):
            os.remove(parsed.database or "")
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = parsed.database
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _postgres_database(url: str) -> str | None:
    """Return the database name of a PostgreSQL URL (None for SQLite)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.database if parsed.get_backend_name() == "postgresql" else None


def database_version(url: str) -> str:
    """Return the database server's name and version."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
            return f"PostgreSQL {version}"
    finally:
        engine.dispose()


def server_env(url: str, evidence_dir: str) -> dict[str, str]:
    """Return the environment of the server and of the ``flask`` commands."""
    env = dict(os.environ)
    env.update(
        MEDIATION_ENV="production",
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=url,
        # --database-url sqlite:///bench.db: one process on SQLite, on purpose.
        ALLOW_SQLITE_IN_PRODUCTION="1",
        BENCHMARK_ENDPOINTS="1",
        LOG_LEVEL="WARNING",
        RATELIMIT_ENABLED="0",
        EVIDENCE_DIR=evidence_dir,
        # Only the request path is measured: no Redis fan-out, no in-process
        # scheduler, e-mail logged (below WARNING, so not even written).
        REDIS_URL="",
        SCHEDULER_ENABLED="0",
        MAIL_SERVER="",
    )
    return env


def upgrade_schema(env: dict[str, str]) -> None:
    """Create the schema with the migrations, as a deployment does."""
    flask = Path(sys.executable).parent / "flask"
    command = [str(flask) if flask.exists() else "flask", "--app", "mediation"]
    subprocess.run(
        [*command, "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def seed(url: str, consumers: int) -> tuple[int, list[str]]:
    """Create a registered merchant with one staff account, and consumers.

    :param consumers: how many consumers, each with an API token.
    :return: the merchant id and one bearer token per consumer.
    """
    from mediation import clock, create_app
    from mediation.auth.models import Role
    from mediation.auth.services import create_user, issue_token
    from mediation.extensions import db
    from mediation.merchants.services import register_merchant
    from mediation.merchants.uscc import check_character

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": SECRET_KEY,
            "LOG_LEVEL": "WARNING",
            "MAIL_SERVER": None,
        }
    )
    now = clock.now_utc()
    body = "91330106MA2BENCH0"
    with app.app_context():
        merchant = register_merchant(
            {
                "name": "Bench Appliances Flagship Store",
                "uscc": body + check_character(body),
                "kind": "goods",
                "region_code": "330106",
            },
            now=now,
        )
        create_user(
            email="staff@bench.example.com",
            password=PASSWORD,
            name="Bench Staff",
            role=Role.merchant,
            merchant_id=merchant.id,
            now=now,
        )
        tokens = []
        for n in range(consumers):
            user = create_user(
                email=f"consumer{n}@bench.example.com",
                password=PASSWORD,
                name=f"Bench Consumer {n}",
                role=Role.consumer,
                now=now,
            )
            secret, _ = issue_token(user, now=now, ttl=timedelta(hours=6))
            tokens.append(secret)
        merchant_id = merchant.id
        db.session.commit()
        db.engine.dispose()
    return merchant_id, tokens


# Server -------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def gunicorn_command(port: int, app: str = APP) -> list[str]:
    """Return the command line of the server under test."""
    exe = Path(sys.executable).parent / "gunicorn"
    if not exe.exists():
        exe = ROOT / ".venv" / "bin" / "gunicorn"
    return [str(exe), *GUNICORN_ARGS, "-b", f"{HOST}:{port}", app]


@contextlib.contextmanager
def running_server(
    env: dict[str, str], log_path: Path, app: str
) -> Iterator[tuple[int, int]]:
    """Run gunicorn for the duration of the block; yield its port and pid.

    :raise RuntimeError: when the server does not answer /health in 30 s.
    """
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            gunicorn_command(port, app),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_healthy(proc, port, log_path)
            yield port, proc.pid
        finally:
            _stop(proc)


def _wait_healthy(proc: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {proc.returncode}:\n{_tail(log_path)}"
            )
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not become healthy:\n{_tail(log_path)}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server (its own process group: the master and its worker)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# CPU accounting ------------------------------------------------------------


def _stat(pid: str) -> tuple[int, float] | None:
    """Return (parent pid, CPU seconds) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class CpuProbe:
    """CPU seconds used by the server, the database backends and this client.

    Linux only (``/proc``); elsewhere the server and database columns stay empty.
    The database figure counts the PostgreSQL backends serving the benchmark
    database (not the WAL writer or checkpointer).
    """

    def __init__(self, server_pid: int, database: str | None) -> None:
        self._server = server_pid
        self._database = database
        self.available = Path("/proc/self/stat").exists()

    def sample(self) -> dict[str, dict[str, float]]:
        """Return CPU seconds per process, by side (server, db), and the client's."""
        server: dict[str, float] = {}
        db: dict[str, float] = {}
        if self.available:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                stat = _stat(pid)
                if stat is None:
                    continue
                ppid, cpu = stat
                if int(pid) == self._server or ppid == self._server:
                    server[pid] = cpu
                elif self._database and _cmdline(pid).startswith("postgres:"):
                    if f" {self._database} " in _cmdline(pid):
                        db[pid] = cpu
        return {"server": server, "db": db, "client": {"": time.process_time()}}

    def used(self, before: dict, after: dict) -> dict[str, float | None]:
        """Return CPU seconds used between two samples, by side."""
        out: dict[str, float | None] = {}
        for side in ("server", "db", "client"):
            if not after[side] and side != "client":
                out[side] = None
                continue
            out[side] = sum(
                cpu - before[side].get(pid, 0.0) for pid, cpu in after[side].items()
            )
        return out


# Load ---------------------------------------------------------------------


@dataclass
class Run:
    """One timed run of one endpoint."""

    endpoint: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    error_samples: list[str] = field(default_factory=list)
    #: A request got no answer in time: the run stopped early.
    aborted: bool = False
    #: CPU seconds used during the run: ``server``, ``db``, ``client``.
    cpu: dict[str, float | None] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class Bodies:
    """Filing bodies, each with its own order number (no duplicate short-cuts)
    and Idempotency-Key, going round ``merchant_ids`` x ``categories``."""

    def __init__(
        self,
        merchant_ids: list[int],
        categories: tuple[str, ...] = ("quality_defect",),
        *,
        label: str = "bench",
    ) -> None:
        self._pairs = itertools.cycle(
            [(m, c) for c in categories for m in merchant_ids]
        )
        self._label = label
        self._prefix = uuid.uuid4().hex[:8].upper()
        self._order_date = (datetime.now(UTC).date() - timedelta(days=10)).isoformat()
        self._lock = threading.Lock()
        self._n = 0

    def next(self) -> tuple[bytes, str]:
        """Return a JSON body and a fresh Idempotency-Key."""
        with self._lock:
            self._n += 1
            n = self._n
            merchant_id, category = next(self._pairs)
        body = {
            "merchant_id": merchant_id,
            "category": category,
            "order_ref": f"{self._label.upper()}-{self._prefix}-{n:07d}",
            "order_date": self._order_date,
            "amount_paid": 19900,
            "claim": {"type": "refund", "amount": 19900},
            "description": "The kettle leaks from the base after two days of use.",
            "arbitration_consent": False,
        }
        return json.dumps(body).encode(), f"{self._label}-{self._prefix}-{n}"


def run_load(
    port: int,
    path: str,
    endpoint: str,
    tokens: list[str],
    total: int,
    bodies: Bodies,
    probe: CpuProbe,
) -> Run:
    """Send ``total`` filings to ``path`` from one thread per token.

    Each thread keeps its own keep-alive connection and signs as its own
    consumer; threads take requests from a shared counter until ``total`` are
    sent. The clock runs from the common start to the last answer. A request
    without an answer in :data:`REQUEST_TIMEOUT` seconds stops the run (a hung
    server must not hold the benchmark for minutes).
    """
    remaining = [total]
    lock = threading.Lock()
    abort = threading.Event()
    start = threading.Barrier(len(tokens) + 1)
    latencies: list[list[float]] = [[] for _ in tokens]
    errors = [0] * len(tokens)
    samples: list[str] = []

    def take() -> bool:
        with lock:
            if remaining[0] <= 0 or abort.is_set():
                return False
            remaining[0] -= 1
            return True

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
        auth = f"Bearer {tokens[i]}"
        start.wait()
        while take():
            body, key = bodies.next()
            headers = {
                "Authorization": auth,
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            }
            began = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                status, payload = 0, f"no answer: {exc!r}".encode()
                abort.set()
                conn.close()
            latencies[i].append((time.perf_counter() - began) * 1000)
            if status != 201:
                errors[i] += 1
                with lock:
                    if len(samples) < 5:
                        text = payload[:300].decode(errors="replace").strip()
                        samples.append(f"{status} {text}")
        conn.close()

    threads = [
        threading.Thread(target=worker, args=(i,), daemon=True)
        for i in range(len(tokens))
    ]
    for thread in threads:
        thread.start()
    cpu_before = probe.sample()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    cpu = probe.used(cpu_before, probe.sample())
    done = [x for per in latencies for x in per]
    return Run(
        endpoint=endpoint,
        requests=len(done),
        errors=sum(errors),
        seconds=seconds,
        latencies_ms=done,
        error_samples=samples,
        aborted=abort.is_set(),
        cpu=cpu,
    )


# Report -------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Return the nearest-rank ``p``-th percentile of sorted values (None if empty)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))
    return round(sorted_values[int(rank) - 1], 1)


def summarise(runs: list[Run], endpoint: str) -> dict[str, Any]:
    """Pool the runs of one endpoint: throughput over their summed time."""
    mine = [r for r in runs if r.endpoint == endpoint]
    latencies = sorted(x for r in mine for x in r.latencies_ms)
    requests = sum(r.requests for r in mine)
    seconds = sum(r.seconds for r in mine)
    return {
        "endpoint": endpoint,
        "path": ENDPOINTS[endpoint],
        "requests": requests,
        "errors": sum(r.errors for r in mine),
        "seconds": round(seconds, 3),
        "throughput": round(requests / seconds, 1) if seconds else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": percentile(latencies, 100),
        "runs_throughput": [round(r.throughput, 1) for r in mine],
        **{
            f"{side}_cpu_ms_per_request": _cpu_per_request(mine, side)
            for side in ("server", "db", "client")
        },
    }


def _cpu_per_request(runs: list[Run], side: str) -> float | None:
    used = [r.cpu.get(side) for r in runs]
    requests = sum(r.requests for r in runs)
    if not requests or any(u is None for u in used):
        return None
    return round(sum(used) * 1000 / requests, 2)


def verdict(baseline: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """Check the two aims of the issue."""
    ratio = full["throughput"] / baseline["throughput"] if baseline["throughput"] else 0
    return {
        "ratio": round(ratio, 2),
        "ratio_ok": ratio >= MIN_RATIO,
        "full_p99_ok": full["p99_ms"] is not None and full["p99_ms"] < MAX_FULL_P99_MS,
    }


def machine_info(url: str, command: list[str], load_before: str) -> dict[str, Any]:
    """Describe where the numbers come from."""
    import gunicorn

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_before": load_before,
        "database": database_version(url),
        "gunicorn": f"gunicorn {gunicorn.__version__}: "
        + shlex.join([Path(command[0]).name, *command[1:]]),
    }


def _load_average() -> str:
    """Return the 1, 5 and 15 minute load averages (other work on the machine)."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def table(rows: list[dict[str, Any]]) -> str:
    """Return the results as a Markdown table."""
    lines = [
        "| endpoint | requests | errors | throughput (req/s) | p50 (ms) | p90 (ms) "
        "| p99 (ms) | max (ms) | runs (req/s) | CPU ms/request: server, db, client |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        runs = ", ".join(f"{x:.0f}" for x in row["runs_throughput"])
        ms = [_ms(row[k]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")]
        cpu = ", ".join(
            _ms(row[f"{side}_cpu_ms_per_request"])
            for side in ("server", "db", "client")
        )
        lines.append(
            f"| {row['endpoint']} (`{row['path']}`) | {row['requests']} "
            f"| {row['errors']} | {row['throughput']:.1f} | {' | '.join(ms)} "
            f"| {runs} | {cpu} |"
        )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def verdict_lines(result: dict[str, Any], bold: str = "") -> list[str]:
    """Return the verdict against each aim (``bold="**"`` for Markdown)."""
    v = result["verdict"]
    full = result["summary"][1]

    def mark(ok: bool) -> str:
        return f"{bold}{'PASS' if ok else 'MISS'}{bold}"

    lines = [
        f"- Throughput ratio full/baseline: {bold}{v['ratio']:.2f}{bold} "
        f"(aim >= {MIN_RATIO}): {mark(v['ratio_ok'])}",
        f"- Full filing p99: {bold}{_ms(full['p99_ms'])} ms{bold} "
        f"(aim < {MAX_FULL_P99_MS:.0f} ms): {mark(v['full_p99_ok'])}",
    ]
    if result["failed"]:
        errors = sum(row["errors"] for row in result["summary"])
        lines.append(
            f"- {bold}FAILED{bold}: {errors} requests did not answer 201"
            + (" (a request timed out)" if _aborted(result) else "")
            + (
                f"; stopped during {result['stopped_at']}"
                if result["stopped_at"]
                else ""
            )
        )
    return lines


def _aborted(result: dict[str, Any]) -> bool:
    return any(run["aborted"] for run in result["runs"])


def markdown(result: dict[str, Any]) -> str:
    """Return the snippet to paste into BENCHMARKS.md."""
    m, s = result["machine"], result["settings"]
    return "\n".join(
        [
            f"Run of {m['date']}: {s['requests_per_endpoint']} measured requests per "
            f"endpoint at concurrency {s['concurrency']} ({s['rounds']} rounds of "
            f"baseline then full, after {s['warmup']} warm-up requests per endpoint).",
            "",
            f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory']}",
            f"- OS: {m['os']}; Python {m['python']}; {m['database']}",
            f"- Load average before the run (1, 5, 15 min): "
            f"{m['load_average_before']} (other work on the machine)",
            f"- Server: {m['gunicorn']}",
            "",
            table(result["summary"]),
            "",
            *verdict_lines(result, bold="**"),
        ]
    )


# Main ---------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=3000,
        help="measured requests per endpoint, split over the rounds (default 3000)",
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="uncounted requests per endpoint before measuring (default 200)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="alternations baseline, full (default 2)",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL or SQLite URL; the database name must start with 'bench'",
    )
    parser.add_argument(
        "--app",
        default=APP,
        help="WSGI app for gunicorn (experiments only, e.g. a wrapper module "
        "found through PYTHONPATH; default %(default)s)",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="do not drop the database at the end (to look at the rows)",
    )
    args = parser.parse_args(argv)
    if args.requests < args.rounds or args.concurrency < 1 or args.rounds < 1:
        parser.error("need --requests >= --rounds >= 1 and --concurrency >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Prepare, run, report; return the exit code."""
    args = parse_args(argv)
    url = normalise_url(args.database_url)
    log = print_flush
    workdir = Path(tempfile.mkdtemp(prefix="bench-filing-"))
    server_log = workdir / "gunicorn.log"
    env = server_env(url, str(workdir / "evidence"))
    command = gunicorn_command(0)
    runs: list[Run] = []
    stopped_at = None
    load_before = _load_average()
    log(f"database {url}")
    create_database(url)
    try:
        upgrade_schema(env)
        merchant_id, tokens = seed(url, args.concurrency)
        log(f"seeded merchant {merchant_id} and {len(tokens)} consumers")
        bodies = Bodies([merchant_id])
        with running_server(env, server_log, args.app) as (port, pid):
            command = gunicorn_command(port, args.app)
            probe = CpuProbe(pid, _postgres_database(url))
            log(f"server: {shlex.join(command)}")
            plan = [("warm-up", e, args.warmup) for e in ENDPOINTS]
            per_run = args.requests // args.rounds
            for round_no in range(1, args.rounds + 1):
                extra = args.requests % args.rounds if round_no == args.rounds else 0
                plan += [(f"round {round_no}", e, per_run + extra) for e in ENDPOINTS]
            for label, endpoint, n in plan:
                path = ENDPOINTS[endpoint]
                run = run_load(port, path, endpoint, tokens, n, bodies, probe)
                if label != "warm-up" or run.errors:  # failed warm-ups count
                    runs.append(run)
                log(
                    f"{label} {endpoint}: {run.requests} requests, "
                    f"{run.throughput:.0f} req/s, {run.errors} errors"
                )
                for sample in run.error_samples:
                    log(f"  error: {sample}")
                if run.aborted or (label == "warm-up" and run.errors):
                    # Failed already; the remaining runs would say nothing more.
                    stopped_at = f"{label} {endpoint}"
                    log(f"  stopped: see the server log {server_log}")
                    log(_tail(server_log, 15))
                    break
        machine = machine_info(url, command, load_before)
    finally:
        if not args.keep_database:
            drop_database(url)
    summary = [summarise(runs, "baseline"), summarise(runs, "full")]
    result = {
        "benchmark": "filing",
        "settings": {
            "requests_per_endpoint": args.requests,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "request_timeout_s": REQUEST_TIMEOUT,
            "database_url": url,
            "app": args.app,
        },
        "machine": machine,
        "summary": summary,
        "verdict": verdict(*summary),
        "runs": [
            {k: v for k, v in asdict(r).items() if k != "latencies_ms"}
            | {"throughput": round(r.throughput, 1)}
            for r in runs
        ],
    }
    failed = any(row["errors"] for row in summary) or any(r.aborted for r in runs)
    result["failed"] = failed
    result["stopped_at"] = stopped_at
    report(result)
    if failed:
        log("FAILED: some requests did not answer 201 (see the errors above)")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def report(result: dict[str, Any]) -> None:
    """Print the table and the verdict, write the JSON, print the snippet."""
    print_flush("")
    print_flush(table(result["summary"]))
    print_flush("")
    for line in verdict_lines(result):
        print_flush(line)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"filing-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print_flush(f"\nresults written to {out.relative_to(ROOT)}")
    print_flush("\n--- Markdown for BENCHMARKS.md ---\n")
    print_flush(markdown(result))


def print_flush(*args: Any) -> None:
    print(*args, flush=True)


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def _run(entry: Callable[[], int]) -> int:
    # A stopped benchmark still stops its server and drops its database.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return entry()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None)
        print(f"benchmark could not run: {exc}", file=sys.stderr)
        if detail:
            print(detail.decode(errors="replace"), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_run(main))
