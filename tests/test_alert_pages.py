"""The alert and case-group pages and ``GET /api/v1/alerts``: who sees what, the
forms (grouping, resolving, dismissing, a group's mediator), bad input."""

from __future__ import annotations

import pytest

from mediation import clock
from mediation.analytics.alert_models import CaseGroup, MassAlert
from mediation.credit.models import CreditEvent
from mediation.extensions import db
from tests.alert_support import MONDAY, AlertWorld, group_now

ROLES = ("A", "S", "P", "arb")


@pytest.fixture()
def world(app, make_user, make_merchant, make_case, token_for):
    """An alert of 4 complaints against S: the first taken by M, the second by
    M2, two waiting for S; and an alert against T nobody mediates."""
    clock.freeze(MONDAY)
    app.config["MASS_ALERT_THRESHOLD"] = 4
    w = AlertWorld(app, make_user, make_merchant, make_case, token_for)
    w.ids = w.file(4)
    w.to_mediation(w.ids[0], take="M")
    w.to_mediation(w.ids[1], take="M2")
    w.other_ids = w.file(4, shop="T", category="delivery")
    w.alert_id, w.other_alert_id = (a["id"] for a in w.alerts())
    yield w
    clock.unfreeze()


def _url(alert_id, tail=""):
    return f"/supervision/alerts/{alert_id}{tail}"


def _flashes(client):
    with client.session_transaction() as session:
        return [(kind, str(text)) for kind, text in session.pop("_flashes", [])]


# Access ------------------------------------------------------------------------------


def test_the_list_regulators_see_every_alert_mediators_their_own(world):
    html = world.http("R").get("/supervision/alerts?lang=en").get_data(as_text=True)
    assert html.count('data-testid="alert-row"') == 2
    assert 'data-testid="supervision-nav"' in html
    html = world.http("M").get("/supervision/alerts?lang=en").get_data(as_text=True)
    assert html.count('data-testid="alert-row"') == 1
    assert f'data-alert-id="{world.alert_id}"' in html
    html = world.http("M2").get("/supervision/alerts").get_data(as_text=True)
    assert f'data-alert-id="{world.alert_id}"' in html
    for actor in ROLES:
        assert world.http(actor).get("/supervision/alerts").status_code == 403
    anonymous = world.app.test_client().get("/supervision/alerts")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


@pytest.mark.parametrize(
    ("query", "rows"),
    [
        ("", 2),
        ("?status=open", 2),
        ("?status=resolved", 0),
        ("?status=all&category=delivery", 1),
        ("?status=bogus&category=%00nonsense", 2),  # unknown filters: the default
        ("?page=abc", 2),
    ],
)
def test_the_list_filters(world, query, rows):
    response = world.http("R").get("/supervision/alerts" + query)
    if "%00" in query:
        assert response.status_code == 400  # the app's NUL guard
        return
    assert response.status_code == 200
    assert response.get_data(as_text=True).count('data-testid="alert-row"') == rows


def test_the_alert_page_names_consumers_to_regulators_only(world):
    html = world.http("R").get(_url(world.alert_id) + "?lang=en").get_data(as_text=True)
    assert "Alice Consumer" in html and html.count('data-testid="alert-case"') == 4
    assert 'data-testid="resolve-form"' in html and 'data-testid="dismiss-form"' in html
    assert html.count('data-testid="group-pick"') == 4
    response = world.http("M").get(_url(world.alert_id) + "?lang=en")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for name in ("Alice Consumer", "Bob Consumer", "Carol Consumer"):
        assert name not in html
    assert html.count('data-testid="alert-case"') == 4
    # M may group only the complaint M mediates; no resolving for mediators.
    assert html.count('data-testid="group-pick"') == 1
    assert 'data-testid="resolve-form"' not in html
    assert world.http("M").get(_url(world.other_alert_id)).status_code == 404
    assert world.http("R").get(_url(99999)).status_code == 404
    for actor in ROLES:
        assert world.http(actor).get(_url(world.alert_id)).status_code == 403


