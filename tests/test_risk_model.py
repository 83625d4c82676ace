"""The risk model alone: each factor moves the score as the model dictionary says
(every expected number below is worked out by hand from DEFAULT_RISK_MODEL)."""

from __future__ import annotations

import copy

import pytest

from mediation.analytics.risk_model import (
    DEFAULT_RISK_MODEL,
    FACTORS,
    RiskFacts,
    category_weight,
    check_model,
    level_of,
    score,
    trend_of,
)


def points(result, name: str) -> float:
    return next(f.points for f in result.factors if f.name == name)


def test_nothing_known_scores_zero():
    result = score(RiskFacts())
    assert result.score == 0
    assert result.level == "low"
    assert result.trend == "flat"
    assert [f.name for f in result.factors] == list(FACTORS)
    assert result.top() == []


@pytest.mark.parametrize(
    ("facts", "factor", "expected"),
    [
        # 2 points per complaint in the last 30 days.
        (RiskFacts(complaints_recent=3), "complaints_recent", 6.0),
        # 0.5 per complaint in the last 90 days.
        (RiskFacts(complaints_long=5), "complaints_long", 2.5),
        # 2 per complaint more than in the 30 days before: 4 - 1 = 3 -> 6.
        (RiskFacts(complaints_recent=4, complaints_previous=1), "trend", 6.0),
        # 1 per unit of category weight.
        (RiskFacts(weighted=4.5), "categories", 4.5),
        # 3 per missed deadline.
        (RiskFacts(sla_breaches=2), "sla_breaches", 6.0),
        # 10 per settlement or award not fulfilled.
        (RiskFacts(noncompliance=1), "noncompliance", 10.0),
        # Grade C: 5 points.
        (RiskFacts(grade="C"), "credit", 5.0),
        # Grade D and listed: 8 + 2.
        (RiskFacts(grade="D", listed=True), "credit", 10.0),
        (RiskFacts(grade="A"), "credit", 0.0),
    ],
)
def test_each_factor_adds_its_points(facts, factor, expected):
    result = score(facts)
    assert points(result, factor) == expected
    assert result.score == sum(f.points for f in result.factors)


def test_a_hand_computed_merchant():
    # 3 complaints this month (one counterfeit, weight 3), 1 the month before,
    # 4 in 90 days, one missed deadline, grade B.
    facts = RiskFacts(
        complaints_recent=3,
        complaints_previous=1,
        complaints_long=4,
        weighted=3.0,
        sla_breaches=1,
        grade="B",
    )
    result = score(facts)
    # 6 + 2 + 4 + 3 + 3 + 0 + 2 = 20
    assert result.score == 20.0
    assert result.score_tenths == 200
    assert result.level == "watch"
    assert result.trend == "up"
    assert [f.name for f in result.top()] == [
        "complaints_recent",
        "trend",
        "categories",
    ]


def test_every_factor_stops_at_its_cap():
    facts = RiskFacts(
        complaints_recent=50,
        complaints_previous=0,
        complaints_long=80,
        weighted=99.0,
        sla_breaches=20,
        noncompliance=5,
        grade="D",
        listed=True,
    )
    result = score(facts)
    caps = {n: DEFAULT_RISK_MODEL["factors"][n]["cap"] for n in FACTORS}
    assert {f.name: f.points for f in result.factors} == caps
    assert all(f.capped for f in result.factors if f.name != "credit")
    assert result.score == 100.0
    assert result.level == "high"


def test_a_falling_trend_adds_nothing():
    result = score(RiskFacts(complaints_recent=1, complaints_previous=6))
    assert points(result, "trend") == 0
    assert result.trend == "down"
    assert trend_of(2, 2) == "flat"


def test_category_weights_follow_the_hot_spots():
    model = DEFAULT_RISK_MODEL
    weights = [
        category_weight([code], model)
        for code in (
            "counterfeit",
            "fake_reviews",
            "fake_promotion",
            "false_advertising",
            "unfair_terms",
            "quality_defect",
        )
    ]
    # Counterfeits and brushed orders weigh most, then fake promotions, false
    # advertising, unfair terms; an ordinary quality complaint weighs nothing.
    assert weights == [3.0, 3.0, 2.0, 1.5, 1.0, 0.0]
    # A complaint weighs as its heaviest category (filed, or a confirmed tag).
    assert category_weight(["quality_defect", "fake_reviews"], model) == 3.0


def test_the_model_is_data():
    model = copy.deepcopy(DEFAULT_RISK_MODEL)
    model["factors"]["sla_breaches"]["points"] = 10
    model["factors"]["sla_breaches"]["cap"] = 40
    assert points(score(RiskFacts(sla_breaches=3), model), "sla_breaches") == 30
    assert level_of(30, model) == "elevated"
    assert level_of(9.9, model) == "low"
    check_model(model)


def test_a_broken_model_is_named():
    model = copy.deepcopy(DEFAULT_RISK_MODEL)
    del model["factors"]["trend"]
    with pytest.raises(ValueError, match="RISK_MODEL"):
        check_model(model)
    model = copy.deepcopy(DEFAULT_RISK_MODEL)
    model["windows"]["recent_days"] = 0
    with pytest.raises(ValueError, match="recent_days"):
        check_model(model)
