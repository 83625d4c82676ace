"""Read-only queries of the public credit pages and the credit API: the merchant
list by grade, the dishonesty list, a merchant's ledger, history, complaint
record and satisfaction. Nothing here writes.

Merchants without a stored standing have never had a credit event: they stand
at the model's base score and its grade (a missing row reads as that).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, exists, false, func, literal, or_, tuple_

from mediation.arbitration.models import Award
from mediation.auth.models import User
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case
from mediation.credit import explain, ledger, repair
from mediation.credit import model as credit_model
from mediation.credit.models import (
    CreditChange,
    CreditEvent,
    CreditRepair,
    CreditStanding,
)
from mediation.extensions import db
from mediation.merchants import services as merchant_services
from mediation.merchants.models import Merchant

#: The sort keys of the merchant list, and each one's natural order.
SORTS = {"grade": "asc", "score": "desc", "name": "asc"}
#: Rows of the change history and ledger shown on a credit page (the whole
#: ledger is on its own pages, :data:`EVENTS_PER_PAGE` at a time).
HISTORY_SHOWN = 100
EVENTS_SHOWN = 50
EVENTS_PER_PAGE = 100
#: Satisfaction comments shown on a credit page (the most recent).
COMMENTS_SHOWN = 10
#: Ledger kinds that mean a case was not answered in time by its merchant side.
LATE_KINDS = ("late_response", "no_response")


# Pages of rows -------------------------------------------------


@dataclass
class Page:
    """One page of a list (the shape of ``mediation.api.common.paginate``)."""

    items: list[Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page)) if self.total else 0


def fetch_page(query: Select, page: int, per_page: int) -> Page:
    """Run a multi-column SELECT one page at a time (``db.paginate`` keeps only
    the first column)."""
    total = db.session.scalar(
        db.select(func.count()).select_from(query.order_by(None).subquery())
    )
    rows = db.session.execute(query.limit(per_page).offset((page - 1) * per_page)).all()
    return Page(items=list(rows), page=page, per_page=per_page, total=total or 0)


# The merchant list -------------------------------------------------


def blank_standing(model: dict[str, Any]) -> tuple[str, int]:
    """Return the grade and score (tenths) of a merchant with an empty ledger."""
    base = model["base"]
    return credit_model.grade_for(base, False, model), round(base * 10)


@dataclass
class CreditRow:
    """A merchant with its (stored or blank) standing, for the lists."""

    merchant: Merchant
    grade: str
    score_tenths: int
    listed: bool
    trusted: bool

    @property
    def score(self) -> float:
        return self.score_tenths / 10


def _standing_columns(model: dict[str, Any]):
    blank_grade, blank_score = blank_standing(model)
    grade = func.coalesce(CreditStanding.grade, blank_grade)
    score = func.coalesce(CreditStanding.score_tenths, blank_score)
    listed = func.coalesce(CreditStanding.listed, false())
    trusted = func.coalesce(CreditStanding.trusted, false())
    return grade, score, listed, trusted


def grade_rank(grade, model: dict[str, Any]):
    """Return a SQL expression ranking ``grade`` by the model's bands (best 0)."""
    order = {name: n for n, (name, _minimum) in enumerate(model["bands"])}
    return case(order, value=grade, else_=len(order))


def credit_list(
    q: str | None = None,
    *,
    model: dict[str, Any],
    grade: str | None = None,
    kind: str | None = None,
    sort: str = "grade",
    order: str | None = None,
) -> Select:
    """Return a SELECT of merchants with their standing, searched and sorted.

    :param q: a fragment of the name, or the start of the credit code (as in the
        registry search).
    :param grade: only merchants of this grade (blank ledgers have the base grade).
    :param kind: only merchants of this kind (``goods``, ``service``, ``platform``).
    :param sort: ``grade`` (then score), ``score`` or ``name``.
    :param order: ``asc`` or ``desc``; by default each key's natural order (best
        grade first, highest score first, names A to Z).
    """
    grade_col, score_col, listed_col, trusted_col = _standing_columns(model)
    query = (
        merchant_services.search_merchants(q, kind=kind)
        .order_by(None)
        .outerjoin(CreditStanding, CreditStanding.merchant_id == Merchant.id)
        .add_columns(grade_col, score_col, listed_col, trusted_col)
    )
    if grade == blank_standing(model)[0]:
        query = query.where(grade_col == grade)
    elif grade:
        # Only stored standings can have another grade: the indexed column.
        query = query.where(CreditStanding.grade == grade)
    sort = sort if sort in SORTS else "grade"
    descending = (order or SORTS[sort]) == "desc"
    if sort == "grade":
        rank = grade_rank(grade_col, model)
        keys = [rank.desc(), score_col] if descending else [rank, score_col.desc()]
    elif sort == "score":
        keys = [score_col.desc() if descending else score_col]
    else:
        keys = []
    name_keys = (
        [Merchant.name.desc(), Merchant.id.desc()]
        if sort == "name" and descending
        else [Merchant.name, Merchant.id]
    )
    return query.order_by(*keys, *name_keys)


