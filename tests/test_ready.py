"""Health, readiness and serving behind a proxy (issue #8, items 1 and 4).

``/health`` says only that the process serves; ``/ready`` checks the database,
the schema's migration head, Redis when configured, and the business calendar.
``X-Served-By`` names the process on every response (Socket.IO's too), and
``TRUSTED_PROXIES`` makes the client's address the one the proxy saw.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from mediation import clock, create_app
from mediation.extensions import db
from mediation.health import migration_heads
from tests.conftest import _testing

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/10")
#: Nothing listens on port 1 of the loopback: connections are refused at once.
DEAD_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
DEAD_REDIS = "redis://127.0.0.1:1/0"


_made: list = []


def _app(database_url: str, **overrides):
    app = create_app(
        {**_testing(), "SQLALCHEMY_DATABASE_URI": database_url, **overrides}
    )
    _made.append(app)
    return app


@pytest.fixture(autouse=True)
def _dispose_engines():
    """Close the connections of the apps a test made (no stray connections)."""
    yield
    while _made:
        app = _made.pop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_health_is_up_even_when_nothing_else_is():
    app = _app(DEAD_POSTGRES, REDIS_URL=DEAD_REDIS)
    answer = app.test_client().get("/health")
    assert answer.status_code == 200
    assert answer.json == {"status": "ok"}


def test_ready_when_database_schema_and_calendar_are_in_place(client):
    with clock.frozen(datetime(2026, 3, 2, 2, 0, tzinfo=UTC)):
        answer = client.get("/ready")
    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "ready"
    assert answer.json["failed"] == []
    checks = answer.json["checks"]
    assert set(checks) == {"database", "migrations", "calendar"}  # no REDIS_URL
    assert checks["migrations"]["database"] == checks["migrations"]["code"]
    assert checks["calendar"]["years"]["2026"] is True
    assert answer.headers["Cache-Control"] == "no-store"


def test_ready_is_503_when_the_database_is_down():
    app = _app(DEAD_POSTGRES)
    answer = app.test_client().get("/ready")
    assert answer.status_code == 503
    assert answer.json["status"] == "not_ready"
    assert answer.json["failed"] == ["database", "migrations"]
    # What failed, never how (host names, driver messages stay in the log).
    assert answer.json["checks"]["database"] == {"ok": False, "error": "unreachable"}
    assert "127.0.0.1" not in answer.get_data(as_text=True)


def test_ready_is_503_until_the_schema_is_migrated(tmp_path):
    url = f"sqlite:///{tmp_path / 'unmigrated.db'}"
    app = _app(url)
    with app.app_context():
        db.create_all()  # the tables, but no migration recorded
    client = app.test_client()
    answer = client.get("/ready")
    assert answer.status_code == 503
    assert answer.json["failed"] == ["migrations"]
    assert answer.json["checks"]["migrations"]["database"] == []
    assert "db upgrade" in answer.json["checks"]["migrations"]["error"]

    # An older revision than the code's head is not ready either ...
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0000older')"))
    assert client.get("/ready").json["failed"] == ["migrations"]
    # ... and the head is.
    (head,) = migration_heads(app)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    engine.dispose()
    with clock.frozen(datetime(2026, 3, 2, tzinfo=UTC)):
        assert client.get("/ready").status_code == 200


def test_ready_checks_redis_when_it_is_configured(database_url):
    with clock.frozen(datetime(2026, 3, 2, tzinfo=UTC)):
        answer = _app(database_url, REDIS_URL=DEAD_REDIS).test_client().get("/ready")
        assert answer.status_code == 503
        assert answer.json["failed"] == ["redis"]
        assert answer.json["checks"]["redis"] == {"ok": False, "error": "unreachable"}

        _require_redis()
        answer = _app(database_url, REDIS_URL=REDIS_URL).test_client().get("/ready")
        assert answer.status_code == 200, answer.json
        assert answer.json["checks"]["redis"] == {"ok": True}


def test_ready_needs_the_holiday_schedule_of_this_year(database_url, tmp_path):
    with clock.frozen(datetime(2031, 6, 1, 4, 0, tzinfo=UTC)):
        answer = _app(database_url).test_client().get("/ready")
        assert answer.status_code == 503
        assert answer.json["failed"] == ["calendar"]
        assert "2031" in answer.json["checks"]["calendar"]["error"]

        calendar = tmp_path / "calendar.toml"
        calendar.write_text('[2031]\nholidays = ["2031-10-01"]\nworkdays = []\n')
        app = _app(database_url, CALENDAR_FILE=str(calendar))
        answer = app.test_client().get("/ready")
    assert answer.status_code == 200, answer.json
    check = answer.json["checks"]["calendar"]
    assert check["years"] == {"2031": True, "2032": False}
    # Next year is only a warning: it is published in the autumn.
    assert "2032" in check["warning"]


def _require_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        message = f"Redis not reachable at {REDIS_URL}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


# Serving -------------------------------------------------------------------------


def test_every_response_names_the_process_that_served_it(database_url):
    app = _app(database_url, NODE_NAME="app-7")
    client = app.test_client()
    assert client.get("/health").headers["X-Served-By"] == "app-7"
    assert client.get("/no/such/page").headers["X-Served-By"] == "app-7"
    # Socket.IO's own answers too (the proxy's sticky cookie is set from it).
    handshake = client.get("/socket.io/?EIO=4&transport=polling")
    assert handshake.status_code == 200
    assert handshake.headers["X-Served-By"] == "app-7"


def test_without_a_node_name_no_process_is_named(client):
    assert "X-Served-By" not in client.get("/health").headers


def test_a_node_name_that_cannot_be_a_cookie_is_refused(database_url):
    with pytest.raises(ValueError, match="NODE_NAME"):
        _app(database_url, NODE_NAME="app 1; Path=/")


def _feed(client, forwarded_for: str | None, remote: str = "127.0.0.1") -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    answer = client.get(
        "/api/v1/credit/feed", headers=headers, environ_base={"REMOTE_ADDR": remote}
    )
    return answer.status_code


def test_behind_a_trusted_proxy_limits_count_per_client_address(database_url):
    app = _app(database_url, TRUSTED_PROXIES=1, FEED_RATE_LIMIT="2 per minute")
    client = app.test_client()
    # Everything comes from the proxy (127.0.0.1); the clients differ.
    assert [_feed(client, "203.0.113.5") for _ in range(3)] == [200, 200, 429]
    assert _feed(client, "203.0.113.6") == 200
    # A client cannot pick its address: only the hop the proxy added counts.
    assert _feed(client, "198.51.100.1, 203.0.113.5") == 429


def test_without_a_trusted_proxy_forwarded_addresses_are_ignored(database_url):
    app = _app(database_url, FEED_RATE_LIMIT="2 per minute")
    client = app.test_client()
    assert _feed(client, "203.0.113.5") == 200
    assert _feed(client, "203.0.113.6") == 200
    assert _feed(client, "203.0.113.7") == 429
