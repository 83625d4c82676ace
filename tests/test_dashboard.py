"""The dashboard page, its CSV files and ``GET /api/v1/stats``: access, content,
filters and bad input.

A small world in March 2026: two complaints against a shop in 杭州市西湖区 on a
platform (one settled for 150 yuan and rated 4), one against an independent
shop in 北京市朝阳区, and one from February (the previous period).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.extensions import db

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
CHARTS = (
    "volume",
    "categories",
    "regions",
    "sla",
    "outcomes",
    "satisfaction",
    "merchants",
    "platforms",
)


def local(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC) - timedelta(hours=8)


def act(app, case_id, action, who, relation, at, **payload):
    clock.freeze(at)
    with app.app_context():
        services.apply_action(
            db.session.get(Case, case_id),
            action,
            payload,
            actor=db.session.get(User, who.id),
            relation=relation,
            now=at,
        )
        db.session.commit()


@pytest.fixture()
def world(app, make_user, make_merchant, make_case):
    platform = make_merchant(name="鲸选商城", kind="platform", region_code="330106")
    shop = make_merchant(name="优品家电", region_code="330106", platform_id=platform.id)
    other = make_merchant(name="=HYPERLINK(1)", region_code="110105")
    consumer = make_user("consumer")
    staff = make_user("merchant", merchant_id=shop.id)
    regulator = make_user("regulator")
    clock.freeze(local(16, 10, month=2))
    make_case(consumer, other, category="delivery", order_ref="FEB")
    clock.freeze(local(2, 10))
    settled = make_case(consumer, shop, order_ref="M1")
    make_case(consumer, shop, order_ref="M2", category="false_advertising")
    make_case(consumer, other, category="delivery", order_ref="M3")
    offer = {"type": "refund", "amount": 15000, "deadline": date(2026, 3, 20)}
    act(app, settled, "offer", staff, "merchant", local(3, 10), text="Refund.", **offer)
    act(app, settled, "accept_offer", consumer, "consumer", local(4, 10))
    act(app, settled, "mark_fulfilled", staff, "merchant", local(5, 10))
    act(app, settled, "confirm_fulfilment", consumer, "consumer", local(6, 10))
    act(app, settled, "rate", consumer, "consumer", local(6, 11), score=4)
    clock.freeze(local(20, 10))
    return {
        "platform": platform,
        "shop": shop,
        "other": other,
        "consumer": consumer,
        "regulator": regulator,
        "staff": staff,
    }


def rows_of(response) -> list[list[str]]:
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


# The page -----------------------------------------------------------------------


def test_the_regulator_sees_every_chart_with_its_table_and_csv_link(
    client, auth, world
):
    auth.login(world["regulator"])
    response = client.get("/supervision/?lang=en")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    # Default period: this month (1 to 20 March), against 10 to 28 February.
    assert "2026-03-01 to 2026-03-20" in page
    assert "2026-02-09 to 2026-02-28" in page
    for chart in CHARTS:
        assert f'data-testid="chart-{chart}"' in page
        assert f'id="chart-data-{chart}"' in page
        assert f'data-testid="table-{chart}"' in page
        assert (
            f"/supervision/data/{chart}.csv?from=2026-03-01&amp;to=2026-03-20" in page
        )
    assert 'data-testid="headline-complaints" data-value="3"' in page
    assert 'data-testid="headline-recovered" data-value="15000"' in page
    assert "¥150.00" in page
    assert "杭州市西湖区 (330106)" in page or "浙江省" in page
    assert "/static/vendor/chart.js/chart.umd.min.js" in page
    assert "cdn" not in page.lower()


def test_the_page_speaks_chinese(client, auth, world):
    auth.login(world["regulator"])
    page = client.get("/supervision/?lang=zh_CN").get_data(as_text=True)
    assert "监管总览" in page
    assert "按投诉类别" in page and "时限遵守率" in page
    assert "浙江省" in page and "下载 CSV" in page or "CSV" in page


def test_filters_narrow_the_numbers_and_the_region_chart_drills_down(
    client, auth, world
):
    auth.login(world["regulator"])
    page = client.get(
        "/supervision/", query_string={**MARCH, "region": "杭州", "lang": "en"}
    ).get_data(as_text=True)
    assert 'data-testid="headline-complaints" data-value="2"' in page
    assert "Complaints by county or district" in page
    by_platform = client.get(
        "/supervision/",
        query_string={**MARCH, "platform": "none", "category": "delivery"},
    ).get_data(as_text=True)
    assert 'data-testid="headline-complaints" data-value="1"' in by_platform


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to"),
        ({"from": "2020-01-01", "to": "2026-03-01"}, "from"),
        ({"region": "不存在的地方"}, "region"),
        ({"region": "西湖区"}, "region"),
        ({"category": "nonsense"}, "category"),
        ({"platform": "99999"}, "platform"),
        ({"platform": "-1"}, "platform"),
        ({"period": "forever"}, "period"),
    ],
)
def test_bad_filters_are_form_errors_and_422_never_a_crash(
    client, auth, token_for, make_user, args, field
):
    regulator = make_user("regulator")
    auth.login(regulator)
    page = client.get("/supervision/", query_string={**args, "lang": "en"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="filter-errors"' in html
    assert 'class="error"' in html
    api = client.get("/api/v1/stats", query_string=args, headers=token_for(regulator))
    assert api.status_code == 422
    assert field in api.get_json()["error"]["fields"]
    csv_file = client.get("/supervision/data/categories.csv", query_string=args)
    assert csv_file.status_code == 422


def test_a_platform_filter_must_name_a_platform(client, auth, world):
    auth.login(world["regulator"])
    page = client.get(
        "/supervision/", query_string={"platform": world["shop"].id, "lang": "en"}
    ).get_data(as_text=True)
    assert "This is not a registered platform." in page


# CSV ------------------------------------------------------------------------------


def test_csv_is_utf8_with_bom_for_excel_and_holds_the_table(client, auth, world):
    auth.login(world["regulator"])
    response = client.get(
        "/supervision/data/categories.csv", query_string={**MARCH, "lang": "en"}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="complaints-by-category_2026-03-01_2026-03-31.csv"'
    )
    assert b"\r\n" in response.data
    rows = rows_of(response)
    assert rows[0] == ["Category", "Complaints", "Previous period", "Change"]
    table = {row[0]: row[1:] for row in rows[1:]}
    assert table["Quality defect"] == ["1", "0", ""]
    assert table["Non-delivery or delivery problem"] == ["1", "1", "0.0000"]
    assert table["False advertising"] == ["1", "0", ""]
    assert len(rows) == 1 + 11  # every category


def test_csv_of_outcomes_sla_and_merchants(client, auth, world):
    auth.login(world["regulator"])
    outcomes = rows_of(
        client.get(
            "/supervision/data/outcomes.csv", query_string={**MARCH, "lang": "en"}
        )
    )
    settled = next(row for row in outcomes if row[0] == "Settled directly")
    assert settled[1] == "1" and settled[4] == "150.00"
    sla = rows_of(
        client.get("/supervision/data/sla.csv", query_string={**MARCH, "lang": "en"})
    )
    assert sla[0][:6] == [
        "Stage",
        "Stages ended",
        "With a deadline",
        "On time",
        "Overdue",
        "Share on time",
    ]
    answered = next(row for row in sla[1:] if row[0] == "Merchant's answer")
    # One answer, 24 h after filing: on time (the median within 1 %).
    assert answered[1:6] == ["1", "1", "1", "0", "1.0000"]
    assert answered[7] == answered[8]
    assert float(answered[7]) == pytest.approx(24, rel=0.01)
    merchants = rows_of(
        client.get(
            "/supervision/data/merchants.csv", query_string={**MARCH, "lang": "en"}
        )
    )
    assert merchants[0][:3] == ["Merchant", "Merchant id", "Complaints"]
    names = [row[0] for row in merchants[1:]]
    assert names[0] == "优品家电"
    # A name a spreadsheet would run as a formula is defused.
    assert "'=HYPERLINK(1)" in names
    regions = rows_of(client.get("/supervision/data/regions.csv", query_string=MARCH))
    assert [row[1] for row in regions[1:]] == ["330000", "110000"]


def test_an_unknown_chart_is_404(client, auth, world):
    auth.login(world["regulator"])
    assert client.get("/supervision/data/everything.csv").status_code == 404


# The API -------------------------------------------------------------------------


def test_stats_by_category_with_totals_and_the_previous_period(
    client, token_for, world
):
    response = client.get(
        "/api/v1/stats",
        query_string={**MARCH, "by": "category"},
        headers=token_for(world["regulator"]),
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["from"], body["to"], body["by"]) == (
        "2026-03-01",
        "2026-03-31",
        "category",
    )
    assert body["previous"] == {"from": "2026-01-29", "to": "2026-02-28"}
    totals = body["totals"]
    assert (totals["complaints"], totals["previous_complaints"]) == (3, 1)
    assert (totals["closed"], totals["recovered"]) == (1, 15000)
    assert totals["outcomes"]["settled_directly"] == 1
    assert totals["satisfaction"]["average"] == 4.0
    assert totals["satisfaction"]["distribution"]["4"] == 1
    stages = {s["stage"]: s for s in totals["sla"]}
    assert stages["offer_pending"]["share_on_time"] == 1.0
    assert stages["offer_pending"]["median_seconds"] == pytest.approx(86400, rel=0.01)
    groups = {g["key"]: g for g in body["groups"]}
    assert groups["delivery"]["complaints"] == 1
    assert groups["delivery"]["previous_complaints"] == 1
    assert groups["quality_defect"]["recovered"] == 15000
    assert groups["quality_defect"]["label"]


def test_stats_by_region_merchant_platform_and_status(client, token_for, world):
    headers = token_for(world["regulator"])

    def get(**args):
        response = client.get(
            "/api/v1/stats", query_string={**MARCH, **args}, headers=headers
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    provinces = get(by="region")
    assert provinces["by"] == "province"
    assert [(g["key"], g["complaints"]) for g in provinces["groups"]] == [
        ("330000", 2),
        ("110000", 1),
    ]
    cities = get(by="region", region="330000")
    assert cities["by"] == "city"
    assert [(g["key"], g["complaints"]) for g in cities["groups"]] == [("330100", 2)]
    merchants = get(by="merchant", limit="1")
    assert [g["key"] for g in merchants["groups"]] == [world["shop"].id]
    assert merchants["more"] is True
    platforms = get(by="platform")
    keys = {g["key"]: g["complaints"] for g in platforms["groups"]}
    assert keys == {world["platform"].id: 2, None: 1}
    statuses = get(by="status")
    assert {g["key"] for g in statuses["groups"]} == {"resolved", "awaiting_merchant"}


def test_stats_refuses_bad_grouping_and_limit(client, token_for, world):
    headers = token_for(world["regulator"])
    bad_by = client.get("/api/v1/stats?by=colour", headers=headers)
    assert bad_by.status_code == 422 and "by" in bad_by.get_json()["error"]["fields"]
    for limit in ("0", "1001", "x"):
        bad = client.get(f"/api/v1/stats?limit={limit}", headers=headers)
        assert bad.status_code == 422 and "limit" in bad.get_json()["error"]["fields"]


@pytest.mark.parametrize("role", ["consumer", "merchant", "mediator", "arbitrator"])
def test_only_regulators_read_statistics(
    client, auth, token_for, make_user, world, role
):
    kw = {"merchant_id": world["shop"].id} if role == "merchant" else {}
    user = make_user(role, **kw)
    assert client.get("/api/v1/stats", headers=token_for(user)).status_code == 403
    auth.login(user)
    assert client.get("/supervision/").status_code == 403
    assert client.get("/supervision/data/sla.csv").status_code == 403


def test_anonymous_visitors_sign_in_first(client, world):
    assert client.get("/api/v1/stats").status_code == 401
    page = client.get("/supervision/?period=last_month")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert client.get("/supervision/data/sla.csv").status_code == 302


def test_the_stats_operation_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/stats"]["get"]
    assert "x-spec-error" not in operation
    names = {p["name"] for p in operation["parameters"]}
    assert {"from", "to", "by", "region", "category", "platform", "limit"} <= names
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Stats"}
    values = spec["components"]["schemas"]["StatsValues"]["properties"]
    assert {"complaints", "recovered", "sla", "satisfaction", "outcomes"} <= set(values)
