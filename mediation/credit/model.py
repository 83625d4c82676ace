"""The credit model: points, time windows, grades, the dishonesty list, the
trusted-merchant mark and satisfaction. Pure: no Flask, no database.

The whole model is the one dictionary :data:`DEFAULT_MODEL` (the app's
``CREDIT_MODEL`` setting); the public methodology page is generated from the same
dictionary, so what is published is what is computed.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

#: The credit model of DESIGN.md "Credit records".
DEFAULT_MODEL: dict[str, Any] = {
    "base": 100,
    # Events count fully for 12 months, half for months 13 to 36, then no more.
    "full_months": 12,
    "half_months": 36,
    # Grade bands, best first: the first whose minimum the score reaches.
    "bands": [["A", 90], ["B", 75], ["C", 60], ["D", None]],
    # Points at full weight, per norm: goods and service merchants, and platform
    # operators (who are also judged on the escalations about shops on them).
    "points": {
        "merchant": {
            "late_response": -2,
            "no_response": -5,
            "resolved_directly": 1,
            "mediation_failed": -2,
            "award_against": -3,
            "not_fulfilled": -20,
            "mass_alert": -10,
        },
        "platform": {
            "late_response": -2,
            "no_response": -5,
            "resolved_directly": 1,
            "mediation_failed": -2,
            "award_against": -3,
            "not_fulfilled": -20,
            "mass_alert": -10,
            "escalation_late": -2,
            "escalation_unanswered": -5,
            "escalation_resolved": 1,
        },
    },
    # At most this many points a calendar year from one kind of positive event.
    "yearly_caps": {"resolved_directly": 10, "escalation_resolved": 10},
    # The dishonesty list: any of these events (until repaired), or this many
    # unanswered complaints within the months given.
    "listing": {
        "kinds": ["not_fulfilled"],
        "no_response_count": 3,
        "no_response_months": 12,
    },
    # Credit repair: months after the event before the merchant may apply.
    "repair_months": {"event": 3, "listing": 12},
    # The trusted-merchant mark.
    "trusted": {"grade": "A", "resolved_cases": 5, "clean_months": 12},
    # Satisfaction: (average - neutral) x weight points, within +-max_points,
    # once the merchant has min_ratings ratings (1-5) in the full window.
    "satisfaction": {
        "neutral": 3,
        "weight": 1,
        "max_points": 2,
        "min_ratings": 3,
    },
}


#: Days of each month in a common year (February gets its leap day below).
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def add_months(moment: datetime, months: int) -> datetime:
    """Return ``moment`` plus calendar months (the day clipped to the month's end)."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = moment.day
    if day > 28:  # only the last days of a month may need clipping
        last = _MONTH_DAYS[month - 1]
        if month == 2 and calendar.isleap(year):
            last = 29
        day = min(day, last)
    return moment.replace(year=year, month=month, day=day)


def weight(occurred_at: datetime, now: datetime, model: dict[str, Any]) -> float:
    """Return an event's weight at ``now``: 1, 0.5 or 0 by its age."""
    if now < add_months(occurred_at, model["full_months"]):
        return 1.0
    if now < add_months(occurred_at, model["half_months"]):
        return 0.5
    return 0.0


def horizon_months(model: dict[str, Any]) -> int:
    """Return the longest window of the model: past it, an event that does not
    list changes no standing any more (it only adds to its factor's count)."""
    return max(
        model["full_months"],
        model["half_months"],
        model["listing"]["no_response_months"],
        model["trusted"]["clean_months"],
    )


def counting_since(now: datetime, model: dict[str, Any]) -> datetime:
    """Return a moment no later than the occurrence of any event that can still
    change a standing at ``now`` or later by its age (:func:`can_count`), for
    queries that leave the rest in the database.

    A month is at most 31 days, so ``add_months(t, m) <= t + 31 m days``.
    """
    return now - timedelta(days=31 * horizon_months(model))


@dataclass(frozen=True)
class Entry:
    """What the model needs of a ledger event."""

    kind: str
    points: int
    occurred_at: datetime
    lists: bool = False
    repaired: bool = False
    id: int | None = None


@dataclass
class Factor:
    """One line of a grade's explanation: a kind of event and what it adds."""

    kind: str
    count: int = 0
    points: float = 0.0
    #: Events still counting in full, and those counting half.
    full: int = 0
    half: int = 0


@dataclass
class Standing:
    """A merchant's standing at a moment, with its explanation."""

    score: float
    grade: str
    listed: bool
    trusted: bool
    factors: list[Factor] = field(default_factory=list)
    #: Why the merchant is listed (event kinds / ``no_response_count``).
    listing_reasons: list[str] = field(default_factory=list)
    satisfaction: float | None = None
    satisfaction_points: float = 0.0
    ratings: int = 0
    #: When the standing changes by itself next (an event leaves a window).
    next_change_at: datetime | None = None

    @property
    def score_tenths(self) -> int:
        return round(self.score * 10)


def grade_for(score: float, listed: bool, model: dict[str, Any]) -> str:
    """Return the grade of a score; a listed merchant is always the last grade."""
    bands = model["bands"]
    if listed:
        return bands[-1][0]
    for name, minimum in bands:
        if minimum is None or score >= minimum:
            return name
    return bands[-1][0]


def lists(entry: Entry, model: dict[str, Any]) -> bool:
    """Say whether an event puts its merchant on the dishonesty list (until it is
    repaired)."""
    return entry.lists or entry.kind in model["listing"]["kinds"]


def can_count(entry: Entry, now: datetime, model: dict[str, Any]) -> bool:
    """Say whether an event can change a standing at ``now`` or later.

    A repaired event never can, nor one older than the longest window that does
    not list: each only adds one to its factor's ``count``. A standing computed
    at ``now`` or later from the events that can count has the same score,
    grade, listing, mark, listing reasons, satisfaction and ``next_change_at``
    as one from the whole ledger (tested).
    """
    if entry.repaired:
        return False
    return lists(entry, model) or now < add_months(
        entry.occurred_at, horizon_months(model)
    )


def standing(
    entries: Iterable[Entry],
    *,
    now: datetime,
    model: dict[str, Any] = DEFAULT_MODEL,
    ratings: Iterable[tuple[datetime, int]] = (),
    resolved_cases: int = 0,
) -> Standing:
    """Compute a merchant's standing at ``now`` from its ledger.

    :param entries: the ledger (repaired events are shown but do not count).
    :param ratings: ``(closed_at, score 1-5)`` of its cases rated by consumers.
    :param resolved_cases: its cases closed as resolved (the trusted mark).
    :return: the standing, whose ``next_change_at`` is the first moment after
        ``now`` where an event or a rating crosses a window edge (the weights,
        the unanswered complaints that list, the trusted mark's clean period,
        the ratings that count): until then the standing stays as it is.
    """
    entries = sorted(entries, key=_ledger_order)
    full_months, half_months = model["full_months"], model["half_months"]
    rule = model["listing"]
    listing_kinds = rule["kinds"]
    no_response_months = rule["no_response_months"]
    clean_months = model["trusted"]["clean_months"]
    factors: dict[str, Factor] = {}
    total = 0.0
    used_per_year: dict[tuple[str, int], int] = {}
    caps = model.get("yearly_caps", {})
    edges: list[datetime] = []
    negative_recent = False
    listing: set[str] = set()
    no_responses = 0
    for entry in entries:
        kind = entry.kind
        factor = factors.get(kind)
        if factor is None:
            factor = factors[kind] = Factor(kind)
        factor.count += 1
        if entry.repaired:
            continue
        occurred = entry.occurred_at
        # Each window edge once (they are most of the cost of a standing).
        full_end = add_months(occurred, full_months)
        half_end = add_months(occurred, half_months)
        if full_end > now:
            edges.append(full_end)
        if half_end > now:
            edges.append(half_end)
        if entry.lists or kind in listing_kinds:
            listing.add(kind)
        if kind == "no_response":
            end = _edge(occurred, no_response_months, model, full_end, half_end)
            if now < end:
                edges.append(end)
                no_responses += 1
        if now < full_end:
            w = 1.0
        elif now < half_end:
            w = 0.5
        else:
            continue  # no weight left
        points = entry.points
        if kind in caps and points > 0:
            key = (kind, occurred.year)
            room = max(0, caps[kind] - used_per_year.get(key, 0))
            points = min(points, room)
            used_per_year[key] = used_per_year.get(key, 0) + points
        if entry.points < 0:
            end = _edge(occurred, clean_months, model, full_end, half_end)
            if now < end:
                edges.append(end)
                negative_recent = True
        if w == 1.0:
            factor.full += 1
        else:
            factor.half += 1
        factor.points += points * w
        total += points * w

    listed_reasons = sorted(listing)
    if no_responses >= rule["no_response_count"]:
        listed_reasons.append("no_response_count")
    counted = []
    for at, score in ratings:
        end = add_months(at, full_months)
        if now < end:
            edges.append(end)
            counted.append(score)
    sat_conf = model["satisfaction"]
    satisfaction = None
    sat_points = 0.0
    if counted:
        satisfaction = sum(counted) / len(counted)
        if len(counted) >= sat_conf["min_ratings"]:
            raw = (satisfaction - sat_conf["neutral"]) * sat_conf["weight"]
            cap = sat_conf["max_points"]
            sat_points = max(-cap, min(cap, raw))
    score = round(model["base"] + total + sat_points, 1)
    listed = bool(listed_reasons)
    grade = grade_for(score, listed, model)
    trusted_conf = model["trusted"]
    trusted = (
        grade == trusted_conf["grade"]
        and resolved_cases >= trusted_conf["resolved_cases"]
        and not negative_recent
        and not listed
    )
    return Standing(
        score=score,
        grade=grade,
        listed=listed,
        trusted=trusted,
        factors=list(factors.values()),
        listing_reasons=listed_reasons,
        satisfaction=round(satisfaction, 2) if satisfaction is not None else None,
        satisfaction_points=round(sat_points, 2),
        ratings=len(counted),
        next_change_at=min(edges, default=None),
    )


def _ledger_order(entry: Entry) -> tuple[datetime, int]:
    return (entry.occurred_at, entry.id or 0)


def _edge(
    occurred: datetime,
    months: int,
    model: dict[str, Any],
    full_end: datetime,
    half_end: datetime,
) -> datetime:
    """Return ``add_months(occurred, months)``, reusing an edge already computed."""
    if months == model["full_months"]:
        return full_end
    if months == model["half_months"]:
        return half_end
    return add_months(occurred, months)


def points_for(kind: str, norm: str, model: dict[str, Any] = DEFAULT_MODEL) -> int:
    """Return the points of ``kind`` under ``norm`` (``merchant`` or ``platform``).

    :raise KeyError: for a kind the norm does not know.
    """
    return int(model["points"][norm][kind])
