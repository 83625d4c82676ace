"""The public credit feed: GET /api/v1/credit/feed (pages, cursor, ETag, CSV,
rate limit) and its cursor under concurrent transactions on PostgreSQL."""

from __future__ import annotations

import csv
import io
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from mediation import clock
from mediation.credit import ledger
from mediation.credit.feed import CSV_COLUMNS
from mediation.credit.models import CreditChange
from mediation.extensions import db
from tests.webhook_support import add_event, delist_merchant, list_merchant

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
FEED = "/api/v1/credit/feed"
ON_POSTGRESQL = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


@pytest.fixture(autouse=True)
def _monday(app):
    clock.freeze(MONDAY)
    app.config["FEED_RATE_LIMIT"] = "10000 per minute"
    yield
    clock.unfreeze()


def _elsewhere(client, url: str):
    """GET ``url`` from another thread: its own app context, session and
    connection (in this thread a request would join the open app context)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(client.get, url).result()


def _ids(app) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(db.select(CreditChange.id).order_by(CreditChange.id))
        )


# Pages and the cursor ---------------------------------------------------------


def test_the_feed_pages_through_every_change_in_id_order(app, client, make_merchant):
    shops = [make_merchant(name=f"Shop {n}") for n in range(3)]
    for shop in shops:
        list_merchant(app, shop.id)
    ids = _ids(app)
    assert len(ids) == 6

    first = client.get(f"{FEED}?limit=4")
    assert first.status_code == 200
    body = first.get_json()
    assert [item["id"] for item in body["items"]] == ids[:4]
    assert body["next"] == ids[3]
    assert first.headers["Link"] == f'<{FEED}?since={ids[3]}&limit=4>; rel="next"'
    rest = client.get(f"{FEED}?since={body['next']}&limit=4").get_json()
    assert [item["id"] for item in rest["items"]] == ids[4:]
    assert rest["next"] is None
    assert client.get(f"{FEED}?since={ids[-1]}").get_json() == {
        "items": [],
        "next": None,
    }

    grade, listed = body["items"][:2]
    assert grade == {
        "id": ids[0],
        "merchant": {"id": shops[0].id, "name": "Shop 0", "uscc": shops[0].uscc},
        "kind": "grade",
        "old": {},  # the merchant's first standing
        "new": {"score": 80.0, "grade": "D", "listed": True, "trusted": False},
        "at": "2026-03-02T02:00:00+00:00",
    }
    assert listed["kind"] == "listed" and listed["merchant"]["id"] == shops[0].id


def test_a_change_made_later_comes_after_the_cursor(app, client, make_merchant):
    shop = make_merchant()
    list_merchant(app, shop.id)
    body = client.get(FEED).get_json()
    assert body["next"] is None
    cursor = body["items"][-1]["id"]

    clock.advance(timedelta(days=1))
    delist_merchant(app, shop.id)

    later = client.get(f"{FEED}?since={cursor}").get_json()
    assert [item["kind"] for item in later["items"]] == ["grade", "delisted"]
    assert later["items"][1]["old"]["listed"] is True
    assert later["items"][1]["new"]["listed"] is False


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("since=abc", "bad_cursor"),
        ("since=-1", "bad_cursor"),
        ("since=1.5", "bad_cursor"),
        ("since=%EF%BC%91", "bad_cursor"),  # a full-width digit
        ("since=99999999999", "bad_cursor"),
        ("limit=0", "bad_limit"),
        ("limit=1001", "bad_limit"),
        ("limit=ten", "bad_limit"),
        ("format=xml", "bad_format"),
    ],
)
def test_a_bad_cursor_or_limit_is_a_400_with_a_message(client, query, code):
    response = client.get(f"{FEED}?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]


# ETag -------------------------------------------------------------------------


def test_an_unchanged_page_answers_304_to_its_etag(app, client, make_merchant):
    shop = make_merchant()
    list_merchant(app, shop.id)
    first = client.get(FEED)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and first.headers["Cache-Control"] == "no-cache"
    assert "Accept" in first.headers["Vary"]

    again = client.get(FEED, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    # A weak comparison, and a list of tags, match too.
    assert (
        client.get(FEED, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    )

    delist_merchant(app, shop.id)
    changed = client.get(FEED, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert len(changed.get_json()["items"]) == 4


def test_the_etag_follows_the_merchant_data_shown(app, client, make_merchant):
    from mediation.merchants.models import Merchant

    shop = make_merchant(name="Old Name")
    list_merchant(app, shop.id)
    etag = client.get(FEED).headers["ETag"]
    with app.app_context():
        db.session.get(Merchant, shop.id).name = "New Name"
        db.session.commit()
    response = client.get(FEED, headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.get_json()["items"][0]["merchant"]["name"] == "New Name"


# CSV --------------------------------------------------------------------------


def test_csv_has_the_same_items_with_a_bom_for_excel(app, client, make_merchant):
    shop = make_merchant(name="杭州水壶店")
    formula = make_merchant(name='=HYPERLINK("http://x")')
    list_merchant(app, shop.id)
    list_merchant(app, formula.id)

    as_json = client.get(f"{FEED}?limit=3").get_json()
    response = client.get(f"{FEED}?limit=3", headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="credit-feed-0.csv"'
    )
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [int(r["id"]) for r in rows] == [i["id"] for i in as_json["items"]]
    first = rows[0]
    assert first["merchant_name"] == "杭州水壶店"
    assert first["merchant_uscc"] == shop.uscc
    assert (first["kind"], first["old_grade"], first["new_grade"]) == ("grade", "", "D")
    assert (first["old_listed"], first["new_listed"], first["new_score"]) == (
        "",
        "true",
        "80.0",
    )
    assert first["at"] == "2026-03-02T02:00:00+00:00"
    # A name that a spreadsheet would run as a formula is neutralised.
    assert rows[2]["merchant_name"] == '\'=HYPERLINK("http://x")'
    # The next page is named in the Link header (the body has no room for it).
    assert response.headers["Link"] == (
        f'<{FEED}?since={rows[-1]["id"]}&limit=3>; rel="next"'
    )
    # CSV and JSON are different representations: different tags.
    assert response.headers["ETag"] != client.get(f"{FEED}?limit=3").headers["ETag"]
    etag = response.headers["ETag"]
    again = client.get(
        f"{FEED}?limit=3", headers={"Accept": "text/csv", "If-None-Match": etag}
    )
    assert again.status_code == 304


def test_csv_by_query_argument_and_json_by_default(app, client, make_merchant):
    list_merchant(app, make_merchant().id)
    by_query = client.get(f"{FEED}?format=csv&limit=1")
    assert by_query.mimetype == "text/csv"
    assert "format=csv" in by_query.headers["Link"]
    assert client.get(FEED, headers={"Accept": "*/*"}).is_json
    assert client.get(FEED, headers={"Accept": "text/html"}).is_json
    assert client.get(
        FEED, headers={"Accept": "text/csv;q=0.5, application/json"}
    ).is_json
    assert client.get(f"{FEED}?format=json", headers={"Accept": "text/csv"}).is_json


def test_an_empty_feed_is_a_csv_header(client):
    response = client.get(FEED, headers={"Accept": "text/csv"})
    assert response.get_data().decode("utf-8-sig") == ",".join(CSV_COLUMNS) + "\r\n"


# Rate limit -------------------------------------------------------------------


def test_the_feed_is_rate_limited_per_client(app, client):
    app.config["FEED_RATE_LIMIT"] = "2 per minute"
    assert client.get(FEED).status_code == 200
    assert client.get(FEED).status_code == 200
    response = client.get(FEED)
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "rate_limited"


# The cursor under concurrent transactions (PostgreSQL) -------------------------


@pytest.mark.skipif(
    not ON_POSTGRESQL, reason="ids are assigned before commit on PostgreSQL"
)
def test_a_change_committed_later_with_a_smaller_id_is_not_skipped(
    app, client, make_merchant
):
    """Transaction 1 takes the smaller ids and commits last: the feed holds back
    transaction 2's rows until transaction 1 ends, so a reader who polls in
    between never moves its cursor past transaction 1's rows."""
    early, first, second = (make_merchant(name=n) for n in ("Early", "First", "Second"))
    list_merchant(app, early.id)
    published = client.get(FEED).get_json()
    cursor = published["items"][-1]["id"]

    with app.app_context():  # transaction 1
        add_event(first.id)
        ledger.refresh_standing(first.id, now=clock.now_utc())
        db.session.flush()
        one = sorted(
            db.session.scalars(
                db.select(CreditChange.id).where(CreditChange.merchant_id == first.id)
            )
        )
        with app.app_context():  # transaction 2, in another session
            list_merchant(app, second.id)
            two = sorted(
                db.session.scalars(
                    db.select(CreditChange.id).where(
                        CreditChange.merchant_id == second.id
                    )
                )
            )
        assert max(one) < min(two)  # 2 committed ids above 1's uncommitted ones

        # A reader polls while 1 is still open: 2's rows are not published yet.
        polled = _elsewhere(client, f"{FEED}?since={cursor}").get_json()
        assert polled == {"items": [], "next": None}
        # What was committed before 1 began is still there.
        assert [i["id"] for i in _elsewhere(client, FEED).get_json()["items"]] == [
            i["id"] for i in published["items"]
        ]
        db.session.commit()

    after = client.get(f"{FEED}?since={cursor}").get_json()
    assert [item["id"] for item in after["items"]] == one + two


