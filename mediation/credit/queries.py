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

from sqlalchemy import Select, and_, case, exists, false, func, literal

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
#: Rows of the change history and ledger shown on a credit page.
HISTORY_SHOWN = 100
EVENTS_SHOWN = 200
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
    events: Iterable[CreditEvent], *, now: datetime, model: dict[str, Any]
) -> list[Reason]:
    """Return why a merchant is listed, by the model's own rule, with the events.

    :param events: the merchant's whole ledger.
    """
    events = sorted(events, key=lambda e: (e.occurred_at, e.id))
    entries = [as_entry(e) for e in events]
    standing = credit_model.standing(entries, now=now, model=model)
    by_id = {e.id: e for e in events}
    return [
        Reason(lift.reason, [by_id[entry.id] for entry in lift.entries])
        for lift in explain.listing_lifts(entries, standing.listing_reasons, now, model)
    ]


def dishonest_page(
    q: str | None, page: int, per_page: int, *, now: datetime, model: dict[str, Any]
) -> Page:
    """Return one page of the dishonesty list with each merchant's reasons."""
    result = fetch_page(dishonest_list(q), page, per_page)
    ids = [m.id for m, _standing, _since in result.items]
    ledgers: dict[int, list[CreditEvent]] = {i: [] for i in ids}
    if ids:
        for event in db.session.scalars(
            db.select(CreditEvent).where(CreditEvent.merchant_id.in_(ids))
        ):
            ledgers[event.merchant_id].append(event)
    result.items = [
        ListedMerchant(
            m, standing, since, listing_reasons(ledgers[m.id], now=now, model=model)
        )
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


def _year_bounds(merchant_id: int, zone: ZoneInfo) -> list[tuple[int, datetime]]:
    """Return (year, its first instant in UTC) for every local year with cases."""
    first, last = db.session.execute(
        db.select(func.min(Case.filed_at), func.max(Case.filed_at)).where(
            _side(merchant_id)
        )
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
    where = (_side(merchant_id), Case.status != lc.REJECTED)
    by_category = [
        RecordRow(category, *(int(n or 0) for n in numbers))
        for category, *numbers in db.session.execute(
            db.select(Case.category, *counts)
            .where(*where)
            .group_by(Case.category)
            .order_by(func.count(Case.id).desc(), Case.category)
        )
    ]
    bounds = _year_bounds(merchant_id, zone)
    by_year: list[RecordRow] = []
    if bounds:
        year = case(
            *[(Case.filed_at >= start, literal(y)) for y, start in reversed(bounds)],
            else_=literal(bounds[0][0]),
        ).label("year")
        by_year = [
            RecordRow(int(y), *(int(n or 0) for n in numbers))
            for y, *numbers in db.session.execute(
                db.select(year, *counts).where(*where).group_by(year).order_by(year)
            )
        ]
    total = RecordRow("total")
    for row in by_category:
        total.add(row)
    return ComplaintRecord(by_category=by_category, by_year=by_year, total=total)


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
    """A merchant's standing now, with its explanation and its record."""

    merchant: Merchant
    norm: str
    standing: credit_model.Standing
    #: The newest :data:`EVENTS_SHOWN` events, and how many there are.
    events: list[CreditEvent]
    event_count: int
    #: The whole ledger as the model reads it (oldest first).
    entries: list[credit_model.Entry]
    reasons: list[Reason]


def merchant_credit(
    merchant: Merchant, *, now: datetime, model: dict[str, Any]
) -> MerchantCredit:
    """Return a merchant's standing at ``now`` (``ledger.compute``, the stored
    standing's own computation) with the events and listing reasons behind it."""
    rows = list(
        db.session.scalars(
            db.select(CreditEvent)
            .where(CreditEvent.merchant_id == merchant.id)
            .order_by(CreditEvent.occurred_at, CreditEvent.id)
        )
    )
    return MerchantCredit(
        merchant=merchant,
        norm=ledger.norm_of(merchant),
        standing=ledger.compute(merchant.id, now=now),
        events=rows[::-1][:EVENTS_SHOWN],
        event_count=len(rows),
        entries=[as_entry(e) for e in rows],
        reasons=listing_reasons(rows, now=now, model=model),
    )


@dataclass
class CreditPage:
    """Everything a merchant's credit page shows."""

    credit: MerchantCredit
    #: Each shown event's weight now (0 once repaired), and its case reference.
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
    page = CreditPage(
        credit=credit,
        weights={
            e.id: 0.0
            if e.repaired_at is not None
            else credit_model.weight(e.occurred_at, now, model)
            for e in credit.events
        },
        references={e.id: (e.data or {}).get("reference") for e in credit.events},
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
        page.outlook = explain.outlook(
            credit.entries,
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
    return page


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
