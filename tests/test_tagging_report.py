"""Precision and recall of the tagging rules on labelled texts, and the
``tagging-report`` command (its numbers on the demo set are the README's)."""

from __future__ import annotations

import json

import pytest

from mediation.analytics.tagging import load_rules, parse_rules
from mediation.analytics.tagging_report import evaluate, load_labelled, percent

RULES = parse_rules(
    """
[categories.fake_reviews]
zh = ["刷单"]
en = ["fake reviews"]

[categories.counterfeit]
zh = ["假货"]
"""
)


def _item(id_: str, category: str, text: str, *expected: str) -> dict:
    return {"id": id_, "category": category, "text": text, "expected": list(expected)}


LABELLED = [
    # Right: flags fake_reviews, as labelled.
    _item("a", "quality_defect", "店铺刷单。", "fake_reviews"),
    # Wrong: flags counterfeit, labelled as nothing.
    _item("b", "delivery", "怕是假货但其实不是。"),
    # Missed: labelled counterfeit, no keyword.
    _item("c", "quality_defect", "是假的。", "counterfeit"),
    # Chosen category: no flag, nothing expected.
    _item("d", "fake_reviews", "They post fake reviews."),
]


@pytest.fixture()
def labelled_file(tmp_path):
    path = tmp_path / "labelled.json"
    path.write_text(json.dumps(LABELLED, ensure_ascii=False), encoding="utf-8")
    return path


def test_counts_per_category_and_overall(labelled_file):
    report = evaluate(load_labelled(labelled_file), RULES)
    reviews, fakes = (
        report.per_category["fake_reviews"],
        report.per_category["counterfeit"],
    )
    assert (reviews.tp, reviews.fp, reviews.fn) == (1, 0, 0)
    assert (fakes.tp, fakes.fp, fakes.fn) == (0, 1, 1)
    assert (report.overall.tp, report.overall.fp, report.overall.fn) == (1, 1, 1)
    assert report.overall.precision == 0.5 and report.overall.recall == 0.5
    assert fakes.precision == 0.0 and fakes.recall == 0.0
    assert [o.item.id for o in report.mistakes] == ["b", "c"]
    assert percent(2 / 3) == "66.7%" and percent(None) == "-"


def test_a_malformed_labelled_set_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[{"text": "no category"}]', encoding="utf-8")
    with pytest.raises(ValueError, match="item 1 is malformed"):
        load_labelled(path)
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="JSON list"):
        load_labelled(path)


def test_the_demo_set_is_labelled_in_both_languages():
    items = load_labelled()
    assert len(items) >= 60
    assert {i.lang for i in items} == {"zh", "en"}
    # Tricky negatives: texts with no hot spot to flag.
    assert sum(1 for i in items if not i.expected) >= 30
    assert all(i.category not in i.expected for i in items)


def test_the_report_command_prints_the_demo_numbers(app, runner):
    result = runner.invoke(args=["tagging-report"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    report = evaluate(load_labelled(), load_rules())
    overall = next(line for line in lines if line.startswith("overall"))
    assert overall.split() == [
        "overall",
        str(report.overall.tp + report.overall.fp),
        str(report.overall.tp),
        str(report.overall.fp),
        str(report.overall.fn),
        percent(report.overall.precision),
        percent(report.overall.recall),
    ]
    # The numbers written in the README (Tests: text tagging's precision).
    assert (report.overall.tp, report.overall.fp, report.overall.fn) == (53, 4, 6)
    assert overall.split()[-2:] == ["93.0%", "89.8%"]
    for code in ("counterfeit", "fake_reviews", "unfair_terms", "personal_info"):
        assert any(line.startswith(code) for line in lines)


def test_the_report_command_options(app, runner, labelled_file, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[categories.fake_reviews]\nzh = ["刷单"]\n', encoding="utf-8")
    result = runner.invoke(
        args=[
            "tagging-report",
            "--rules",
            str(rules),
            "--data",
            str(labelled_file),
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.output)
    assert numbers["items"] == 4
    assert numbers["overall"] == {
        "tp": 1,
        "fp": 0,
        "fn": 1,
        "precision": 1.0,
        "recall": 0.5,
    }
    mistakes = runner.invoke(
        args=["tagging-report", "--data", str(labelled_file), "--mistakes"]
    )
    assert "c: missed: counterfeit" in mistakes.output
    missing = runner.invoke(args=["tagging-report", "--data", str(tmp_path / "no")])
    assert missing.exit_code != 0 and "cannot read the labelled set" in missing.output
    broken = tmp_path / "broken.toml"
    broken.write_text("[categories.nope]\nzh=['x']", encoding="utf-8")
    refused = runner.invoke(args=["tagging-report", "--rules", str(broken)])
    assert refused.exit_code != 0 and "unknown category" in refused.output
