"""Credit-repair pages: the merchant's application and the regulator's decision.

Thin views: an access check, one service of :mod:`mediation.credit.repair`,
one commit, then a redirect with a flash (or the form again with its errors).
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from mediation import clock
from mediation.api.common import page_arg
from mediation.auth.models import Role, User
from mediation.auth.permissions import require_role
from mediation.auth.views import apply_errors
from mediation.cases.views import signed_in
from mediation.credit import bp, labels, ledger, repair
from mediation.credit.models import CreditEvent, CreditRepair
from mediation.credit.repair_forms import DecideRepairForm, RepairForm
from mediation.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mediation.extensions import db
from mediation.merchants.models import Merchant


def _periods() -> dict[str, str]:
    """Name the minimum periods of the credit model (``repair_months``)."""
    months = ledger.credit_config()["repair_months"]
    return {
        "event": ngettext(
            "%(num)d month after the event",
            "%(num)d months after the event",
            months["event"],
        ),
        "listing": ngettext(
            "%(num)d month (dishonesty list)",
            "%(num)d months (dishonesty list)",
            months["listing"],
        ),
    }


def _labels() -> dict:
    return {
        "event_labels": labels.EVENT_KIND,
        "repair_statuses": labels.REPAIR_STATUS,
        "periods": _periods(),
    }


def _staff_merchant(user: User) -> Merchant:
    """Return the merchant the signed-in staff member acts for.

    :raise PermissionDenied: for other roles and staff without a merchant.
    """
    if user.merchant_id is None:
        raise PermissionDenied(_l("Your account does not act for a merchant yet."))
    merchant = db.session.get(Merchant, user.merchant_id)
    if merchant is None:
        raise PermissionDenied()
    return merchant


@bp.route("/credit/repair", methods=["GET", "POST"])
@signed_in
def repair_page():
    """The merchant's credit repair: what can be repaired when, the application
    form, and its applications with their decisions (merchant staff only)."""
    user: User = require_role(Role.merchant)
    merchant = _staff_merchant(user)
    now = clock.now_utc()
    items = repair.eligible_events(merchant.id, now=now)
    form = RepairForm(events=[i.event for i in items if i.eligible])
    if form.validate_on_submit():
        try:
            repair.apply(
                merchant.id,
                user,
                form.event_ids.data or [],
                form.commitment.data or "",
                now=now,
            )
        except (ValidationError, Conflict) as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(
                _("Your application was sent; a regulator will decide on it."),
                "success",
            )
            return redirect(url_for("credit.repair_page"), 303)
    applications = repair.applications_of(merchant.id)
    return render_template(
        "credit/repair.html",
        merchant=merchant,
        items=items,
        form=form,
        standing=ledger.standing_of(merchant.id, now=now),
        pending=repair.pending_of(merchant.id),
        applications=applications,
        repaired=_repaired_events(merchant.id),
        events_by_id=_events_by_id(applications),
        now=now,
        **_labels(),
    ), (422 if request.method == "POST" else 200)


@bp.get("/credit/repairs")
@signed_in
def repairs():
    """Credit-repair applications: pending first, or decided (regulators only)."""
    require_role(Role.regulator)
    status = request.args.get("status")
    if status not in labels.REPAIR_STATUS:
        status = "pending"
    order = (
        (CreditRepair.created_at, CreditRepair.id)
        if status == "pending"
        else (CreditRepair.decided_at.desc(), CreditRepair.id.desc())
    )
    page = db.paginate(
        db.select(CreditRepair).where(CreditRepair.status == status).order_by(*order),
        page=page_arg(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    now = clock.now_utc()
    return render_template(
        "credit/repairs.html",
        page=page,
        status=status,
        standings={
            r.merchant_id: ledger.standing_of(r.merchant_id, now=now)
            for r in page.items
        },
        events_by_id=_events_by_id(page.items),
        **_labels(),
    )


@bp.route("/credit/repairs/<int:repair_id>", methods=["GET", "POST"])
@signed_in
def repair_detail(repair_id: int):
    """One application with the merchant's ledger, and the decision form
    (regulators only)."""
    regulator: User = require_role(Role.regulator)
    application = db.session.get(CreditRepair, repair_id)
    if application is None:
        raise NotFound()
    now = clock.now_utc()
    form = DecideRepairForm()
    if form.validate_on_submit():
        try:
            decided = repair.decide(
                application.id,
                regulator,
                form.decision.data == "approve",
                form.reason.data,
                now=now,
                performance_verified=bool(form.performance_verified.data),
            )
        except (ValidationError, Conflict) as exc:
            db.session.rollback()
            apply_errors(form, exc)
            application = db.session.get(CreditRepair, repair_id)
        else:
            db.session.commit()
            flash(
                _("The application was approved; the events no longer count.")
                if decided.status == "approved"
                else _("The application was refused."),
                "success",
            )
            return redirect(url_for("credit.repairs"), 303)
    items = (
        repair.assess_application(application, now=now)
        if application.status == "pending"
        else []
    )
    history = repair.applications_of(application.merchant_id)
    return render_template(
        "credit/repair_detail.html",
        application=application,
        merchant=application.merchant,
        items=items,
        requested=repair.events_of(application),
        needs_performance=any(i.needs_performance for i in items),
        form=form,
        standing=ledger.standing_of(application.merchant_id, now=now),
        ledger_events=_ledger(application.merchant_id),
        history=[a for a in history if a.id != application.id],
        events_by_id=_events_by_id(history),
        **_labels(),
    ), (422 if request.method == "POST" else 200)


def _ledger(merchant_id: int) -> list[CreditEvent]:
    return list(
        db.session.scalars(
            db.select(CreditEvent)
            .where(CreditEvent.merchant_id == merchant_id)
            .order_by(CreditEvent.occurred_at.desc(), CreditEvent.id.desc())
        ).all()
    )


def _repaired_events(merchant_id: int) -> list[CreditEvent]:
    return list(
        db.session.scalars(
            db.select(CreditEvent)
            .where(
                CreditEvent.merchant_id == merchant_id,
                CreditEvent.repaired_at.is_not(None),
            )
            .order_by(CreditEvent.repaired_at.desc(), CreditEvent.id.desc())
        ).all()
    )


def _events_by_id(applications: list[CreditRepair]) -> dict[int, CreditEvent]:
    ids = {int(i) for a in applications for i in a.event_ids or []}
    if not ids:
        return {}
    return {
        e.id: e
        for e in db.session.scalars(
            db.select(CreditEvent).where(CreditEvent.id.in_(ids))
        ).all()
    }
