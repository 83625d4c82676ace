"""Case pages: start page, filing, lists, the case page and its action forms.

Views are thin: a form, an access check through :mod:`mediation.auth.permissions`,
one service call, one commit, then a redirect with a flash (POST/redirect/GET).
Which action forms a page shows comes only from ``services.allowed_actions``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import case as sql_case
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from wtforms import Form

from mediation import clock, labels
from mediation.auth.models import Role, User
from mediation.auth.permissions import (
    can_upload_evidence,
    get_case_for,
    get_case_to_act,
    require_role,
    visible_cases,
)
from mediation.auth.views import safe_next
from mediation.cases import bp, forms, queue, services
from mediation.cases import evidence as evidence_service
from mediation.cases import lifecycle as lc
from mediation.cases.models import AMENDABLE_FIELDS, Case, CaseEvent
from mediation.chat.panel import chat_panel
from mediation.errors import (
    BadRequest,
    Conflict,
    InvalidTransition,
    NotFound,
    TooLarge,
    UnsupportedType,
    ValidationError,
)
from mediation.extensions import db
from mediation.merchants.services import platforms
from mediation.sla.policy import case_stage

#: Who must act in each deadline stage, and what they must do.
NEXT_STEP: dict[str, Any] = {
    "submitted": _l(
        "The regulator identifies the merchant or dismisses the complaint."
    ),
    "awaiting_merchant": _l("The merchant answers: an offer or a rejection."),
    "awaiting_platform": _l("The platform operator answers: an offer or a rejection."),
    "offer_pending": _l("The consumer accepts or rejects the offer."),
    "mediation_pickup": _l("A mediator takes the case."),
    "in_mediation": _l("The mediator concludes the mediation."),
    "arbitration_pickup": _l("An arbitrator takes the case."),
    "in_arbitration": _l("The arbitrator issues the award."),
    "fulfilment": _l("The merchant fulfils the agreement and marks it as fulfilled."),
    "confirmation": _l("The consumer confirms the fulfilment."),
}

#: Names of the filing fields on the case page (amounts shown with ¥).
DISPLAY_LABELS: dict[str, Any] = {
    **forms.FIELD_LABELS,
    "amount_paid": _l("Amount paid"),
    "claim_type": _l("Claim"),
    "claim_amount": _l("Amount claimed"),
    "description": _l("Complaint"),
}

#: The flash after each action succeeds.
DONE: dict[str, Any] = {
    "offer": _l("Offer sent."),
    "propose": _l("Proposal sent to both parties."),
    "reject": _l("Your rejection was recorded."),
    "reject_offer": _l("Offer rejected."),
    "accept_offer": _l("Offer accepted: the merchant now fulfils it."),
    "accept_proposal": _l("You accepted the proposal."),
    "decline_proposal": _l("You declined the proposal."),
    "withdraw": _l("Complaint withdrawn."),
    "dismiss": _l("Complaint dismissed."),
    "mark_fulfilled": _l("Marked as fulfilled: the consumer is asked to confirm."),
    "confirm_fulfilment": _l("Fulfilment confirmed."),
    "report_unfulfilled": _l("Reported as not fulfilled."),
    "take": _l("You took the case."),
    "consent_arbitration": _l("Your consent to arbitration was recorded."),
    "rate": _l("Thank you for your rating."),
    "link_merchant": _l("Merchant linked: the complaint was sent to them."),
    "end_mediation": _l("Mediation ended."),
    "reassign": _l("The case was reassigned."),
    "request_evidence": _l("Request sent: your deadline is stopped until the answer."),
    "provide_evidence": _l("Thank you: the merchant's deadline runs again."),
    "request_info": _l("Request sent: the award deadline stops until the answer."),
    "answer_info": _l("Your answer was sent to the arbitrator."),
    "object_arbitrator": _l("Your objection was sent to the regulator."),
    "decide_objection": _l("The objection was decided."),
    "issue_award": _l("The award was issued."),
    "correct_award": _l("The award was corrected: a new version was issued."),
    "refuse_correction": _l("The correction was refused."),
    "request_correction": _l("Your correction request was sent to the arbitrator."),
}

#: What an action means, shown above its form.
ACTION_HELP: dict[str, Any] = {
    "amend": _l("You can change the complaint until the merchant answers."),
    "offer": _l("Propose how you will settle; the consumer accepts or rejects."),
    "reject": _l("Without an offer, the case goes to mediation."),
    "accept_offer": _l(
        "Accepting settles the case: the merchant then fulfils the offer."
    ),
    "reject_offer": _l("The case then goes to mediation."),
    "withdraw": _l("Withdrawing ends the case for good."),
    "consent_arbitration": _l(
        "If mediation fails and the merchant has also agreed, an arbitrator decides "
        "the case with a binding award."
    ),
    "mark_fulfilled": _l("Say how you fulfilled the agreement; the consumer confirms."),
    "confirm_fulfilment": _l("Confirm that you received what was agreed."),
    "report_unfulfilled": _l("Tell us that the agreement was not fulfilled."),
    "take": _l("Take the case to run the mediation."),
    "propose": _l("Both parties must accept the proposal to settle."),
    "end_mediation": _l("Ends the mediation as failed."),
    "link_merchant": _l("Link the complaint to the registered shop it is about."),
    "dismiss": _l("Out of scope or a duplicate: the complaint is rejected."),
    "reassign": _l("Give the case to another mediator or arbitrator."),
    "request_evidence": _l(
        "Ask the consumer for more evidence; your deadline stops until they answer."
    ),
    "provide_evidence": _l(
        "Add the evidence on this page, then tell the merchant it is there."
    ),
    "take_arbitration": _l("Take the case to decide it as its arbitrator."),
    "request_info": _l(
        "Ask a party for a document or an answer by a date; the award deadline "
        "stops until every request is answered or lapses."
    ),
    "answer_info": _l(
        "Answer the arbitrator's request. Upload new files with “Add evidence” "
        "first, then tick them here."
    ),
    "object_arbitrator": _l(
        "If you doubt the arbitrator's impartiality, say why; each party may "
        "object once, and a regulator decides."
    ),
    "decide_objection": _l(
        "Uphold the objection and name another arbitrator, or dismiss it; give "
        "your reasons."
    ),
    "issue_award": _l(
        "The award binds both parties. After it, either party may request the "
        "correction of a clerical or computational error for 5 working days."
    ),
    "correct_award": _l(
        "Correct clerical or computational errors only: a new version of the "
        "award is issued and the old one stays on record."
    ),
    "refuse_correction": _l("Refuse the correction request, with reasons."),
    "request_correction": _l(
        "Only clerical or computational errors can be corrected; the decision "
        "itself stands."
    ),
}

#: Labels of offer kinds and statuses.
OFFER_KINDS: dict[str, Any] = {"offer": _l("Offer"), "proposal": _l("Proposal")}
OFFER_STATUSES: dict[str, Any] = {
    "open": _l("Open"),
    "accepted": _l("Accepted"),
    "rejected": _l("Declined"),
    "lapsed": _l("Lapsed"),
}

#: Roles whose list is a work queue, sorted by the nearest deadline.
QUEUE_ROLES = (Role.merchant.value, Role.mediator.value, Role.arbitrator.value)
EVIDENCE_ERRORS = (TooLarge, UnsupportedType, ValidationError, BadRequest)


# Helpers ------------------------------------------------------------------


def signed_in(fn: Callable) -> Callable:
    """Send anonymous visitors to the sign-in page.

    A page opened with GET comes back after sign-in; a POST cannot be replayed.
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        if not current_user.is_authenticated:
            flash(_("Please sign in to continue."), "info")
            if request.method == "GET":
                here = request.full_path if request.query_string else request.path
                return redirect(url_for("auth.login", next=here))
            return redirect(url_for("auth.login"), 303)
        return fn(*args, **kwargs)

    return wrapper