def list_page(query: Select, page: int, per_page: int) -> Page:
    """Return one page of :func:`credit_list` as :class:`CreditRow` items."""
    result = fetch_page(query, page, per_page)
    result.items = [
        CreditRow(m, grade, score, bool(listed), bool(trusted))
        for m, grade, score, listed, trusted in result.items
    ]
    return result


# The dishonesty list -------------------------------------------------


@dataclass
class Reason:
    """One reason of a listing, with the ledger events behind it."""

    code: str
    events: list[CreditEvent] = field(default_factory=list)

    @property
    def references(self) -> list[str]:
        return [e.data.get("reference") for e in self.events if e.data.get("reference")]


@dataclass
class ListedMerchant:
    """A merchant on the dishonesty list: since when and why."""

    merchant: Merchant
    standing: CreditStanding
    since: datetime | None
    reasons: list[Reason]


def listed_since():
    """Return a scalar subquery: when the merchant last entered the list."""
    return (
        db.select(func.max(CreditChange.at))
        .where(
            CreditChange.merchant_id == CreditStanding.merchant_id,
            CreditChange.kind == "listed",
        )
        .scalar_subquery()
    )


def dishonest_list(q: str | None = None) -> Select:
    """Return a SELECT of listed merchants with their standing and listing date,
    most recently listed first."""
    since = listed_since()
    return (
        merchant_services.search_merchants(q)
        .order_by(None)
        .join(CreditStanding, CreditStanding.merchant_id == Merchant.id)
        .where(CreditStanding.listed.is_(True))
        .add_columns(CreditStanding, since)
        .order_by(since.desc(), Merchant.name, Merchant.id)
    )


def as_entry(event: CreditEvent) -> credit_model.Entry:
    """Return a ledger row as the model reads it."""
    return credit_model.Entry(
        kind=event.kind,
        points=event.points,
        occurred_at=event.occurred_at,
        lists=event.lists,
        repaired=event.repaired_at is not None,
        id=event.id,
    )


def listing_reasons(
    listed: dict[int, list[str]], *, now: datetime, model: dict[str, Any]
) -> dict[int, list[Reason]]:
    """Return why merchants are listed, by the model's own rule, with the events
    behind each reason.

    Reads only the events the reasons can name (unrepaired, of
    :func:`mediation.credit.explain.listing_events`), not whole ledgers.

    :param listed: each merchant's ``Standing.listing_reasons``.
    """
    listed = {m: reasons for m, reasons in listed.items() if reasons}
    wanted = explain.listing_events(
        [r for reasons in listed.values() for r in reasons], now, model
    )
    ledgers: dict[int, list[CreditEvent]] = {m: [] for m in listed}
    if listed:
        for event in db.session.scalars(
            db.select(CreditEvent)
            .where(
                CreditEvent.merchant_id.in_(list(listed)),
                CreditEvent.repaired_at.is_(None),
                or_(
                    *(
                        CreditEvent.kind == kind
                        if since is None
                        else and_(
                            CreditEvent.kind == kind, CreditEvent.occurred_at >= since
                        )
                        for kind, since in sorted(wanted.items())
                    )
                ),
            )
            .order_by(CreditEvent.occurred_at, CreditEvent.id)
        ):
            ledgers[event.merchant_id].append(event)
    out: dict[int, list[Reason]] = {}
    for merchant_id, reasons in listed.items():
        events = ledgers[merchant_id]
        by_id = {e.id: e for e in events}
        out[merchant_id] = [
            Reason(lift.reason, [by_id[entry.id] for entry in lift.entries])
            for lift in explain.listing_lifts(
                [as_entry(e) for e in events], reasons, now, model
            )
        ]
    return out


