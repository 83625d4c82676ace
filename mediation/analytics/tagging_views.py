"""Text flag pages: the regulators' review queue of complaints whose text points
to another hot-spot category, each flag's page, and the decision (confirm or
dismiss with a reason). The rule set in force and its precision on the
labelled demo set are shown beside the queue.
"""

from __future__ import annotations

from functools import lru_cache

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from mediation import clock, labels
from mediation.analytics import bp, risk_labels, tagging, tagging_report
from mediation.analytics.risk_forms import FlagDecisionForm
from mediation.analytics.tagging_models import TextFlag
from mediation.api.common import page_arg
from mediation.auth.models import Role, User
from mediation.auth.permissions import require_role
from mediation.auth.views import apply_errors, safe_next
from mediation.cases.models import Case
from mediation.cases.views import signed_in
from mediation.errors import Conflict, ValidationError
from mediation.extensions import db


@lru_cache(maxsize=4)
def _demo_report(rules_sha256: str, rules_path: str) -> tagging_report.Report:
    """The rules' precision on the labelled demo set (once per rule set)."""
    rules = tagging.load_rules(rules_path)
    return tagging_report.evaluate(tagging_report.load_labelled(), rules)


def _rules_context() -> dict:
    try:
        rules = tagging.active_rules()
    except tagging.RuleSetError as exc:
        # The queue stays usable; the page says what is wrong with the file.
        return {"rules": None, "rules_error": str(exc), "demo_report": None}
    try:
        report = _demo_report(rules.sha256, rules.path)
    except ValueError:
        report = None
    return {"rules": rules, "demo_report": report, "percent": tagging_report.percent}


def _labels() -> dict:
    return {
        "flag_labels": risk_labels.FLAG_STATUS,
        "obsolete_labels": risk_labels.OBSOLETE_REASON,
        "highlight": tagging.highlight,
    }


@bp.get("/supervision/tagging")
@signed_in
def flag_list():
    """Complaints whose text points to another hot-spot category, waiting for
    review first (regulators only)."""
    require_role(Role.regulator)
    status = request.args.get("status")
    if status not in tagging.STATUSES:
        status = "pending"
    category = request.args.get("category") or ""
    if category not in labels.CATEGORY:
        category = ""
    query = db.select(TextFlag).where(TextFlag.status == status)
    if category:
        query = query.where(TextFlag.suggested_category == category)
    order = (
        (TextFlag.created_at, TextFlag.id)
        if status == "pending"
        else (TextFlag.updated_at.desc(), TextFlag.id.desc())
    )
    page = db.paginate(
        query.order_by(*order),
        page=page_arg(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    cases = {
        c.id: c
        for c in db.session.scalars(
            db.select(Case).where(Case.id.in_([f.case_id for f in page.items]))
        )
    }
    counts = dict(
        db.session.execute(
            db.select(TextFlag.status, db.func.count()).group_by(TextFlag.status)
        ).all()
    )
    filters = {"status": status, **({"category": category} if category else {})}
    return render_template(
        "analytics/tagging_list.html",
        page=page,
        status=status,
        category=category,
        cases=cases,
        counts=counts,
        filters=filters,
        here=url_for("analytics.flag_list", page=page.page, **filters),
        **_labels(),
        **_rules_context(),
    )


def _flag_page(flag: TextFlag, form: FlagDecisionForm, status: int):
    case = db.session.get(Case, flag.case_id)
    return render_template(
        "analytics/tagging_flag.html",
        flag=flag,
        case=case,
        form=form,
        others=db.session.scalars(
            db.select(TextFlag)
            .where(TextFlag.case_id == flag.case_id, TextFlag.id != flag.id)
            .order_by(TextFlag.id)
        ).all(),
        tags=tagging.tags_of([flag.case_id]).get(flag.case_id, []),
        **_labels(),
    ), status


@bp.route("/supervision/tagging/<int:flag_id>", methods=["GET", "POST"])
@signed_in
def flag_detail(flag_id: int):
    """One flag with the complaint text marked, and the decision (regulators
    only). Confirming records the category as a tag of the case; the
    complaint keeps the category it was filed with."""
    regulator: User = require_role(Role.regulator)
    flag = tagging.get_flag(flag_id)
    if request.method == "GET":
        return _flag_page(flag, FlagDecisionForm(formdata=None), 200)
    form = FlagDecisionForm()
    status = 422
    if form.validate():
        now = clock.now_utc()
        try:
            flag = tagging.get_flag(flag_id, lock=True)
            if form.decision.data == "confirm":
                tagging.confirm_flag(flag, actor=regulator, now=now)
            else:
                tagging.dismiss_flag(
                    flag, actor=regulator, reason=form.reason.data or "", now=now
                )
        except (ValidationError, Conflict) as exc:
            db.session.rollback()
            apply_errors(form, exc)
            status = exc.status
            flag = tagging.get_flag(flag_id)
        else:
            db.session.commit()
            case = db.session.get(Case, flag.case_id)
            category = labels.CATEGORY.get(flag.suggested_category)
            flash(
                _(
                    "%(reference)s is tagged “%(category)s”.",
                    reference=case.reference,
                    category=category,
                )
                if flag.status == "confirmed"
                else _(
                    "The flag on %(reference)s is dismissed.", reference=case.reference
                ),
                "success",
            )
            target = safe_next(form.next.data) or url_for(
                "analytics.flag_detail", flag_id=flag_id
            )
            return redirect(target, 303)
    return _flag_page(flag, form, status)