def _user() -> User:
    return current_user._get_current_object()


def _safe_next(default: str) -> str:
    """Return the form's ``next`` when it is a path on this site, else ``default``."""
    return safe_next(request.form.get("next")) or default


def _put_errors(form: Form, exc: ValidationError, aliases: dict[str, str]) -> None:
    """Attach a service's field errors to the form's fields (or the whole form).

    :param aliases: where a field the service names shows on this form.
    """
    for name, message in (exc.fields or {}).items():
        messages = [
            str(m) for m in (message if isinstance(message, list) else [message])
        ]
        field = form._fields.get(aliases.get(name, name))
        if field is not None:
            field.errors = [*field.errors, *messages]
        else:
            form.form_errors.extend(messages)
    if not exc.fields:
        form.form_errors.append(str(exc.message))


def _evidence_message(exc: Exception, filename: str | None) -> str:
    """Return a user-facing message for a refused evidence file."""
    fields = getattr(exc, "fields", None) or {}
    message = "; ".join(str(v) for v in fields.values()) or str(exc.message)
    return _("“%(name)s”: %(message)s", name=filename or "?", message=message)


def _open_first(query):
    return query.where(Case.status.in_(lc.OPEN_STATUSES))


def _by_deadline(query):
    """Order a case query by the nearest deadline, oldest first on a tie.

    Cases without a running deadline (closed ones) come last, newest first.
    """
    no_deadline = Case.due_at.is_(None)
    return query.order_by(
        sql_case((no_deadline, 1), else_=0),
        Case.due_at.asc(),
        sql_case((no_deadline, None), else_=Case.filed_at).asc(),
        Case.filed_at.desc(),
        Case.id.desc(),
    )


