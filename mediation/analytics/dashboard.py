"""The regulator's dashboard (being built for issue #7)."""

from __future__ import annotations

from flask import render_template

from mediation.analytics import bp
from mediation.auth.models import Role
from mediation.auth.permissions import role_required


@bp.get("/supervision/")
@role_required(Role.regulator)
def dashboard():
    return render_template("analytics/dashboard.html")
