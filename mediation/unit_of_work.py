"""Side effects that wait for the commit: mail, socket events, webhooks.

Services call :func:`after_commit`; the callbacks run once the surrounding
transaction commits and are dropped if it rolls back (indico's pattern).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from mediation.extensions import db

logger = logging.getLogger(__name__)
_KEY = "after_commit_callbacks"


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` after the current session commits (never on rollback)."""
    db.session.info.setdefault(_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    callbacks = session.info.pop(_KEY, [])
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a failed side effect must not undo a committed change
            logger.exception("after-commit callback %r failed", callback)


@event.listens_for(Session, "after_rollback")
def _drop_callbacks(session: Session) -> None:
    session.info.pop(_KEY, None)
