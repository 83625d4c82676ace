"""The merchant risk model: factors, weights, windows and caps. Pure: no Flask, no
database.

The whole model is the one dictionary :data:`DEFAULT_RISK_MODEL` (the app's
``RISK_MODEL`` setting). The risk list stores what :func:`score` makes of each
merchant's :class:`RiskFacts`, and the regulators' risk page prints the model
from the same dictionary, so what is shown is what is computed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: The risk model of issue #7 ("Risk list"). Every factor gives ``points`` per
#: unit and at most ``cap`` points; the caps add up to 100, so the score reads
#: as a percentage of the worst case.
DEFAULT_RISK_MODEL: dict[str, Any] = {
    "windows": {
        # Complaint rate, short window; the trend compares it with the same
        # number of days just before.
        "recent_days": 30,
        # Complaint rate, long window; also the window of the category weights
        # and of the SLA breaches.
        "long_days": 90,
        # Non-compliance weighs for a year.
        "noncompliance_days": 365,
    },
    "factors": {
        # Per complaint filed in the short window.
        "complaints_recent": {"points": 2.0, "cap": 20},
        # Per complaint filed in the long window (the short window included).
        "complaints_long": {"points": 0.5, "cap": 10},
        # Per complaint more in the short window than in the one before it
        # (a falling trend adds nothing).
        "trend": {"points": 2.0, "cap": 10},
        # Per unit of category weight of the complaints of the long window.
        "categories": {"points": 1.0, "cap": 20},
        # Per merchant deadline missed in the long window.
        "sla_breaches": {"points": 3.0, "cap": 15},
        # Per settlement or award not fulfilled in the non-compliance window.
        "noncompliance": {"points": 10.0, "cap": 15},
        # The credit grade's points plus the dishonesty list's (see "credit").
        "credit": {"cap": 10},
    },
    # The weight of one complaint by its category: the hot spots of market
    # supervision; a category not named weighs 0. A complaint weighs as its
    # heaviest category: the one filed, or one a regulator confirmed from its
    # text (complaint text tagging).
    "category_weights": {
        "counterfeit": 3.0,
        "fake_reviews": 3.0,
        "fake_promotion": 2.0,
        "false_advertising": 1.5,
        "unfair_terms": 1.0,
        "personal_info": 1.0,
    },
    # Points of the credit grade (a missing grade is the best) and of being on
    # the dishonesty list.
    "credit": {"grades": {"A": 0, "B": 2, "C": 5, "D": 8}, "listed": 2},
    # Missed merchant deadlines: these credit ledger kinds (a missed answer
    # deadline, late or never answered; for a platform, escalations) and the
    # ``expire`` timeline events of these SLA stages (fulfilment).
    "breach_kinds": [
        "no_response",
        "late_response",
        "escalation_unanswered",
        "escalation_late",
    ],
    "breach_stages": ["fulfilment"],
    # Non-compliance: these credit ledger kinds.
    "noncompliance_kinds": ["not_fulfilled"],
    # Levels shown beside the score, highest first: the first whose minimum
    # the score reaches.
    "levels": [["high", 50], ["elevated", 25], ["watch", 10], ["low", 0]],
}

#: The factors in the order the pages show them.
FACTORS = (
    "complaints_recent",
    "complaints_long",
    "trend",
    "categories",
    "sla_breaches",
    "noncompliance",
    "credit",
)


@dataclass
class RiskFacts:
    """What the model needs to know of one merchant."""

    #: Complaints filed in the short window, the one before it, the long window.
    complaints_recent: int = 0
    complaints_previous: int = 0
    complaints_long: int = 0
    #: Sum of the category weights of the long window's complaints.
    weighted: float = 0.0
    #: Complaints of the long window per category (filed or confirmed tag).
    categories: dict[str, int] = field(default_factory=dict)
    sla_breaches: int = 0
    noncompliance: int = 0
    #: Credit grade (None: no standing, i.e. the best) and dishonesty list.
    grade: str | None = None
    listed: bool = False

    def is_empty(self) -> bool:
        """Say whether nothing at all is known against the merchant."""
        return not (
            self.complaints_recent
            or self.complaints_previous
            or self.complaints_long
            or self.weighted
            or self.sla_breaches
            or self.noncompliance
            or self.listed
            or self.grade
        )


class FactorScore(NamedTuple):
    """One factor of a score: its value, the points it adds, its cap.

    A named tuple: the full refresh makes seven per merchant, and a frozen
    dataclass is several times slower to build.
    """

    name: str
    value: float
    points: float
    cap: float
    capped: bool


@dataclass
class RiskResult:
    """A merchant's risk score with its factors."""

    score: float
    level: str
    factors: list[FactorScore]
    #: ``up``, ``down`` or ``flat``: the short window against the one before.
    trend: str

    @property
    def score_tenths(self) -> int:
        return round(self.score * 10)

    def top(self, count: int = 3) -> list[FactorScore]:
        """Return the factors that add most, largest first (none that add 0)."""
        ranked = sorted(
            (f for f in self.factors if f.points > 0),
            key=lambda f: (-f.points, FACTORS.index(f.name)),
        )
        return ranked[:count]


