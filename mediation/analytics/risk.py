"""The merchant risk list: facts from the database, scores by the model, stored.

:func:`collect_facts` reads, with a few grouped queries, what the risk model
(:mod:`mediation.analytics.risk_model`, the ``RISK_MODEL`` setting) needs of
every merchant, or of one: complaints per window and category (confirmed text
tags included), missed merchant deadlines, non-compliance and the credit
standing. :func:`refresh_risk_scores` scores them all and writes only the rows
that changed (the scheduler's job and ``flask refresh-risk``; running it twice
changes nothing the second time); :func:`refresh_merchant_risk` does the same
for one merchant. Pages read the stored rows (:func:`risk_list`) or compute
one merchant live (:func:`merchant_risk`). Services flush, never commit.

Complaints count for the merchant they are about; a complaint about an
unregistered shop counts for the platform that answers for it. Complaints a
regulator rejected (out of scope, duplicates) do not count.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, and_, case, delete, func, or_, true
from sqlalchemy.orm import contains_eager

from mediation import clock
from mediation.analytics import risk_model
from mediation.analytics.risk_model import RiskFacts, RiskResult
from mediation.analytics.risk_models import (
    RiskRefresh,
    RiskScore,
    RiskScoreCategory,
    WarningInterview,
)
from mediation.analytics.tagging_models import CaseTag
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case, CaseEvent
from mediation.credit.models import CreditEvent, CreditStanding
from mediation.extensions import db
from mediation.merchants.models import Merchant

logger = logging.getLogger(__name__)

#: Rows written per statement by the full refresh.
WRITE_CHUNK = 1000
#: Cases listed per factor on a merchant's risk page.
CASES_SHOWN = 50
#: Columns of :class:`RiskScore` a refresh writes (and compares).
SCORE_COLUMNS = (
    "score_tenths",
    "level",
    "trend",
    "complaints_recent",
    "complaints_previous",
    "complaints_long",
    "sla_breaches",
    "noncompliance",
    "grade",
    "listed",
    "factors",
)


def risk_config() -> dict[str, Any]:
    """Return the running app's risk model (``RISK_MODEL``), checked once.

    :raise ValueError: when a configured model lacks a part the code reads.
    """
    model = current_app.config.get("RISK_MODEL") or risk_model.DEFAULT_RISK_MODEL
    if current_app.extensions.get("risk_model_checked") is not model:
        risk_model.check_model(model)
        current_app.extensions["risk_model_checked"] = model
    return model


@dataclass(frozen=True)
class Windows:
    """The time windows of the model at ``now`` (each is ``(start, now]``)."""

    now: datetime
    recent: datetime
    previous: datetime
    long: datetime
    noncompliance: datetime

    @classmethod
    def at(cls, now: datetime, model: dict[str, Any]) -> Windows:
        conf = model["windows"]
        recent = now - timedelta(days=int(conf["recent_days"]))
        return cls(
            now=now,
            recent=recent,
            previous=recent - timedelta(days=int(conf["recent_days"])),
            long=now - timedelta(days=int(conf["long_days"])),
            noncompliance=now - timedelta(days=int(conf["noncompliance_days"])),
        )

    @property
    def earliest_complaint(self) -> datetime:
        return min(self.previous, self.long)


# Facts ------------------------------------------------------------------------------


def _side() -> ColumnElement:
    """The merchant a complaint counts for: its shop, else the platform."""
    return func.coalesce(Case.merchant_id, Case.platform_id)


def _about(merchant_id: int) -> ColumnElement:
    """Complaints that count for ``merchant_id`` (index-friendly form of _side)."""
    return or_(
        Case.merchant_id == merchant_id,
        and_(Case.merchant_id.is_(None), Case.platform_id == merchant_id),
    )


def _counted(since: datetime, now: datetime) -> ColumnElement:
    return and_(
        Case.filed_at > since,
        Case.filed_at <= now,
        Case.status != lc.REJECTED,
    )


def _within(column: Any, since: datetime, now: datetime) -> ColumnElement:
    return and_(column > since, column <= now)


def collect_facts(
    *, now: datetime, model: dict[str, Any], merchant_id: int | None = None
) -> dict[int, RiskFacts]:
    """Read the facts of every merchant with anything against it (or of one).

    :param merchant_id: only this merchant (the query uses its indexes).
    :return: merchant id -> facts; merchants with nothing known are left out.
    """
    w = Windows.at(now, model)
    facts: dict[int, RiskFacts] = {}

    def of(mid: int) -> RiskFacts:
        found = facts.get(mid)
        if found is None:
            found = facts[mid] = RiskFacts()
        return found

    side = _side().label("side")
    scope = _about(merchant_id) if merchant_id is not None else _side().isnot(None)
    weights = model["category_weights"]
    # Complaints per merchant and category, counted per window.
    rows = db.session.execute(
        db.select(
            side,
            Case.category,
            func.sum(case((_within(Case.filed_at, w.recent, now), 1), else_=0)),
            func.sum(
                case(
                    (and_(Case.filed_at > w.previous, Case.filed_at <= w.recent), 1),
                    else_=0,
                )
            ),
            func.sum(case((_within(Case.filed_at, w.long, now), 1), else_=0)),
        )
        .where(scope, _counted(w.earliest_complaint, now))
        .group_by(side, Case.category)
    )
    for mid, category, recent, previous, long in rows:
        if mid is None:
            continue
        entry = of(mid)
        entry.complaints_recent += int(recent or 0)
        entry.complaints_previous += int(previous or 0)
        entry.complaints_long += int(long or 0)
        if long:
            entry.categories[category] = entry.categories.get(category, 0) + int(long)
            entry.weighted += float(weights.get(category, 0)) * int(long)
    # Confirmed tags: a complaint weighs as its heaviest category, and counts in
    # the tagged category too.
    tagged: dict[int, tuple[int, str, list[str]]] = {}
    for mid, case_id, filed, tag in db.session.execute(
        db.select(side, Case.id, Case.category, CaseTag.category)
        .join(CaseTag, CaseTag.case_id == Case.id)
        .where(scope, _counted(w.long, now))
    ):
        if mid is None:
            continue
        tagged.setdefault(case_id, (mid, filed, []))[2].append(tag)
    for mid, filed, tags in tagged.values():
        entry = of(mid)
        extra = risk_model.category_weight([filed, *tags], model)
        entry.weighted += extra - risk_model.category_weight([filed], model)
        for tag in set(tags) - {filed}:
            entry.categories[tag] = entry.categories.get(tag, 0) + 1
    # Missed merchant deadlines: credit facts, and expiries of merchant stages.
    credit_scope = (
        CreditEvent.merchant_id == merchant_id if merchant_id is not None else true()
    )
    for mid, count in db.session.execute(
        db.select(CreditEvent.merchant_id, func.count())
        .where(
            credit_scope,
            CreditEvent.kind.in_(list(model["breach_kinds"])),
            _within(CreditEvent.occurred_at, w.long, now),
            CreditEvent.repaired_at.is_(None),
        )
        .group_by(CreditEvent.merchant_id)
    ):
        of(mid).sla_breaches += int(count)
    stages = list(model["breach_stages"])
    if stages:
        for mid, count in db.session.execute(
            db.select(side, func.count())
            .select_from(CaseEvent)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(
                scope,
                CaseEvent.action == "expire",
                _within(CaseEvent.at, w.long, now),
                CaseEvent.data["stage"].as_string().in_(stages),
            )
            .group_by(side)
        ):
            if mid is not None:
                of(mid).sla_breaches += int(count)
    # Non-compliance.
    for mid, count in db.session.execute(
        db.select(CreditEvent.merchant_id, func.count())
        .where(
            credit_scope,
            CreditEvent.kind.in_(list(model["noncompliance_kinds"])),
            _within(CreditEvent.occurred_at, w.noncompliance, now),
            CreditEvent.repaired_at.is_(None),
        )
        .group_by(CreditEvent.merchant_id)
    ):
        of(mid).noncompliance += int(count)
    # Credit standing (a merchant without one stands at the best grade).
    graded = [g for g, p in model["credit"]["grades"].items() if float(p) > 0]
    standing_query = db.select(
        CreditStanding.merchant_id, CreditStanding.grade, CreditStanding.listed
    )
    if merchant_id is not None:
        standing_query = standing_query.where(CreditStanding.merchant_id == merchant_id)
    else:
        standing_query = standing_query.where(
            or_(CreditStanding.grade.in_(graded), CreditStanding.listed.is_(True))
        )
    for mid, grade, listed in db.session.execute(standing_query):
        entry = of(mid)
        entry.grade = grade
        entry.listed = bool(listed)
    return facts


# Scores -----------------------------------------------------------------------------


def _row(merchant_id: int, facts: RiskFacts, result: RiskResult) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id,
        "score_tenths": result.score_tenths,
        "level": result.level,
        "trend": result.trend,
        "complaints_recent": facts.complaints_recent,
        "complaints_previous": facts.complaints_previous,
        "complaints_long": facts.complaints_long,
        "sla_breaches": facts.sla_breaches,
        "noncompliance": facts.noncompliance,
        "grade": facts.grade,
        "listed": facts.listed,
        "factors": {
            f.name: {
                "value": f.value,
                "points": f.points,
                "cap": f.cap,
                "capped": f.capped,
            }
            for f in result.factors
        },
    }


@dataclass
class RefreshReport:
    """What a refresh did."""

    scored: int = 0
    changed: int = 0
    removed: int = 0

    def line(self) -> str:
        return (
            f"risk scores: {self.scored} merchant(s) at risk, "
            f"{self.changed} written, {self.removed} removed"
        )


def _upsert(model: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT rows, updating those whose key exists (PostgreSQL and SQLite)."""
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    for start in range(0, len(rows), WRITE_CHUNK):
        chunk = rows[start : start + WRITE_CHUNK]
        statement = insert(model)
        columns = [c for c in chunk[0] if c not in keys]
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={c: statement.excluded[c] for c in columns},
        )
        db.session.execute(statement, chunk)


