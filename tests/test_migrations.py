"""The migrations: they build the schema from nothing and match the models."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from mediation.extensions import db
from tests.conftest import migrate_to_head


def test_migrated_schema_matches_the_models(app):
    """A model change without its migration fails here."""
    with app.app_context():
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="runs in the PostgreSQL pass of .ci/run (TEST_DATABASE_URL)",
)
def test_upgrade_on_an_empty_postgresql_database():
    """``flask db upgrade`` on an empty PostgreSQL database creates every table."""
    base = os.environ["TEST_DATABASE_URL"].rsplit("/", 1)[0]
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS mediation_migration_test")
        conn.exec_driver_sql("CREATE DATABASE mediation_migration_test")
    url = f"{base}/mediation_migration_test"
    try:
        migrate_to_head(url)
        engine = create_engine(url)
        tables = set(inspect(engine).get_table_names())
        engine.dispose()
        assert {t.name for t in db.metadata.sorted_tables} <= tables
        assert "alembic_version" in tables
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "DROP DATABASE IF EXISTS mediation_migration_test WITH (FORCE)"
            )
        admin.dispose()