def _newest_first(query):
    return query.order_by(Case.filed_at.desc(), Case.id.desc())


# Start page ---------------------------------------------------------------


@bp.get("/")
def home():
    """The start page: what the platform does, or a dashboard by role."""
    if not current_user.is_authenticated:
        return render_template("home.html", dashboard=None)
    user = _user()
    now = clock.now_utc()
    cases = visible_cases(user).options(selectinload(Case.merchant))
    dashboard: dict[str, Any] = {"role": user.role}
    if user.role == Role.consumer.value:
        dashboard["open_cases"] = db.session.scalars(
            _newest_first(_open_first(cases)).limit(10)
        ).all()
    elif user.role == Role.merchant.value:
        counts = db.session.execute(
            visible_cases(user)
            .with_only_columns(Case.status, func.count(Case.id))
            .group_by(Case.status)
        ).all()
        by_status = dict(counts)
        dashboard["counts"] = [(s, by_status[s]) for s in lc.STATUSES if s in by_status]
        dashboard["nearest"] = db.session.scalars(
            _by_deadline(_open_first(cases).where(Case.due_at.is_not(None))).limit(5)
        ).all()
    elif user.role in (Role.mediator.value, Role.arbitrator.value):
        assigned = (
            Case.mediator_id if user.role == Role.mediator.value else Case.arbitrator_id
        )
        dashboard["unassigned"] = db.session.scalar(
            visible_cases(user)
            .with_only_columns(func.count(Case.id))
            .where(assigned.is_(None))
        )
        dashboard["mine"] = db.session.scalars(
            _by_deadline(_open_first(cases).where(assigned == user.id)).limit(10)
        ).all()
    elif user.role == Role.regulator.value:
        dashboard["intake"] = db.session.scalar(
            db.select(func.count(Case.id)).where(Case.status == lc.SUBMITTED)
        )
        dashboard["open"] = db.session.scalar(
            db.select(func.count(Case.id)).where(Case.status.in_(lc.OPEN_STATUSES))
        )
        dashboard["overdue"] = db.session.scalar(
            db.select(func.count(Case.id)).where(
                Case.status.in_(lc.OPEN_STATUSES), Case.due_at < now
            )
        )
    return render_template("home.html", dashboard=dashboard, now=now)


# Filing -------------------------------------------------------------------

#: Where a service's field name shows on the filing form.
FILING_ALIASES = {
    "merchant_id": "merchant_query",
    "merchant_name": "merchant_query",
    "file": "evidence",
}


