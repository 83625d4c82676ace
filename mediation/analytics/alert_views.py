"""Supervision pages of mass-complaint alerts and case groups.

``/supervision/alerts`` (the list), ``/supervision/alerts/<id>`` (an alert with
its complaints; grouping, resolving, dismissing) and ``/supervision/groups/<id>``
(a group; its mediator, its complaints). Regulators see every alert; a mediator
sees the alerts that include a complaint they mediate and the groups they
handle; other roles get 403, alerts and groups a mediator has nothing to do
with 404. Thin views: a form, an access check, one service, one commit, then a
redirect with a flash (or the page again, 422, with the form's errors).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func
from sqlalchemy.orm import selectinload

from mediation import clock
from mediation.analytics import alerts, bp, groups, tagging
from mediation.analytics.alert_forms import (
    ALERT_STATUS,
    AlertFilterForm,
    DismissForm,
    GroupForm,
    MediatorForm,
    RemoveCaseForm,
    ResolveForm,
)
from mediation.analytics.alert_models import (
    ACTIVE_STATUSES,
    CaseGroup,
    MassAlert,
    group_reference,
)
from mediation.analytics.tagging_models import TextFlag
from mediation.auth.models import Role, User
from mediation.auth.permissions import case_relation, lock_case, require_role
from mediation.auth.views import apply_errors
from mediation.cases.models import Case
from mediation.cases.views import signed_in
from mediation.credit.models import CreditEvent
from mediation.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mediation.extensions import db


def _user() -> User:
    from flask_login import current_user

    return current_user._get_current_object()


def _page() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 100_000 else 1


def _lock_alert(alert_id: int) -> None:
    """Lock an alert's row until the commit (two regulators closing it at once
    take turns; the second sees it closed)."""
    dialect = db.session.get_bind().dialect.name
    query = db.select(MassAlert.id).where(MassAlert.id == alert_id)
    if dialect == "postgresql":
        db.session.execute(query.with_for_update())
    elif dialect == "sqlite":
        db.session.execute(db.text("UPDATE mass_alerts SET id = id WHERE 0 = 1"))


# The list -------------------------------------------------------------------------


@bp.get("/supervision/alerts")
@signed_in
def alert_list():
    """Mass-complaint alerts: the regulators' list, or a mediator's own."""
    user = require_role(Role.regulator, Role.mediator)
    filters = AlertFilterForm(request.args)
    status, category = filters.chosen_status(), filters.chosen_category()
    filters.status.data, filters.category.data = status, category or ""
    query = alerts.visible_alerts(user).options(
        selectinload(MassAlert.merchant), selectinload(MassAlert.groups)
    )
    if status == "active":
        query = query.where(MassAlert.status.in_(ACTIVE_STATUSES))
    elif status != "all":
        query = query.where(MassAlert.status == status)
    if category:
        query = query.where(MassAlert.category == category)
    pagination = db.paginate(
        query.order_by(MassAlert.raised_at.desc(), MassAlert.id.desc()),
        page=_page(),
        per_page=int(_config("PAGE_SIZE", 20)),
        error_out=False,
    )
    my_groups = []
    if user.has_role(Role.mediator):
        my_groups = _groups_of_mediator(user)
    return render_template(
        "analytics/alert_list.html",
        pagination=pagination,
        filters=filters,
        args={"status": status, "category": category or ""},
        rule=alerts.settings(),
        my_groups=my_groups,
        is_regulator=user.has_role(Role.regulator),
        alert_statuses=ALERT_STATUS,
    )


def _config(name: str, default: Any) -> Any:
    from flask import current_app

    return current_app.config.get(name, default)


def _groups_of_mediator(user: User) -> list[tuple[CaseGroup, int, int]]:
    """Return the groups a mediator handles with (cases, open cases), newest first."""
    from mediation.cases import lifecycle as lc

    rows = db.session.execute(
        db.select(
            CaseGroup,
            func.count(Case.id),
            func.count(Case.id).filter(Case.status.in_(lc.OPEN_STATUSES)),
        )
        .outerjoin(Case, Case.group_id == CaseGroup.id)
        .where(CaseGroup.mediator_id == user.id)
        .group_by(CaseGroup.id)
        .order_by(CaseGroup.created_at.desc(), CaseGroup.id.desc())
    ).all()
    return [(g, total, open_) for g, total, open_ in rows]


# One alert ------------------------------------------------------------------------


def _alert_forms(alert: MassAlert, user: User, formdata: Any = None) -> dict[str, Any]:
    """Build the forms the alert page offers ``user`` (None where not offered)."""
    regulator = user.has_role(Role.regulator)
    forms: dict[str, Any] = {"group": None, "resolve": None, "dismiss": None}
    if not alert.is_active:
        return forms
    targets = [g for g in alert.groups if groups.may_manage(user, g)]
    forms["group"] = GroupForm(
        formdata=formdata,
        mediators=groups.mediators() if regulator else None,
        groups=targets,
        prefix="group",
    )
    if regulator:
        forms["resolve"] = ResolveForm(formdata=formdata, prefix="resolve")
        forms["dismiss"] = DismissForm(formdata=formdata, prefix="dismiss")
    return forms


def _render_alert(
    alert: MassAlert, user: User, bound: dict[str, Any] | None = None
) -> str:
    forms = _alert_forms(alert, user)
    forms.update(bound or {})
    cases = alerts.cases_of(alert)
    rows = []
    for case in cases:
        relation = case_relation(user, case)
        rows.append(
            {
                "case": case,
                "visible": relation is not None,
                "why_not": groups.why_not_groupable(case, user),
            }
        )
    credit_event = (
        db.session.get(CreditEvent, alert.credit_event_id)
        if alert.credit_event_id
        else None
    )
    return render_template(
        "analytics/alert_detail.html",
        alert=alert,
        rows=rows,
        forms=forms,
        credit_event=credit_event,
        is_regulator=user.has_role(Role.regulator),
        groupable=[r for r in rows if r["why_not"] is None],
        why_text=groups.why_text,
        alert_statuses=ALERT_STATUS,
    )


@bp.get("/supervision/alerts/<int(max=2147483647):alert_id>")
@signed_in
def alert_detail(alert_id: int):
    """One alert: its facts, its complaints and what can be done about it."""
    user = _user()
    alert = alerts.get_alert_for(user, alert_id)
    return _render_alert(alert, user)


@bp.post("/supervision/alerts/<int(max=2147483647):alert_id>/group")
@signed_in
def alert_group(alert_id: int):
    """Group complaints of the alert for one mediator (or into a group)."""
    user = _user()
    alert = alerts.get_alert_for(user, alert_id)
    back = url_for("analytics.alert_detail", alert_id=alert.id)
    forms = _alert_forms(alert, user, formdata=request.form)
    form = forms["group"]
    if form is None:
        flash(
            _("This alert is closed: its complaints can no longer be grouped."), "error"
        )
        return redirect(back, 303)
    if not form.validate_on_submit():
        return _render_alert(alert, user, {"group": form}), 422
    wanted = form.case_ids.data or []
    own = {c.id for c in alerts.cases_of(alert)}
    if any(case_id not in own for case_id in wanted):
        form.case_ids.errors.append(_("Choose complaints listed here."))
        return _render_alert(alert, user, {"group": form}), 422
    # Locked in id order until the commit: two people grouping the same
    # complaints at once take turns, and the second is told they are grouped.
    cases = [lock_case(case_id) for case_id in wanted]
    group = None
    if form.group_id() is not None:
        group = db.session.get(CaseGroup, form.group_id())
        if group is None or group.alert_id != alert.id:
            raise NotFound()
    mediator = None
    if group is None:
        mediator_id = form.mediator_id.data if form.offers_mediator else user.id
        mediator = db.session.get(User, mediator_id) if mediator_id else None
    try:
        group = groups.group_cases(
            [c for c in cases if c is not None],
            actor=user,
            mediator=mediator,
            title=form.title.data,
            alert=alert,
            group=group,
            now=clock.now_utc(),
        )
        reference, mediator_name = group.reference, group.mediator.name
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        apply_errors(form, exc)
        db.session.refresh(alert)
        return _render_alert(alert, user, {"group": form}), 422
    except PermissionDenied as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(back, 303)
    flash(
        ngettext(
            "%(num)d complaint grouped in %(group)s for %(mediator)s.",
            "%(num)d complaints grouped in %(group)s for %(mediator)s.",
            len(wanted),
            group=reference,
            mediator=mediator_name,
        ),
        "success",
    )
    return redirect(url_for("analytics.group_detail", group_id=group.id), 303)


def _close(alert_id: int, kind: str):
    """Resolve or dismiss an alert (``kind``), a regulator's action."""
    user = _user()
    alert = alerts.get_alert_for(user, alert_id)
    if not user.has_role(Role.regulator):
        raise PermissionDenied()
    back = url_for("analytics.alert_detail", alert_id=alert.id)
    _lock_alert(alert.id)
    db.session.refresh(alert)
    forms = _alert_forms(alert, user, formdata=request.form)
    form = forms[kind]
    if form is None:
        db.session.rollback()
        flash(_("This alert is already closed."), "error")
        return redirect(back, 303)
    if not form.validate_on_submit():
        db.session.rollback()
        return _render_alert(alert, user, {kind: form}), 422
    try:
        if kind == "resolve":
            alerts.resolve_alert(
                alert, actor=user, note=form.note.data, now=clock.now_utc()
            )
        else:
            alerts.dismiss_alert(
                alert, actor=user, reason=form.reason.data, now=clock.now_utc()
            )
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return _render_alert(alert, user, {kind: form}), 422
    except Conflict as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(back, 303)
    flash(
        _("The alert was resolved.")
        if kind == "resolve"
        else _("The alert was dismissed; its credit record entry was withdrawn."),
        "success",
    )
    return redirect(back, 303)


