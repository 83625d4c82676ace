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

Of a timeline, only the events ``derive`` can read are fetched
(:func:`mediation.credit.ledger.derive_reads`, declared next to ``derive`` and
tested to give the same facts): fewer than half of them, and never the filing's
payload.

On PostgreSQL, when the transaction has written nothing yet, a second
connection reads the chunks in the transaction's own snapshot
(``pg_export_snapshot``) one chunk ahead, in a thread, while this one derives
and streams the new rows into one ``COPY``: the database's work (the reads, the
inserts with their key checks and indexes) overlaps with Python's. Once the
transaction has written, a second connection could not see its writes, so
everything goes through the session's connection, one step after the other.

The result is the one :func:`~mediation.credit.ledger.sync_case` per case and
:func:`~mediation.credit.ledger.refresh_standing` per merchant would give (tested
in ``tests/test_credit_bulk.py``): a row whose fact kept its time stays as it is
(with its repair), a moved fact updates its row, a vanished one goes; ledger
rows of no case (a mass-complaint alert) are left alone; every merchant with a
ledger or a standing is refreshed; the feed gets one
:class:`~mediation.credit.models.CreditChange` per change, in merchant order,
and every :data:`~mediation.credit.ledger.change_listeners` callable sees it.

Everything is written in the session's transaction. Services flush, never
commit: the caller commits.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, bindparam, func, or_
from sqlalchemy.orm import make_transient_to_detached

from mediation.cases import lifecycle as lc
from mediation.cases.models import Case, CaseEvent
from mediation.credit import ledger
from mediation.credit import model as credit_model
from mediation.credit.models import CreditChange, CreditEvent, CreditStanding
from mediation.extensions import db
from mediation.merchants.models import Merchant

logger = logging.getLogger(__name__)
BACKSLASH = "\\"

#: Cases per round trip (their timelines and ledger rows come with them).
CHUNK = 5000
#: Rows per INSERT (SQLite) / DELETE / UPDATE batch.
WRITE_BATCH = 5000
#: Ledger rows fetched at a time while streaming it for the standings.
STREAM_BATCH = 20000
#: Read ahead on other connections when the transaction allows it (off: one
#: connection, one step after the other; the result is the same), and on how
#: many (each reads a chunk of its own).
READ_AHEAD = True
READERS = 2

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


#: A chunk: its cases, their timelines (``{case_id: [event, ...]}``) and their
#: ledger rows (``{case_id: {(merchant_id, kind): (id, occurred_at)}}``).
Chunk = tuple[
    Sequence[_CaseRow],
    dict[int, list[Any]],
    dict[int, dict[tuple[int, str], tuple[int, datetime]]],
]


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
    with _collector_paused(), _Reader.open() as reader:
        synced = _sync_ledger(now=now, case_ids=case_ids, config=config, reader=reader)
        refreshed = _refresh_standings(
            now=now, also=synced.pop("touched"), config=config, reader=reader
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


class _Reader:
    """Reads on other PostgreSQL connections, in the session transaction's
    snapshot, each in its own thread (a lane): :meth:`submit` runs a function of
    a lane's psycopg connection there and returns its future. A lane runs its
    tasks one at a time, in order; the lanes run side by side.

    Only when the transaction has written nothing yet: the other connections
    see what the transaction saw when it began, not what it wrote.
    """

    def __init__(self, connections: list[Any]) -> None:
        self._connections = connections  # SQLAlchemy's pooled DB-API connections
        self._lanes = [
            ThreadPoolExecutor(1, thread_name_prefix=f"credit-reader-{n}")
            for n in range(len(connections))
        ]

    @property
    def lanes(self) -> int:
        return len(self._lanes)

    @classmethod
    @contextlib.contextmanager
    def open(cls) -> Iterator[_Reader | None]:
        """Yield a reader, or None where reading ahead cannot be done (SQLite,
        a transaction that wrote already, :data:`READ_AHEAD` off)."""
        driver = _driver()
        if driver is None or not READ_AHEAD:
            yield None
            return
        with driver.cursor() as cursor:
            cursor.execute(
                "SELECT pg_current_xact_id_if_assigned() IS NULL, pg_export_snapshot()"
            )
            clean, snapshot = cursor.fetchone()
        if not clean:
            yield None
            return
        from psycopg import IsolationLevel, sql

        connections: list[Any] = []
        reader = None
        try:
            for _ in range(READERS):
                connection = db.engine.raw_connection()
                connections.append(connection)
                other = connection.driver_connection
                other.rollback()
                other.isolation_level = IsolationLevel.REPEATABLE_READ
                other.read_only = True
                # The first statement of its transaction: our snapshot.
                other.execute(
                    sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot))
                )
            reader = cls(connections)
            yield reader
        finally:
            if reader is not None:
                for lane in reader._lanes:
                    lane.shutdown(wait=True, cancel_futures=True)
            for connection in connections:
                other = connection.driver_connection
                with contextlib.suppress(Exception):
                    other.rollback()
                    other.isolation_level = None
                    other.read_only = None
                connection.close()

    def submit(self, work: Callable[[Any], Any], lane: int = 0) -> Future:
        """Run ``work(connection)`` in a lane (taken modulo the lanes)."""
        lane %= len(self._lanes)
        return self._lanes[lane].submit(work, self._connections[lane].driver_connection)


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
    db.session.flush()
    with _collector_paused(), _Reader.open() as reader:
        return _sync_ledger(now=now, case_ids=case_ids, config=config, reader=reader)


