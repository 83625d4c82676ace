"""Consumer warnings on the public site (being built for issue #7)."""

from __future__ import annotations

from flask import render_template

from mediation.analytics import bp


@bp.get("/warnings/")
def public_warnings():
    return render_template("analytics/warnings.html")