def _digest(row: dict[str, Any], categories: dict[str, int]) -> str:
    """Return a fingerprint of a row's content (what a refresh compares).

    The ``repr`` of the values in a fixed order (the factors in the model's
    order, the categories sorted): deterministic, and much cheaper than
    canonical JSON for 100,000 rows.
    """
    content = (tuple(repr(row[c]) for c in SCORE_COLUMNS), repr(categories))
    return hashlib.sha256(repr(content).encode("utf-8")).hexdigest()


def _write(
    computed: dict[int, tuple[RiskFacts, RiskResult]],
    *,
    now: datetime,
    only: int | None = None,
) -> RefreshReport:
    """Make the stored rows equal to ``computed`` (scores above 0 only).

    Only the stored fingerprints are read, and only rows whose fingerprint
    changed are written (with their category rows): a refresh that finds
    nothing new writes nothing.

    :param only: the refresh covered this merchant alone: leave the others.
    """
    report = RefreshReport()
    wanted: dict[int, dict[str, Any]] = {}
    wanted_categories: dict[int, dict[str, int]] = {}
    for mid, (facts, result) in computed.items():
        if result.score_tenths <= 0:
            continue
        categories = dict(sorted(facts.categories.items()))
        row = _row(mid, facts, result)
        row["digest"] = _digest(row, categories)
        wanted[mid] = row
        wanted_categories[mid] = categories
    report.scored = len(wanted)
    stored_query = db.select(RiskScore.merchant_id, RiskScore.digest)
    if only is not None:
        stored_query = stored_query.where(RiskScore.merchant_id == only)
    stored = dict(db.session.execute(stored_query).all())
    removed = sorted(set(stored) - set(wanted))
    changed = sorted(
        mid for mid, row in wanted.items() if stored.get(mid) != row["digest"]
    )
    for start in range(0, len(removed), WRITE_CHUNK):
        chunk = removed[start : start + WRITE_CHUNK]
        db.session.execute(
            delete(RiskScoreCategory).where(RiskScoreCategory.merchant_id.in_(chunk))
        )
        db.session.execute(delete(RiskScore).where(RiskScore.merchant_id.in_(chunk)))
    _upsert(
        RiskScore,
        [{**wanted[mid], "computed_at": now} for mid in changed],
        ["merchant_id"],
    )
    for start in range(0, len(changed), WRITE_CHUNK):
        chunk = changed[start : start + WRITE_CHUNK]
        db.session.execute(
            delete(RiskScoreCategory).where(RiskScoreCategory.merchant_id.in_(chunk))
        )
        rows = [
            {"merchant_id": mid, "category": category, "complaints": count}
            for mid in chunk
            for category, count in wanted_categories[mid].items()
        ]
        if rows:
            db.session.execute(db.insert(RiskScoreCategory), rows)
    report.changed = len(changed)
    report.removed = len(removed)
    if changed or removed:
        # Loaded scores may predate the Core writes: forget them (only them:
        # other objects of the transaction, such as notifications whose mail
        # waits for the commit, must stay as they are).
        session = db.session()
        for obj in list(session.identity_map.values()):
            if isinstance(obj, (RiskScore, RiskScoreCategory)):
                session.expire(obj)
    return report


