"""The scale-out deployment, as deployed (issue #8, item 5).

Once per module the whole cluster runs as ``make cluster`` runs it
(``deploy/cluster.py``): nginx with cookie stickiness in front of two gunicorn
server processes (``app1``, ``app2``) and one scheduler process, on a
PostgreSQL database of this module's own (created and dropped here, on the
server of ``TEST_DATABASE_URL``) and Redis db 10 (``TEST_REDIS_URL_CLUSTER``) with a
Socket.IO channel of its own. Every client talks to nginx only; each is pinned
to one process by the sticky cookie, and ``X-Served-By`` shows which.

- a message sent through one process reaches a client of the other, and
  presence spans both;
- idempotency keys and rate limits hold across the processes, and rate limits
  count per client address behind the proxy;
- the scheduler process and hand-started ``flask sweep`` runs, at the same
  moment, escalate each of 300 due cases exactly once per stage;
- killing a process (SIGKILL, messages in flight) loses no acknowledged
  message: its clients reconnect through nginx to the other process and catch
  up, and the process can join again.

The tests need PostgreSQL: they run in the PostgreSQL pass of ``.ci/run``
(``TEST_DATABASE_URL``). Without nginx or Redis they are skipped, or fail
when ``CI=true``. Every wait is bounded; nothing sleeps as an assertion.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from deploy.cluster import (
    Cluster,
    ClusterError,
    Node,
    cluster_env,
    free_port,
    nginx_binary,
    prepare,
)

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL_CLUSTER", "redis://127.0.0.1:6379/10")
#: The PostgreSQL server when TEST_DATABASE_URL is not PostgreSQL (the browser
#: test runs in the SQLite pass); the database name is this module's own.
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test_cluster"
DEMO_PASSWORD = "demo-pass-2026"
NAMESPACE = "/chat"
#: Bounded wait (seconds) for one answer or event over the network.
EVENT_TIMEOUT = 15
#: Due cases the sweepers share.
SWEEP_CASES = 300

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgres"),
    reason="the cluster runs on PostgreSQL: in the PostgreSQL pass of .ci/run "
    "(set TEST_DATABASE_URL)",
)


# Requirements and the database ------------------------------------------------


def _missing(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require_cluster_tools() -> None:
    """Skip (fail in CI) without nginx, Redis or PostgreSQL."""
    import redis

    try:
        nginx_binary()
    except ClusterError as exc:
        _missing(str(exc))
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        _missing(f"Redis not reachable at {REDIS_URL}: {exc}")


@dataclass
class Database:
    """A PostgreSQL database of the test's own, dropped at the end."""

    url: str
    admin_url: Any
    name: str

    @classmethod
    def create(cls, prefix: str) -> Database:
        from mediation.config import _normalise_db_url

        test_url = os.environ.get("TEST_DATABASE_URL", "")
        base = make_url(
            _normalise_db_url(test_url if test_url.startswith("postgres") else "")
            or DEFAULT_POSTGRES
        )
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        admin = base.set(database="postgres")
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except Exception as exc:  # no server: skip outside CI
            _missing(f"PostgreSQL not reachable at {admin}: {exc}")
        finally:
            engine.dispose()
        url = base.set(database=name).render_as_string(hide_password=False)
        return cls(url=url, admin_url=admin, name=name)

    def drop(self) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(
                    f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'
                )
        finally:
            engine.dispose()


# The cluster --------------------------------------------------------------------


