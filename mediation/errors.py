"""Domain exceptions and the one place that maps them to HTTP, JSON and forms.

Services raise these; adapters never build error responses by hand. The JSON
shape is the one of API.md: ``{"error": {"code", "message", "fields"?}}``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of every error a service may raise on purpose."""

    status = 400
    code = "bad_request"
    default_message = lazy_gettext("The request could not be processed.")

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        if code:
            self.code = code
        self.fields = fields
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """Return the API.md error body for this error."""
        body: dict[str, Any] = {"code": self.code, "message": str(self.message)}
        if self.fields:
            body["fields"] = {k: _stringify(v) for k, v in self.fields.items()}
        return {"error": body}


def _stringify(value: Any) -> Any:
    """Turn lazy strings (and nested lists/dicts of them) into plain strings."""
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stringify(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class BadRequest(DomainError):
    status = 400
    code = "bad_request"
    default_message = lazy_gettext("The request is malformed.")


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    default_message = lazy_gettext("Please sign in.")


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"
    default_message = lazy_gettext("You are not allowed to do this.")


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_message = lazy_gettext("Not found.")


class InvalidTransition(DomainError):
    status = 409
    code = "invalid_transition"
    default_message = lazy_gettext("This action is not allowed in the current status.")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_message = lazy_gettext("The request conflicts with the current state.")


class TooLarge(DomainError):
    status = 413
    code = "too_large"
    default_message = lazy_gettext("The upload is too large.")


class UnsupportedType(DomainError):
    status = 415
    code = "unsupported_type"
    default_message = lazy_gettext("This file type is not accepted.")


class ValidationError(DomainError):
    status = 422
    code = "validation_error"
    default_message = lazy_gettext("Some fields are not valid.")


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    default_message = lazy_gettext("Too many requests; please wait and try again.")


class TooLong(ValidationError):
    """A text above its length limit (a chat message)."""

    code = "too_long"
    default_message = lazy_gettext("The text is too long.")


class ReadOnly(PermissionDenied):
    """The place may be read but no longer (or not yet) written to."""

    code = "read_only"
    default_message = lazy_gettext("This conversation is read-only.")


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_type",
    422: "validation_error",
    429: "rate_limited",
}


def wants_json() -> bool:
    """Say whether the current request should be answered with JSON."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and not request.accept_mimetypes["text/html"]


#: Codes of the socket protocol (API.md "Real-time chat") where it names an
#: error differently from the HTTP API.
_SOCKET_CODES = {"validation_error": "validation", "bad_request": "validation"}


def socket_error(exc: DomainError) -> dict[str, Any]:
    """Return a Socket.IO acknowledgement for a refused event.

    :return: ``{"ok": false, "error": {"code", "message", "fields"?}}``.
    """
    body = exc.to_dict()
    body["error"]["code"] = _SOCKET_CODES.get(exc.code, exc.code)
    return {"ok": False, **body}


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def json_or_none() -> Any:
    """Return the parsed JSON body, or None when it is not valid JSON.

    :raise BadRequest: for JSON nested too deeply to parse.
    """
    try:
        return request.get_json(silent=True)
    except RecursionError:
        raise BadRequest(
            gettext("The body is nested too deeply."), code="malformed_json"
        ) from None


def refuse_nul_characters() -> None:
    """Refuse text with NUL characters (PostgreSQL cannot store them).

    Checks the query string, form fields and JSON strings; uploaded files are
    binary and are not checked.

    :raise BadRequest: when any text value contains ``\x00``.
    """
    values: list[Any] = list(request.args.values())
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if request.is_json:
            values.append(json_or_none())
        elif request.mimetype in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            values.extend(request.form.values())
            values.extend(f.filename or "" for f in request.files.values())
    if any(_contains_nul(v) for v in values):
        raise BadRequest(
            gettext("Text may not contain NUL characters."), code="nul_character"
        )


def init_app(app: Flask) -> None:
    """Register the error handlers (the one mapping of errors to responses)."""
    app.before_request(refuse_nul_characters)

    @app.errorhandler(DomainError)
    def handle_domain_error(exc: DomainError):
        if wants_json():
            return jsonify(exc.to_dict()), exc.status
        if exc.status == 401:
            # A person in the browser is sent to sign in and brought back.
            target = request.full_path if request.method == "GET" else None
            return redirect(
                url_for("auth.login", next=target.rstrip("?") if target else None)
            )
        if exc.status in (400, 409, 413, 415, 422) and request.referrer:
            flash(str(exc.message), "error")
            return redirect(request.referrer)
        return (
            render_template("error.html", status=exc.status, message=exc.message),
            exc.status,
        )

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException):
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "error")
        message = _http_message(status, exc)
        if wants_json():
            return jsonify({"error": {"code": code, "message": message}}), status
        return render_template("error.html", status=status, message=message), status

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.path)
        message = gettext("Something went wrong on our side. Please try again.")
        if wants_json():
            return jsonify({"error": {"code": "internal", "message": message}}), 500
        return render_template("error.html", status=500, message=message), 500


def _http_message(status: int, exc: HTTPException) -> str:
    """Return a translated message for a Werkzeug HTTP error."""
    messages = {
        400: gettext("The request is malformed."),
        401: gettext("Please sign in."),
        403: gettext("You are not allowed to do this."),
        404: gettext("Not found."),
        405: gettext("This method is not allowed here."),
        413: gettext("The upload is too large."),
        429: gettext("Too many requests; please wait and try again."),
    }
    return messages.get(status, exc.description or exc.name)
