"""Consumer warnings: the public pages and the regulators' editor.

Public: ``/warnings/`` (published warnings, newest first, by category or
merchant) and ``/warnings/<id>``. Regulators: ``/supervision/warnings`` (every
warning), write and change drafts with a preview, publish, withdraw with a
reason, discard a draft. Thin views: access, one service of
:mod:`mediation.analytics.warning_services`, one commit, a redirect with a
flash (or the form again with its errors, 422).
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from mediation import clock
from mediation.analytics import bp
from mediation.analytics import warning_services as services
from mediation.analytics.audit_models import AuditEntry
from mediation.analytics.warning_forms import (
    ConfirmForm,
    WarningForm,
    WithdrawWarningForm,
    category_choices,
    category_label,
)
from mediation.analytics.warning_models import ConsumerWarning, WarningStatus
from mediation.api.common import page_arg
from mediation.auth.models import Role, User
from mediation.auth.permissions import require_role
from mediation.auth.views import apply_errors
from mediation.cases.views import signed_in
from mediation.errors import Conflict, ValidationError
from mediation.extensions import db
from mediation.merchants import services as merchant_services
from mediation.merchants.models import Merchant

#: Registry matches the editor's merchant search lists.
MATCHES_SHOWN = 20


def _status_labels() -> dict[str, str]:
    return {
        "draft": _("Draft"),
        "published": _("Published"),
        "withdrawn": _("Withdrawn"),
    }


@bp.app_template_global("warning_category_label")
def _category_label(code: str) -> str:
    return category_label(code)


@bp.app_template_global("published_warnings_naming")
def published_warnings_naming(merchant_id: int) -> tuple[list[ConsumerWarning], int]:
    """The merchant credit page's box: the newest published warnings naming it."""
    return services.published_naming(merchant_id)


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    if raw.isascii() and raw.isdigit() and 0 < int(raw) <= 2**31 - 1:
        return int(raw)
    return None


# Public pages -----------------------------------------------------------------


