"""Configuration: secrets required outside development, policies resolved."""

from __future__ import annotations

import pytest

from mediation import create_app
from mediation.config import DEV_SECRET_KEY, Config


def test_production_refuses_to_start_without_a_secret_key():
    class Production(Config):
        SECRET_KEY = None
        SQLALCHEMY_DATABASE_URI = "sqlite://"

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(Production)


def test_production_refuses_the_development_key():
    class Production(Config):
        SECRET_KEY = DEV_SECRET_KEY
        SQLALCHEMY_DATABASE_URI = "sqlite://"

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(Production)


def test_fast_policy_has_second_deadlines_and_a_short_reminder_lead(database_url):
    app = create_app({"SLA_POLICY": "fast", "SQLALCHEMY_DATABASE_URI": database_url})
    policy = app.config["SLA_POLICY_TABLE"]
    assert all(unit == "seconds" and amount < 60 for amount, unit in policy.values())
    assert app.config["SLA_REMINDER_LEAD"] == (10, "seconds")


def test_a_sqlite_file_runs_in_wal_mode_and_commits_without_waiting_for_the_disk(
    tmp_path,
):
    from mediation.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'wal.db'}"})
    with app.app_context():
        with db.engine.connect() as conn, db.engine.connect() as other:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.commit()
            # A reader's open transaction does not hold the writer's commit
            # back (with a rollback journal it would: "database is locked"),
            # and it keeps reading what was there when it began.
            reader = other.connection.driver_connection
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM t").fetchone()
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            conn.commit()
            seen = reader.execute("SELECT count(*) FROM t").fetchone()[0]
            reader.rollback()
        db.engine.dispose()
    assert (mode, synchronous, seen) == ("wal", 1, 0)  # 1: NORMAL