# Grouping ---------------------------------------------------------------------------


def test_a_regulator_groups_complaints_for_a_mediator(world):
    client = world.http("R")
    response = client.post(
        _url(world.alert_id, "/group"),
        data={
            "group-case_ids": [str(i) for i in world.ids[:3]],
            "group-mediator_id": str(world.users["M"].id),
            "group-title": "Double-eleven fake discounts",
            "group-target": "new",
        },
    )
    assert response.status_code == 303
    with world.app.app_context():
        group = db.session.scalars(db.select(CaseGroup)).one()
        group_id = group.id
    assert response.headers["Location"].endswith(f"/supervision/groups/{group_id}")
    assert _flashes(client)[0][0] == "success"
    info = world.group(group_id)
    assert (
        info["case_ids"] == world.ids[:3]
        and info["title"] == "Double-eleven fake discounts"
    )
    assert world.case(world.ids[1])["mediator_id"] == world.users["M"].id
    page = client.get(f"/supervision/groups/{group_id}?lang=en").get_data(as_text=True)
    assert page.count('data-testid="group-case"') == 3
    assert 'data-testid="group-room-link"' in page  # regulators read it
    page = world.http("M").get(f"/supervision/groups/{group_id}").get_data(as_text=True)
    assert 'data-testid="group-room-link"' in page
    # The alert page now offers to add the last complaint to the group.
    html = client.get(_url(world.alert_id)).get_data(as_text=True)
    assert f'value="group:{group_id}"' in html
    response = client.post(
        _url(world.alert_id, "/group"),
        data={
            "group-case_ids": [str(world.ids[3])],
            "group-target": f"group:{group_id}",
        },
    )
    assert response.status_code == 303
    assert world.group(group_id)["case_ids"] == world.ids


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "case_ids"),
        ({"group-case_ids": ["abc"]}, "case_ids"),
        ({"group-case_ids": ["1"]}, "case_ids"),  # not a complaint of this alert
        ({"group-case_ids": "OWN"}, "mediator_id"),
        ({"group-case_ids": "OWN", "group-mediator_id": "x"}, "mediator_id"),
        ({"group-case_ids": "OWN", "group-mediator_id": "ARB"}, "mediator_id"),
        ({"group-case_ids": "OWN", "group-target": "group:999"}, "target"),
        ({"group-case_ids": "OWN", "group-title": "x" * 201}, "title"),
    ],
)
def test_bad_grouping_input_is_a_form_error(world, data, field):
    own = [str(i) for i in world.ids[:2]]
    form = dict(data)
    if form.get("group-case_ids") == "OWN":
        form["group-case_ids"] = own
        form.setdefault("group-mediator_id", str(world.users["M"].id))
        if field == "mediator_id" and "group-mediator_id" in data:
            form["group-mediator_id"] = {
                "x": "x",
                "ARB": str(world.users["arb"].id),
            }[data["group-mediator_id"]]
        elif field == "mediator_id":
            form.pop("group-mediator_id")
    if data.get("group-case_ids") == ["1"]:
        form["group-case_ids"] = [str(world.other_ids[0])]
    response = world.http("R").post(_url(world.alert_id, "/group"), data=form)
    assert response.status_code == 422, field
    html = response.get_data(as_text=True)
    assert 'class="error"' in html or "flash-error" in html
    with world.app.app_context():
        assert db.session.scalar(db.select(db.func.count(CaseGroup.id))) == 0


