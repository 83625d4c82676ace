"""The credit model alone (pure): windows at their edges, grades, caps, the
dishonesty list, the trusted mark and satisfaction."""

from __future__ import annotations

import calendar
import copy
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediation.credit import explain
from mediation.credit.model import (
    DEFAULT_MODEL,
    Entry,
    Factor,
    Standing,
    add_months,
    can_count,
    counting_since,
    grade_for,
    lists,
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


# The standing as it was computed before each window edge was computed once -----
# (commit 6d1ea72), kept to check that the faster model gives the same.


def previous_add_months(moment: datetime, months: int) -> datetime:
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def previous_weight(occurred_at, now, model) -> float:
    if now < previous_add_months(occurred_at, model["full_months"]):
        return 1.0
    if now < previous_add_months(occurred_at, model["half_months"]):
        return 0.5
    return 0.0


def previous_standing(entries, *, now, model, ratings=(), resolved_cases=0):
    entries = sorted(entries, key=lambda e: (e.occurred_at, e.id or 0))
    factors: dict[str, Factor] = {}
    total = 0.0
    used_per_year: dict[tuple[str, int], int] = {}
    caps = model.get("yearly_caps", {})
    next_change = None
    negative_recent = False
    for entry in entries:
        factor = factors.setdefault(entry.kind, Factor(entry.kind))
        factor.count += 1
        if entry.repaired:
            continue
        w = previous_weight(entry.occurred_at, now, model)
        for months in (model["full_months"], model["half_months"]):
            edge = previous_add_months(entry.occurred_at, months)
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
        if entry.points < 0 and now < previous_add_months(
            entry.occurred_at, model["trusted"]["clean_months"]
        ):
            negative_recent = True
        if w == 1.0:
            factor.full += 1
        else:
            factor.half += 1
        factor.points += points * w
        total += points * w
    rule = model["listing"]
    listed_reasons = sorted(
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
        and now < previous_add_months(e.occurred_at, rule["no_response_months"])
    ]
    if len(recent) >= rule["no_response_count"]:
        listed_reasons.append("no_response_count")
    ratings = [
        (at, score) for at, score in ratings if previous_weight(at, now, model) == 1.0
    ]
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
        factors=list(factors.values()),
        listing_reasons=listed_reasons,
        satisfaction=round(satisfaction, 2) if satisfaction is not None else None,
        satisfaction_points=round(sat_points, 2),
        ratings=len(ratings),
        next_change_at=next_change,
    )


# Generated ledgers ---------------------------------------------------------------

#: Models: the default, and one whose windows all differ (so no edge is shared).
OTHER_MODEL = copy.deepcopy(DEFAULT_MODEL) | {"full_months": 6, "half_months": 24}
OTHER_MODEL["listing"] = dict(OTHER_MODEL["listing"], no_response_months=9)
OTHER_MODEL["trusted"] = dict(OTHER_MODEL["trusted"], clean_months=15)
KINDS = sorted(DEFAULT_MODEL["points"]["platform"])
#: Month ends and leap days, where adding months clips.
DAYS = [1, 15, 28, 29, 30, 31]
moments = st.builds(
    lambda year, month, day, hour: datetime(
        year,
        month,
        min(day, calendar.monthrange(year, month)[1]),
        hour,
        tzinfo=UTC,
    ),
    st.integers(2020, 2026),
    st.integers(1, 12),
    st.sampled_from(DAYS),
    st.sampled_from([0, 15, 23]),
)
entries_strategy = st.lists(
    st.builds(
        Entry,
        kind=st.sampled_from(KINDS),
        points=st.one_of(st.sampled_from([-20, -5, -3, -2, 1]), st.integers(-9, 4)),
        occurred_at=moments,
        lists=st.booleans(),
        repaired=st.booleans(),
        id=st.integers(1, 10**6),
    ),
    max_size=40,
)
ratings_strategy = st.lists(st.tuples(moments, st.integers(1, 5)), max_size=8)


def as_tuple(result: Standing) -> tuple:
    return (
        result.score,
        result.grade,
        result.listed,
        result.trusted,
        [(f.kind, f.count, f.points, f.full, f.half) for f in result.factors],
        result.listing_reasons,
        result.satisfaction,
        result.satisfaction_points,
        result.ratings,
    )


def edges_after(entries, ratings, now, model) -> list[datetime]:
    """Every moment after ``now`` where an input crosses a window edge: the
    weights, the unanswered complaints that list, the clean period of the
    trusted mark (negative events still counting), the ratings that count."""
    edges = []
    for e in entries:
        if e.repaired:
            continue
        months = [model["full_months"], model["half_months"]]
        if e.kind == "no_response":
            months.append(model["listing"]["no_response_months"])
        if e.points < 0 and previous_weight(e.occurred_at, now, model) > 0:
            months.append(model["trusted"]["clean_months"])
        edges += [previous_add_months(e.occurred_at, m) for m in months]
    edges += [previous_add_months(at, model["full_months"]) for at, _ in ratings]
    return [edge for edge in edges if edge > now]


