"""Registry pages: the public search and entries, and the regulator's editor."""

from __future__ import annotations

import re

import pytest

from mediation.extensions import db
from mediation.merchants.models import Merchant

TENCENT = "91440300708461136T"
HUAWEI = "914403001922038216"


@pytest.fixture()
def en(client):
    """Ask for English pages (the msgids), whatever the catalogues say."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture()
def regulator(make_user, auth):
    user = make_user("regulator", locale="en")
    auth.login(user)
    return user


def _field_errors(html: str, name: str) -> list[str]:
    """Return the error messages shown under the form field ``name``."""
    for chunk in html.split('<div class="field')[1:]:
        if re.search(
            rf'<(?:input|select|textarea)[^>]*name="{re.escape(name)}"', chunk
        ):
            return re.findall(r'<div class="error" role="alert">(.*?)</div>', chunk)
    raise AssertionError(f"no field {name!r} on the page")


def _row(app, merchant_id: int) -> Merchant | None:
    with app.app_context():
        merchant = db.session.get(Merchant, merchant_id)
        if merchant is not None:
            db.session.expunge(merchant)
        return merchant


def _count(app) -> int:
    with app.app_context():
        return len(db.session.scalars(db.select(Merchant.id)).all())


# -- public search ---------------------------------------------------------


def test_search_lists_name_code_kind_platform_and_region(en, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")
    make_merchant(
        name="Kettle Shop", platform_id=mall.id, region_code="440305", uscc=TENCENT
    )

    page = en.get("/merchants/?q=kettle").get_data(as_text=True)

    assert 'data-testid="merchant-table"' in page
    row = re.search(r"<tr data-merchant-id=.*?</tr>", page, re.S).group(0)
    assert "Kettle Shop" in row
    assert TENCENT in row
    assert "Goods merchant" in row
    assert "Whale Mall" in row
    assert "440305" in row
    assert "Whale Mall</a></td>" in row  # the platform, linked


def test_search_by_code_prefix_ignores_case_and_spaces(en, make_merchant):
    make_merchant(name="Tencent", uscc=TENCENT)
    make_merchant(name="Huawei", uscc=HUAWEI)

    page = en.get("/merchants/", query_string={"q": "9144 0300 7084"}).get_data(
        as_text=True
    )

    assert "Tencent" in page and "Huawei" not in page
    page = en.get("/merchants/?q=91440300708461136t").get_data(as_text=True)
    assert "Tencent" in page and "Huawei" not in page


def test_search_filters_by_kind(en, make_merchant):
    make_merchant(name="Alpha Mall", kind="platform")
    make_merchant(name="Alpha Repairs", kind="service")
    make_merchant(name="Alpha Goods")

    page = en.get("/merchants/?q=alpha&kind=service").get_data(as_text=True)

    assert "Alpha Repairs" in page
    assert "Alpha Mall" not in page and "Alpha Goods" not in page


def test_search_without_matches_says_so(en, make_merchant):
    make_merchant(name="Kettle Shop")

    response = en.get("/merchants/?q=nothing-like-this")

    assert response.status_code == 200
    assert 'data-testid="no-results"' in response.get_data(as_text=True)


def test_search_is_paginated(app, en, make_merchant):
    app.config["PAGE_SIZE"] = 2
    for n in range(5):
        make_merchant(name=f"Shop {n}")

    first = en.get("/merchants/?q=shop").get_data(as_text=True)
    last = en.get("/merchants/?q=shop&page=3").get_data(as_text=True)

    assert first.count("<tr data-merchant-id") == 2
    assert "Page 1 of 3" in first
    assert "page=2" in first and "q=shop" in first  # the next link keeps the search
    assert last.count("<tr data-merchant-id") == 1
    assert "Shop 4" in last


@pytest.mark.parametrize("page", ["abc", "0", "-3", "99999999999999999999999"])
def test_search_with_a_strange_page_number_does_not_fail(en, make_merchant, page):
    make_merchant(name="Kettle Shop")

    response = en.get(f"/merchants/?page={page}")

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [({"q": "x" * 101}, "q"), ({"kind": "restaurant"}, "kind")],
)
def test_bad_search_input_is_a_form_error(en, query, field):
    response = en.get("/merchants/", query_string=query)

    assert response.status_code == 422
    assert _field_errors(response.get_data(as_text=True), field)


def test_search_page_wires_the_autocomplete(en):
    page = en.get("/merchants/").get_data(as_text=True)

    assert "js/merchant-autocomplete.js" in page
    assert re.search(r"<input[^>]*data-merchant-autocomplete[^>]*name=\"q\"", page)
    assert 'data-href-template="/merchants/{id}"' in page


def test_search_of_shops_on_a_platform(en, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")
    make_merchant(name="On Mall", platform_id=mall.id)
    make_merchant(name="Independent")

    page = en.get(f"/merchants/?platform={mall.id}").get_data(as_text=True)

    assert "On Mall" in page and "Independent" not in page
    assert "Shops on Whale Mall" in page
    assert en.get("/merchants/?platform=987654").status_code == 404


# -- public entry ----------------------------------------------------------


def test_detail_shows_the_public_registry_entry(en, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")
    shop = make_merchant(
        name="Kettle Shop",
        uscc=TENCENT,
        platform_id=mall.id,
        region_code="440305",
        shop_url="https://mall.example.cn/kettle",
        arbitration_consent=True,
        commitment="Seven days, no questions asked.",
    )

    page = en.get(f"/merchants/{shop.id}").get_data(as_text=True)

    assert 'data-testid="merchant-name">Kettle Shop<' in page
    assert TENCENT in page
    assert "Goods merchant" in page
    assert f'href="/merchants/{mall.id}">Whale Mall</a>' in page
    assert "440305" in page
    assert 'href="https://mall.example.cn/kettle"' in page
    assert "Agreed in advance" in page
    assert "Seven days, no questions asked." in page


def test_detail_of_a_platform_lists_its_shops(en, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")
    make_merchant(name="Kettle Shop", platform_id=mall.id)
    make_merchant(name="Elsewhere")

    page = en.get(f"/merchants/{mall.id}").get_data(as_text=True)

    shops = re.search(r'data-testid="platform-shops">.*?</section>', page, re.S).group(
        0
    )
    assert "Kettle Shop" in shops and "Elsewhere" not in shops
    assert 'data-testid="merchant-platform"' not in page  # a platform sells on none
    assert "Not agreed in advance." in page


def test_detail_shows_no_personal_data(en, make_merchant, make_user):
    shop = make_merchant(name="Kettle Shop")
    make_user(
        "merchant",
        merchant_id=shop.id,
        email="staff.member@example.com",
        name="Staff Member Zhang",
        phone="13800138000",
    )

    page = en.get(f"/merchants/{shop.id}").get_data(as_text=True)

    for secret in ("staff.member@example.com", "Staff Member Zhang", "13800138000"):
        assert secret not in page


def test_detail_escapes_what_the_registry_holds(en, make_merchant):
    shop = make_merchant(name="<script>alert(1)</script>", commitment="<b>bold</b>")

    page = en.get(f"/merchants/{shop.id}").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in page
    assert "<b>bold</b>" not in page


def test_detail_of_an_unknown_merchant_is_404(en):
    assert en.get("/merchants/424242").status_code == 404
    assert en.get("/merchants/99999999999999999999999").status_code == 404


# -- regulator pages: access -----------------------------------------------

ADMIN_PAGES = [
    ("get", "/merchants/admin"),
    ("get", "/merchants/admin/new"),
    ("post", "/merchants/admin/new"),
    ("get", "/merchants/admin/{id}/edit"),
    ("post", "/merchants/admin/{id}/edit"),
]


@pytest.mark.parametrize("role", ["consumer", "merchant", "mediator", "arbitrator"])
@pytest.mark.parametrize(("method", "url"), ADMIN_PAGES)
def test_regulator_pages_refuse_other_roles(
    app, client, auth, make_user, make_merchant, role, method, url
):
    shop = make_merchant(name="Kettle Shop")
    extra = {"merchant_id": shop.id} if role == "merchant" else {}
    auth.login(make_user(role, **extra))

    response = getattr(client, method)(
        url.format(id=shop.id),
        data={
            "name": "Hijacked",
            "uscc": HUAWEI,
            "kind": "goods",
            "region_code": "330106",
        },
    )

    assert response.status_code == 403
    assert _row(app, shop.id).name == "Kettle Shop"
    assert _count(app) == 1


@pytest.mark.parametrize(("method", "url"), ADMIN_PAGES)
def test_regulator_pages_need_a_sign_in(app, client, make_merchant, method, url):
    shop = make_merchant(name="Kettle Shop")

    response = getattr(client, method)(url.format(id=shop.id), data={"name": "X"})

    assert response.status_code in (302, 401)
    assert _row(app, shop.id).name == "Kettle Shop"


# -- regulator pages: the registry ----------------------------------------


def test_admin_list_links_each_entry_to_its_editor(en, regulator, make_merchant):
    shop = make_merchant(name="Kettle Shop")

    page = en.get("/merchants/admin?q=kettle").get_data(as_text=True)

    assert f'href="/merchants/admin/{shop.id}/edit"' in page
    assert 'href="/merchants/admin/new"' in page


def test_new_form_offers_every_field_and_the_platforms(en, regulator, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")
    make_merchant(name="Just A Shop")

    page = en.get("/merchants/admin/new").get_data(as_text=True)

    for name in (
        "name",
        "uscc",
        "kind",
        "platform_id",
        "shop_url",
        "region_code",
        "arbitration_consent",
        "commitment",
    ):
        assert f'name="{name}"' in page
    select = re.search(r'<select id="platform_id".*?</select>', page, re.S).group(0)
    assert f'value="{mall.id}"' in select and "Whale Mall" in select
    assert "Just A Shop" not in select


def test_regulator_registers_a_merchant(app, en, regulator, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")

    response = en.post(
        "/merchants/admin/new",
        data={
            "name": "  Kettle Shop ",
            "uscc": "9144 0300 7084 6113 6t",
            "kind": "goods",
            "platform_id": str(mall.id),
            "shop_url": "https://mall.example.cn/kettle",
            "region_code": "440305",
            "arbitration_consent": "y",
            "commitment": "Seven days, no questions asked.",
        },
    )

    assert response.status_code == 302
    with app.app_context():
        shop = db.session.scalar(db.select(Merchant).where(Merchant.uscc == TENCENT))
        assert response.headers["Location"].endswith(f"/merchants/{shop.id}")
        assert shop.name == "Kettle Shop"
        assert shop.platform_id == mall.id
        assert shop.arbitration_consent is True
        assert shop.region_code == "440305"
        assert shop.commitment == "Seven days, no questions asked."


def test_a_bad_check_character_shows_on_the_code_field(app, en, regulator):
    response = en.post(
        "/merchants/admin/new",
        data={
            "name": "Kettle Shop",
            "uscc": "91440300708461136U",
            "kind": "goods",
            "platform_id": "",
            "region_code": "440305",
        },
    )

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert _field_errors(page, "uscc") == [
        "The check character does not match: the code has a typing error."
    ]
    assert _field_errors(page, "name") == []
    assert 'value="Kettle Shop"' in page  # what was typed is kept
    assert _count(app) == 0


def test_every_bad_field_is_shown_at_once(app, en, regulator, make_merchant):
    make_merchant(name="Tencent", uscc=TENCENT)
    mall = make_merchant(name="Whale Mall", kind="platform")

    response = en.post(
        "/merchants/admin/new",
        data={
            "name": "",
            "uscc": TENCENT,
            "kind": "platform",
            "platform_id": str(mall.id),
            "region_code": "12345",
            "shop_url": "mall.example.cn",
        },
    )

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in ("name", "uscc", "platform_id", "region_code", "shop_url"):
        assert len(_field_errors(page, field)) == 1, field
    assert _count(app) == 2


def test_a_shop_that_is_not_a_platform_cannot_be_chosen(
    app, en, regulator, make_merchant
):
    shop = make_merchant(name="Just A Shop")

    response = en.post(
        "/merchants/admin/new",
        data={
            "name": "Kettle Shop",
            "uscc": TENCENT,
            "kind": "goods",
            "platform_id": str(shop.id),
            "region_code": "440305",
        },
    )

    assert response.status_code == 422
    assert _field_errors(response.get_data(as_text=True), "platform_id")
    assert _count(app) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "restaurant"), ("platform_id", "not-a-number"), ("name", "x" * 201)],
)
def test_form_level_bad_values_are_form_errors(app, en, regulator, field, value):
    data = {
        "name": "Kettle Shop",
        "uscc": TENCENT,
        "kind": "goods",
        "platform_id": "",
        "region_code": "440305",
        field: value,
    }

    response = en.post("/merchants/admin/new", data=data)

    assert response.status_code == 422
    assert _field_errors(response.get_data(as_text=True), field)
    assert _count(app) == 0


def test_regulator_edits_an_entry(app, en, regulator, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")
    shop = make_merchant(
        name="Kettle Shop",
        uscc=TENCENT,
        region_code="440305",
        platform_id=mall.id,
        arbitration_consent=True,
    )

    form = en.get(f"/merchants/admin/{shop.id}/edit").get_data(as_text=True)
    assert 'value="Kettle Shop"' in form and f'value="{TENCENT}"' in form
    assert re.search(rf'<option selected value="{mall.id}">', form)
    assert re.search(r'id="arbitration_consent"[^>]*checked', form) or re.search(
        r'checked[^>]*id="arbitration_consent"', form
    )

    response = en.post(
        f"/merchants/admin/{shop.id}/edit",
        data={
            "name": "Kettle Shop (flagship)",
            "uscc": TENCENT,
            "kind": "goods",
            "platform_id": "",
            "region_code": "440306",
            "shop_url": "",
            "commitment": "New promise.",
        },
    )

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/merchants/{shop.id}")
    changed = _row(app, shop.id)
    assert changed.name == "Kettle Shop (flagship)"
    assert changed.platform_id is None
    assert changed.region_code == "440306"
    assert changed.arbitration_consent is False  # unticked
    assert changed.commitment == "New promise."


def test_an_invalid_code_on_edit_changes_nothing(app, en, regulator, make_merchant):
    shop = make_merchant(name="Kettle Shop", uscc=TENCENT)

    response = en.post(
        f"/merchants/admin/{shop.id}/edit",
        data={
            "name": "Renamed",
            "uscc": "91440300708461136",
            "kind": "goods",
            "platform_id": "",
            "region_code": "440305",
        },
    )

    assert response.status_code == 422
    assert _field_errors(response.get_data(as_text=True), "uscc") == [
        "A unified social credit code has 18 characters."
    ]
    assert _row(app, shop.id).name == "Kettle Shop"


def test_a_platform_with_shops_keeps_its_kind(app, en, regulator, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")
    make_merchant(name="Kettle Shop", platform_id=mall.id)

    response = en.post(
        f"/merchants/admin/{mall.id}/edit",
        data={
            "name": "Whale Mall",
            "uscc": mall.uscc,
            "kind": "goods",
            "platform_id": "",
            "region_code": "330106",
        },
    )

    assert response.status_code == 422
    assert "it must stay a platform" in response.get_data(as_text=True)
    assert _row(app, mall.id).kind == "platform"


def test_editing_an_unknown_merchant_is_404(en, regulator):
    assert en.get("/merchants/admin/424242/edit").status_code == 404


def test_a_nul_character_in_the_search_is_a_clear_400(en, make_merchant):
    make_merchant(name="Kettle Shop")

    response = en.get("/merchants/?q=Kettle%00")

    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)