@dataclass
class TestCluster:
    """A running cluster and what the tests need to reach it."""

    cluster: Cluster
    database: Database
    run_dir: Path
    env: dict[str, str]
    clients: list[Any] = field(default_factory=list)
    #: HTTP sessions of the tests, closed with the cluster.
    sessions: list[requests.Session] = field(default_factory=list)

    __test__ = False  # not a test class

    @property
    def url(self) -> str:
        return self.cluster.url

    def engine(self):
        return create_engine(self.database.url)

    def flask(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``flask --app mediation <args>`` with the cluster's environment."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "flask"), "--app", "mediation", *args],
            cwd=ROOT,
            env=self.cluster.process_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def logs(self) -> str:
        parts = []
        for name in ("app1", "app2", "scheduler"):
            parts.append(f"--- {name}\n{self.cluster.tail(name, 15)}")
        error_log = self.run_dir / "logs" / "nginx-error.log"
        if error_log.exists():
            tail = error_log.read_text(errors="replace").splitlines()[-10:]
            parts.append("--- nginx\n" + "\n".join(tail))
        return "\n".join(parts)


#: The demo's accounts and merchants, and its case waiting for a mediator
#: (Chris against 青禾茶庄): what the tests use of ``seed-demo``, without the
#: months of demo history that take half a minute to load.
SEED = """
from datetime import timedelta

from mediation import clock, create_app
from mediation.auth.services import create_user
from mediation.cases.services import Filing, apply_action, file_case
from mediation.extensions import db
from mediation.merchants.services import register_merchant
from mediation.seed import ACCOUNTS, DEMO_PASSWORD, MERCHANTS, _valid_code

app = create_app()
with app.app_context():
    now = clock.now_utc()
    merchants = {}
    for key, values in MERCHANTS.items():
        values = dict(values, uscc=_valid_code(values["uscc"]))
        if key == "shop":
            values["platform_id"] = merchants["platform"].id
        merchants[key] = register_merchant(values, now=now)
    users = {}
    for email, name, role, merchant, locale in ACCOUNTS:
        users[email] = create_user(
            email=email, password=DEMO_PASSWORD, name=name, role=role, now=now,
            locale=locale, merchant_id=merchants[merchant].id if merchant else None,
        )
    case = file_case(
        users["consumer2@example.com"],
        Filing(
            category="delivery", order_ref="QH-8842",
            order_date=(now - timedelta(days=20)).date(), amount_paid=8800,
            claim_type="refund", claim_amount=8800,
            description="Paid for tea three weeks ago, it never arrived.",
            merchant_id=merchants["independent"].id,
        ),
        now=now,
    )
    apply_action(
        case, "reject", {"reason": "物流显示已签收。"},
        actor=users["independent@example.com"], relation="merchant", now=now,
    )
    db.session.commit()
"""


def _seed(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SEED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        pytest.fail(f"seeding failed:\n{result.stderr}", pytrace=False)


@contextlib.contextmanager
def running_cluster(
    tmp_dir: Path, *, prefix: str = "test_cluster", **settings: str
) -> Iterator[TestCluster]:
    """Start nginx, two server processes and the scheduler on a new database.

    :param settings: extra environment of every process.
    """
    require_cluster_tools()
    import redis

    database = Database.create(prefix)
    run_dir = tmp_dir / "cluster"
    nginx_port = free_port()
    channel = f"{prefix}-{uuid.uuid4().hex[:8]}"
    cluster = None
    try:
        env = cluster_env(
            run_dir=run_dir,
            public_url=f"http://127.0.0.1:{nginx_port}",
            database_url=database.url,
            redis_url=REDIS_URL,
            channel=channel,
        )
        env.update(
            LOG_JSON="0",
            LOG_LEVEL="INFO",
            MAIL_SERVER="",
            SLA_POLICY="default",
            TIME_ZONE="Asia/Shanghai",
            DEFAULT_LOCALE="zh_CN",
            SWEEP_INTERVAL_SECONDS="1",
            # Many sign-ins and token requests from one address.
            LOGIN_RATE_LIMIT="1000 per minute",
            PASSWORD_HASH_METHOD="scrypt:1024:8:1",
        )
        env.update(settings)
        # Redis db 10 is this suite's: counters of an earlier run (rate limits
        # of the same user ids) must not count here.
        redis.Redis.from_url(REDIS_URL).flushdb()
        prepare(env, seed=False)
        _seed(env)
        cluster = Cluster(
            run_dir=run_dir,
            listen_port=nginx_port,
            nodes=[Node("app1", free_port()), Node("app2", free_port())],
            env=env,
            gunicorn_args=["--threads", "80", "--worker-connections", "120"],
        )
        try:
            cluster.start()
        except ClusterError as exc:
            pytest.fail(f"the cluster did not start: {exc}", pytrace=False)
        result = TestCluster(cluster, database, run_dir, env)
        try:
            yield result
        finally:
            for client in result.clients:
                with contextlib.suppress(Exception):
                    client.disconnect()
            for session in result.sessions:
                session.close()
    finally:
        try:
            if cluster is not None:
                cluster.stop()
        finally:
            database.drop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[TestCluster]:
    with running_cluster(
        tmp_path_factory.mktemp("cluster"),
        FEED_RATE_LIMIT="4 per minute",
        # The failover test's burst is faster than a person types.
        CHAT_RATE_LIMIT="500 per 10 seconds",
        # A killed process's presence is dropped after 3 s (30 by default).
        CHAT_PRESENCE_TTL_SECONDS="3",
    ) as running:
        yield running


# Clients ------------------------------------------------------------------------


def pinned_session(
    cluster: TestCluster, node: str, user_agent: str
) -> requests.Session:
    """Return an HTTP session whose sticky cookie sends it to ``node``.

    The first answer sets the cookie (nginx picks a process); if it is the
    other process, the cookie is changed as a browser would keep it.
    """
    http = requests.Session()
    cluster.sessions.append(http)
    http.headers["User-Agent"] = user_agent
    answer = http.get(f"{cluster.url}/health", timeout=EVENT_TIMEOUT)
    assert answer.status_code == 200
    if answer.headers["X-Served-By"] != node:
        (cookie,) = [c for c in http.cookies if c.name == "odr_node"]
        http.cookies.set("odr_node", node, domain=cookie.domain, path=cookie.path)
    assert served_by(http, cluster) == node
    return http


def served_by(http: requests.Session, cluster: TestCluster) -> str:
    answer = http.get(f"{cluster.url}/health", timeout=EVENT_TIMEOUT)
    assert answer.status_code == 200, answer.text
    return answer.headers["X-Served-By"]


def api_token(http: requests.Session, cluster: TestCluster, email: str) -> str:
    answer = http.post(
        f"{cluster.url}/api/v1/auth/tokens",
        json={"email": email, "password": DEMO_PASSWORD},
        timeout=EVENT_TIMEOUT,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


class Member:
    """A demo user with a Socket.IO connection through nginx, pinned to a node."""

    def __init__(
        self,
        cluster: TestCluster,
        email: str,
        node: str,
        *,
        reconnect: bool = False,
    ) -> None:
        self.cluster = cluster
        self.email = email
        self.http = pinned_session(cluster, node, f"cluster-test {email}")
        self.token = api_token(self.http, cluster, email)
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.events: dict[str, queue.Queue] = {
            name: queue.Queue()
            for name in ("message_created", "presence", "connect", "disconnect")
        }
        self.sio = socketio.Client(
            http_session=self.http,
            reconnection=reconnect,
            reconnection_delay=0.2,
            reconnection_delay_max=1,
            randomization_factor=0,
            handle_sigint=False,
        )
        #: Where the failover test keeps what this member saw.
        self.ledger: Ledger | None = None
        self.sio.on("message_created", self._on_message, namespace=NAMESPACE)
        self.sio.on("presence", self.events["presence"].put, namespace=NAMESPACE)
        self.sio.on("connect", lambda: self.events["connect"].put(1), NAMESPACE)
        self.sio.on(
            "disconnect", lambda *_: self.events["disconnect"].put(1), NAMESPACE
        )
        cluster.clients.append(self.sio)
        self.sio.connect(
            cluster.url,
            auth={"token": self.token},
            namespaces=[NAMESPACE],
            wait_timeout=EVENT_TIMEOUT,
        )
        self.wait_for("connect")

    def _on_message(self, message: dict) -> None:
        self.events["message_created"].put(message)
        if self.ledger is not None:
            self.ledger.add(message)

    @property
    def node(self) -> str:
        return served_by(self.http, self.cluster)

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(
            method,
            f"{self.cluster.url}/api/v1{path}",
            headers={**self.headers, **kw.pop("headers", {})},
            timeout=EVENT_TIMEOUT,
            **kw,
        )

    def call(self, event: str, data: dict) -> Any:
        return self.sio.call(event, data, namespace=NAMESPACE, timeout=EVENT_TIMEOUT)

    def join(self, case_id: int, after: int = 0) -> dict:
        answer = self.call(
            "join_case", {"case_id": case_id, "room": "joint", "after": after}
        )
        assert answer["ok"] is True, answer
        return answer

    def send(self, case_id: int, body: str, client_id: str | None = None) -> dict:
        answer = self.call(
            "send_message",
            {
                "case_id": case_id,
                "room": "joint",
                "body": body,
                "client_id": client_id or uuid.uuid4().hex,
            },
        )
        assert answer["ok"] is True, answer
        return answer

    def wait_for(self, name: str, match: Callable[[Any], bool] = lambda _: True):
        """Return the first ``name`` event that ``match`` accepts (bounded)."""
        deadline = time.monotonic() + EVENT_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            try:
                data = self.events[name].get(timeout=max(left, 0.01))
            except queue.Empty:
                pytest.fail(
                    f"{self.email}: no matching {name} within {EVENT_TIMEOUT} s\n"
                    f"{self.cluster.logs()}",
                    pytrace=False,
                )
            if match(data):
                return data


def queued_case_id(cluster: TestCluster) -> int:
    """Return the demo case waiting for a mediator: Chris against 青禾茶庄."""
    engine = cluster.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT c.id FROM cases c JOIN users u ON u.id = c.consumer_id "
                    "JOIN merchants m ON m.id = c.merchant_id "
                    "WHERE c.status = 'in_mediation' AND c.mediator_id IS NULL "
                    "AND u.email = 'consumer2@example.com' AND m.name = '青禾茶庄'"
                )
            ).scalar_one()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def mediated_case(cluster) -> int:
    """The demo case waiting for a mediator, taken by mediator1 (through nginx)."""
    http = pinned_session(cluster, "app2", "cluster-test setup")
    token = api_token(http, cluster, "mediator1@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    case_id = queued_case_id(cluster)
    taken = http.post(
        f"{cluster.url}/api/v1/cases/{case_id}/actions",
        json={"action": "take"},
        headers=headers,
        timeout=EVENT_TIMEOUT,
    )
    assert taken.status_code == 200, taken.text
    return case_id


# The tests ----------------------------------------------------------------------


def test_nginx_pins_each_client_to_one_ready_process(cluster):
    for node in ("app1", "app2"):
        http = pinned_session(cluster, node, f"cluster-test pin {node}")
        for _ in range(3):
            answer = http.get(f"{cluster.url}/ready", timeout=EVENT_TIMEOUT)
            assert answer.status_code == 200, answer.text
            assert answer.headers["X-Served-By"] == node
            body = answer.json()
            assert body["node"] == node and body["status"] == "ready"
            assert set(body["checks"]) == {
                "database",
                "migrations",
                "redis",
                "calendar",
            }
        # The pages too, and no cookie is set again once it names the process.
        page = http.get(f"{cluster.url}/credit/", timeout=EVENT_TIMEOUT)
        assert page.status_code == 200
        assert page.headers["X-Served-By"] == node
        assert "odr_node" not in page.headers.get("Set-Cookie", "")
    # A first visit gets a process and a cookie naming it.
    fresh = requests.get(f"{cluster.url}/health", timeout=EVENT_TIMEOUT)
    assert fresh.cookies["odr_node"] == fresh.headers["X-Served-By"]
    # Static files come from nginx itself.
    script = requests.get(f"{cluster.url}/static/js/countdown.js", timeout=10)
    assert script.status_code == 200 and "X-Served-By" not in script.headers


def test_a_message_sent_through_one_process_reaches_a_client_of_the_other(
    cluster, mediated_case
):
    consumer = Member(cluster, "consumer2@example.com", "app1")
    mediator = Member(cluster, "mediator1@example.com", "app2")
    assert (consumer.node, mediator.node) == ("app1", "app2")
    consumer.join(mediated_case)
    mediator.join(mediated_case)

    ack = consumer.send(mediated_case, "Sent through app1")
    got = mediator.wait_for(
        "message_created", lambda m: m["client_id"] == ack["message"]["client_id"]
    )
    assert (got["seq"], got["id"], got["body"]) == (
        ack["seq"],
        ack["id"],
        "Sent through app1",
    )
    reply = mediator.send(mediated_case, "Answered through app2")
    got = consumer.wait_for(
        "message_created", lambda m: m["client_id"] == reply["message"]["client_id"]
    )
    assert (got["seq"], got["role"]) == (ack["seq"] + 1, "mediator")


def test_presence_spans_both_processes(cluster, mediated_case):
    consumer = Member(cluster, "consumer2@example.com", "app1")
    consumer.join(mediated_case)
    merchant = Member(cluster, "independent@example.com", "app2")
    merchant.join(mediated_case)

    def names(event: dict) -> set[str]:
        return {m["role"] for m in event["online"]}

    # The consumer (app1) sees the merchant who joined through app2 ...
    consumer.wait_for("presence", lambda p: "merchant" in names(p))
    # ... and sees them leave when their connection closes.
    merchant.sio.disconnect()
    seen = consumer.wait_for("presence", lambda p: "merchant" not in names(p))
    assert "consumer" in names(seen)


def test_idempotency_keys_and_rate_limits_hold_across_processes(cluster):
    one = pinned_session(cluster, "app1", "cluster-test filer")
    two = pinned_session(cluster, "app2", "cluster-test filer")
    token = api_token(one, cluster, "consumer@example.com")
    engine = cluster.engine()
    with engine.connect() as conn:
        shop = conn.execute(
            text("SELECT id FROM merchants WHERE name = '优品家电旗舰店'")
        ).scalar_one()
    engine.dispose()
    body = _filing(shop, "IDEM-1")
    key = f"cluster-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}

    def file_through(http: requests.Session) -> requests.Response:
        return http.post(
            f"{cluster.url}/api/v1/cases", json=body, headers=headers, timeout=30
        )

    # The same key through both processes at once files one case.
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(file_through, [one, two, one, two]))
    assert {a.status_code for a in answers} <= {201, 409}, [a.text for a in answers]
    filed = [a for a in answers if a.status_code == 201]
    assert len({a.json()["id"] for a in filed}) == 1
    assert {a.headers["X-Served-By"] for a in answers} == {"app1", "app2"}
    assert sum(a.headers.get("Idempotent-Replayed") != "true" for a in filed) == 1
    engine = cluster.engine()
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM cases WHERE order_ref = 'IDEM-1'")
            ).scalar_one()
            == 1
        )
    engine.dispose()

    # The feed's limit (4 a minute per address) counts in Redis: requests
    # through both processes share it.
    statuses = []
    for client in (one, two, one, two, one, two):
        answer = client.get(f"{cluster.url}/api/v1/credit/feed", timeout=EVENT_TIMEOUT)
        statuses.append((answer.headers["X-Served-By"], answer.status_code))
    assert [s for _, s in statuses] == [200, 200, 200, 200, 429, 429], statuses

    # Behind nginx the limit is per client: another address is not limited.
    import http.client

    conn = http.client.HTTPConnection(
        "127.0.0.1", cluster.cluster.listen_port, source_address=("127.0.0.2", 0)
    )
    conn.request("GET", "/api/v1/credit/feed")
    assert conn.getresponse().status == 200
    conn.close()