@pytest.mark.skipif(
    not ON_POSTGRESQL, reason="ids are assigned before commit on PostgreSQL"
)
def test_a_rolled_back_writer_no_longer_holds_the_feed_back(app, client, make_merchant):
    first, second = make_merchant(name="First"), make_merchant(name="Second")
    with app.app_context():
        add_event(first.id)
        ledger.refresh_standing(first.id, now=clock.now_utc())
        db.session.flush()
        with app.app_context():
            list_merchant(app, second.id)
        assert _elsewhere(client, FEED).get_json()["items"] == []
        db.session.rollback()
    items = client.get(FEED).get_json()["items"]
    assert [i["merchant"]["id"] for i in items] == [second.id, second.id]


@pytest.mark.skipif(
    not ON_POSTGRESQL, reason="ids are assigned before commit on PostgreSQL"
)
def test_writers_do_not_wait_for_each_other_or_for_readers(app, client, make_merchant):
    """Registration takes shared locks only: two open writers and a reader
    proceed without blocking (a lock wait would hang this test)."""
    first, second = make_merchant(name="First"), make_merchant(name="Second")
    with app.app_context():
        db.session.execute(db.text("SET LOCAL lock_timeout = '2s'"))
        add_event(first.id)
        ledger.refresh_standing(first.id, now=clock.now_utc())
        db.session.flush()
        with app.app_context():
            db.session.execute(db.text("SET LOCAL lock_timeout = '2s'"))
            add_event(second.id)
            ledger.refresh_standing(second.id, now=clock.now_utc())
            db.session.flush()
            assert _elsewhere(client, FEED).status_code == 200
            db.session.commit()
        db.session.commit()
    assert len(client.get(FEED).get_json()["items"]) == 4
