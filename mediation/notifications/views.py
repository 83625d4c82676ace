"""The notification bell: the list page, marking read, and its JSON API."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import Schema, fields

from mediation import clock
from mediation.api import bp as api_bp
from mediation.api.common import page_arg, paginate
from mediation.auth.models import User
from mediation.auth.permissions import login_required, require_user
from mediation.auth.views import safe_next, signin_required
from mediation.errors import NotFound
from mediation.extensions import db
from mediation.notifications import bp
from mediation.notifications.messages import render
from mediation.notifications.models import Notification
from mediation.notifications.services import mark_read, unread_count


class NotificationSchema(Schema):
    """One notification, its text in the caller's language."""

    id = fields.Integer()
    kind = fields.String()
    text = fields.Function(lambda note: render(note.kind, note.params or {}))
    params = fields.Dict(keys=fields.String())
    case_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class NotificationPageSchema(Schema):
    """One page of the caller's notifications, with the unread count."""

    items = fields.List(fields.Nested(NotificationSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    pages = fields.Integer()
    unread = fields.Integer()


class MarkedReadSchema(Schema):
    """How many notifications were marked read, and how many remain unread."""

    marked = fields.Integer()
    unread = fields.Integer()


def _newest_first(user: User):
    return (
        db.select(Notification)
        .where(Notification.user_id == user.id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    )


def _own(user: User, note_id: int) -> Notification:
    """Return the user's notification; someone else's does not exist for them."""
    note = db.session.get(Notification, note_id)
    if note is None or note.user_id != user.id:
        raise NotFound()
    return note


# HTML ------------------------------------------------------------------------


@bp.get("/")
@signin_required
def index():
    """The user's notifications, newest first."""
    user = require_user()
    result = paginate(_newest_first(user), page_arg())
    entries = [(note, render(note.kind, note.params or {})) for note in result["items"]]
    return render_template(
        "notifications/index.html",
        entries=entries,
        result=result,
        unread=unread_count(user),
    )


@bp.post("/read")
@signin_required
def read_all():
    """Mark every notification of the user read."""
    user = require_user()
    mark_read(user, now=clock.now_utc())
    db.session.commit()
    flash(_("All notifications are marked as read."), "success")
    return redirect(url_for("notifications.index"))


@bp.post("/<int:note_id>/read")
@signin_required
def read_one(note_id: int):
    """Mark one notification read, then go on to ``next`` (e.g. its case)."""
    user = require_user()
    note = _own(user, note_id)
    mark_read(user, note_id=note.id, now=clock.now_utc())
    db.session.commit()
    target = safe_next(request.form.get("next"))
    return redirect(target or url_for("notifications.index"))


# JSON API --------------------------------------------------------------------


@api_bp.get("/notifications")
@login_required
def list_notifications():
    """List the caller's notifications.
    ---
    get:
      tags: [notifications]
      summary: The caller's notifications, newest first
      parameters:
        - {name: page, in: query, schema: {type: integer, minimum: 1}}
      responses:
        200:
          description: one page, with the unread count
          content: {application/json: {schema: NotificationPageSchema}}
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
    """
    user = require_user()
    result = paginate(_newest_first(user), page_arg())
    return NotificationPageSchema().dump({**result, "unread": unread_count(user)})


@api_bp.post("/notifications/read")
@login_required
def mark_all_notifications_read():
    """Mark all the caller's notifications read.
    ---
    post:
      tags: [notifications]
      summary: Mark every notification read
      responses:
        200:
          description: how many were marked
          content: {application/json: {schema: MarkedReadSchema}}
        401: {$ref: "#/components/responses/Error"}
    """
    user = require_user()
    marked = mark_read(user, now=clock.now_utc())
    db.session.commit()
    return MarkedReadSchema().dump({"marked": marked, "unread": unread_count(user)})


@api_bp.post("/notifications/<int:note_id>/read")
@login_required
def mark_notification_read(note_id: int):
    """Mark one of the caller's notifications read.
    ---
    post:
      tags: [notifications]
      summary: Mark one notification read
      responses:
        200:
          description: the notification
          content: {application/json: {schema: NotificationSchema}}
        401: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
    """
    user = require_user()
    note = _own(user, note_id)
    mark_read(user, note_id=note.id, now=clock.now_utc())
    db.session.commit()
    return NotificationSchema().dump(note)
