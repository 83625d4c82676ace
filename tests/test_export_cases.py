"""CSV exports of cases: who exports what (regulators everything, mediators and
arbitrators their own cases, personal data for regulators only), the exact
columns and cells, the filters, the audit entry of every export, and bad input
answered with 4xx."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.analytics.audit_models import AuditEntry
from mediation.analytics.exports import COLUMNS, PERSONAL_COLUMNS
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.extensions import db

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
PAGE = "/supervision/exports"
CSV_URL = "/supervision/exports/cases.csv"
API = "/api/v1/exports/cases.csv"

HEADER = [
    "reference",
    "filed_at",
    "category",
    "category_label",
    "status",
    "status_label",
    "outcome",
    "outcome_label",
    "merchant_id",
    "merchant_name",
    "merchant_uscc",
    "platform_id",
    "platform_name",
    "region_code",
    "order_date",
    "amount_paid",
    "amount_paid_fen",
    "claim_type",
    "claim_amount",
    "claim_amount_fen",
    "due_at",
    "answered_at",
    "closed_at",
    "mediator",
    "arbitrator",
    "satisfaction",
]
PERSONAL = ["consumer_name", "consumer_email", "consumer_phone", "order_ref"]


class World:
    """A platform with a shop, a shop elsewhere, one consumer, staff, cases:

    * ``waiting``: against the shop, awaiting its answer (filed Monday 10:00);
    * ``mediated``: against the tea house, in mediation with mediator 1
      (filed Monday 23:30 local, i.e. 15:30 UTC);
    * ``arbitrated``: against the shop, in arbitration with the arbitrator,
      mediated by mediator 2 (filed Tuesday 00:30 local);
    * ``unregistered``: against a shop not in the registry, on the platform,
      whose typed name a spreadsheet would run (filed Wednesday).
    """

    def __init__(self, app, make_user, make_merchant, make_case, token_for):
        self.app = app
        self.mall = make_merchant(
            name="鲸选商城", kind="platform", region_code="330100"
        )
        self.shop = make_merchant(
            name="Kettle Shop",
            platform_id=self.mall.id,
            region_code="330106",
            arbitration_consent=True,
        )
        self.tea = make_merchant(name="Tea House", region_code="350102")
        self.users = {
            "consumer": make_user(
                "consumer",
                name="张三",
                email="zhang@example.com",
                phone="13800138000",
                locale="en",
            ),
            "shop": make_user("merchant", merchant_id=self.shop.id, locale="en"),
            "tea": make_user("merchant", merchant_id=self.tea.id, locale="en"),
            "mediator1": make_user("mediator", name="Mediator One", locale="en"),
            "mediator2": make_user("mediator", name="Mediator Two", locale="en"),
            "arbitrator": make_user("arbitrator", name="Arbitrator", locale="en"),
            "regulator": make_user("regulator", name="Regulator", locale="en"),
        }
        self._token_for = token_for
        consumer = self.users["consumer"]
        self.ids = {}
        self.ids["waiting"] = make_case(
            consumer,
            self.shop,
            order_ref="JX-001",
            amount_paid=19950,
            claim_amount=10000,
            category="quality_defect",
            order_date=date(2026, 2, 20),
        )
        clock.freeze(datetime(2026, 3, 2, 15, 30, tzinfo=UTC))
        self.ids["mediated"] = make_case(
            consumer, self.tea, order_ref="QH-002", category="delivery"
        )
        self.act("mediated", "reject", "tea", "merchant", reason="Delivered.")
        self.act("mediated", "take", "mediator1", "mediator")
        clock.freeze(datetime(2026, 3, 2, 16, 30, tzinfo=UTC))
        self.ids["arbitrated"] = make_case(
            consumer,
            self.shop,
            order_ref="JX-003",
            category="false_advertising",
            arbitration_consent=True,
        )
        self.act("arbitrated", "reject", "shop", "merchant", reason="No.")
        self.act("arbitrated", "take", "mediator2", "mediator")
        self.act(
            "arbitrated", "end_mediation", "mediator2", "mediator", reason="No deal."
        )
        self.act("arbitrated", "take", "arbitrator", "arbitrator")
        clock.freeze(datetime(2026, 3, 4, 2, 0, tzinfo=UTC))
        self.ids["unregistered"] = make_case(
            consumer,
            None,
            merchant_name="=SUM(A1:A9)",
            platform_id=self.mall.id,
            order_ref="=cmd",
            category="counterfeit",
        )
        clock.freeze(MONDAY + timedelta(days=3))
        with app.app_context():
            self.refs = {
                name: db.session.get(Case, case_id).reference
                for name, case_id in self.ids.items()
            }

    def act(self, case, action, who, relation, **payload):
        with self.app.app_context():
            services.apply_action(
                db.session.get(Case, self.ids[case]),
                action,
                payload,
                actor=db.session.get(User, self.users[who].id),
                relation=relation,
                now=clock.now_utc(),
            )
            db.session.commit()

    def headers(self, who):
        return self._token_for(self.users[who])


@pytest.fixture()
def world(app, make_user, make_merchant, make_case, token_for):
    clock.freeze(MONDAY)
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    yield World(app, make_user, make_merchant, make_case, token_for)
    clock.unfreeze()


def rows_of(response) -> list[list[str]]:
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def refs_of(response) -> list[str]:
    return [row[0] for row in rows_of(response)[1:]]


def audits(app) -> list[AuditEntry]:
    with app.app_context():
        entries = list(
            db.session.scalars(
                db.select(AuditEntry)
                .where(AuditEntry.action == "export.cases")
                .order_by(AuditEntry.id)
            )
        )
        db.session.expunge_all()
        return entries


# Columns and cells ----------------------------------------------------------------


def test_the_columns_are_stable():
    assert list(COLUMNS) == HEADER
    assert list(PERSONAL_COLUMNS) == PERSONAL


def test_a_regulator_exports_every_case_with_personal_data(app, client, auth, world):
    auth.login(world.users["regulator"])
    response = client.get(f"{CSV_URL}?personal=1")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="cases-personal-20260305-1000.csv"'
    )
    assert response.headers["X-Export-Rows"] == "4"
    rows = rows_of(response)
    assert rows[0] == HEADER + PERSONAL
    assert [r[0] for r in rows[1:]] == [
        world.refs[n] for n in ("waiting", "mediated", "arbitrated", "unregistered")
    ]
    waiting = dict(zip(rows[0], rows[1], strict=True))
    assert waiting == {
        "reference": world.refs["waiting"],
        "filed_at": "2026-03-02 10:00:00",
        "category": "quality_defect",
        "category_label": "Quality defect",
        "status": "awaiting_merchant",
        "status_label": "Awaiting merchant",
        "outcome": "",
        "outcome_label": "",
        "merchant_id": str(world.shop.id),
        "merchant_name": "Kettle Shop",
        "merchant_uscc": world.shop.uscc,
        "platform_id": str(world.mall.id),
        "platform_name": "鲸选商城",
        "region_code": "330106",
        "order_date": "2026-02-20",
        "amount_paid": "199.50",
        "amount_paid_fen": "19950",
        "claim_type": "refund",
        "claim_amount": "100.00",
        "claim_amount_fen": "10000",
        # 3 working days: the end of Thursday 5 March, local time.
        "due_at": "2026-03-05 23:59:59",
        "answered_at": "",
        "closed_at": "",
        "mediator": "",
        "arbitrator": "",
        "satisfaction": "",
        "consumer_name": "张三",
        "consumer_email": "zhang@example.com",
        "consumer_phone": "13800138000",
        "order_ref": "JX-001",
    }
    arbitrated = dict(zip(rows[0], rows[3], strict=True))
    assert (arbitrated["mediator"], arbitrated["arbitrator"]) == (
        "Mediator Two",
        "Arbitrator",
    )
    assert arbitrated["status"] == "in_arbitration"
    assert arbitrated["filed_at"] == "2026-03-03 00:30:00"
    unregistered = dict(zip(rows[0], rows[4], strict=True))
    # No registry entry: the name as typed, neutralised for spreadsheets.
    assert unregistered["merchant_id"] == ""
    assert unregistered["merchant_name"] == "'=SUM(A1:A9)"
    assert unregistered["region_code"] == ""
    assert unregistered["order_ref"] == "'=cmd"

    (entry,) = audits(app)
    assert entry.actor_id == world.users["regulator"].id
    assert entry.actor_role == "regulator"
    assert entry.object_type == "export"
    assert entry.details == {
        "filters": {"personal": True},
        "rows": 4,
        "personal_data": True,
        "scope": "all",
        "channel": "page",
    }


def test_without_personal_data_no_consumer_detail_leaves(app, client, auth, world):
    auth.login(world.users["regulator"])
    response = client.get(CSV_URL)
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="cases-20260305-1000.csv"'
    )
    text = response.get_data(as_text=True)
    rows = rows_of(response)
    assert rows[0] == HEADER
    for secret in ("张三", "zhang@example.com", "13800138000", "JX-001", "QH-002"):
        assert secret not in text
    assert audits(app)[0].details["personal_data"] is False


def test_labels_follow_the_language(app, client, auth, world):
    auth.login(world.users["regulator"])
    rows = rows_of(client.get(f"{CSV_URL}?lang=zh_CN"))
    assert rows[0] == HEADER  # the header stays the same for scripts
    assert (rows[1][3], rows[1][5]) == ("质量问题", "待商家处理")


# Who exports what -----------------------------------------------------------------


def test_a_mediator_exports_only_the_cases_they_mediate(app, client, auth, world):
    auth.login(world.users["mediator1"])
    response = client.get(CSV_URL)
    assert response.status_code == 200
    assert rows_of(response)[0] == HEADER
    assert refs_of(response) == [world.refs["mediated"]]
    assert "张三" not in response.get_data(as_text=True)
    refused = client.get(f"{CSV_URL}?personal=1")
    assert refused.status_code == 403
    auth.logout()
    auth.login(world.users["mediator2"])
    # Mediated before it went to arbitration: still theirs.
    assert refs_of(client.get(CSV_URL)) == [world.refs["arbitrated"]]
    entries = audits(app)
    assert [(e.actor_id, e.details["scope"], e.details["rows"]) for e in entries] == [
        (world.users["mediator1"].id, "mediated", 1),
        (world.users["mediator2"].id, "mediated", 1),
    ]


def test_an_arbitrator_exports_only_the_cases_they_arbitrate(app, client, world):
    headers = world.headers("arbitrator")
    response = client.get(API, headers=headers)
    assert response.status_code == 200
    assert refs_of(response) == [world.refs["arbitrated"]]
    refused = client.get(f"{API}?personal=true", headers=headers)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "personal_data_not_allowed"
    (entry,) = audits(app)
    assert entry.details["channel"] == "api"
    assert entry.details["scope"] == "arbitrated"


@pytest.mark.parametrize("who", ["consumer", "shop"])
def test_parties_export_nothing(client, auth, world, who):
    auth.login(world.users[who])
    assert client.get(PAGE).status_code == 403
    assert client.get(CSV_URL).status_code == 403
    response = client.get(API, headers=world.headers(who))
    assert response.status_code == 403


def test_a_head_request_exports_nothing(app, client, auth, world):
    auth.login(world.users["regulator"])
    assert client.head(CSV_URL).status_code == 200
    assert client.head(API, headers=world.headers("regulator")).status_code == 200
    assert audits(app) == []


def test_anonymous_visitors_are_sent_to_sign_in(app, client, world):
    response = client.get(CSV_URL)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert client.get(API).status_code == 401
    assert audits(app) == []


def test_the_api_needs_a_regulator_for_personal_data(app, client, world):
    response = client.get(f"{API}?personal=1", headers=world.headers("regulator"))
    assert response.status_code == 200
    assert rows_of(response)[0] == HEADER + PERSONAL
    assert audits(app)[0].details["personal_data"] is True


# Filters --------------------------------------------------------------------------


#: Filters and the cases they select (one world for all: the setup is the cost).
FILTERS = [
    # Local days: Monday 23:30 is Monday, 00:30 the next night is Tuesday.
    ("from=2026-03-02&to=2026-03-02", ["waiting", "mediated"]),
    ("from=2026-03-03", ["arbitrated", "unregistered"]),
    ("to=2026-03-03", ["waiting", "mediated", "arbitrated"]),
    ("status=in_mediation", ["mediated"]),
    ("status=in_mediation&status=in_arbitration", ["mediated", "arbitrated"]),
    ("status=in_mediation,awaiting_platform", ["mediated", "unregistered"]),
    ("category=delivery", ["mediated"]),
    ("category=counterfeit&category=quality_defect", ["waiting", "unregistered"]),
    ("region=33", ["waiting", "arbitrated"]),
    ("region=350102", ["mediated"]),
    ("region=44", []),
    ("merchant_id={tea}", ["mediated"]),
    ("merchant=kettle", ["waiting", "arbitrated"]),
    ("merchant=SUM", ["unregistered"]),
    ("merchant=%25", []),
    ("platform_id={mall}", ["waiting", "arbitrated", "unregistered"]),
    ("platform_id={mall}&status=awaiting_merchant", ["waiting"]),
]


def test_filters(app, client, world):
    headers = world.headers("regulator")
    for query, names in FILTERS:
        query = query.format(tea=world.tea.id, mall=world.mall.id)
        response = client.get(f"{API}?{query}", headers=headers)
        assert response.status_code == 200, (query, response.get_data(as_text=True))
        assert refs_of(response) == [world.refs[n] for n in names], query
        assert audits(app)[-1].details["rows"] == len(names), query
    assert len(audits(app)) == len(FILTERS)


def test_the_filters_are_recorded(app, client, world):
    client.get(
        f"{API}?from=2026-03-01&to=2026-03-31&status=in_mediation&category=delivery"
        f"&region=35&platform_id={world.mall.id}",
        headers=world.headers("regulator"),
    )
    assert audits(app)[0].details["filters"] == {
        "filed_from": "2026-03-01",
        "filed_to": "2026-03-31",
        "statuses": ["in_mediation"],
        "categories": ["delivery"],
        "region": "35",
        "platform_id": world.mall.id,
    }


def test_the_page_counts_without_exporting(app, client, auth, world):
    auth.login(world.users["regulator"])
    page = client.get(f"{PAGE}?count=1&status=in_mediation")
    assert page.status_code == 200
    assert "1 case matches." in page.get_data(as_text=True)
    assert audits(app) == []
    # The form keeps the filters for the download button.
    assert 'value="in_mediation" checked' in page.get_data(as_text=True)


def test_the_page_offers_personal_data_to_regulators_only(client, auth, world):
    auth.login(world.users["mediator1"])
    page = client.get(PAGE)
    assert page.status_code == 200
    assert 'data-testid="export-personal"' not in page.get_data(as_text=True)
    auth.logout()
    auth.login(world.users["regulator"])
    assert 'data-testid="export-personal"' in client.get(PAGE).get_data(as_text=True)


# Bad input ------------------------------------------------------------------------


#: Bad filters and the field each error names.
BAD_FILTERS = [
    ("from=2026-13-01", "from"),
    ("from=2026-03-05&to=2026-03-01", "to"),
    ("status=lost", "status"),
    ("category=kettles", "category"),
    ("region=abc", "region"),
    ("region=1234567", "region"),
    ("merchant_id=abc", "merchant_id"),
    ("merchant_id=99999999999", "merchant_id"),
    ("merchant_id=999999", "merchant_id"),
    ("platform_id={shop}", "platform_id"),
    ("merchant=" + "x" * 101, "merchant"),
    ("personal=maybe", "personal"),
]


def test_bad_filters_are_422_with_the_field(app, client, auth, world):
    headers = world.headers("regulator")
    auth.login(world.users["regulator"])
    for query, field in BAD_FILTERS:
        query = query.format(shop=world.shop.id)
        response = client.get(f"{API}?{query}", headers=headers)
        assert response.status_code == 422, query
        assert field in response.get_json()["error"]["fields"], query
        page = client.get(f"{CSV_URL}?{query}")
        assert page.status_code == 422, query
        assert f'data-error="{field}"' in page.get_data(as_text=True), query
        counted = client.get(f"{PAGE}?count=1&{query}")
        assert counted.status_code == 422, query
    assert audits(app) == []


def test_too_many_rows_is_refused_and_not_recorded(app, client, auth, world):
    app.config["EXPORT_MAX_ROWS"] = 3
    response = client.get(API, headers=world.headers("regulator"))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "too_many_rows"
    auth.login(world.users["regulator"])
    page = client.get(CSV_URL)
    assert page.status_code == 422
    assert "More than 3 cases match" in page.get_data(as_text=True)
    assert audits(app) == []
    assert client.get(f"{CSV_URL}?status=in_mediation").status_code == 200


def test_a_large_export_streams_every_row_in_order(app, client, world, make_case):
    for n in range(3 * 2):
        make_case(world.users["consumer"], world.tea, order_ref=f"BULK-{n}")
    from mediation.analytics import exports

    exports.CHUNK, saved = 4, exports.CHUNK
    try:
        response = client.get(API, headers=world.headers("regulator"))
    finally:
        exports.CHUNK = saved
    refs = refs_of(response)
    assert len(refs) == 10
    assert refs == sorted(refs)
    assert response.headers["X-Export-Rows"] == "10"
