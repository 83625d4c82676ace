"""Account pages: sign-in and out, registration, language, account, staff admin."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from mediation import clock
from mediation.api.common import page_arg
from mediation.auth import bp, services
from mediation.auth.forms import (
    ClaimForm,
    DecideClaimForm,
    LanguageForm,
    LoginForm,
    RegisterForm,
    StaffForm,
)
from mediation.auth.models import (
    STAFF_ROLES,
    ApiToken,
    ClaimStatus,
    MerchantClaim,
    Role,
    User,
)
from mediation.auth.permissions import require_role, require_user
from mediation.errors import (
    BadRequest,
    Conflict,
    DomainError,
    NotFound,
    ValidationError,
)
from mediation.extensions import db, limiter
from mediation.merchants.models import Merchant
from mediation.merchants.services import search_merchants

#: How many registry matches the merchant picker offers at once.
PICKER_LIMIT = 20


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a path on this site, else None.

    Guards every ``next`` parameter against open redirects: only relative paths
    starting with a single slash pass (no scheme, no host, no backslash tricks).
    """
    if not target:
        return None
    target = target.strip()
    if not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _home() -> str:
    return url_for("cases.home")


def _here() -> str:
    """Return the path (and query) of the current request, for ``next``."""
    return request.full_path if request.query_string else request.path


def signin_required(fn: Callable) -> Callable:
    """Send anonymous visitors of an HTML page to the sign-in form.

    Pages opened with GET come back after sign-in through ``next``; a POST
    cannot be replayed, so it comes back to the start page.
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        if not current_user.is_authenticated:
            flash(_("Please sign in to continue."), "info")
            if request.method == "GET":
                return redirect(url_for("auth.login", next=_here()))
            return redirect(url_for("auth.login"))
        return fn(*args, **kwargs)

    return wrapper


def apply_errors(form: Any, exc: DomainError) -> None:
    """Show a domain error on the form: per field when it names fields."""
    for name, messages in (exc.fields or {}).items():
        if not isinstance(messages, (list, tuple)):
            messages = [messages]
        field = form._fields.get(name)
        if field is not None:
            field.errors = [*field.errors, *(str(m) for m in messages)]
        else:
            form.form_errors.extend(str(m) for m in messages)
    if not exc.fields:
        form.form_errors.append(str(exc.message))


def _status(form: Any) -> int:
    """Return 422 for a submitted form shown again with errors, else 200."""
    return 422 if request.method == "POST" else 200


def _locale_code() -> str:
    """Return the language of this request as stored on users (``zh_CN``, ``en``)."""
    return "en" if get_locale().language == "en" else "zh_CN"


def _start_session(user: User) -> None:
    """Sign ``user`` in on a fresh session (no value of the old one survives)."""
    session.clear()
    login_user(user)
    session["locale"] = user.locale


# Sign-in, sign-out, registration, language -----------------------------------


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    """Sign in with e-mail and password."""
    target = safe_next(request.form.get("next") or request.args.get("next"))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(target or _home())
    form = LoginForm()
    if request.method == "GET":
        form.next.data = target
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is not None:
            _start_session(user)
            return redirect(target or _home())
        # Never say which of the two was wrong: that would confirm accounts exist.
        form.form_errors.append(_("The e-mail address or the password is wrong."))
    return render_template("auth/login.html", form=form), _status(form)


@bp.errorhandler(429)
def too_many_attempts(exc: Exception):
    """Show the sign-in form again, with the reason it is refused for now."""
    if request.endpoint != "auth.login":
        message = _("Too many requests; please wait and try again.")
        return render_template("error.html", status=429, message=message), 429
    form = LoginForm()
    form.next.data = safe_next(request.form.get("next") or request.args.get("next"))
    form.password.data = None
    form.form_errors.append(
        _("Too many sign-in attempts. Please wait a minute and try again.")
    )
    return render_template("auth/login.html", form=form, blocked=True), 429


@bp.post("/logout")
def logout():
    """Sign out; the chosen language survives."""
    locale = session.get("locale")
    logout_user()
    session.clear()
    if locale:
        session["locale"] = locale
    flash(_("You have signed out."), "success")
    return redirect(url_for("auth.login"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Self-registration of a consumer, signed in at once."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_home())
    form = RegisterForm()
    if request.method == "GET":
        form.locale.data = _locale_code()
        form.next.data = safe_next(request.args.get("next"))
    if form.validate_on_submit():
        try:
            user = services.register_consumer(
                email=form.email.data,
                password=form.password.data,
                name=form.name.data,
                locale=form.locale.data,
                now=clock.now_utc(),
            )
        except (ValidationError, Conflict) as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            _start_session(user)
            flash(_("Welcome! Your account is ready."), "success")
            return redirect(safe_next(form.next.data) or _home())
    return render_template("auth/register.html", form=form), _status(form)


@bp.post("/language")
def set_language():
    """Switch the language of the session (and of the account, when signed in)."""
    form = LanguageForm()
    if not form.validate_on_submit():
        raise BadRequest(_("Choose Chinese or English."), code="bad_locale")
    session["locale"] = form.locale.data
    if current_user.is_authenticated:
        # The account keeps the choice so that e-mails use it too.
        services.set_locale(current_user, form.locale.data)
        db.session.commit()
    return redirect(safe_next(form.next.data) or _home())


# The account -----------------------------------------------------------------


def _render_account(
    user: User, *, new_token: str | None = None, new_token_row: ApiToken | None = None
):
    tokens = db.session.scalars(
        db.select(ApiToken)
        .where(ApiToken.user_id == user.id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        .limit(50)
    ).all()
    claims = db.session.scalars(
        db.select(MerchantClaim)
        .where(MerchantClaim.user_id == user.id)
        .order_by(MerchantClaim.created_at.desc(), MerchantClaim.id.desc())
    ).all()
    response = current_app.make_response(
        render_template(
            "auth/account.html",
            user=user,
            tokens=tokens,
            claims=claims,
            now=clock.now_utc(),
            new_token=new_token,
            new_token_row=new_token_row,
        )
    )
    if new_token:
        # The secret is on this page only: no cache may keep it.
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/account")
@signin_required
def account():
    """The signed-in user's profile, language, claims and API tokens."""
    return _render_account(require_user())


