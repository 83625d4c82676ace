"""Registry pages: the public search and entries, and the regulator's editor."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from mediation import clock
from mediation.api.common import paginate
from mediation.auth.models import Role
from mediation.auth.permissions import require_user, role_required
from mediation.errors import Conflict, ValidationError
from mediation.extensions import db
from mediation.merchants import bp, services
from mediation.merchants.forms import MerchantForm, SearchForm

#: Pages beyond this show the first page (their offset would overflow SQLite).
MAX_PAGE = 100_000


def _page() -> int:
    """Return the page asked for; anything but a sensible number means the first."""
    page = request.args.get("page", 1, type=int)
    return page if 1 <= page <= MAX_PAGE else 1


def _search(template: str):
    """Render a registry search page (public list or the regulator's list)."""
    form = SearchForm(formdata=request.args)
    platform = None
    platform_id = request.args.get("platform", type=int)
    if platform_id is not None:
        platform = services.get_merchant(platform_id)
    if not form.validate():
        return render_template(
            template, form=form, result=None, platform=platform, filters={}
        ), 422
    query = services.search_merchants(
        form.q.data, kind=form.kind.data or None, platform_id=platform_id
    )
    filters = {"q": form.q.data, "kind": form.kind.data, "platform": platform_id}
    return render_template(
        template,
        form=form,
        result=paginate(query, _page()),
        platform=platform,
        filters={k: v for k, v in filters.items() if v},
    )


@bp.get("/")
def search():
    """The public registry: search by name or credit code, filter by kind."""
    return _search("merchants/search.html")


@bp.get("/<int:merchant_id>")
def detail(merchant_id: int):
    """A public registry entry (no personal data: the registry holds none)."""
    entry = services.get_registry_entry(merchant_id)
    return render_template(
        "merchants/detail.html", entry=entry, merchant=entry.merchant
    )


@bp.get("/admin")
@role_required(Role.regulator)
def admin_list():
    """The regulator's view of the registry, with links to edit each entry."""
    return _search("merchants/admin_list.html")


@bp.route("/admin/new", methods=["GET", "POST"])
@role_required(Role.regulator)
def admin_new():
    """Register a merchant (regulator)."""
    form = MerchantForm(platforms=services.platforms())
    if form.validate_on_submit():
        try:
            merchant = services.register_merchant(
                form.values(), now=clock.now_utc(), actor=require_user()
            )
        except ValidationError as exc:
            db.session.rollback()
            form.add_errors(exc.fields, exc.message)
        else:
            db.session.commit()
            flash(_("%(name)s is registered.", name=merchant.name), "success")
            return redirect(url_for("merchants.detail", merchant_id=merchant.id))
    status = 422 if form.is_submitted() else 200
    return render_template("merchants/form.html", form=form, merchant=None), status


@bp.route("/admin/<int:merchant_id>/edit", methods=["GET", "POST"])
@role_required(Role.regulator)
def admin_edit(merchant_id: int):
    """Edit a registry entry (regulator)."""
    merchant = services.get_merchant(merchant_id)
    choices = [p for p in services.platforms() if p.id != merchant.id]
    form = MerchantForm(obj=merchant, platforms=choices)
    if form.validate_on_submit():
        try:
            services.update_merchant(
                merchant, form.values(), now=clock.now_utc(), actor=require_user()
            )
        except (ValidationError, Conflict) as exc:
            db.session.rollback()
            form.add_errors(exc.fields, exc.message)
        else:
            db.session.commit()
            flash(_("The registry entry is saved."), "success")
            return redirect(url_for("merchants.detail", merchant_id=merchant.id))
    status = 422 if form.is_submitted() else 200
    return render_template("merchants/form.html", form=form, merchant=merchant), status
