"""The consumer-dispute mediation and arbitration platform: ``create_app()``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, has_request_context, request, session
from flask_login import current_user
from sqlalchemy import event
from werkzeug.routing import IntegerConverter

from mediation import errors, logs
from mediation.config import CONFIGS, DEV_SECRET_KEY, Config, resolve_sla_policy
from mediation.extensions import (
    babel,
    csrf,
    db,
    limiter,
    login_manager,
    migrate,
    socketio,
)
from mediation.i18n import CatalogueDomain

ROOT = Path(__file__).resolve().parent.parent


def create_app(
    config: type[Config] | Config | Mapping[str, Any] | None = None,
) -> Flask:
    """Build the application.

    :param config: a config class or object, or a mapping of overrides applied on
        top of the config named by ``MEDIATION_ENV`` (default ``development``).
    :raise RuntimeError: when a production config has no ``SECRET_KEY`` (or the
        development one), or uses SQLite without ``ALLOW_SQLITE_IN_PRODUCTION``.
    """
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    # Ids are 32-bit integers in the database: a larger one in a URL is a 404,
    # not a database error ("integer out of range" on PostgreSQL).
    app.url_map.converters["int"] = BoundedIntegerConverter
    env_name = os.environ.get("MEDIATION_ENV", "development")
    if config is None or isinstance(config, Mapping):
        app.config.from_object(CONFIGS.get(env_name, CONFIGS["development"]))
        if config:
            app.config.update(config)
    else:
        app.config.from_object(config)
    _check_secret(app)
    _check_database(app)
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri in ("sqlite://", "sqlite:///:memory:"):
        # An in-memory SQLite database has a single static connection: no pool.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {}
    app.config["SLA_POLICY_TABLE"] = resolve_sla_policy(
        app.config.get("SLA_POLICY_OVERRIDES") or app.config["SLA_POLICY"]
    )
    if (
        app.config["SLA_POLICY"] == "fast"
        and "SLA_REMINDER_LEAD_AMOUNT" not in os.environ
    ):
        # The demo's stages last seconds: remind 10 seconds before each deadline.
        app.config["SLA_REMINDER_LEAD"] = (10, "seconds")
    os.makedirs(app.instance_path, exist_ok=True)
    logs.configure(app.config["LOG_LEVEL"], app.config["LOG_JSON"])

    _init_extensions(app)
    errors.init_app(app)
    _register_blueprints(app)
    _register_template_helpers(app)

    from mediation import cli

    cli.init_app(app)

    from mediation import health, serving

    health.init_app(app)
    # Last: the WSGI wrappers (proxy headers, X-Served-By) go around everything,
    # Socket.IO's middleware included.
    serving.init_app(app)

    if _serves_with_scheduler(app):
        from mediation.sla.scheduler import start_in_process

        start_in_process(app)
    return app


def _serves_with_scheduler(app: Flask) -> bool:
    """Say whether this process runs the in-process SLA sweep.

    Only a serving process does: a WSGI server importing the app, or the child
    of ``flask run``'s reloader (``WERKZEUG_RUN_MAIN``). Other Flask commands
    (``db upgrade``, ``sweep``, the reloader's parent) never do; ``serve``
    starts it itself.
    """
    if app.testing or not app.config.get("SCHEDULER_ENABLED"):
        return False
    if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        return True
    return os.environ.get("FLASK_RUN_FROM_CLI") != "true"


def _check_secret(app: Flask) -> None:
    key = app.config.get("SECRET_KEY")
    if app.config.get("ENV_NAME") in ("development", "testing"):
        return
    if not key or key == DEV_SECRET_KEY:
        raise RuntimeError("SECRET_KEY must be set (and not the development key)")


def _check_database(app: Flask) -> None:
    """Refuse SQLite outside development and tests unless explicitly allowed.

    SQLite has one writer and lives on one machine: a production deployment
    with several processes or machines needs PostgreSQL (deploy/README.md).
    """
    if app.config.get("ENV_NAME") in ("development", "testing"):
        return
    uri = str(app.config.get("SQLALCHEMY_DATABASE_URI") or "")
    if uri.startswith("sqlite") and not app.config.get("ALLOW_SQLITE_IN_PRODUCTION"):
        raise RuntimeError(
            "DATABASE_URL is SQLite: production needs PostgreSQL "
            "(set ALLOW_SQLITE_IN_PRODUCTION=1 to run a single process on SQLite)"
        )


def _init_extensions(app: Flask) -> None:
    from mediation import models  # noqa: F401  (every table on the metadata)

    db.init_app(app)
    with app.app_context():
        _tune_sqlite(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(ROOT / "mediation" / "translations"),
    )
    babel.domain_instance = CatalogueDomain()
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong" if not app.testing else None
    from mediation.auth import loaders  # noqa: F401  (registers the user loaders)

    if app.config.get("REDIS_URL"):
        app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    else:
        app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)

    # Socket handlers must be registered before init_app (see STYLE.md rule 7).
    from mediation.chat import events  # noqa: F401

    socketio.init_app(
        app,
        async_mode="threading",
        message_queue=app.config.get("REDIS_URL") if not app.testing else None,
        channel=app.config.get("SOCKETIO_CHANNEL") or "flask-socketio",
        # The handshake's Origin is checked against the configured origins.
        cors_allowed_origins=events.allowed_origins(app.config),
        # A connection's events run one after another in its own thread (gthread
        # already gives every WebSocket one) instead of a new thread per event:
        # acks come back in send order, and under overload the work queues up
        # instead of hundreds of handler threads fighting for the GIL and the
        # connection pool (benchmarks/chat.py saw timeouts and a killed worker).
        async_handlers=False,
        logger=False,
        engineio_logger=False,
    )
    # Flask-SocketIO runs every event inside a request context built from the
    # connection's WSGI environ (path /socket.io/). With no rule matching that
    # path, each event's context raised and kept a NotFound with its traceback:
    # ~60 objects per event in reference cycles (frames holding the request), left
    # for the garbage collector, whose full collections then stalled the chat for
    # 100-400 ms (BENCHMARKS.md, "Real-time chat"). This rule only makes the match
    # succeed; HTTP requests to the path never reach Flask (Engine.IO answers them).
    app.add_url_rule(
        "/socket.io/",
        endpoint="socketio_transport",
        view_func=_socketio_transport,
        strict_slashes=False,
    )


def _tune_sqlite(engine: Any) -> None:
    """Run a SQLite file in write-ahead-log mode with ``synchronous=NORMAL``.

    Readers then never wait for the writer nor it for them (the pages of a
    200-thread server while the sweep writes), and a commit appends to the log
    without waiting for the disk (2.3 ms a commit on the CI machine, 0.04 ms in
    WAL mode; the log is synced at each checkpoint). A power cut may lose the
    last commits but never corrupts the file (SQLite's documented guarantee for
    WAL with NORMAL). An in-memory database stays as it is.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()


class BoundedIntegerConverter(IntegerConverter):
    """``<int:...>`` up to the largest id the database holds (2**31 - 1)."""

    def __init__(self, url_map, fixed_digits=0, min=None, max=2**31 - 1, signed=False):  # noqa: A002
        super().__init__(url_map, fixed_digits, min, max, signed)


def _socketio_transport():
    """Never served: Engine.IO's middleware answers /socket.io/ before Flask."""
    from werkzeug.exceptions import NotFound

    raise NotFound()


def _register_blueprints(app: Flask) -> None:
    # Importing the route modules adds their routes to the blueprints.
    import mediation.analytics.alert_views
    import mediation.analytics.alerts_api
    import mediation.analytics.audit_views
    import mediation.analytics.dashboard
    import mediation.analytics.export_views
    import mediation.analytics.risk_views
    import mediation.analytics.stats_api
    import mediation.analytics.warning_views
    import mediation.analytics.warnings_api
    import mediation.api.common
    import mediation.api.docs
    import mediation.arbitration.api
    import mediation.arbitration.documents
    import mediation.arbitration.views
    import mediation.auth.api
    import mediation.auth.views
    import mediation.cases.api
    import mediation.cases.views
    import mediation.chat.api
    import mediation.credit.api
    import mediation.credit.hooks_api
    import mediation.credit.repair_views
    import mediation.credit.views
    import mediation.merchants.api
    import mediation.merchants.views
    import mediation.notifications.views
    import mediation.sla.views  # noqa: F401
    from mediation.analytics import bp as analytics_bp
    from mediation.api import bp as api_bp
    from mediation.arbitration import bp as arbitration_bp
    from mediation.auth import bp as auth_bp
    from mediation.cases import bp as cases_bp
    from mediation.credit import bp as credit_bp
    from mediation.merchants import bp as merchants_bp
    from mediation.notifications import bp as notifications_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(cases_bp)
    app.register_blueprint(arbitration_bp)
    app.register_blueprint(credit_bp)
    app.register_blueprint(analytics_bp)
    app.register_blueprint(merchants_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(api_bp)
    if app.config.get("BENCHMARK_ENDPOINTS"):
        # The baseline endpoint of benchmarks/filing.py; never on in production.
        from mediation.api.bench import bp as bench_bp

        app.register_blueprint(bench_bp)


def select_locale() -> str:
    """Pick the language: the user's choice, the session's, then the browser's."""
    supported = ("zh_CN", "en")
    if not has_request_context():
        # Command line: the terminal's language (LC_ALL / LC_MESSAGES / LANG).
        return terminal_locale()
    asked = request.args.get("lang")
    if asked in supported:
        return asked
    if (
        current_user
        and current_user.is_authenticated
        and current_user.locale in supported
    ):
        return current_user.locale
    if session.get("locale") in supported:
        return session["locale"]
    best = request.accept_languages.best_match(["zh_CN", "zh", "en"])
    return "en" if best == "en" else "zh_CN"


def terminal_locale() -> str:
    """Return ``zh_CN`` when the terminal's locale is Chinese, else ``en``."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return "zh_CN" if value.lower().startswith("zh") else "en"
    return "en"


def _register_template_helpers(app: Flask) -> None:
    from mediation import formatting

    formatting.init_app(app)
