"""What would raise a merchant's grade: when its events stop counting, what lifts
a listing, and the standing this gives on the coming dates. Pure: no Flask, no
database; everything comes from the model. (When repair may be applied for is
the repair rule's answer: ``mediation.credit.repair.eligible_events``.)

The projections run :func:`mediation.credit.model.standing` itself at each date
where an event or a rating leaves a window, so the page can only promise what
the model will compute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mediation.credit import model as credit_model
from mediation.credit.model import Entry, add_months

#: At most this many future changes of the standing are projected.
PROJECTIONS = 8


@dataclass(frozen=True)
class EventOutlook:
    """A negative event that still counts, and the dates that matter for it."""

    entry: Entry
    #: Counts in full until then, half until ``counts_until``, then not at all.
    full_until: datetime
    counts_until: datetime
    #: The event puts the merchant on the dishonesty list.
    lists: bool


@dataclass(frozen=True)
class Projection:
    """The standing on a coming date if nothing new happens."""

    at: datetime
    score: float
    grade: str
    listed: bool
    trusted: bool


@dataclass(frozen=True)
class ListingLift:
    """One reason of a listing and what lifts it."""

    reason: str
    #: The events behind the reason (oldest first).
    entries: list[Entry]
    #: When the reason lapses by itself (the count of unanswered complaints);
    #: None when only an approved repair lifts it.
    lapses_at: datetime | None


@dataclass
class Outlook:
    """Everything the merchant's own page says about raising its grade."""

    events: list[EventOutlook] = field(default_factory=list)
    listing: list[ListingLift] = field(default_factory=list)
    projections: list[Projection] = field(default_factory=list)
    #: Cases resolved so far, and how many the trusted mark needs.
    resolved_cases: int = 0
    resolved_needed: int = 0


def lists_merchant(entry: Entry, model: dict[str, Any]) -> bool:
    """Say whether an event puts its merchant on the dishonesty list."""
    return credit_model.lists(entry, model)


def listing_events(
    reasons: Iterable[str], now: datetime, model: dict[str, Any]
) -> dict[str, datetime | None]:
    """Return the events :func:`listing_lifts` reads for these reasons: their
    kinds, each with the earliest occurrence that can matter (None: any).

    Given only the unrepaired events that match, it gives what it gives from
    the whole ledger (tested). A month is at most 31 days, so the bound of the
    unanswered complaints' window errs on the side of reading more.
    """
    out: dict[str, datetime | None] = {}
    for reason in reasons:
        if reason == "no_response_count":
            months = model["listing"]["no_response_months"]
            kind, since = "no_response", now - timedelta(days=31 * months)
        else:
            kind, since = reason, None
        if kind in out and (out[kind] is None or since is None):
            out[kind] = None
        else:
            out[kind] = min(since, out[kind]) if out.get(kind) else since
    return out


def listing_lifts(
    entries: list[Entry], reasons: list[str], now: datetime, model: dict[str, Any]
) -> list[ListingLift]:
    """Return, for each listing reason, the events behind it and when it lapses.

    :param entries: the merchant's ledger, oldest first (the unrepaired events
        of :func:`listing_events` are enough).
    :param reasons: ``Standing.listing_reasons`` at ``now``.
    """
    rule = model["listing"]
    lifts = []
    for reason in reasons:
        if reason == "no_response_count":
            window = rule["no_response_months"]
            recent = [
                e
                for e in entries
                if e.kind == "no_response"
                and not e.repaired
                and now < add_months(e.occurred_at, window)
            ]
            # Listed while at least ``count`` fall in the window: the listing lapses
            # when the one that brings the count below it leaves the window.
            needed = rule["no_response_count"]
            pivot = recent[len(recent) - needed] if len(recent) >= needed else None
            lapses = add_months(pivot.occurred_at, window) if pivot else None
            lifts.append(ListingLift(reason, recent, lapses))
        else:
            behind = [
                e
                for e in entries
                if e.kind == reason and not e.repaired and lists_merchant(e, model)
            ]
            lifts.append(ListingLift(reason, behind, None))
    return lifts


def _edges(
    entries: list[Entry],
    ratings: list[tuple[datetime, int]],
    now: datetime,
    model: dict[str, Any],
) -> list[datetime]:
    """Return the coming dates where an event or a rating leaves a window."""
    edges = set()
    windows = (
        model["full_months"],
        model["half_months"],
        model["listing"]["no_response_months"],
    )
    for entry in entries:
        if entry.repaired:
            continue
        for months in windows:
            edges.add(add_months(entry.occurred_at, months))
    for at, _score in ratings:
        edges.add(add_months(at, model["full_months"]))
    return sorted(edge for edge in edges if edge > now)


def outlook(
    entries: Iterable[Entry],
    *,
    now: datetime,
    model: dict[str, Any],
    ratings: Iterable[tuple[datetime, int]] = (),
    resolved_cases: int = 0,
) -> Outlook:
    """Explain what would raise the grade of the merchant whose ledger is ``entries``.

    :param entries: the merchant's ledger; those that can still count
        (:func:`mediation.credit.model.can_count`) are enough (tested).
    :param ratings: ``(closed_at, score)`` of its rated cases.
    :param resolved_cases: its cases closed as resolved (the trusted mark).
    :return: the negative events still counting, the reasons of a listing with
        what lifts each, and the standing on each coming date it changes.
    """
    entries = sorted(entries, key=lambda e: (e.occurred_at, e.id or 0))
    ratings = list(ratings)

    def at(moment: datetime) -> credit_model.Standing:
        return credit_model.standing(
            entries,
            now=moment,
            model=model,
            ratings=ratings,
            resolved_cases=resolved_cases,
        )

    current = at(now)
    result = Outlook(
        resolved_cases=resolved_cases,
        resolved_needed=model["trusted"]["resolved_cases"],
    )
    for entry in entries:
        counts_until = add_months(entry.occurred_at, model["half_months"])
        if entry.repaired or entry.points >= 0 or counts_until <= now:
            continue
        result.events.append(
            EventOutlook(
                entry=entry,
                full_until=add_months(entry.occurred_at, model["full_months"]),
                counts_until=counts_until,
                lists=lists_merchant(entry, model),
            )
        )
    result.listing = listing_lifts(entries, current.listing_reasons, now, model)
    last = (current.score, current.grade, current.listed, current.trusted)
    for edge in _edges(entries, ratings, now, model):
        then = at(edge)
        state = (then.score, then.grade, then.listed, then.trusted)
        if state != last:
            result.projections.append(Projection(edge, *state))
            last = state
            if len(result.projections) >= PROJECTIONS:
                break
    return result