def test_a_mediator_groups_their_own_complaints_on_the_page(world):
    world.to_mediation(world.ids[2], take="M")
    client = world.http("M")
    refused = client.post(
        _url(world.alert_id, "/group"),
        data={"group-case_ids": [str(world.ids[0]), str(world.ids[1])]},
    )
    assert refused.status_code == 422  # ids[1] is M2's
    response = client.post(
        _url(world.alert_id, "/group"),
        data={"group-case_ids": [str(world.ids[0]), str(world.ids[2])]},
    )
    assert response.status_code == 303
    with world.app.app_context():
        group = db.session.scalars(db.select(CaseGroup)).one()
        assert group.mediator_id == world.users["M"].id
    assert (
        world.http("M2").post(_url(world.other_alert_id, "/group"), data={}).status_code
        == 404
    )
    assert (
        world.http("S").post(_url(world.alert_id, "/group"), data={}).status_code == 403
    )


# Resolving and dismissing --------------------------------------------------------


def test_resolving_needs_a_note_and_happens_once(world):
    client = world.http("R")
    empty = client.post(_url(world.alert_id, "/resolve"), data={"resolve-note": " "})
    assert empty.status_code == 422
    done = client.post(
        _url(world.alert_id, "/resolve"),
        data={"resolve-note": "Warning interview held; refunds paid."},
    )
    assert done.status_code == 303 and _flashes(client)[0][0] == "success"
    again = client.post(_url(world.alert_id, "/resolve"), data={"resolve-note": "x"})
    assert again.status_code == 303 and _flashes(client)[0][0] == "error"
    html = client.get(_url(world.alert_id) + "?lang=en").get_data(as_text=True)
    assert "Warning interview held; refunds paid." in html
    assert 'data-testid="group-form"' not in html
    assert world.alerts()[0]["status"] == "resolved"
    assert (
        world.http("M")
        .post(_url(world.alert_id, "/dismiss"), data={"dismiss-reason": "x"})
        .status_code
        == 403
    )


def test_dismissing_withdraws_the_credit_fact(world):
    client = world.http("R")
    assert client.post(_url(world.alert_id, "/dismiss"), data={}).status_code == 422
    response = client.post(
        _url(world.alert_id, "/dismiss"),
        data={"dismiss-reason": "The same buyer four times."},
    )
    assert response.status_code == 303
    with world.app.app_context():
        alert = db.session.get(MassAlert, world.alert_id)
        assert alert.status == "dismissed" and alert.credit_event_id is None
        kinds = db.session.scalars(
            db.select(CreditEvent.kind).where(CreditEvent.merchant_id == world.shop.id)
        ).all()
        assert "mass_alert" not in kinds
    html = client.get(_url(world.alert_id) + "?lang=en").get_data(as_text=True)
    assert "Withdrawn when the alert was dismissed." in html


# The group page ---------------------------------------------------------------------


def test_the_group_page_its_mediator_and_its_complaints(world):
    group_id = group_now(world, world.ids[:3], mediator="M", alert_id=world.alert_id)
    url = f"/supervision/groups/{group_id}"
    assert world.http("M").get(url).status_code == 200
    assert world.http("M2").get(url).status_code == 404
    for actor in ROLES:
        assert world.http(actor).get(url).status_code == 403
    assert world.http("R").get("/supervision/groups/424242").status_code == 404
    client = world.http("R")
    bad = client.post(url + "/mediator", data={"mediator_id": "nope"})
    assert bad.status_code == 422
    same = client.post(
        url + "/mediator", data={"mediator_id": str(world.users["M"].id)}
    )
    assert same.status_code == 422
    moved = client.post(
        url + "/mediator", data={"mediator_id": str(world.users["M2"].id)}
    )
    assert moved.status_code == 303
    assert world.case(world.ids[0])["mediator_id"] == world.users["M2"].id
    assert (
        world.http("M")
        .post(url + "/mediator", data={"mediator_id": str(world.users["M"].id)})
        .status_code
        == 404
    )  # M no longer handles it
    assert (
        world.http("M2")
        .post(url + "/mediator", data={"mediator_id": str(world.users["M"].id)})
        .status_code
        == 403
    )
    remove = f"{url}/cases/{world.ids[2]}/remove"
    assert client.post(remove, data={"reason": ""}).status_code == 422
    assert client.post(remove, data={"reason": "Another order."}).status_code == 303
    assert client.post(remove, data={"reason": "Again."}).status_code == 404
    assert world.group(group_id)["case_ids"] == world.ids[:2]


