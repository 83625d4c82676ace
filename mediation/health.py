"""Health and readiness of a server process: ``/health`` and ``/ready``.

``/health`` says the process is up and serving (nothing else is checked: a
proxy or supervisor that restarts processes must not restart them because the
database is down). ``/ready`` says the process can do its work: the database
answers, Redis answers (when ``REDIS_URL`` is set), the database schema is at
the migrations' head, and the business calendar knows the current year. It
answers 200 with every check, or 503 naming the checks that failed; the
details of a failure go to the log, not to the (public) answer.

The readiness checks are for deployments (deploy/README.md) and the cluster
tests; open-source nginx does no active health checks (it marks a server down
after failed requests, ``max_fails``/``fail_timeout``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text

from mediation import clock
from mediation.extensions import db

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
#: Seconds a readiness probe waits for Redis.
REDIS_TIMEOUT = 2.0
_HEADS_KEY = "mediation.health.heads"
_REDIS_KEY = "mediation.health.redis"


def init_app(app: Flask) -> None:
    """Register ``/health`` and ``/ready`` on ``app``."""
    app.register_blueprint(bp)


@bp.get("/health")
def health():
    """Answer 200 while the process serves requests (checks nothing else)."""
    return {"status": "ok"}


@bp.get("/ready")
def ready():
    """Answer 200 when the process can serve, 503 naming what is missing.

    The body is ``{"status": "ready"|"not_ready", "checks": {name: {"ok": bool,
    ...}}, "failed": [names]}``.
    """
    app = current_app._get_current_object()
    checks = readiness(app)
    failed = sorted(name for name, check in checks.items() if not check["ok"])
    body = {
        "status": "not_ready" if failed else "ready",
        "checks": checks,
        "failed": failed,
    }
    if app.config.get("NODE_NAME"):
        body["node"] = app.config["NODE_NAME"]
    response = jsonify(body)
    response.status_code = 503 if failed else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def readiness(app: Flask) -> dict[str, dict[str, Any]]:
    """Run every readiness check; return ``{name: {"ok": bool, ...}}``.

    The database checks run in the request's session and end with a rollback,
    so a probe never leaves a transaction open.
    """
    checks: dict[str, dict[str, Any]] = {}
    try:
        checks["database"] = check_database()
        if checks["database"]["ok"]:
            checks["migrations"] = check_migrations(app)
        else:
            checks["migrations"] = {"ok": False, "error": "database unreachable"}
    finally:
        try:
            db.session.rollback()
        except Exception:  # a broken connection: the pool replaces it
            logger.warning("readiness: rollback failed", exc_info=True)
    if app.config.get("REDIS_URL"):
        checks["redis"] = check_redis(app)
    checks["calendar"] = check_calendar(app)
    return checks


def check_database() -> dict[str, Any]:
    """Say whether the database answers ``SELECT 1``."""
    try:
        db.session.execute(text("SELECT 1")).scalar_one()
    except Exception:
        logger.warning("readiness: the database does not answer", exc_info=True)
        return {"ok": False, "error": "unreachable"}
    return {"ok": True}


def migration_heads(app: Flask) -> frozenset[str]:
    """Return the head revisions of ``migrations/`` (read once per process)."""
    heads = app.extensions.get(_HEADS_KEY)
    if heads is None:
        from alembic.script import ScriptDirectory

        heads = frozenset(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
        app.extensions[_HEADS_KEY] = heads
    return heads


def check_migrations(app: Flask) -> dict[str, Any]:
    """Say whether the database's schema is at the head of the migrations.

    A process whose code expects a newer schema than the database has (``flask
    db upgrade`` not run yet), or an older one (code not yet deployed), is not
    ready.
    """
    from alembic.runtime.migration import MigrationContext

    expected = migration_heads(app)
    try:
        current = frozenset(
            MigrationContext.configure(db.session.connection()).get_current_heads()
        )
    except Exception:
        logger.warning("readiness: cannot read the schema version", exc_info=True)
        return {"ok": False, "error": "unreadable"}
    answer: dict[str, Any] = {
        "ok": current == expected,
        "database": sorted(current),
        "code": sorted(expected),
    }
    if current != expected:
        answer["error"] = "run flask --app mediation db upgrade"
    return answer


def _redis_client(app: Flask) -> Any:
    client = app.extensions.get(_REDIS_KEY)
    if client is None:
        import redis

        client = redis.Redis.from_url(
            app.config["REDIS_URL"],
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        )
        client = app.extensions.setdefault(_REDIS_KEY, client)
    return client


def check_redis(app: Flask) -> dict[str, Any]:
    """Say whether Redis (``REDIS_URL``) answers ``PING``."""
    try:
        _redis_client(app).ping()
    except Exception:
        logger.warning("readiness: Redis does not answer", exc_info=True)
        return {"ok": False, "error": "unreachable"}
    return {"ok": True}


def check_calendar(app: Flask) -> dict[str, Any]:
    """Say whether the business calendar knows this year's holiday schedule.

    Working-day deadlines of an unknown year count weekends only. Next year is
    reported too, but only as a warning: its schedule is published in the
    autumn, and deadlines reach into it only in the last weeks of the year.
    """
    from mediation.sla.calendar import calendar_for

    year = clock.today(app.config.get("TIME_ZONE", "Asia/Shanghai")).year
    try:
        calendar = calendar_for(app)
    except (OSError, ValueError):
        logger.warning("readiness: the calendar file is unusable", exc_info=True)
        return {"ok": False, "error": "calendar file unusable"}
    answer: dict[str, Any] = {
        "ok": calendar.known(year),
        "years": {
            str(year): calendar.known(year),
            str(year + 1): calendar.known(year + 1),
        },
    }
    if not calendar.known(year):
        answer["error"] = f"no holiday schedule for {year}: add it to CALENDAR_FILE"
    elif not calendar.known(year + 1):
        answer["warning"] = (
            f"no holiday schedule for {year + 1} yet: add it to CALENDAR_FILE "
            "once published"
        )
    return answer