@bp.post("/account/tokens")
@signin_required
def create_token():
    """Issue an API token and show its secret once."""
    user = require_user()
    ttl = timedelta(hours=current_app.config["API_TOKEN_TTL_HOURS"])
    secret, row = services.issue_token(user, now=clock.now_utc(), ttl=ttl)
    db.session.commit()
    return _render_account(user, new_token=secret, new_token_row=row)


@bp.post("/account/tokens/<int:token_id>/revoke")
@signin_required
def revoke_token(token_id: int):
    """Revoke one of the user's own API tokens."""
    user = require_user()
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound()
    services.revoke_token(token, now=clock.now_utc())
    db.session.commit()
    flash(_("The token was revoked."), "success")
    return redirect(url_for("auth.account"))


def _merchant_matches(q: str) -> list[Merchant]:
    if not q:
        return []
    return list(db.session.scalars(search_merchants(q).limit(PICKER_LIMIT)).all())


def _chosen_merchant(merchant_id: int | None) -> Merchant | None:
    if not merchant_id or merchant_id < 1:
        return None
    return db.session.get(Merchant, merchant_id)


@bp.route("/account/claim", methods=["GET", "POST"])
@signin_required
def claim():
    """A consumer asks to act as staff of a merchant ("I work for this merchant")."""
    user = require_role(Role.consumer)
    form = ClaimForm()
    q = (request.args.get("q") or "").strip()
    if request.method == "GET" and (request.args.get("merchant_id") or "").isdigit():
        form.merchant_id.data = int(request.args["merchant_id"])
    if form.validate_on_submit():
        merchant = _chosen_merchant(form.merchant_id.data)
        if merchant is None:
            form.merchant_id.errors.append(_("Choose a registered merchant."))
        else:
            try:
                services.submit_claim(
                    user, merchant, form.statement.data, now=clock.now_utc()
                )
            except (ValidationError, Conflict) as exc:
                db.session.rollback()
                apply_errors(form, exc)
            else:
                db.session.commit()
                flash(
                    _("Your request was sent; a regulator will review it."), "success"
                )
                return redirect(url_for("auth.account"))
    claims = db.session.scalars(
        db.select(MerchantClaim)
        .where(MerchantClaim.user_id == user.id)
        .order_by(MerchantClaim.created_at.desc(), MerchantClaim.id.desc())
    ).all()
    return render_template(
        "auth/claim.html",
        form=form,
        q=q,
        matches=_merchant_matches(q),
        chosen=_chosen_merchant(form.merchant_id.data),
        claims=claims,
    ), _status(form)


