"""Helpers shared by the API modules: JSON bodies, pagination, CSRF for cookies."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import Select

from mediation.api import bp
from mediation.errors import BadRequest, json_or_none
from mediation.extensions import csrf, db
from mediation.schemas import BaseSchema

csrf.exempt(bp)


@bp.before_request
def _csrf_for_cookie_sessions() -> None:
    """Writes that ride on the session cookie need the CSRF token.

    Not needed: bearer-token calls, anonymous calls (registration, token issue:
    there is no session to abuse), and JSON bodies (a cross-site page cannot
    send ``application/json`` without a CORS preflight, which this API refuses).
    Multipart uploads with the cookie must send ``X-CSRFToken``.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return
    if not current_user.is_authenticated or request.is_json:
        return
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()


def json_body() -> dict[str, Any]:
    """Return the request's JSON object.

    :raise BadRequest: when the body is not JSON or not an object.
    """
    data = json_or_none()
    if data is None:
        raise BadRequest(
            gettext("The body must be a JSON object."), code="malformed_json"
        )
    if not isinstance(data, dict):
        raise BadRequest(
            gettext("The body must be a JSON object."), code="malformed_json"
        )
    return data


def load(schema: BaseSchema, data: dict[str, Any] | None = None) -> Any:
    """Load the JSON body (or ``data``) with ``schema``; 400 or 422 on bad input."""
    return schema.load_or_raise(json_body() if data is None else data)


def page_arg() -> int:
    """Return the ``page`` query argument (1 when absent).

    :raise BadRequest: when it is not a positive integer.
    """
    raw = request.args.get("page", "1")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100_000:
        raise BadRequest(gettext("page must be a positive integer."), code="bad_page")
    return int(raw)


#: The largest id the database holds (32-bit integers).
INT_MAX = 2**31 - 1


def whole_number_arg(name: str, default: int, low: int, high: int, code: str) -> int:
    """Return a query argument that must be a whole number from low to high.

    :param default: when the argument is absent or empty.
    :raise BadRequest: (``code``) for anything else.
    """
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise BadRequest(
            gettext(
                "%(name)s must be a whole number from %(low)s to %(high)s.",
                name=name,
                low=low,
                high=high,
            ),
            code=code,
        )
    return int(raw)


def paginate(query: Select, page: int, per_page: int | None = None) -> dict[str, Any]:
    """Run a SELECT one page at a time; return items and the page metadata."""
    per_page = per_page or current_app.config["PAGE_SIZE"]
    result = db.paginate(query, page=page, per_page=per_page, error_out=False)
    return {
        "items": list(result.items),
        "page": page,
        "per_page": per_page,
        "total": result.total,
        "pages": result.pages,
    }


def current_token():
    """Return the ApiToken of this request, or None for cookie sessions."""
    return g.get("api_token")
