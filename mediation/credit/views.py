"""Public credit pages: a merchant's credit record, the merchant list by grade,
the dishonesty list and the methodology (generated from the model in config).

Nobody needs to sign in; no page shows a consumer's name or contact details.
A merchant's own staff also see what would raise its grade.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional

from mediation import clock
from mediation.auth.models import Role
from mediation.credit import bp, labels, ledger, queries
from mediation.merchants import services as merchant_services
from mediation.merchants.forms import kind_choices
from mediation.merchants.services import QUERY_MAX

#: Pages beyond this show the first page (their offset would overflow SQLite).
MAX_PAGE = 100_000
SORT_LABELS = {
    "grade": _l("Grade"),
    "score": _l("Score"),
    "name": _l("Name"),
}
ORDER_LABELS = {"asc": _l("Ascending"), "desc": _l("Descending")}


class CreditSearchForm(FlaskForm):
    """The merchant list's search, filters and sort (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField(
        _l("Name or credit code"), validators=[Optional(), Length(max=QUERY_MAX)]
    )
    grade = SelectField(_l("Grade"), validators=[Optional()])
    kind = SelectField(_l("Kind"), validators=[Optional()])
    sort = SelectField(_l("Sort by"), validators=[Optional()])
    order = SelectField(_l("Order"), validators=[Optional()])

    def __init__(self, *args: Any, model: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grade.choices = [("", _l("All grades"))] + [
            (name, name) for name, _minimum in model["bands"]
        ]
        self.kind.choices = kind_choices(blank=_l("All kinds"))
        self.sort.choices = list(SORT_LABELS.items())
        self.order.choices = [("", _l("Natural order"))] + list(ORDER_LABELS.items())


def _page() -> int:
    """Return the page asked for; anything but a sensible number means the first."""
    page = request.args.get("page", 1, type=int)
    return page if 1 <= page <= MAX_PAGE else 1


def _per_page() -> int:
    return current_app.config["PAGE_SIZE"]


def _is_own_staff(merchant_id: int) -> bool:
    """Say whether the signed-in user works for this merchant."""
    return (
        current_user.is_authenticated
        and current_user.role == Role.merchant.value
        and current_user.merchant_id == merchant_id
    )


@bp.get("/credit/")
def index():
    """The merchant list: search by name or code, filter by grade and kind, sort."""
    model = ledger.credit_config()
    form = CreditSearchForm(formdata=request.args, model=model)
    if not form.validate():
        return render_template(
            "credit/list.html", form=form, result=None, filters={}, sort="grade"
        ), 422
    sort = form.sort.data or "grade"
    filters = {
        "q": form.q.data,
        "grade": form.grade.data,
        "kind": form.kind.data,
        "sort": form.sort.data,
        "order": form.order.data,
    }
    query = queries.credit_list(
        form.q.data,
        model=model,
        grade=form.grade.data or None,
        kind=form.kind.data or None,
        sort=sort,
        order=form.order.data or None,
    )
    return render_template(
        "credit/list.html",
        form=form,
        result=queries.list_page(query, _page(), _per_page()),
        filters={k: v for k, v in filters.items() if v},
        sort=sort,
        order=form.order.data or queries.SORTS[sort],
    )


@bp.get("/credit/dishonest")
def dishonest():
    """The dishonesty list: listed merchants, since when and why."""
    q = (request.args.get("q") or "").strip()[:QUERY_MAX]
    model = ledger.credit_config()
    result = queries.dishonest_page(
        q, _page(), _per_page(), now=clock.now_utc(), model=model
    )
    return render_template(
        "credit/dishonest.html",
        result=result,
        q=q,
        filters={"q": q} if q else {},
        model=model,
        listing_kinds=[labels.event_label(k) for k in model["listing"]["kinds"]],
    )


@bp.get("/credit/methodology")
def methodology():
    """How scores, grades, the dishonesty list, repair and the mark are decided,
    generated from the running model (``CREDIT_MODEL``)."""
    model = ledger.credit_config()
    return render_template(
        "credit/methodology.html", model=model, method=_method(model)
    )


@bp.get("/credit/merchants/<int:merchant_id>")
def merchant(merchant_id: int):
    """A merchant's public credit record (and, for its staff, how to raise it)."""
    merchant = merchant_services.get_merchant(merchant_id)
    model = ledger.credit_config()
    page = queries.credit_page(
        merchant,
        now=clock.now_utc(),
        model=model,
        zone=ZoneInfo(current_app.config["TIME_ZONE"]),
        for_staff=_is_own_staff(merchant.id),
    )
    return render_template(
        "credit/merchant.html",
        merchant=merchant,
        standing=page.credit.standing,
        norm_label=labels.NORM.get(page.credit.norm, page.credit.norm),
        model=model,
        method=_method(model),
        **vars(page),
    )


@bp.get("/credit/merchants/<int:merchant_id>/events")
def merchant_events(merchant_id: int):
    """A merchant's whole ledger, newest first, a page at a time."""
    merchant = merchant_services.get_merchant(merchant_id)
    model = ledger.credit_config()
    result = queries.events_page(merchant, _page(), now=clock.now_utc(), model=model)
    return render_template(
        "credit/merchant_events.html", merchant=merchant, result=result, model=model
    )


def _method(model: dict[str, Any]) -> dict[str, Any]:
    """Return the model's tables as the methodology template lays them out."""
    norms = model["points"]
    kinds: list[str] = []
    for table in norms.values():
        kinds += [kind for kind in table if kind not in kinds]
    caps = model.get("yearly_caps", {})
    points = [
        {
            "kind": kind,
            "label": labels.event_label(kind),
            "norms": {norm: table.get(kind) for norm, table in norms.items()},
            "cap": caps.get(kind),
            "lists": kind in model["listing"]["kinds"],
        }
        for kind in kinds
    ]
    bands = []
    upper = None
    for name, minimum in model["bands"]:
        bands.append(
            {
                "grade": name,
                "risk": labels.risk_label(name),
                "minimum": minimum,
                "below": upper,
            }
        )
        if minimum is not None:
            upper = minimum
    return {
        "norms": [(norm, labels.NORM.get(norm, norm)) for norm in norms],
        "points": points,
        "bands": bands,
        "listing_kinds": [labels.event_label(k) for k in model["listing"]["kinds"]],
    }


@bp.context_processor
def _credit_labels() -> dict[str, Any]:
    return {
        "event_label": labels.event_label,
        "listing_label": labels.listing_label,
        "risk_label": labels.risk_label,
        "CHANGE_LABELS": labels.CHANGE_KIND,
        "REPAIR_STATUS_LABELS": labels.REPAIR_STATUS,
    }
