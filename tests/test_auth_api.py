"""Account API: bearer tokens (issue, use, revoke, expiry) and registration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mediation import clock
from mediation.auth.models import ApiToken, User
from mediation.extensions import db
from tests.conftest import PASSWORD

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _issue(client, email: str, password: str = PASSWORD):
    return client.post(
        "/api/v1/auth/tokens", json={"email": email, "password": password}
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Tokens ----------------------------------------------------------------------


def test_token_is_issued_for_good_credentials(app, client, make_user):
    app.config["API_TOKEN_TTL_HOURS"] = 2
    clock.freeze(T0)
    user = make_user()
    response = _issue(client, user.email.upper())
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"token", "expires_at"}
    assert datetime.fromisoformat(body["expires_at"]) == T0 + timedelta(hours=2)
    assert response.headers["Cache-Control"] == "no-store"
    with app.app_context():
        row = db.session.scalar(db.select(ApiToken))
        # Only the hash is stored, never the secret.
        assert row.token_hash == ApiToken.hash_token(body["token"])
        assert body["token"] not in row.token_hash


def test_token_identifies_the_caller(client, make_user):
    user = make_user(locale="en")
    token = _issue(client, user.email).get_json()["token"]
    response = client.get("/api/v1/users/me", headers=_bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": "consumer",
        "locale": "en",
        "merchant_id": None,
    }


def test_merchant_staff_see_their_merchant(client, make_user, make_merchant, token_for):
    shop = make_merchant()
    staff = make_user("merchant", merchant_id=shop.id)
    body = client.get("/api/v1/users/me", headers=token_for(staff)).get_json()
    assert (body["role"], body["merchant_id"]) == ("merchant", shop.id)


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("{email}", "wrong-password"),
        ("nobody@example.com", PASSWORD),
        ("not an address", PASSWORD),
    ],
)
def test_bad_credentials_are_401(client, make_user, email, password):
    user = make_user()
    response = _issue(client, email.format(email=user.email), password)
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == "invalid_credentials"
    assert error["message"]


def test_token_request_validation(client):
    missing = client.post("/api/v1/auth/tokens", json={"email": "a@example.com"})
    assert missing.status_code == 422
    assert missing.get_json()["error"]["code"] == "validation_error"
    assert set(missing.get_json()["error"]["fields"]) == {"password"}
    unknown = client.post(
        "/api/v1/auth/tokens",
        json={"email": "a@example.com", "password": "x", "remember": True},
    )
    assert unknown.status_code == 422
    assert "remember" in unknown.get_json()["error"]["fields"]


@pytest.mark.parametrize(
    "body", ['{"email": "a@example.com", "password": ', "[1, 2]", "", "null"]
)
def test_malformed_json_is_400(client, body):
    response = client.post(
        "/api/v1/auth/tokens", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"


def test_expired_token_is_refused(app, client, make_user):
    app.config["API_TOKEN_TTL_HOURS"] = 1
    clock.freeze(T0)
    user = make_user()
    token = _issue(client, user.email).get_json()["token"]
    clock.advance(timedelta(minutes=59))
    assert client.get("/api/v1/users/me", headers=_bearer(token)).status_code == 200
    clock.advance(timedelta(minutes=1))
    response = client.get("/api/v1/users/me", headers=_bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_revoking_the_current_token(client, make_user):
    user = make_user()
    first = _issue(client, user.email).get_json()["token"]
    second = _issue(client, user.email).get_json()["token"]
    response = client.delete("/api/v1/auth/tokens/current", headers=_bearer(first))
    assert response.status_code == 204
    assert response.data == b""
    assert client.get("/api/v1/users/me", headers=_bearer(first)).status_code == 401
    # Only the token used is revoked.
    assert client.get("/api/v1/users/me", headers=_bearer(second)).status_code == 200
    again = client.delete("/api/v1/auth/tokens/current", headers=_bearer(first))
    assert again.status_code == 401


def test_revoking_needs_a_bearer_token(client, make_user, auth):
    assert client.delete("/api/v1/auth/tokens/current").status_code == 401
    auth.login(make_user())
    # A cookie session has no token to revoke.
    response = client.delete("/api/v1/auth/tokens/current")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_unknown_or_garbled_tokens_are_anonymous(client):
    for header in ("Bearer not-a-token", "Bearer ", "Basic abc", "Bearer"):
        response = client.get("/api/v1/users/me", headers={"Authorization": header})
        assert response.status_code == 401


def test_token_of_a_deactivated_account_stops_working(app, client, make_user):
    user = make_user()
    token = _issue(client, user.email).get_json()["token"]
    with app.app_context():
        db.session.get(User, user.id).is_active_account = False
        db.session.commit()
    assert client.get("/api/v1/users/me", headers=_bearer(token)).status_code == 401


def test_token_endpoint_is_rate_limited(app, client, make_user):
    app.config["LOGIN_RATE_LIMIT"] = "2 per minute"
    user = make_user()
    assert _issue(client, user.email, "wrong-one").status_code == 401
    assert _issue(client, user.email).status_code == 201
    blocked = _issue(client, user.email)
    assert blocked.status_code == 429
    assert blocked.get_json()["error"]["code"] == "rate_limited"
    assert "Retry-After" in blocked.headers


def test_me_needs_authentication(client):
    response = client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_me_works_with_the_session_cookie(client, make_user, auth):
    user = make_user()
    auth.login(user)
    assert client.get("/api/v1/users/me").get_json()["id"] == user.id


# Registration ----------------------------------------------------------------


def test_register_a_consumer(app, client):
    response = client.post(
        "/api/v1/users",
        json={"email": "Wang.Wu@Example.com", "password": PASSWORD, "name": "Wang Wu"},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["email"] == "wang.wu@example.com"
    assert (body["name"], body["role"], body["locale"]) == (
        "Wang Wu",
        "consumer",
        "zh_CN",
    )
    assert body["merchant_id"] is None
    assert response.headers["Location"].endswith("/api/v1/users/me")
    with app.app_context():
        assert db.session.get(User, body["id"]).check_password(PASSWORD)
    # The new account can get a token at once.
    assert _issue(client, "wang.wu@example.com").status_code == 201


def test_register_with_english(client):
    response = client.post(
        "/api/v1/users",
        json={
            "email": "e@example.com",
            "password": PASSWORD,
            "name": "E",
            "locale": "en",
        },
    )
    assert response.get_json()["locale"] == "en"


def test_register_duplicate_email_is_409(client, make_user):
    user = make_user()
    response = client.post(
        "/api/v1/users",
        json={"email": user.email.upper(), "password": PASSWORD, "name": "Again"},
    )
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "email_taken"
    assert "email" in error["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD, "name": "X"}, "email"),
        ({"email": "x@example.com", "password": "short", "name": "X"}, "password"),
        ({"email": "x@example.com", "password": PASSWORD, "name": ""}, "name"),
        ({"email": "x@example.com", "password": PASSWORD, "name": "   "}, "name"),
        ({"email": "x@example.com", "password": PASSWORD}, "name"),
        (
            {
                "email": "x@example.com",
                "password": PASSWORD,
                "name": "X",
                "locale": "fr",
            },
            "locale",
        ),
        (
            {
                "email": "x@example.com",
                "password": PASSWORD,
                "name": "X",
                "role": "regulator",
            },
            "role",
        ),
        ({"email": 12, "password": PASSWORD, "name": "X"}, "email"),
    ],
)
def test_register_validation_is_422(app, client, body, field):
    response = client.post("/api/v1/users?lang=en", json=body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 0


def test_register_errors_speak_english_when_asked(client):
    response = client.post(
        "/api/v1/users?lang=en",
        json={"email": "nope", "password": PASSWORD, "name": "X", "extra": 1},
    )
    fields = response.get_json()["error"]["fields"]
    assert fields["email"] == "Enter a valid e-mail address."
    assert fields["extra"] == "Unknown field."


def test_register_malformed_json_is_400(client):
    response = client.post(
        "/api/v1/users", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"
