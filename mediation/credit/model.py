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
from datetime import datetime
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


def add_months(moment: datetime, months: int) -> datetime:
    """Return ``moment`` plus calendar months (the day clipped to the month's end)."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def weight(occurred_at: datetime, now: datetime, model: dict[str, Any]) -> float:
    """Return an event's weight at ``now``: 1, 0.5 or 0 by its age."""
    if now < add_months(occurred_at, model["full_months"]):
        return 1.0
    if now < add_months(occurred_at, model["half_months"]):
        return 0.5
    return 0.0


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
    """
    entries = sorted(entries, key=lambda e: (e.occurred_at, e.id or 0))
    factors: dict[str, Factor] = {}
    total = 0.0
    used_per_year: dict[tuple[str, int], int] = {}
    caps = model.get("yearly_caps", {})
    next_change: datetime | None = None
    negative_recent = False
    for entry in entries:
        factor = factors.setdefault(entry.kind, Factor(entry.kind))
        factor.count += 1
        if entry.repaired:
            continue
        w = weight(entry.occurred_at, now, model)
        for months in (model["full_months"], model["half_months"]):
            edge = add_months(entry.occurred_at, months)
            if edge > now and (next_change is None or edge < next_change):
                next_change = edge
        if w == 0:
            continue
        points = entry.points
        if entry.kind in caps and points > 0:
            key = (entry.kind, entry.occurred_at.year)
            room = max(0, caps[entry.kind] - used_per_year.get(key, 0))
            points = min(points, room)
            used_per_year[key] = used_per_year.get(key, 0) + points
        if entry.points < 0 and now < add_months(
            entry.occurred_at, model["trusted"]["clean_months"]
        ):
            negative_recent = True
        if w == 1.0:
            factor.full += 1
        else:
            factor.half += 1
        factor.points += points * w
        total += points * w

    listed_reasons = _listing(entries, now, model)
    ratings = [(at, score) for at, score in ratings if weight(at, now, model) == 1.0]
    sat_conf = model["satisfaction"]
    satisfaction = None
    sat_points = 0.0
    if ratings:
        satisfaction = sum(s for _, s in ratings) / len(ratings)
        if len(ratings) >= sat_conf["min_ratings"]:
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
        factors=[f for f in factors.values()],
        listing_reasons=listed_reasons,
        satisfaction=round(satisfaction, 2) if satisfaction is not None else None,
        satisfaction_points=round(sat_points, 2),
        ratings=len(ratings),
        next_change_at=next_change,
    )


def _listing(entries: list[Entry], now: datetime, model: dict[str, Any]) -> list[str]:
    rule = model["listing"]
    reasons = sorted(
        {
            e.kind
            for e in entries
            if not e.repaired and (e.lists or e.kind in rule["kinds"])
        }
    )
    recent = [
        e
        for e in entries
        if e.kind == "no_response"
        and not e.repaired
        and now < add_months(e.occurred_at, rule["no_response_months"])
    ]
    if len(recent) >= rule["no_response_count"]:
        reasons.append("no_response_count")
    return reasons


def points_for(kind: str, norm: str, model: dict[str, Any] = DEFAULT_MODEL) -> int:
    """Return the points of ``kind`` under ``norm`` (``merchant`` or ``platform``).

    :raise KeyError: for a kind the norm does not know.
    """
    return int(model["points"][norm][kind])
