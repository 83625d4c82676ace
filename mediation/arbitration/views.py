"""The arbitrators' workspace and the case file (pages).

Thin views: an access check, the queries of :mod:`mediation.arbitration.queue`
or :mod:`mediation.arbitration.pages`, a template. Taking a case and every other
action go through the case page's forms (``POST /cases/<id>/actions/<action>``).
"""

from __future__ import annotations

from flask import render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from mediation import clock
from mediation.arbitration import bp, pages
from mediation.arbitration import queue as arbitration_queue
from mediation.auth.models import Role, User
from mediation.auth.permissions import get_case_for, require_role
from mediation.cases import forms
from mediation.cases import queue as shared_queue
from mediation.cases.views import DISPLAY_LABELS, OFFER_KINDS, OFFER_STATUSES, signed_in
from mediation.errors import PermissionDenied
from mediation.extensions import db


def _page_size() -> int:
    from flask import current_app

    return int(current_app.config.get("PAGE_SIZE", 20))


@bp.get("/arbitration")
@signed_in
def workspace():
    """The arbitrators' workspace: the queue to take cases from and my caseload;
    for regulators, every case in arbitration."""
    user: User = require_role(Role.arbitrator, Role.regulator)
    regulator = user.role == Role.regulator.value
    filters = forms.QueueFilterForm(
        request.args, mine=bool(user.categories) and not regulator
    )
    category = shared_queue.resolve_category_filter(user, filters.category.data)
    filters.category.data = category
    page = request.args.get("page", 1, type=int) or 1
    query = (
        arbitration_queue.overview_query(user, category)
        if regulator
        else arbitration_queue.queue_query(user, category)
    )
    pagination = db.paginate(
        query, page=max(page, 1), per_page=_page_size(), error_out=False
    )
    caseload = [] if regulator else arbitration_queue.caseload(user)
    return render_template(
        "arbitration/workspace.html",
        regulator=regulator,
        pagination=pagination,
        filters=filters,
        category=category,
        counts=None if regulator else arbitration_queue.queue_counts(user),
        my_categories=set(user.categories or []) if not regulator else set(),
        caseload=caseload,
        pending=arbitration_queue.pending([*pagination.items, *caseload]),
        take_form=forms.action_form("take", formdata=None),
        args={"category": category},
        now=clock.now_utc(),
    )


@bp.get("/cases/<int:case_id>/file")
@signed_in
def case_file(case_id: int):
    """The case file: everything the arbitrator reads, on one printable page."""
    user: User = current_user._get_current_object()
    case, relation = get_case_for(user, case_id)
    if not pages.may_read_file(user, case, relation):
        raise PermissionDenied(
            _l("The case file is for the parties, the arbitrator and regulators.")
        )
    return render_template(
        "arbitration/file.html",
        case=case,
        relation=relation,
        file=pages.case_file(case),
        display_labels=DISPLAY_LABELS,
        offer_kinds=OFFER_KINDS,
        offer_statuses=OFFER_STATUSES,
        decisions=forms.DECISIONS,
        order_types=forms.ORDER_TYPES,
        request_statuses=pages.REQUEST_STATUSES,
        now=clock.now_utc(),
    )
