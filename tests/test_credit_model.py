"""The credit model alone (pure): windows at their edges, grades, caps, the
dishonesty list, the trusted mark and satisfaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mediation.credit.model import (
    DEFAULT_MODEL,
    Entry,
    add_months,
    grade_for,
    points_for,
    standing,
    weight,
)

T0 = datetime(2025, 1, 31, 4, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_add_months_clips_to_the_month_end():
    assert add_months(T0, 1) == datetime(2025, 2, 28, 4, 0, tzinfo=UTC)
    assert add_months(T0, 12) == datetime(2026, 1, 31, 4, 0, tzinfo=UTC)
    assert add_months(T0, 13) == datetime(2026, 2, 28, 4, 0, tzinfo=UTC)


def test_windows_at_their_edges():
    full_end = add_months(T0, 12)
    half_end = add_months(T0, 36)
    assert weight(T0, T0, DEFAULT_MODEL) == 1.0
    assert weight(T0, full_end - SECOND, DEFAULT_MODEL) == 1.0
    assert weight(T0, full_end, DEFAULT_MODEL) == 0.5
    assert weight(T0, half_end - SECOND, DEFAULT_MODEL) == 0.5
    assert weight(T0, half_end, DEFAULT_MODEL) == 0.0


def test_score_weighs_events_by_age_and_says_when_it_changes_next():
    entries = [
        Entry("award_against", -3, T0),
        Entry("no_response", -5, add_months(T0, 20)),
    ]
    now = add_months(T0, 24)
    result = standing(entries, now=now)
    # The award counts half (13-36 months), the silence fully.
    assert result.score == 100 - 1.5 - 5
    assert result.grade == "A"
    assert result.next_change_at == add_months(T0, 32)  # the silence turns half
    factors = {f.kind: f for f in result.factors}
    assert (factors["award_against"].half, factors["award_against"].points) == (1, -1.5)
    assert (factors["no_response"].full, factors["no_response"].points) == (1, -5)
    assert standing(entries, now=add_months(T0, 60)).score == 100


@pytest.mark.parametrize(
    ("score", "listed", "grade"),
    [
        (100, False, "A"),
        (90, False, "A"),
        (89.9, False, "B"),
        (75, False, "B"),
        (74.9, False, "C"),
        (60, False, "C"),
        (59.9, False, "D"),
        (100, True, "D"),
    ],
)
def test_grade_bands(score, listed, grade):
    assert grade_for(score, listed, DEFAULT_MODEL) == grade


def test_positive_events_are_capped_per_year():
    entries = [Entry("resolved_directly", 1, T0 + timedelta(days=n)) for n in range(14)]
    result = standing(entries, now=T0 + timedelta(days=30))
    assert result.score == 110  # +10 at most a year, not +14
    assert {f.kind: f.count for f in result.factors} == {"resolved_directly": 14}


def test_listing_by_a_non_performance_and_by_three_silences_in_a_year():
    listed = standing([Entry("not_fulfilled", -20, T0, lists=True)], now=T0)
    assert listed.listed and listed.grade == "D" and listed.score == 80
    assert listed.listing_reasons == ["not_fulfilled"]
    silences = [
        Entry("no_response", -5, T0 + timedelta(days=100 * n)) for n in range(3)
    ]
    now = T0 + timedelta(days=201)
    assert standing(silences, now=now).listing_reasons == ["no_response_count"]
    # The first silence leaves the 12 months: off the list again.
    later = add_months(T0, 12)
    assert not standing(silences, now=later).listed
    # Two silences are not enough.
    assert not standing(silences[:2], now=now).listed


def test_repaired_events_stay_visible_but_stop_counting():
    entries = [Entry("not_fulfilled", -20, T0, lists=True, repaired=True)]
    result = standing(entries, now=T0)
    assert (result.score, result.listed, result.grade) == (100, False, "A")
    assert [(f.kind, f.count, f.points) for f in result.factors] == [
        ("not_fulfilled", 1, 0.0)
    ]


def test_trusted_mark_needs_grade_a_five_resolved_and_nothing_negative_recently():
    clean = standing([], now=T0, resolved_cases=5)
    assert clean.trusted
    assert not standing([], now=T0, resolved_cases=4).trusted
    old_fault = [Entry("late_response", -2, add_months(T0, -13))]
    assert standing(old_fault, now=T0, resolved_cases=5).trusted
    recent_fault = [Entry("late_response", -2, add_months(T0, -11))]
    assert not standing(recent_fault, now=T0, resolved_cases=5).trusted


def test_satisfaction_adds_a_small_bounded_weight_once_there_are_enough_ratings():
    two = [(T0, 5), (T0, 5)]
    assert standing([], now=T0, ratings=two).satisfaction_points == 0  # too few
    happy = [(T0, 5)] * 10
    result = standing([], now=T0, ratings=happy)
    assert (result.satisfaction, result.satisfaction_points, result.score) == (
        5,
        2,
        102,
    )
    unhappy = [(T0, 1)] * 10
    assert standing([], now=T0, ratings=unhappy).score == 98
    # Ratings older than the full window do not count.
    assert standing([], now=add_months(T0, 13), ratings=happy).ratings == 0


def test_points_come_from_the_norm():
    assert points_for("no_response", "merchant") == -5
    assert points_for("escalation_unanswered", "platform") == -5
    with pytest.raises(KeyError):
        points_for("escalation_unanswered", "merchant")