@bp.get("/warnings/")
def public_warnings():
    """Published consumer warnings, newest first (anyone)."""
    category = request.args.get("category") or None
    if category not in services.CATEGORIES:
        category = None
    merchant_id = _int_arg("merchant_id")
    merchant = db.session.get(Merchant, merchant_id) if merchant_id else None
    page = db.paginate(
        services.list_warnings(
            category=category, merchant_id=merchant.id if merchant else None
        ),
        page=page_arg(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render_template(
        "analytics/warnings.html",
        page=page,
        category=category,
        merchant=merchant,
        categories=category_choices(blank=_("All categories")),
    )


@bp.get("/warnings/<int:warning_id>")
def public_warning(warning_id: int):
    """One published warning (anyone); a withdrawn one only says so (410)."""
    warning = services.get_public_warning(warning_id)
    if warning.status == WarningStatus.withdrawn.value:
        return render_template("analytics/warning_withdrawn.html", warning=warning), 410
    return render_template("analytics/warning.html", warning=warning)


# Regulator pages ---------------------------------------------------------------


@bp.get("/supervision/warnings")
@signed_in
def warnings_admin():
    """Every warning: drafts, published and withdrawn (regulators only)."""
    require_role(Role.regulator)
    status = request.args.get("status") or None
    if status not in services.STATUSES:
        status = None
    page = db.paginate(
        services.list_warnings(status=status),
        page=page_arg(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render_template(
        "analytics/warnings_admin.html",
        page=page,
        status=status,
        status_labels=_status_labels(),
    )


def _merchant_lists(form: WarningForm) -> tuple[list[Merchant], list[Merchant]]:
    """Return the merchants ticked in the form and the registry matches of its
    search (those not ticked yet)."""
    ids = [i for i in (form.merchant_ids.data or []) if 0 < i <= 2**31 - 1]
    found = {
        m.id: m
        for m in db.session.scalars(db.select(Merchant).where(Merchant.id.in_(ids)))
    }
    chosen = [found[i] for i in dict.fromkeys(ids) if i in found]
    q = (form.merchant_query.data or "").strip()[:100]
    matches: list[Merchant] = []
    if q:
        matches = [
            m
            for m in db.session.scalars(
                merchant_services.search_merchants(q).limit(MATCHES_SHOWN)
            )
            if m.id not in found
        ]
    return chosen, matches


def _editor(form: WarningForm, warning: ConsumerWarning | None, status: int):
    chosen, matches = _merchant_lists(form)
    return render_template(
        "analytics/warning_form.html",
        form=form,
        warning=warning,
        chosen=chosen,
        matches=matches,
        searched=bool((form.merchant_query.data or "").strip()),
    ), status


def _wants_search() -> bool:
    """Say whether the editor's "Find" button sent the form (no saving then)."""
    return request.form.get("op") == "find"


@bp.route("/supervision/warnings/new", methods=["GET", "POST"])
@signed_in
def warning_new():
    """Write a new warning: saved as a draft, then previewed (regulators)."""
    regulator: User = require_role(Role.regulator)
    form = WarningForm()
    if request.method == "GET":
        form.category.data = services.GENERAL
        merchant_id = _int_arg("merchant_id")
        if merchant_id and db.session.get(Merchant, merchant_id) is not None:
            form.merchant_ids.data = [merchant_id]
    if form.is_submitted() and _wants_search():
        form.validate()  # only the CSRF token and the ticked ids are checked
        return _editor(form, None, 200 if not form.errors else 422)
    if form.validate_on_submit():
        try:
            warning = services.create_warning(
                form.values(), actor=regulator, now=clock.now_utc()
            )
        except ValidationError as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("The draft was saved. Check the preview, then publish."), "success")
            return redirect(
                url_for("analytics.warning_manage", warning_id=warning.id), 303
            )
    return _editor(form, None, 422 if request.method == "POST" else 200)


@bp.get("/supervision/warnings/<int:warning_id>")
@signed_in
def warning_manage(warning_id: int):
    """One warning as the public will see it, with its record and the next steps
    (regulators only)."""
    require_role(Role.regulator)
    warning = services.get_warning(warning_id)
    return _manage(warning, WithdrawWarningForm(), 200)


def _manage(warning: ConsumerWarning, withdraw_form: WithdrawWarningForm, status: int):
    history = list(
        db.session.scalars(
            db.select(AuditEntry)
            .where(
                AuditEntry.object_type == "warning", AuditEntry.object_id == warning.id
            )
            .order_by(AuditEntry.id.desc())
        )
    )
    return render_template(
        "analytics/warning_manage.html",
        warning=warning,
        withdraw_form=withdraw_form,
        confirm=ConfirmForm(),
        history=history,
        status_labels=_status_labels(),
    ), status


@bp.route("/supervision/warnings/<int:warning_id>/edit", methods=["GET", "POST"])
@signed_in
def warning_edit(warning_id: int):
    """Change a draft (regulators only)."""
    regulator: User = require_role(Role.regulator)
    warning = services.get_warning(warning_id)
    if warning.status != WarningStatus.draft.value:
        flash(
            _("A published warning is not edited; withdraw it and write a new one."),
            "error",
        )
        return redirect(url_for("analytics.warning_manage", warning_id=warning.id), 303)
    form = WarningForm(
        data={
            "title": warning.title,
            "category": warning.category,
            "body": warning.body,
            "merchant_ids": [m.id for m in warning.merchants],
        }
        if request.method == "GET"
        else None
    )
    if form.is_submitted() and _wants_search():
        form.validate()
        return _editor(form, warning, 200 if not form.errors else 422)
    if form.validate_on_submit():
        try:
            warning = services.get_warning_to_change(regulator, warning_id)
            services.update_warning(
                warning, form.values(), actor=regulator, now=clock.now_utc()
            )
        except (ValidationError, Conflict) as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("The draft was saved."), "success")
            return redirect(
                url_for("analytics.warning_manage", warning_id=warning.id), 303
            )
    return _editor(form, warning, 422 if request.method == "POST" else 200)


@bp.post("/supervision/warnings/<int:warning_id>/publish")
@signed_in
def warning_publish(warning_id: int):
    """Publish a draft (regulators only)."""
    regulator: User = require_role(Role.regulator)
    form = ConfirmForm()
    if not form.validate_on_submit():
        raise ValidationError(_("The form has expired; please try again."))
    warning = services.get_warning_to_change(regulator, warning_id)
    services.publish_warning(warning, actor=regulator, now=clock.now_utc())
    db.session.commit()
    flash(_("The warning is published."), "success")
    return redirect(url_for("analytics.warning_manage", warning_id=warning.id), 303)


@bp.post("/supervision/warnings/<int:warning_id>/withdraw")
@signed_in
def warning_withdraw(warning_id: int):
    """Withdraw a published warning with a reason (regulators only)."""
    regulator: User = require_role(Role.regulator)
    form = WithdrawWarningForm()
    warning = services.get_warning_to_change(regulator, warning_id)
    if form.validate_on_submit():
        try:
            services.withdraw_warning(
                warning, form.reason.data, actor=regulator, now=clock.now_utc()
            )
        except ValidationError as exc:
            # A conflict (not published, or no longer) goes to the error
            # handler: a message on the page the regulator came from.
            db.session.rollback()
            apply_errors(form, exc)
            warning = services.get_warning(warning_id)
        else:
            db.session.commit()
            flash(_("The warning was withdrawn from the public site."), "success")
            return redirect(
                url_for("analytics.warning_manage", warning_id=warning.id), 303
            )
    return _manage(warning, form, 422)


@bp.post("/supervision/warnings/<int:warning_id>/discard")
@signed_in
def warning_discard(warning_id: int):
    """Delete a draft (regulators only)."""
    regulator: User = require_role(Role.regulator)
    form = ConfirmForm()
    if not form.validate_on_submit():
        raise ValidationError(_("The form has expired; please try again."))
    warning = services.get_warning_to_change(regulator, warning_id)
    services.discard_warning(warning, actor=regulator, now=clock.now_utc())
    db.session.commit()
    flash(_("The draft was deleted."), "success")
    return redirect(url_for("analytics.warnings_admin"), 303)
