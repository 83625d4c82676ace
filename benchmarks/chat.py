"""Benchmark of the real-time chat: real WebSockets under gunicorn (issue #4, 10).

Rooms of three (a consumer, a merchant's staff member, the assigned mediator), each
member on its own Socket.IO connection (python-socketio client, WebSocket transport
only), all joined to the joint room of their case. Members send ``send_message`` at
a fixed total rate (default 150 messages a second, spread evenly over the rooms and
their members); each message must reach the two OTHER members of its room. Per
delivery, the time from the sender's ``emit`` to the ``message_created`` at the
receiver (both ``time.monotonic_ns()`` on this host: CLOCK_MONOTONIC, one clock
for every process); p50/p99/max; completeness: every acknowledged message
delivered to each other member exactly once, none to anybody else.

Scenarios (each against two servers in turn, in the same run):

- ``300``: 300 connections (100 rooms), one gunicorn process;
- ``2000``: 2,000 connections (667 rooms: 2,001 connections), one process;
- ``redis-300``: 300 connections over two gunicorn processes sharing Redis (the
  Flask-SocketIO message queue, on a channel of its own), the members of every
  room split between the two processes.

Servers: ``chat`` is the app (``mediation:create_app()``, PostgreSQL storage,
token authentication, access checks, limits); ``echo`` is the baseline
(``benchmarks/echo_server.py``): the same events and Flask-SocketIO settings,
nothing stored or checked. Both are served by ``gunicorn -k gthread -w 1
--threads T --worker-connections C --no-control-socket`` (simple-websocket), with
T and C above the connections each process holds (every WebSocket holds a thread
of the gthread pool for its whole life).

Aims: p99 under 25 ms at 300 connections, under 50 ms at 2,000, under 40 ms across
two processes with Redis.

Usage::

    python benchmarks/chat.py [--connections 300,2000] [--redis-connections 300]
                              [--rate 150] [--duration 30] [--warmup 5]
                              [--database-url URL] [--redis-url URL]

The database (default ``bench_chat`` on 127.0.0.1:5432) is created through the
``postgres`` database, built with ``flask --app mediation db upgrade`` and dropped
at the end; its name must start with ``bench``. Users, API tokens and the cases
(``in_mediation``, mediator assigned) are loaded with Core INSERTs. Exit code 0
when the run completed and every message was delivered exactly once to each other
member (whatever the latency verdict), 1 when a delivery check failed, 2 when it
could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import multiprocessing
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``mediation`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.filing import (  # noqa: E402
    HOST,
    RESULTS_DIR,
    SECRET_KEY,
    CpuProbe,
    _check_bench_name,
    _load_average,
    _run,
    _stop,
    _tail,
    _wait_healthy,
    create_database,
    drop_database,
    free_port,
    machine_info,
    normalise_url,
    percentile,
    print_flush,
    server_env,
    upgrade_schema,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_chat"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
APPS = {
    "echo": "benchmarks.echo_server:create_app()",
    "chat": "mediation:create_app()",
}
NAMESPACE = "/chat"
#: Aims of the issue (p99 ms).
AIM_SMALL_MS = 25.0
AIM_LARGE_MS = 50.0
AIM_REDIS_MS = 40.0
#: Single-process scenarios up to this many connections have the small aim.
SMALL_CONNECTIONS = 300
#: Extra gunicorn threads beyond the WebSockets (health checks, handshakes).
SPARE_THREADS = 50
#: Seconds allowed for one connection (handshake, namespace, join).
CONNECT_TIMEOUT = 60
#: Longest wait for the last deliveries after sending (seconds).
MAX_DRAIN = 120
log = print_flush


# Setup ---------------------------------------------------------------------


def raise_nofile() -> int:
    """Raise the soft limit of open files to the hard limit; return it.

    Every WebSocket is one descriptor in the load generator and one in the
    server (which inherits the limit).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rooms_for(connections: int) -> int:
    """Return how many rooms of three hold ``connections`` (rounded up)."""
    return max(1, math.ceil(connections / 3))


