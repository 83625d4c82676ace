"""Account pages: sign-in and out, registration, language, account, admin pages."""

from __future__ import annotations

import re

import pytest
from flask_babel import force_locale
from flask_babel import gettext as _

from mediation.auth.models import ApiToken, MerchantClaim, User
from mediation.extensions import db
from mediation.notifications.models import Notification
from tests.conftest import PASSWORD


def _user(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def _by_email(app, email: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


def _session_cookie(client) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


# Sign-in ---------------------------------------------------------------------


def test_login_page_renders_form(client):
    response = client.get("/login?lang=en")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'name="email"' in html and 'name="password"' in html
    assert "Sign in" in html


def test_login_signs_in_and_goes_to_start_page(client, make_user, auth):
    user = make_user()
    response = auth.login(user)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    with client.session_transaction() as sess:
        assert sess["_user_id"] == f"{user.id}:{user.session_nonce}"
        assert sess["locale"] == user.locale


def test_login_rotates_the_session(client, make_user, auth):
    user = make_user()
    client.get("/login")
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    before = _session_cookie(client)
    auth.login(user)
    after = _session_cookie(client)
    assert after and after != before
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"].startswith(f"{user.id}:")


@pytest.mark.parametrize("password", ["wrong-password-1", ""])
def test_wrong_password_shows_a_generic_error(client, make_user, password):
    user = make_user()
    response = client.post(
        "/login?lang=en", data={"email": user.email, "password": password}
    )
    assert response.status_code == 422
    with client.session_transaction() as sess:
        assert "_user_id" not in sess


def test_unknown_email_and_wrong_password_read_the_same(client, make_user):
    user = make_user()
    wrong = client.post(
        "/login?lang=en", data={"email": user.email, "password": "not-it-at-all"}
    )
    unknown = client.post(
        "/login?lang=en", data={"email": "nobody@example.com", "password": PASSWORD}
    )
    message = "The e-mail address or the password is wrong."
    assert message in wrong.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)
    assert wrong.status_code == unknown.status_code == 422


def test_deactivated_account_cannot_sign_in(app, client, make_user, auth):
    user = make_user()
    with app.app_context():
        db.session.get(User, user.id).is_active_account = False
        db.session.commit()
    assert auth.login(user).status_code == 422


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/\r\nLocation: https://evil.example",
        " //evil.example",
    ],
)
def test_login_refuses_redirects_off_the_site(client, make_user, next_url):
    user = make_user()
    response = client.post(
        "/login",
        query_string={"next": next_url},
        data={"email": user.email, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_login_honours_a_relative_next(client, make_user):
    user = make_user()
    response = client.post(
        "/login",
        query_string={"next": "/account?tab=tokens"},
        data={"email": user.email, "password": PASSWORD},
    )
    assert response.headers["Location"] == "/account?tab=tokens"


def test_next_survives_the_login_form_as_hidden_field(client, make_user):
    html = client.get("/login", query_string={"next": "/account"}).get_data(
        as_text=True
    )
    assert re.search(r'name="next"[^>]*value="/account"', html)
    evil = client.get("/login", query_string={"next": "//evil.example"})
    assert re.search(r'id="next" name="next" type="hidden" value=""', evil.text)
    user = make_user()
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "next": "/account"}
    )
    assert response.headers["Location"] == "/account"