def _filing(merchant_id: int, order_ref: str) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id,
        "category": "quality_defect",
        "order_ref": order_ref,
        "order_date": (datetime.now(UTC).date() - timedelta(days=5)).isoformat(),
        "amount_paid": 19900,
        "claim": {"type": "refund", "amount": 19900},
        "description": "The kettle leaks from the base after a week of use.",
    }


_STEP = re.compile(r"case (\d+): expire (\w+) -> (\w+)")


def _steps(text_: str) -> list[tuple[int, str]]:
    return [(int(cid), before) for cid, before, _ in _STEP.findall(text_)]


def test_the_scheduler_and_a_sweep_by_hand_escalate_each_due_case_once(cluster):
    http = pinned_session(cluster, "app1", "cluster-test bulk filer")
    token = api_token(http, cluster, "consumer@example.com")
    engine = cluster.engine()
    with engine.connect() as conn:
        shop = conn.execute(
            text("SELECT id FROM merchants WHERE name = '优品家电旗舰店'")
        ).scalar_one()

    sessions = [pinned_session(cluster, f"app{1 + k % 2}", "bulk") for k in range(6)]

    def file_one(n: int) -> int:
        answer = sessions[n % len(sessions)].post(
            f"{cluster.url}/api/v1/cases",
            json=_filing(shop, f"SWEEP-{n:04d}"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "awaiting_merchant"
        return answer.json()["id"]

    with ThreadPoolExecutor(6) as pool:
        ids = sorted(pool.map(file_one, range(SWEEP_CASES)))

    for stage, after in (
        ("awaiting_merchant", "awaiting_platform"),
        ("awaiting_platform", "in_mediation"),
    ):
        _sweep_round(cluster, engine, ids, stage, after)
    # The timelines: one reminder and one expiry per stage, the chain intact.
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT case_id, action, data->>'stage' FROM case_events "
                "WHERE case_id = ANY(:ids) AND action IN ('expire', 'remind')"
            ),
            {"ids": ids},
        ).all()
    engine.dispose()
    per_case = Counter((cid, action, stage) for cid, action, stage in rows)
    for cid in ids:
        for stage in ("awaiting_merchant", "awaiting_platform"):
            assert per_case[(cid, "expire", stage)] == 1, (cid, stage)
            assert per_case[(cid, "remind", stage)] == 1, (cid, stage)
    assert len(rows) == 4 * SWEEP_CASES
    verify = cluster.flask("verify-chain")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _sweep_round(cluster, engine, ids: list[int], stage: str, after: str) -> None:
    """Make every case of ``ids`` due in ``stage``; let the scheduler and two
    sweeps by hand move them on at once; check each moved exactly once."""
    scheduler_log = cluster.cluster.log_file("scheduler")
    log_start = scheduler_log.stat().st_size
    # The cases fall due (and owe their reminder) in a transaction that also
    # locks the table: the scheduler process (it sweeps every second) and two
    # sweeps started by hand all wait on the lock, and its commit lets them go
    # at the same moment.
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    with engine.connect() as gate:
        held = gate.begin()
        gate.execute(text("LOCK TABLE cases IN EXCLUSIVE MODE"))
        changed = gate.execute(
            text(
                "UPDATE cases SET due_at = :past, remind_at = :past, "
                "reminded_at = NULL WHERE id = ANY(:ids) AND status = :stage"
            ),
            {"past": past, "ids": ids, "stage": stage},
        ).rowcount
        assert changed == SWEEP_CASES
        sweeps = [
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "flask"),
                    "--app",
                    "mediation",
                    "sweep",
                    "--batch-size",
                    "25",
                ],
                cwd=ROOT,
                env=cluster.cluster.process_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            for _ in range(2)
        ]
        _wait_until(
            lambda: _waiting_on_locks(engine) >= 3,
            "the scheduler and both sweeps wait on the lock",
            cluster,
        )
        held.commit()
    outputs = [p.communicate(timeout=180)[0] for p in sweeps]
    assert [p.returncode for p in sweeps] == [0, 0], outputs
    _wait_until(
        lambda: _count(engine, ids, stage) == 0,
        f"every case left {stage}",
        cluster,
    )
    wanted = set(ids)

    def stepped() -> list[int]:
        with scheduler_log.open(errors="replace") as fh:
            fh.seek(log_start)
            logged = fh.read()
        return [
            cid
            for text_ in (*outputs, logged)
            for cid, before in _steps(text_)
            if before == stage and cid in wanted
        ]

    # The scheduler logs its steps once its whole sweep is over.
    _wait_until(lambda: set(stepped()) == wanted, "every step logged", cluster)
    with engine.connect() as conn:
        statuses = Counter(
            conn.execute(
                text("SELECT status FROM cases WHERE id = ANY(:ids)"), {"ids": ids}
            ).scalars()
        )
    assert statuses == {after: SWEEP_CASES}
    # Who did what: each case stepped by exactly one of the three sweepers.
    assert sorted(stepped()) == ids, "a case was stepped twice"
    by_hand = [len([c for c, s in _steps(out) if s == stage]) for out in outputs]
    print(f"{stage}: by hand {by_hand}, by the scheduler {SWEEP_CASES - sum(by_hand)}")


