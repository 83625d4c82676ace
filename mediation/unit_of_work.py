"""Side effects that wait for the commit: mail, socket events, webhooks.

Services call :func:`after_commit`; the callbacks run once the outermost
transaction commits and are dropped if the transaction (or the savepoint they
were registered in) rolls back. SQLAlchemy fires ``after_commit`` and
``after_rollback`` for savepoints too, so each callback remembers the savepoint
depth it was registered at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, insert
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


# Bulk appends ----------------------------------------------------------------

_BULK_KEY = "bulk_inserts"


class BulkInserts:
    """Append-only rows collected during a batch and written with one INSERT each.

    A batch job (the SLA sweep) runs the ordinary services for many cases in one
    transaction. The rows those services only ever append (timeline events,
    notifications) are collected here instead of being added to the session one
    ORM object at a time, and :meth:`write` sends them as one multi-row INSERT
    per table just before the commit. ``cache`` holds values that stay the same
    for the whole batch (a merchant's staff, a stage's deadline at ``now``).
    """

    def __init__(self) -> None:
        self.rows: dict[Any, list[dict[str, Any]]] = {}
        #: model -> [(callback, row indexes)] of callers that need the new ids.
        self.id_callbacks: dict[Any, list[tuple[Callable[[list[int]], None], int]]] = {}
        self.cache: dict[Any, Any] = {}
        #: Work that reads what the batch appended: run once the rows are written
        #: (still in the batch's transaction), each key once.
        self.after_write: dict[Any, Callable[[], None]] = {}

    def add(
        self,
        model: Any,
        row: dict[str, Any],
        on_id: Callable[[list[int]], None] | None = None,
    ) -> None:
        """Queue ``row`` for ``model``'s table; ``on_id`` receives its id later.

        Callbacks are grouped: each distinct ``on_id`` is called once with the ids
        of all the rows queued with it.
        """
        rows = self.rows.setdefault(model, [])
        if on_id is not None:
            self.id_callbacks.setdefault(model, []).append((on_id, len(rows)))
        rows.append(row)

    def write(self, session: Session) -> int:
        """INSERT every queued row (one statement batch per table); return the count."""
        written = 0
        for model, rows in self.rows.items():
            if not rows:
                continue
            callbacks = self.id_callbacks.get(model)
            if callbacks:
                ids = list(
                    session.scalars(
                        insert(model).returning(model.id, sort_by_parameter_order=True),
                        rows,
                    )
                )
                grouped: dict[Callable[[list[int]], None], list[int]] = {}
                for callback, index in callbacks:
                    grouped.setdefault(callback, []).append(ids[index])
                for callback, group in grouped.items():
                    callback(group)
            else:
                session.execute(insert(model), rows)
            written += len(rows)
        self.rows.clear()
        self.id_callbacks.clear()
        return written


def current_bulk() -> BulkInserts | None:
    """Return the batch collecting appends in this session, if one is open."""
    return db.session().info.get(_BULK_KEY)


@contextmanager
def bulk_inserts() -> Iterator[BulkInserts]:
    """Collect appended rows in the block; write them when it ends without error.

    The caller commits (or rolls back) afterwards as usual; on an exception the
    queued rows are dropped with it. Autoflush is off inside the block, so
    services that read do not flush half a batch.
    """
    session = db.session()
    if _BULK_KEY in session.info:
        raise RuntimeError("bulk_inserts() does not nest")
    bulk = BulkInserts()
    session.info[_BULK_KEY] = bulk
    try:
        with session.no_autoflush:
            yield bulk
        session.info.pop(_BULK_KEY, None)
        bulk.write(session)
        for work in list(bulk.after_write.values()):
            work()
        bulk.after_write.clear()
    finally:
        session.info.pop(_BULK_KEY, None)