def score_all(
    *, now: datetime, model: dict[str, Any]
) -> dict[int, tuple[RiskFacts, RiskResult]]:
    """Score every merchant with anything against it (nothing is written)."""
    return {
        mid: (facts, risk_model.score(facts, model))
        for mid, facts in collect_facts(now=now, model=model).items()
    }


def refresh_risk_scores(*, now: datetime) -> RefreshReport:
    """Recompute every merchant's risk score and store what changed.

    Idempotent: a second run at the same moment writes nothing (only a
    :class:`RiskRefresh` row that says when the list was computed).
    """
    model = risk_config()
    report = _write(score_all(now=now, model=model), now=now)
    db.session.add(
        RiskRefresh(
            computed_at=now,
            finished_at=clock.now_utc(),
            scored=report.scored,
            changed=report.changed,
            removed=report.removed,
        )
    )
    db.session.flush()
    logger.info(
        "risk scores refreshed",
        extra={
            "scored": report.scored,
            "changed": report.changed,
            "removed": report.removed,
        },
    )
    return report


def merchant_risk(
    merchant_id: int, *, now: datetime, model: dict[str, Any] | None = None
) -> tuple[RiskFacts, RiskResult]:
    """Compute one merchant's facts and score now (nothing is written)."""
    model = model or risk_config()
    facts = collect_facts(now=now, model=model, merchant_id=merchant_id).get(
        merchant_id, RiskFacts()
    )
    return facts, risk_model.score(facts, model)


