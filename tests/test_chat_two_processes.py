"""Two real server processes share Socket.IO events through Redis (issue #4 item 7).

Two gunicorn processes (``-k gthread``, simple-websocket) serve the app on one
database with the same ``REDIS_URL`` and a Socket.IO channel of this test's own
(``SOCKETIO_CHANNEL``), so parallel runs never hear each other. Signed-in users
connect with real WebSockets (python-socketio client, the session cookie of a
real sign-in through the form): a message sent through one process reaches the
members of the room connected to the other, and a case change made by a third
process (the ``flask sweep`` command, as the scheduler process runs it) reaches
the clients of both.

The database is a temporary SQLite file, or, when ``TEST_DATABASE_URL`` is
PostgreSQL, a database of its own on the same server (created and dropped here;
never the one ``TEST_DATABASE_URL`` names). Without Redis at ``TEST_REDIS_URL``
(default ``redis://127.0.0.1:6379/9``) the tests are skipped, or fail when
``CI=true``.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from mediation.cases.models import Case
from tests.browser.conftest import (
    LiveServer,
    _free_port,
    _stop,
    _wait_until_healthy,
    run_cli,
    server_env,
)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
DEMO_PASSWORD = "demo-pass-2026"
#: Bounded wait (seconds) for one answer or event over the network.
EVENT_TIMEOUT = 10
NAMESPACE = "/chat"


def _require_redis() -> None:
    import redis

    try:
        client = redis.Redis.from_url(
            REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        client.ping()
        client.close()
    except redis.RedisError as exc:
        message = f"Redis not reachable at {REDIS_URL}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


# Database and servers -------------------------------------------------------


@dataclass
class Database:
    """The servers' database: a SQLite file, or a PostgreSQL database to drop."""

    url: str
    admin_url: Any = None
    name: str | None = None

    def drop(self) -> None:
        if self.name is None:
            return  # the SQLite file is in the test's tmp dir
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(
                    f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'
                )
        finally:
            engine.dispose()


def _new_database(tmp_path: Path) -> Database:
    test_url = os.environ.get("TEST_DATABASE_URL", "")
    if not test_url.startswith("postgres"):
        return Database(url=f"sqlite:///{tmp_path / 'chat.db'}")
    from mediation.config import _normalise_db_url

    base = make_url(_normalise_db_url(test_url))
    name = f"test_chat_procs_{uuid.uuid4().hex[:8]}"
    admin = base.set(database="postgres")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    return Database(url=url, admin_url=admin, name=name)


def _env(database_url: str, tmp_path: Path, public_url: str, channel: str) -> dict:
    """The browser tests' server environment, with Redis and our own channel."""
    env = server_env(database_url, tmp_path / "evidence", public_url)
    env.update(REDIS_URL=REDIS_URL, SOCKETIO_CHANNEL=channel)
    return env


def _python(code: str, env: dict[str, str], log_path: Path) -> str:
    """Run ``code`` in a fresh Python process with the servers' environment."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"$ python -c ...\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        pytest.fail(f"the script failed:\n{result.stderr}", pytrace=False)
    return result.stdout.strip()


#: The demo's case waiting in the mediators' queue (consumer2's tea order;
#: the demo has others there too): mediator1 takes it.
TAKE_CASE = """
from mediation import clock, create_app
from mediation.auth.models import User
from mediation.cases.models import Case
from mediation.cases.services import apply_action
from mediation.extensions import db

app = create_app()
with app.app_context():
    case = db.session.scalar(
        db.select(Case).where(
            Case.order_ref == "QH-8842",
            Case.status == "in_mediation",
            Case.mediator_id.is_(None),
        )
    )
    mediator = db.session.scalar(
        db.select(User).where(User.email == "mediator1@example.com")
    )
    apply_action(case, "take", {}, actor=mediator, relation="mediator",
                 now=clock.now_utc())
    db.session.commit()
    print(case.id)