def seed_rooms(url: str, counts: list[int]) -> list[list[dict[str, Any]]]:
    """Create the rooms of every scenario: cases in mediation with three members.

    One merchant (registered through the service: valid credit code); per room a
    consumer, a staff member of that merchant and a mediator, each with an API
    token, and a case ``in_mediation`` with that mediator assigned. Users, tokens
    and cases are Core INSERTs (a throwaway password hash: nobody signs in).

    :param counts: rooms per scenario.
    :return: per scenario, its rooms: ``{"case_id", "members": [{"role",
        "user_id", "token"}, ...]}`` in the order consumer, merchant, mediator.
    """
    from werkzeug.security import generate_password_hash

    from mediation import clock, create_app
    from mediation.auth.models import ApiToken, User
    from mediation.cases.models import Case
    from mediation.extensions import db
    from mediation.merchants.services import register_merchant
    from mediation.merchants.uscc import check_character

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": SECRET_KEY,
            "LOG_LEVEL": "WARNING",
            "MAIL_SERVER": None,
            "REDIS_URL": None,
        }
    )
    now = clock.now_utc()
    password_hash = generate_password_hash(secrets.token_hex(8), "scrypt:1024:8:1")
    body = "91330106MA2CHAT01"
    total = sum(counts)
    with app.app_context():
        merchant = register_merchant(
            {
                "name": "Bench Chat Appliances",
                "uscc": body + check_character(body),
                "kind": "goods",
                "region_code": "330106",
            },
            now=now,
        )
        db.session.commit()
        merchant_id = merchant.id
        roles = ("consumer", "merchant", "mediator")
        users = []
        for n in range(total):
            for role in roles:
                users.append(
                    {
                        "email": f"{role}{n}@chat.bench.example.com",
                        "password_hash": password_hash,
                        "name": f"Bench {role} {n}",
                        "role": role,
                        "locale": "en",
                        "merchant_id": merchant_id if role == "merchant" else None,
                        "is_active_account": True,
                        "categories": [],
                        "session_nonce": secrets.token_hex(8),
                        "created_at": now,
                    }
                )
        with db.engine.begin() as conn:
            for start in range(0, len(users), 3000):
                conn.execute(User.__table__.insert(), users[start : start + 3000])
            ids = {
                email: user_id
                for user_id, email in conn.execute(
                    db.select(User.id, User.email).where(
                        User.email.like("%@chat.bench.example.com")
                    )
                )
            }
            tokens: dict[int, str] = {}
            token_rows = []
            for user_id in ids.values():
                secret = secrets.token_urlsafe(32)
                tokens[user_id] = secret
                token_rows.append(
                    {
                        "user_id": user_id,
                        "token_hash": ApiToken.hash_token(secret),
                        "created_at": now,
                        "expires_at": now + timedelta(hours=12),
                    }
                )
            conn.execute(ApiToken.__table__.insert(), token_rows)
            case_rows = []
            for n in range(total):
                case_rows.append(
                    {
                        "consumer_id": ids[f"consumer{n}@chat.bench.example.com"],
                        "merchant_id": merchant_id,
                        "merchant_name": "Bench Chat Appliances",
                        "category": "quality_defect",
                        "order_ref": f"CH{n:07d}",
                        "order_date": date(2026, 10, 1),
                        "amount_paid": 19900,
                        "claim_type": "refund",
                        "claim_amount": 19900,
                        "description": "The kettle leaks from the base after a week.",
                        "status": "in_mediation",
                        "due_at": now + timedelta(days=10),
                        "mediator_id": ids[f"mediator{n}@chat.bench.example.com"],
                        "was_mediated": True,
                        "filed_at": now - timedelta(days=5),
                        "updated_at": now - timedelta(days=1),
                        "version": 1,
                        "arbitration_consent": False,
                    }
                )
            conn.execute(Case.__table__.insert(), case_rows)
            case_ids = {
                order_ref: case_id
                for case_id, order_ref in conn.execute(
                    db.select(Case.id, Case.order_ref).where(Case.order_ref.like("CH%"))
                )
            }
        db.engine.dispose()
    scenarios: list[list[dict[str, Any]]] = []
    n = 0
    for count in counts:
        rooms = []
        for _ in range(count):
            members = []
            for role in roles:
                user_id = ids[f"{role}{n}@chat.bench.example.com"]
                members.append(
                    {"role": role, "user_id": user_id, "token": tokens[user_id]}
                )
            rooms.append({"case_id": case_ids[f"CH{n:07d}"], "members": members})
            n += 1
        scenarios.append(rooms)
    return scenarios


