"""The mass-complaint story in real Chromium: the demo alert, grouping, the group room.

The demo data hold an open alert: twelve fake-promotion complaints against
优品家电旗舰店. The regulator opens it from *Supervision → Alerts*, ticks every
complaint, chooses the first demo mediator and groups them. Then the demo
consumer and a second buyer (each on their own complaint's page) and the shop
talk in the *Group room* tab: messages arrive live, and consumers are shown by
their complaint's reference, never by name.

Every wait is a bounded Playwright ``expect``; nothing sleeps.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_chat import TIMEOUT_MS, Person

pytestmark = pytest.mark.browser

REGULATOR = "regulator@example.com"
CONSUMER = "consumer@example.com"
BUYER = "buyer01@example.com"
SHOP = "shop@example.com"
MEDIATOR_NAME = "李调解"


def _case(person: Person, order_ref: str) -> tuple[int, str]:
    """Return (id, reference) of the signed-in person's case with ``order_ref``."""
    page, pages = 1, 1
    while page <= pages:
        found = person.page.request.get(f"{person.base_url}/api/v1/cases?page={page}")
        assert found.ok, found.status
        body = found.json()
        for item in body["items"]:
            if item["order_ref"] == order_ref:
                return item["id"], item["reference"]
        page, pages = page + 1, body["pages"]
    raise AssertionError(f"no case {order_ref}")


def test_the_regulator_groups_the_alert_and_the_group_room_talks(
    live_server, new_context
):
    expect.set_options(timeout=TIMEOUT_MS)
    people = {}
    for key, email in (
        ("regulator", REGULATOR),
        ("consumer", CONSUMER),
        ("buyer", BUYER),
        ("shop", SHOP),
    ):
        context = new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
        context.set_default_timeout(TIMEOUT_MS)
        person = Person(key, context, context.new_page(), live_server.url)
        person.sign_in(email)
        people[key] = person
    regulator, consumer, buyer, shop = (
        people[k] for k in ("regulator", "consumer", "buyer", "shop")
    )

    # --- The regulator finds the open alert and groups its complaints ---------
    page = regulator.page
    page.get_by_test_id("nav-supervision").click()
    page.get_by_test_id("subnav-alerts").click()
    row = page.get_by_test_id("alert-row").filter(has_text="优品家电旗舰店")
    expect(row).to_have_attribute("data-status", "open")
    expect(row.get_by_test_id("alert-count")).to_contain_text("12")
    row.get_by_test_id("alert-open").click()
    expect(page.get_by_test_id("alert-case")).to_have_count(12)
    page.get_by_test_id("group-pick-all").check()
    expect(page.get_by_test_id("group-pick").first).to_be_checked()
    page.locator("select[name=group-mediator_id]").select_option(
        label=next(
            o
            for o in page.locator(
                "select[name=group-mediator_id] option"
            ).all_inner_texts()
            if o.startswith(MEDIATOR_NAME)
        )
    )
    page.get_by_test_id("group-submit").click()
    expect(page.get_by_test_id("group-case")).to_have_count(12)
    expect(page.get_by_test_id("group-mediator")).to_have_text(MEDIATOR_NAME)

    # --- Two consumers and the shop in the group room -------------------------
    consumer_case, consumer_ref = _case(consumer, "JX2026DD110001")
    buyer_case, buyer_ref = _case(buyer, "JX2026DD110003")
    consumer.open_case(consumer_case)
    buyer.open_case(buyer_case)
    shop.open_case(buyer_case)
    for person in (consumer, buyer, shop):
        expect(person.page.get_by_test_id("case-group")).to_be_visible()
        person.tab("group").click()
        expect(person.room("group")).to_be_visible()
        person.expect_online()
    consumer.say("group", "请问大家的优惠都没有兑现吗？")
    for person in (buyer, shop, consumer):
        message = person.messages("group", "请问大家的优惠都没有兑现吗？")
        expect(message).to_have_count(1)
        expect(message.get_by_test_id("chat-author")).to_contain_text(consumer_ref)
    buyer.say("group", "我的也没有。")
    expect(consumer.messages("group", "我的也没有。")).to_have_count(1)
    expect(
        consumer.messages("group", "我的也没有。").get_by_test_id("chat-author")
    ).to_contain_text(buyer_ref)
    shop.say("group", "我们将按活动价为各位退差价。")
    expect(consumer.messages("group", "退差价")).to_have_count(1)
    # Names of consumers never show in the group room (the shop's does).
    for person in (consumer, buyer, shop):
        log = person.room("group").get_by_test_id("chat-log")
        expect(log).not_to_contain_text("张消费")
        expect(log).not_to_contain_text("消费者01")
    # After a reload the transcript is the same, still without names.
    buyer.open_case(buyer_case)
    buyer.tab("group").click()
    expect(buyer.messages("group")).to_have_count(3)
    expect(buyer.room("group").get_by_test_id("chat-log")).not_to_contain_text("张消费")
    problems = [f"{p.name}: {x}" for p in people.values() for x in p.problems]
    assert problems == [], problems