def category_weight(categories: Iterable[str], model: dict[str, Any]) -> float:
    """Return the weight of one complaint: its heaviest category's weight.

    :param categories: the filed category and any confirmed tags.
    """
    weights = model["category_weights"]
    return max((float(weights.get(c, 0)) for c in categories), default=0.0)


def trend_of(recent: int, previous: int) -> str:
    """Return the direction of the complaint count: ``up``, ``down`` or ``flat``."""
    if recent > previous:
        return "up"
    if recent < previous:
        return "down"
    return "flat"


def credit_points(grade: str | None, listed: bool, model: dict[str, Any]) -> float:
    """Return the raw (uncapped) points of a credit standing."""
    conf = model["credit"]
    points = float(conf["grades"].get(grade, 0)) if grade else 0.0
    if listed:
        points += float(conf["listed"])
    return points


def level_of(score: float, model: dict[str, Any]) -> str:
    """Return the level name of a score (the first band whose minimum it reaches)."""
    levels = model["levels"]
    for name, minimum in levels:
        if score >= minimum:
            return name
    return levels[-1][0]


def _factor(name: str, value: float, raw: float, model: dict[str, Any]) -> FactorScore:
    cap = float(model["factors"][name]["cap"])
    points = round(min(max(raw, 0.0), cap), 1)
    return FactorScore(name, value, points, cap, raw > cap)


def score(facts: RiskFacts, model: dict[str, Any] = DEFAULT_RISK_MODEL) -> RiskResult:
    """Compute a merchant's risk score from its facts.

    Each factor is ``value x points`` (the trend: only the growth), at most its
    cap; the score is the sum, rounded to one decimal.
    """
    conf = model["factors"]
    growth = max(0, facts.complaints_recent - facts.complaints_previous)
    factors = [
        _factor(
            "complaints_recent",
            facts.complaints_recent,
            facts.complaints_recent * conf["complaints_recent"]["points"],
            model,
        ),
        _factor(
            "complaints_long",
            facts.complaints_long,
            facts.complaints_long * conf["complaints_long"]["points"],
            model,
        ),
        _factor("trend", growth, growth * conf["trend"]["points"], model),
        _factor(
            "categories",
            round(facts.weighted, 2),
            facts.weighted * conf["categories"]["points"],
            model,
        ),
        _factor(
            "sla_breaches",
            facts.sla_breaches,
            facts.sla_breaches * conf["sla_breaches"]["points"],
            model,
        ),
        _factor(
            "noncompliance",
            facts.noncompliance,
            facts.noncompliance * conf["noncompliance"]["points"],
            model,
        ),
        _factor(
            "credit",
            credit_points(facts.grade, facts.listed, model),
            credit_points(facts.grade, facts.listed, model),
            model,
        ),
    ]
    total = round(sum(f.points for f in factors), 1)
    return RiskResult(
        score=total,
        level=level_of(total, model),
        factors=factors,
        trend=trend_of(facts.complaints_recent, facts.complaints_previous),
    )


def check_model(model: dict[str, Any]) -> None:
    """Check that a configured model has every part the code reads.

    :raise ValueError: naming the first missing or malformed part.
    """
    try:
        windows = model["windows"]
        for key in ("recent_days", "long_days", "noncompliance_days"):
            if int(windows[key]) < 1:
                raise ValueError(f"RISK_MODEL windows.{key} must be at least 1")
        for name in FACTORS:
            entry = model["factors"][name]
            float(entry["cap"])
            if name != "credit":
                float(entry["points"])
        for weight in model["category_weights"].values():
            float(weight)
        for points in model["credit"]["grades"].values():
            float(points)
        float(model["credit"]["listed"])
        list(model["breach_kinds"])
        list(model["breach_stages"])
        list(model["noncompliance_kinds"])
        if not model["levels"]:
            raise ValueError("RISK_MODEL levels must not be empty")
    except (KeyError, TypeError) as exc:
        raise ValueError(f"RISK_MODEL is missing or has a bad {exc}") from exc
