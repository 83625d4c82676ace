"""``recompute-credit`` at scale: the ledger's rules, the I/O in bulk.

The rules stay where they are: every case goes through
:func:`mediation.credit.ledger.derive` and every standing through
:func:`mediation.credit.model.standing`, the very functions of the live path.
What changes is the I/O around them. Instead of ORM round trips per case and
per merchant, cases are read in chunks of :data:`CHUNK` with their timelines and
their ledger rows (three queries a chunk), the ledger is diffed against what
:func:`~mediation.credit.ledger.derive` gives, keyed by
``(merchant_id, case_id, kind)``, and written in batches (``COPY`` on
PostgreSQL); the standings are computed while streaming the whole ledger in
merchant order and written back only where they changed.

The result is the one :func:`~mediation.credit.ledger.sync_case` per case and
:func:`~mediation.credit.ledger.refresh_standing` per merchant would give (tested
in ``tests/test_credit_bulk.py``): a row whose fact kept its time stays as it is
(with its repair), a moved fact updates its row, a vanished one goes; every
merchant with a ledger or a standing is refreshed; the feed gets one
:class:`~mediation.credit.models.CreditChange` per change, in merchant order,
and every :data:`~mediation.credit.ledger.change_listeners` callable sees it.

Everything runs in the session's transaction (on PostgreSQL partly through the
driver's cursor of the same connection). Services flush, never commit: the
caller commits.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func

from mediation.cases import lifecycle as lc
from mediation.cases.models import Case, CaseEvent
from mediation.credit import ledger
from mediation.credit import model as credit_model
from mediation.credit.models import CreditChange, CreditEvent, CreditStanding
from mediation.extensions import db
from mediation.merchants.models import Merchant

logger = logging.getLogger(__name__)

#: Cases per round trip (their timelines and ledger rows come with them).
CHUNK = 5000
#: Rows per INSERT (COPY) / DELETE / UPDATE batch.
WRITE_BATCH = 5000
#: Ledger rows fetched at a time while streaming it for the standings.
STREAM_BATCH = 20000

#: What :func:`~mediation.credit.ledger.derive` reads of a case and of its events.
#: Rows with these attribute names stand in for the ORM objects; a rule that
#: reads anything else fails loudly (AttributeError) instead of guessing.
CASE_COLUMNS = ("id", "reference", "merchant_id", "platform_id", "outcome")
EVENT_COLUMNS = (
    "seq",
    "at",
    "actor_role",
    "action",
    "from_status",
    "to_status",
    "data",
)
#: The ledger's columns written for a new event (in this order).
INSERT_COLUMNS = (
    "merchant_id",
    "case_id",
    "kind",
    "points",
    "occurred_at",
    "data",
    "lists",
    "created_at",
)


class _CaseRow(NamedTuple):
    """A case as :func:`~mediation.credit.ledger.derive` reads it."""

    id: int
    reference: str | None
    merchant_id: int | None
    platform_id: int | None
    outcome: str | None


class _EventRow(NamedTuple):
    seq: int
    #: As stored: naive UTC.
    stored_at: datetime
    actor_role: str
    action: str
    from_status: str | None
    to_status: str
    data: dict[str, Any] | None


class _Event(_EventRow):
    """A timeline row as :func:`~mediation.credit.ledger.derive` reads it.

    ``at`` is the aware UTC moment the ORM gives (``UTCDateTime``), made when
    read: only the few events that become facts are asked for it.
    """

    __slots__ = ()

    @property
    def at(self) -> datetime:
        return self.stored_at.replace(tzinfo=UTC)


class _EntryRow(NamedTuple):
    """A ledger event as :func:`mediation.credit.model.standing` reads it (the
    attributes of :class:`mediation.credit.model.Entry`, a third of its cost)."""

    kind: str
    points: int
    occurred_at: datetime
    lists: bool
    repaired: bool
    id: int


def recompute(
    *, now: datetime, case_ids: Iterable[int] | None = None
) -> dict[str, int]:
    """Rebuild the ledger from the case history, then every standing.

    :param case_ids: only these cases' ledger rows (every standing is refreshed
        all the same, as :func:`mediation.credit.ledger.recompute` always did).
    :return: ``cases`` and ``merchants`` processed, and what was written:
        ``inserted``, ``updated``, ``deleted`` ledger rows, ``standings_written``
        and ``changes`` (feed rows).
    """
    db.session.flush()
    config = ledger.credit_config()
    with _collector_paused():
        synced = sync_ledger(now=now, case_ids=case_ids, config=config)
        refreshed = refresh_standings(
            now=now, also=synced.pop("touched"), config=config
        )
    return {**synced, **refreshed}


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk pass.

    A pass allocates tens of millions of short-lived objects and no cycles
    (reference counting frees them); with the collector on, its full passes
    over the growing heap cost more than the work (measured: the timelines'
    JSON decoding three times slower).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _driver() -> Any | None:
    """Return the DB-API connection of the session's transaction on PostgreSQL
    (psycopg, for its fast paths), else None."""
    if db.session.get_bind().dialect.name != "postgresql":
        return None
    return db.session.connection().connection.driver_connection


# The ledger -----------------------------------------------------------------


def sync_ledger(
    *,
    now: datetime,
    case_ids: Iterable[int] | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Make the ledger hold exactly what every case (or ``case_ids``) gives.

    :return: ``cases``, ``inserted``, ``updated``, ``deleted`` and ``touched``
        (the merchants whose ledger changed).
    """
    with _collector_paused():
        return _sync_ledger(now=now, case_ids=case_ids, config=config)