@bp.post("/supervision/alerts/<int(max=2147483647):alert_id>/resolve")
@signed_in
def alert_resolve(alert_id: int):
    """Close the alert as resolved, with a note (regulators)."""
    return _close(alert_id, "resolve")


@bp.post("/supervision/alerts/<int(max=2147483647):alert_id>/dismiss")
@signed_in
def alert_dismiss(alert_id: int):
    """Dismiss the alert as unfounded, with a reason (regulators)."""
    return _close(alert_id, "dismiss")


# One group ------------------------------------------------------------------------


def _render_group(
    group: CaseGroup, user: User, bound: dict[str, Any] | None = None
) -> str:
    regulator = user.has_role(Role.regulator)
    bound = bound or {}
    cases = groups.group_cases_of(group)
    rows = [{"case": c, "visible": case_relation(user, c) is not None} for c in cases]
    # Where the group room opens: a grouped case this user may open.
    room_case = next(
        (
            r["case"]
            for r in rows
            if r["visible"] and "group" in _rooms_of(r["case"], user)
        ),
        None,
    )
    return render_template(
        "analytics/group_detail.html",
        group=group,
        rows=rows,
        room_case=room_case,
        is_regulator=regulator,
        mediator_form=bound.get("mediator")
        or (MediatorForm(mediators=groups.mediators()) if regulator else None),
        remove_form=bound.get("remove") or (RemoveCaseForm() if regulator else None),
        remove_case_id=bound.get("remove_case_id"),
        alert_statuses=ALERT_STATUS,
    )


