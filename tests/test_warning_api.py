"""Consumer warnings in the API: /api/v1/warnings (read by anyone, written by
regulators), validation (422 with fields), access (401/403/404), filters,
pages, and the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mediation import clock
from mediation.analytics import warning_services as services
from mediation.analytics.audit_models import AuditEntry
from mediation.analytics.warning_models import ConsumerWarning
from mediation.auth.models import User
from mediation.extensions import db

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
API = "/api/v1/warnings"


@pytest.fixture(autouse=True)
def _monday(app):
    clock.freeze(MONDAY)
    app.config["PUBLIC_URL"] = "https://odr.example.cn"
    yield
    clock.unfreeze()


@pytest.fixture()
def world(make_user, make_merchant, token_for):
    users = {
        role: make_user(role, locale="en")
        for role in ("regulator", "consumer", "mediator", "arbitrator")
    }
    shop = make_merchant(name="Kettle Shop")
    users["merchant"] = make_user("merchant", merchant_id=shop.id, locale="en")
    return {
        "shop": shop,
        "tea": make_merchant(name="Tea House"),
        "headers": {role: token_for(user) for role, user in users.items()},
    }


def _new(world, **body):
    payload = {
        "title": "Leaking kettles",
        "body": "Kettles of this batch leak.\n\nKeep the receipt.",
        "category": "quality_defect",
        "merchant_ids": [world["shop"].id],
        **body,
    }
    return payload


def _post(client, world, body, who="regulator"):
    return client.post(API, json=body, headers=world["headers"][who])


def test_a_regulator_publishes_and_anyone_reads(app, client, world):
    created = _post(client, world, _new(world))
    assert created.status_code == 201
    body = created.get_json()
    assert body["status"] == "published"
    assert body["published_at"] == "2026-03-02T02:00:00+00:00"
    assert body["merchant_ids"] == [world["shop"].id]
    assert body["merchants"] == [
        {"id": world["shop"].id, "name": "Kettle Shop", "uscc": world["shop"].uscc}
    ]
    assert body["url"] == f"https://odr.example.cn/warnings/{body['id']}"
    assert body["withdrawal_reason"] is None  # regulators see the record fields

    listing = client.get(API)
    assert listing.status_code == 200
    page = listing.get_json()
    assert (page["total"], page["page"], page["pages"]) == (1, 1, 1)
    item = page["items"][0]
    assert item["title"] == "Leaking kettles"
    assert item["body"] == "Kettles of this batch leak.\n\nKeep the receipt."
    # The public does not get the record fields.
    assert "withdrawal_reason" not in item and "author_id" not in item
    one = client.get(f"{API}/{body['id']}")
    assert one.status_code == 200
    assert one.get_json() == item
    with app.app_context():
        actions = list(db.session.scalars(db.select(AuditEntry.action)))
    assert actions == ["warning.create", "warning.publish"]


def test_a_draft_is_not_public_until_published(app, client, world):
    created = _post(client, world, _new(world, status="draft"))
    assert created.status_code == 201
    draft = created.get_json()
    assert (draft["status"], draft["published_at"]) == ("draft", None)
    assert client.get(API).get_json()["items"] == []
    assert client.get(f"{API}/{draft['id']}").status_code == 404
    consumer = world["headers"]["consumer"]
    assert client.get(f"{API}/{draft['id']}", headers=consumer).status_code == 404
    regulator = world["headers"]["regulator"]
    assert client.get(f"{API}/{draft['id']}", headers=regulator).status_code == 200
    drafts = client.get(f"{API}?status=draft", headers=regulator).get_json()
    assert [w["id"] for w in drafts["items"]] == [draft["id"]]
    assert client.get(f"{API}?status=draft", headers=consumer).status_code == 403
    assert client.get(f"{API}?status=all").status_code == 403

    published = client.post(f"{API}/{draft['id']}/publish", headers=regulator)
    assert published.status_code == 200
    assert published.get_json()["status"] == "published"
    again = client.post(f"{API}/{draft['id']}/publish", headers=regulator)
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "already_published"
    assert [w["id"] for w in client.get(API).get_json()["items"]] == [draft["id"]]


def test_withdrawal_needs_a_reason_and_hides_the_warning(app, client, world):
    regulator = world["headers"]["regulator"]
    warning_id = _post(client, world, _new(world)).get_json()["id"]
    missing = client.post(f"{API}/{warning_id}/withdraw", json={}, headers=regulator)
    assert missing.status_code == 422
    assert "reason" in missing.get_json()["error"]["fields"]
    blank = client.post(
        f"{API}/{warning_id}/withdraw", json={"reason": "   "}, headers=regulator
    )
    assert blank.status_code == 422
    assert blank.get_json()["error"]["fields"]["reason"]
    done = client.post(
        f"{API}/{warning_id}/withdraw", json={"reason": "Recalled."}, headers=regulator
    )
    assert done.status_code == 200
    assert done.get_json()["withdrawal_reason"] == "Recalled."
    assert client.get(API).get_json()["items"] == []
    assert client.get(f"{API}/{warning_id}").status_code == 404
    withdrawn = client.get(f"{API}?status=withdrawn", headers=regulator).get_json()
    assert [w["id"] for w in withdrawn["items"]] == [warning_id]
    twice = client.post(
        f"{API}/{warning_id}/withdraw", json={"reason": "Again."}, headers=regulator
    )
    assert twice.status_code == 409
    assert twice.get_json()["error"]["code"] == "not_published"


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"title": ""}, {"title"}),
        ({"title": "x" * 201}, {"title"}),
        ({"body": None}, {"body"}),
        ({"category": "kettles"}, {"category"}),
        ({"merchant_ids": "1"}, {"merchant_ids"}),
        ({"merchant_ids": [True]}, {"merchant_ids"}),
        ({"merchant_ids": ["a"]}, {"merchant_ids"}),
        ({"merchant_ids": [999999]}, {"merchant_ids"}),
        ({"merchant_ids": list(range(1, 60))}, {"merchant_ids"}),
        ({"status": "withdrawn"}, {"status"}),
        ({"colour": "red"}, {"colour"}),
    ],
)
def test_bad_fields_are_a_422_naming_them(app, client, world, change, fields):
    response = _post(client, world, _new(world, **change))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == fields
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(ConsumerWarning.id))) == 0


def test_an_unknown_merchant_is_named_in_the_message(client, world):
    response = _post(
        client, world, _new(world, merchant_ids=[world["shop"].id, 999999])
    )
    assert "999999" in response.get_json()["error"]["fields"]["merchant_ids"]


def test_a_malformed_body_is_a_400(client, world):
    response = client.post(
        API,
        data="{not json",
        headers={**world["headers"]["regulator"], "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"


@pytest.mark.parametrize(
    ("who", "status"),
    [
        (None, 401),
        ("consumer", 403),
        ("merchant", 403),
        ("mediator", 403),
        ("arbitrator", 403),
        ("regulator", 201),
    ],
)
def test_only_regulators_write(app, client, world, who, status):
    headers = world["headers"][who] if who else {}
    response = client.post(API, json=_new(world), headers=headers)
    assert response.status_code == status
    if status != 201:
        assert response.get_json()["error"]["code"] in ("unauthorized", "forbidden")
        with app.app_context():
            assert db.session.scalar(db.select(db.func.count(ConsumerWarning.id))) == 0


def test_publish_and_withdraw_are_for_regulators_only(client, world):
    draft = _post(client, world, _new(world, status="draft")).get_json()["id"]
    assert client.post(f"{API}/{draft}/publish").status_code == 401
    headers = world["headers"]["merchant"]
    assert client.post(f"{API}/{draft}/publish", headers=headers).status_code == 403
    assert (
        client.post(
            f"{API}/{draft}/withdraw", json={"reason": "x"}, headers=headers
        ).status_code
        == 403
    )
    regulator = world["headers"]["regulator"]
    assert client.post(f"{API}/999999/publish", headers=regulator).status_code == 404


def test_filters_and_pages(app, client, world, make_user):
    app.config["PAGE_SIZE"] = 2
    author = make_user("regulator")
    made = []
    for category, merchants in (
        ("delivery", [world["shop"].id]),
        ("quality_defect", [world["tea"].id]),
        ("general", []),
    ):
        with app.app_context():
            warning = services.create_warning(
                _new(world, category=category, merchant_ids=merchants),
                actor=db.session.get(User, author.id),
                now=clock.now_utc(),
                publish=True,
            )
            db.session.commit()
            made.append(warning.id)
        clock.advance(timedelta(days=1))

    def ids(query: str) -> list[int]:
        response = client.get(f"{API}{query}")
        assert response.status_code == 200, response.get_json()
        return [w["id"] for w in response.get_json()["items"]]

    assert ids("") == [made[2], made[1]]
    assert ids("?page=2") == [made[0]]
    assert ids("?page=3") == []
    assert ids("?category=general") == [made[2]]
    assert ids(f"?merchant_id={world['tea'].id}") == [made[1]]
    # since: a date (its start in Shanghai) or a time with its offset.
    assert ids("?since=2026-03-03") == [made[2], made[1]]
    assert ids("?since=2026-03-03T10:00:00%2B08:00") == [made[2], made[1]]
    assert ids("?since=2026-03-03T10:00:01%2B08:00") == [made[2]]


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("?category=kettles", 422, "category"),
        ("?merchant_id=abc", 422, "merchant_id"),
        ("?merchant_id=0", 422, "merchant_id"),
        ("?since=yesterday", 422, "since"),
        ("?since=2026-03-03T10:00:00", 422, "since"),
        ("?status=secret", 422, "status"),
        ("?page=0", 400, None),
        ("?page=x", 400, None),
    ],
)
def test_bad_query_arguments_are_4xx_never_500(client, query, status, field):
    response = client.get(f"{API}{query}")
    assert response.status_code == status
    if field:
        assert field in response.get_json()["error"]["fields"]


def test_the_openapi_document_describes_the_warnings(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    listing = paths["/api/v1/warnings"]
    assert {"get", "post"} <= set(listing)
    created = listing["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"] == {"$ref": "#/components/schemas/Warning"}
    body = listing["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/CreateWarning"}
    assert {"401", "403", "422"} <= set(listing["post"]["responses"])
    assert "x-spec-error" not in listing["get"]
    schema = spec["components"]["schemas"]["Warning"]["properties"]
    assert {"title", "body", "category", "merchant_ids", "published_at"} <= set(schema)
    for path in (
        "/api/v1/warnings/{warning_id}",
        "/api/v1/warnings/{warning_id}/publish",
        "/api/v1/warnings/{warning_id}/withdraw",
        "/api/v1/exports/cases.csv",
    ):
        for operation in paths[path].values():
            if isinstance(operation, dict) and "responses" in operation:
                assert "x-spec-error" not in operation, path
