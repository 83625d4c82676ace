"""Shared fixtures: a fresh app per test on a migrated database, and factories.

The database is SQLite in a temporary file, or PostgreSQL when
``TEST_DATABASE_URL`` is set (``.ci/run`` runs the suite both ways). The schema
is created once per session by the Alembic migrations (so the migrations are
what the tests exercise); each test then starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from sqlalchemy import create_engine, text

from mediation import clock, create_app

# Command-line output follows the terminal language; the tests read English.
os.environ["LC_ALL"] = "C.UTF-8"
from mediation.config import TestingConfig
from mediation.extensions import db
from mediation.notifications.outbox import outbox

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-9"


def _share_url_builders() -> None:
    """Let the apps of a test session share their URL rules' builder functions.

    Every test gets an app of its own (``app`` below), and building one is
    mostly Werkzeug making two Python functions for each of its ~110 URL rules
    (``Rule._compile_builder``: an AST, then ``compile``): 90 % of
    ``create_app``, ~100 ms a test on the CI machine. A builder's code depends
    only on the rule's text, its parts and the names of its defaults (the rule
    itself is passed when it is called), so each is made once per session;
    Werkzeug makes every one it has not made yet, and those with a default
    folded into their code every time. Without the private method (another
    Werkzeug), nothing changes.
    """
    from werkzeug.routing.rules import Rule

    make = getattr(Rule, "_compile_builder", None)
    if make is None or getattr(make, "shared", False):
        return
    made: dict[tuple[Any, ...], Any] = {}

    def compile_builder(self: Rule, append_unknown: bool = True) -> Any:
        defaults = self.defaults or {}
        if any(dynamic and part in defaults for dynamic, part in self._trace):
            return make(self, append_unknown)
        key = (self.rule, tuple(self._trace), tuple(defaults), append_unknown)
        builder = made.get(key)
        if builder is None:
            builder = made[key] = make(self, append_unknown)
        return builder

    compile_builder.shared = True  # type: ignore[attr-defined]
    Rule._compile_builder = compile_builder  # type: ignore[method-assign]


_share_url_builders()


class _SharedTemplates(BytecodeCache):
    """Compiled templates kept for the apps of a test session.

    Each test's app has a Jinja environment of its own, which compiled every
    template it rendered from source again: ~15 % of a page test on the CI
    machine. Jinja's bytecode cache (its documented extension point) hands
    each environment the code compiled before; a template whose source
    changed has another checksum and is compiled again.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


SHARED_TEMPLATES = _SharedTemplates()