def refresh_merchant_risk(merchant_id: int, *, now: datetime) -> RiskScore | None:
    """Recompute and store one merchant's score (the cheap path).

    :return: its stored row, or None when its score is 0 (no row).
    """
    facts, result = merchant_risk(merchant_id, now=now)
    _write({merchant_id: (facts, result)}, now=now, only=merchant_id)
    db.session.flush()
    return db.session.get(RiskScore, merchant_id, populate_existing=True)


# Reading the list ---------------------------------------------------------------------


@dataclass
class RiskFilters:
    """The risk list's filters (all optional)."""

    region: str = ""
    platform_id: int | None = None
    category: str = ""
    min_score: float | None = None
    q: str = ""


def _has_category(category: str) -> ColumnElement:
    return (
        db.select(RiskScoreCategory.merchant_id)
        .where(
            RiskScoreCategory.merchant_id == RiskScore.merchant_id,
            RiskScoreCategory.category == category,
        )
        .exists()
    )


def _conditions(filters: RiskFilters) -> tuple[list[ColumnElement], bool]:
    """Return the WHERE clauses of the filters, and whether they read merchants."""
    where: list[ColumnElement] = []
    if filters.category:
        where.append(_has_category(filters.category))
    if filters.min_score is not None:
        where.append(RiskScore.score_tenths >= round(filters.min_score * 10))
    merchant: list[ColumnElement] = []
    if filters.region:
        merchant.append(Merchant.region_code.startswith(filters.region))
    if filters.platform_id is not None:
        merchant.append(
            or_(
                Merchant.platform_id == filters.platform_id,
                Merchant.id == filters.platform_id,
            )
        )
    if filters.q:
        term = filters.q.strip()
        merchant.append(
            or_(
                Merchant.name.icontains(term, autoescape=True),
                Merchant.uscc == term.upper(),
            )
        )
    return where + merchant, bool(merchant)


def risk_list(filters: RiskFilters) -> Select:
    """Return the SELECT of stored scores (with their merchant), highest first."""
    where, _reads_merchants = _conditions(filters)
    return (
        db.select(RiskScore)
        .join(RiskScore.merchant)
        .options(contains_eager(RiskScore.merchant))
        .where(*where)
        # Both descending: the (score, merchant) index serves it read backwards.
        .order_by(RiskScore.score_tenths.desc(), RiskScore.merchant_id.desc())
    )


@dataclass
class ListPage:
    """One page of the risk list (the shape the pager macro reads)."""

    items: list[RiskScore]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def risk_page(filters: RiskFilters, page: int, per_page: int) -> ListPage:
    """Return one page of the list and the number of rows in all.

    The count joins the merchants only when a filter reads them: counting the
    stored scores alone is an index-only count, the join is a hash join over
    every row (100,000 merchants: ~10 ms against ~150 ms).
    """
    query = risk_list(filters)
    items = list(
        db.session.scalars(query.limit(per_page).offset((page - 1) * per_page))
    )
    where, reads_merchants = _conditions(filters)
    count = db.select(func.count()).select_from(RiskScore)
    if reads_merchants:
        count = count.join(Merchant, Merchant.id == RiskScore.merchant_id)
    count = count.where(*where)
    return ListPage(items, page, per_page, int(db.session.scalar(count) or 0))