def _sync_ledger(
    *, now: datetime, case_ids: Iterable[int] | None, config: dict[str, Any] | None
) -> dict[str, Any]:
    config = config or ledger.credit_config()
    norms = {row.id: ledger.norm_of(row) for row in _merchant_kinds()}
    points: dict[tuple[str, str], int] = {}
    writer = _LedgerWriter(now)
    touched: set[int] = set()
    cases = 0
    derive = ledger.derive
    for chunk, timelines, existing in _chunks(case_ids):
        for case in chunk:
            cases += 1
            have = existing.get(case.id) or {}
            wanted = {f.key: f for f in derive(case, timelines.get(case.id, ()))}
            for key, (row_id, _) in have.items():
                if key not in wanted:
                    writer.delete(row_id)
                    touched.add(key[0])
            for key, fact in wanted.items():
                row = have.get(key)
                if row is not None and row[1] == fact.occurred_at:
                    continue
                norm = norms.get(fact.merchant_id) or ledger.norm_of(None)
                value = points.get((fact.kind, norm))
                if value is None:
                    value = credit_model.points_for(fact.kind, norm, config)
                    points[(fact.kind, norm)] = value
                if row is None:
                    writer.insert(case.id, fact, value)
                else:
                    writer.update(row[0], fact, value)
                touched.add(fact.merchant_id)
        writer.write()
    writer.write(final=True)
    _expire(CreditEvent)
    return {
        "cases": cases,
        "inserted": writer.inserted,
        "updated": writer.updated,
        "deleted": writer.deleted,
        "touched": touched,
    }


def _merchant_kinds() -> Sequence[Any]:
    return db.session.execute(db.select(Merchant.id, Merchant.kind)).all()


def _chunks(
    case_ids: Iterable[int] | None,
) -> Iterator[tuple[Sequence[Any], dict[int, list[Any]], dict[int, dict]]]:
    """Yield cases in id order, CHUNK at a time, with their timelines and their
    ledger rows (``{case_id: {(merchant_id, kind): (id, occurred_at)}}``)."""
    if case_ids is not None:
        wanted = sorted(set(case_ids))
        for start in range(0, len(wanted), CHUNK):
            ids = wanted[start : start + CHUNK]
            chunk = _cases(ids=ids)
            if chunk:
                yield chunk, _timelines(ids=ids), _ledger_rows(ids=ids)
        return
    after = 0
    while True:
        chunk = _cases(after=after)
        if not chunk:
            return
        low, high = chunk[0].id, chunk[-1].id
        yield chunk, _timelines(low=low, high=high), _ledger_rows(low=low, high=high)
        after = high


def _cases(
    *, ids: Sequence[int] | None = None, after: int | None = None
) -> list[_CaseRow]:
    """Return the chunk's cases: ``ids``, or the next CHUNK ids after ``after``."""
    driver = _driver()
    if driver is not None:  # plain columns: the driver's values are the ORM's
        where = "id = ANY(%s)" if ids is not None else "id > %s"
        with driver.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(CASE_COLUMNS)} FROM {Case.__tablename__} "
                f"WHERE {where} ORDER BY id LIMIT %s",
                (list(ids) if ids is not None else after, CHUNK),
            )
            return list(map(_CaseRow._make, cursor.fetchall()))
    query = db.select(*(getattr(Case, name) for name in CASE_COLUMNS))
    if ids is not None:
        query = query.where(Case.id.in_(ids))
    else:
        query = query.where(Case.id > after)
    query = query.order_by(Case.id).limit(CHUNK)
    return [_CaseRow(*row) for row in db.session.execute(query)]


