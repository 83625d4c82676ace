"""Fixtures of the browser tests: the real server in a subprocess, and Chromium.

``live_server`` gives every test its own server on its own copy of the demo
database, so the runs (one per language) never depend on each other:

1. once per session, ``flask --app mediation db upgrade`` and ``seed-demo``
   (subprocesses, with the server's environment) prepare a database: a temporary
   SQLite file or, when ``TEST_DATABASE_URL`` is PostgreSQL, a separate database
   ``test_browser`` on the same server. The database ``TEST_DATABASE_URL`` names
   belongs to the rest of the suite (which may run at the same time) and is never
   touched here;
2. each test gets a copy of it: the SQLite file copied, or
   ``CREATE DATABASE test_browser_<n> TEMPLATE test_browser``;
3. gunicorn serves ``mediation:create_app(...)`` on a free port, in a subprocess
   (never in the pytest process), until ``GET /health`` answers 200; its output
   goes to ``server.log`` in the test's tmp dir, and the tail of it is added to
   the report of a failed test;
4. after the test the server gets SIGTERM and must exit within 15 seconds; the
   PostgreSQL copies, then ``test_browser``, are dropped.

The translation catalogues are compiled from the ``.po`` files into a temporary
directory with the same layout, which the server uses
(``BABEL_TRANSLATION_DIRECTORIES``): the test sees the catalogues as they are
now even when the ``.mo`` files of the checkout are stale (``make test`` compiles
them, a bare ``pytest`` does not).

Chromium is the system one (``CHROMIUM_PATH``, default ``/usr/bin/chromium``);
without it the browser tests are skipped, or fail when ``CI=true``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHROMIUM_DEFAULT = "/usr/bin/chromium"
#: Bounded waits (seconds): server start, server stop, one CLI command.
START_TIMEOUT = 30
STOP_TIMEOUT = 15
CLI_TIMEOUT = 120

_SERVER_KEY = pytest.StashKey["LiveServer"]()


# Chromium -----------------------------------------------------------------


def chromium_path() -> str:
    return os.environ.get("CHROMIUM_PATH", CHROMIUM_DEFAULT)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Launch the system Chromium (no downloaded browsers on this machine)."""
    path = chromium_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        message = (
            f"Chromium not found at {path}: apt-get install chromium "
            "(or set CHROMIUM_PATH)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return {
        **browser_type_launch_args,
        "executable_path": path,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


# Translations -------------------------------------------------------------


@pytest.fixture(scope="session")
def translations_dir(tmp_path_factory) -> Path:
    """Compile every ``messages.po`` of the checkout into a temporary directory."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    source = ROOT / "mediation" / "translations"
    target = tmp_path_factory.mktemp("translations")
    for po_path in sorted(source.glob("*/LC_MESSAGES/messages.po")):
        locale = po_path.parent.parent.name
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        out = target / locale / "LC_MESSAGES"
        out.mkdir(parents=True)
        with (out / "messages.mo").open("wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
    return target


def read_catalog(locale: str) -> dict[str, str]:
    """Return the translated, non-fuzzy entries of a catalogue (msgid -> msgstr)."""
    from babel.messages.pofile import read_po

    po_path = ROOT / "mediation" / "translations" / locale / "LC_MESSAGES"
    po_path = po_path / "messages.po"
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    return {
        m.id: m.string
        for m in catalog
        if m.id
        and isinstance(m.id, str)
        and isinstance(m.string, str)
        and m.string
        and not m.fuzzy
    }


@pytest.fixture(scope="session")
def zh_catalog() -> dict[str, str]:
    """The zh_CN catalogue as it is now (what the server shows in Chinese)."""
    return read_catalog("zh_CN")


@pytest.fixture(scope="session")
def en_catalog() -> dict[str, str]:
    """The en catalogue as it is now (usually empty: the msgids are English)."""
    return read_catalog("en")


# Environment and commands ---------------------------------------------------


def server_env(
    database_url: str, evidence_dir: Path, public_url: str
) -> dict[str, str]:
    """Return the environment of the server and of its CLI commands."""
    env = {
        k: v
        for k, v in os.environ.items()
        # Own database, no Redis (in-memory limiter and Socket.IO), no mail server:
        # TEST_DATABASE_URL and the rest belong to the other tests.
        if k not in {"TEST_DATABASE_URL", "REDIS_URL", "FLASK_APP", "MAIL_SERVER"}
    }
    env.update(
        MEDIATION_ENV="development",
        DATABASE_URL=database_url,
        SECRET_KEY="browser-test",
        EVIDENCE_DIR=str(evidence_dir),
        PUBLIC_URL=public_url,
        LOG_JSON="0",
        LOG_LEVEL="INFO",
        SCHEDULER_ENABLED="0",
        SESSION_COOKIE_SECURE="0",
        # Several sign-ins per test from one address: the limiter stays on, roomy.
        LOGIN_RATE_LIMIT="1000 per minute",
        SLA_POLICY="default",
        DEFAULT_LOCALE="zh_CN",
        TIME_ZONE="Asia/Shanghai",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_cli(args: list[str], env: dict[str, str], log_path: Path) -> None:
    """Run ``flask --app mediation <args>``; fail with its output on an error."""
    cmd = [str(VENV_BIN / "flask"), "--app", "mediation", *args]
    result = subprocess.run(
        cmd,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited with {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )


# Databases ----------------------------------------------------------------


class SqliteDemoDatabase:
    """The prepared demo database as a file; each test copies it."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "demo.db"
        self.url = f"sqlite:///{self.path}"

    def create(self) -> None:
        pass

    def clone(self, tmp_path: Path) -> str:
        copy = tmp_path / "browser.db"
        # SQLite's backup, not a file copy: in WAL mode committed pages may
        # still be in demo.db-wal.
        with (
            contextlib.closing(sqlite3.connect(self.path)) as source,
            contextlib.closing(sqlite3.connect(copy)) as target,
        ):
            source.backup(target)
        return f"sqlite:///{copy}"

    def drop_clone(self, url: str) -> None:
        pass  # in the test's tmp dir

    def drop(self) -> None:
        pass


class PostgresDemoDatabase:
    """``test_browser`` next to the database of TEST_DATABASE_URL; tests copy it."""

    def __init__(self, test_url: str) -> None:
        from mediation.config import _normalise_db_url

        base = make_url(_normalise_db_url(test_url))
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        self.name = f"test_browser_{worker}" if worker else "test_browser"
        if (base.database or "").startswith(self.name):
            raise RuntimeError(
                f"TEST_DATABASE_URL names {base.database}: the browser tests' database"
            )
        self._base = base
        self._counter = itertools.count(1)
        self.url = self._url(self.name)

    def _url(self, name: str) -> str:
        return self._base.set(database=name).render_as_string(hide_password=False)

    def _admin(self, *statements: str) -> None:
        admin_url: URL = self._base.set(database="postgres")
        engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for sql in statements:
                    conn.exec_driver_sql(sql)
        finally:
            engine.dispose()

    def create(self) -> None:
        self._admin(
            f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)',
            f'CREATE DATABASE "{self.name}"',
        )

    def clone(self, tmp_path: Path) -> str:
        name = f"{self.name}_{next(self._counter)}"
        self._admin(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"',
        )
        return self._url(name)

    def drop_clone(self, url: str) -> None:
        name = make_url(url).database
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory, browser_type_launch_args):
    """Migrate and seed a database once.

    It depends on the Chromium check: without Chromium, nothing is prepared.
    """
    directory = tmp_path_factory.mktemp("demo-db")
    test_url = os.environ.get("TEST_DATABASE_URL", "")
    database = (
        PostgresDemoDatabase(test_url)
        if test_url.startswith("postgres")
        else SqliteDemoDatabase(directory)
    )
    database.create()
    try:
        env = server_env(database.url, directory / "evidence", "http://127.0.0.1")
        log_path = directory / "prepare.log"
        run_cli(["db", "upgrade"], env, log_path)
        run_cli(["seed-demo"], env, log_path)
        yield database
    finally:
        database.drop()


