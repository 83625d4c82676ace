"""Complaint text tagging: the keyword rules (jieba segmentation, English phrases,
negation, negative keywords, minimum hits, the rule file), flags raised on
filing and kept current on amendment, and the regulator's confirm / dismiss."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mediation import clock
from mediation.analytics import tagging
from mediation.analytics.audit_models import AuditEntry
from mediation.analytics.tagging import (
    RuleSetError,
    highlight,
    load_rules,
    parse_rules,
    suggestions,
    tag_text,
)
from mediation.analytics.tagging_models import CaseTag, TextFlag
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.errors import Conflict, ValidationError
from mediation.extensions import db

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules():
    return load_rules()


# The rules -------------------------------------------------------------------------


def test_brushed_orders_under_a_quality_complaint_are_noticed(rules):
    text = "收到的耳机没声音，客服还说这家店一直在刷单。"
    found = suggestions(text, "quality_defect", rules)
    assert list(found) == ["fake_reviews"]
    match = found["fake_reviews"]
    assert match.keywords == ["刷单"]
    (hit,) = match.matches
    assert text[hit["start"] : hit["end"]] == "刷单" and hit["lang"] == "zh"


def test_chinese_keywords_match_whole_tokens_only(rules):
    # 假发 (a wig) is not 假货; 刷卡 (paying by card) is not 刷单.
    assert suggestions("买的假发掉色，刷卡付的钱。", "quality_defect", rules) == {}
    # A keyword added to jieba's dictionary is cut as one token beside others.
    tokens = [w for w, _s, _e in tagging.segment("商家好评返现还刷单炒信", rules)]
    assert "好评返现" in tokens and "刷单炒信" in tokens


def test_no_flag_when_the_chosen_category_is_the_one_pointed_to(rules):
    text = "店铺靠刷单冲销量，评价里都是水军。"
    assert suggestions(text, "fake_reviews", rules) == {}
    assert "fake_reviews" in tag_text(text, rules)


def test_english_phrases_are_whole_words_in_any_case(rules):
    found = suggestions(
        "The seller has hundreds of FAKE REVIEWS and the bag is a Knock-Off.",
        "quality_defect",
        rules,
    )
    assert set(found) == {"fake_reviews", "counterfeit"}
    assert found["counterfeit"].keywords == ["knock-off"]
    # Inside a longer word it is not the phrase.
    assert suggestions("They sent a counterfeitish box", "other", rules) == {}


def test_negation_words_just_before_a_keyword_cancel_it(rules):
    assert suggestions("商家说没有刷单，但质量很差。", "quality_defect", rules) == {}
    assert suggestions("并非假货，只是有划痕。", "quality_defect", rules) == {}
    assert suggestions("It is not a counterfeit, just broken.", "other", rules) == {}
    # A one-character negation asks rather than denies unless right before it.
    assert list(suggestions("这不就是刷单吗？", "quality_defect", rules)) == [
        "fake_reviews"
    ]
    # Negation does not reach across punctuation.
    assert list(suggestions("没有发票，而且是假货。", "other", rules)) == [
        "counterfeit"
    ]
    negated = tag_text("商家说没有刷单。", rules)["fake_reviews"]
    assert negated.negated == ["刷单"] and not negated.suggested


def test_negative_keywords_rule_a_category_out(rules):
    text = "担心买到假货，专柜验证是正品，但是表带松了。"
    match = tag_text(text, rules)["counterfeit"]
    assert match.keywords == ["假货"]
    assert match.negatives == ["专柜验证是正品"]
    assert not match.suggested
    assert suggestions(text, "quality_defect", rules) == {}
    assert suggestions("The privacy screen does not fit.", "other", rules) == {}


RULES_TOML = """
version = "t1"
min_hits = 1

[categories.unfair_terms]
zh = ["霸王条款", "最终解释权"]
en = ["fine print"]
min_hits = 2

