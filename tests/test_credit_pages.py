"""The public credit pages and ``GET /api/v1/merchants/{id}/credit``, on merchants
whose records come from real cases (actions and the SLA sweep): the grade and its
factors, the complaint record, the dishonesty list, the merchant list, the
methodology generated from the model, what the merchant's staff see, and no
consumer's personal data anywhere."""

from __future__ import annotations

import copy
import re
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.credit import explain, queries
from mediation.credit.model import DEFAULT_MODEL, Entry
from mediation.extensions import db
from mediation.sla.sweep import run_sweep

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
#: Past the merchants' answer deadline (Thursday 5 March, end of day, Shanghai).
AFTER_DEADLINE = datetime(2026, 3, 5, 16, 0, tzinfo=UTC)
OFFER = {
    "type": "refund",
    "amount": 9900,
    "deadline": date(2026, 3, 20),
    "text": "Refund of 99 yuan.",
}
AWARD = {
    "findings": "The kettle leaked.",
    "reasons": "Not fit for use.",
    "decision": "partly_granted",
    "orders": [
        {
            "type": "refund",
            "amount": 12000,
            "deadline": date(2026, 3, 20),
            "text": "Refund.",
        }
    ],
}
#: What a consumer may type into a comment that must never be published.
PERSONAL = (
    "Zhang San",
    "zhang.san@example.com",
    "13812345678",
    "李四",
    "li.si@example.com",
)


@pytest.fixture(autouse=True)
def _monday():
    clock.freeze(MONDAY)
    yield
    clock.unfreeze()


def apply(app, case_id, action, user, relation, **payload):
    with app.app_context():
        case = db.session.get(Case, case_id)
        actor = db.session.get(User, user.id) if user is not None else None
        services.apply_action(
            case, action, payload, actor=actor, relation=relation, now=clock.now_utc()
        )
        db.session.commit()


@pytest.fixture()
def world(app, make_user, make_merchant, make_case):
    """Four shops and a platform with records made by real cases.

    - Kettle Shop: a complaint never answered (the sweep: no response, -5), and an
      award against it (-3) not performed (-20, listed): 72.0, grade D, listed.
    - Slow Shop: a complaint never answered: 95.0, grade A.
    - Good Shop: a complaint resolved directly (+1): 101.0, grade A, rated.
    - Tea House: no complaint: no standing row, 100.0, grade A.
    - Big Mall: a platform with no complaint.
    """
    w = {
        "kettle": make_merchant(name="Kettle Shop", arbitration_consent=True),
        "slow": make_merchant(name="Slow Shop"),
        "good": make_merchant(name="Good Shop"),
        "tea": make_merchant(name="Tea House"),
        "mall": make_merchant(name="Big Mall", kind="platform"),
        "zhang": make_user("consumer", name="Zhang San", email="zhang.san@example.com"),
        "li": make_user("consumer", name="李四", email="li.si@example.com"),
        "mediator": make_user("mediator", name="Mia Mediator"),
        "arbitrator": make_user("arbitrator", name="Ada Arbiter"),
        "regulator": make_user("regulator", name="Rita Regulator"),
    }
    w["kettle_staff"] = make_user(
        "merchant", merchant_id=w["kettle"].id, name="Staff Kettle"
    )
    w["good_staff"] = make_user("merchant", merchant_id=w["good"].id, name="Staff Good")
    # Kettle: one complaint ignored, one lost in arbitration and not performed.
    w["silent"] = make_case(w["zhang"], w["kettle"], order_ref="ORD-SILENT-1")
    awarded = make_case(
        w["li"], w["kettle"], arbitration_consent=True, category="delivery"
    )
    apply(app, awarded, "reject", w["kettle_staff"], "merchant", reason="Not ours.")
    apply(app, awarded, "take", w["mediator"], "mediator")
    apply(app, awarded, "end_mediation", w["mediator"], "mediator", reason="No deal.")
    apply(app, awarded, "take", w["arbitrator"], "arbitrator")
    apply(app, awarded, "issue_award", w["arbitrator"], "arbitrator", **AWARD)
    apply(app, awarded, "report_unfulfilled", w["li"], "consumer", text="Nothing.")
    apply(
        app,
        awarded,
        "rate",
        w["li"],
        "consumer",
        score=1,
        comment="李四：商家一直没有退款，电话 13812345678，li.si@example.com",
    )
    w["awarded"] = awarded
    # Good Shop settles directly; Zhang rates it with his details in the comment.
    settled = make_case(w["zhang"], w["good"], order_ref="ORD-GOOD-77")
    apply(app, settled, "offer", w["good_staff"], "merchant", **OFFER)
    apply(app, settled, "accept_offer", w["zhang"], "consumer")
    apply(app, settled, "mark_fulfilled", w["good_staff"], "merchant")
    apply(app, settled, "confirm_fulfilment", w["zhang"], "consumer")
    apply(
        app,
        settled,
        "rate",
        w["zhang"],
        "consumer",
        score=5,
        comment="Zhang San here. Quick refund for ORD-GOOD-77, call 138 1234 5678 "
        "or mail zhang.san@example.com. Great delivery!",
    )
    # Slow Shop and Kettle never answer; the sweep records it.
    make_case(w["li"], w["slow"])
    clock.freeze(AFTER_DEADLINE)
    run_sweep(app, now=AFTER_DEADLINE)
    with app.app_context():
        w["references"] = {
            case.id: case.reference for case in db.session.scalars(db.select(Case))
        }
    return w


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def assert_no_personal_data(html: str, world) -> None:
    for secret in PERSONAL:
        assert secret not in html, secret
    for key in ("zhang", "li", "mediator", "arbitrator", "regulator"):
        assert world[key].email not in html
    for key in ("mediator", "arbitrator", "regulator", "kettle_staff"):
        assert world[key].name not in html


