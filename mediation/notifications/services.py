"""Queue notifications with the transaction; send their e-mail after the commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import current_app

from mediation.auth.models import User
from mediation.extensions import db
from mediation.notifications.models import Notification
from mediation.notifications.outbox import outbox
from mediation.unit_of_work import after_commit, current_bulk

logger = logging.getLogger(__name__)


def notify(
    users: Iterable[User],
    kind: str,
    params: dict[str, Any],
    *,
    case_id: int | None = None,
    now: datetime,
) -> list[Notification]:
    """Add one notification per user and queue its e-mail for after the commit.

    Inside :func:`mediation.unit_of_work.bulk_inserts` the rows are queued for
    the batch's multi-row INSERT instead (and none is returned).

    :param users: recipients (duplicates are dropped).
    :param kind: a key of :data:`mediation.notifications.messages.MESSAGES`.
    :param params: values for the message (``reference``, ``merchant``...).
    """
    seen: set[int] = set()
    created: list[Notification] = []
    bulk = current_bulk()
    for user in users:
        if user is None or user.id in seen or not user.is_active_account:
            continue
        seen.add(user.id)
        if bulk is not None:
            # A batch job: one multi-row INSERT; the mail is queued with the ids.
            row = {
                "user_id": user.id,
                "case_id": case_id,
                "kind": kind,
                "params": dict(params),
                "created_at": now,
                "email_status": "pending",
            }
            bulk.add(Notification, row, on_id=_queue_mail)
            continue
        note = Notification(
            user_id=user.id,
            case_id=case_id,
            kind=kind,
            params=dict(params),
            created_at=now,
            email_status="pending",
        )
        db.session.add(note)
        created.append(note)
    if created:
        # The ids exist once the commit has flushed the rows; read them then.
        app = current_app._get_current_object()
        after_commit(lambda: outbox.submit(app, [n.id for n in created]))
    return created


def _queue_mail(ids: list[int]) -> None:
    """Hand the e-mail of notifications written in bulk to the outbox after commit."""
    app = current_app._get_current_object()
    after_commit(lambda: outbox.submit(app, ids))


def unread_count(user: User) -> int:
    """Return how many notifications ``user`` has not read."""
    return (
        db.session.scalar(
            db.select(db.func.count(Notification.id)).where(
                Notification.user_id == user.id, Notification.read_at.is_(None)
            )
        )
        or 0
    )


def mark_read(user: User, *, note_id: int | None = None, now: datetime) -> int:
    """Mark one (or, with no ``note_id``, every) notification of ``user`` read.

    :return: how many were marked.
    """
    query = db.select(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if note_id is not None:
        query = query.where(Notification.id == note_id)
    notes = db.session.scalars(query).all()
    for note in notes:
        note.read_at = now
    return len(notes)
