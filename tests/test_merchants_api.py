"""The registry in the JSON API: /api/v1/merchants."""

from __future__ import annotations

import pytest

from mediation.extensions import db
from mediation.merchants.models import Merchant

TENCENT = "91440300708461136T"
HUAWEI = "914403001922038216"


@pytest.fixture()
def regulator_headers(make_user, token_for):
    return token_for(make_user("regulator"))


def _new(**overrides):
    body = {
        "name": "Kettle Shop",
        "uscc": TENCENT,
        "kind": "goods",
        "region_code": "440305",
    }
    body.update(overrides)
    return body


def _count(app) -> int:
    with app.app_context():
        return len(db.session.scalars(db.select(Merchant.id)).all())


# -- search ---------------------------------------------------------------


def test_anyone_searches_the_registry(client, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")
    shop = make_merchant(name="Kettle Shop", uscc=TENCENT, platform_id=mall.id)

    response = client.get("/api/v1/merchants?q=kettle")

    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 1 and body["page"] == 1 and body["pages"] == 1
    item = body["items"][0]
    assert {
        k: item[k] for k in ("id", "name", "uscc", "kind", "platform_id", "grade")
    } == {
        "id": shop.id,
        "name": "Kettle Shop",
        "uscc": TENCENT,
        "kind": "goods",
        "platform_id": mall.id,
        "grade": None,
    }


def test_search_by_code_prefix(client, make_merchant):
    make_merchant(name="Tencent", uscc=TENCENT)
    make_merchant(name="Huawei", uscc=HUAWEI)

    names = [
        i["name"]
        for i in client.get("/api/v1/merchants?q=9144030070").get_json()["items"]
    ]

    assert names == ["Tencent"]


def test_search_filters_by_kind_and_platform(client, make_merchant):
    mall = make_merchant(name="Alpha Mall", kind="platform")
    make_merchant(name="Alpha Repairs", kind="service", platform_id=mall.id)
    make_merchant(name="Alpha Goods")

    by_kind = client.get("/api/v1/merchants?kind=platform").get_json()["items"]
    on_mall = client.get(f"/api/v1/merchants?platform_id={mall.id}").get_json()["items"]

    assert [i["name"] for i in by_kind] == ["Alpha Mall"]
    assert [i["name"] for i in on_mall] == ["Alpha Repairs"]


def test_search_pages(app, client, make_merchant):
    app.config["PAGE_SIZE"] = 2
    for n in range(5):
        make_merchant(name=f"Shop {n}")

    body = client.get("/api/v1/merchants?page=3").get_json()

    assert body["pages"] == 3 and body["total"] == 5 and body["page"] == 3
    assert [i["name"] for i in body["items"]] == ["Shop 4"]


def test_search_with_special_characters_matches_them_literally(client, make_merchant):
    make_merchant(name="100% Cotton")
    make_merchant(name="1000 Cotton")

    names = [
        i["name"] for i in client.get("/api/v1/merchants?q=100%25").get_json()["items"]
    ]

    assert names == ["100% Cotton"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=restaurant", "kind"),
        ("q=" + "x" * 101, "q"),
        ("platform_id=abc", "platform_id"),
    ],
)
def test_bad_search_arguments_are_422(client, query, field):
    response = client.get(f"/api/v1/merchants?{query}")

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]


@pytest.mark.parametrize("page", ["abc", "0", "-1", "1.5"])
def test_a_bad_page_is_400(client, page):
    response = client.get(f"/api/v1/merchants?page={page}")

    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_page"


def test_read_one_entry(client, make_merchant):
    shop = make_merchant(
        name="Kettle Shop",
        uscc=TENCENT,
        shop_url="https://k.example.cn",
        arbitration_consent=True,
        commitment="Promise.",
    )

    body = client.get(f"/api/v1/merchants/{shop.id}").get_json()

    assert body == {
        "id": shop.id,
        "name": "Kettle Shop",
        "uscc": TENCENT,
        "kind": "goods",
        "platform_id": None,
        "shop_url": "https://k.example.cn",
        "region_code": "330106",
        "arbitration_consent": True,
        "commitment": "Promise.",
        "grade": None,
    }