def dishonest_page(
    q: str | None, page: int, per_page: int, *, now: datetime, model: dict[str, Any]
) -> Page:
    """Return one page of the dishonesty list with each merchant's reasons."""
    result = fetch_page(dishonest_list(q), page, per_page)
    reasons = {}
    for merchant, row, _since in result.items:
        standing = ledger.stored_standing(row, now=now, model=model)
        if standing is None:  # not refreshed since it last changed by itself
            standing = ledger.compute(merchant.id, now=now)
        reasons[merchant.id] = standing.listing_reasons
    why = listing_reasons(reasons, now=now, model=model)
    result.items = [
        ListedMerchant(m, standing, since, why.get(m.id, []))
        for m, standing, since in result.items
    ]
    return result


# One merchant's record -------------------------------------------------


def changes_of(merchant_id: int, limit: int = HISTORY_SHOWN) -> list[CreditChange]:
    """Return a merchant's standing changes (the feed's rows), newest first."""
    return list(
        db.session.scalars(
            db.select(CreditChange)
            .where(CreditChange.merchant_id == merchant_id)
            .order_by(CreditChange.id.desc())
            .limit(limit)
        )
    )


def repairs_of(merchant_id: int) -> list[CreditRepair]:
    """Return a merchant's credit repair applications, newest first."""
    return list(
        db.session.scalars(
            db.select(CreditRepair)
            .where(CreditRepair.merchant_id == merchant_id)
            .order_by(CreditRepair.created_at.desc(), CreditRepair.id.desc())
        )
    )


