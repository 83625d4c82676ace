"""The regulators' risk list: merchants by risk score with their factors, a
merchant's risk page with the cases behind each factor, the refresh of one
merchant, and marking a merchant for a warning interview.

Thin views: a role check, the parsed form, one service, one commit, then a
redirect with a flash or the page again with its errors (422). The warning
interview and text flag pages live in :mod:`interview_views` and
:mod:`tagging_views` (imported at the end so their routes are registered).
"""

from __future__ import annotations

from decimal import Decimal

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from mediation import clock
from mediation.analytics import bp, interviews, risk, risk_labels
from mediation.analytics.risk_forms import PlanInterviewForm, RiskFilterForm
from mediation.analytics.risk_models import RiskScore
from mediation.api.common import page_arg
from mediation.auth.models import Role, User
from mediation.auth.permissions import require_role
from mediation.auth.views import apply_errors
from mediation.cases.views import signed_in
from mediation.errors import Conflict, NotFound, ValidationError
from mediation.extensions import db
from mediation.merchants.models import Merchant, MerchantKind

#: The query arguments of the list's filters (kept by the pager).
FILTERS = ("q", "region", "platform", "category", "min_score")


def _platforms() -> list[tuple[int, str]]:
    return [
        (row.id, row.name)
        for row in db.session.execute(
            db.select(Merchant.id, Merchant.name)
            .where(Merchant.kind == MerchantKind.platform.value)
            .order_by(Merchant.name)
        )
    ]


def _labels() -> dict:
    return {
        "factor_labels": risk_labels.FACTOR,
        "level_labels": risk_labels.LEVEL,
        "trend_labels": risk_labels.TREND,
        "trend_arrows": risk_labels.TREND_ARROW,
        "interview_labels": risk_labels.INTERVIEW_STATUS,
        "breach_label": risk_labels.breach_label,
    }


def _model_tables() -> dict:
    model = risk.risk_config()
    return {
        "model_factors": risk_labels.describe_factors(model),
        "model_weights": risk_labels.describe_weights(model),
        "model_levels": risk_labels.describe_levels(model),
        "model": model,
    }


def _top(row: RiskScore, count: int = 3) -> list[tuple[str, float]]:
    """The factors that add most to a stored score, largest first."""
    factors = row.factors or {}
    ranked = sorted(
        (
            (name, float(entry.get("points") or 0))
            for name, entry in factors.items()
            if float(entry.get("points") or 0) > 0
        ),
        key=lambda item: -item[1],
    )
    return ranked[:count]


@bp.get("/supervision/risk")
@signed_in
def risk_list():
    """The risk list: merchants by score, with filters (regulators only)."""
    require_role(Role.regulator)
    form = RiskFilterForm(formdata=request.args, platforms=_platforms())
    page = page_arg()
    per_page = current_app.config["PAGE_SIZE"]
    if not form.validate():
        return render_template(
            "analytics/risk_list.html",
            form=form,
            result=None,
            filters={},
            refreshed=risk.last_refresh(),
            **_labels(),
            **_model_tables(),
        ), 422
    min_score = form.min_score.data
    filters = risk.RiskFilters(
        region=(form.region.data or "").strip(),
        platform_id=int(form.platform.data) if form.platform.data else None,
        category=form.category.data or "",
        min_score=float(min_score) if isinstance(min_score, Decimal) else None,
        q=(form.q.data or "").strip(),
    )
    result = risk.risk_page(filters, page, per_page)
    rows = [(score, score.merchant) for score in result.items]
    return render_template(
        "analytics/risk_list.html",
        form=form,
        result=result,
        rows=rows,
        offset=(result.page - 1) * per_page,
        tops={score.merchant_id: _top(score) for score, _m in rows},
        interviews=risk.interview_status(score.merchant_id for score, _m in rows),
        filters={k: v for k, v in request.args.items() if k in FILTERS and v},
        refreshed=risk.last_refresh(),
        **_labels(),
        **_model_tables(),
    )


def _merchant_page(merchant: Merchant, plan_form: PlanInterviewForm, status: int):
    now = clock.now_utc()
    facts, result = risk.merchant_risk(merchant.id, now=now)
    stored = db.session.get(RiskScore, merchant.id)
    return render_template(
        "analytics/risk_merchant.html",
        merchant=merchant,
        facts=facts,
        result=result,
        stored=stored,
        rank=risk.rank_of(stored) if stored is not None else None,
        evidence=risk.factor_evidence(merchant.id, now=now),
        planned=interviews.planned_interview(merchant.id),
        history=interviews.interviews_of(merchant.id),
        plan_form=plan_form,
        today=interviews.today(now),
        **_labels(),
        **_model_tables(),
    ), status


def _merchant_or_404(merchant_id: int) -> Merchant:
    merchant = db.session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound()
    return merchant


@bp.get("/supervision/risk/merchants/<int:merchant_id>")
@signed_in
def risk_merchant(merchant_id: int):
    """A merchant's risk: every factor's contribution and the cases behind it,
    its warning interviews and the form to plan one (regulators only)."""
    require_role(Role.regulator)
    merchant = _merchant_or_404(merchant_id)
    return _merchant_page(merchant, PlanInterviewForm(formdata=None), 200)


@bp.post("/supervision/risk/merchants/<int:merchant_id>/refresh")
@signed_in
def risk_refresh(merchant_id: int):
    """Recompute one merchant's stored score now (regulators only)."""
    require_role(Role.regulator)
    _merchant_or_404(merchant_id)
    row = risk.refresh_merchant_risk(merchant_id, now=clock.now_utc())
    db.session.commit()
    if row is None:
        flash(_("Recomputed: nothing weighs against this merchant now."), "success")
    else:
        flash(
            _("Recomputed: the score in the list is now %(score)s.", score=row.score),
            "success",
        )
    return redirect(url_for("analytics.risk_merchant", merchant_id=merchant_id), 303)


@bp.post("/supervision/risk/merchants/<int:merchant_id>/interviews")
@signed_in
def plan_interview(merchant_id: int):
    """Mark the merchant for a warning interview (regulators only)."""
    regulator: User = require_role(Role.regulator)
    form = PlanInterviewForm()
    merchant = _merchant_or_404(merchant_id)
    status = 422
    if form.validate():
        try:
            merchant = interviews.lock_merchant(merchant_id)
            interviews.plan_interview(
                merchant,
                interviews.PlanInput(
                    reason=form.reason.data or "", planned_for=form.planned_for.data
                ),
                actor=regulator,
                now=clock.now_utc(),
            )
        except (ValidationError, Conflict) as exc:
            db.session.rollback()
            apply_errors(form, exc)
            status = exc.status
        else:
            db.session.commit()
            flash(
                _(
                    "%(merchant)s is marked for a warning interview.",
                    merchant=merchant.name,
                ),
                "success",
            )
            return redirect(
                url_for("analytics.risk_merchant", merchant_id=merchant_id), 303
            )
    return _merchant_page(merchant, form, status)


# The other supervision pages of this part register their routes on import.
from mediation.analytics import interview_views, tagging_views  # noqa: E402, F401