@pytest.mark.parametrize("merchant_id", ["424242", "99999999999999999999999"])
def test_an_unknown_entry_is_404(client, merchant_id):
    response = client.get(f"/api/v1/merchants/{merchant_id}")

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


# -- register -------------------------------------------------------------


def test_regulator_registers_a_merchant(app, client, regulator_headers, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")

    response = client.post(
        "/api/v1/merchants",
        headers=regulator_headers,
        json=_new(
            uscc="9144 0300 7084 6113 6t",
            platform_id=mall.id,
            arbitration_consent=True,
            shop_url="https://mall.example.cn/kettle",
            commitment="Seven days.",
        ),
    )

    assert response.status_code == 201
    body = response.get_json()
    assert body["uscc"] == TENCENT
    assert body["platform_id"] == mall.id
    assert body["grade"] is None
    with app.app_context():
        stored = db.session.get(Merchant, body["id"])
        assert stored.name == "Kettle Shop"
        assert stored.arbitration_consent is True
        assert stored.commitment == "Seven days."


@pytest.mark.parametrize(
    "code", ["91440300708461136U", "91440300708461136", "9144030070846113IT", "A" * 18]
)
def test_an_invalid_code_is_422_on_the_uscc_field(app, client, regulator_headers, code):
    response = client.post(
        "/api/v1/merchants", headers=regulator_headers, json=_new(uscc=code)
    )

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["uscc"]
    assert isinstance(error["fields"]["uscc"], str) and error["fields"]["uscc"]
    assert _count(app) == 0


def test_a_registered_code_is_422_on_the_uscc_field(
    app, client, regulator_headers, make_merchant
):
    make_merchant(name="Tencent", uscc=TENCENT)

    response = client.post(
        "/api/v1/merchants", headers=regulator_headers, json=_new(uscc=TENCENT.lower())
    )

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["uscc"]
    assert _count(app) == 1


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"kind": "restaurant"}, {"kind"}),
        ({"region_code": "12345"}, {"region_code"}),
        ({"name": "   "}, {"name"}),
        ({"name": 5}, {"name"}),
        ({"platform_id": "1"}, {"platform_id"}),
        ({"platform_id": True}, {"platform_id"}),
        ({"platform_id": 424242}, {"platform_id"}),
        ({"shop_url": "javascript:alert(1)"}, {"shop_url"}),
        ({"nickname": "Kettles"}, {"nickname"}),
        ({"commitment": "x" * 5001}, {"commitment"}),
    ],
)
def test_bad_fields_are_422(app, client, regulator_headers, overrides, fields):
    response = client.post(
        "/api/v1/merchants", headers=regulator_headers, json=_new(**overrides)
    )

    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == fields
    assert _count(app) == 0


def test_missing_fields_are_named(client, regulator_headers):
    response = client.post("/api/v1/merchants", headers=regulator_headers, json={})

    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {
        "name",
        "uscc",
        "kind",
        "region_code",
    }