def _sync_ledger(
    *,
    now: datetime,
    case_ids: Iterable[int] | None,
    config: dict[str, Any] | None,
    reader: _Reader | None = None,
) -> dict[str, Any]:
    config = config or ledger.credit_config()
    norms = {row.id: ledger.norm_of(row) for row in _merchant_kinds()}
    blank = ledger.norm_of(None)
    points: dict[tuple[str, str], int] = {}
    touched: set[int] = set()
    cases = 0
    derive = ledger.derive
    with _LedgerWriter(now, _driver()) as writer:
        insert, update, delete = writer.insert, writer.update, writer.delete
        for chunk, timelines, existing in _chunks(case_ids, reader):
            cases += len(chunk)
            for case in chunk:
                facts = derive(case, timelines.get(case.id, ()))
                have = existing.get(case.id)
                if have is None:
                    if not facts:
                        continue
                    have = {}
                elif len(have) == len(facts):  # the usual: nothing to change
                    for fact in facts:
                        row = have.get((fact.merchant_id, fact.kind))
                        if row is None or row[1] != fact.occurred_at:
                            break
                    else:
                        continue
                # derive gives one fact per (merchant, kind)
                wanted = {(f.merchant_id, f.kind): f for f in facts}
                for key, (row_id, _) in have.items():
                    if key not in wanted:
                        delete(row_id)
                        touched.add(key[0])
                for key, fact in wanted.items():
                    row = have.get(key)
                    if row is not None and row[1] == fact.occurred_at:
                        continue
                    norm = norms.get(fact.merchant_id) or blank
                    value = points.get((fact.kind, norm))
                    if value is None:
                        value = credit_model.points_for(fact.kind, norm, config)
                        points[(fact.kind, norm)] = value
                    if row is None:
                        insert(case.id, fact, value)
                    else:
                        update(row[0], fact, value)
                    touched.add(fact.merchant_id)
            if reader is None:
                writer.flush()  # the next chunk is read on the same connection
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


def _chunks(case_ids: Iterable[int] | None, reader: _Reader | None) -> Iterator[Chunk]:
    """Yield cases in id order, CHUNK ids at a time, with their timelines and
    their ledger rows; with a reader, the next chunks are read (one per lane)
    while this one is used."""
    driver = _driver()
    if case_ids is not None:
        wanted = sorted(set(case_ids))
        ranges: list[dict[str, Any]] = [
            {"ids": wanted[start : start + CHUNK]}
            for start in range(0, len(wanted), CHUNK)
        ]
    else:
        # Id ranges, known in advance, so several can be read at once.
        if driver is not None:
            with driver.cursor() as cursor:
                cursor.execute(f"SELECT min(id), max(id) FROM {Case.__tablename__}")
                first, last = cursor.fetchone()
        else:
            first, last = db.session.execute(
                db.select(func.min(Case.id), func.max(Case.id))
            ).one()
        ranges = (
            []
            if first is None
            else [
                {"low": low, "high": min(low + CHUNK - 1, last)}
                for low in range(first, last + 1, CHUNK)
            ]
        )

    def read(driver: Any, where: dict[str, Any]) -> Chunk:
        return (
            _cases(driver, **where),
            _timelines(driver, **where),
            _ledger_rows(driver, **where),
        )

    if reader is None:
        for where in ranges:
            chunk = read(driver, where)
            if chunk[0]:
                yield chunk
        return
    ahead = [
        reader.submit(lambda driver, w=where: read(driver, w), lane=n)
        for n, where in enumerate(ranges[: reader.lanes])
    ]
    for n in range(len(ranges)):
        chunk = ahead.pop(0).result()
        following = n + reader.lanes
        if following < len(ranges):
            ahead.append(
                reader.submit(
                    lambda driver, w=ranges[following]: read(driver, w), lane=following
                )
            )
        if chunk[0]:
            yield chunk


