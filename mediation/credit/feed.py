"""The public credit feed: every change of a standing, in id order, cursor-stable.

The cursor is :class:`~mediation.credit.models.CreditChange`'s id. A reader at
cursor ``n`` must never miss a row: once a page has gone out past id ``m``, no
row with an id up to ``m`` may become visible later. On SQLite that holds by
itself: writers take the database's write lock before their first INSERT and
keep it until they commit, so ids are handed out in commit order.

On PostgreSQL ids come from a sequence when the row is inserted, long before
the commit: a transaction may hold id 10 uncommitted while id 11 commits. The
feed therefore only publishes ids up to a *safe horizon*:

* every transaction that writes feed rows first *registers*: before its first
  INSERT into ``credit_changes`` it takes a shared transaction-level advisory
  lock keyed ``(FEED_LOCK, s)``, where ``s`` is the sequence's last value read
  in the same statement. Every id the transaction gets afterwards is above
  ``s``. The lock goes away when the transaction ends, after its rows became
  visible (PostgreSQL releases locks after the commit is visible).
* a reader reads (1) the sequence's last value ``L`` (every id handed out so
  far is at most ``L``), then (2) the smallest ``s`` among the registered
  writers still running (``pg_locks``), and publishes ids up to
  ``min(L, s)`` only. An id at most ``L`` belongs to a transaction that
  registered before (1); if it is still running at (2) its ``s`` is below that
  id, which is therefore held back; if it has ended, its rows are visible to
  the next statement (READ COMMITTED) or were rolled back.

Registration is automatic for rows written through the ORM session (a
``before_flush`` hook); code that inserts feed rows with Core statements must
call :func:`register_writer` first. Shared advisory locks never block each
other, so writers do not wait for one another; readers never wait at all.
A long transaction that writes feed rows (``recompute-credit``) holds the
horizon back until it commits: the feed lags, it does not skip.

Consumer warnings (:mod:`mediation.analytics.warning_services`) are feed rows
too, written through the ORM session in the transaction that publishes or
withdraws them (so the same registration and horizon apply): kind ``warning``
or ``warning_withdrawn``, one row per merchant the warning names (or one row
without a merchant), ``new`` describing the warning.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from mediation.credit.models import CreditChange
from mediation.extensions import db
from mediation.merchants.models import Merchant

logger = logging.getLogger(__name__)

#: First key of the feed writers' advisory locks ("cred").
FEED_LOCK = 0x63726564
_REGISTERED = "credit_feed_registered"
_LAST_VALUE = (
    "COALESCE(pg_sequence_last_value("
    "CAST(pg_get_serial_sequence('credit_changes', 'id') AS regclass)), 0)"
)
_REGISTER = text(
    f"SELECT pg_advisory_xact_lock_shared({FEED_LOCK}, CAST({_LAST_VALUE} AS integer))"
)
_HELD = text(
    "SELECT min(objid::bigint) FROM pg_locks WHERE locktype = 'advisory' "
    f"AND classid = {FEED_LOCK} AND objsubid = 2 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)

#: Items per page when the query names no ``limit``, and the most it may ask.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

#: The CSV columns: the JSON item with ``merchant``, ``old`` and ``new`` spread.
#: The ``warning_*`` columns (consumer warnings, issue #7) come last, so that
#: readers of the earlier columns by position keep working.
STANDING_KEYS = ("score", "grade", "listed", "trusted")
WARNING_KEYS = ("warning_id", "title", "category", "status")
#: Feed kinds of consumer warnings: ``new`` describes the warning.
WARNING_KINDS = ("warning", "warning_withdrawn")
CSV_COLUMNS = (
    "id",
    "at",
    "merchant_id",
    "merchant_name",
    "merchant_uscc",
    "kind",
    *(f"old_{key}" for key in STANDING_KEYS),
    *(f"new_{key}" for key in STANDING_KEYS),
    "warning_id",
    "warning_title",
    "warning_category",
    "warning_status",
)


# Writers --------------------------------------------------------------------


def register_writer(session: Session) -> None:
    """Register the session's transaction as a feed writer (PostgreSQL only).

    Called before the transaction's first INSERT into ``credit_changes``; once
    per transaction is enough (later ids are larger still).
    """
    if session.info.get(_REGISTERED):
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_REGISTER)
    session.info[_REGISTERED] = True


@event.listens_for(Session, "before_flush")
def _register_before_insert(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(_REGISTERED):
        return
    if any(isinstance(obj, CreditChange) for obj in session.new):
        register_writer(session)


@event.listens_for(Session, "after_transaction_end")
def _forget_registration(session: Session, transaction: Any) -> None:
    # The lock ends with the transaction (or with a rolled-back savepoint);
    # registering again after a released savepoint costs one statement, no more.
    # A flush's own inner transaction changes nothing.
    if transaction.parent is None or transaction.nested:
        session.info.pop(_REGISTERED, None)


# Readers --------------------------------------------------------------------


def safe_horizon() -> int | None:
    """Return the largest id the feed may publish now, or None for no limit.

    :raise RuntimeError: on PostgreSQL outside READ COMMITTED (the rows must be
        read with a snapshot taken after the horizon).
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return None
    isolation, last = db.session.execute(
        text(f"SELECT current_setting('transaction_isolation'), {_LAST_VALUE}")
    ).one()
    if isolation != "read committed":
        raise RuntimeError(f"the credit feed needs READ COMMITTED, not {isolation}")
    held = db.session.scalar(_HELD)
    return int(last) if held is None else min(int(last), int(held))