def test_a_platform_cannot_sell_on_a_platform(client, regulator_headers, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")

    response = client.post(
        "/api/v1/merchants",
        headers=regulator_headers,
        json=_new(kind="platform", platform_id=mall.id),
    )

    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"platform_id"}


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b""])
def test_a_malformed_body_is_400(client, regulator_headers, body):
    response = client.post(
        "/api/v1/merchants",
        data=body,
        headers={**regulator_headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"


def test_anonymous_registration_is_401(app, client):
    response = client.post("/api/v1/merchants", json=_new())

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert _count(app) == 0


@pytest.mark.parametrize("role", ["consumer", "merchant", "mediator", "arbitrator"])
def test_other_roles_may_not_register(
    app, client, make_user, make_merchant, token_for, role
):
    shop = make_merchant(name="Own Shop")
    extra = {"merchant_id": shop.id} if role == "merchant" else {}
    headers = token_for(make_user(role, **extra))

    response = client.post("/api/v1/merchants", headers=headers, json=_new(uscc=HUAWEI))

    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert _count(app) == 1


def test_a_revoked_or_bogus_token_is_401(client):
    response = client.post(
        "/api/v1/merchants",
        json=_new(),
        headers={"Authorization": "Bearer not-a-real-token"},
    )

    assert response.status_code == 401


# -- edit -----------------------------------------------------------------


def test_regulator_edits_an_entry(app, client, regulator_headers, make_merchant):
    shop = make_merchant(name="Kettle Shop", uscc=TENCENT)

    response = client.patch(
        f"/api/v1/merchants/{shop.id}",
        headers=regulator_headers,
        json={"name": "Kettle Shop (flagship)", "arbitration_consent": True},
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "Kettle Shop (flagship)"
    assert body["uscc"] == TENCENT  # untouched fields stay
    assert body["arbitration_consent"] is True
    with app.app_context():
        assert db.session.get(Merchant, shop.id).name == "Kettle Shop (flagship)"


def test_an_invalid_code_on_edit_is_422_and_changes_nothing(
    app, client, regulator_headers, make_merchant
):
    shop = make_merchant(name="Kettle Shop", uscc=TENCENT)

    response = client.patch(
        f"/api/v1/merchants/{shop.id}",
        headers=regulator_headers,
        json={"name": "Renamed", "uscc": "91440300708461136U"},
    )

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["uscc"]
    with app.app_context():
        assert db.session.get(Merchant, shop.id).name == "Kettle Shop"


def test_keeping_its_own_code_is_not_a_duplicate(
    client, regulator_headers, make_merchant
):
    shop = make_merchant(name="Kettle Shop", uscc=TENCENT)

    response = client.patch(
        f"/api/v1/merchants/{shop.id}",
        headers=regulator_headers,
        json={"uscc": TENCENT},
    )

    assert response.status_code == 200


def test_a_shop_on_a_platform_cannot_become_a_platform(
    client, regulator_headers, make_merchant
):
    mall = make_merchant(name="Whale Mall", kind="platform")
    shop = make_merchant(name="Kettle Shop", platform_id=mall.id)

    response = client.patch(
        f"/api/v1/merchants/{shop.id}",
        headers=regulator_headers,
        json={"kind": "platform"},
    )

    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"platform_id"}
    ok = client.patch(
        f"/api/v1/merchants/{shop.id}",
        headers=regulator_headers,
        json={"kind": "platform", "platform_id": None},
    )
    assert ok.status_code == 200 and ok.get_json()["platform_id"] is None


def test_a_platform_with_shops_keeps_its_kind_409(
    client, regulator_headers, make_merchant
):
    mall = make_merchant(name="Whale Mall", kind="platform")
    make_merchant(name="Kettle Shop", platform_id=mall.id)

    response = client.patch(
        f"/api/v1/merchants/{mall.id}",
        headers=regulator_headers,
        json={"kind": "goods"},
    )

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"


def test_editing_an_unknown_entry_is_404(client, regulator_headers):
    response = client.patch(
        "/api/v1/merchants/424242", headers=regulator_headers, json={"name": "X"}
    )

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("role", "status"), [(None, 401), ("consumer", 403), ("mediator", 403)]
)
def test_only_regulators_edit(
    app, client, make_user, make_merchant, token_for, role, status
):
    shop = make_merchant(name="Kettle Shop")
    headers = token_for(make_user(role)) if role else {}

    response = client.patch(
        f"/api/v1/merchants/{shop.id}", headers=headers, json={"name": "Hijacked"}
    )

    assert response.status_code == status
    with app.app_context():
        assert db.session.get(Merchant, shop.id).name == "Kettle Shop"


def test_unknown_fields_on_edit_are_422(client, regulator_headers, make_merchant):
    shop = make_merchant(name="Kettle Shop")

    response = client.patch(
        f"/api/v1/merchants/{shop.id}", headers=regulator_headers, json={"id": 5}
    )

    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"id"}


def test_nul_characters_are_refused_not_stored(app, client, regulator_headers):
    """PostgreSQL cannot store NUL: the app-wide guard answers 400 first."""
    response = client.post(
        "/api/v1/merchants",
        headers=regulator_headers,
        json=_new(name="Kettle\x00Shop", commitment="x\x00"),
    )

    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "nul_character"
    search = client.get("/api/v1/merchants?q=%00")
    assert search.status_code == 400
    assert search.get_json()["error"]["code"] == "nul_character"
    assert _count(app) == 0
