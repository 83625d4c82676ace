"""Webhooks against a real receiving HTTP server: subscriptions and access,
signatures, retries with backoff, giving up, scope, case filings, and the
transaction that causes an event never waiting for (or failing with) delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.credit import ledger
from mediation.credit import webhooks as hooks
from mediation.credit.models import (
    CreditChange,
    CreditStanding,
    WebhookDelivery,
    WebhookSubscription,
)
from mediation.credit.webhook_models import WebhookAttempt
from mediation.extensions import db
from tests.webhook_support import (
    add_event,
    dead_url,
    delist_merchant,
    list_merchant,
    receiver,
)

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
HOOKS = "/api/v1/webhooks"
CREDIT = ["credit.grade", "credit.listed", "credit.delisted", "credit.repaired"]
AWARD = {
    "findings": "The kettle leaked.",
    "reasons": "A product must be fit for use.",
    "decision": "granted",
    "orders": [
        {
            "type": "refund",
            "amount": 19900,
            "deadline": date(2026, 3, 20),
            "text": "Refund 199 yuan.",
        }
    ],
}


@pytest.fixture(autouse=True)
def _setup(app):
    clock.freeze(MONDAY)
    # The receivers of these tests listen on 127.0.0.1.
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = True
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    yield
    clock.unfreeze()


class World:
    """Two platforms with a shop each, a shop on no platform, and people."""

    def __init__(self, app, client, make_user, make_merchant, token_for) -> None:
        self.app, self.client = app, client
        self.mall = make_merchant(name="Whale Mall", kind="platform")
        self.bazaar = make_merchant(name="Bazaar", kind="platform")
        self.shop = make_merchant(
            name="Kettle Shop", platform_id=self.mall.id, arbitration_consent=True
        )
        self.bazaar_shop = make_merchant(name="Tea House", platform_id=self.bazaar.id)
        self.lone_shop = make_merchant(name="Lone Shop")
        self.users = {
            "mall": make_user("merchant", merchant_id=self.mall.id),
            "bazaar": make_user("merchant", merchant_id=self.bazaar.id),
            "shop": make_user("merchant", merchant_id=self.shop.id),
            "consumer": make_user("consumer", name="Zhang San"),
            "mediator": make_user("mediator"),
            "arbitrator": make_user("arbitrator"),
            "regulator": make_user("regulator"),
        }
        self._token_for = token_for
        self._headers: dict[str, dict[str, str]] = {}

    def headers(self, who: str) -> dict[str, str]:
        # Tokens last an hour: a new one once the clock has moved.
        key = f"{who}@{clock.now_utc().isoformat()}"
        if key not in self._headers:
            self._headers[key] = self._token_for(self.users[who])
        return self._headers[key]

    def subscribe(self, who: str, url: str, events: list[str]) -> dict:
        response = self.client.post(
            HOOKS, json={"url": url, "events": events}, headers=self.headers(who)
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def log(self, who: str, subscription_id: int, query: str = "") -> list[dict]:
        response = self.client.get(
            f"{HOOKS}/{subscription_id}/deliveries{query}", headers=self.headers(who)
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()["items"]

    def deliver(self) -> hooks.DeliveryReport:
        with self.app.app_context():
            return hooks.deliver_due(now=clock.now_utc(), limit=100)

    def apply(
        self, case_id: int, action: str, who: str | None, relation: str, **payload
    ):
        with self.app.app_context():
            case = db.session.get(Case, case_id)
            actor = db.session.get(User, self.users[who].id) if who else None
            services.apply_action(
                case,
                action,
                payload,
                actor=actor,
                relation=relation,
                now=clock.now_utc(),
            )
            db.session.commit()


@pytest.fixture()
def world(app, client, make_user, make_merchant, token_for) -> World:
    return World(app, client, make_user, make_merchant, token_for)


def _signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature as a receiver computes it (independently of the app's code)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _award_not_fulfilled(world: World, make_case) -> int:
    """A real case against the shop: arbitrated, awarded, reported not fulfilled."""
    case_id = make_case(world.users["consumer"], world.shop, arbitration_consent=True)
    world.apply(case_id, "reject", "shop", "merchant", reason="Not our fault.")
    world.apply(case_id, "take", "mediator", "mediator")
    world.apply(case_id, "end_mediation", "mediator", "mediator", reason="No deal.")
    world.apply(case_id, "take", "arbitrator", "arbitrator")
    world.apply(case_id, "issue_award", "arbitrator", "arbitrator", **AWARD)
    world.apply(
        case_id, "report_unfulfilled", "consumer", "consumer", text="Nothing came."
    )
    return case_id


# Signature and body -----------------------------------------------------------


def test_a_delivery_is_signed_with_the_secret_over_timestamp_and_body(app, world):
    with receiver() as server:
        sub = world.subscribe("mall", server.url("/in?src=odr"), ["credit.listed"])
        list_merchant(app, world.shop.id)
        assert server.requests == []  # nothing is sent by the transaction itself

        report = world.deliver()

        assert len(report.delivered) == 1
        (got,) = server.requests
    assert got.path == "/in?src=odr"
    timestamp = got.headers["X-Webhook-Timestamp"]
    assert timestamp == str(int(MONDAY.timestamp()))
    assert got.headers["X-Webhook-Signature"] == _signature(
        sub["secret"], timestamp, got.body
    )
    # Neither another secret nor another timestamp verifies.
    assert got.headers["X-Webhook-Signature"] != _signature(
        "x" * 64, timestamp, got.body
    )
    assert got.headers["X-Webhook-Signature"] != _signature(
        sub["secret"], str(int(timestamp) + 1), got.body
    )
    assert hooks.verify(
        sub["secret"], timestamp, got.body, got.headers["X-Webhook-Signature"]
    )
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
    assert got.headers["X-Webhook-Event"] == "credit.listed"
    body = got.json
    assert got.headers["X-Webhook-Id"] == str(body["id"])
    assert body["event"] == "credit.listed"
    assert body["created_at"] == "2026-03-02T02:00:00+00:00"
    change = body["data"]["change"]
    assert change["merchant"] == {
        "id": world.shop.id,
        "name": "Kettle Shop",
        "uscc": world.shop.uscc,
    }
    assert (change["kind"], change["new"]["listed"], change["new"]["grade"]) == (
        "listed",
        True,
        "D",
    )

    (delivery,) = world.log("mall", sub["id"])
    assert delivery["id"] == body["id"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        1,
        200,
    )
    assert delivery["delivered_at"] == "2026-03-02T02:00:00+00:00"
    assert delivery["payload"] == body["data"]
    assert [(a["number"], a["status_code"], a["error"]) for a in delivery["log"]] == [
        (1, 200, None)
    ]
    # Delivered is delivered: the next run sends nothing.
    assert world.deliver().attempted == 0


# Retries ------------------------------------------------------------------------


def test_a_receiver_failing_once_gets_a_retry_after_the_backoff(app, world):
    with receiver(statuses=[500, 200]) as server:
        sub = world.subscribe("mall", server.url(), ["credit.listed"])
        list_merchant(app, world.shop.id)

        first = world.deliver()
        assert len(first.retrying) == 1 and len(server.requests) == 1
        (pending,) = world.log("mall", sub["id"])
        assert pending["status"] == "pending"
        assert pending["last_status_code"] == 500
        assert pending["last_error"] == "HTTP 500 Internal Server Error"
        assert pending["next_attempt_at"] == "2026-03-02T02:01:00+00:00"

        clock.advance(timedelta(seconds=59))
        assert world.deliver().attempted == 0  # not due yet
        clock.advance(timedelta(seconds=1))
        second = world.deliver()

        assert second.delivered == first.retrying
        one, two = server.requests
    # The same body, signed again with the time of each attempt.
    assert one.body == two.body
    assert (
        int(two.headers["X-Webhook-Timestamp"])
        - int(one.headers["X-Webhook-Timestamp"])
        == 60
    )
    for got in (one, two):
        assert got.headers["X-Webhook-Signature"] == _signature(
            sub["secret"], got.headers["X-Webhook-Timestamp"], got.body
        )
    (delivery,) = world.log("mall", sub["id"])
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    assert delivery["next_attempt_at"] is None
    assert [(a["number"], a["at"], a["status_code"]) for a in delivery["log"]] == [
        (1, "2026-03-02T02:00:00+00:00", 500),
        (2, "2026-03-02T02:01:00+00:00", 200),
    ]
    assert delivery["log"][0]["error"] == "HTTP 500 Internal Server Error"
    assert delivery["log"][1]["error"] is None


def test_a_dead_address_fails_after_the_last_retry(app, world):
    sub = world.subscribe("mall", dead_url(), ["credit.listed"])
    list_merchant(app, world.shop.id)

    delays = []
    for _ in range(len(hooks.DEFAULT_RETRY_SCHEDULE)):
        report = world.deliver()
        assert len(report.retrying) == 1
        with app.app_context():
            delivery = db.session.scalars(db.select(WebhookDelivery)).one()
            delays.append(delivery.next_attempt_at - clock.now_utc())
            clock.freeze(delivery.next_attempt_at)
    last = world.deliver()

    assert len(last.failed) == 1
    assert delays == [timedelta(seconds=s) for s in (60, 300, 1800, 7200, 43200)]
    (delivery,) = world.log("mall", sub["id"])
    assert (delivery["status"], delivery["attempts"]) == ("failed", 6)
    assert delivery["next_attempt_at"] is None and delivery["last_status_code"] is None
    assert "ConnectionRefusedError" in delivery["last_error"]
    assert [a["number"] for a in delivery["log"]] == [1, 2, 3, 4, 5, 6]
    assert all(a["status_code"] is None for a in delivery["log"])
    # Given up is given up.
    clock.advance(timedelta(days=7))
    assert world.deliver().attempted == 0
    failed = world.log("mall", sub["id"], "?status=failed")
    assert [d["id"] for d in failed] == [delivery["id"]]
    assert world.log("mall", sub["id"], "?status=pending") == []


def test_a_receiver_that_does_not_answer_in_time_is_retried(app, world):
    app.config["WEBHOOK_TIMEOUT_SECONDS"] = 0.2
    with receiver() as server:
        server.delay = 1.0
        sub = world.subscribe("mall", server.url(), ["credit.listed"])
        list_merchant(app, world.shop.id)
        report = world.deliver()
    assert len(report.retrying) == 1
    (delivery,) = world.log("mall", sub["id"])
    assert delivery["last_status_code"] is None
    assert "timed out" in delivery["last_error"]
    assert delivery["log"][0]["duration_ms"] < 1000


# The cause's transaction ---------------------------------------------------------


def test_the_change_commits_when_the_receiver_is_down(app, world):
    world.subscribe("mall", dead_url(), CREDIT)
    with receiver() as server:
        world.subscribe("regulator", server.url(), CREDIT)
        with app.app_context():
            add_event(world.shop.id)
            ledger.refresh_standing(world.shop.id, now=clock.now_utc())
            db.session.commit()
        # The live receiver heard nothing during the transaction either.
        assert server.requests == []
    with app.app_context():
        assert db.session.get(CreditStanding, world.shop.id).listed is True
        deliveries = db.session.scalars(db.select(WebhookDelivery)).all()
        assert sorted(d.event for d in deliveries) == sorted(
            ["credit.grade", "credit.listed"] * 2
        )
        assert {d.status for d in deliveries} == {"pending"}


def test_a_rolled_back_change_queues_nothing(app, world):
    world.subscribe("mall", dead_url(), CREDIT)
    with app.app_context():
        add_event(world.shop.id)
        ledger.refresh_standing(world.shop.id, now=clock.now_utc())
        db.session.flush()
        assert db.session.scalars(db.select(WebhookDelivery)).all()
        db.session.rollback()
    with app.app_context():
        assert db.session.scalars(db.select(WebhookDelivery)).all() == []


# Scope --------------------------------------------------------------------------


def test_a_platform_receives_only_the_events_of_its_own_shops(app, world, make_case):
    with receiver() as mall, receiver() as bazaar, receiver() as regulator:
        world.subscribe("mall", mall.url(), CREDIT)
        world.subscribe("bazaar", bazaar.url(), CREDIT)
        world.subscribe("regulator", regulator.url(), CREDIT)

        _award_not_fulfilled(world, make_case)  # the mall's shop is listed
        list_merchant(app, world.lone_shop.id)  # a shop on no platform
        list_merchant(app, world.mall.id)  # the mall itself
        world.deliver()

        def seen(server):
            return sorted(
                (r.json["data"]["change"]["merchant"]["id"], r.json["event"])
                for r in server.requests
            )

        shop, lone, mall_id = world.shop.id, world.lone_shop.id, world.mall.id
        assert seen(mall) == sorted(
            [(shop, "credit.grade"), (shop, "credit.listed")]
            + [(mall_id, "credit.grade"), (mall_id, "credit.listed")]
        )
        assert seen(bazaar) == []
        assert {m for m, _ in seen(regulator)} == {shop, lone, mall_id}
        assert len(regulator.requests) == 6
    with app.app_context():
        # The listing came from the real case: its ledger event says why.
        assert db.session.get(CreditStanding, world.shop.id).listed is True


def test_an_events_list_filters_what_is_sent(app, world):
    with receiver() as server:
        world.subscribe("mall", server.url(), ["credit.delisted"])
        list_merchant(app, world.shop.id)
        clock.advance(timedelta(days=1))
        delist_merchant(app, world.shop.id)
        world.deliver()
        assert [r.json["event"] for r in server.requests] == ["credit.delisted"]
        change = server.requests[0].json["data"]["change"]
    assert (change["old"]["listed"], change["new"]["listed"]) == (True, False)


def test_a_repaired_change_is_sent_as_credit_repaired(app, world):
    """The contract with credit repair: a ``repaired`` feed row announced through
    ``ledger.change_listeners`` becomes ``credit.repaired``; ``trusted`` rows
    stay in the feed only."""
    with receiver() as server:
        world.subscribe("mall", server.url(), CREDIT)
        with app.app_context():
            now = clock.now_utc()
            for kind in ("repaired", "trusted"):
                change = CreditChange(
                    merchant_id=world.shop.id, kind=kind, old={}, new={}, at=now
                )
                db.session.add(change)
                db.session.flush()
                for listener in ledger.change_listeners:
                    listener(change)
            db.session.commit()
        world.deliver()
        assert [r.json["event"] for r in server.requests] == ["credit.repaired"]


def test_an_owner_who_lost_the_role_receives_nothing_more(app, world):
    world.subscribe("mall", dead_url(), CREDIT)
    with app.app_context():
        db.session.get(User, world.users["mall"].id).merchant_id = world.bazaar.id
        db.session.commit()
    list_merchant(app, world.shop.id)
    with app.app_context():
        assert db.session.scalars(db.select(WebhookDelivery)).all() == []


# case.filed -----------------------------------------------------------------------


def test_a_platform_hears_of_cases_filed_against_its_shops(app, world, make_case):
    with receiver() as mall, receiver() as bazaar, receiver() as regulator:
        world.subscribe("mall", mall.url(), ["case.filed"])
        world.subscribe("bazaar", bazaar.url(), ["case.filed"])
        world.subscribe("regulator", regulator.url(), ["case.filed"])

        on_mall = make_case(world.users["consumer"], world.shop, order_ref="A-1")
        make_case(world.users["consumer"], world.lone_shop, order_ref="A-2")
        world.deliver()

        (got,) = mall.requests
        assert bazaar.requests == [] and len(regulator.requests) == 2
    with app.app_context():
        case = db.session.get(Case, on_mall)
        reference = case.reference
    assert got.json["event"] == "case.filed"
    assert got.json["data"] == {
        "case": {
            "id": on_mall,
            "reference": reference,
            "category": "quality_defect",
            "filed_at": "2026-03-02T02:00:00+00:00",
            "merchant": {
                "id": world.shop.id,
                "name": "Kettle Shop",
                "uscc": world.shop.uscc,
            },
            "merchant_name": "Kettle Shop",
            "platform": {
                "id": world.mall.id,
                "name": "Whale Mall",
                "uscc": world.mall.uscc,
            },
        }
    }
    # Nothing about the consumer or the complaint's text.
    text = got.body.decode()
    assert "Zhang San" not in text and "kettle leaks" not in text.lower()


def test_an_intake_case_linked_to_a_shop_reaches_its_platform_once(
    app, world, make_case
):
    with receiver() as mall, receiver() as bazaar, receiver() as regulator:
        world.subscribe("mall", mall.url(), ["case.filed"])
        world.subscribe("bazaar", bazaar.url(), ["case.filed"])
        world.subscribe("regulator", regulator.url(), ["case.filed"])
        # Filed against a shop nobody registered; then linked to the bazaar's shop.
        nameless = make_case(
            world.users["consumer"], merchant_name="Nameless Stall", order_ref="B-1"
        )
        # Filed against an unregistered stall on the mall; then linked to its shop.
        on_mall = make_case(
            world.users["consumer"],
            merchant_name="Stall 7",
            platform_id=world.mall.id,
            order_ref="B-2",
        )
        world.deliver()
        assert [r.json["data"]["case"]["id"] for r in mall.requests] == [on_mall]
        assert bazaar.requests == [] and len(regulator.requests) == 2

        world.apply(
            nameless,
            "link_merchant",
            "regulator",
            "regulator",
            merchant_id=world.bazaar_shop.id,
        )
        world.apply(
            on_mall,
            "link_merchant",
            "regulator",
            "regulator",
            merchant_id=world.shop.id,
        )
        world.deliver()

        assert [r.json["data"]["case"]["id"] for r in bazaar.requests] == [nameless]
        assert bazaar.requests[0].json["data"]["case"]["merchant"]["id"] == (
            world.bazaar_shop.id
        )
        assert len(mall.requests) == 1  # not told twice
        assert len(regulator.requests) == 2  # the regulator heard at filing


# Workers --------------------------------------------------------------------------


def test_concurrent_workers_send_each_delivery_once(app, world, make_merchant):
    shops = [
        make_merchant(name=f"Stall {n}", platform_id=world.mall.id) for n in range(6)
    ]
    with receiver() as server:
        world.subscribe("mall", server.url(), CREDIT)
        for shop in shops:
            list_merchant(app, shop.id)
        barrier = threading.Barrier(3)
        reports = []

        def work():
            barrier.wait()
            with app.app_context():
                reports.append(hooks.deliver_due(now=clock.now_utc(), limit=100))

        threads = [threading.Thread(target=work) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ids = [r.json["id"] for r in server.requests]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert sum(len(r.delivered) for r in reports) == 12
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(WebhookAttempt.id))) == 12


def test_the_scheduler_job_delivers_until_nothing_is_due(app, world, make_merchant):
    with receiver() as server:
        world.subscribe("mall", server.url(), CREDIT)
        for _ in range(3):
            list_merchant(app, make_merchant(platform_id=world.mall.id).id)
        report = hooks.delivery_job(app, batch=2)
    assert len(report.delivered) == 6 and len(server.requests) == 6


# Subscriptions and access -----------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        (None, 401),
        ("consumer", 403),
        ("shop", 403),  # a shop not being a platform
        ("mediator", 403),
        ("arbitrator", 403),
        ("mall", 201),
        ("regulator", 201),
    ],
)
def test_who_may_subscribe(world, who, status):
    headers = world.headers(who) if who else {}
    response = world.client.post(
        HOOKS,
        json={"url": "https://hooks.example.com/odr", "events": ["credit.listed"]},
        headers=headers,
    )
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    if status != 201:
        assert body["error"]["message"]
        return
    assert response.headers["Cache-Control"] == "no-store"
    assert len(body["secret"]) == 64
    assert body["merchant_id"] == (world.mall.id if who == "mall" else None)
    assert body["events"] == ["credit.listed"] and body["active"] is True
    listed = world.client.get(HOOKS, headers=headers).get_json()["items"]
    assert [s["id"] for s in listed] == [body["id"]]
    assert "secret" not in listed[0]  # shown once


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/x", "events": ["credit.listed"]}, "url"),
        ({"url": "hooks.example.com", "events": ["credit.listed"]}, "url"),
        (
            {"url": "https://user:pw@hooks.example.com/", "events": ["case.filed"]},
            "url",
        ),
        ({"url": "https://hooks.example.com/#x", "events": ["case.filed"]}, "url"),
        ({"url": "https://[::1/", "events": ["case.filed"]}, "url"),
        ({"url": "https://hooks.example.com:99999/", "events": ["case.filed"]}, "url"),
        (
            {"url": "https://h.example.com/" + "x" * 500, "events": ["case.filed"]},
            "url",
        ),
        ({"url": "https://hooks.example.com/", "events": []}, "events"),
        ({"url": "https://hooks.example.com/", "events": ["credit.trusted"]}, "events"),
        ({"url": "https://hooks.example.com/"}, "events"),
        ({"events": ["case.filed"]}, "url"),
    ],
)
def test_a_bad_subscription_is_a_422_naming_the_field(world, body, field):
    response = world.client.post(HOOKS, json=body, headers=world.headers("mall"))
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:192.168.0.1]/",
        "http://localhost/",
        "http://api.localhost./",
    ],
)
def test_private_addresses_are_refused_in_production(app, world, url):
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = False
    response = world.client.post(
        HOOKS,
        json={"url": url, "events": ["case.filed"]},
        headers=world.headers("mall"),
    )
    assert response.status_code == 422
    assert "url" in response.get_json()["error"]["fields"]


def test_a_host_name_resolving_to_a_private_address_is_not_called(app, world):
    with receiver() as server:
        sub = world.subscribe(
            "mall", f"http://localhost:{server.port}/hook", ["credit.listed"]
        )
        app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = False
        list_merchant(app, world.shop.id)
        report = world.deliver()
        assert server.requests == []
    assert len(report.retrying) == 1
    (delivery,) = world.log("mall", sub["id"])
    assert "no public address" in delivery["last_error"]


def test_a_subscriber_has_a_limited_number_of_subscriptions(app, world):
    app.config["WEBHOOK_MAX_SUBSCRIPTIONS"] = 2
    for _ in range(2):
        world.subscribe("mall", "https://hooks.example.com/", ["case.filed"])
    response = world.client.post(
        HOOKS,
        json={"url": "https://hooks.example.com/", "events": ["case.filed"]},
        headers=world.headers("mall"),
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "too_many_subscriptions"


def test_only_the_owner_reads_the_log_and_deletes(app, world):
    sub = world.subscribe("mall", dead_url(), CREDIT)
    list_merchant(app, world.shop.id)
    for who in ("bazaar", "regulator"):
        for method, path in (
            ("GET", f"{HOOKS}/{sub['id']}/deliveries"),
            ("DELETE", f"{HOOKS}/{sub['id']}"),
        ):
            response = world.client.open(
                path, method=method, headers=world.headers(who)
            )
            assert response.status_code == 404, (who, method)
    assert world.client.get(HOOKS, headers=world.headers("bazaar")).get_json() == {
        "items": []
    }
    consumer = world.client.get(HOOKS, headers=world.headers("consumer"))
    assert consumer.status_code == 403
    assert (
        world.client.get(
            f"{HOOKS}/999999/deliveries", headers=world.headers("mall")
        ).status_code
        == 404
    )
    assert world.client.get(HOOKS).status_code == 401

    assert len(world.log("mall", sub["id"])) == 2
    deleted = world.client.delete(f"{HOOKS}/{sub['id']}", headers=world.headers("mall"))
    assert deleted.status_code == 204
    again = world.client.delete(f"{HOOKS}/{sub['id']}", headers=world.headers("mall"))
    assert again.status_code == 404
    assert world.client.get(HOOKS, headers=world.headers("mall")).get_json() == {
        "items": []
    }
    # Its pending deliveries fail, nothing new is queued, nothing is sent.
    with app.app_context():
        row = db.session.get(WebhookSubscription, sub["id"])
        assert (row.active, row.secret) == (False, "")
        statuses = db.session.scalars(db.select(WebhookDelivery.status)).all()
        assert statuses == ["failed", "failed"]
    delist_merchant(app, world.shop.id)
    assert world.deliver().attempted == 0
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(WebhookDelivery.id))) == 2


def test_the_delivery_log_pages_and_validates_its_arguments(app, world):
    sub = world.subscribe("mall", dead_url(), CREDIT)
    list_merchant(app, world.shop.id)
    headers = world.headers("mall")
    page = world.client.get(
        f"{HOOKS}/{sub['id']}/deliveries", headers=headers
    ).get_json()
    assert (page["page"], page["total"], page["pages"]) == (1, 2, 1)
    # Newest first.
    assert [d["event"] for d in page["items"]] == ["credit.listed", "credit.grade"]
    bad = world.client.get(
        f"{HOOKS}/{sub['id']}/deliveries?status=lost", headers=headers
    )
    assert bad.status_code == 422
    assert (
        world.client.get(
            f"{HOOKS}/{sub['id']}/deliveries?page=0", headers=headers
        ).status_code
        == 400
    )


def test_the_body_is_the_same_bytes_at_every_attempt(app, world):
    """Receivers verify the signature over the raw body: it must not change."""
    world.subscribe("mall", dead_url(), CREDIT)
    list_merchant(app, world.shop.id)
    with app.app_context():
        delivery = db.session.scalars(db.select(WebhookDelivery)).first()
        first = hooks.body_of(delivery)
        db.session.expire_all()
        delivery = db.session.get(WebhookDelivery, delivery.id)
        assert hooks.body_of(delivery) == first
        assert json.loads(first)["id"] == delivery.id


ON_POSTGRESQL = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


@pytest.mark.skipif(not ON_POSTGRESQL, reason="row locks: PostgreSQL")
def test_a_claimed_delivery_is_skipped_by_another_worker(app, world):
    """While one worker holds its claim's row lock, another skips the row (no
    wait) and takes the next; after the claim commits, the lease keeps it away."""
    world.subscribe("mall", dead_url(), ["credit.grade", "credit.listed"])
    list_merchant(app, world.shop.id)
    now = clock.now_utc()
    with app.app_context():
        db.session.execute(db.text("SET LOCAL lock_timeout = '2s'"))
        first = db.session.scalar(
            db.select(WebhookDelivery)
            .order_by(WebhookDelivery.id)
            .limit(1)
            .with_for_update()
        ).id
        with app.app_context():
            claimed = hooks._claim(now)
            assert claimed is not None and claimed.id != first
            assert hooks._claim(now) is None  # the other row is locked: skipped
        db.session.rollback()
    with app.app_context():
        again = hooks._claim(now)
        assert again is not None and again.id == first
        assert hooks._claim(now) is None  # the first claim's lease holds
        assert hooks._claim(now + hooks.LEASE) is not None


def test_the_scheduler_runs_deliveries_as_a_job_of_their_own(app):
    from mediation.sla.scheduler import WEBHOOK_JOB_ID, blocking_scheduler

    app.config["WEBHOOK_INTERVAL_SECONDS"] = 10
    job = blocking_scheduler(app).get_job(WEBHOOK_JOB_ID)
    assert job.func is hooks.delivery_job and job.args == (app,)
    assert job.misfire_grace_time is None
    assert job.coalesce is True and job.max_instances == 1
    assert job.trigger.interval == timedelta(seconds=10)