@dataclass
class RecordRow:
    """Counts of a merchant's complaints in one category or one year."""

    key: Any
    filed: int = 0
    answered_in_time: int = 0
    resolved: int = 0
    awards: int = 0
    awards_complied: int = 0
    not_complied: int = 0

    def add(self, other: RecordRow) -> None:
        for name in (
            "filed",
            "answered_in_time",
            "resolved",
            "awards",
            "awards_complied",
            "not_complied",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class ComplaintRecord:
    """A merchant's complaint record by category and by year, and its totals."""

    by_category: list[RecordRow]
    by_year: list[RecordRow]
    total: RecordRow


def _side(merchant_id: int):
    """Cases a merchant answers for: its own, and those about unregistered shops
    on it as a platform (the cases its ratings come from)."""
    return ledger.side_cases(merchant_id)


def _year_bounds(zone: ZoneInfo) -> list[tuple[int, datetime]]:
    """Return (year, its first instant in UTC) for every local year from the
    first case filed to the last (two lookups in the filing-time index)."""
    first, last = db.session.execute(
        db.select(func.min(Case.filed_at), func.max(Case.filed_at))
    ).one()
    if first is None:
        return []
    # Filing times are UTC; a year is the local one (1 January 00:00 local).
    years = range(first.astimezone(zone).year, last.astimezone(zone).year + 1)
    return [(y, datetime(y, 1, 1, tzinfo=zone).astimezone(first.tzinfo)) for y in years]


def complaint_record(merchant_id: int, *, zone: ZoneInfo) -> ComplaintRecord:
    """Count a merchant's complaints by category and by local year of filing.

    - filed: every case against it except those a regulator dismissed;
    - answered in time: it answered (offer or rejection) and its ledger has no
      late or missed answer for the case;
    - resolved: closed as resolved (directly, in mediation or by a complied award);
    - awards / complied: cases with an arbitral award / resolved by performing it;
    - not complied: closed because a settlement or award was not performed.

    One aggregate query over the merchant's cases, by category and year.
    """
    late = exists().where(
        CreditEvent.case_id == Case.id,
        CreditEvent.merchant_id == merchant_id,
        CreditEvent.kind.in_(LATE_KINDS),
    )
    has_award = exists().where(Award.case_id == Case.id)

    def counted(condition) -> Any:
        return func.sum(case((condition, 1), else_=0))

    counts = (
        func.count(Case.id),
        counted(and_(Case.answered_at.is_not(None), ~late)),
        counted(Case.status == lc.RESOLVED),
        counted(has_award),
        counted(Case.outcome == "award_complied"),
        counted(Case.status == lc.CLOSED_NONCOMPLIANT),
    )
    bounds = _year_bounds(zone)
    if not bounds:
        return ComplaintRecord(by_category=[], by_year=[], total=RecordRow("total"))
    year = case(
        *[(Case.filed_at >= start, literal(y)) for y, start in reversed(bounds)],
        else_=literal(bounds[0][0]),
    ).label("year")
    categories: dict[str, RecordRow] = {}
    years: dict[int, RecordRow] = {}
    total = RecordRow("total")
    for category, y, *numbers in db.session.execute(
        db.select(Case.category, year, *counts)
        .where(_side(merchant_id), Case.status != lc.REJECTED)
        .group_by(Case.category, year)
    ):
        row = RecordRow(None, *(int(n or 0) for n in numbers))
        categories.setdefault(category, RecordRow(category)).add(row)
        years.setdefault(int(y), RecordRow(int(y))).add(row)
        total.add(row)
    return ComplaintRecord(
        by_category=sorted(categories.values(), key=lambda r: (-r.filed, r.key)),
        by_year=[years[y] for y in sorted(years)],
        total=total,
    )


# Satisfaction -------------------------------------------------

#: E-mail addresses, and digit runs long enough to be a phone, ID or order number.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NUMBER = re.compile(r"(?<![0-9])[0-9][0-9 -]{5,}[0-9Xx]")
MASK = "***"


def _ascii_word(char: str) -> bool:
    return char.isascii() and char.isalnum()


def redact(text: str, *, known: Iterable[str] = ()) -> str:
    """Hide personal data in a consumer's comment before it is published.

    :param known: strings to hide wherever they appear, case-insensitively (the
        consumer's name and e-mail, the order reference).
    :return: the text with e-mail addresses, numbers of 7 or more characters
        (phones, identity numbers, orders) and the known strings masked.
    """
    text = _EMAIL.sub(MASK, text)
    for value in sorted({k.strip() for k in known if k and k.strip()}, key=len)[::-1]:
        # "Li" must not mask "delivery"; a Chinese name has no word boundary.
        before = r"(?<![A-Za-z0-9])" if _ascii_word(value[0]) else ""
        after = r"(?![A-Za-z0-9])" if _ascii_word(value[-1]) else ""
        pattern = before + re.escape(value) + after
        text = re.sub(pattern, MASK, text, flags=re.IGNORECASE)
    return _NUMBER.sub(MASK, text)


@dataclass
class Comment:
    """A consumer's published rating: the score, the month, the redacted comment."""

    score: int
    closed_at: datetime
    text: str


def satisfaction_comments(
    merchant_id: int, limit: int = COMMENTS_SHOWN
) -> list[Comment]:
    """Return the latest ratings with a comment, without anything that names
    the consumer (see :func:`redact`)."""
    rows = db.session.execute(
        db.select(
            Case.satisfaction,
            Case.satisfaction_comment,
            Case.closed_at,
            Case.order_ref,
            User.name,
            User.email,
        )
        .join(User, User.id == Case.consumer_id)
        .where(
            _side(merchant_id),
            Case.satisfaction.is_not(None),
            Case.satisfaction_comment.is_not(None),
            Case.closed_at.is_not(None),
        )
        .order_by(Case.closed_at.desc(), Case.id.desc())
        .limit(limit)
    ).all()
    comments = []
    for score, comment, closed_at, order_ref, name, email in rows:
        local_part = email.split("@", 1)[0] if email else ""
        text = redact(comment, known=(name, email, local_part, order_ref))
        comments.append(Comment(score, closed_at, text))
    return comments


# Everything one credit page shows -------------------------------------------------


@dataclass
class MerchantCredit:
    """A merchant's standing now, with its explanation and its newest events.

    What it costs does not grow with the ledger: the standing is the stored one
    (:func:`mediation.credit.ledger.current_standing`), the events a page of the
    newest, the listing reasons only the events they name.
    """

    merchant: Merchant
    norm: str
    standing: credit_model.Standing
    #: The newest events (at most the limit asked for), newest first, and how
    #: many the ledger holds.
    events: list[CreditEvent]
    event_count: int
    reasons: list[Reason]
    #: The id of the last event given when older ones follow (the cursor of
    #: the next page), else None.
    next_before: int | None = None


def ledger_page(
    merchant_id: int, *, limit: int, before: CreditEvent | None = None
) -> tuple[list[CreditEvent], int | None]:
    """Return up to ``limit`` events of a merchant's ledger, newest first (by
    time, then id), older than ``before`` if given, and the cursor of the next
    page (the id of the last one, when older events follow; else None)."""
    query = db.select(CreditEvent).where(CreditEvent.merchant_id == merchant_id)
    if before is not None:
        query = query.where(
            tuple_(CreditEvent.occurred_at, CreditEvent.id)
            < (before.occurred_at, before.id)
        )
    rows = list(
        db.session.scalars(
            query.order_by(CreditEvent.occurred_at.desc(), CreditEvent.id.desc()).limit(
                limit + 1
            )
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more and rows else None


def merchant_credit(
    merchant: Merchant,
    *,
    now: datetime,
    model: dict[str, Any],
    events: int = EVENTS_SHOWN,
    before: CreditEvent | None = None,
) -> MerchantCredit:
    """Return a merchant's standing at ``now`` with its newest events and the
    events behind a listing.

    :param events: at most this many events, newest first.
    :param before: only events older than this one (the next page).
    """
    standing = ledger.current_standing(merchant.id, now=now)
    rows, next_before = ledger_page(merchant.id, limit=events, before=before)
    reasons = listing_reasons(
        {merchant.id: standing.listing_reasons}, now=now, model=model
    )
    return MerchantCredit(
        merchant=merchant,
        norm=ledger.norm_of(merchant),
        standing=standing,
        events=rows,
        # Every event has a factor, repaired ones included.
        event_count=sum(f.count for f in standing.factors),
        reasons=reasons.get(merchant.id, []),
        next_before=next_before,
    )


def counting_events(
    merchant_id: int, *, now: datetime, model: dict[str, Any]
) -> list[CreditEvent]:
    """Return the merchant's events that can still change its standing
    (:func:`mediation.credit.model.can_count`), oldest first: what the outlook
    needs, whatever the size of the ledger's past."""
    rows = db.session.scalars(
        db.select(CreditEvent)
        .where(
            CreditEvent.merchant_id == merchant_id,
            CreditEvent.repaired_at.is_(None),
            or_(
                CreditEvent.occurred_at >= credit_model.counting_since(now, model),
                CreditEvent.lists.is_(True),
                CreditEvent.kind.in_(model["listing"]["kinds"]),
            ),
        )
        .order_by(CreditEvent.occurred_at, CreditEvent.id)
    )
    return [e for e in rows if credit_model.can_count(as_entry(e), now, model)]


def references_of(ids: Iterable[int]) -> dict[int, str | None]:
    """Return the case references of ledger events, by id."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    return {
        event_id: (data or {}).get("reference")
        for event_id, data in db.session.execute(
            db.select(CreditEvent.id, CreditEvent.data).where(CreditEvent.id.in_(ids))
        )
    }


@dataclass
class CreditPage:
    """Everything a merchant's credit page shows."""

    credit: MerchantCredit
    #: Each shown event's weight now (0 once repaired), and the case reference
    #: of every event the page names.
    weights: dict[int, float]
    references: dict[int, str | None]
    record: ComplaintRecord
    comments: list[Comment]
    changes: list[CreditChange]
    repairs: list[CreditRepair]
    #: Events named by an application waiting for a decision.
    pending_repair: set[int]
    #: For the merchant's own staff: what would raise the grade, each negative
    #: event's repair eligibility, and when repair could lift each listing reason.
    outlook: explain.Outlook | None = None
    eligibility: dict[int, repair.Eligibility] = field(default_factory=dict)
    lift_repair: dict[str, datetime | None] = field(default_factory=dict)


def event_weights(
    events: Iterable[CreditEvent], *, now: datetime, model: dict[str, Any]
) -> dict[int, float]:
    """Return each event's weight now (0 once repaired)."""
    return {
        e.id: 0.0
        if e.repaired_at is not None
        else credit_model.weight(e.occurred_at, now, model)
        for e in events
    }


def credit_page(
    merchant: Merchant,
    *,
    now: datetime,
    model: dict[str, Any],
    zone: ZoneInfo,
    for_staff: bool = False,
) -> CreditPage:
    """Gather a merchant's credit page.

    :param zone: the time zone whose calendar years the record counts.
    :param for_staff: add what only the merchant's own staff see.
    """
    credit = merchant_credit(merchant, now=now, model=model)
    repairs = repairs_of(merchant.id)
    named = [*credit.events, *(e for r in credit.reasons for e in r.events)]
    page = CreditPage(
        credit=credit,
        weights=event_weights(credit.events, now=now, model=model),
        references={e.id: (e.data or {}).get("reference") for e in named},
        record=complaint_record(merchant.id, zone=zone),
        comments=satisfaction_comments(merchant.id),
        changes=changes_of(merchant.id),
        repairs=repairs,
        pending_repair={
            int(event_id)
            for application in repairs
            if application.status == "pending"
            for event_id in application.event_ids or []
        },
    )
    if for_staff:
        counting = counting_events(merchant.id, now=now, model=model)
        page.references.update(
            (e.id, (e.data or {}).get("reference")) for e in counting
        )
        page.outlook = explain.outlook(
            [as_entry(e) for e in counting],
            now=now,
            model=model,
            ratings=ledger.ratings_of(merchant.id),
            resolved_cases=ledger.resolved_count(merchant.id),
        )
        page.eligibility = {
            item.event.id: item for item in repair.eligible_events(merchant.id, now=now)
        }
        page.lift_repair = {
            lift.reason: _repair_from(lift, page.eligibility)
            for lift in page.outlook.listing
        }
    # The applications name events the page may not show otherwise.
    page.references.update(
        references_of(
            int(i)
            for application in repairs
            for i in application.event_ids or []
            if int(i) not in page.references
        )
    )
    return page


@dataclass
class EventsPage:
    """A page of a merchant's whole ledger, newest first."""

    events: Page
    weights: dict[int, float]
    references: dict[int, str | None]
    pending_repair: set[int]


def events_page(
    merchant: Merchant, page: int, *, now: datetime, model: dict[str, Any]
) -> EventsPage:
    """Return one page (:data:`EVENTS_PER_PAGE` events) of a merchant's ledger."""
    query = (
        db.select(CreditEvent)
        .where(CreditEvent.merchant_id == merchant.id)
        .order_by(CreditEvent.occurred_at.desc(), CreditEvent.id.desc())
    )
    total = db.session.scalar(
        db.select(func.count(CreditEvent.id)).where(
            CreditEvent.merchant_id == merchant.id
        )
    )
    rows = list(
        db.session.scalars(
            query.limit(EVENTS_PER_PAGE).offset((page - 1) * EVENTS_PER_PAGE)
        )
    )
    pending = {
        int(event_id)
        for application in db.session.scalars(
            db.select(CreditRepair).where(
                CreditRepair.merchant_id == merchant.id,
                CreditRepair.status == "pending",
            )
        )
        for event_id in application.event_ids or []
    }
    return EventsPage(
        events=Page(items=rows, page=page, per_page=EVENTS_PER_PAGE, total=total or 0),
        weights=event_weights(rows, now=now, model=model),
        references={e.id: (e.data or {}).get("reference") for e in rows},
        pending_repair=pending,
    )


def _repair_from(
    lift: explain.ListingLift, eligibility: dict[int, repair.Eligibility]
) -> datetime | None:
    """Return when repair could lift a listing reason: once every event behind an
    obligation may be repaired; for unanswered complaints, from the first (one
    fewer brings the count below the rule's)."""
    whens = [
        eligibility[e.id].when
        for e in lift.entries
        if e.id in eligibility and eligibility[e.id].when is not None
    ]
    if not whens:
        return None
    return min(whens) if lift.lapses_at is not None else max(whens)