def _timelines(
    *,
    ids: Sequence[int] | None = None,
    low: int | None = None,
    high: int | None = None,
) -> dict[int, list[Any]]:
    """Return the events of a chunk's cases, oldest first, by case id."""
    driver = _driver()
    if driver is not None:
        return _timelines_postgresql(driver, ids=ids, low=low, high=high)
    where = (
        CaseEvent.case_id.in_(ids)
        if ids is not None
        else CaseEvent.case_id.between(low, high)
    )
    query = (
        db.select(CaseEvent.case_id, *(getattr(CaseEvent, c) for c in EVENT_COLUMNS))
        .where(where)
        .order_by(CaseEvent.case_id, CaseEvent.seq)
    )
    out: dict[int, list[Any]] = defaultdict(list)
    for row in db.session.execute(query):
        out[row.case_id].append(row)
    return out


def _timelines_postgresql(
    driver: Any,
    *,
    ids: Sequence[int] | None = None,
    low: int | None = None,
    high: int | None = None,
) -> dict[int, list[Any]]:
    """The same on PostgreSQL, through the driver's cursor.

    At millions of events the decoding is the cost: psycopg's tuples, the
    chunk's ``data`` decoded by one ``json.loads`` call, the time kept as
    stored and made aware when read (:class:`_Event`): a third of the cost of
    SQLAlchemy rows.
    """
    columns = ", ".join(f"{c}::text" if c == "data" else c for c in EVENT_COLUMNS)
    where = "case_id = ANY(%s)" if ids is not None else "case_id BETWEEN %s AND %s"
    with driver.cursor() as cursor:
        cursor.execute(
            f"SELECT case_id, {columns} FROM {CaseEvent.__tablename__} "
            f"WHERE {where} ORDER BY case_id, seq",
            (list(ids),) if ids is not None else (low, high),
        )
        rows = cursor.fetchall()
    datas = json.loads("[" + ",".join(r[-1] or "null" for r in rows) + "]")
    new = tuple.__new__
    out: dict[int, list[Any]] = {}
    current, events = None, []
    for row, data in zip(rows, datas, strict=True):
        if row[0] != current:
            current, events = row[0], []
            out[current] = events
        events.append(new(_Event, (*row[1:-1], data)))
    return out


def _ledger_rows(
    *,
    ids: Sequence[int] | None = None,
    low: int | None = None,
    high: int | None = None,
) -> dict[int, dict[tuple[int, str], tuple[int, datetime]]]:
    """Return the chunk's ledger rows: ``{case_id: {(merchant_id, kind): (id,
    occurred_at)}}``."""
    out: dict[int, dict[tuple[int, str], tuple[int, datetime]]] = defaultdict(dict)
    driver = _driver()
    if driver is not None:
        where = "case_id = ANY(%s)" if ids is not None else "case_id BETWEEN %s AND %s"
        with driver.cursor() as cursor:
            cursor.execute(
                "SELECT id, merchant_id, case_id, kind, occurred_at "
                f"FROM {CreditEvent.__tablename__} WHERE {where}",
                (list(ids),) if ids is not None else (low, high),
            )
            for row_id, merchant_id, case_id, kind, at in cursor:
                out[case_id][(merchant_id, kind)] = (row_id, at.replace(tzinfo=UTC))
        return out
    query = db.select(
        CreditEvent.id,
        CreditEvent.merchant_id,
        CreditEvent.case_id,
        CreditEvent.kind,
        CreditEvent.occurred_at,
    ).where(
        CreditEvent.case_id.in_(ids)
        if ids is not None
        else CreditEvent.case_id.between(low, high)
    )
    for row_id, merchant_id, case_id, kind, occurred_at in db.session.execute(query):
        out[case_id][(merchant_id, kind)] = (row_id, occurred_at)
    return out