@bp.route("/cases/new", methods=["GET", "POST"])
@signed_in
def new():
    """File a complaint, with evidence, in one transaction."""
    user = require_role(Role.consumer)
    form = forms.FilingForm(platforms=platforms())
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("cases/new.html", form=form, duplicates=[]), status
    now = clock.now_utc()
    files = form.files()
    values = form.complaint_values()
    try:
        services.validate_filing_values(
            values, today=now.astimezone(services.time_zone()).date()
        )
        if not form.confirm_duplicate.data:
            duplicates = services.find_possible_duplicates(
                user, form.merchant_id.data, form.merchant_name(), values["order_ref"]
            )
            if duplicates:
                return render_template(
                    "cases/new.html",
                    form=form,
                    duplicates=duplicates,
                    had_files=bool(files),
                )
        filing = services.Filing(
            merchant_id=form.merchant_id.data,
            merchant_name=form.merchant_name(),
            platform_id=form.platform_id.data,
            arbitration_consent=form.arbitration_consent.data,
            **values,
        )
        case = services.file_case(user, filing, now=now)
    except ValidationError as exc:
        db.session.rollback()
        _put_errors(form, exc, FILING_ALIASES)
        return _refiled(form, files)
    for upload in files:
        try:
            evidence_service.add_evidence(
                case,
                upload.stream,
                upload.filename,
                actor=user,
                relation="consumer",
                now=now,
            )
        except EVIDENCE_ERRORS as exc:
            # Nothing is filed unless every file is accepted.
            db.session.rollback()
            form.evidence.errors = [_evidence_message(exc, upload.filename)]
            return _refiled(form, files)
    reference = case.reference
    db.session.commit()
    flash(
        _(
            "Your complaint was filed. Its reference is %(reference)s.",
            reference=reference,
        ),
        "success",
    )
    return redirect(url_for("cases.detail", case_id=case.id), 303)


def _refiled(form: forms.FilingForm, files: list) -> tuple[str, int]:
    """Show the filing form again with its errors (typed fields kept)."""
    return (
        render_template(
            "cases/new.html", form=form, duplicates=[], had_files=bool(files)
        ),
        422,
    )


# Lists --------------------------------------------------------------------


@bp.get("/cases")
@signed_in
def index():
    """The cases this user may see: inbox, queue, or own complaints."""
    user = _user()
    now = clock.now_utc()
    filters = forms.FilterForm(request.args)
    query = visible_cases(user).options(
        selectinload(Case.merchant), selectinload(Case.platform)
    )
    status = filters.status.data if filters.status.data in lc.STATUSES else None
    if filters.status.data == "open":
        query = _open_first(query)
    elif status:
        query = query.where(Case.status == status)
    if filters.category.data in labels.CATEGORY:
        query = query.where(Case.category == filters.category.data)
    queue = user.role in QUEUE_ROLES
    query = _by_deadline(query) if queue else _newest_first(query)
    page = request.args.get("page", 1, type=int) or 1
    pagination = db.paginate(
        query,
        page=max(page, 1),
        per_page=_page_size(),
        error_out=False,
    )
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "cases/index.html",
        pagination=pagination,
        filters=filters,
        queue=queue,
        now=now,
        args=args,
    )


def _page_size() -> int:
    from flask import current_app

    return int(current_app.config.get("PAGE_SIZE", 20))


@bp.get("/cases/intake")
@signed_in
def intake():
    """The regulator's intake queue: unregistered shops to identify or dismiss."""
    user = require_role(Role.regulator)
    page = request.args.get("page", 1, type=int) or 1
    pagination = db.paginate(
        db.select(Case)
        .where(Case.status == lc.SUBMITTED)
        .order_by(Case.filed_at.asc(), Case.id.asc()),
        page=max(page, 1),
        per_page=_page_size(),
        error_out=False,
    )
    items = []
    for case in pagination.items:
        allowed = services.allowed_actions(case, "regulator")
        items.append(
            {
                "case": case,
                "forms": {
                    action: forms.action_form(action, formdata=None)
                    for action in allowed
                    if action in ("link_merchant", "dismiss")
                },
            }
        )
    return render_template(
        "cases/intake.html",
        pagination=pagination,
        items=items,
        user=user,
        now=clock.now_utc(),
    )


@bp.get("/mediation")
@signed_in
def workspace():
    """The mediators' workspace: the queue to take cases from, and my caseload."""
    user = require_role(Role.mediator)
    filters = forms.QueueFilterForm(request.args, mine=bool(user.categories))
    category = queue.resolve_category_filter(user, filters.category.data)
    filters.category.data = category
    page = request.args.get("page", 1, type=int) or 1
    pagination = db.paginate(
        queue.queue_query(user, category),
        page=max(page, 1),
        per_page=_page_size(),
        error_out=False,
    )
    caseload = queue.caseload(user)
    return render_template(
        "cases/workspace.html",
        pagination=pagination,
        filters=filters,
        category=category,
        counts=queue.queue_counts(user),
        my_categories=set(user.categories or []),
        caseload=caseload,
        activity=queue.chat_activity(user, caseload),
        take_form=forms.action_form("take", formdata=None),
        args={"category": category},
        now=clock.now_utc(),
    )