@settings(max_examples=400, deadline=None)
@given(
    entries=entries_strategy,
    ratings=ratings_strategy,
    now=moments,
    resolved=st.integers(0, 8),
    model=st.sampled_from([DEFAULT_MODEL, OTHER_MODEL]),
)
def test_standing_gives_what_it_gave_before_it_was_made_faster(
    entries, ratings, now, resolved, model
):
    """Same score, grade, listing, mark, factors and satisfaction; and a
    ``next_change_at`` that now also sees the ratings and the other windows
    leave (before, only the weights' edges: a rating ageing out went unseen)."""
    new = standing(
        entries, now=now, model=model, ratings=ratings, resolved_cases=resolved
    )
    old = previous_standing(
        entries, now=now, model=model, ratings=ratings, resolved_cases=resolved
    )
    assert as_tuple(new) == as_tuple(old)
    assert new.next_change_at == min(
        edges_after(entries, ratings, now, model), default=None
    )
    if model is DEFAULT_MODEL and not ratings:
        assert new.next_change_at == old.next_change_at


@settings(max_examples=300, deadline=None)
@given(
    entries=entries_strategy,
    ratings=ratings_strategy,
    now=moments,
    resolved=st.integers(0, 8),
    model=st.sampled_from([DEFAULT_MODEL, OTHER_MODEL]),
    later=st.floats(0, 1),
)
def test_a_standing_holds_until_its_next_change(
    entries, ratings, now, resolved, model, later
):
    """What the stored standing relies on: nothing moves before
    ``next_change_at``."""

    def at(moment):
        return standing(
            entries, now=moment, model=model, ratings=ratings, resolved_cases=resolved
        )

    first = at(now)
    end = first.next_change_at or now + timedelta(days=3650)
    for moment in (min(now + (end - now) * later, end - SECOND), end - SECOND):
        if moment >= now:
            then = at(moment)
            assert as_tuple(then) == as_tuple(first)
            assert then.next_change_at == first.next_change_at


@settings(max_examples=300, deadline=None)
@given(
    entries=entries_strategy,
    ratings=ratings_strategy,
    now=moments,
    resolved=st.integers(0, 8),
    model=st.sampled_from([DEFAULT_MODEL, OTHER_MODEL]),
    later=st.sampled_from([timedelta(0), timedelta(days=200), timedelta(days=900)]),
)
def test_the_events_that_can_count_give_the_standing(
    entries, ratings, now, resolved, model, later
):
    """At ``now`` and later, the events :func:`can_count` keeps give the same
    standing as the whole ledger (only the factors' counts differ)."""
    kept = [e for e in entries if can_count(e, now, model)]
    assert all(
        e.occurred_at >= counting_since(now, model) or lists(e, model) for e in kept
    )
    moment = now + later
    whole = standing(
        entries, now=moment, model=model, ratings=ratings, resolved_cases=resolved
    )
    part = standing(
        kept, now=moment, model=model, ratings=ratings, resolved_cases=resolved
    )
    same = ("score", "grade", "listed", "trusted", "listing_reasons", "satisfaction")
    assert [getattr(part, n) for n in same] == [getattr(whole, n) for n in same]
    assert part.next_change_at == whole.next_change_at


@given(moment=moments, months=st.integers(-40, 40))
def test_add_months_is_the_calendar_arithmetic(moment, months):
    assert add_months(moment, months) == previous_add_months(moment, months)


def outlook_tuple(result) -> tuple:
    return (
        [(o.entry, o.full_until, o.counts_until, o.lists) for o in result.events],
        [(lift.reason, lift.entries, lift.lapses_at) for lift in result.listing],
        result.projections,
        result.resolved_cases,
        result.resolved_needed,
    )


@settings(max_examples=200, deadline=None)
@given(
    entries=entries_strategy,
    ratings=ratings_strategy,
    now=moments,
    resolved=st.integers(0, 8),
    model=st.sampled_from([DEFAULT_MODEL, OTHER_MODEL]),
)
def test_the_outlook_needs_only_the_events_that_can_count(
    entries, ratings, now, resolved, model
):
    """What the merchant's own page loads: the events that can still count."""
    entries = list({e.id: e for e in entries}.values())  # ids are unique
    kept = [e for e in entries if can_count(e, now, model)]
    whole = explain.outlook(
        entries, now=now, model=model, ratings=ratings, resolved_cases=resolved
    )
    part = explain.outlook(
        kept, now=now, model=model, ratings=ratings, resolved_cases=resolved
    )
    assert outlook_tuple(part) == outlook_tuple(whole)


@settings(max_examples=300, deadline=None)
@given(entries=entries_strategy, now=moments)
def test_listing_lifts_need_only_the_events_of_the_listing_kinds(entries, now):
    """What the credit page and the dishonesty list load for a listing."""
    entries = sorted(
        {e.id: e for e in entries}.values(), key=lambda e: (e.occurred_at, e.id)
    )
    reasons = standing(entries, now=now).listing_reasons
    wanted = explain.listing_events(reasons, now, DEFAULT_MODEL)
    kept = [
        e
        for e in entries
        if e.kind in wanted
        and not e.repaired
        and (wanted[e.kind] is None or e.occurred_at >= wanted[e.kind])
    ]
    lifts = explain.listing_lifts(entries, reasons, now, DEFAULT_MODEL)
    assert explain.listing_lifts(kept, reasons, now, DEFAULT_MODEL) == lifts