# Server -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """A running gunicorn serving the app; ``url`` has no trailing slash."""

    url: str
    log_path: Path
    evidence_dir: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


def _wait_until_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last_error: object = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"the server exited with {server.process.returncode} while starting:\n"
                f"{server.log_tail()}",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=10) as response:
                if response.status == 200:
                    return
                last_error = response.status
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last_error = exc
        time.sleep(0.1)  # polling interval while gunicorn boots, not a test wait
    pytest.fail(
        f"the server did not answer /health within {START_TIMEOUT} s ({last_error}):\n"
        f"{server.log_tail()}",
        pytrace=False,
    )


def _stop(process: subprocess.Popen | None) -> None:
    """SIGTERM the server; it must exit within STOP_TIMEOUT seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)
        raise RuntimeError(
            f"gunicorn (pid {process.pid}) ignored SIGTERM for {STOP_TIMEOUT} s: killed"
        ) from None


@pytest.fixture()
def live_server(
    request, tmp_path, translations_dir, demo_database
) -> Iterator[LiveServer]:
    """Start the app under gunicorn on a fresh copy of the demo database."""
    port = _free_port()
    server = LiveServer(
        url=f"http://127.0.0.1:{port}",
        log_path=tmp_path / "server.log",
        evidence_dir=tmp_path / "evidence",
    )
    server.evidence_dir.mkdir()
    database_url = demo_database.clone(tmp_path)
    env = server_env(database_url, server.evidence_dir, server.url)
    # The catalogues compiled now; otherwise exactly what `make run` serves.
    overrides = {"BABEL_TRANSLATION_DIRECTORIES": str(translations_dir)}
    app_spec = f"mediation:create_app({overrides!r})"
    request.node.stash[_SERVER_KEY] = server
    try:
        with server.log_path.open("ab") as log:
            server.process = subprocess.Popen(
                [
                    str(VENV_BIN / "gunicorn"),
                    "-k",
                    "gthread",
                    "-w",
                    "1",
                    "--threads",
                    "50",
                    "--no-control-socket",
                    "-b",
                    f"127.0.0.1:{port}",
                    "--graceful-timeout",
                    "5",
                    "--access-logfile",
                    "-",
                    app_spec,
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        _wait_until_healthy(server)
        yield server
    finally:
        try:
            _stop(server.process)
        finally:
            demo_database.drop_clone(database_url)
    assert server.process.returncode is not None, "the server is still running"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Add the tail of the server's log to the report of a failed test."""
    report = yield
    server = item.stash.get(_SERVER_KEY, None)
    if server is not None and report.failed:
        report.sections.append(("server log (tail)", server.log_tail()))
    return report