def test_the_case_page_tells_who_handles_the_group_and_which_alerts(world):
    group_id = group_now(world, world.ids[:2], mediator="M", alert_id=world.alert_id)
    html = world.http("R").get(f"/cases/{world.ids[0]}?lang=en").get_data(as_text=True)
    assert f'href="/supervision/groups/{group_id}"' in html
    assert f'data-alert-id="{world.alert_id}"' in html
    html = world.http("A").get(f"/cases/{world.ids[0]}?lang=en").get_data(as_text=True)
    assert 'data-testid="case-group"' in html
    assert 'data-testid="case-alerts"' not in html  # consumers see no alerts
    assert "/supervision/groups/" not in html
    html = world.http("M").get("/mediation?lang=en").get_data(as_text=True)
    assert 'data-testid="caseload-group"' in html
    timeline = (
        world.http("R").get(f"/cases/{world.ids[1]}?lang=en").get_data(as_text=True)
    )
    assert 'data-testid="event-group"' in timeline


# The API ----------------------------------------------------------------------------


def test_the_alerts_api(world):
    client = world.app.test_client()
    answer = client.get("/api/v1/alerts?status=open", headers=world.headers("R"))
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["total"], body["page"]) == (2, 1)
    item = next(i for i in body["items"] if i["id"] == world.alert_id)
    assert item["merchant_id"] == world.shop.id and item["category"] == "fake_promotion"
    assert item["count"] == 4 and item["window_days"] == 7 and item["threshold"] == 4
    assert item["case_ids"] == world.ids and item["status"] == "open"
    assert item["raised_by"] == "filing" and item["credit_recorded"] is True
    assert item["raised_at"].endswith("+00:00") and item["group_ids"] == []
    mine = client.get("/api/v1/alerts", headers=world.headers("M")).get_json()
    assert [i["id"] for i in mine["items"]] == [world.alert_id]
    filtered = client.get(
        f"/api/v1/alerts?merchant_id={world.other_shop.id}&category=delivery",
        headers=world.headers("R"),
    ).get_json()
    assert [i["id"] for i in filtered["items"]] == [world.other_alert_id]
    assert (
        client.get(
            "/api/v1/alerts?status=resolved", headers=world.headers("R")
        ).get_json()["items"]
        == []
    )
    for actor in ROLES:
        assert (
            client.get("/api/v1/alerts", headers=world.headers(actor)).status_code
            == 403
        )
    assert client.get("/api/v1/alerts").status_code == 401


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?status=bogus", 422),
        ("?category=gadgets", 422),
        ("?merchant_id=abc", 422),
        ("?merchant_id=0", 422),
        ("?page=0", 400),
        ("?status=%00", 400),
    ],
)
def test_bad_alert_queries(world, query, status):
    response = world.app.test_client().get(
        "/api/v1/alerts" + query, headers=world.headers("R")
    )
    assert response.status_code == status
    assert "error" in response.get_json()


def test_the_alerts_endpoint_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/alerts"]["get"]
    assert "x-spec-error" not in operation
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/AlertPage"}
    fields = spec["components"]["schemas"]["Alert"]["properties"]
    assert {
        "merchant_id",
        "category",
        "count",
        "window_days",
        "case_ids",
        "status",
    } <= set(fields)
    names = {p["name"] for p in operation["parameters"]}
    assert {"status", "category", "merchant_id", "page"} <= names
    messages = spec["paths"]["/api/v1/cases/{case_id}/messages"]["get"]
    room = next(p for p in messages["parameters"] if p["name"] == "room")
    assert "group" in room["schema"]["enum"]