class _LedgerWriter:
    """Collects the ledger's INSERTs, UPDATEs and DELETEs; writes them in batches."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.inserts: list[tuple[Any, ...]] = []
        self.updates: list[dict[str, Any]] = []
        self.deletes: list[int] = []
        self.inserted = self.updated = self.deleted = 0

    def insert(self, case_id: int, fact: ledger.Fact, points: int) -> None:
        self.inserts.append(
            (
                fact.merchant_id,
                case_id,
                fact.kind,
                points,
                fact.occurred_at,
                fact.data,
                fact.lists,
                self.now,
            )
        )

    def update(self, row_id: int, fact: ledger.Fact, points: int) -> None:
        # As sync_case: the repair (repaired_at, repair_id) stays.
        self.updates.append(
            {
                "row_id": row_id,
                "new_points": points,
                "new_occurred_at": fact.occurred_at,
                "new_data": fact.data,
                "new_lists": fact.lists,
            }
        )

    def delete(self, row_id: int) -> None:
        self.deletes.append(row_id)

    def write(self, *, final: bool = False) -> None:
        """Write what has gathered (everything when ``final``)."""
        table = CreditEvent.__table__
        if self.deletes and (final or len(self.deletes) >= WRITE_BATCH):
            for start in range(0, len(self.deletes), WRITE_BATCH):
                ids = self.deletes[start : start + WRITE_BATCH]
                db.session.execute(table.delete().where(table.c.id.in_(ids)))
            self.deleted += len(self.deletes)
            self.deletes = []
        if self.updates and (final or len(self.updates) >= WRITE_BATCH):
            db.session.execute(
                table.update()
                .where(table.c.id == bindparam("row_id"))
                .values(
                    points=bindparam("new_points"),
                    occurred_at=bindparam("new_occurred_at"),
                    data=bindparam("new_data"),
                    lists=bindparam("new_lists"),
                ),
                self.updates,
            )
            self.updated += len(self.updates)
            self.updates = []
        if self.inserts and (final or len(self.inserts) >= WRITE_BATCH):
            _insert_events(self.inserts)
            self.inserted += len(self.inserts)
            self.inserts = []


def _insert_events(rows: list[tuple[Any, ...]]) -> None:
    """INSERT ledger rows (:data:`INSERT_COLUMNS` tuples).

    On PostgreSQL with ``COPY FROM STDIN`` on the session's connection, the
    values as the column types store them (naive UTC, JSON text); elsewhere one
    executemany through the column types.
    """
    driver = _driver()
    if driver is None:
        db.session.execute(
            CreditEvent.__table__.insert(),
            [dict(zip(INSERT_COLUMNS, row, strict=True)) for row in rows],
        )
        return
    dumps = json.dumps
    sql = f"COPY {CreditEvent.__tablename__} ({', '.join(INSERT_COLUMNS)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(sql) as copy:
        for merchant_id, case_id, kind, points, at, data, lists, created in rows:
            copy.write_row(
                (
                    merchant_id,
                    case_id,
                    kind,
                    points,
                    at.astimezone(UTC).replace(tzinfo=None),
                    dumps(data),
                    lists,
                    created.astimezone(UTC).replace(tzinfo=None),
                )
            )


def _expire(model: type) -> None:
    """Forget loaded instances of ``model``: the bulk writes bypassed them."""
    session = db.session()
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model):
            session.expire(obj)


# Standings --------------------------------------------------------------------


def _side() -> Any:
    """The merchant a case counts for: its own, or an unregistered shop's platform
    (the grouping form of ``ledger._side_cases``)."""
    return func.coalesce(Case.merchant_id, Case.platform_id)


def refresh_standings(
    *,
    now: datetime,
    also: Iterable[int] = (),
    config: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Refresh the standing of every merchant with a ledger or a standing (and of
    ``also``), as :func:`~mediation.credit.ledger.refresh_standing` would.

    :return: ``merchants`` refreshed, ``standings_written`` (new or changed rows)
        and ``changes`` (feed rows appended).
    """
    with _collector_paused():
        return _refresh_standings(now=now, also=also, config=config)