# The case page --------------------------------------------------------------


def _action_form(
    action: str, case: Case, relation: str | None = None, **kwargs: Any
) -> forms.ActionForm:
    """Build an action's form (the reassignment form lists the eligible staff;
    the arbitration forms get their choices from the case)."""
    from mediation.arbitration.pages import form_choices

    staff = queue.reassign_candidates(case) if action == "reassign" else None
    choices = form_choices(action, case, relation)
    return forms.action_form(action, staff=staff, choices=choices, **kwargs)


@bp.get("/cases/<int:case_id>")
@signed_in
def detail(case_id: int):
    """The case: parties, claim, versions, offers, evidence, timeline, actions."""
    case, relation = get_case_for(_user(), case_id)
    return _render_detail(case, relation)


def _render_detail(
    case: Case, relation: str, bound: dict[str, Form] | None = None
) -> str:
    """Render the case page; ``bound`` holds forms re-shown with their errors."""
    from mediation.arbitration.pages import case_panel as arbitration_panel

    bound = bound or {}
    allowed = services.allowed_actions(case, relation)
    action_forms: dict[str, Form] = {}
    for action in allowed:
        if action in bound:
            action_forms[action] = bound[action]
        elif action in forms.ACTION_FORMS:
            action_forms[action] = _action_form(action, case, relation, formdata=None)
    stage = case_stage(case)
    events = db.session.scalars(
        db.select(CaseEvent)
        .where(CaseEvent.case_id == case.id)
        .options(selectinload(CaseEvent.actor))
        .order_by(CaseEvent.seq)
    ).all()
    upload_form = bound.get("__evidence__") or forms.EvidenceForm(formdata=None)
    return render_template(
        "cases/detail.html",
        case=case,
        relation=relation,
        allowed=allowed,
        action_forms=action_forms,
        open_offer=services.open_offer(case, "offer"),
        open_proposal=services.open_offer(case, "proposal"),
        next_step=NEXT_STEP.get(stage or ""),
        events=events,
        versions=_versions(case),
        can_upload=can_upload_evidence(relation, case),
        upload_form=upload_form,
        display_labels=DISPLAY_LABELS,
        action_help=ACTION_HELP,
        offer_kinds=OFFER_KINDS,
        offer_statuses=OFFER_STATUSES,
        chat=chat_panel(case, _user(), relation),
        arbitration=arbitration_panel(case, _user(), relation, clock.now_utc()),
        after_mediation=(
            services.after_failed_mediation(case)
            if "end_mediation" in allowed
            else None
        ),
        settlement=next(
            (
                e
                for e in reversed(events)
                if e.action == "accept_proposal" and (e.data or {}).get("agreement")
            ),
            None,
        ),
        now=clock.now_utc(),
    )


def _versions(case: Case) -> list[dict[str, Any]]:
    """Return every complaint version with the fields changed since the previous."""
    out: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for version in case.versions:
        fields = version.fields or {}
        changed = (
            [n for n in AMENDABLE_FIELDS if fields.get(n) != previous.get(n)]
            if previous is not None
            else []
        )
        out.append({"version": version, "fields": fields, "changed": changed})
        previous = fields
    return out


