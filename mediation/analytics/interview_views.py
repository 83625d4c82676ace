"""Warning interview pages: the regulators' list and record of each interview
(outcome or cancellation), and the merchant staff's view of their own
merchant's interviews.

Thin views: role (and, for merchant staff, relation) check, the parsed form,
one service, one commit, then a redirect with a flash or the page again with
its errors (422).
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from mediation import clock
from mediation.analytics import bp, interviews, risk_labels
from mediation.analytics.risk_forms import CancelInterviewForm, OutcomeForm
from mediation.analytics.risk_models import WarningInterview
from mediation.api.common import page_arg
from mediation.auth.models import Role, User
from mediation.auth.permissions import require_role
from mediation.auth.views import apply_errors
from mediation.cases.views import signed_in
from mediation.errors import Conflict, PermissionDenied, ValidationError
from mediation.extensions import db
from mediation.merchants.models import Merchant

#: The lists of the regulators' page, and how each is sorted.
LISTS = {
    "planned": (WarningInterview.planned_for, WarningInterview.id),
    "held": (WarningInterview.held_on.desc(), WarningInterview.id.desc()),
    "follow_up": (WarningInterview.follow_up_on, WarningInterview.id),
    "cancelled": (WarningInterview.closed_at.desc(), WarningInterview.id.desc()),
}


def _labels() -> dict:
    return {
        "interview_labels": risk_labels.INTERVIEW_STATUS,
        "factor_labels": risk_labels.FACTOR,
    }


@bp.get("/supervision/interviews")
@signed_in
def interview_list():
    """Warning interviews: planned (soonest first), held, follow-ups due,
    cancelled (regulators only)."""
    require_role(Role.regulator)
    shown = request.args.get("list")
    if shown not in LISTS:
        shown = "planned"
    query = db.select(WarningInterview)
    if shown == "follow_up":
        query = query.where(
            WarningInterview.status == "held",
            WarningInterview.follow_up_on.is_not(None),
        )
    else:
        query = query.where(WarningInterview.status == shown)
    page = db.paginate(
        query.order_by(*LISTS[shown]),
        page=page_arg(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render_template(
        "analytics/interview_list.html",
        page=page,
        shown=shown,
        today=interviews.today(clock.now_utc()),
        **_labels(),
    )


def _interview_page(
    interview: WarningInterview,
    outcome_form: OutcomeForm,
    cancel_form: CancelInterviewForm,
    status: int,
):
    return render_template(
        "analytics/interview_detail.html",
        interview=interview,
        merchant=db.session.get(Merchant, interview.merchant_id),
        outcome_form=outcome_form,
        cancel_form=cancel_form,
        history=interviews.interviews_of(interview.merchant_id),
        today=interviews.today(clock.now_utc()),
        **_labels(),
    ), status


@bp.route("/supervision/interviews/<int:interview_id>", methods=["GET", "POST"])
@signed_in
def interview_detail(interview_id: int):
    """One interview, with the forms to record its outcome or cancel it
    (regulators only)."""
    regulator: User = require_role(Role.regulator)
    interview = interviews.get_interview(interview_id)
    outcome_form = OutcomeForm(formdata=None)
    cancel_form = CancelInterviewForm(formdata=None)
    if request.method == "GET":
        return _interview_page(interview, outcome_form, cancel_form, 200)
    step = request.form.get("step")
    form = OutcomeForm() if step == "held" else CancelInterviewForm()
    if step == "held":
        outcome_form = form
    else:
        cancel_form = form
    status = 422
    if step not in ("held", "cancel"):
        form.form_errors.append(_("Record the outcome or cancel the interview."))
    elif form.validate():
        now = clock.now_utc()
        try:
            interview = interviews.get_interview(interview_id, lock=True)
            if step == "held":
                interviews.record_outcome(
                    interview,
                    interviews.OutcomeInput(
                        held_on=form.held_on.data,
                        summary=form.summary.data or "",
                        commitments=form.commitments.data or "",
                        follow_up_on=form.follow_up_on.data,
                    ),
                    actor=regulator,
                    now=now,
                )
            else:
                interviews.cancel_interview(
                    interview, form.cancel_reason.data or "", actor=regulator, now=now
                )
        except (ValidationError, Conflict) as exc:
            db.session.rollback()
            apply_errors(form, exc)
            status = exc.status
            interview = interviews.get_interview(interview_id)
        else:
            db.session.commit()
            flash(
                _("The outcome of the interview is recorded.")
                if step == "held"
                else _("The interview is cancelled."),
                "success",
            )
            return redirect(
                url_for("analytics.interview_detail", interview_id=interview_id), 303
            )
    return _interview_page(interview, outcome_form, cancel_form, status)


@bp.get("/interviews/")
@signed_in
def my_interviews():
    """The warning interviews of the signed-in staff member's merchant
    (merchant staff only; never another merchant's)."""
    user: User = require_role(Role.merchant)
    if user.merchant_id is None:
        raise PermissionDenied(_("Your account does not act for a merchant yet."))
    merchant = db.session.get(Merchant, user.merchant_id)
    if merchant is None:
        raise PermissionDenied()
    return render_template(
        "analytics/interview_mine.html",
        merchant=merchant,
        items=interviews.interviews_of(merchant.id),
        **_labels(),
    )