def redis_available(url: str) -> str | None:
    """Return None when Redis answers PING at ``url``, else the reason."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        client.close()
        return None
    except Exception as exc:  # any failure means: no Redis scenario
        return f"{type(exc).__name__}: {exc}"


# Servers -------------------------------------------------------------------


def gunicorn_command(port: int, app: str, connections: int) -> list[str]:
    """Return the command line of one server process holding ``connections``."""
    exe = Path(sys.executable).parent / "gunicorn"
    if not exe.exists():
        exe = ROOT / ".venv" / "bin" / "gunicorn"
    threads = connections + SPARE_THREADS
    return [
        str(exe),
        "-k",
        "gthread",
        "-w",
        "1",
        "--threads",
        str(threads),
        # gthread stops accepting at worker_connections (default 1000).
        "--worker-connections",
        str(threads + SPARE_THREADS),
        "--no-control-socket",
        "--graceful-timeout",
        "5",
        # The project's settings (the garbage collector of the worker), as a
        # deployment started in the project directory gets them.
        "-c",
        str(ROOT / "gunicorn.conf.py"),
        "-b",
        f"{HOST}:{port}",
        app,
    ]


@contextlib.contextmanager
def running_servers(
    target: str,
    app: str,
    count: int,
    connections: int,
    base_env: dict[str, str],
    redis: dict[str, str] | None,
    workdir: Path,
):
    """Run ``count`` gunicorn processes of ``target``; yield their URLs, pids, command.

    :param redis: ``{"url", "channel"}`` to share events through Redis, or None.
    """
    procs: list[subprocess.Popen] = []
    urls: list[str] = []
    logs: list[Path] = []
    command: list[str] = []
    per_server = math.ceil(connections / count)
    try:
        for k in range(count):
            port = free_port()
            command = gunicorn_command(port, app, per_server)
            env = dict(base_env)
            env.update(
                PUBLIC_URL=f"http://{HOST}:{port}",
                REDIS_URL=redis["url"] if redis else "",
                SOCKETIO_CHANNEL=redis["channel"] if redis else "flask-socketio",
            )
            log_path = workdir / f"{target}-{k}-{port}.log"
            with open(log_path, "wb") as log_file:
                procs.append(
                    subprocess.Popen(
                        command,
                        cwd=ROOT,
                        env=env,
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            urls.append(f"http://{HOST}:{port}")
            logs.append(log_path)
        for proc, url, log_path in zip(procs, urls, logs, strict=True):
            _wait_healthy(proc, int(url.rsplit(":", 1)[1]), log_path)
        yield urls, [p.pid for p in procs], command, logs
    finally:
        for proc in procs:
            _stop(proc)


# Load generator (one process per slice of the rooms) ------------------------


class Slice:
    """The rooms of one load-generator process and what happened in them."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.lock = threading.Lock()
        #: client_id -> (send ns, room index, member index, measured)
        self.sent: dict[str, tuple[int, int, int, bool]] = {}
        self.acked: dict[str, bool] = {}
        self.deliveries: Counter = Counter()
        self.latencies_ms: list[float] = []
        #: whole seconds since the start -> worst delivery latency sent then (ms)
        self.worst_by_second: dict[int, float] = {}
        self.ack_ms: list[float] = []
        self.ack_errors: list[str] = []
        self.counts = Counter()
        self.max_send_lag_ms = 0.0

    def on_message(self, room: int, member: int, data: Any) -> None:
        now = time.monotonic_ns()
        cid = data.get("client_id") if isinstance(data, dict) else None
        info = self.sent.get(cid) if cid else None
        with self.lock:
            if info is None:
                self.counts["other_messages"] += 1  # system messages, unknown ids
                return
            sent_ns, sent_room, sent_member, measured = info
            if sent_room != room:
                self.counts["stray"] += 1
                return
            if sent_member == member:
                self.counts["own_echo"] += 1
                return
            key = (cid, member)
            self.deliveries[key] += 1
            if self.deliveries[key] == 1 and measured:
                latency = (now - sent_ns) / 1e6
                self.latencies_ms.append(latency)
                second = int((sent_ns - self.spec["start_ns"]) // 1_000_000_000)
                if latency > self.worst_by_second.get(second, 0.0):
                    self.worst_by_second[second] = latency

    def on_ack(self, cid: str, data: Any) -> None:
        now = time.monotonic_ns()
        ok = isinstance(data, dict) and data.get("ok") is True
        with self.lock:
            self.acked[cid] = ok
            sent_ns, _, _, measured = self.sent[cid]
            if ok and measured:
                self.ack_ms.append((now - sent_ns) / 1e6)
            if not ok:
                self.counts["ack_errors"] += 1
                if len(self.ack_errors) < 5:
                    self.ack_errors.append(json.dumps(data)[:300])

    def progress(self) -> int:
        """Return how many acks and deliveries arrived so far."""
        with self.lock:
            return len(self.acked) + sum(self.deliveries.values())

    def complete(self) -> bool:
        with self.lock:
            if len(self.acked) < len(self.sent):
                return False
            expected = 2 * sum(1 for ok in self.acked.values() if ok)
            return len(self.deliveries) >= expected

    def tally(self) -> dict[str, Any]:
        with self.lock:
            ok_ids = {cid for cid, ok in self.acked.items() if ok}
            expected = 2 * len(ok_ids)
            delivered = sum(1 for (cid, _m) in self.deliveries if cid in ok_ids)
            duplicates = sum(n - 1 for n in self.deliveries.values() if n > 1)
            return {
                "sent": len(self.sent),
                "acked_ok": len(ok_ids),
                "unacked": len(self.sent) - len(self.acked),
                "expected_deliveries": expected,
                "delivered": delivered,
                "missing": expected - delivered,
                "duplicates": duplicates,
                "unacked_but_delivered": sum(
                    1 for (cid, _m) in self.deliveries if cid not in ok_ids
                ),
                "latencies_ms": list(self.latencies_ms),
                "worst_by_second": dict(self.worst_by_second),
                "ack_ms": list(self.ack_ms),
                "ack_error_samples": list(self.ack_errors),
                "max_send_lag_ms": round(self.max_send_lag_ms, 1),
                **dict(self.counts),
            }


def _connect_member(sl: Slice, room_index: int, member_index: int):
    """Connect one member and join its room; return the client."""
    import socketio

    spec = sl.spec
    room = spec["rooms"][room_index]
    member = room["members"][member_index]
    client = socketio.Client(
        reconnection=False, handle_sigint=False, request_timeout=CONNECT_TIMEOUT
    )
    client.on(
        "message_created",
        lambda data: sl.on_message(room_index, member_index, data),
        namespace=NAMESPACE,
    )

    def gone(*_args: Any) -> None:
        if not sl.spec.get("closing"):
            with sl.lock:
                sl.counts["disconnects"] += 1

    client.on("disconnect", gone, namespace=NAMESPACE)
    token = member["token"]
    client.connect(
        member["server"],
        headers={"Authorization": f"Bearer {token}"},
        auth={"token": token},
        transports=["websocket"],
        namespaces=[NAMESPACE],
        wait_timeout=CONNECT_TIMEOUT,
    )
    answer = client.call(
        "join_case",
        {"case_id": room["case_id"], "room": "joint", "after": 0},
        namespace=NAMESPACE,
        timeout=CONNECT_TIMEOUT,
    )
    if not (isinstance(answer, dict) and answer.get("ok") is True):
        client.disconnect()
        raise RuntimeError(f"join_case refused: {json.dumps(answer)[:300]}")
    return client


def worker_main(pipe, spec: dict[str, Any]) -> None:
    """One load-generator process: connect, wait for the start, send, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    raise_nofile()
    sl = Slice(spec)
    clients: dict[tuple[int, int], Any] = {}
    errors: list[str] = []
    jobs = [
        (r, m) for r in range(len(spec["rooms"])) for m in range(3)
    ]  # member order: consumer, merchant, mediator
    with ThreadPoolExecutor(max_workers=spec["connect_concurrency"]) as pool:
        futures = {pool.submit(_connect_member, sl, r, m): (r, m) for r, m in jobs}
        for future, key in futures.items():
            try:
                clients[key] = future.result()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
    # The connected clients live until the end: keep them out of the collector's
    # full passes, whose pauses would be counted as delivery latency.
    gc.collect()
    gc.freeze()
    pipe.send(
        {
            "ready": True,
            "connected": len(clients),
            "errors": errors[:5],
            "failed": len(errors),
        }
    )
    command = pipe.recv()
    if command[0] == "start" and not errors:
        cpu_before = time.process_time()
        spec["start_ns"] = command[1]
        _send_loop(sl, clients, command[1])
        drained = _drain(sl, spec["drain"])
        client_cpu = time.process_time() - cpu_before
    else:
        drained = client_cpu = 0.0
    result = sl.tally()
    result["drain_seconds"] = round(drained, 1)
    result["client_cpu_seconds"] = client_cpu
    result["connected"] = len(clients)
    result["connect_failed"] = len(errors)
    result["connect_errors"] = errors[:5]
    pipe.send(result)
    pipe.recv()  # "close"
    spec["closing"] = True
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(_quiet_disconnect, clients.values()))
    pipe.send({"closed": True})


def _drain(sl: Slice, quiet: float) -> float:
    """Wait for the last acks and deliveries; return the seconds waited.

    Waits until everything arrived, or nothing arrived for ``quiet`` seconds
    (late, not lost, messages of an overloaded server still count), at most
    MAX_DRAIN seconds.
    """
    started = time.monotonic()
    seen, last_change = -1, started
    while not sl.complete():
        now = time.monotonic()
        progress = sl.progress()
        if progress != seen:
            seen, last_change = progress, now
        if now - last_change > quiet or now - started > MAX_DRAIN:
            break
        time.sleep(0.05)  # polling for the last deliveries (bounded above)
    return time.monotonic() - started


def _quiet_disconnect(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.disconnect()


def _send_loop(sl: Slice, clients: dict, start_ns: int) -> None:
    """Send at this slice's share of the rate, open loop, round robin."""
    spec = sl.spec
    rooms = spec["rooms"]
    rate = spec["rate"]
    if rate <= 0 or not rooms:
        return
    interval_ns = 1e9 / rate
    phase_ns = interval_ns * spec["phase"]
    total = int((spec["warmup"] + spec["duration"]) * rate)
    measured_from = start_ns + spec["warmup"] * 1e9
    prefix = spec["prefix"]
    for k in range(total):
        due = start_ns + phase_ns + k * interval_ns
        delay = (due - time.monotonic_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        room_index = k % len(rooms)
        member_index = (k // len(rooms)) % 3
        client = clients[(room_index, member_index)]
        cid = f"{prefix}-{k}"
        now = time.monotonic_ns()
        sl.max_send_lag_ms = max(sl.max_send_lag_ms, (now - due) / 1e6)
        sl.sent[cid] = (now, room_index, member_index, now >= measured_from)
        try:
            client.emit(
                "send_message",
                {
                    "case_id": rooms[room_index]["case_id"],
                    "room": "joint",
                    "body": f"bench message {k} sent at {now}",
                    "client_id": cid,
                },
                namespace=NAMESPACE,
                callback=lambda *answer, cid=cid: sl.on_ack(
                    cid, answer[0] if answer else None
                ),
            )
        except Exception as exc:
            with sl.lock:
                sl.counts["send_errors"] += 1
                if len(sl.ack_errors) < 5:
                    sl.ack_errors.append(f"emit: {exc!r}"[:300])


def server_processes(master_pids: list[int]) -> list[int]:
    """Return the pids of the gunicorn workers (children of the masters)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, IndexError, ValueError):
            raw = Path(f"/proc/{pid}/stat").read_text()
            if int(raw.rsplit(")", 1)[1].split()[1]) in master_pids:
                out.append(int(pid))
    return out


def threads_and_memory(pids: list[int]) -> dict[str, Any]:
    """Return the threads and resident memory (MiB) of ``pids``, summed."""
    threads, rss_kib = 0, 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Threads:"):
                    threads += int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss_kib += int(line.split()[1])
    return {"server_threads": threads, "server_rss_mib": round(rss_kib / 1024)}


def run_load(
    rooms: list[dict[str, Any]],
    urls: list[str],
    args: argparse.Namespace,
    tag: str,
    probes: list[CpuProbe],
    server_pids: list[int],
) -> dict[str, Any]:
    """Drive the rooms from several processes; return the merged result.

    The CPU of the servers (and of their database backends) is counted from
    the start of sending to the last delivery, not while connecting.
    """
    connections = 3 * len(rooms)
    processes = max(1, math.ceil(connections / args.clients_per_process))
    ctx = multiprocessing.get_context("spawn")
    slices = [rooms[i::processes] for i in range(processes)]
    workers = []
    for i, mine in enumerate(slices):
        # Members of a room go to the servers in turn: with two servers, every
        # room has members on both.
        placed = [
            {
                "case_id": room["case_id"],
                "members": [
                    {**member, "server": urls[(j + m) % len(urls)]}
                    for m, member in enumerate(room["members"])
                ],
            }
            for j, room in enumerate(mine)
        ]
        spec = {
            "rooms": placed,
            "rate": args.rate * len(mine) / len(rooms),
            "phase": i / processes,
            "warmup": args.warmup,
            "duration": args.duration,
            "drain": args.drain,
            "prefix": f"{tag}-{i}-{uuid.uuid4().hex[:6]}",
            "connect_concurrency": args.connect_concurrency,
        }
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker_main, args=(child, spec), daemon=True)
        proc.start()
        workers.append((proc, parent))
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    try:
        ready = [_recv(p, CONNECT_TIMEOUT * 3, proc) for proc, p in workers]
        connect_seconds = time.monotonic() - started
        failed = sum(r["failed"] for r in ready)
        if failed:
            samples = [e for r in ready for e in r["errors"]][:5]
            log(f"  {failed} connections failed: {samples}")
        start_ns = time.monotonic_ns() + 1_000_000_000
        for _proc, p in workers:
            p.send(("start", start_ns) if not failed else ("stop", 0))
        time.sleep(max(0.0, (start_ns - time.monotonic_ns()) / 1e9))
        before = [probe.sample() for probe in probes]
        wait = args.warmup + args.duration + MAX_DRAIN + 60
        results = [_recv(p, wait, proc) for proc, p in workers]
        cpu = [
            probe.used(b, probe.sample())
            for probe, b in zip(probes, before, strict=True)
        ]
        held = threads_and_memory(server_pids)
        for _proc, p in workers:
            p.send(("close",))
        for proc, p in workers:
            with contextlib.suppress(Exception):
                _recv(p, 60, proc)
    finally:
        for proc, _p in workers:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
    merged: dict[str, Any] = {
        "processes": processes,
        "connections": connections,
        "rooms": len(rooms),
        "connect_seconds": round(connect_seconds, 1),
        "cpu": cpu,
        **held,
    }
    lat: list[float] = []
    worst_by_second: dict[int, float] = {}
    ack: list[float] = []
    samples: list[str] = []
    for r in results:
        lat += r.pop("latencies_ms")
        for second, worst in r.pop("worst_by_second").items():
            worst_by_second[second] = max(worst_by_second.get(second, 0.0), worst)
        ack += r.pop("ack_ms")
        samples += r.pop("ack_error_samples") + r.pop("connect_errors")
        for key, value in r.items():
            if key in ("max_send_lag_ms", "drain_seconds"):
                merged[key] = max(merged.get(key, 0.0), value)
            elif key == "client_cpu_seconds":
                merged[key] = merged.get(key, 0.0) + value
            elif isinstance(value, int):
                merged[key] = merged.get(key, 0) + value
    merged["error_samples"] = samples[:5]
    lat.sort()
    ack.sort()
    merged.update(
        deliveries_measured=len(lat),
        # The worst delivery of the measured messages sent in each second since
        # the start (0 for the warm-up's seconds): stalls show as spikes.
        worst_ms_by_second=[
            round(worst_by_second.get(k, 0.0), 1)
            for k in range(max(worst_by_second, default=-1) + 1)
        ],
        p50_ms=percentile(lat, 50),
        p90_ms=percentile(lat, 90),
        p99_ms=percentile(lat, 99),
        max_ms=percentile(lat, 100),
        ack_p50_ms=percentile(ack, 50),
        ack_p99_ms=percentile(ack, 99),
    )
    return merged


def _recv(pipe, timeout: float, proc) -> Any:
    if not pipe.poll(timeout):
        raise RuntimeError(
            f"load generator {proc.pid} did not answer in {timeout:.0f} s"
            + ("" if proc.is_alive() else f" (exited with {proc.exitcode})")
        )
    return pipe.recv()


# Scenarios ------------------------------------------------------------------


def scenarios_for(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Return the scenarios to run: single-process ones, then the Redis one."""
    out = []
    for n in args.connections:
        out.append(
            {
                "name": str(n),
                "connections": n,
                "rooms": rooms_for(n),
                "servers": 1,
                "aim_p99_ms": AIM_SMALL_MS if n <= SMALL_CONNECTIONS else AIM_LARGE_MS,
            }
        )
    if args.redis_connections:
        n = args.redis_connections
        out.append(
            {
                "name": f"redis-{n}",
                "connections": n,
                "rooms": rooms_for(n),
                "servers": 2,
                "aim_p99_ms": AIM_REDIS_MS,
            }
        )
    return out


def run_scenario(
    scenario: dict[str, Any],
    rooms: list[dict[str, Any]],
    args: argparse.Namespace,
    base_env: dict[str, str],
    workdir: Path,
    database: str | None,
) -> list[dict[str, Any]]:
    """Run one scenario against each target (baseline first); return the rows."""
    rows = []
    for target in args.targets:
        redis = None
        if scenario["servers"] > 1:
            redis = {
                "url": args.redis_url,
                "channel": f"bench-chat-{os.getpid()}-{uuid.uuid4().hex[:8]}",
            }
        load_start = _load_average()
        log(
            f"{scenario['name']} / {target}: {3 * len(rooms)} connections, "
            f"{len(rooms)} rooms, {scenario['servers']} server process(es)"
            + (" with Redis" if redis else "")
        )
        with running_servers(
            target,
            args.app if target == "chat" and args.app else APPS[target],
            scenario["servers"],
            3 * len(rooms),
            base_env,
            redis,
            workdir,
        ) as (urls, pids, command, logs):
            probes = [
                CpuProbe(pid, database if target == "chat" else None) for pid in pids
            ]
            try:
                result = run_load(
                    rooms,
                    urls,
                    args,
                    f"{scenario['name']}-{target}",
                    probes,
                    server_processes(pids),
                )
            except RuntimeError as exc:
                for path in logs:
                    log(_tail(path, 15)[-3000:])
                raise RuntimeError(f"{scenario['name']} / {target}: {exc}") from exc
            cpu = result.pop("cpu")
        result["server_errors"] = server_errors(logs)
        for line, count in result["server_errors"].items():
            log(f"  server log: {count} x {line}")
        server_cpu = sum(c["server"] or 0.0 for c in cpu)
        db_cpu = sum(c["db"] or 0.0 for c in cpu) if target == "chat" else None
        sent = result.get("sent", 0)
        row = {
            "scenario": scenario["name"],
            "target": target,
            "servers": scenario["servers"],
            "redis": bool(redis),
            "aim_p99_ms": scenario["aim_p99_ms"],
            "load_average_start": load_start,
            "gunicorn": command,
            **result,
            "server_cpu_ms_per_message": round(server_cpu * 1000 / sent, 2)
            if sent
            else None,
            "db_cpu_ms_per_message": round(db_cpu * 1000 / sent, 2)
            if sent and db_cpu is not None
            else None,
            "client_cpu_ms_per_message": round(
                result.get("client_cpu_seconds", 0.0) * 1000 / sent, 2
            )
            if sent
            else None,
        }
        row["complete"] = _complete(row)
        rows.append(row)
        log(
            f"  sent {row.get('sent', 0)}, delivered {row.get('delivered', 0)}"
            f"/{row.get('expected_deliveries', 0)}, p50 {_ms(row['p50_ms'])} ms, "
            f"p99 {_ms(row['p99_ms'])} ms, max {_ms(row['max_ms'])} ms"
            + ("" if row["complete"] else "  INCOMPLETE")
        )
        for sample in row["error_samples"]:
            log(f"  error: {sample}")
    return rows


def server_errors(logs: list[Path], top: int = 5) -> dict[str, int]:
    """Count the server logs' errors by message and exception (the most frequent)."""
    counts: Counter = Counter()
    for path in logs:
        with contextlib.suppress(OSError):
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("{") and '"level": "ERROR"' in line:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        entry = {"msg": line}
                    exc = (entry.get("exc") or "").strip().splitlines()
                    key = entry.get("msg", "") + (f": {exc[-1]}" if exc else "")
                elif "[CRITICAL]" in line or "[ERROR]" in line:
                    # gunicorn's own lines, e.g. "[CRITICAL] WORKER TIMEOUT (pid:1)"
                    key = "gunicorn " + re.sub(r"\d+", "N", line.split("] ", 3)[-1])
                else:
                    continue
                counts[key[:200]] += 1
    return dict(counts.most_common(top))


def worker_timeouts(row: dict[str, Any]) -> int:
    """Return how often gunicorn killed a silent worker during the run."""
    return sum(
        n
        for line, n in row.get("server_errors", {}).items()
        if "WORKER TIMEOUT" in line
    )


def _complete(row: dict[str, Any]) -> bool:
    """Every message acknowledged and delivered once to each other member."""
    return (
        row.get("sent", 0) > 0
        and not worker_timeouts(row)
        and not row.get("connect_failed")
        and not row.get("unacked")
        and not row.get("ack_errors")
        and not row.get("send_errors")
        and not row.get("missing")
        and not row.get("duplicates")
        and not row.get("stray")
        and not row.get("disconnects")
    )


def _incomplete_reason(row: dict[str, Any]) -> str:
    killed = worker_timeouts(row)
    parts = []
    if killed:
        parts.append(f"gunicorn killed the silent worker {killed} time(s)")
    parts += [
        f"{row[key]} {label}"
        for key, label in (
            ("connect_failed", "connections failed"),
            ("unacked", "messages unacknowledged"),
            ("ack_errors", "messages refused"),
            ("send_errors", "emits failed"),
            ("missing", "deliveries missing"),
            ("duplicates", "deliveries duplicated"),
            ("stray", "deliveries to another room"),
            ("disconnects", "connections dropped"),
        )
        if row.get(key)
    ]
    return ", ".join(parts) or "nothing sent"


# Report ---------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(rows: list[dict[str, Any]]) -> str:
    """Return the results as a Markdown table."""
    lines = [
        "| scenario | server | connections (rooms) | server processes | sent "
        "| delivered / expected | missing, dup. | p50 ms | p90 ms | p99 ms | max ms "
        "| ack p50/p99 ms | CPU ms/msg: server, db, clients | send lag max ms "
        "| server threads, RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|",
    ]
    for r in rows:
        place = f"{r['servers']}" + (" + Redis" if r["redis"] else "")
        lines.append(
            f"| {r['scenario']} | {r['target']} | {r['connections']} ({r['rooms']}) "
            f"| {place} | {r.get('sent', 0)} "
            f"| {r.get('delivered', 0)} / {r.get('expected_deliveries', 0)} "
            f"| {r.get('missing', 0)}, {r.get('duplicates', 0)} "
            f"| {_ms(r['p50_ms'])} | {_ms(r['p90_ms'])} | {_ms(r['p99_ms'])} "
            f"| {_ms(r['max_ms'])} | {_ms(r['ack_p50_ms'])} / {_ms(r['ack_p99_ms'])} "
            f"| {_ms(r['server_cpu_ms_per_message'])}, "
            f"{_ms(r['db_cpu_ms_per_message'])}, "
            f"{_ms(r.get('client_cpu_ms_per_message'))} "
            f"| {_ms(r.get('max_send_lag_ms'))} "
            f"| {r.get('server_threads', '-')}, {r.get('server_rss_mib', '-')} |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check each scenario's aim on the app (``chat``) rows."""
    out = []
    by_key = {(r["scenario"], r["target"]): r for r in rows}
    for r in rows:
        if r["target"] != "chat":
            continue
        echo = by_key.get((r["scenario"], "echo"))
        latency_ok = r["p99_ms"] is not None and r["p99_ms"] < r["aim_p99_ms"]
        out.append(
            {
                "scenario": r["scenario"],
                "aim_p99_ms": r["aim_p99_ms"],
                "p99_ms": r["p99_ms"],
                "echo_p99_ms": echo["p99_ms"] if echo else None,
                "latency_ok": latency_ok,
                "complete": r["complete"],
                "reason": None if r["complete"] else _incomplete_reason(r),
            }
        )
    return out


def verdict_lines(result: dict[str, Any], bold: str = "") -> list[str]:
    """Return one line per aim (``bold="**"`` for Markdown)."""

    def mark(ok: bool) -> str:
        return f"{bold}{'PASS' if ok else 'MISS'}{bold}"

    lines = []
    for v in result["verdict"]:
        echo = (
            f"; baseline echo p99 {_ms(v['echo_p99_ms'])} ms"
            if v["echo_p99_ms"] is not None
            else ""
        )
        lines.append(
            f"- {v['scenario']}: p99 {bold}{_ms(v['p99_ms'])} ms{bold} "
            f"(aim < {v['aim_p99_ms']:.0f} ms){echo}: {mark(v['latency_ok'])}"
        )
        lines.append(
            f"- {v['scenario']}: every message delivered once to each other member: "
            + (mark(True) if v["complete"] else f"{bold}FAILED{bold} ({v['reason']})")
        )
    for name, reason in result.get("skipped", {}).items():
        lines.append(f"- {name}: {bold}SKIPPED{bold} ({reason})")
    return lines


def markdown(result: dict[str, Any]) -> str:
    """Return the snippet to paste into BENCHMARKS.md."""
    m, s = result["machine"], result["settings"]
    return "\n".join(
        [
            f"Run of {m['date']}: {s['rate']} messages/s in total for "
            f"{s['duration']} s measured (after {s['warmup']} s of warm-up) per "
            "scenario and server.",
            "",
            f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory']}",
            f"- OS: {m['os']}; Python {m['python']}; {m['database']}",
            f"- Load average before the run (1, 5, 15 min): "
            f"{m['load_average_before']}; after: {result['load_average_after']}",
            f"- Server: {m['gunicorn']}",
            "- Load average (1 min) at the start of each run: "
            + ", ".join(
                f"{r['scenario']}/{r['target']} "
                f"{r.get('load_average_start', '?').split(',')[0]}"
                for r in result["rows"]
            ),
            "",
            table(result["rows"]),
            "",
            *verdict_lines(result, bold="**"),
        ]
    )


def report(result: dict[str, Any]) -> None:
    """Print the table and the verdict, write the JSON, print the snippet."""
    print_flush("")
    print_flush(table(result["rows"]))
    print_flush("")
    for line in verdict_lines(result):
        print_flush(line)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"chat-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print_flush(f"\nresults written to {out.relative_to(ROOT)}")
    print_flush("\n--- Markdown for BENCHMARKS.md ---\n")
    print_flush(markdown(result))


# Main ---------------------------------------------------------------------


def _int_list(value: str) -> list[int]:
    try:
        out = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {value!r}") from None
    if any(n < 2 for n in out):
        raise argparse.ArgumentTypeError("each scenario needs at least 2 connections")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--connections",
        type=_int_list,
        default=[300, 2000],
        help="single-process scenarios, comma-separated (default 300,2000; "
        "rounded up to rooms of three)",
    )
    parser.add_argument(
        "--redis-connections",
        type=int,
        default=300,
        help="connections of the two-process Redis scenario (0 skips it)",
    )
    parser.add_argument(
        "--rate", type=float, default=150.0, help="messages per second in total"
    )
    parser.add_argument(
        "--duration", type=float, default=30.0, help="measured seconds per run"
    )
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="unmeasured seconds before"
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=10.0,
        help="after sending, wait for the last deliveries until none came for "
        f"this many seconds (default 10; at most {MAX_DRAIN} s in all)",
    )
    parser.add_argument(
        "--clients-per-process",
        type=int,
        default=400,
        help="connections per load-generator process (default 400)",
    )
    parser.add_argument("--connect-concurrency", type=int, default=8)
    parser.add_argument(
        "--targets",
        default="echo,chat",
        help="servers to run, in order (default echo,chat)",
    )
    parser.add_argument(
        "--app",
        default=None,
        help="WSGI app of the chat server (experiments only, e.g. a wrapper "
        f"module found through PYTHONPATH; default {APPS['chat']})",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not args.targets or any(t not in APPS for t in args.targets):
        parser.error(f"--targets: choose from {', '.join(APPS)}")
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0:
        parser.error("need --rate > 0, --duration > 0, --warmup >= 0")
    if args.redis_connections and args.redis_connections < 2:
        parser.error("--redis-connections: at least 2 (or 0 to skip)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Prepare, run, report; return the exit code."""
    args = parse_args(argv)
    url = normalise_url(args.database_url)
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() != "postgresql":
        raise RuntimeError("the chat benchmark stores on PostgreSQL only")
    database = make_url(url).database or ""
    _check_bench_name(database)
    nofile = raise_nofile()
    load_before = _load_average()
    scenarios = scenarios_for(args)
    skipped = {}
    if any(s["servers"] > 1 for s in scenarios):
        reason = redis_available(args.redis_url)
        if reason:
            log(f"Redis not reachable at {args.redis_url}: {reason}")
            skipped = {
                s["name"]: f"Redis: {reason}" for s in scenarios if s["servers"] > 1
            }
            scenarios = [s for s in scenarios if s["servers"] == 1]
    biggest = max((s["rooms"] * 3 for s in scenarios), default=0)
    if biggest + 100 > nofile:
        raise RuntimeError(
            f"open files limit {nofile} is too low for {biggest} connections "
            "(raise it: ulimit -n)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    base_env = server_env(url, str(workdir / "evidence"))
    base_env.update(BENCHMARK_ENDPOINTS="0", LOG_LEVEL="WARNING")
    total_started = time.monotonic()
    rows: list[dict[str, Any]] = []
    command: list[str] = ["-"]
    failed_run = False
    log(f"database {url}; open files limit {nofile}")
    create_database(url)
    try:
        upgrade_schema(base_env)
        started = time.monotonic()
        all_rooms = seed_rooms(url, [s["rooms"] for s in scenarios])
        log(
            f"seeded {sum(len(r) for r in all_rooms)} rooms "
            f"({3 * sum(len(r) for r in all_rooms)} users) in "
            f"{time.monotonic() - started:.1f} s"
        )
        for scenario, rooms in zip(scenarios, all_rooms, strict=True):
            rows += run_scenario(scenario, rooms, args, base_env, workdir, database)
            command = rows[-1]["gunicorn"]
        machine = machine_info(url, command, load_before)
    finally:
        if not args.keep_database:
            drop_database(url)
    result = {
        "benchmark": "chat",
        "settings": {
            "connections": args.connections,
            "redis_connections": args.redis_connections,
            "rate": args.rate,
            "duration": args.duration,
            "warmup": args.warmup,
            "drain": args.drain,
            "clients_per_process": args.clients_per_process,
            "targets": args.targets,
            "app": args.app or APPS["chat"],
            "database_url": url,
            "redis_url": args.redis_url,
            "open_files_limit": nofile,
        },
        "machine": machine,
        "load_average_after": _load_average(),
        "total_seconds": round(time.monotonic() - total_started, 1),
        "rows": rows,
        "verdict": verdict(rows),
        "skipped": skipped,
    }
    failed_run = any(not r["complete"] for r in rows)
    report(result)
    if failed_run:
        log("FAILED: some messages were not delivered exactly once (see above)")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed_run else 0


if __name__ == "__main__":
    sys.exit(_run(main))