def _cases(
    driver: Any | None,
    *,
    ids: Sequence[int] | None = None,
    low: int | None = None,
    high: int | None = None,
) -> list[_CaseRow]:
    """Return the chunk's cases: ``ids``, or those from ``low`` to ``high``."""
    if driver is not None:  # plain columns: the driver's values are the ORM's
        where = "id = ANY(%s)" if ids is not None else "id BETWEEN %s AND %s"
        with driver.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(CASE_COLUMNS)} FROM {Case.__tablename__} "
                f"WHERE {where} ORDER BY id",
                (list(ids),) if ids is not None else (low, high),
            )
            return list(map(_CaseRow._make, cursor.fetchall()))
    query = db.select(*(getattr(Case, name) for name in CASE_COLUMNS))
    if ids is not None:
        query = query.where(Case.id.in_(ids))
    else:
        query = query.where(Case.id.between(low, high))
    return [_CaseRow(*row) for row in db.session.execute(query.order_by(Case.id))]


def _events_of(
    actions: frozenset[str], entering: frozenset[str]
) -> ColumnElement[bool]:
    """The SQL condition of the events whose action is in ``actions`` or that
    enter a status of ``entering`` (a real change of status, or the first)."""
    return or_(
        CaseEvent.action.in_(sorted(actions)),
        and_(
            CaseEvent.to_status.in_(sorted(entering)),
            or_(
                CaseEvent.from_status.is_(None),
                CaseEvent.from_status != CaseEvent.to_status,
            ),
        ),
    )


def derive_reads() -> ColumnElement[bool]:
    """Return the SQL condition of the events :func:`~mediation.credit.ledger.derive`
    can read (:func:`mediation.credit.ledger.derive_reads`): the rest of a
    timeline stays in the database."""
    return _events_of(ledger.DERIVE_ACTIONS, ledger.DERIVE_ENTERING)


def derive_reads_data() -> ColumnElement[bool]:
    """Return the SQL condition of the events whose ``data``
    :func:`~mediation.credit.ledger.derive` reads
    (:func:`mediation.credit.ledger.derive_reads_data`)."""
    return _events_of(ledger.DERIVE_DATA_ACTIONS, ledger.DERIVE_DATA_ENTERING)


def _postgresql_sql(clause: ColumnElement[Any]) -> str:
    """A condition as PostgreSQL text with its constants inlined (the ledger's
    own names, never input)."""
    from sqlalchemy.dialects import postgresql

    return str(
        clause.compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
    )