def rank_of(row: RiskScore) -> int:
    """Return a stored row's place in the whole list (1 = highest score)."""
    ahead = db.session.scalar(
        db.select(func.count())
        .select_from(RiskScore)
        .where(
            or_(
                RiskScore.score_tenths > row.score_tenths,
                and_(
                    RiskScore.score_tenths == row.score_tenths,
                    RiskScore.merchant_id > row.merchant_id,
                ),
            )
        )
    )
    return int(ahead or 0) + 1


def last_refresh() -> RiskRefresh | None:
    """Return the latest full refresh of the list."""
    return db.session.scalar(
        db.select(RiskRefresh).order_by(RiskRefresh.id.desc()).limit(1)
    )


def interview_status(merchant_ids: Iterable[int]) -> dict[int, WarningInterview]:
    """Return each merchant's interview to show in the list: the planned one,
    else the latest."""
    ids = list(merchant_ids)
    out: dict[int, WarningInterview] = {}
    if not ids:
        return out
    for interview in db.session.scalars(
        db.select(WarningInterview)
        .where(WarningInterview.merchant_id.in_(ids))
        .order_by(WarningInterview.id)
    ):
        current = out.get(interview.merchant_id)
        if current is None or current.status != "planned":
            out[interview.merchant_id] = interview
    return out


# The cases behind a merchant's factors ------------------------------------------------


@dataclass
class FactorEvidence:
    """What lies behind one factor of one merchant."""

    cases: list[Case] = field(default_factory=list)
    #: ``(what, case or None, when)`` rows: credit events and expiries.
    events: list[tuple[str, Case | None, datetime]] = field(default_factory=list)
    total: int = 0


def factor_evidence(
    merchant_id: int, *, now: datetime, model: dict[str, Any] | None = None
) -> dict[str, FactorEvidence]:
    """Return the cases and events behind each factor of a merchant's score."""
    model = model or risk_config()
    w = Windows.at(now, model)
    about = _about(merchant_id)
    out = {name: FactorEvidence() for name in risk_model.FACTORS}

    def cases_in(since: datetime, until: datetime, *extra: Any) -> tuple[list, int]:
        where = [about, Case.filed_at > since, Case.filed_at <= until]
        where.append(Case.status != lc.REJECTED)
        where.extend(extra)
        total = db.session.scalar(
            db.select(func.count()).select_from(Case).where(*where)
        )
        listed = db.session.scalars(
            db.select(Case)
            .where(*where)
            .order_by(Case.filed_at.desc(), Case.id.desc())
            .limit(CASES_SHOWN)
        ).all()
        return list(listed), int(total or 0)

    for name, since, until in (
        ("complaints_recent", w.recent, now),
        ("complaints_long", w.long, now),
        ("trend", w.previous, w.recent),
    ):
        out[name].cases, out[name].total = cases_in(since, until)
    heavy = [c for c, weight in model["category_weights"].items() if float(weight) > 0]
    tagged = db.select(CaseTag.case_id).where(CaseTag.category.in_(heavy))
    out["categories"].cases, out["categories"].total = cases_in(
        w.long, now, or_(Case.category.in_(heavy), Case.id.in_(tagged))
    )
    for name, kinds, since in (
        ("sla_breaches", model["breach_kinds"], w.long),
        ("noncompliance", model["noncompliance_kinds"], w.noncompliance),
    ):
        events = db.session.execute(
            db.select(CreditEvent.kind, Case, CreditEvent.occurred_at)
            .outerjoin(Case, Case.id == CreditEvent.case_id)
            .where(
                CreditEvent.merchant_id == merchant_id,
                CreditEvent.kind.in_(list(kinds)),
                _within(CreditEvent.occurred_at, since, now),
                CreditEvent.repaired_at.is_(None),
            )
            .order_by(CreditEvent.occurred_at.desc())
        ).all()
        out[name].events = [(kind, c, at) for kind, c, at in events]
    stages = list(model["breach_stages"])
    if stages:
        for event, c in db.session.execute(
            db.select(CaseEvent, Case)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(
                about,
                CaseEvent.action == "expire",
                _within(CaseEvent.at, w.long, now),
                CaseEvent.data["stage"].as_string().in_(stages),
            )
            .order_by(CaseEvent.at.desc())
        ):
            out["sla_breaches"].events.append(
                (f"expire:{(event.data or {}).get('stage')}", c, event.at)
            )
        out["sla_breaches"].events.sort(key=lambda e: e[2], reverse=True)
    for name in ("sla_breaches", "noncompliance"):
        out[name].total = len(out[name].events)
    return out