[categories.fake_promotion]
zh = ["虚假折扣"]
"""


def test_a_category_can_need_several_keywords():
    rules = parse_rules(RULES_TOML)
    assert rules.version == "t1"
    assert suggestions("这是霸王条款。", "other", rules) == {}
    found = suggestions("这是霸王条款，他们还说有最终解释权。", "other", rules)
    assert found["unfair_terms"].keywords == ["霸王条款", "最终解释权"]
    # The same keyword twice is one keyword.
    assert suggestions("霸王条款！霸王条款！", "other", rules) == {}
    assert list(suggestions("虚假折扣", "other", rules)) == ["fake_promotion"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not = [valid", "not valid TOML"),
        ("[categories.bogus]\nzh = ['x']", "unknown category"),
        ("[categories.counterfeit]\nzh = []", "has no keywords"),
        ("[categories.counterfeit]\nzh = ['x']\nmin_hits = 0", "min_hits"),
        ("[categories.counterfeit]\nzh = [1]", "list of non-empty strings"),
        ("[categories.counterfeit]\nzh = ['x']\nweight = 2", "unknown keys"),
        ("version = '1'", r"no \[categories"),
    ],
)
def test_a_bad_rule_set_is_refused_with_the_reason(text, message):
    with pytest.raises(RuleSetError, match=message):
        parse_rules(text)


def test_the_rule_file_setting_is_used(app, tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(RULES_TOML, encoding="utf-8")
    app.config["TAGGING_RULES"] = str(path)
    with app.app_context():
        assert tagging.active_rules().version == "t1"
    with pytest.raises(RuleSetError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")


def test_highlight_marks_the_matches():
    text = "abc刷单def"
    assert highlight(text, [{"start": 3, "end": 5}]) == [
        ("abc", False),
        ("刷单", True),
        ("def", False),
    ]
    # Out of range or overlapping matches are skipped, never break the text.
    pieces = highlight(text, [{"start": 3, "end": 5}, {"start": 4, "end": 99}])
    assert "".join(p for p, _ in pieces) == text


# Flags on filing and amendment -----------------------------------------------------


@pytest.fixture()
def people(make_user, make_merchant):
    clock.freeze(NOW)
    shop = make_merchant(name="Tag Shop")
    yield {
        "shop": shop,
        "consumer": make_user("consumer"),
        "regulator": make_user("regulator"),
    }
    clock.unfreeze()


def file(app, consumer, shop, text: str, category: str = "quality_defect") -> int:
    with app.app_context():
        case = services.file_case(
            db.session.get(User, consumer.id),
            services.Filing(
                merchant_id=shop.id,
                category=category,
                order_ref=f"T-{abs(hash(text)) % 10**8}",
                order_date=date(2026, 2, 20),
                amount_paid=5000,
                claim_type="refund",
                claim_amount=5000,
                description=text,
            ),
            now=clock.now_utc(),
        )
        db.session.commit()
        return case.id


def amend(app, case_id: int, consumer, **changes) -> None:
    with app.app_context():
        case = db.session.get(Case, case_id)
        services.apply_action(
            case,
            "amend",
            changes,
            actor=db.session.get(User, consumer.id),
            relation="consumer",
            now=clock.now_utc(),
        )
        db.session.commit()


def flags(app, case_id: int) -> list[tuple[str, str]]:
    with app.app_context():
        return [
            (f.suggested_category, f.status)
            for f in db.session.scalars(
                db.select(TextFlag)
                .where(TextFlag.case_id == case_id)
                .order_by(TextFlag.id)
            )
        ]


def test_filing_raises_a_flag_with_the_matches(app, people):
    text = "水壶漏水。这家店刷单，好评都是假的。"
    case_id = file(app, people["consumer"], people["shop"], text)
    with app.app_context():
        flag = db.session.scalar(db.select(TextFlag).where(TextFlag.case_id == case_id))
        assert flag.status == "pending"
        assert flag.chosen_category == "quality_defect"
        assert flag.suggested_category == "fake_reviews"
        assert flag.keywords == ["刷单"]
        assert flag.text == text and flag.case_version == 1
        assert flag.text_sha256 == tagging.text_digest(text)
        assert flag.rules_sha256 == load_rules().sha256
        # The complaint keeps the category it was filed with.
        assert db.session.get(Case, case_id).category == "quality_defect"


def test_a_text_without_keywords_raises_nothing(app, people):
    case_id = file(app, people["consumer"], people["shop"], "The kettle leaks.")
    assert flags(app, case_id) == []


def test_an_amendment_updates_retires_or_raises_flags(app, people):
    consumer = people["consumer"]
    case_id = file(app, consumer, people["shop"], "水壶漏水，而且店铺刷单。")
    assert flags(app, case_id) == [("fake_reviews", "pending")]
    # The consumer rewrites the text: it now points to counterfeit goods only.
    amend(app, case_id, consumer, description="水壶漏水，怀疑是假货。")
    assert flags(app, case_id) == [
        ("fake_reviews", "obsolete"),
        ("counterfeit", "pending"),
    ]
    # ...then chooses that category: the flag no longer applies.
    amend(app, case_id, consumer, category="counterfeit")
    assert flags(app, case_id) == [
        ("fake_reviews", "obsolete"),
        ("counterfeit", "obsolete"),
    ]
    with app.app_context():
        reasons = [
            f.reason
            for f in db.session.scalars(
                db.select(TextFlag)
                .where(TextFlag.case_id == case_id)
                .order_by(TextFlag.id)
            )
        ]
    assert reasons == ["text_changed", "category_now_chosen"]


def test_an_amendment_of_other_fields_keeps_the_pending_flag(app, people):
    consumer = people["consumer"]
    case_id = file(app, consumer, people["shop"], "店铺刷单，商品质量差。")
    amend(app, case_id, consumer, order_ref="NEW-REF")
    assert flags(app, case_id) == [("fake_reviews", "pending")]


def decide(app, case_id, regulator, decision: str, reason: str = ""):
    with app.app_context():
        flag = db.session.scalar(
            db.select(TextFlag).where(
                TextFlag.case_id == case_id, TextFlag.status == "pending"
            )
        )
        actor = db.session.get(User, regulator.id)
        if decision == "confirm":
            tagging.confirm_flag(flag, actor=actor, now=clock.now_utc())
        else:
            tagging.dismiss_flag(flag, actor=actor, reason=reason, now=clock.now_utc())
        db.session.commit()
        return flag.id


def test_confirming_tags_the_case_and_is_audited(app, people):
    case_id = file(
        app, people["consumer"], people["shop"], "衣服洗一次就起球，店家还刷单。"
    )
    flag_id = decide(app, case_id, people["regulator"], "confirm")
    with app.app_context():
        tag = db.session.scalar(db.select(CaseTag).where(CaseTag.case_id == case_id))
        assert (tag.category, tag.flag_id) == ("fake_reviews", flag_id)
        assert tag.confirmed_by_id == people["regulator"].id
        assert db.session.get(Case, case_id).category == "quality_defect"
        assert tagging.tags_of([case_id]) == {case_id: ["fake_reviews"]}
        entry = db.session.scalar(
            db.select(AuditEntry).where(AuditEntry.action == "tagging.confirm")
        )
        assert (entry.object_type, entry.object_id) == ("text_flag", flag_id)
        assert entry.details["case_id"] == case_id
        # A decided flag cannot be decided again.
        flag = db.session.get(TextFlag, flag_id)
        with pytest.raises(Conflict):
            tagging.confirm_flag(
                flag, actor=db.session.get(User, people["regulator"].id), now=NOW
            )
    # A confirmed category is not flagged again, whatever the text becomes.
    amend(
        app, case_id, people["consumer"], description="衣服洗一次就起球，店家刷单炒信。"
    )
    assert flags(app, case_id) == [("fake_reviews", "confirmed")]


def test_a_dismissed_flag_is_not_raised_again_for_the_same_text(app, people):
    consumer = people["consumer"]
    text = "水壶漏水，店铺刷单。"
    case_id = file(app, consumer, people["shop"], text)
    decide(app, case_id, people["regulator"], "dismiss", "Hearsay, not evidence.")
    with app.app_context():
        assert (
            db.session.scalar(
                db.select(AuditEntry.details).where(
                    AuditEntry.action == "tagging.dismiss"
                )
            )["reason"]
            == "Hearsay, not evidence."
        )
    # The same text under another category: not raised again.
    amend(app, case_id, consumer, category="delivery")
    assert flags(app, case_id) == [("fake_reviews", "dismissed")]
    # A changed text may be flagged again.
    amend(app, case_id, consumer, description="水壶漏水，店铺刷单，还删差评。")
    assert flags(app, case_id) == [
        ("fake_reviews", "dismissed"),
        ("fake_reviews", "pending"),
    ]


def test_dismissing_needs_a_reason(app, people):
    case_id = file(app, people["consumer"], people["shop"], "店铺刷单，评价都不可信。")
    with app.app_context():
        flag = db.session.scalar(db.select(TextFlag).where(TextFlag.case_id == case_id))
        actor = db.session.get(User, people["regulator"].id)
        with pytest.raises(ValidationError) as caught:
            tagging.dismiss_flag(flag, actor=actor, reason="  ", now=NOW)
        assert "reason" in caught.value.fields
        with pytest.raises(ValidationError):
            tagging.dismiss_flag(flag, actor=actor, reason="x" * 1001, now=NOW)
        db.session.rollback()
    assert flags(app, case_id) == [("fake_reviews", "pending")]


def test_a_broken_rule_file_never_stops_a_filing(app, people, tmp_path, auth, client):
    broken = tmp_path / "broken.toml"
    broken.write_text("[categories.bogus]\nzh = ['x']\n", encoding="utf-8")
    app.config["TAGGING_RULES"] = str(broken)
    case_id = file(app, people["consumer"], people["shop"], "水壶漏水，店铺刷单。")
    assert flags(app, case_id) == []
    amend(app, case_id, people["consumer"], description="水壶漏水，店铺一直刷单。")
    assert flags(app, case_id) == []
    auth.login(people["regulator"])
    page = client.get("/supervision/tagging")
    assert page.status_code == 200
    assert b'data-testid="tagging-rules-error"' in page.data
    assert b"unknown category" in page.data


def test_the_case_page_shows_regulators_the_flag_then_the_confirmed_tag(
    app, client, auth, people, make_user
):
    case_id = file(app, people["consumer"], people["shop"], "水壶漏水，店铺刷单。")
    auth.login(people["regulator"])
    page = client.get(f"/cases/{case_id}?lang=en").get_data(as_text=True)
    assert 'data-testid="case-flags"' in page
    assert "/supervision/tagging/" in page
    assert 'data-testid="case-tags"' not in page
    decide(app, case_id, people["regulator"], "confirm")
    page = client.get(f"/cases/{case_id}?lang=en").get_data(as_text=True)
    assert 'data-testid="case-flags"' not in page
    tags = page.split('data-testid="case-tags"')[1].split("</p>")[0]
    assert "Fake reviews" in tags or "brushed" in tags.lower()
    # The parties see neither.
    auth.logout()
    auth.login(people["consumer"])
    page = client.get(f"/cases/{case_id}?lang=en").get_data(as_text=True)
    assert 'data-testid="case-tags"' not in page
    assert 'data-testid="case-flags"' not in page
