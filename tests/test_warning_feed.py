"""Consumer warnings in the credit feed (items of kind ``warning`` and
``warning_withdrawn``, JSON and CSV, the cursor with PostgreSQL's safe horizon)
and in the webhooks (``warning.published``, ``warning.withdrawn``)."""

from __future__ import annotations

import csv
import io
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from mediation import clock
from mediation.analytics import warning_services as services
from mediation.analytics.warning_models import ConsumerWarning
from mediation.auth.models import User
from mediation.credit import webhooks
from mediation.credit.feed import CSV_COLUMNS
from mediation.credit.models import CreditChange
from mediation.extensions import db
from tests.webhook_support import list_merchant, receiver

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
FEED = "/api/v1/credit/feed"
ON_POSTGRESQL = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


@pytest.fixture(autouse=True)
def _monday(app):
    clock.freeze(MONDAY)
    app.config["FEED_RATE_LIMIT"] = "10000 per minute"
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = True
    app.config["PUBLIC_URL"] = "https://odr.example.cn"
    yield
    clock.unfreeze()


@pytest.fixture()
def world(make_user, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")
    bazaar = make_merchant(name="Bazaar", kind="platform")
    return {
        "mall": mall,
        "bazaar": bazaar,
        "shop": make_merchant(name="Kettle Shop", platform_id=mall.id),
        "tea": make_merchant(name="Tea House", platform_id=bazaar.id),
        "lone": make_merchant(name="Lone Shop"),
        "regulator": make_user("regulator"),
        "mall_staff": make_user("merchant", merchant_id=mall.id),
        "bazaar_staff": make_user("merchant", merchant_id=bazaar.id),
    }


def publish(app, world, merchants=(), **values) -> int:
    with app.app_context():
        warning = services.create_warning(
            {
                "title": values.get("title", "Leaking kettles"),
                "body": "Kettles of this batch leak.",
                "category": values.get("category", "quality_defect"),
                "merchant_ids": [m.id for m in merchants],
            },
            actor=db.session.get(User, world["regulator"].id),
            now=clock.now_utc(),
            publish=True,
        )
        db.session.commit()
        return warning.id


def withdraw(app, world, warning_id: int) -> None:
    with app.app_context():
        services.withdraw_warning(
            db.session.get(ConsumerWarning, warning_id),
            "The batch was recalled.",
            actor=db.session.get(User, world["regulator"].id),
            now=clock.now_utc(),
        )
        db.session.commit()


def test_a_published_warning_is_one_item_per_merchant_named(app, client, world):
    list_merchant(app, world["lone"].id)  # a standing change first (2 rows)
    warning_id = publish(app, world, merchants=[world["shop"], world["tea"]])
    items = client.get(FEED).get_json()["items"]
    assert [i["kind"] for i in items] == ["grade", "listed", "warning", "warning"]
    assert [i["id"] for i in items] == sorted(i["id"] for i in items)
    shop_item, tea_item = items[2:]
    assert shop_item == {
        "id": shop_item["id"],
        "merchant": {
            "id": world["shop"].id,
            "name": "Kettle Shop",
            "uscc": world["shop"].uscc,
        },
        "kind": "warning",
        "old": {},
        "new": {
            "warning_id": warning_id,
            "title": "Leaking kettles",
            "category": "quality_defect",
            "status": "published",
            "merchant_ids": [world["shop"].id, world["tea"].id],
            "published_at": "2026-03-02T02:00:00+00:00",
        },
        "at": "2026-03-02T02:00:00+00:00",
    }
    assert tea_item["merchant"]["id"] == world["tea"].id
    assert tea_item["new"] == shop_item["new"]


def test_a_warning_naming_no_merchant_is_one_item_without_one(app, client, world):
    warning_id = publish(app, world, category="general")
    (item,) = client.get(FEED).get_json()["items"]
    assert item["merchant"] is None
    assert (item["kind"], item["new"]["warning_id"]) == ("warning", warning_id)


def test_a_withdrawal_comes_after_the_cursor_without_its_reason(app, client, world):
    warning_id = publish(app, world, merchants=[world["shop"]])
    first = client.get(FEED).get_json()
    cursor = first["items"][-1]["id"]
    clock.advance(timedelta(hours=2))
    withdraw(app, world, warning_id)
    later = client.get(f"{FEED}?since={cursor}").get_json()
    (item,) = later["items"]
    assert item["id"] > cursor
    assert item["kind"] == "warning_withdrawn"
    assert item["old"] == {"status": "published"}
    assert item["new"]["status"] == "withdrawn"
    assert item["new"]["withdrawn_at"] == "2026-03-02T04:00:00+00:00"
    assert "recalled" not in str(item)
    # Drafts never reach the feed.
    with app.app_context():
        services.create_warning(
            {"title": "Draft", "body": "x", "category": "general"},
            actor=db.session.get(User, world["regulator"].id),
            now=clock.now_utc(),
        )
        db.session.commit()
    assert client.get(f"{FEED}?since={item['id']}").get_json()["items"] == []


def test_csv_keeps_its_columns_and_adds_the_warning_ones_last(app, client, world):
    list_merchant(app, world["lone"].id)
    warning_id = publish(
        app, world, title="=cmd|' /C calc'!A0", merchants=[world["shop"]]
    )
    publish(app, world, title="General advice", category="general")
    response = client.get(f"{FEED}?format=csv")
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[0][:14] == [
        "id",
        "at",
        "merchant_id",
        "merchant_name",
        "merchant_uscc",
        "kind",
        "old_score",
        "old_grade",
        "old_listed",
        "old_trusted",
        "new_score",
        "new_grade",
        "new_listed",
        "new_trusted",
    ]
    assert rows[0][14:] == [
        "warning_id",
        "warning_title",
        "warning_category",
        "warning_status",
    ]
    grade, listed, named, general = rows[1:]
    assert grade[5] == "grade" and grade[14:] == ["", "", "", ""]
    assert named[2:6] == [
        str(world["shop"].id),
        "Kettle Shop",
        world["shop"].uscc,
        "warning",
    ]
    assert named[6:14] == [""] * 8
    # A title a spreadsheet would run is neutralised.
    assert named[14:] == [
        str(warning_id),
        "'=cmd|' /C calc'!A0",
        "quality_defect",
        "published",
    ]
    assert general[2:5] == ["", "", ""]
    assert general[15:] == ["General advice", "general", "published"]


def _elsewhere(client, url: str):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(client.get, url).result()


@pytest.mark.skipif(
    not ON_POSTGRESQL, reason="ids are assigned before commit on PostgreSQL"
)
def test_a_publication_still_running_holds_later_rows_back(app, client, world):
    """The warning's rows are written through the session, so the transaction
    registers as a feed writer: rows committed meanwhile by another
    transaction (with larger ids) wait until the publication ends."""
    with app.app_context():  # the publication, still open
        warning = services.create_warning(
            {
                "title": "Leaking kettles",
                "body": "Text.",
                "category": "delivery",
                "merchant_ids": [world["shop"].id],
            },
            actor=db.session.get(User, world["regulator"].id),
            now=clock.now_utc(),
            publish=True,
        )
        db.session.flush()
        mine = list(
            db.session.scalars(
                db.select(CreditChange.id).where(CreditChange.kind == "warning")
            )
        )
        with app.app_context():  # another writer commits meanwhile
            list_merchant(app, world["lone"].id)
        assert _elsewhere(client, FEED).get_json() == {"items": [], "next": None}
        db.session.commit()
        warning_id = warning.id
    items = client.get(FEED).get_json()["items"]
    assert [i["id"] for i in items][0] == mine[0]
    assert items[0]["new"]["warning_id"] == warning_id
    assert [i["kind"] for i in items] == ["warning", "grade", "listed"]


# Webhooks ----------------------------------------------------------------------


def _subscribe(app, user, url, events):
    with app.app_context():
        webhooks.subscribe(
            db.session.get(User, user.id), url=url, events=events, now=clock.now_utc()
        )
        db.session.commit()


def _deliver(app):
    with app.app_context():
        return webhooks.deliver_due(now=clock.now_utc(), limit=100)


def test_warnings_reach_regulators_and_the_platforms_of_the_shops_named(app, world):
    events = ["warning.published", "warning.withdrawn"]
    with receiver() as mall, receiver() as bazaar, receiver() as regulator:
        _subscribe(app, world["mall_staff"], mall.url(), events)
        _subscribe(app, world["bazaar_staff"], bazaar.url(), events)
        _subscribe(app, world["regulator"], regulator.url(), events)

        # Names two shops (one on the mall, one on no platform): one delivery
        # per subscription, not one per merchant named.
        named = publish(app, world, merchants=[world["shop"], world["lone"]])
        general = publish(app, world, category="general", title="General advice")
        withdraw(app, world, named)
        _deliver(app)

    def seen(server):
        return [
            (r.json["event"], r.json["data"]["warning"]["id"]) for r in server.requests
        ]

    assert seen(mall) == [("warning.published", named), ("warning.withdrawn", named)]
    assert seen(bazaar) == []
    assert sorted(seen(regulator)) == sorted(
        [
            ("warning.published", named),
            ("warning.published", general),
            ("warning.withdrawn", named),
        ]
    )
    published = mall.requests[0].json["data"]["warning"]
    assert published == {
        "id": named,
        "title": "Leaking kettles",
        "body": "Kettles of this batch leak.",
        "category": "quality_defect",
        "status": "published",
        "merchants": [
            {"id": world["shop"].id, "name": "Kettle Shop", "uscc": world["shop"].uscc},
            {"id": world["lone"].id, "name": "Lone Shop", "uscc": world["lone"].uscc},
        ],
        "published_at": "2026-03-02T02:00:00+00:00",
        "url": f"https://odr.example.cn/warnings/{named}",
    }
    gone = mall.requests[1].json["data"]["warning"]
    assert gone["status"] == "withdrawn" and "body" not in gone
    assert "recalled" not in str(gone)
    assert mall.requests[1].headers["X-Webhook-Event"] == "warning.withdrawn"


def test_a_subscription_without_the_warning_events_gets_none(app, world):
    with receiver() as mall:
        _subscribe(app, world["mall_staff"], mall.url(), ["credit.listed"])
        publish(app, world, merchants=[world["shop"]])
        _deliver(app)
    assert mall.requests == []
