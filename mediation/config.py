"""Configuration classes, read from the environment.

``create_app(config)`` takes one of these classes, an instance, or a mapping of
overrides (tests). Every variable is listed in the README's configuration table.
"""

from __future__ import annotations

import os
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"
DEV_SECRET_KEY = "dev-insecure-secret-key"


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _normalise_db_url(url: str) -> str:
    """Let ``postgres://`` and ``postgresql://`` URLs use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


#: Stage deadlines (DESIGN.md "SLA timers"): stage -> (amount, unit).
#: Units: ``working_days``, ``calendar_days``, ``hours``, ``seconds``.
DEFAULT_SLA_POLICY: dict[str, tuple[int, str]] = {
    "awaiting_merchant": (3, "working_days"),
    "awaiting_platform": (2, "working_days"),
    "offer_pending": (5, "working_days"),
    "mediation_pickup": (1, "working_days"),
    "in_mediation": (10, "working_days"),
    "arbitration_pickup": (1, "working_days"),
    "in_arbitration": (15, "working_days"),
    "fulfilment": (7, "calendar_days"),
    "confirmation": (7, "calendar_days"),
    "submitted": (2, "working_days"),
}

#: A demo policy in which every deadline passes in under a minute.
FAST_SLA_POLICY: dict[str, tuple[int, str]] = {
    "awaiting_merchant": (30, "seconds"),
    "awaiting_platform": (20, "seconds"),
    "offer_pending": (30, "seconds"),
    "mediation_pickup": (20, "seconds"),
    "in_mediation": (50, "seconds"),
    "arbitration_pickup": (20, "seconds"),
    "in_arbitration": (50, "seconds"),
    "fulfilment": (40, "seconds"),
    "confirmation": (40, "seconds"),
    "submitted": (30, "seconds"),
}


from mediation.analytics.risk_model import DEFAULT_RISK_MODEL  # noqa: E402
from mediation.credit.model import DEFAULT_MODEL as DEFAULT_CREDIT_MODEL  # noqa: E402


class Config:
    """Settings shared by every environment."""

    ENV_NAME = "production"
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = _normalise_db_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'mediation.db'}")
    )
    #: Connections per process: size it for the server's threads that hit the
    #: database at once (gunicorn --threads); waiting longer than the timeout is
    #: an error rather than a hang.
    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_pre_ping": True,
        "pool_size": _int("DB_POOL_SIZE", 20),
        "max_overflow": _int("DB_MAX_OVERFLOW", 20),
        "pool_timeout": _int("DB_POOL_TIMEOUT", 10),
    }
    REDIS_URL = os.environ.get("REDIS_URL") or None
    #: Connections of the chat presence registry's Redis pool (callers wait for
    #: a free one for up to 5 s instead of failing).
    REDIS_MAX_CONNECTIONS = _int("REDIS_MAX_CONNECTIONS", 50)
    #: Redis channel of the Socket.IO message queue: processes that share it
    #: deliver each other's events (separate channels keep deployments apart).
    SOCKETIO_CHANNEL = os.environ.get("SOCKETIO_CHANNEL", "flask-socketio")
    #: Where evidence files are stored, one per SHA-256.
    EVIDENCE_DIR = os.environ.get("EVIDENCE_DIR", str(INSTANCE_DIR / "evidence"))
    EVIDENCE_MAX_FILE_BYTES = _int("EVIDENCE_MAX_FILE_BYTES", 20 * 1024 * 1024)
    EVIDENCE_MAX_CASE_BYTES = _int("EVIDENCE_MAX_CASE_BYTES", 100 * 1024 * 1024)
    #: Werkzeug refuses bodies above this before any view runs (413).
    MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 25 * 1024 * 1024)
    TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Shanghai")
    BABEL_DEFAULT_LOCALE = os.environ.get("DEFAULT_LOCALE", "zh_CN")
    BABEL_DEFAULT_TIMEZONE = "UTC"
    LANGUAGES = ("zh_CN", "en")
    MAIL_SERVER = os.environ.get("MAIL_SERVER") or None
    MAIL_PORT = _int("MAIL_PORT", 25)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_USE_TLS = _bool("MAIL_USE_TLS")
    MAIL_SENDER = os.environ.get("MAIL_SENDER", "noreply@odr.localhost")
    #: Base URL used in e-mails (links back to the case).
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000")
    SLA_POLICY = os.environ.get("SLA_POLICY", "default")
    #: Extra holidays and make-up working days (TOML); default instance/calendar.toml.
    CALENDAR_FILE = os.environ.get("CALENDAR_FILE") or None
    #: How long before a deadline the party who must act is reminded.
    SLA_REMINDER_LEAD = (
        _int("SLA_REMINDER_LEAD_AMOUNT", 1),
        os.environ.get("SLA_REMINDER_LEAD_UNIT", "working_days"),
    )
    #: Seconds between two SLA sweeps of the scheduler.
    SWEEP_INTERVAL_SECONDS = _int("SWEEP_INTERVAL_SECONDS", 30)
    #: Mass-complaint alerts: N complaints against one merchant in one category
    #: within W days raise an alert; the detection job runs every S seconds.
    MASS_ALERT_THRESHOLD = _int("MASS_ALERT_THRESHOLD", 10)
    MASS_ALERT_WINDOW_DAYS = _int("MASS_ALERT_WINDOW_DAYS", 7)
    MASS_ALERT_INTERVAL_SECONDS = _int("MASS_ALERT_INTERVAL_SECONDS", 300)
    SCHEDULER_ENABLED = _bool("SCHEDULER_ENABLED")
    #: werkzeug hash method; the tests use a cheaper scrypt cost to stay fast.
    PASSWORD_HASH_METHOD = os.environ.get("PASSWORD_HASH_METHOD", "scrypt")
    API_TOKEN_TTL_HOURS = _int("API_TOKEN_TTL_HOURS", 24 * 30)
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")
    RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
    RATELIMIT_HEADERS_ENABLED = True
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    LOG_JSON = _bool("LOG_JSON", True)
    #: Allowed Origins of Socket.IO handshakes, comma-separated ("*" accepts
    #: any; tests only); unset: the origin of PUBLIC_URL.
    SOCKETIO_CORS_ORIGINS = os.environ.get("SOCKETIO_CORS_ORIGINS") or None
    #: Longest chat message, in characters.
    CHAT_MAX_LENGTH = _int("CHAT_MAX_LENGTH", 2000)
    #: Messages one user may send (``limits`` notation; "0" turns it off).
    CHAT_RATE_LIMIT = os.environ.get("CHAT_RATE_LIMIT", "20 per 10 seconds")
    #: Most messages a reconnecting client gets at once (and an API page holds).
    CHAT_REPLAY_LIMIT = _int("CHAT_REPLAY_LIMIT", 500)
    #: With Redis: seconds after which the chat presence of a server process
    #: that stopped refreshing it (killed) is dropped.
    CHAT_PRESENCE_TTL_SECONDS = _int("CHAT_PRESENCE_TTL_SECONDS", 30)
    #: The credit model (points, windows, grades, list, mark): one dictionary,
    #: also what the public methodology page shows.
    CREDIT_MODEL = DEFAULT_CREDIT_MODEL
    #: The merchant risk model (factor points and caps, category weights, windows,
    #: levels): one dictionary, also what the regulators' risk page shows.
    RISK_MODEL = DEFAULT_RISK_MODEL
    #: Seconds between two refreshes of the stored risk list by the scheduler.
    RISK_REFRESH_INTERVAL_SECONDS = _int("RISK_REFRESH_INTERVAL_SECONDS", 900)
    #: Seconds between two runs of the job that derives the dashboard's monthly
    #: summaries (months that ended, and months a late change made stale).
    STATS_SUMMARY_INTERVAL_SECONDS = _int("STATS_SUMMARY_INTERVAL_SECONDS", 900)
    #: The complaint text tagging rules (TOML); unset: the shipped rule set
    #: (mediation/analytics/data/tagging_rules.toml).
    TAGGING_RULES = os.environ.get("TAGGING_RULES") or None
    #: Requests per client address to the public credit feed.
    FEED_RATE_LIMIT = os.environ.get("FEED_RATE_LIMIT", "60 per minute")
    #: Most cases one CSV export of cases may hold (narrow the filters beyond).
    EXPORT_MAX_ROWS = _int("EXPORT_MAX_ROWS", 200_000)
    #: Webhooks: seconds a receiver has to answer, seconds between delivery runs,
    #: subscriptions per user, and whether private/loopback addresses may receive
    #: them (never in production: a subscriber could reach the servers' network).
    WEBHOOK_TIMEOUT_SECONDS = _int("WEBHOOK_TIMEOUT_SECONDS", 5)
    WEBHOOK_INTERVAL_SECONDS = _int("WEBHOOK_INTERVAL_SECONDS", 15)
    WEBHOOK_MAX_SUBSCRIPTIONS = _int("WEBHOOK_MAX_SUBSCRIPTIONS", 20)
    WEBHOOK_ALLOW_PRIVATE_URLS = _bool("WEBHOOK_ALLOW_PRIVATE_URLS")
    #: Chat events one server process works on at once (0: no limit). The rest
    #: wait their turn, blocked without the GIL (docs/ARCHITECTURE.md).
    CHAT_EVENT_CONCURRENCY = _int("CHAT_EVENT_CONCURRENCY", 4)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE")
    WTF_CSRF_TIME_LIMIT = None
    PAGE_SIZE = 20
    #: The baseline endpoint used by benchmarks/filing.py; off in production.
    BENCHMARK_ENDPOINTS = _bool("BENCHMARK_ENDPOINTS")
    #: This server process's name in a cluster: sent as ``X-Served-By`` on every
    #: response (the proxy's sticky cookie names it; deploy/README.md).
    NODE_NAME = os.environ.get("NODE_NAME") or None
    #: Reverse proxies in front of the app whose X-Forwarded-For/-Proto headers
    #: are trusted (0: none; 1 behind nginx): client addresses for rate limits.
    TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)
    #: Production refuses SQLite (one machine, one writer) unless this is set.
    ALLOW_SQLITE_IN_PRODUCTION = _bool("ALLOW_SQLITE_IN_PRODUCTION")


class DevelopmentConfig(Config):
    """``make run``: SQLite under instance/, mail logged, a dev secret."""

    ENV_NAME = "development"
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
    LOG_JSON = _bool("LOG_JSON", False)
    SCHEDULER_ENABLED = _bool("SCHEDULER_ENABLED", False)


class TestingConfig(Config):
    """The test suite: a database given by TEST_DATABASE_URL or a temp SQLite."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = _normalise_db_url(
        os.environ.get("TEST_DATABASE_URL", "sqlite://")
    )
    WTF_CSRF_ENABLED = False
    PASSWORD_HASH_METHOD = "scrypt:1024:8:1"
    LOG_JSON = False
    MAIL_SERVER = None


CONFIGS = {
    "development": DevelopmentConfig,
    "production": Config,
    "testing": TestingConfig,
}


def resolve_sla_policy(value: str | dict | None) -> dict[str, tuple[int, str]]:
    """Return the stage deadlines for ``SLA_POLICY``.

    :param value: ``"default"``, ``"fast"``, a path to a JSON policy file whose keys
        override the default, or a dict of overrides.
    :raise ValueError: for an unreadable file or an unknown unit.
    """
    import json

    policy = dict(DEFAULT_SLA_POLICY)
    if value in (None, "", "default"):
        return policy
    if value == "fast":
        return dict(FAST_SLA_POLICY)
    if isinstance(value, dict):
        overrides = value
    else:
        try:
            overrides = json.loads(Path(value).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"cannot read the SLA policy file {value!r}: {exc}"
            ) from exc
    for stage, spec in overrides.items():
        amount, unit = spec
        if unit not in {"working_days", "calendar_days", "hours", "seconds"}:
            raise ValueError(f"unknown SLA unit {unit!r} for stage {stage!r}")
        if int(amount) < (1 if unit == "working_days" else 0):
            raise ValueError(f"SLA amount {amount!r} too small for stage {stage!r}")
        policy[stage] = (int(amount), unit)
    return policy
