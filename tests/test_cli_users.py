"""``flask --app mediation create-user``: accounts from the command line."""

from __future__ import annotations

import pytest

from mediation.auth.models import User
from mediation.extensions import db
from tests.conftest import PASSWORD


def _create(runner, *args: str):
    return runner.invoke(
        args=["create-user", "--password", PASSWORD, *args], catch_exceptions=False
    )


def _user(app, user_id: int) -> User | None:
    with app.app_context():
        user = db.session.get(User, user_id)
        if user is not None:
            db.session.expunge(user)
        return user


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(User.id)))


@pytest.mark.parametrize("role", ["consumer", "mediator", "arbitrator", "regulator"])
def test_create_user_prints_the_new_id(app, runner, role):
    result = _create(runner, "--email", f"{role}@example.com", "--role", role)
    assert result.exit_code == 0, result.output
    user = _user(app, int(result.output.strip()))
    assert (user.email, user.role, user.merchant_id) == (
        f"{role}@example.com",
        role,
        None,
    )
    assert user.name == role  # defaults to the address's local part
    assert user.check_password(PASSWORD)


def test_create_merchant_staff(app, runner, make_merchant):
    shop = make_merchant()
    result = _create(
        runner,
        "--email", "staff@shop.example",
        "--role", "merchant",
        "--merchant", str(shop.id),
        "--name", "Shop Staff",
        "--locale", "en",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    user = _user(app, int(result.output.strip()))
    assert (user.role, user.merchant_id, user.name, user.locale) == (
        "merchant",
        shop.id,
        "Shop Staff",
        "en",
    )


def test_bad_role_is_refused(app, runner):
    result = _create(runner, "--email", "x@example.com", "--role", "admin")
    assert result.exit_code == 2
    assert "Invalid value for '--role'" in result.output
    assert _count(app) == 0


@pytest.mark.parametrize("merchant", [None, "999999"])
def test_merchant_staff_need_a_registered_merchant(app, runner, merchant):
    args = ["--email", "x@example.com", "--role", "merchant"]
    if merchant:
        args += ["--merchant", merchant]
    result = _create(runner, *args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert "merchant_id" in result.output
    assert _count(app) == 0


def test_only_merchant_staff_belong_to_a_merchant(app, runner, make_merchant):
    shop = make_merchant()
    result = _create(
        runner,
        "--email", "x@example.com", "--role", "mediator", "--merchant", str(shop.id),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "merchant_id" in result.output
    assert _count(app) == 0


def test_duplicate_email_is_refused(app, runner, make_user):
    existing = make_user("mediator")
    result = _create(runner, "--email", existing.email, "--role", "mediator")
    assert result.exit_code == 1
    assert "email" in result.output
    assert _count(app) == 1


def test_bad_email_and_short_password_are_refused(app, runner):
    bad_email = _create(runner, "--email", "not-an-email", "--role", "mediator")
    assert bad_email.exit_code == 1 and "email" in bad_email.output
    short = runner.invoke(
        args=["create-user", "--email", "x@example.com", "--password", "short",
              "--role", "mediator"],
    )  # fmt: skip
    assert short.exit_code == 1 and "password" in short.output
    assert _count(app) == 0


def test_created_account_can_sign_in(runner, auth):
    result = _create(runner, "--email", "mediator@example.com", "--role", "mediator")
    assert result.exit_code == 0
    response = auth.login("mediator@example.com")
    assert response.status_code == 302


def test_create_user_with_categories_for_a_mediator(app, runner):
    result = runner.invoke(
        args=[
            "create-user",
            "--email",
            "m@example.com",
            "--password",
            "long-enough-1",
            "--role",
            "mediator",
            "--category",
            "delivery",
            "--category",
            "counterfeit",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        from mediation.auth.models import User
        from mediation.extensions import db

        user = db.session.get(User, int(result.output.strip()))
        assert user.categories == ["counterfeit", "delivery"]
