"""Side effects that wait for the commit: mail, socket events, webhooks.

Services call :func:`after_commit`; the callbacks run once the outermost
transaction commits and are dropped if the transaction (or the savepoint they
were registered in) rolls back. SQLAlchemy fires ``after_commit`` and
``after_rollback`` for savepoints too, so each callback remembers the savepoint
depth it was registered at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from mediation.extensions import db

logger = logging.getLogger(__name__)
_KEY = "after_commit_callbacks"


def _depth(session: Session) -> int:
    """Return how many savepoints are open (0 in the outermost transaction)."""
    depth = 0
    transaction = session.get_nested_transaction()
    while transaction is not None and transaction.nested:
        depth += 1
        transaction = transaction.parent
    return depth


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` after the outermost transaction commits (never on rollback)."""
    session = db.session()
    session.info.setdefault(_KEY, []).append((_depth(session), callback))


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    if session.in_nested_transaction():
        # A savepoint was released: its callbacks now belong to the enclosing level.
        depth = _depth(session)
        session.info[_KEY] = [
            (min(d, depth - 1), cb) for d, cb in session.info.get(_KEY, [])
        ]
        return
    for _depth_at, callback in session.info.pop(_KEY, []):
        try:
            callback()
        except Exception:  # a failed side effect must not undo a committed change
            logger.exception("after-commit callback %r failed", callback)


@event.listens_for(Session, "after_rollback")
def _drop_callbacks(session: Session) -> None:
    if session.in_nested_transaction():
        depth = _depth(session)
        session.info[_KEY] = [
            (d, cb) for d, cb in session.info.get(_KEY, []) if d < depth
        ]
        return
    session.info.pop(_KEY, None)