def _rooms_of(case: Case, user: User) -> dict[str, str]:
    from mediation.chat.services import room_access

    return room_access(case, user)


@bp.get("/supervision/groups/<int(max=2147483647):group_id>")
@signed_in
def group_detail(group_id: int):
    """A case group: its mediator, its complaints, the way to its room."""
    user = _user()
    group = groups.get_group_for(user, group_id)
    return _render_group(group, user)


def _lock_group(group_id: int) -> CaseGroup | None:
    dialect = db.session.get_bind().dialect.name
    query = db.select(CaseGroup).where(CaseGroup.id == group_id)
    if dialect == "postgresql":
        query = query.with_for_update(of=CaseGroup)
    elif dialect == "sqlite":
        db.session.execute(db.text("UPDATE case_groups SET id = id WHERE 0 = 1"))
    return db.session.scalar(query.execution_options(populate_existing=True))


@bp.post("/supervision/groups/<int(max=2147483647):group_id>/mediator")
@signed_in
def group_mediator(group_id: int):
    """Give the group to another mediator (regulators)."""
    user = _user()
    group = groups.get_group_for(user, group_id)
    if not user.has_role(Role.regulator):
        raise PermissionDenied()
    group = _lock_group(group.id)
    # Its cases in mediation are reassigned: locked like every case action.
    for case in groups.group_cases_of(group):
        lock_case(case.id)
    form = MediatorForm(mediators=groups.mediators())
    if not form.validate_on_submit():
        db.session.rollback()
        return _render_group(group, user, {"mediator": form}), 422
    mediator = (
        db.session.get(User, form.mediator_id.data) if form.mediator_id.data else None
    )
    try:
        groups.change_mediator(group, mediator, actor=user, now=clock.now_utc())
        name = group.mediator.name
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return _render_group(group, user, {"mediator": form}), 422
    flash(_("The group now goes to %(name)s.", name=name), "success")
    return redirect(url_for("analytics.group_detail", group_id=group.id), 303)