def row(html: str, attribute: str, value: str) -> str:
    """Return the HTML of the table row with ``attribute="value"``."""
    match = re.search(
        rf'<tr[^>]*{attribute}="{re.escape(value)}"[^>]*>(.*?)</tr>', html, re.S
    )
    assert match, f"no row {attribute}={value}"
    return match.group(1)


def text_of(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


# The merchant's credit page ---------------------------------------------------


def test_credit_page_shows_grade_factors_listing_record_and_events(client, world):
    html = page(client, f"/credit/merchants/{world['kettle'].id}?lang=en")
    standing = re.search(r'data-testid="standing">(.*?)</section>', html, re.S).group(1)
    assert 'data-grade="D"' in standing
    assert "Grade D: High risk" in text_of(standing)
    assert '<span class="score" data-testid="score">72.0</span>' in standing
    assert 'data-testid="listed-mark"' in standing
    assert 'data-testid="trusted-mark"' not in standing
    # Why it is listed, with the case behind it and since when.
    reason = text_of(row_li(standing, "not_fulfilled"))
    assert "A settlement or award was not fulfilled in time" in reason
    assert world["references"][world["awarded"]] in reason
    assert "since 2026-03-02" in text_of(standing)
    # The factors, each with its contribution; satisfaction counts from 3 ratings.
    factors = re.search(r'data-testid="factors">(.*?)</section>', html, re.S).group(1)
    assert 'data-points="-5.0"' in row(factors, "data-factor", "no_response")
    assert 'data-points="-3.0"' in row(factors, "data-factor", "award_against")
    assert 'data-points="-20.0"' in row(factors, "data-factor", "not_fulfilled")
    assert 'data-points="0.0"' in row(factors, "data-factor", "satisfaction")
    assert "72.0" in text_of(row(factors, "class", "total"))
    # The ledger: kind, points, date, case, weight now.
    ledger = re.search(r'data-testid="ledger">(.*?)</section>', html, re.S).group(1)
    silent = text_of(row(ledger, "data-kind", "no_response"))
    assert "Did not respond before the deadline" in silent
    assert "2026-03-06" in silent  # the sweep ran after midnight in Shanghai
    assert world["references"][world["silent"]] in silent
    assert 'data-weight="1.0"' in row(ledger, "data-kind", "no_response")
    assert "lists" in text_of(row(ledger, "data-kind", "not_fulfilled"))
    # History: the feed's rows.
    history = re.search(r'data-testid="history">(.*?)</section>', html, re.S).group(1)
    assert "Entered the dishonesty list" in text_of(
        row(history, "data-change", "listed")
    )
    assert "The merchant has not applied for credit repair." in text_of(history)
    # Nothing for the merchant's eyes only.
    assert 'data-testid="outlook"' not in html
    assert_no_personal_data(html, world)


def row_li(html: str, reason: str) -> str:
    match = re.search(rf'<li data-reason="{reason}">(.*?)</li>', html, re.S)
    assert match, f"no reason {reason}"
    return match.group(1)


def test_complaint_record_by_category_and_year(client, world):
    html = page(client, f"/credit/merchants/{world['kettle'].id}?lang=en")
    record = re.search(r'data-testid="record">(.*?)</section>', html, re.S).group(1)

    def counts(fragment: str) -> dict[str, int]:
        return {
            name: int(value)
            for name, value in re.findall(r'data-count="(\w+)">(\d+)<', fragment)
        }

    by_category = re.search(r'record-by-category">(.*?)</table>', record, re.S).group(1)
    assert counts(row(by_category, "data-key", "quality_defect")) == {
        "filed": 1,
        "answered_in_time": 0,
        "resolved": 0,
        "awards": 0,
        "awards_complied": 0,
        "not_complied": 0,
    }
    assert counts(row(by_category, "data-key", "delivery")) == {
        "filed": 1,
        "answered_in_time": 1,
        "resolved": 0,
        "awards": 1,
        "awards_complied": 0,
        "not_complied": 1,
    }
    by_year = re.search(r'record-by-year">(.*?)</table>', record, re.S).group(1)
    assert counts(row(by_year, "data-key", "2026")) == {
        "filed": 2,
        "answered_in_time": 1,
        "resolved": 0,
        "awards": 1,
        "awards_complied": 0,
        "not_complied": 1,
    }
    assert "delivery problem" in text_of(row(by_category, "data-key", "delivery"))


def test_satisfaction_shows_average_and_comments_without_personal_data(client, world):
    html = page(client, f"/credit/merchants/{world['good'].id}?lang=en")
    section = re.search(r'data-testid="satisfaction">(.*?)</section>', html, re.S)
    text = text_of(section.group(1))
    assert "Average rating 5.0 of 5 from 1 rating in the last 12 months." in text
    assert "Great delivery!" in text and "Quick refund for" in text
    assert "ORD-GOOD-77" not in html
    assert_no_personal_data(html, world)
    kettle = page(client, f"/credit/merchants/{world['kettle'].id}?lang=en")
    assert "商家一直没有退款" in kettle
    assert_no_personal_data(kettle, world)


def test_redact_hides_names_contacts_and_numbers():
    known = ("Li", "li.si@example.com", "li.si", "ORD-1")
    text = queries.redact(
        "Li said: delivery late, mail li.si@example.com or li.si@corp.cn, "
        "tel 138-1234-5678, ID 11010519491231002X, order ORD-1. Price 99.",
        known=known,
    )
    assert text == (
        "*** said: delivery late, mail *** or ***, tel ***, ID ***, order ***. "
        "Price 99."
    )
    assert queries.redact("张三很满意", known=("张三",)) == "***很满意"


def test_a_merchant_without_events_stands_at_the_base(client, world):
    html = page(client, f"/credit/merchants/{world['tea'].id}?lang=en")
    assert '<span class="score" data-testid="score">100.0</span>' in html
    assert "Grade A: Low risk" in text_of(html)
    assert "Not on the dishonesty list." in html
    assert "No complaint has been filed against this merchant." in html


def test_the_registry_entry_links_to_the_credit_page(client, world):
    html = page(client, f"/merchants/{world['kettle'].id}")
    assert f'href="/credit/merchants/{world["kettle"].id}"' in html


def test_unknown_merchant_is_404(client, world):
    assert client.get("/credit/merchants/999999").status_code == 404
    assert client.get("/credit/merchants/99999999999999999999").status_code == 404


def test_both_languages(client, world):
    for lang, tag in (("en", 'lang="en"'), ("zh_CN", 'lang="zh-CN"')):
        for path in (
            f"/credit/merchants/{world['kettle'].id}",
            "/credit/",
            "/credit/dishonest",
            "/credit/methodology",
        ):
            html = page(client, f"{path}?lang={lang}")
            assert tag in html, (lang, path)


# What the merchant's own staff see --------------------------------------------


def test_own_staff_see_what_would_raise_the_grade(client, auth, world):
    auth.login(world["kettle_staff"])
    html = page(client, f"/credit/merchants/{world['kettle'].id}?lang=en")
    outlook = re.search(r'data-testid="outlook">(.*?)</section>', html, re.S).group(1)
    # The listing: perform the award, then repair (12 months for the list).
    lift = text_of(row_li(outlook, "not_fulfilled"))
    assert "fulfil the obligation" in lift
    assert "from 2027-03-02" in lift
    # Each negative event: full weight until, counting until, repair.
    events = re.search(r'outlook-events">(.*?)</table>', outlook, re.S).group(1)
    silent_ids = re.findall(r'data-event-id="(\d+)"', events)
    assert len(silent_ids) == 3
    texts = [text_of(r) for r in re.findall(r"<tr data-event-id.*?</tr>", events, re.S)]
    no_response = next(t for t in texts if "Did not respond" in t)
    # Occurred 6 March 2026 (Shanghai): full until 2027, half until 2029.
    assert "2027-03-06" in no_response and "2029-03-06" in no_response
    assert "once the complaint is closed" in no_response  # still in mediation
    not_fulfilled = next(t for t in texts if "not fulfilled" in t)
    assert "from 2027-03-02" in not_fulfilled
    assert "how the settlement or award was performed" in not_fulfilled
    # The coming standing: still listed until repaired, so grade D throughout.
    projections = re.search(r'outlook-projections">(.*?)</table>', outlook, re.S)
    assert projections and 'data-grade="D"' in projections.group(1)
    assert "The trusted online merchant mark needs grade A" in text_of(outlook)


def test_other_staff_and_regulators_do_not_see_the_outlook(client, auth, world):
    for user in (world["good_staff"], world["regulator"]):
        auth.login(user)
        html = page(client, f"/credit/merchants/{world['kettle'].id}")
        assert 'data-testid="outlook"' not in html
        auth.logout()


def test_outlook_projects_the_grade_as_events_age():
    now = datetime(2026, 3, 2, tzinfo=UTC)
    entries = [
        Entry("no_response", -5, datetime(2025, 6, 1, tzinfo=UTC), id=1),
        Entry("no_response", -5, datetime(2025, 9, 1, tzinfo=UTC), id=2),
        Entry("no_response", -5, datetime(2026, 1, 10, tzinfo=UTC), id=3),
        Entry("award_against", -3, datetime(2024, 1, 5, tzinfo=UTC), id=4),
    ]
    result = explain.outlook(entries, now=now, model=DEFAULT_MODEL)
    # Three unanswered in 12 months list the merchant until the first ages out.
    (lift,) = result.listing
    assert lift.reason == "no_response_count"
    assert lift.lapses_at == datetime(2026, 6, 1, tzinfo=UTC)
    assert [e.id for e in lift.entries] == [1, 2, 3]
    assert [e.entry.id for e in result.events] == [4, 1, 2, 3]
    award = result.events[0]
    assert award.full_until == datetime(2025, 1, 5, tzinfo=UTC)
    assert award.counts_until == datetime(2027, 1, 5, tzinfo=UTC)
    first = result.projections[0]
    # 1 June 2026: the first leaves the full window: 100 - 2.5 - 10 - 1.5 = 86.
    assert (first.at, first.score, first.grade, first.listed) == (
        datetime(2026, 6, 1, tzinfo=UTC),
        86.0,
        "B",
        False,
    )
    assert result.projections[-1].score == 100.0
    assert result.projections[-1].grade == "A"


# The lists --------------------------------------------------------------------


def order_of(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-merchant-id="(\d+)"', html)]


def test_the_list_sorts_by_grade_score_and_name(client, world):
    ids = {name: world[name].id for name in ("kettle", "slow", "good", "tea", "mall")}
    by_grade = order_of(page(client, "/credit/"))
    # Best grade first, then the higher score; Tea House and Big Mall have no
    # standing row yet: base score, base grade (names break the tie).
    assert by_grade == [
        ids["good"],
        ids["mall"],
        ids["tea"],
        ids["slow"],
        ids["kettle"],
    ]
    assert order_of(page(client, "/credit/?sort=grade&order=desc")) == [
        ids["kettle"],
        ids["slow"],
        ids["mall"],
        ids["tea"],
        ids["good"],
    ]
    assert order_of(page(client, "/credit/?sort=score&order=asc"))[:2] == [
        ids["kettle"],
        ids["slow"],
    ]
    assert order_of(page(client, "/credit/?sort=name")) == [
        ids["mall"],
        ids["good"],
        ids["kettle"],
        ids["slow"],
        ids["tea"],
    ]
    assert order_of(page(client, "/credit/?sort=name&order=desc"))[0] == ids["tea"]


def test_the_list_filters_and_searches(client, world):
    assert_no_personal_data(page(client, "/credit/"), world)
    html = page(client, "/credit/?grade=D&lang=en")
    assert order_of(html) == [world["kettle"].id]
    listed = row(html, "data-merchant-id", str(world["kettle"].id))
    assert 'data-score="72.0"' in html and "On the dishonesty list" in listed
    assert order_of(page(client, "/credit/?kind=platform")) == [world["mall"].id]
    assert order_of(page(client, "/credit/?q=slow")) == [world["slow"].id]
    assert order_of(page(client, f"/credit/?q={world['tea'].uscc}")) == [
        world["tea"].id
    ]
    assert order_of(page(client, "/credit/?grade=A&kind=goods&sort=score")) == [
        world["good"].id,
        world["tea"].id,
        world["slow"].id,
    ]
    assert "No merchant matches the search." in page(
        client, "/credit/?q=nothing&lang=en"
    )


def test_the_list_pages(app, client, world):
    app.config["PAGE_SIZE"] = 2
    first = page(client, "/credit/?sort=name")
    second = page(client, "/credit/?sort=name&page=2")
    assert len(order_of(first)) == 2 and len(order_of(second)) == 2
    assert not set(order_of(first)) & set(order_of(second))
    assert "page=2" in first and "sort=name" in first
    assert order_of(page(client, "/credit/?sort=name&page=abc")) == order_of(first)


@pytest.mark.parametrize(
    "query", ["grade=E", "kind=shop", "sort=price", "order=up", "q=" + "x" * 101]
)
def test_bad_list_input_is_a_form_error(client, world, query):
    response = client.get(f"/credit/?{query}")
    assert response.status_code == 422
    assert 'class="error"' in response.get_data(as_text=True)


def test_the_dishonesty_list(client, world):
    html = page(client, "/credit/dishonest?lang=en")
    assert order_of(html) == [world["kettle"].id]
    entry = row(html, "data-merchant-id", str(world["kettle"].id))
    assert "2026-03-02" in text_of(entry)
    reason = text_of(row_li(entry, "not_fulfilled"))
    assert world["references"][world["awarded"]] in reason
    assert_no_personal_data(html, world)
    assert order_of(page(client, "/credit/dishonest?q=tea")) == []


# The methodology ----------------------------------------------------------------


def test_methodology_is_generated_from_the_model(app, client):
    html = page(client, "/credit/methodology?lang=en")
    points = re.search(r'data-testid="points-table">(.*?)</table>', html, re.S).group(1)
    nf = row(points, "data-kind", "not_fulfilled")
    assert re.search(r'data-norm="merchant">\s*-20<', nf)
    assert "and the dishonesty list" in nf
    assert re.search(
        r'data-norm="merchant">\s*<span class="muted">—',
        row(points, "data-kind", "escalation_late"),
    )
    assert re.search(
        r'data-norm="platform">\s*-2<', row(points, "data-kind", "escalation_late")
    )
    assert "at most +10 points a year" in row(points, "data-kind", "resolved_directly")
    assert "90 or more" in text_of(row(html, "data-grade", "A"))
    assert "below 60" in text_of(row(html, "data-grade", "D"))
    assert "for 12 months" in html and "to month 36" in html
    assert "3 complaints went unanswered within 12 months" in html
    assert "3 months after an event, or 12 months" in html
    # Change the model: the page follows.
    model = copy.deepcopy(DEFAULT_MODEL)
    model["points"]["merchant"]["not_fulfilled"] = -30
    model["bands"] = [["A", 95], ["B", 80], ["C", 60], ["D", None]]
    model["full_months"] = 6
    model["listing"]["no_response_count"] = 4
    model["repair_months"] = {"event": 2, "listing": 9}
    model["satisfaction"]["max_points"] = 3
    app.config["CREDIT_MODEL"] = model
    html = page(client, "/credit/methodology?lang=en")
    nf = row(html, "data-kind", "not_fulfilled")
    assert re.search(r'data-norm="merchant">\s*-30<', nf)
    assert "95 or more" in text_of(row(html, "data-grade", "A"))
    assert "80 to below 95" in text_of(row(html, "data-grade", "B"))
    assert "for 6 months" in html and "from month 7" in html
    assert "4 complaints went unanswered within 12 months" in html
    assert "2 months after an event, or 9 months" in html
    assert "at most 3 points either way" in html


def test_every_credit_page_publishes_the_points_table(client, world):
    html = page(client, f"/credit/merchants/{world['tea'].id}?lang=en")
    assert 'data-testid="points-table"' in html
    assert 'href="/credit/methodology"' in html


# The API --------------------------------------------------------------------------


def test_api_gives_the_credit_of_a_merchant(client, world):
    response = client.get(f"/api/v1/merchants/{world['kettle'].id}/credit")
    assert response.status_code == 200
    body = response.get_json()
    assert body["merchant_id"] == world["kettle"].id
    assert (body["score"], body["grade"], body["listed"], body["trusted"]) == (
        72.0,
        "D",
        True,
        False,
    )
    assert body["norm"] == "merchant"
    assert body["listing_reasons"] == ["not_fulfilled"]
    factors = {f["kind"]: f for f in body["factors"]}
    assert factors["not_fulfilled"] == {
        "kind": "not_fulfilled",
        "count": 1,
        "points": -20.0,
        "full": 1,
        "half": 0,
    }
    assert set(factors) == {"no_response", "award_against", "not_fulfilled"}
    assert body["satisfaction"] == {"average": 1.0, "ratings": 1, "points": 0.0}
    events = {e["kind"]: e for e in body["events"]}
    assert body["event_count"] == 3 and len(body["events"]) == 3
    assert (
        events["not_fulfilled"]["case_reference"]
        == world["references"][world["awarded"]]
    )
    assert events["not_fulfilled"]["lists"] is True
    assert events["no_response"]["weight"] == 1.0
    assert events["no_response"]["repaired"] is False
    assert events["no_response"]["occurred_at"] == "2026-03-05T16:00:00+00:00"
    assert body["as_of"] == "2026-03-05T16:00:00+00:00"
    assert_no_personal_data(response.get_data(as_text=True), world)


def test_api_for_a_merchant_without_events_and_unknown_merchants(client, world):
    body = client.get(f"/api/v1/merchants/{world['tea'].id}/credit").get_json()
    assert (body["score"], body["grade"], body["listed"]) == (100.0, "A", False)
    assert body["events"] == [] and body["factors"] == []
    assert body["satisfaction"] == {"average": None, "ratings": 0, "points": 0.0}
    missing = client.get("/api/v1/merchants/999999/credit")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"


def test_api_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/merchants/{merchant_id}/credit"]["get"]
    assert "x-spec-error" not in operation
    schema = spec["components"]["schemas"]["MerchantCredit"]
    assert {"score", "grade", "listed", "trusted", "factors", "events"} <= set(
        schema["properties"]
    )


# Repair on the record ---------------------------------------------------------------


def test_repair_shows_as_pending_then_repaired_and_delisted(app, client, auth, world):
    from mediation.credit import repair
    from mediation.credit.models import CreditEvent

    a_year_later = datetime(2027, 3, 3, 2, 0, tzinfo=UTC)
    clock.freeze(a_year_later)
    with app.app_context():
        ids = db.session.scalars(
            db.select(CreditEvent.id).where(
                CreditEvent.case_id == world["awarded"],
            )
        ).all()
        application = repair.apply(
            world["kettle"].id,
            db.session.get(User, world["kettle_staff"].id),
            ids,
            "We refunded 120 yuan on 1 April 2026 and answer within a day now.",
            now=a_year_later,
        )
        db.session.commit()
        application_id = application.id
    auth.login(world["kettle_staff"])
    html = page(client, f"/credit/merchants/{world['kettle'].id}?lang=en")
    outlook = re.search(r'data-testid="outlook">(.*?)</section>', html, re.S).group(1)
    assert outlook.count('data-repair="pending"') == 2
    auth.logout()
    html = page(client, f"/credit/merchants/{world['kettle'].id}?lang=en")
    assert 'data-repair-status="pending"' in html
    assert "We refunded 120 yuan" in html
    with app.app_context():
        repair.decide(
            application_id,
            db.session.get(User, world["regulator"].id),
            True,
            "The bank statement shows the refund.",
            now=a_year_later,
            performance_verified=True,
        )
        db.session.commit()
    html = page(client, f"/credit/merchants/{world['kettle'].id}?lang=en")
    standing = re.search(r'data-testid="standing">(.*?)</section>', html, re.S).group(1)
    assert 'data-grade="A"' in standing and "Not on the dishonesty list." in standing
    assert '<span class="score" data-testid="score">95.0</span>' in standing
    ledger = re.search(r'data-testid="ledger">(.*?)</section>', html, re.S).group(1)
    for kind in ("award_against", "not_fulfilled"):
        repaired = row(ledger, "data-kind", kind)
        assert "Repaired on 2027-03-03" in text_of(repaired)
        assert 'data-weight="0.0"' in repaired
    history = re.search(r'data-testid="history">(.*?)</section>', html, re.S).group(1)
    assert "Left the dishonesty list" in text_of(
        row(history, "data-change", "delisted")
    )
    assert "Credit repaired" in text_of(row(history, "data-change", "repaired"))
    decided = text_of(row(history, "data-repair-status", "approved"))
    assert "Approved" in decided and "The bank statement shows the refund." in decided
    assert order_of(page(client, "/credit/dishonest")) == []
    assert_no_personal_data(html, world)


# Large ledgers: the page's cost does not grow with them ---------------------------

BIG = 130


def grow_ledger(app, merchant, *, now, expired: int = 0) -> list[int]:
    """Give a merchant BIG ledger events of no case (as alerts have), a day
    apart, the ``expired`` oldest ones older than every window; return their ids,
    newest first."""
    from mediation.credit import ledger
    from mediation.credit.models import CreditEvent

    kinds = ["late_response", "resolved_directly", "mediation_failed", "no_response"]
    with app.app_context():
        rows = []
        for n in range(BIG):
            age = timedelta(days=n + (1200 if n >= BIG - expired else 0))
            rows.append(
                CreditEvent(
                    merchant_id=merchant.id,
                    case_id=None,
                    kind=kinds[n % len(kinds)],
                    points=DEFAULT_MODEL["points"]["merchant"][kinds[n % len(kinds)]],
                    occurred_at=now - age,
                    data={"reference": f"MC-TEST-{n:04d}"},
                    created_at=now,
                )
            )
        db.session.add_all(rows)
        db.session.flush()
        ledger.refresh_standing(merchant.id, now=now)
        db.session.commit()
        return [row.id for row in rows]


@contextmanager
def ledger_rows_loaded():
    """Count the ledger rows the ORM loads meanwhile."""
    from sqlalchemy import event

    from mediation.credit.models import CreditEvent

    loaded: list[int] = []

    def on_load(target, _context):
        loaded.append(target.id)

    event.listen(CreditEvent, "load", on_load)
    try:
        yield loaded
    finally:
        event.remove(CreditEvent, "load", on_load)


def test_a_large_ledger_shows_the_newest_events_and_pages_the_rest(app, client, world):
    from mediation.credit import ledger

    now = clock.now_utc()
    ids = grow_ledger(app, world["tea"], now=now)
    with ledger_rows_loaded() as loaded:
        html = page(client, f"/credit/merchants/{world['tea'].id}?lang=en")
    section = re.search(r'data-testid="ledger">(.*?)</section>', html, re.S).group(1)
    shown = [int(i) for i in re.findall(r'data-event-id="(\d+)"', section)]
    assert shown == ids[:50]  # the newest, newest first
    assert "The 50 most recent of 130 events." in text_of(section)
    assert f'href="/credit/merchants/{world["tea"].id}/events"' in section
    # Not the whole ledger: what is shown, and the unanswered complaints that
    # list the merchant (named in the listing).
    standing = re.search(r'data-testid="standing">(.*?)</section>', html, re.S)
    named = row_li(standing.group(1), "no_response_count")
    listing = {ids[n] for n in range(BIG) if f"MC-TEST-{n:04d}" in named}
    assert len(listing) == (BIG + 1) // 4  # every fourth is a silence
    # (and one more row: the sign that older events follow)
    assert set(loaded) - set(shown) - listing <= {ids[50]}
    # The factors are the model's, over the whole ledger.
    with app.app_context():
        computed = ledger.compute(world["tea"].id, now=now)
    factors = re.search(r'data-testid="factors">(.*?)</section>', html, re.S).group(1)
    for factor in computed.factors:
        assert f'data-points="{factor.points:.1f}"' in row(
            factors, "data-factor", factor.kind
        )
    assert sum(f.count for f in computed.factors) == BIG
    assert f">{computed.score:.1f}</span>" in html
    # The whole history, a hundred at a time.
    pages = []
    for n in (1, 2):
        listing = page(
            client, f"/credit/merchants/{world['tea'].id}/events?page={n}&lang=en"
        )
        pages.append([int(i) for i in re.findall(r'data-event-id="(\d+)"', listing)])
    assert pages[0] == ids[:100] and pages[1] == ids[100:]
    assert "Page 2 of 2" in listing and "130 events, newest first." in listing
    beyond = page(client, f"/credit/merchants/{world['tea'].id}/events?page=3&lang=en")
    assert "No events on this page." in beyond
    assert client.get("/credit/merchants/999999/events").status_code == 404


def test_own_staff_see_the_outlook_of_a_large_ledger_from_the_events_that_count(
    app, client, auth, world, make_user
):
    from mediation.credit import explain, ledger

    now = clock.now_utc()
    grow_ledger(app, world["tea"], now=now, expired=100)
    staff = make_user("merchant", merchant_id=world["tea"].id)
    auth.login(staff)
    html = page(client, f"/credit/merchants/{world['tea'].id}?lang=en")
    with app.app_context():
        everything = explain.outlook(
            ledger.entries_of(world["tea"].id), now=now, model=DEFAULT_MODEL
        )
    outlook = re.search(r'data-testid="outlook">(.*?)</section>', html, re.S).group(1)
    events = re.search(r'outlook-events">(.*?)</table>', outlook, re.S).group(1)
    assert [int(i) for i in re.findall(r'data-event-id="(\d+)"', events)] == [
        item.entry.id for item in everything.events
    ]
    projections = re.search(r'outlook-projections">(.*?)</table>', outlook, re.S)
    rows = re.findall(r"<tr><td", projections.group(1))
    assert len(rows) == len(everything.projections)


def test_the_page_computes_the_standing_when_the_stored_one_is_out_of_date(
    app, client, world
):
    """After an event leaves its window and before the sweep refreshes the
    stored standing, or under another model, the page shows the standing of now."""
    from mediation.credit import ledger
    from mediation.credit.models import CreditStanding

    kettle = world["kettle"].id
    later = datetime(2027, 4, 1, 2, 0, tzinfo=UTC)  # the events count half now
    clock.freeze(later)
    with app.app_context():
        stored = db.session.get(CreditStanding, kettle)
        assert stored.next_change_at <= later and stored.score == 72.0
        expected = ledger.compute(kettle, now=later)
    assert expected.score == 86.0  # 100 - 2.5 - 1.5 - 10
    html = page(client, f"/credit/merchants/{kettle}?lang=en")
    assert '<span class="score" data-testid="score">86.0</span>' in html
    body = client.get(f"/api/v1/merchants/{kettle}/credit").get_json()
    assert body["score"] == 86.0
    assert {f["kind"]: f["half"] for f in body["factors"]}["no_response"] == 1
    # Another model: the stored standing was made under the old one.
    clock.freeze(AFTER_DEADLINE)
    model = copy.deepcopy(DEFAULT_MODEL)
    model["bands"] = [["A", 102], ["B", 80], ["C", 60], ["D", None]]
    app.config["CREDIT_MODEL"] = model
    html = page(client, f"/credit/merchants/{world['good'].id}?lang=en")
    assert "Grade B: Ordinary risk" in text_of(html)


def test_stored_standings_are_what_the_ledger_gives(app, world):
    from mediation.credit import ledger
    from mediation.credit.models import CreditStanding

    now = clock.now_utc()
    with app.app_context():
        rows = db.session.scalars(db.select(CreditStanding)).all()
        assert {r.merchant_id for r in rows} >= {world["kettle"].id, world["good"].id}
        for stored in rows:
            held = ledger.stored_standing(stored, now=now, model=DEFAULT_MODEL)
            assert held == ledger.compute(stored.merchant_id, now=now)


def test_a_settlement_in_mediation_refreshes_the_standing_it_changes(
    app, world, make_case
):
    """Five resolved complaints give Good Shop the trusted mark: the last four
    settled in mediation, which gives no ledger event, still refresh it."""
    from mediation.credit import ledger
    from mediation.credit.models import CreditChange, CreditStanding

    good, staff = world["good"], world["good_staff"]
    for n in range(4):
        case_id = make_case(world["li"], good, order_ref=f"ORD-MED-{n}")
        apply(app, case_id, "reject", staff, "merchant", reason="Not ours.")
        apply(app, case_id, "take", world["mediator"], "mediator")
        apply(app, case_id, "propose", world["mediator"], "mediator", **OFFER)
        apply(app, case_id, "accept_proposal", world["li"], "consumer")
        apply(app, case_id, "accept_proposal", staff, "merchant")
        apply(app, case_id, "mark_fulfilled", staff, "merchant")
        apply(app, case_id, "confirm_fulfilment", world["li"], "consumer")
    with app.app_context():
        stored = db.session.get(CreditStanding, good.id)
        assert stored.trusted and ledger.compute(good.id, now=clock.now_utc()).trusted
        kinds = db.session.scalars(
            db.select(CreditChange.kind).where(CreditChange.merchant_id == good.id)
        ).all()
    assert "trusted" in kinds


def test_api_pages_through_a_large_ledger(app, client, world, make_merchant):
    now = clock.now_utc()
    ids = grow_ledger(app, world["tea"], now=now)
    base = f"/api/v1/merchants/{world['tea'].id}/credit"
    body = client.get(base).get_json()
    assert body["event_count"] == BIG and len(body["events"]) == BIG
    assert body["events_next"] is None
    seen, cursor = [], None
    while True:
        query = "?events_limit=40" + (f"&events_before={cursor}" if cursor else "")
        body = client.get(base + query).get_json()
        seen += [e["id"] for e in body["events"]]
        cursor = body["events_next"]
        if cursor is None:
            break
        assert cursor == body["events"][-1]["id"]
    assert seen == ids  # every event once, newest first
    other = make_merchant(name="Other Shop")
    foreign = grow_ledger(app, other, now=now)[0]
    for query, code in (
        ("events_limit=0", "bad_limit"),
        ("events_limit=1001", "bad_limit"),
        ("events_limit=ten", "bad_limit"),
        ("events_before=abc", "bad_cursor"),
        ("events_before=0", "bad_cursor"),
        ("events_before=99999999999", "bad_cursor"),
        (f"events_before={foreign}", "bad_cursor"),
    ):
        response = client.get(f"{base}?{query}")
        assert response.status_code == 400, query
        assert response.get_json()["error"]["code"] == code


def test_the_record_counts_local_years_and_orders_categories(app, world, make_case):
    """Filing times are UTC, years local (Shanghai); categories by complaints."""
    from zoneinfo import ZoneInfo

    tea = world["tea"]
    for at, category in (
        (datetime(2024, 12, 31, 15, 59, tzinfo=UTC), "delivery"),  # 2024 local
        (datetime(2024, 12, 31, 16, 0, tzinfo=UTC), "delivery"),  # 2025 local
        (datetime(2025, 6, 1, 2, 0, tzinfo=UTC), "counterfeit"),
        (datetime(2025, 6, 2, 2, 0, tzinfo=UTC), "after_sales"),
        (datetime(2025, 6, 3, 2, 0, tzinfo=UTC), "counterfeit"),
    ):
        clock.freeze(at)
        make_case(
            world["zhang"],
            tea,
            category=category,
            order_ref=f"O-{at:%j%H}",
            order_date=(at - timedelta(days=3)).date(),
        )
    with app.app_context():
        record = queries.complaint_record(tea.id, zone=ZoneInfo("Asia/Shanghai"))
    assert [(r.key, r.filed) for r in record.by_category] == [
        ("counterfeit", 2),
        ("delivery", 2),
        ("after_sales", 1),
    ]
    assert [(r.key, r.filed) for r in record.by_year] == [(2024, 1), (2025, 4)]
    assert record.total.filed == 5