"""


@dataclass
class Cluster:
    """Two app processes on one database and one Redis channel."""

    servers: list[LiveServer]
    env: dict[str, str]
    database_url: str
    log_path: Path
    case_id: int
    clients: list[Any] = field(default_factory=list)


def _start(url: str, port: int, env: dict[str, str], log_path: Path):
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "-k",
                "gthread",
                "-w",
                "1",
                "--threads",
                "50",
                "--no-control-socket",
                "--graceful-timeout",
                "5",
                "-b",
                f"127.0.0.1:{port}",
                "mediation:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture()
def cluster(tmp_path) -> Iterator[Cluster]:
    """Migrate and seed a database, take the queued case, start two servers."""
    _require_redis()
    channel = f"test-chat-{uuid.uuid4().hex}"
    database = _new_database(tmp_path)
    log_path = tmp_path / "prepare.log"
    servers: list[LiveServer] = []
    result = None
    try:
        env = _env(database.url, tmp_path, "http://127.0.0.1", channel)
        run_cli(["db", "upgrade"], env, log_path)
        run_cli(["seed-demo"], env, log_path)
        case_id = int(_python(TAKE_CASE, env, log_path))
        for k in range(2):
            port = _free_port()
            server = LiveServer(
                url=f"http://127.0.0.1:{port}",
                log_path=tmp_path / f"server{k}.log",
                evidence_dir=tmp_path / "evidence",
            )
            # Each process accepts WebSockets from its own origin (PUBLIC_URL).
            own_env = _env(database.url, tmp_path, server.url, channel)
            server.process = _start(server.url, port, own_env, server.log_path)
            servers.append(server)
        for server in servers:
            _wait_until_healthy(server)
        result = Cluster(servers, env, database.url, log_path, case_id)
        yield result
    finally:
        try:
            for client in result.clients if result else []:
                if client.connected:
                    client.disconnect()
        finally:
            try:
                for server in servers:
                    _stop(server.process)
            finally:
                database.drop()


# Clients ---------------------------------------------------------------------


class Member:
    """A user signed in through the form, with a real WebSocket to one server."""

    def __init__(self, cluster: Cluster, server: LiveServer, email: str) -> None:
        self.email = email
        self.server = server
        self.events: dict[str, queue.Queue] = {
            name: queue.Queue() for name in ("message_created", "case_updated")
        }
        self.http = requests.Session()
        self.http.headers["User-Agent"] = f"chat-two-processes-test {email}"
        page = self.http.get(f"{server.url}/login", timeout=EVENT_TIMEOUT)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        assert match, "no CSRF token on the sign-in page"
        answer = self.http.post(
            f"{server.url}/login",
            data={
                "email": email,
                "password": DEMO_PASSWORD,
                "csrf_token": match.group(1),
            },
            allow_redirects=False,
            timeout=EVENT_TIMEOUT,
        )
        assert answer.status_code in (302, 303), f"sign-in of {email} failed"
        self.sio = socketio.Client(reconnection=False, http_session=self.http)
        for name, box in self.events.items():
            self.sio.on(name, box.put, namespace=NAMESPACE)
        cluster.clients.append(self.sio)
        # The session is bound to the browser (User-Agent) that signed in.
        self.sio.connect(
            server.url,
            headers={"User-Agent": self.http.headers["User-Agent"]},
            transports=["websocket"],
            namespaces=[NAMESPACE],
            wait_timeout=EVENT_TIMEOUT,
        )

    def call(self, event: str, data: dict) -> Any:
        return self.sio.call(event, data, namespace=NAMESPACE, timeout=EVENT_TIMEOUT)

    def join(self, case_id: int) -> dict:
        answer = self.call(
            "join_case", {"case_id": case_id, "room": "joint", "after": 0}
        )
        assert answer["ok"] is True, answer
        return answer

    def send(self, case_id: int, body: str) -> tuple[str, dict]:
        client_id = uuid.uuid4().hex
        answer = self.call(
            "send_message",
            {"case_id": case_id, "room": "joint", "body": body, "client_id": client_id},
        )
        assert answer["ok"] is True, answer
        return client_id, answer

    def next_event(self, name: str, match: Callable[[dict], bool]) -> dict:
        """Return the first ``name`` event that ``match`` accepts (bounded wait)."""
        box = self.events[name]
        while True:
            try:
                data = box.get(timeout=EVENT_TIMEOUT)
            except queue.Empty:
                pytest.fail(
                    f"{self.email} got no matching {name} within {EVENT_TIMEOUT} s; "
                    f"the log of {self.server.url}:\n{self.server.log_tail(30)}",
                    pytrace=False,
                )
            if match(data):
                return data


def test_a_message_sent_to_one_process_reaches_clients_of_the_other(cluster):
    one, two = cluster.servers
    consumer = Member(cluster, one, "consumer2@example.com")
    merchant = Member(cluster, one, "independent@example.com")
    mediator = Member(cluster, two, "mediator1@example.com")
    for member in (consumer, merchant, mediator):
        member.join(cluster.case_id)

    client_id, ack = consumer.send(cluster.case_id, "Through process one")
    on_two = mediator.next_event(
        "message_created", lambda m: m["client_id"] == client_id
    )
    assert (on_two["case_id"], on_two["room"]) == (cluster.case_id, "joint")
    assert (on_two["seq"], on_two["id"]) == (ack["seq"], ack["id"])
    assert on_two["body"] == "Through process one"
    assert on_two["role"] == "consumer"
    on_one = merchant.next_event(
        "message_created", lambda m: m["client_id"] == client_id
    )
    assert (on_one["seq"], on_one["id"]) == (ack["seq"], ack["id"])

    # And back: sent through process two, received on process one.
    reply_id, reply = mediator.send(cluster.case_id, "Answered through process two")
    assert reply["seq"] == ack["seq"] + 1
    for member in (consumer, merchant):
        got = member.next_event("message_created", lambda m: m["client_id"] == reply_id)
        assert (got["seq"], got["id"], got["body"], got["role"]) == (
            reply["seq"],
            reply["id"],
            "Answered through process two",
            "mediator",
        )

    # Nothing arrived twice.
    for member in (consumer, merchant, mediator):
        seen = []
        while not member.events["message_created"].empty():
            seen.append(member.events["message_created"].get_nowait()["id"])
        assert len(seen) == len(set(seen))


def test_a_case_change_made_by_a_third_process_reaches_both_processes(cluster):
    one, two = cluster.servers
    consumer = Member(cluster, one, "consumer2@example.com")
    mediator = Member(cluster, two, "mediator1@example.com")
    consumer.join(cluster.case_id)
    mediator.join(cluster.case_id)

    # The mediation's deadline has passed: the next sweep, a process of its own
    # as the scheduler is, moves the case on and announces it through Redis.
    engine = create_engine(cluster.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                Case.__table__.update()
                .where(Case.__table__.c.id == cluster.case_id)
                .values(due_at=datetime(2000, 1, 1, tzinfo=UTC))
            )
    finally:
        engine.dispose()
    run_cli(["sweep"], cluster.env, cluster.log_path)

    for member in (consumer, mediator):
        update = member.next_event(
            "case_updated", lambda u: u["case_id"] == cluster.case_id
        )
        assert update["status"] in ("closed_unresolved", "in_arbitration")
        # The system message of the step reaches both processes' clients too.
        note = member.next_event(
            "message_created",
            lambda m: m["kind"] == "system" and m["data"].get("action") == "expire",
        )
        assert note["data"]["status"] == update["status"]