def _refresh_standings(
    *, now: datetime, also: Iterable[int], config: dict[str, Any] | None
) -> dict[str, int]:
    config = config or ledger.credit_config()
    session = db.session
    session.flush()
    stored = {
        row.merchant_id: row
        for row in session.execute(
            db.select(
                CreditStanding.merchant_id,
                CreditStanding.score_tenths,
                CreditStanding.grade,
                CreditStanding.listed,
                CreditStanding.trusted,
                CreditStanding.next_change_at,
            )
        )
    }
    ratings: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for side, closed_at, score in session.execute(
        db.select(_side(), Case.closed_at, Case.satisfaction).where(
            Case.satisfaction.is_not(None), Case.closed_at.is_not(None)
        )
    ):
        ratings[side].append((closed_at, score))
    resolved = dict(
        session.execute(
            db.select(_side(), func.count(Case.id))
            .where(Case.status == lc.RESOLVED)
            .group_by(_side())
        ).all()
    )
    standing = credit_model.standing

    def compute(merchant_id: int, entries: list[Any]) -> credit_model.Standing:
        return standing(
            entries,
            now=now,
            model=config,
            ratings=ratings.get(merchant_id, ()),
            resolved_cases=resolved.get(merchant_id, 0),
        )

    results: dict[int, credit_model.Standing] = {}
    for merchant_id, entries in _stream_ledger():
        results[merchant_id] = compute(merchant_id, entries)
    for merchant_id in set(stored) | set(also):
        if merchant_id not in results:
            results[merchant_id] = compute(merchant_id, [])

    writes: list[dict[str, Any]] = []
    changes: list[CreditChange] = []
    compared = ("score_tenths", "grade", "listed", "trusted", "next_change_at")
    for merchant_id in sorted(results):
        result = results[merchant_id]
        row = stored.get(merchant_id)
        values = {
            "merchant_id": merchant_id,
            "score_tenths": result.score_tenths,
            "grade": result.grade,
            "listed": result.listed,
            "trusted": result.trusted,
            "next_change_at": result.next_change_at,
            "updated_at": now,
        }
        if row is None or any(getattr(row, c) != values[c] for c in compared):
            writes.append(values)
        before = ledger._snapshot(row)
        after = {
            "score": result.score_tenths / 10,
            "grade": result.grade,
            "listed": result.listed,
            "trusted": result.trusted,
        }
        for kind in ledger._changes(before, after):
            changes.append(
                CreditChange(
                    merchant_id=merchant_id, kind=kind, old=before, new=after, at=now
                )
            )
    if stored:  # every stored standing was computed now, changed or not
        session.execute(CreditStanding.__table__.update().values(updated_at=now))
    _upsert_standings(writes)
    _expire(CreditStanding)
    _append_changes(changes)
    return {
        "merchants": len(results),
        "standings_written": len(writes),
        "changes": len(changes),
    }


def _append_changes(changes: list[CreditChange]) -> None:
    """Append the feed rows (through the ORM: it registers the feed writer, and
    the listeners get persistent rows), then tell every listener, in order."""
    if not changes:
        return
    db.session.add_all(changes)
    db.session.flush()
    for change in changes:
        for listener in ledger.change_listeners:
            listener(change)


def _stream_ledger() -> Iterator[tuple[int, list[_EntryRow]]]:
    """Yield ``(merchant_id, entries)`` for each merchant with a ledger, in order."""
    query = db.select(
        CreditEvent.merchant_id,
        CreditEvent.kind,
        CreditEvent.points,
        CreditEvent.occurred_at,
        CreditEvent.lists,
        CreditEvent.repaired_at.is_not(None),
        CreditEvent.id,
    ).order_by(CreditEvent.merchant_id, CreditEvent.occurred_at, CreditEvent.id)
    driver = _driver()
    if driver is None:
        rows = db.session.execute(query, execution_options={"yield_per": STREAM_BATCH})
        for merchant_id, group in itertools.groupby(rows, key=lambda r: r[0]):
            yield merchant_id, [_EntryRow(*row[1:]) for row in group]
        return
    # A server-side cursor in the same transaction; times made aware as the
    # ORM makes them.
    compiled = query.compile(dialect=db.session.get_bind().dialect)
    with driver.cursor(name="credit_ledger_stream") as cursor:
        cursor.itersize = STREAM_BATCH
        cursor.execute(str(compiled), compiled.params)
        new = tuple.__new__
        for merchant_id, group in itertools.groupby(cursor, key=lambda r: r[0]):
            yield (
                merchant_id,
                [
                    new(
                        _EntryRow,
                        (kind, points, at.replace(tzinfo=UTC), lists, repaired, id_),
                    )
                    for _, kind, points, at, lists, repaired, id_ in group
                ],
            )


def _upsert_standings(rows: list[dict[str, Any]]) -> None:
    """INSERT or UPDATE standings (a live update may have added one meanwhile)."""
    if not rows:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    for start in range(0, len(rows), WRITE_BATCH):
        statement = insert(CreditStanding.__table__)
        statement = statement.on_conflict_do_update(
            index_elements=["merchant_id"],
            set_={
                name: statement.excluded[name]
                for name in (
                    "score_tenths",
                    "grade",
                    "listed",
                    "trusted",
                    "next_change_at",
                    "updated_at",
                )
            },
        )
        db.session.execute(statement, rows[start : start + WRITE_BATCH])