@bp.post(
    "/supervision/groups/<int(max=2147483647):group_id>"
    "/cases/<int(max=2147483647):case_id>/remove"
)
@signed_in
def group_remove_case(group_id: int, case_id: int):
    """Take a complaint out of the group, with a reason (regulators)."""
    user = _user()
    group = groups.get_group_for(user, group_id)
    if not user.has_role(Role.regulator):
        raise PermissionDenied()
    case = lock_case(case_id)
    if case is None or case.group_id != group.id:
        raise NotFound()
    form = RemoveCaseForm()
    if not form.validate_on_submit():
        db.session.rollback()
        return (
            _render_group(group, user, {"remove": form, "remove_case_id": case.id}),
            422,
        )
    try:
        groups.remove_case(
            group, case, actor=user, reason=form.reason.data, now=clock.now_utc()
        )
        reference = case.reference
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return (
            _render_group(group, user, {"remove": form, "remove_case_id": case.id}),
            422,
        )
    flash(_("%(reference)s is no longer in the group.", reference=reference), "success")
    return redirect(url_for("analytics.group_detail", group_id=group.id), 303)


# The case page's supervision card ---------------------------------------------------


@bp.app_template_global()
def case_supervision(case: Case, relation: str | None) -> dict[str, Any] | None:
    """Return what the case page shows of the case's group and alerts.

    Everyone who sees the case sees that it is grouped (and with how many
    complaints); regulators and mediators also see its alerts and the link to
    the group's page when they may open it; regulators also see the hot spots
    confirmed from the complaint's text and the flags still to review.
    """
    if relation is None:
        return None
    user = _user()
    group = db.session.get(CaseGroup, case.group_id) if case.group_id else None
    shown_alerts = []
    if user.has_role(Role.regulator, Role.mediator):
        shown_alerts = alerts.alerts_of_case(case, user)
    tags: list[str] = []
    flags: list[TextFlag] = []
    if user.has_role(Role.regulator):
        tags = tagging.tags_of([case.id]).get(case.id, [])
        flags = list(
            db.session.scalars(
                db.select(TextFlag)
                .where(TextFlag.case_id == case.id, TextFlag.status == "pending")
                .order_by(TextFlag.id)
            )
        )
    if group is None and not shown_alerts and not tags and not flags:
        return None
    size = 0
    if group is not None:
        size = (
            db.session.scalar(
                db.select(func.count(Case.id)).where(Case.group_id == group.id)
            )
            or 0
        )
    return {
        "group": group,
        "size": size,
        "group_link": group is not None and groups.may_manage(user, group),
        "alerts": shown_alerts,
        "tags": tags,
        "flags": flags,
    }


@bp.app_template_global()
def case_group_reference(group_id: int | None) -> str:
    """Return the reference of a case group from its id (lists)."""
    return group_reference(group_id) if group_id else ""
