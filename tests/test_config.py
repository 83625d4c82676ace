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