def _timelines(
    driver: Any | None,
    *,
    ids: Sequence[int] | None = None,
    low: int | None = None,
    high: int | None = None,
) -> dict[int, list[Any]]:
    """Return the events ``derive`` can read of a chunk's cases, oldest first,
    by case id."""
    if driver is not None:
        return _timelines_postgresql(driver, ids=ids, low=low, high=high)
    where = (
        CaseEvent.case_id.in_(ids)
        if ids is not None
        else CaseEvent.case_id.between(low, high)
    )
    query = (
        db.select(CaseEvent.case_id, *(getattr(CaseEvent, c) for c in EVENT_COLUMNS))
        .where(where, derive_reads())
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
    # The data of the events whose data derive reads (the rest stays unread).
    data = f"CASE WHEN {_postgresql_sql(derive_reads_data())} THEN data::text END"
    columns = ", ".join(data if c == "data" else c for c in EVENT_COLUMNS)
    where = "case_id = ANY(%s)" if ids is not None else "case_id BETWEEN %s AND %s"
    with driver.cursor() as cursor:
        cursor.execute(
            f"SELECT case_id, {columns} FROM {CaseEvent.__tablename__} "
            f"WHERE {where} AND ({_postgresql_sql(derive_reads())}) "
            "ORDER BY case_id, seq",
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
    driver: Any | None,
    *,
    ids: Sequence[int] | None = None,
    low: int | None = None,
    high: int | None = None,
) -> dict[int, dict[tuple[int, str], tuple[int, datetime]]]:
    """Return the chunk's ledger rows: ``{case_id: {(merchant_id, kind): (id,
    occurred_at)}}`` (rows of no case are not read, so never touched)."""
    out: dict[int, dict[tuple[int, str], tuple[int, datetime]]] = defaultdict(dict)
    if driver is not None:
        where = "case_id = ANY(%s)" if ids is not None else "case_id BETWEEN %s AND %s"
        with driver.cursor() as cursor:
            cursor.execute(
                "SELECT id, merchant_id, case_id, kind, occurred_at "
                f"FROM {CreditEvent.__tablename__} WHERE {where}",
                (list(ids),) if ids is not None else (low, high),
            )
            rows = cursor.fetchall()
        for row_id, merchant_id, case_id, kind, at in rows:
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
    """Writes the ledger's INSERTs, UPDATEs and DELETEs in batches.

    On PostgreSQL new rows stream into one ``COPY`` that stays open until
    :meth:`flush` (the database inserts while Python derives); elsewhere they
    go in executemany batches. Updates and deletes wait for a flush (they
    touch rows that exist, new rows never conflict with them).
    """

    def __init__(self, now: datetime, driver: Any | None) -> None:
        self.now = now
        self.driver = driver
        self.inserts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.deletes: list[int] = []
        self.inserted = self.updated = self.deleted = 0
        #: New rows as lines of COPY's text format (PostgreSQL).
        self.lines: list[str] = []
        self._copy: Any = None
        self._open = contextlib.ExitStack()
        self._created = _naive(now).isoformat()

    def __enter__(self) -> _LedgerWriter:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if error is None:
            self.flush()
        else:  # abandon the COPY: the transaction is lost anyway
            self._open.__exit__(kind, error, trace)

    def insert(self, case_id: int, fact: ledger.Fact, points: int) -> None:
        self.inserted += 1
        if self.driver is None:
            self.inserts.append(
                dict(
                    zip(
                        INSERT_COLUMNS,
                        (
                            fact.merchant_id,
                            case_id,
                            fact.kind,
                            points,
                            fact.occurred_at,
                            fact.data,
                            fact.lists,
                            self.now,
                        ),
                        strict=True,
                    )
                )
            )
            if len(self.inserts) >= WRITE_BATCH:
                self.flush()
            return
        # A line of COPY's text format, the values as the column types store
        # them (naive UTC, JSON text). JSON text has no tab, newline or carriage
        # return (``json.dumps`` escapes them), but backslashes: COPY's escape.
        self.lines.append(
            f"{fact.merchant_id}\t{case_id}\t{fact.kind}\t{points}\t"
            f"{_naive(fact.occurred_at).isoformat()}\t"
            f"{json.dumps(fact.data).replace(BACKSLASH, BACKSLASH * 2)}\t"
            f"{'t' if fact.lists else 'f'}\t{self._created}\n"
        )
        if len(self.lines) >= WRITE_BATCH:
            self._send()

    def _send(self) -> None:
        """Send the gathered lines into the COPY (opened when needed)."""
        if self._copy is None:
            self._open = contextlib.ExitStack()
            cursor = self._open.enter_context(self.driver.cursor())
            sql = (
                f"COPY {CreditEvent.__tablename__} ({', '.join(INSERT_COLUMNS)}) "
                "FROM STDIN"
            )
            self._copy = self._open.enter_context(cursor.copy(sql))
        self._copy.write("".join(self.lines))
        self.lines = []

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
        if len(self.updates) >= WRITE_BATCH:
            self.flush()

    def delete(self, row_id: int) -> None:
        self.deletes.append(row_id)
        if len(self.deletes) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        """End the COPY and write everything gathered."""
        if self.lines:
            self._send()
        if self._copy is not None:
            self._copy = None
            self._open.close()
        table = CreditEvent.__table__
        for start in range(0, len(self.deletes), WRITE_BATCH):
            ids = self.deletes[start : start + WRITE_BATCH]
            db.session.execute(table.delete().where(table.c.id.in_(ids)))
        self.deleted += len(self.deletes)
        self.deletes = []
        if self.updates:
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
        if self.inserts:
            db.session.execute(table.insert(), self.inserts)
            self.inserts = []


def _naive(moment: datetime) -> datetime:
    """Return an aware moment as the database stores it (naive UTC)."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _expire(model: type) -> None:
    """Forget loaded instances of ``model``: the bulk writes bypassed them."""
    session = db.session()
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model):
            session.expire(obj)


# Standings --------------------------------------------------------------------


def _side() -> Any:
    """The merchant a case counts for: its own, or an unregistered shop's platform
    (the grouping form of ``ledger.side_cases``)."""
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
    db.session.flush()
    with _collector_paused(), _Reader.open() as reader:
        return _refresh_standings(now=now, also=also, config=config, reader=reader)


class _Inputs(NamedTuple):
    """What the standings need besides the ledger."""

    #: ``{merchant_id: row}`` of the stored standings.
    stored: dict[int, Any]
    ratings: dict[int, list[tuple[datetime, int]]]
    resolved: dict[int, int]


def _standing_inputs(driver: Any | None) -> _Inputs:
    """Read the stored standings, the ratings and the resolved cases by merchant."""
    columns = (
        CreditStanding.merchant_id,
        CreditStanding.score_tenths,
        CreditStanding.grade,
        CreditStanding.listed,
        CreditStanding.trusted,
        CreditStanding.next_change_at,
        CreditStanding.explanation,
    )
    ratings: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    if driver is None:
        session = db.session
        stored = {row.merchant_id: row for row in session.execute(db.select(*columns))}
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
        return _Inputs(stored, ratings, resolved)
    # Through the driver, as the ORM would give them: aware UTC times, JSON
    # decoded (psycopg decodes ``json`` columns with ``json.loads``).
    with driver.cursor() as cursor:
        cursor.execute(
            "SELECT merchant_id, score_tenths, grade, listed, trusted, "
            f"next_change_at, explanation FROM {CreditStanding.__tablename__}"
        )
        stored = {
            row[0]: _StoredStanding(
                *row[:5], row[5] and row[5].replace(tzinfo=UTC), row[6]
            )
            for row in cursor.fetchall()
        }
        cursor.execute(
            "SELECT coalesce(merchant_id, platform_id), closed_at, satisfaction "
            f"FROM {Case.__tablename__} "
            "WHERE satisfaction IS NOT NULL AND closed_at IS NOT NULL"
        )
        for side, closed_at, score in cursor.fetchall():
            ratings[side].append((closed_at.replace(tzinfo=UTC), score))
        cursor.execute(
            "SELECT coalesce(merchant_id, platform_id), count(*) "
            f"FROM {Case.__tablename__} WHERE status = %s GROUP BY 1",
            (lc.RESOLVED,),
        )
        resolved = dict(cursor.fetchall())
    return _Inputs(stored, ratings, resolved)


class _StoredStanding(NamedTuple):
    merchant_id: int
    score_tenths: int
    grade: str
    listed: bool
    trusted: bool
    next_change_at: datetime | None
    explanation: dict[str, Any] | None


def _refresh_standings(
    *,
    now: datetime,
    also: Iterable[int],
    config: dict[str, Any] | None,
    reader: _Reader | None = None,
) -> dict[str, int]:
    config = config or ledger.credit_config()
    session = db.session
    session.flush()
    if reader is not None:
        # Read on the other connection while this one starts the ledger's stream.
        reading = reader.submit(_standing_inputs)
        ledgers = _stream_ledger()
        first = next(ledgers, None)
        ledgers = itertools.chain([first] if first else [], ledgers)
        stored, ratings, resolved = reading.result()
    else:
        stored, ratings, resolved = _standing_inputs(_driver())
        ledgers = _stream_ledger()
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
    for merchant_id, entries in ledgers:
        results[merchant_id] = compute(merchant_id, entries)
    for merchant_id in set(stored) | set(also):
        if merchant_id not in results:
            results[merchant_id] = compute(merchant_id, [])

    writes: list[dict[str, Any]] = []
    changes: list[CreditChange] = []
    digest = ledger.model_digest(config)
    explanation_of = ledger.explanation_of
    snapshot, changed = ledger._snapshot, ledger._changes
    for merchant_id in sorted(results):
        result = results[merchant_id]
        row = stored.get(merchant_id)
        explanation = explanation_of(result, digest)
        if (
            row is None
            or row.score_tenths != result.score_tenths
            or row.grade != result.grade
            or row.listed != result.listed
            or row.trusted != result.trusted
            or row.next_change_at != result.next_change_at
            or row.explanation != explanation
        ):
            writes.append(
                {
                    "merchant_id": merchant_id,
                    "score_tenths": result.score_tenths,
                    "grade": result.grade,
                    "listed": result.listed,
                    "trusted": result.trusted,
                    "next_change_at": result.next_change_at,
                    "explanation": explanation,
                    "updated_at": now,
                }
            )
        if (
            row is not None
            and row.grade == result.grade
            and row.listed == result.listed
            and row.trusted == result.trusted
        ):
            continue  # nothing for the feed
        before = snapshot(row)
        after = {
            "score": result.score_tenths / 10,
            "grade": result.grade,
            "listed": result.listed,
            "trusted": result.trusted,
        }
        for kind in changed(before, after):
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
    """Append the feed rows, then tell every listener, in order.

    One multi-row INSERT (the feed writer registered first, as
    :mod:`mediation.credit.feed` asks of Core INSERTs) returning the ids; the
    rows then join the session as persistent objects, as if loaded, so the
    listeners get what a flush would have given them (an ORM flush of tens of
    thousands of rows costs several times more).
    """
    if not changes:
        return
    from mediation.credit import feed

    session = db.session
    feed.register_writer(session)
    columns = ("merchant_id", "kind", "old", "new", "at")
    ids = session.scalars(
        CreditChange.__table__.insert().returning(
            CreditChange.__table__.c.id, sort_by_parameter_order=True
        ),
        [{name: getattr(change, name) for name in columns} for change in changes],
    ).all()
    for change, change_id in zip(changes, ids, strict=True):
        change.id = change_id
        make_transient_to_detached(change)
        session.add(change)
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
    # A server-side cursor in the same transaction, fetched a batch at a time
    # (iterating it row by row costs a Python call per row), the next batch
    # fetched in a thread while this one is used (the connection is free
    # meanwhile: the database sorts and sends while the model computes); times
    # made aware as the ORM makes them.
    compiled = query.compile(dialect=db.session.get_bind().dialect)
    new = tuple.__new__
    with (
        driver.cursor(name="credit_ledger_stream") as cursor,
        ThreadPoolExecutor(1, thread_name_prefix="credit-stream") as fetcher,
    ):
        cursor.execute(str(compiled), compiled.params)

        def rows() -> Iterator[tuple[Any, ...]]:
            ahead = fetcher.submit(cursor.fetchmany, STREAM_BATCH)
            while batch := ahead.result():
                ahead = fetcher.submit(cursor.fetchmany, STREAM_BATCH)
                yield from batch

        for merchant_id, group in itertools.groupby(rows(), key=lambda r: r[0]):
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


#: The standings' columns an upsert writes (in this order).
STANDING_COLUMNS = (
    "merchant_id",
    "score_tenths",
    "grade",
    "listed",
    "trusted",
    "next_change_at",
    "explanation",
    "updated_at",
)


def _upsert_standings(rows: list[dict[str, Any]]) -> None:
    """INSERT or UPDATE standings (a live update may have added one meanwhile).

    On PostgreSQL through ``COPY`` into a temporary table, then one
    ``INSERT ... SELECT ... ON CONFLICT``; elsewhere in executemany batches.
    """
    if not rows:
        return
    driver = _driver()
    if driver is not None:
        _upsert_standings_postgresql(driver, rows)
        return
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
                    "explanation",
                    "updated_at",
                )
            },
        )
        db.session.execute(statement, rows[start : start + WRITE_BATCH])


def _upsert_standings_postgresql(driver: Any, rows: list[dict[str, Any]]) -> None:
    table = CreditStanding.__tablename__
    columns = ", ".join(STANDING_COLUMNS)
    changed = ", ".join(f"{c} = EXCLUDED.{c}" for c in STANDING_COLUMNS[1:])

    def text(value: Any) -> str:
        if value is None:
            return "\\N"
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, datetime):
            return _naive(value).isoformat()
        if isinstance(value, dict):
            return json.dumps(value).replace(BACKSLASH, BACKSLASH * 2)
        return str(value)  # numbers, and grades (letters)

    with driver.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE credit_standings_upsert "
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        copying = f"COPY credit_standings_upsert ({columns}) FROM STDIN"
        with cursor.copy(copying) as copy:
            for start in range(0, len(rows), WRITE_BATCH):
                copy.write(
                    "".join(
                        "\t".join(text(row[c]) for c in STANDING_COLUMNS) + "\n"
                        for row in rows[start : start + WRITE_BATCH]
                    )
                )
        cursor.execute(
            f"INSERT INTO {table} ({columns}) "
            f"SELECT {columns} FROM credit_standings_upsert ORDER BY merchant_id "
            f"ON CONFLICT (merchant_id) DO UPDATE SET {changed}"
        )
        cursor.execute("DROP TABLE credit_standings_upsert")
