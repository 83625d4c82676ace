"""How well the tagging rules do on a labelled set of complaint texts.

Each labelled item names the category the consumer chose and ``expected``: the
other hot-spot categories its text truly points to (what a careful reader
would flag). The rules' flags for the item are compared with it:
a flag in ``expected`` is a true positive, a flag not in it a false positive, an
expected category without a flag a false negative. Pure: no database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediation.analytics.tagging import DEMO_SET, RuleSet, suggestions


@dataclass(frozen=True)
class LabelledText:
    """One complaint text of a labelled set."""

    id: str
    category: str
    text: str
    expected: frozenset[str]
    lang: str = ""
    #: Demo seeding only: which demo merchant, how many days ago.
    merchant: str = ""
    days_ago: int = 0


def load_labelled(path: str | Path | None = None) -> list[LabelledText]:
    """Read a labelled set (JSON list of objects).

    :raise ValueError: when the file is not such a list.
    """
    target = Path(path) if path else DEMO_SET
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the labelled set {target}: {exc}") from exc
    if not isinstance(data, list):
        raise ValueError(f"{target}: expected a JSON list of objects")
    items = []
    for n, entry in enumerate(data, 1):
        try:
            items.append(
                LabelledText(
                    id=str(entry.get("id") or n),
                    category=str(entry["category"]),
                    text=str(entry["text"]),
                    expected=frozenset(entry.get("expected") or ()),
                    lang=str(entry.get("lang") or ""),
                    merchant=str(entry.get("merchant") or ""),
                    days_ago=int(entry.get("days_ago") or 0),
                )
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{target}: item {n} is malformed ({exc})") from exc
    return items


@dataclass
class Counts:
    """True positives, false positives and false negatives."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        flagged = self.tp + self.fp
        return self.tp / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        wanted = self.tp + self.fn
        return self.tp / wanted if wanted else None


@dataclass
class Outcome:
    """The rules' flags for one item, against its labels."""

    item: LabelledText
    flagged: frozenset[str]

    @property
    def false_positives(self) -> frozenset[str]:
        return self.flagged - self.item.expected

    @property
    def false_negatives(self) -> frozenset[str]:
        return self.item.expected - self.flagged


@dataclass
class Report:
    """Precision and recall per suggested category and overall (micro)."""

    outcomes: list[Outcome]
    per_category: dict[str, Counts] = field(default_factory=dict)
    overall: Counts = field(default_factory=Counts)

    @property
    def mistakes(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.false_positives or o.false_negatives]

    def as_dict(self) -> dict[str, Any]:
        """Return the numbers as JSON-ready values (``--json``)."""

        def numbers(c: Counts) -> dict[str, Any]:
            return {
                "tp": c.tp,
                "fp": c.fp,
                "fn": c.fn,
                "precision": c.precision,
                "recall": c.recall,
            }

        return {
            "items": len(self.outcomes),
            "overall": numbers(self.overall),
            "categories": {k: numbers(v) for k, v in self.per_category.items()},
            "mistakes": [
                {
                    "id": o.item.id,
                    "false_positives": sorted(o.false_positives),
                    "false_negatives": sorted(o.false_negatives),
                }
                for o in self.mistakes
            ],
        }


def evaluate(items: Iterable[LabelledText], rules: RuleSet) -> Report:
    """Run the rules over a labelled set and count what they got right."""
    report = Report(outcomes=[])
    for rule in rules.rules:
        report.per_category[rule.category] = Counts()
    for item in items:
        flagged = frozenset(suggestions(item.text, item.category, rules))
        outcome = Outcome(item, flagged)
        report.outcomes.append(outcome)
        for code in flagged | item.expected:
            counts = report.per_category.setdefault(code, Counts())
            if code in flagged and code in item.expected:
                counts.tp += 1
                report.overall.tp += 1
            elif code in flagged:
                counts.fp += 1
                report.overall.fp += 1
            else:
                counts.fn += 1
                report.overall.fn += 1
    return report


def percent(value: float | None) -> str:
    """Format a ratio as a percentage with one decimal (``-`` when undefined)."""
    return "-" if value is None else f"{value * 100:.1f}%"