def changes_since(since: int, limit: int) -> tuple[list[CreditChange], int | None]:
    """Return the feed rows after ``since`` (at most ``limit``) and the next cursor.

    :return: the rows, oldest first, with their merchants loaded, and the id to
        ask from for more rows available now (None: the reader is caught up and
        polls again later from its last id).
    """
    query = (
        db.select(CreditChange, Merchant)
        # A consumer warning naming no merchant has a row without one.
        .outerjoin(Merchant, Merchant.id == CreditChange.merchant_id)
        .where(CreditChange.id > since)
        .order_by(CreditChange.id)
        .limit(limit + 1)
    )
    horizon = safe_horizon()
    if horizon is not None:
        query = query.where(CreditChange.id <= horizon)
    rows = db.session.execute(query).all()
    page = [change for change, _merchant in rows[:limit]]
    return page, (page[-1].id if len(rows) > limit else None)


def feed_item(change: CreditChange) -> dict[str, Any]:
    """Return the public form of a feed row (also the webhooks' ``change``).

    ``merchant`` is None only for a consumer warning that names no merchant.
    """
    merchant = change.merchant
    return {
        "id": change.id,
        "merchant": (
            {"id": merchant.id, "name": merchant.name, "uscc": merchant.uscc}
            if merchant is not None
            else None
        ),
        "kind": change.kind,
        "old": dict(change.old or {}),
        "new": dict(change.new or {}),
        "at": change.at.isoformat(),
    }


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _text_cell(value: str) -> str:
    """Neutralise text that a spreadsheet would run as a formula."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def to_csv(items: list[dict[str, Any]]) -> str:
    """Return feed items as CSV text: UTF-8 with a BOM, CRLF line ends, a header.

    The BOM makes Excel read UTF-8 (Chinese names) instead of the local code
    page; machines reading it use ``utf-8-sig``. Text cells that would start a
    formula get a leading apostrophe.
    """
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        old, new = item["old"], item["new"]
        merchant = item["merchant"] or {"id": None, "name": "", "uscc": None}
        warning = new if item["kind"] in WARNING_KINDS else {}
        writer.writerow(
            [
                item["id"],
                item["at"],
                _cell(merchant["id"]),
                _text_cell(merchant["name"]),
                _cell(merchant["uscc"]),
                item["kind"],
                *(_cell(old.get(key)) for key in STANDING_KEYS),
                *(_cell(new.get(key)) for key in STANDING_KEYS),
                *(
                    _text_cell(_cell(warning.get(key)))
                    if key == "title"
                    else _cell(warning.get(key))
                    for key in WARNING_KEYS
                ),
            ]
        )
    return out.getvalue()