def _database_url(tmp_dir: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        from mediation.config import _normalise_db_url

        return _worker_database(_normalise_db_url(url))
    return f"sqlite:///{tmp_dir / 'test.db'}"


def _worker_database(url: str) -> str:
    """The PostgreSQL database of this pytest-xdist worker (``test_gw1`` ...).

    ``make test`` runs the suite in two processes (``PYTEST_WORKERS``); each
    empties its tables after every test, so each needs a database of its own.
    Without xdist the database is the one ``TEST_DATABASE_URL`` names. Only the
    database of that server named after the worker is created, never dropped:
    ``migrate_to_head`` rebuilds its schema.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not url.startswith("postgresql"):
        return url
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": name},
            ).first()
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def migrate_to_head(url: str) -> None:
    """Create the schema of ``url`` from nothing by running every migration."""
    if url.startswith("postgresql"):
        from sqlalchemy.engine import make_url

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
            # A commit need not wait for the disk (3.1 ms against 0.7 here):
            # a test database has nothing to lose in a crash.
            name = make_url(url).database
            conn.exec_driver_sql(
                f'ALTER DATABASE "{name}" SET synchronous_commit = off'
            )
        engine.dispose()
    app = create_app({**_testing(), "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        cfg = AlembicConfig(str(ROOT / "migrations" / "alembic.ini"))
        cfg.set_main_option("script_location", str(ROOT / "migrations"))
        command.upgrade(cfg, "head")
        db.engine.dispose()


def _testing() -> dict[str, Any]:
    return {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}


#: Modules that share something beyond their own database run on one
#: pytest-xdist worker (``--dist loadgroup``): the browser tests share a seeded
#: demo database and Chromium; the Redis tests share a Redis db and, through the
#: servers they start, the login rate limits kept there: db 9 (the chat's), db
#: 10 (the cluster test empties it, ``/ready`` reads it). The two Redis groups
#: run side by side.
XDIST_GROUPS = {
    "test_chat_redis.py": "redis9",
    "test_chat_two_processes.py": "redis9",
    "test_cluster.py": "redis10",
    "test_ready.py": "redis10",
}


#: Modules whose subject does not depend on the database engine: pages and
#: documents as rendered, the access rules, the catalogues and the API's
#: description. What they read and write goes through the same ORM queries
#: and services that the API and service tests run on both engines, so
#: ``.ci/run`` runs them in its SQLite pass only (marker ``engine_neutral``),
#: as it does the browser tests.
ENGINE_NEUTRAL = {
    "test_access_matrix.py",
    "test_arbitration_pages.py",
    "test_auth_views.py",
    "test_award_document.py",
    "test_case_views.py",
    "test_case_views_actions.py",
    "test_chat_panel.py",
    "test_deadline_display.py",
    "test_merchants_views.py",
    "test_openapi.py",
    "test_translations.py",
    "test_warning_pages.py",
}
#: Modules about several server processes on one database, which production
#: runs on PostgreSQL only (deploy/README.md: one process on SQLite):
#: ``.ci/run`` runs them in its PostgreSQL pass only (marker ``processes``).
SEVERAL_PROCESSES = {"test_chat_two_processes.py"}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if "browser" in item.path.parts:
            group = "browser"
        else:
            group = XDIST_GROUPS.get(item.path.name)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
        if item.path.name in ENGINE_NEUTRAL:
            item.add_marker(pytest.mark.engine_neutral)
        if item.path.name in SEVERAL_PROCESSES:
            item.add_marker(pytest.mark.processes)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = _database_url(tmp_path_factory.mktemp("db"))
    migrate_to_head(url)
    return url


@pytest.fixture()
def app(database_url, tmp_path) -> Iterator:
    app = create_app(
        {
            **_testing(),
            "SQLALCHEMY_DATABASE_URI": database_url,
            "EVIDENCE_DIR": str(tmp_path / "evidence"),
        }
    )
    app.jinja_env.bytecode_cache = SHARED_TEMPLATES
    yield app
    clock.unfreeze()
    outbox.join()  # no e-mail of this test may still be writing to the database
    with app.app_context():
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


def _empty_tables() -> None:
    """Empty every table and restart the ids, for the next test.

    One round trip of ``DELETE`` statements (children first), then a restart of
    the sequences this test drew from (on PostgreSQL). A ``TRUNCATE`` of every
    table after every test rewrote ~40 tables and their indexes each time and
    made the PostgreSQL pass twice as slow; a statement per table and a restart
    of every sequence cost ~45 ms per test, a third of the run's overhead.
    """
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
            return
        conn.exec_driver_sql(";\n".join(f"DELETE FROM {name}" for name in tables))
        drawn = conn.execute(
            text(
                "SELECT sequencename FROM pg_sequences"
                " WHERE schemaname = 'public' AND last_value IS NOT NULL"
            )
        ).scalars()
        restarts = ";\n".join(f'ALTER SEQUENCE "{name}" RESTART' for name in drawn)
        if restarts:
            conn.exec_driver_sql(restarts)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def runner(app):
    return app.test_cli_runner()


@pytest.fixture()
def ctx(app):
    """An application context for tests that call services directly."""
    with app.app_context():
        yield


@pytest.fixture()
def make_merchant(app) -> Callable[..., Any]:
    """Return a factory of registered merchants (valid credit codes)."""
    from mediation.merchants.models import Merchant
    from mediation.merchants.uscc import check_character

    counter = {"n": 0}

    def factory(**kw: Any) -> Merchant:
        counter["n"] += 1
        with app.app_context():
            body = f"9111010{counter['n']:010d}"
            code = kw.pop("uscc", None) or body + check_character(body)
            now = clock.now_utc()
            merchant = Merchant(
                name=kw.pop("name", f"Shop {counter['n']}"),
                uscc=code,
                kind=kw.pop("kind", "goods"),
                region_code=kw.pop("region_code", "330106"),
                created_at=now,
                updated_at=now,
                **kw,
            )
            db.session.add(merchant)
            db.session.commit()
            db.session.refresh(merchant)
            db.session.expunge(merchant)
            return merchant

    return factory


@pytest.fixture()
def make_user(app) -> Callable[..., Any]:
    """Return a factory of users; the password is always :data:`PASSWORD`."""
    from mediation.auth.services import create_user

    counter = {"n": 0}

    def factory(role: str = "consumer", **kw: Any):
        counter["n"] += 1
        with app.app_context():
            user = create_user(
                email=kw.pop("email", f"{role}{counter['n']}@example.com"),
                password=kw.pop("password", PASSWORD),
                name=kw.pop("name", f"{role.title()} {counter['n']}"),
                role=role,
                now=clock.now_utc(),
                **kw,
            )
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return factory


@pytest.fixture()
def make_case(app) -> Callable[..., Any]:
    """Return a factory that files a case through the service (so it is routed)."""
    from mediation.auth.models import User
    from mediation.cases.services import Filing, file_case

    def factory(consumer, merchant=None, **kw: Any):
        with app.app_context():
            filing = Filing(
                category=kw.pop("category", "quality_defect"),
                order_ref=kw.pop("order_ref", "ORDER-1"),
                order_date=kw.pop("order_date", date(2026, 1, 5)),
                amount_paid=kw.pop("amount_paid", 19900),
                claim_type=kw.pop("claim_type", "refund"),
                claim_amount=kw.pop("claim_amount", 19900),
                description=kw.pop(
                    "description", "The kettle leaks after two days of use."
                ),
                merchant_id=merchant.id
                if merchant is not None
                else kw.pop("merchant_id", None),
                **kw,
            )
            case = file_case(
                db.session.get(User, consumer.id), filing, now=clock.now_utc()
            )
            db.session.commit()
            db.session.refresh(case)
            case_id = case.id
            db.session.expunge_all()
            return case_id

    return factory


class AuthActions:
    """Sign in and out through the real login form."""

    def __init__(self, client) -> None:
        self._client = client

    def login(self, user_or_email, password: str = PASSWORD):
        email = getattr(user_or_email, "email", user_or_email)
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture()
def auth(client) -> AuthActions:
    return AuthActions(client)


@pytest.fixture()
def token_for(app) -> Callable[..., dict[str, str]]:
    """Return a factory of ``Authorization`` headers for a user (API tests)."""
    from datetime import timedelta

    from mediation.auth.models import User
    from mediation.auth.services import issue_token

    def factory(user) -> dict[str, str]:
        with app.app_context():
            secret, _ = issue_token(
                db.session.get(User, user.id),
                now=clock.now_utc(),
                ttl=timedelta(hours=1),
            )
            db.session.commit()
        return {"Authorization": f"Bearer {secret}"}

    return factory