# Regulator pages -------------------------------------------------------------


@bp.route("/admin/staff", methods=["GET", "POST"])
@signin_required
def staff():
    """List staff accounts and create new ones (regulators only)."""
    regulator = require_role(Role.regulator)
    form = StaffForm()
    q = (request.args.get("q") or "").strip()
    if request.method == "GET" and (request.args.get("merchant_id") or "").isdigit():
        form.merchant_id.data = int(request.args["merchant_id"])
        form.role.data = Role.merchant.value
    if form.validate_on_submit():
        try:
            user = services.create_user(
                email=form.email.data,
                password=form.password.data,
                name=form.name.data,
                role=form.role.data,
                locale=form.locale.data,
                merchant_id=form.merchant_id.data,
                phone=form.phone.data,
                categories=form.categories.data or [],
                now=clock.now_utc(),
                actor=regulator,
            )
        except (ValidationError, Conflict) as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("The account %(email)s was created.", email=user.email), "success")
            return redirect(url_for("auth.staff"))
    roles = [r.value for r in STAFF_ROLES]
    role = request.args.get("role")
    query = db.select(User).where(User.role.in_(roles))
    if role in roles:
        query = query.where(User.role == role)
    page = db.paginate(
        query.order_by(User.role, User.name, User.id),
        page=page_arg(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render_template(
        "auth/staff.html",
        form=form,
        page=page,
        role=role if role in roles else None,
        roles=roles,
        q=q,
        matches=_merchant_matches(q),
        chosen=_chosen_merchant(form.merchant_id.data),
    ), _status(form)


@bp.get("/admin/claims")
@signin_required
def claims():
    """Merchant-staff claims waiting for a decision (regulators only)."""
    require_role(Role.regulator)
    statuses = [s.value for s in ClaimStatus]
    status = request.args.get("status")
    if status not in statuses:
        status = ClaimStatus.pending.value
    order = (
        (MerchantClaim.created_at, MerchantClaim.id)
        if status == ClaimStatus.pending.value
        else (MerchantClaim.decided_at.desc(), MerchantClaim.id.desc())
    )
    page = db.paginate(
        db.select(MerchantClaim).where(MerchantClaim.status == status).order_by(*order),
        page=page_arg(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render_template(
        "auth/claims.html", page=page, status=status, statuses=statuses
    )


@bp.post("/admin/claims/<int:claim_id>")
@signin_required
def decide_claim(claim_id: int):
    """Approve or reject one claim (regulators only)."""
    regulator = require_role(Role.regulator)
    claim = db.session.get(MerchantClaim, claim_id)
    if claim is None:
        raise NotFound()
    form = DecideClaimForm()
    if not form.validate_on_submit():
        first = next(iter(form.errors.values()), [_("Choose approve or reject.")])
        raise ValidationError(str(first[0]))
    approve = form.decision.data == "approve"
    services.decide_claim(
        claim,
        approve=approve,
        note=form.note.data,
        actor=regulator,
        now=clock.now_utc(),
    )
    db.session.commit()
    if approve:
        flash(
            _(
                "Approved: %(name)s now acts for %(merchant)s.",
                name=claim.user.name,
                merchant=claim.merchant.name,
            ),
            "success",
        )
    else:
        flash(
            _("The request of %(name)s was rejected.", name=claim.user.name), "success"
        )
    return redirect(url_for("auth.claims"))