@bp.post("/cases/<int:case_id>/actions/<action>")
@signed_in
def act(case_id: int, action: str):
    """Apply one lifecycle action from the case page's form."""
    user = _user()
    try:
        # Locked until the commit: two people acting at once take turns.
        case, relation = get_case_to_act(user, case_id, action)
    except Conflict as exc:
        # Taken from the queue by someone else a moment ago: back to the queue.
        db.session.rollback()
        flash(str(exc.message), "error")
        queue_page = {
            Role.mediator.value: "cases.workspace",
            Role.arbitrator.value: "arbitration.workspace",
        }.get(user.role, "cases.index")
        return redirect(url_for(queue_page), 303)
    if action not in forms.ACTION_FORMS:
        raise NotFound()
    back = _safe_next(url_for("cases.detail", case_id=case.id))
    if action not in services.allowed_actions(case, relation):
        db.session.rollback()
        flash(
            _(
                "“%(action)s” is not possible now: the case is “%(status)s”.",
                action=labels.ACTION.get(action, action),
                status=labels.STATUS.get(case.status, case.status),
            ),
            "error",
        )
        return redirect(back, 303)
    form = _action_form(action, case, relation)
    if not form.validate_on_submit():
        db.session.rollback()
        return _render_detail(case, relation, {action: form}), 422
    try:
        services.apply_action(
            case,
            action,
            form.payload(),
            actor=user,
            relation=relation,
            now=clock.now_utc(),
        )
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        _put_errors(form, exc, {})
        return _render_detail(case, relation, {action: form}), 422
    except (InvalidTransition, Conflict) as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(back, 303)
    except IntegrityError:
        # Another writer appended to the timeline first (the lock makes this rare).
        db.session.rollback()
        flash(
            _("The case changed at the same moment; reload it and try again."), "error"
        )
        return redirect(back, 303)
    flash(str(DONE.get(action, _("Done."))), "success")
    return redirect(back, 303)


@bp.route("/cases/<int:case_id>/amend", methods=["GET", "POST"])
@signed_in
def amend(case_id: int):
    """Amend the complaint: the changed fields become a new version."""
    user = _user()
    case, relation = get_case_for(user, case_id)
    if "amend" not in services.allowed_actions(case, relation):
        flash(_("This complaint can no longer be amended."), "error")
        return redirect(url_for("cases.detail", case_id=case.id), 303)
    form = forms.AmendForm(obj=case)
    if form.validate_on_submit():
        current = {name: getattr(case, name) for name in AMENDABLE_FIELDS}
        changes = form.changes(current)
        if not changes:
            form.form_errors.append(_("Nothing was changed."))
        else:
            try:
                services.apply_action(
                    case,
                    "amend",
                    changes,
                    actor=user,
                    relation=relation,
                    now=clock.now_utc(),
                )
                version = case.version
                db.session.commit()
            except ValidationError as exc:
                db.session.rollback()
                _put_errors(form, exc, {})
            except (InvalidTransition, Conflict) as exc:
                db.session.rollback()
                flash(str(exc.message), "error")
                return redirect(url_for("cases.detail", case_id=case.id), 303)
            else:
                flash(
                    _("Complaint amended: this is version %(number)d.", number=version),
                    "success",
                )
                return redirect(url_for("cases.detail", case_id=case.id), 303)
    status = 422 if form.is_submitted() else 200
    return render_template("cases/amend.html", case=case, form=form), status


# Evidence -------------------------------------------------------------------


@bp.post("/cases/<int:case_id>/evidence")
@signed_in
def upload(case_id: int):
    """Add evidence files to an open case (all of them, or none)."""
    user = _user()
    case, relation = get_case_for(user, case_id)
    back = url_for("cases.detail", case_id=case.id)
    if not can_upload_evidence(relation, case):
        flash(_("You cannot add evidence to this case."), "error")
        return redirect(back, 303)
    form = forms.EvidenceForm()
    files = form.files() if form.validate_on_submit() else []
    if not files:
        flash(_("Choose at least one file."), "error")
        return redirect(back, 303)
    now = clock.now_utc()
    for item in files:
        try:
            evidence_service.add_evidence(
                case, item.stream, item.filename, actor=user, relation=relation, now=now
            )
        except EVIDENCE_ERRORS as exc:
            db.session.rollback()
            flash(_evidence_message(exc, item.filename), "error")
            return redirect(back, 303)
    db.session.commit()
    flash(
        ngettext("%(num)d file added.", "%(num)d files added.", len(files)),
        "success",
    )
    return redirect(back, 303)


@bp.get("/cases/<int:case_id>/evidence/<int:evidence_id>")
@signed_in
def evidence(case_id: int, evidence_id: int):
    """Download an evidence file (only for people who may see the case)."""
    case, _relation = get_case_for(_user(), case_id)
    return evidence_service.send_evidence(
        evidence_service.get_evidence(case, evidence_id)
    )


def is_overdue(due_at: datetime | None, now: datetime) -> bool:
    """Say whether a deadline has passed."""
    return due_at is not None and due_at < now


@bp.app_template_global()
def case_overdue(case: Case, now: datetime) -> bool:
    """Template helper: the case's deadline has passed."""
    return is_overdue(case.due_at, now)