def test_signed_in_user_opening_login_is_sent_on(client, make_user, auth):
    auth.login(make_user())
    response = client.get("/login", query_string={"next": "/account"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"


def test_login_is_rate_limited(app, client, make_user):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    user = make_user()
    for _attempt in range(3):
        response = client.post(
            "/login?lang=en", data={"email": user.email, "password": "nope-nope-1"}
        )
        assert response.status_code == 422
    blocked = client.post(
        "/login?lang=en", data={"email": user.email, "password": PASSWORD}
    )
    assert blocked.status_code == 429
    html = blocked.get_data(as_text=True)
    assert "Too many sign-in attempts" in html
    assert 'name="email"' in html  # the page is the form again, readable
    assert "Retry-After" in blocked.headers
    with client.session_transaction() as sess:
        assert "_user_id" not in sess
    # Reading the page stays possible: only POST is limited.
    assert client.get("/login").status_code == 200


def test_csrf_token_is_required_when_enabled(app, client, make_user):
    app.config["WTF_CSRF_ENABLED"] = True
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    token = token or re.search(r'name="csrf_token" value="([^"]+)"', html)
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 302


# Sign-out --------------------------------------------------------------------


def test_logout_ends_the_session_but_keeps_the_language(client, make_user, auth):
    auth.login(make_user(locale="en"))
    response = auth.logout()
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    with client.session_transaction() as sess:
        assert "_user_id" not in sess
        assert sess["locale"] == "en"
    assert client.get("/account").status_code == 302


def test_logout_needs_post(client):
    assert client.get("/logout").status_code == 405


# Registration ----------------------------------------------------------------


def test_register_creates_a_consumer_and_signs_in(app, client):
    response = client.post(
        "/register",
        data={
            "name": "Li Lei",
            "email": "Li.Lei@Example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "locale": "en",
        },
    )
    assert response.status_code == 302
    user = _by_email(app, "li.lei@example.com")
    assert user is not None
    assert (user.role, user.name, user.locale) == ("consumer", "Li Lei", "en")
    account = client.get("/account")
    assert account.status_code == 200
    assert "Li Lei" in account.get_data(as_text=True)
    assert '<html lang="en">' in account.get_data(as_text=True)


def test_register_cannot_choose_a_staff_role(app, client):
    client.post(
        "/register",
        data={
            "name": "Sneaky",
            "email": "sneaky@example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "locale": "zh_CN",
            "role": "regulator",
        },
    )
    assert _by_email(app, "sneaky@example.com").role == "consumer"


def test_register_validation_errors_in_english(app, client):
    response = client.post(
        "/register?lang=en",
        data={
            "name": "",
            "email": "li@example.com",
            "password": "short",
            "confirm": "different",
            "locale": "en",
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "This field is required." in html
    assert "Use at least 8 characters." in html
    assert "The two passwords differ." in html
    assert html.count('class="field has-error"') == 3
    assert _by_email(app, "li@example.com") is None


def test_register_validation_errors_in_chinese_by_default(app, client):
    response = client.post(
        "/register",
        data={
            "name": "",
            "email": "li@example.com",
            "password": "short",
            "confirm": "different",
            "locale": "zh_CN",
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.count('class="field has-error"') == 3
    assert html.count('class="error" role="alert"') >= 3
    with app.test_request_context(), force_locale("zh_CN"):
        expected = [
            _("This field is required."),
            _("Use at least %(n)d characters.", n=8),
            _("The two passwords differ."),
        ]
    for message in expected:
        assert message in html
    assert _by_email(app, "li@example.com") is None


def test_register_invalid_email_is_a_field_error(client):
    response = client.post(
        "/register?lang=en",
        data={
            "name": "Han Meimei",
            "email": "not-an-address",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "locale": "en",
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Enter a valid e-mail address." in html


def test_register_duplicate_email_is_refused(client, make_user):
    existing = make_user()
    response = client.post(
        "/register?lang=en",
        data={
            "name": "Copy",
            "email": existing.email.upper(),
            "password": PASSWORD,
            "confirm": PASSWORD,
            "locale": "en",
        },
    )
    assert response.status_code == 422
    assert "An account with this e-mail already exists." in response.get_data(
        as_text=True
    )
    with client.session_transaction() as sess:
        assert "_user_id" not in sess


def test_register_rejects_an_unknown_language(client):
    response = client.post(
        "/register?lang=en",
        data={
            "name": "X",
            "email": "x@example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "locale": "fr",
        },
    )
    assert response.status_code == 422


# Language --------------------------------------------------------------------


def _preselected_language(client) -> str:
    """Return the language the registration form offers: the page's language."""
    html = client.get("/register").text
    return re.search(r'<option selected value="([^"]+)"', html).group(1)


def test_language_switch_for_visitors_lives_in_the_session(client):
    assert _preselected_language(client) == "zh_CN"
    response = client.post("/language", data={"locale": "en", "next": "/register"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/register"
    with client.session_transaction() as sess:
        assert sess["locale"] == "en"
    assert _preselected_language(client) == "en"
    assert "Create a consumer account" in client.get("/register").text
    client.post("/language", data={"locale": "zh_CN", "next": "/register"})
    assert _preselected_language(client) == "zh_CN"


def test_language_switch_is_stored_on_the_account(app, client, make_user, auth):
    user = make_user(locale="zh_CN")
    auth.login(user)
    client.post("/language", data={"locale": "en", "next": "/account"})
    assert _user(app, user.id).locale == "en"


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example"])
def test_language_switch_does_not_redirect_off_the_site(client, next_url):
    response = client.post("/language", data={"locale": "en", "next": next_url})
    assert response.headers["Location"] == "/"


def test_language_switch_refuses_an_unknown_language(client):
    response = client.post("/language", data={"locale": "fr", "next": "/login"})
    assert response.status_code == 400
    with client.session_transaction() as sess:
        assert "locale" not in sess


# The account and its tokens --------------------------------------------------


def test_account_sends_visitors_to_sign_in(client):
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/account"


def test_account_shows_profile_and_links_the_claim(client, make_user, auth):
    user = make_user(name="Zhang San")
    auth.login(user)
    html = client.get("/account").get_data(as_text=True)
    assert "Zhang San" in html and user.email in html
    assert 'href="/account/claim"' in html


def test_token_created_on_the_account_page_is_shown_once(app, client, make_user, auth):
    user = make_user()
    auth.login(user)
    response = client.post("/account/tokens")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    secret = re.search(
        r'data-testid="new-token">([^<]+)<', response.get_data(as_text=True)
    ).group(1)
    headers = {"Authorization": f"Bearer {secret}"}
    me = client.get("/api/v1/users/me", headers=headers)
    assert me.status_code == 200 and me.get_json()["id"] == user.id
    page = client.get("/account").get_data(as_text=True)
    assert secret not in page
    assert page.count('data-testid="token-row"') == 1
    with app.app_context():
        token_id = db.session.scalar(
            db.select(ApiToken.id).where(ApiToken.user_id == user.id)
        )
    revoked = client.post(f"/account/tokens/{token_id}/revoke")
    assert revoked.status_code == 302
    anonymous = app.test_client()
    assert anonymous.get("/api/v1/users/me", headers=headers).status_code == 401


def test_someone_elses_token_cannot_be_revoked(app, client, make_user, auth, token_for):
    owner = make_user()
    headers = token_for(owner)
    with app.app_context():
        token_id = db.session.scalar(db.select(ApiToken.id))
    auth.login(make_user())
    assert client.post(f"/account/tokens/{token_id}/revoke").status_code == 404
    assert app.test_client().get("/api/v1/users/me", headers=headers).status_code == 200


# Regulator pages: access -----------------------------------------------------


@pytest.mark.parametrize("role", ["consumer", "merchant", "mediator", "arbitrator"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/staff"),
        ("post", "/admin/staff"),
        ("get", "/admin/claims"),
        ("post", "/admin/claims/1"),
    ],
)
def test_admin_pages_are_for_regulators_only(
    client, make_user, make_merchant, auth, role, method, path
):
    extra = {"merchant_id": make_merchant().id} if role == "merchant" else {}
    auth.login(make_user(role, **extra))
    response = getattr(client, method)(path, data={"decision": "approve"})
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/admin/staff", "/admin/claims"])
def test_admin_pages_send_visitors_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next={path}"


def test_consumer_only_page_refuses_staff(client, make_user, auth):
    auth.login(make_user("mediator"))
    assert client.get("/account/claim").status_code == 403


# Regulator pages: staff accounts ---------------------------------------------


def test_regulator_lists_and_creates_staff(app, client, make_user, make_merchant, auth):
    make_user("mediator", name="Wang Mediator")
    make_user("consumer", name="Not Staff")
    auth.login(make_user("regulator"))
    html = client.get("/admin/staff").get_data(as_text=True)
    assert "Wang Mediator" in html and "Not Staff" not in html
    shop = make_merchant(name="Kettle World")
    response = client.post(
        "/admin/staff",
        data={
            "name": "Zhao Shop",
            "email": "zhao@shop.example",
            "password": PASSWORD,
            "role": "merchant",
            "merchant_id": str(shop.id),
            "locale": "en",
            "phone": "",
        },
    )
    assert response.status_code == 302
    created = _by_email(app, "zhao@shop.example")
    assert (created.role, created.merchant_id, created.locale) == (
        "merchant",
        shop.id,
        "en",
    )
    listing = client.get("/admin/staff?role=merchant").get_data(as_text=True)
    assert "Zhao Shop" in listing and "Kettle World" in listing
    assert "Wang Mediator" not in listing


@pytest.mark.parametrize("role", ["mediator", "arbitrator", "regulator"])
def test_regulator_creates_association_and_regulator_accounts(
    app, client, make_user, auth, role
):
    auth.login(make_user("regulator"))
    response = client.post(
        "/admin/staff",
        data={
            "name": "New",
            "email": f"new-{role}@example.com",
            "password": PASSWORD,
            "role": role,
            "locale": "zh_CN",
        },
    )
    assert response.status_code == 302
    assert _by_email(app, f"new-{role}@example.com").role == role


@pytest.mark.parametrize(
    ("role", "merchant_id", "message"),
    [
        ("merchant", "", "Merchant staff must belong to a registered merchant."),
        ("merchant", "999999", "Merchant staff must belong to a registered merchant."),
        ("mediator", "{shop}", "Only merchant staff belong to a merchant."),
        ("consumer", "", "Not a valid choice"),
        ("merchant", "abc", "Not a valid integer value"),
    ],
)
def test_staff_form_refuses_bad_combinations(
    app, client, make_user, make_merchant, auth, role, merchant_id, message
):
    shop = make_merchant()
    auth.login(make_user("regulator"))
    response = client.post(
        "/admin/staff?lang=en",
        data={
            "name": "Bad",
            "email": "bad@example.com",
            "password": PASSWORD,
            "role": role,
            "locale": "zh_CN",
            "merchant_id": merchant_id.format(shop=shop.id),
        },
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _by_email(app, "bad@example.com") is None


def test_staff_form_duplicate_email(client, make_user, auth):
    existing = make_user("mediator")
    auth.login(make_user("regulator"))
    response = client.post(
        "/admin/staff?lang=en",
        data={
            "name": "Dup",
            "email": existing.email,
            "password": PASSWORD,
            "role": "mediator",
            "locale": "zh_CN",
        },
    )
    assert response.status_code == 422
    assert "An account with this e-mail already exists." in response.get_data(
        as_text=True
    )


def test_staff_page_finds_merchants_to_pick(client, make_user, make_merchant, auth):
    make_merchant(name="Kettle World")
    make_merchant(name="Tea House")
    auth.login(make_user("regulator"))
    html = client.get("/admin/staff?q=kettle").get_data(as_text=True)
    assert html.count('data-testid="merchant-option"') == 1
    assert "Kettle World" in html


def test_staff_list_rejects_a_bad_page(client, make_user, auth):
    auth.login(make_user("regulator"))
    assert client.get("/admin/staff?page=abc").status_code == 400


# Merchant-staff claims -------------------------------------------------------


def _claim(client, merchant_id, statement="I run the shop's customer service."):
    return client.post(
        "/account/claim?lang=en",
        data={"merchant_id": str(merchant_id), "statement": statement},
    )


def test_claim_approval_makes_the_user_merchant_staff(
    app, client, make_user, make_merchant, auth
):
    shop = make_merchant(name="Kettle World")
    consumer = make_user(name="Future Staff")
    auth.login(consumer)
    assert client.get("/account/claim?q=Kettle").status_code == 200
    response = _claim(client, shop.id)
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert "waiting for a regulator" in client.get("/account?lang=en").get_data(
        as_text=True
    )

    regulator_client = app.test_client()
    regulator_client.post(
        "/login", data={"email": make_user("regulator").email, "password": PASSWORD}
    )
    listing = regulator_client.get("/admin/claims").get_data(as_text=True)
    assert "Future Staff" in listing and "Kettle World" in listing
    with app.app_context():
        claim_id = db.session.scalar(db.select(MerchantClaim.id))
    decided = regulator_client.post(
        f"/admin/claims/{claim_id}", data={"decision": "approve", "note": "Checked."}
    )
    assert decided.status_code == 302

    user = _user(app, consumer.id)
    assert (user.role, user.merchant_id) == ("merchant", shop.id)
    # The old session is no longer valid: the powers of the account changed.
    stale = client.get("/account")
    assert stale.status_code == 302 and stale.headers["Location"].startswith("/login")
    with app.app_context():
        kinds = db.session.scalars(
            db.select(Notification.kind).where(Notification.user_id == consumer.id)
        ).all()
        claim = db.session.get(MerchantClaim, claim_id)
        assert (claim.status, claim.decision_note) == ("approved", "Checked.")
    assert kinds == ["claim_approved"]
    # Signing in again gives the new role.
    auth.login(consumer)
    assert "Kettle World" in client.get("/account").get_data(as_text=True)
    pending = regulator_client.get("/admin/claims").text
    assert 'data-testid="claim"' not in pending


def test_claim_rejection_keeps_the_consumer(
    app, client, make_user, make_merchant, auth
):
    shop = make_merchant()
    consumer = make_user()
    auth.login(consumer)
    _claim(client, shop.id)
    with app.app_context():
        claim_id = db.session.scalar(db.select(MerchantClaim.id))
    regulator_client = app.test_client()
    regulator_client.post(
        "/login", data={"email": make_user("regulator").email, "password": PASSWORD}
    )
    regulator_client.post(
        f"/admin/claims/{claim_id}", data={"decision": "reject", "note": "Unknown."}
    )
    assert _user(app, consumer.id).role == "consumer"
    assert client.get("/account").status_code == 200  # still signed in
    rejected = regulator_client.get("/admin/claims?status=rejected")
    assert "Unknown." in rejected.get_data(as_text=True)
    # Deciding twice is a conflict.
    again = regulator_client.post(
        f"/admin/claims/{claim_id}", data={"decision": "approve"}
    )
    assert again.status_code == 409


def test_decide_claim_needs_a_decision(app, client, make_user, make_merchant, auth):
    auth.login(make_user())
    _claim(client, make_merchant().id)
    with app.app_context():
        claim_id = db.session.scalar(db.select(MerchantClaim.id))
    auth.login(make_user("regulator"))
    assert client.post(f"/admin/claims/{claim_id}", data={}).status_code == 422
    assert (
        client.post(f"/admin/claims/{claim_id}", data={"decision": "maybe"}).status_code
        == 422
    )
    unknown = client.post("/admin/claims/999999", data={"decision": "approve"})
    assert unknown.status_code == 404


def test_claim_form_errors(app, client, make_user, make_merchant, auth):
    shop = make_merchant()
    auth.login(make_user())
    unknown = _claim(client, 999999)
    assert unknown.status_code == 422
    assert "Choose a registered merchant." in unknown.get_data(as_text=True)
    empty = _claim(client, shop.id, statement="")
    assert empty.status_code == 422
    assert "This field is required." in empty.get_data(as_text=True)
    assert _claim(client, shop.id).status_code == 302
    twice = _claim(client, shop.id)
    assert twice.status_code == 422
    assert "You already have a pending request." in twice.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(MerchantClaim.id))) == 1


def test_regulator_creates_a_mediator_with_categories(app, client, auth, make_user):
    """Automatic assignment uses the categories a mediator handles."""
    regulator = make_user("regulator")
    auth.login(regulator)
    response = client.post(
        "/admin/staff?lang=en",
        data={
            "name": "Counterfeit Specialist",
            "email": "fakes@example.com",
            "password": "long-enough-1",
            "role": "mediator",
            "locale": "en",
            "categories": ["counterfeit", "fake_reviews"],
        },
    )
    assert response.status_code in (302, 303)
    with app.app_context():
        user = db.session.scalars(
            db.select(User).where(User.email == "fakes@example.com")
        ).one()
        assert user.categories == ["counterfeit", "fake_reviews"]
    page = client.get("/admin/staff?lang=en").get_data(as_text=True)
    assert "Counterfeit or shoddy goods" in page


def test_only_mediators_handle_categories(app, client, auth, make_user):
    regulator = make_user("regulator")
    auth.login(regulator)
    response = client.post(
        "/admin/staff?lang=en",
        data={
            "name": "Arbiter",
            "email": "arb@example.com",
            "password": "long-enough-1",
            "role": "arbitrator",
            "locale": "en",
            "categories": ["counterfeit"],
        },
    )
    assert response.status_code == 422
    assert "Only mediators handle categories." in response.get_data(as_text=True)
    with app.app_context():
        assert (
            db.session.scalar(db.select(User.id).where(User.email == "arb@example.com"))
            is None
        )