def _waiting_on_locks(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()


def _count(engine, ids: list[int], status: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM cases WHERE id = ANY(:ids) AND status = :s"),
            {"ids": ids, "s": status},
        ).scalar_one()


def _wait_until(condition: Callable[[], bool], what: str, cluster, timeout=60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(
                f"not within {timeout} s: {what}\n{cluster.logs()}", pytrace=False
            )
        time.sleep(0.2)  # polling interval, not an assertion


# Failover -----------------------------------------------------------------------


class Ledger:
    """What one chat client saw: messages by seq, its acks, and contiguity."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.lock = threading.Lock()
        self.seen: dict[int, dict] = {}
        self.acked: dict[str, int] = {}

    def add(self, message: dict) -> None:
        with self.lock:
            self.seen.setdefault(message["seq"], message)

    def contiguous(self) -> int:
        with self.lock:
            n = self.base
            while n + 1 in self.seen:
                n += 1
            return n

    def client_ids(self) -> set[str]:
        with self.lock:
            return {m["client_id"] for m in self.seen.values()}


def _online_now(member: Member, case_id: int) -> set[str]:
    """Join the room again and return the roles of the presence it announces."""
    box = member.events["presence"]
    while not box.empty():
        box.get_nowait()
    member.join(case_id, after=member.ledger.contiguous() if member.ledger else 0)
    event = member.wait_for("presence", lambda p: p["case_id"] == case_id)
    return {m["role"] for m in event["online"]}


def _catch_up(member: Member, case_id: int, ledger: Ledger) -> None:
    """Join again with the last seq seen without a hole, as the page does."""
    while True:
        answer = member.join(case_id, after=ledger.contiguous())
        for message in answer["messages"]:
            ledger.add(message)
        if not answer["more"]:
            return


def test_killing_a_process_mid_conversation_loses_no_acknowledged_message(
    cluster, mediated_case
):
    case_id = mediated_case
    consumer = Member(cluster, "consumer2@example.com", "app1", reconnect=True)
    mediator = Member(cluster, "mediator1@example.com", "app2", reconnect=True)
    # A member whose client does not come back after the kill.
    merchant = Member(cluster, "independent@example.com", "app1")
    merchant.join(case_id)
    base = consumer.join(case_id)["last_seq"]
    mediator.join(case_id)
    assert "merchant" in _online_now(mediator, case_id)
    mine, theirs = Ledger(base), Ledger(base)
    consumer.ledger, mediator.ledger = mine, theirs

    # The consumer sends a burst without waiting: the process works through
    # it one message at a time, and is killed once a few are acknowledged.
    burst = {
        f"burst-{uuid.uuid4().hex[:8]}-{n}": f"Burst message {n}" for n in range(40)
    }
    first_acks = threading.Semaphore(0)

    def acked(client_id: str) -> Callable[[dict], None]:
        def callback(answer: dict) -> None:
            if answer.get("ok") is True:  # a refusal is sent again below
                with mine.lock:
                    mine.acked[client_id] = answer["seq"]
                first_acks.release()

        return callback

    for client_id, body in burst.items():
        consumer.sio.emit(
            "send_message",
            {"case_id": case_id, "room": "joint", "body": body, "client_id": client_id},
            namespace=NAMESPACE,
            callback=acked(client_id),
        )
    for _ in range(5):
        assert first_acks.acquire(timeout=EVENT_TIMEOUT), "no acknowledgement"
    killed = cluster.cluster.kill_node("app1")
    assert killed
    with mine.lock:
        acked_before = dict(mine.acked)
    assert 5 <= len(acked_before) < len(burst), "the kill came too late to test"

    # The mediator goes on talking through app2 meanwhile.
    during = [mediator.send(case_id, f"While app1 is down {n}") for n in range(5)]
    for ack in during:
        theirs.acked[ack["message"]["client_id"]] = ack["seq"]

    # The consumer's client reconnects by itself, through nginx, to app2.
    consumer.wait_for("disconnect")
    consumer.wait_for("connect")
    assert consumer.node == "app2"
    # It catches up from the last seq it saw, then sends again what was never
    # acknowledged, with the same ids (a message stored before the kill is
    # answered as a duplicate, not stored twice).
    _catch_up(consumer, case_id, mine)
    for client_id, body in burst.items():
        if client_id not in mine.acked:
            ack = consumer.send(case_id, body, client_id)
            mine.acked[client_id] = ack["seq"]
    after = [consumer.send(case_id, f"After the failover {n}") for n in range(3)]
    for ack in after:
        mine.acked[ack["message"]["client_id"]] = ack["seq"]
        mediator.wait_for(
            "message_created",
            lambda m, c=ack["message"]["client_id"]: m["client_id"] == c,
        )
    _catch_up(mediator, case_id, theirs)
    _catch_up(consumer, case_id, mine)

    # Stored exactly once each, with the acknowledged seq.
    engine = cluster.engine()
    with engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT client_id, count(*), min(seq) FROM chat_messages "
                "WHERE case_id = :case AND client_id = ANY(:ids) GROUP BY client_id"
            ),
            {"case": case_id, "ids": [*mine.acked, *theirs.acked]},
        ).all()
    engine.dispose()
    counts = {cid: (n, seq) for cid, n, seq in stored}
    for client_id, seq in {**mine.acked, **theirs.acked}.items():
        assert counts.get(client_id) == (1, seq), client_id
    # Each side has every message the other had acknowledged.
    assert set(mine.acked) <= theirs.client_ids()
    assert set(theirs.acked) <= mine.client_ids()
    assert set(acked_before) <= theirs.client_ids()

    # Presence forgets the connections of the dead process (its liveness key
    # expires after CHAT_PRESENCE_TTL_SECONDS); the consumer is online again.
    _wait_until(
        lambda: "merchant" not in _online_now(mediator, case_id),
        "the killed process's connections leave presence",
        cluster,
    )
    assert "consumer" in _online_now(mediator, case_id)

    # The process comes back and takes its clients again once nginx tries it
    # (fail_timeout after the failures it saw).
    cluster.cluster.start_node("app1")

    def app1_serves() -> bool:
        answer = requests.get(
            f"{cluster.url}/ready", cookies={"odr_node": "app1"}, timeout=EVENT_TIMEOUT
        )
        return answer.status_code == 200 and answer.json()["node"] == "app1"

    _wait_until(app1_serves, "app1 serves again through nginx", cluster)
