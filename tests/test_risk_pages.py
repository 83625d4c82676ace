"""The risk list, merchant risk and text flag pages: what they show, their
filters and forms, bad input (form errors and 4xx, never a 500), and the access
matrix of every endpoint of this part (only regulators; merchant staff see only
their own merchant's interviews)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.analytics import interviews, risk
from mediation.analytics.risk_models import RiskScore, WarningInterview
from mediation.analytics.tagging_models import CaseTag, TextFlag
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.extensions import db
from tests.conftest import PASSWORD

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def file(app, consumer, merchant, text: str, category: str, days_ago: int) -> int:
    with app.app_context():
        case = services.file_case(
            db.session.get(User, consumer.id),
            services.Filing(
                merchant_id=merchant.id,
                category=category,
                order_ref=f"P-{days_ago}-{abs(hash(text)) % 10**6}",
                order_date=date(2026, 1, 2),
                amount_paid=5000,
                claim_type="refund",
                claim_amount=5000,
                description=text,
            ),
            now=NOW - timedelta(days=days_ago),
        )
        db.session.commit()
        return case.id


@pytest.fixture()
def world(app, make_user, make_merchant):
    clock.freeze(NOW)
    mall = make_merchant(name="Whale Mall", kind="platform", region_code="330100")
    shop = make_merchant(
        name="Brushing Boutique", region_code="330106", platform_id=mall.id
    )
    other = make_merchant(name="Quiet Tea", region_code="350102")
    consumer = make_user("consumer")
    users = {
        "anon": None,
        "consumer": consumer,
        "staff": make_user("merchant", merchant_id=shop.id),
        "other_staff": make_user("merchant", merchant_id=other.id),
        "mediator": make_user("mediator"),
        "arbitrator": make_user("arbitrator"),
        "regulator": make_user("regulator"),
    }
    q = "quality_defect"
    cases = [
        file(app, consumer, shop, "收到的裙子开线了，店铺还刷单冲销量。", q, 2),
        file(app, consumer, shop, "The shoes are a knock-off of a famous brand.", q, 4),
        file(app, consumer, shop, "商品与描述不符，尺码偏小很多。", q, 6),
        file(app, consumer, other, "茶叶受潮了，希望退款处理。", q, 3),
    ]
    with app.app_context():
        risk.refresh_risk_scores(now=NOW)
        merchant = interviews.lock_merchant(shop.id)
        interview = interviews.plan_interview(
            merchant,
            interviews.PlanInput(
                reason="Brushed orders.", planned_for=date(2026, 3, 9)
            ),
            actor=db.session.get(User, users["regulator"].id),
            now=NOW,
        )
        db.session.commit()
        flag_ids = list(
            db.session.scalars(db.select(TextFlag.id).order_by(TextFlag.id))
        )
    yield {
        "mall": mall,
        "shop": shop,
        "other": other,
        "users": users,
        "cases": cases,
        "interview": interview.id,
        "flags": flag_ids,
    }
    clock.unfreeze()


def login(app, user):
    client = app.test_client()
    if user is not None:
        response = client.post(
            "/login", data={"email": user.email, "password": PASSWORD}
        )
        assert response.status_code == 302
    return client


LOGIN = "login"
REGULATOR_ONLY = {
    "anon": LOGIN,
    "consumer": 403,
    "staff": 403,
    "other_staff": 403,
    "mediator": 403,
    "arbitrator": 403,
}


def _flag_form(w):
    return {"decision": "dismiss", "reason": "Not supported by the text."}


#: (method, path, body, what the regulator gets); every other actor per REGULATOR_ONLY.
ROWS = [
    ("GET", "/supervision/risk", None, 200),
    ("GET", "/supervision/risk?region=33&min_score=1", None, 200),
    ("GET", "/supervision/risk/merchants/{shop}", None, 200),
    ("POST", "/supervision/risk/merchants/{shop}/refresh", None, 303),
    (
        "POST",
        "/supervision/risk/merchants/{other}/interviews",
        lambda w: {"reason": "Late answers.", "planned_for": "2026-03-10"},
        303,
    ),
    ("GET", "/supervision/interviews", None, 200),
    ("GET", "/supervision/interviews/{interview}", None, 200),
    (
        "POST",
        "/supervision/interviews/{interview}",
        lambda w: {"step": "cancel", "cancel_reason": "Moved online."},
        303,
    ),
    ("GET", "/supervision/tagging", None, 200),
    ("GET", "/supervision/tagging/{flag}", None, 200),
    ("POST", "/supervision/tagging/{flag}", _flag_form, 303),
]


def _path(template: str, w) -> str:
    return template.format(
        shop=w["shop"].id,
        other=w["other"].id,
        interview=w["interview"],
        flag=w["flags"][0],
    )


def _observe(response) -> object:
    if response.status_code in (302, 303) and "/login" in response.headers.get(
        "Location", ""
    ):
        return LOGIN
    return response.status_code


def test_only_regulators_reach_the_supervision_pages(app, world):
    clients = {actor: login(app, user) for actor, user in world["users"].items()}
    wrong = {}
    # Every actor but the regulator is refused before anything changes; the
    # regulator's requests run last in each row.
    for method, template, body, regulator_gets in ROWS:
        expected = {**REGULATOR_ONLY, "regulator": regulator_gets}
        for actor, client in clients.items():
            response = client.open(
                _path(template, world),
                method=method,
                data=body(world) if body else None,
            )
            got = _observe(response)
            if got != expected[actor]:
                wrong[f"{method} {template} {actor}"] = got
    assert not wrong


def test_merchant_interview_page_access(app, world):
    got = {}
    for actor, user in world["users"].items():
        response = login(app, user).get("/interviews/")
        seen = b"Brushed orders." in response.data
        got[actor] = (
            (_observe(response), seen)
            if response.status_code == 200
            else (_observe(response))
        )
    assert got == {
        "anon": LOGIN,
        "consumer": 403,
        "staff": (200, True),
        "other_staff": (200, False),
        "mediator": 403,
        "arbitrator": 403,
        "regulator": 403,
    }


def test_the_risk_list_shows_rank_score_factors_trend_and_interview(app, world):
    client = login(app, world["users"]["regulator"])
    page = client.get("/supervision/risk?lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    rows = re.findall(
        r'data-testid="risk-row" data-merchant-id="(\d+)" data-score="([\d.]+)"', html
    )
    # Shop: 3 recent complaints, counterfeit weight 3 (the knock-off is confirmed
    # nowhere yet, so only filed categories count): 6 + 1.5 + 6 = 13.5;
    # tea: 2 + 0.5 + 2 = 4.5.
    assert rows == [(str(world["shop"].id), "13.5"), (str(world["other"].id), "4.5")]
    assert 'data-testid="risk-rank">1<' in html
    assert 'data-trend="up"' in html
    assert 'data-interview="planned"' in html
    # The model is printed from the same dictionary.
    assert 'data-testid="risk-model"' in html and "Category weights" in html
    filtered = client.get(f"/supervision/risk?platform={world['mall'].id}&lang=en")
    assert f'data-merchant-id="{world["other"].id}"' not in filtered.get_data(
        as_text=True
    )
    by_region = client.get("/supervision/risk?region=35").get_data(as_text=True)
    assert f'data-merchant-id="{world["shop"].id}"' not in by_region


BAD_FILTERS = (
    "min_score=abc",
    "min_score=-1",
    "min_score=101",
    "region=33x",
    "region=1234567",
    "platform=999999",
    "platform=abc",
    "category=bogus",
)


def test_bad_filters_are_form_errors(app, world):
    client = login(app, world["users"]["regulator"])
    for query in BAD_FILTERS:
        response = client.get(f"/supervision/risk?{query}")
        assert response.status_code == 422, query
        assert b'class="error"' in response.data, query


def test_bad_pages_and_ids_are_4xx(app, world):
    client = login(app, world["users"]["regulator"])
    assert client.get("/supervision/risk?page=0").status_code == 400
    assert client.get("/supervision/risk?page=x").status_code == 400
    assert client.get("/supervision/risk?page=99").status_code == 200
    assert client.get("/supervision/tagging?page=-1").status_code == 400
    assert client.get("/supervision/tagging?status=bogus&category=x").status_code == 200
    assert client.get("/supervision/interviews?page=abc").status_code == 400
    assert client.get("/supervision/tagging/99999999").status_code == 404
    assert client.get("/supervision/risk/merchants/99999999999").status_code == 404
    assert client.post("/supervision/risk/merchants/999999/refresh").status_code == 404


def test_the_merchant_risk_page_shows_every_factor_and_its_cases(app, world):
    client = login(app, world["users"]["regulator"])
    html = client.get(
        f"/supervision/risk/merchants/{world['shop'].id}?lang=en"
    ).get_data(as_text=True)
    for name in (
        "complaints_recent",
        "complaints_long",
        "trend",
        "categories",
        "sla_breaches",
        "noncompliance",
        "credit",
    ):
        assert f'data-factor="{name}"' in html
    assert 'data-factor="trend" data-points="6.0"' in html
    with app.app_context():
        references = [db.session.get(Case, c).reference for c in world["cases"][:3]]
    for reference in references:
        assert reference in html
    assert 'data-testid="interview-planned"' in html


def test_updating_one_merchant_from_its_page(app, world):
    client = login(app, world["users"]["regulator"])
    with app.app_context():
        db.session.execute(
            db.delete(RiskScore).where(RiskScore.merchant_id == world["shop"].id)
        )
        db.session.commit()
    response = client.post(f"/supervision/risk/merchants/{world['shop'].id}/refresh")
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(RiskScore, world["shop"].id).score == 13.5


def test_the_flag_queue_marks_the_keywords_and_takes_decisions(app, world):
    client = login(app, world["users"]["regulator"])
    page = client.get("/supervision/tagging?lang=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<mark>刷单</mark>" in html
    assert "<mark>knock-off</mark>" in html
    assert 'data-testid="tagging-precision"' in html
    with app.app_context():
        flags = {
            f.suggested_category: f.id for f in db.session.scalars(db.select(TextFlag))
        }
    assert set(flags) == {"fake_reviews", "counterfeit"}
    only = client.get("/supervision/tagging?category=counterfeit").get_data(
        as_text=True
    )
    assert f'data-flag-id="{flags["counterfeit"]}"' in only
    assert f'data-flag-id="{flags["fake_reviews"]}"' not in only
    # Dismissing without a reason: the flag's page with the error.
    refused = client.post(
        f"/supervision/tagging/{flags['counterfeit']}", data={"decision": "dismiss"}
    )
    assert refused.status_code == 422 and b'class="error"' in refused.data
    assert (
        client.post(
            f"/supervision/tagging/{flags['counterfeit']}", data={"decision": "maybe"}
        ).status_code
        == 422
    )
    # Confirming goes back to the list it came from.
    confirmed = client.post(
        f"/supervision/tagging/{flags['fake_reviews']}",
        data={"decision": "confirm", "next": "/supervision/tagging?status=pending"},
    )
    assert confirmed.status_code == 303
    assert confirmed.headers["Location"].endswith("/supervision/tagging?status=pending")
    # Deciding again is a conflict; a foreign next is ignored.
    again = client.post(
        f"/supervision/tagging/{flags['fake_reviews']}",
        data={"decision": "dismiss", "reason": "x", "next": "https://evil.example"},
    )
    assert again.status_code == 409
    dismissed = client.post(
        f"/supervision/tagging/{flags['counterfeit']}",
        data={
            "decision": "dismiss",
            "reason": "A style, not a fake.",
            "next": "//evil",
        },
    )
    assert dismissed.status_code == 303
    assert dismissed.headers["Location"].endswith(
        f"/supervision/tagging/{flags['counterfeit']}"
    )
    with app.app_context():
        assert db.session.scalars(db.select(CaseTag.category)).all() == ["fake_reviews"]
    decided = client.get("/supervision/tagging?status=dismissed").get_data(as_text=True)
    assert "A style, not a fake." in decided
    # Confirmed tags raise the category weight on the next refresh (+3).
    with app.app_context():
        risk.refresh_risk_scores(now=NOW)
        db.session.commit()
        assert db.session.get(RiskScore, world["shop"].id).score == 16.5


def test_supervision_tabs_link_the_pages(app, world):
    html = (
        login(app, world["users"]["regulator"])
        .get("/supervision/risk")
        .get_data(as_text=True)
    )
    for testid in ("subnav-risk", "subnav-interviews", "subnav-tagging"):
        assert f'data-testid="{testid}"' in html
    staff_page = login(app, world["users"]["staff"]).get("/interviews/")
    assert b'data-testid="nav-interviews"' in staff_page.data
    with app.app_context():
        assert db.session.get(WarningInterview, world["interview"]).status == "planned"


GARBAGE = (
    {},
    {"reason": "x" * 5000, "planned_for": "yesterday"},
    {"step": "held", "held_on": "2026-02-30", "summary": "", "follow_up_on": "x"},
    {"step": "cancel", "cancel_reason": ""},
    {"decision": "dismiss", "reason": "y" * 2000},
    {"decision": ["confirm", "dismiss"], "next": "javascript:alert(1)"},
)


def test_garbage_posted_to_every_form_is_never_a_server_error(app, world):
    client = login(app, world["users"]["regulator"])
    targets = [
        f"/supervision/risk/merchants/{world['shop'].id}/interviews",
        f"/supervision/interviews/{world['interview']}",
        f"/supervision/tagging/{world['flags'][1]}",
    ]
    for path in targets:
        for body in GARBAGE:
            response = client.post(path, data=body)
            assert 400 <= response.status_code < 500 or response.status_code == 303, (
                path,
                body,
                response.status_code,
            )
    # The flag and the interview are still waiting for a decision.
    with app.app_context():
        assert db.session.get(TextFlag, world["flags"][1]).status in (
            "pending",
            "confirmed",
        )
