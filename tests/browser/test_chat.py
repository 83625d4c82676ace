"""The mediation chat in real Chromium: consumer, shop staff and mediator at once.

Each test has its own server and copy of the demo database (``live_server``).
The demo consumer's kettle complaint (order JX20261101001, waiting for the
shop) is brought into mediation through the pages: the shop rejects it, the
demo mediator takes it from the queue. Then three browser contexts (three
separate sessions) talk in the case page's chat panel:

- a joint conversation, each seeing the others' messages live (and typing);
- a caucus message that the other party never sees, live or after a reload;
- a dropped connection (``set_offline``): a message sent meanwhile by another
  party arrives exactly once on reconnection, and a message typed offline shows
  as pending and is delivered exactly once;
- a proposal made by the mediator, accepted with one click by each party: the
  case is ``settled`` and the agreement is on the timeline.

Every wait is a bounded Playwright ``expect``; nothing sleeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

pytestmark = pytest.mark.browser

PASSWORD = "demo-pass-2026"
CONSUMER = "consumer@example.com"
SHOP = "shop@example.com"
MEDIATOR = "mediator1@example.com"
ORDER_REF = "JX20261101001"
TIMEOUT_MS = 15_000
TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class Person:
    """One signed-in browser context with its page on the case."""

    name: str
    context: BrowserContext
    page: Page
    base_url: str
    problems: list[str] = field(default_factory=list)
    #: Addresses of the WebSockets the page opened.
    websockets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("websocket", lambda ws: self.websockets.append(ws.url))
        self.page.on(
            "response",
            lambda r: r.status >= 500 and self.problems.append(f"{r.status} {r.url}"),
        )
        self.page.on(
            "pageerror", lambda exc: self.problems.append(f"script error: {exc}")
        )

    def sign_in(self, email: str) -> None:
        self.page.goto(f"{self.base_url}/login")
        form = self.page.get_by_test_id("login-form")
        form.locator("input[name=email]").fill(email)
        form.locator("input[name=password]").fill(PASSWORD)
        self.page.get_by_test_id("login-submit").click()
        expect(self.page.get_by_test_id("logout")).to_be_visible()

    def open_case(self, case_id: int) -> None:
        self.page.goto(f"{self.base_url}/cases/{case_id}")
        expect(self.page.get_by_test_id("case-reference")).to_be_visible()

    # The chat panel ---------------------------------------------------------

    @property
    def chat(self) -> Locator:
        return self.page.get_by_test_id("chat")

    def room(self, key: str) -> Locator:
        return self.page.get_by_test_id(f"chat-room-{key.replace(':', '-')}")

    def tab(self, key: str) -> Locator:
        return self.page.get_by_test_id(f"chat-tab-{key.replace(':', '-')}")

    def messages(self, key: str, text: str | None = None) -> Locator:
        items = self.room(key).get_by_test_id("chat-message")
        return items.filter(has_text=text) if text is not None else items

    def expect_online(self) -> None:
        expect(self.chat).to_have_attribute("data-state", "online")

    def say(self, key: str, text: str) -> None:
        """Type in a room's box and press Enter."""
        box = self.room(key).get_by_test_id("chat-input")
        expect(box).to_be_enabled()
        box.fill(text)
        box.press("Enter")

    def expect_delivered_once(self, key: str, text: str) -> None:
        """The message shows exactly once, stored (with its seq), not pending."""
        item = self.messages(key, text)
        expect(item).to_have_count(1)
        expect(item).to_have_attribute("data-seq", re.compile(r"^\d+$"))
        expect(item).not_to_have_class(re.compile(r"chat-pending"))


def bring_into_mediation(
    shop: Person, mediator: Person, watcher: Person | None = None
) -> int:
    """The shop rejects the kettle complaint; the mediator takes it. Return its id.

    ``watcher`` opens the case page in between: the panel waits for a mediator,
    then opens by itself when the mediator takes the case.
    """
    found = shop.page.request.get(f"{shop.base_url}/api/v1/cases")
    assert found.ok, found.status
    case_id = next(
        c["id"] for c in found.json()["items"] if c["order_ref"] == ORDER_REF
    )
    shop.open_case(case_id)
    reject = shop.page.get_by_test_id("action-form-reject")
    reject.locator("textarea[name=reject-reason]").fill(
        "商品已按描述发货，不同意退款。"
    )
    reject.locator("[data-action=reject]").click()
    expect(shop.page.get_by_test_id("case-status")).to_have_attribute(
        "data-status", "in_mediation"
    )
    if watcher is not None:
        watcher.open_case(case_id)
        expect(watcher.page.get_by_test_id("chat-waiting")).to_be_visible()
        expect(watcher.chat.get_by_test_id("chat-composer")).to_have_count(0)
        watcher.expect_online()
    mediator.open_case(case_id)
    mediator.page.get_by_test_id("action-form-take").locator(
        "[data-action=take]"
    ).click()
    expect(mediator.page.get_by_test_id("case-mediator")).to_be_visible()
    expect(mediator.tab("caucus:merchant")).to_be_visible()
    return case_id


@pytest.fixture()
def people(live_server, new_context) -> dict[str, Person]:
    """The consumer, the shop's staff and the mediator, each signed in."""
    expect.set_options(timeout=TIMEOUT_MS)
    out = {}
    for key, email in (("consumer", CONSUMER), ("shop", SHOP), ("mediator", MEDIATOR)):
        context = new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
        context.set_default_timeout(TIMEOUT_MS)
        person = Person(key, context, context.new_page(), live_server.url)
        person.sign_in(email)
        out[key] = person
    yield out
    problems = [f"{p.name}: {x}" for p in out.values() for x in p.problems]
    assert problems == [], problems


def test_joint_caucus_and_a_dropped_connection(people):
    consumer, shop, mediator = people["consumer"], people["shop"], people["mediator"]
    case_id = bring_into_mediation(shop, mediator)
    consumer.open_case(case_id)
    shop.open_case(case_id)
    for person in (consumer, shop, mediator):
        person.expect_online()

    # A party sees the joint room and its own caucus; the mediator all three.
    expect(consumer.chat.get_by_role("tab")).to_have_count(2)
    expect(shop.chat.get_by_role("tab")).to_have_count(2)
    expect(mediator.chat.get_by_role("tab")).to_have_count(3)

    # --- The joint conversation: each sees the others live ----------------------
    consumer.say("joint", "你好，水壶漏水，希望退款。")
    for person in (shop, mediator):
        expect(person.messages("joint", "水壶漏水")).to_have_count(1)
    consumer.expect_delivered_once("joint", "水壶漏水")

    shop.room("joint").get_by_test_id("chat-input").press_sequentially("我们")
    expect(mediator.room("joint").get_by_test_id("chat-typing")).to_contain_text(
        "优品家电旗舰店"
    )
    shop.room("joint").get_by_test_id("chat-input").fill("")
    shop.say("joint", "请提供漏水的照片。")
    mediator.say("joint", "双方好，我是本案调解员。")
    for person in (consumer, shop, mediator):
        person.expect_delivered_once("joint", "请提供漏水的照片")
        person.expect_delivered_once("joint", "我是本案调解员")
    expect(mediator.room("joint").get_by_test_id("chat-presence")).to_contain_text(
        "张消费"
    )

    # Shift+Enter is a new line, not a send.
    box = consumer.room("joint").get_by_test_id("chat-input")
    box.fill("第一行")
    box.press("Shift+Enter")
    box.press_sequentially("第二行")
    box.press("Enter")
    expect(shop.messages("joint", "第一行").get_by_test_id("chat-body")).to_have_text(
        "第一行\n第二行"
    )

    # Plain text: markup arrives as text, never as elements.
    shop.say("joint", "<b>粗体</b><img src=x onerror=alert(1)>")
    joint_log = consumer.room("joint").get_by_test_id("chat-log")
    expect(consumer.messages("joint", "<b>粗体</b>")).to_have_count(1)
    expect(joint_log.locator("b, img")).to_have_count(0)

    # An attachment: uploaded as evidence, shown to the others as a link card.
    consumer.room("joint").get_by_test_id("chat-file").set_input_files(
        files=[
            {
                "name": "漏水说明.txt",
                "mimeType": "text/plain",
                "buffer": "壶底有裂缝，加水后持续漏水。".encode(),
            }
        ]
    )
    for person in (shop, mediator):
        link = person.room("joint").get_by_test_id("chat-attachment-link")
        expect(link).to_have_text("漏水说明.txt")
        expect(link).to_have_attribute(
            "href", re.compile(rf"^/cases/{case_id}/evidence/\d+$")
        )
    consumer.expect_delivered_once("joint", "漏水说明.txt")

    # The connection is a real WebSocket (after the first polling request).
    assert any("transport=websocket" in url for url in mediator.websockets), (
        mediator.websockets
    )

    # --- A caucus: the mediator and the consumer alone ---------------------------
    mediator.tab("joint").focus()
    mediator.page.keyboard.press("ArrowRight")  # tabs follow the arrow keys
    expect(mediator.tab("caucus:consumer")).to_have_attribute("aria-selected", "true")
    expect(mediator.room("caucus:consumer")).to_be_visible()
    secret = "单独沟通：您能接受部分退款吗？"
    mediator.say("caucus:consumer", secret)
    expect(consumer.tab("caucus:consumer").get_by_test_id("chat-unread")).to_have_text(
        "1"
    )
    consumer.tab("caucus:consumer").click()
    consumer.expect_delivered_once("caucus:consumer", secret)
    # Seen, so read: the count goes, and stays gone after a reload (the read
    # position is stored on the server).
    unread = consumer.tab("caucus:consumer").get_by_test_id("chat-unread")
    expect(unread).to_be_hidden()
    consumer.page.reload()
    consumer.expect_online()
    expect(consumer.tab("caucus:consumer").get_by_test_id("chat-unread")).to_be_hidden()
    consumer.tab("caucus:consumer").click()
    consumer.say("caucus:consumer", "可以接受八成退款。")
    mediator.expect_delivered_once("caucus:consumer", "可以接受八成退款")
    # The shop never sees it: not on its page, not after a reload.
    for _ in range(2):
        expect(shop.room("caucus:consumer")).to_have_count(0)
        expect(shop.page.locator("body")).not_to_contain_text("您能接受部分退款吗")
        expect(shop.page.locator("body")).not_to_contain_text("八成退款")
        shop.page.reload()
        shop.expect_online()
    # ... while its own caucus works the same way.
    mediator.tab("caucus:merchant").click()
    mediator.say("caucus:merchant", "商家这边能否退一半？")
    shop.tab("caucus:merchant").click()
    shop.expect_delivered_once("caucus:merchant", "能否退一半")
    expect(consumer.page.locator("body")).not_to_contain_text("能否退一半")

    # --- The shop's connection drops ----------------------------------------------
    shop.tab("joint").click()
    shop.context.set_offline(True)
    expect(shop.chat).to_have_attribute("data-state", "offline")
    consumer.tab("joint").click()
    consumer.say("joint", "断线期间发送的消息")
    mediator.tab("joint").click()
    mediator.expect_delivered_once("joint", "断线期间发送的消息")
    # Typed while offline: kept, shown as pending, not delivered yet.
    shop.say("joint", "离线时写的回复")
    pending = shop.messages("joint", "离线时写的回复")
    expect(pending).to_have_count(1)
    expect(pending).to_have_attribute("data-state", "pending")
    expect(pending.get_by_test_id("chat-state")).not_to_be_empty()
    expect(shop.messages("joint", "断线期间发送的消息")).to_have_count(0)

    shop.context.set_offline(False)
    shop.expect_online()
    # What was missed arrives once; what was typed offline is delivered once.
    shop.expect_delivered_once("joint", "断线期间发送的消息")
    shop.expect_delivered_once("joint", "离线时写的回复")
    for person in (consumer, mediator):
        person.expect_delivered_once("joint", "离线时写的回复")
    # In sequence order, without holes or repeats.
    seqs = shop.messages("joint").evaluate_all(
        "items => items.map(i => Number(i.dataset.seq))"
    )
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), seqs
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs

    # After a reload the transcript is the same (rendered by the server).
    shop.page.reload()
    shop.expect_delivered_once("joint", "断线期间发送的消息")
    shop.expect_delivered_once("joint", "离线时写的回复")


def test_proposal_accepted_by_both_settles_the_case(people, zh_catalog):
    consumer, shop, mediator = people["consumer"], people["shop"], people["mediator"]
    case_id = bring_into_mediation(shop, mediator, watcher=consumer)
    # The consumer's open page noticed the mediator and opened the conversation.
    expect(consumer.page.get_by_test_id("chat-waiting")).to_have_count(0)
    expect(consumer.room("joint").get_by_test_id("chat-composer")).to_be_visible()
    shop.open_case(case_id)
    for person in (consumer, shop):
        person.expect_online()

    deadline = datetime.now(TZ).date() + timedelta(days=7)

    def propose(amount: str, text: str) -> None:
        form = mediator.page.get_by_test_id("action-form-propose")
        form.locator("select[name=propose-type]").select_option("refund")
        form.locator("input[name=propose-amount]").fill(amount)
        form.locator("input[name=propose-deadline]").fill(deadline.isoformat())
        form.locator("textarea[name=propose-text]").fill(text)
        form.locator("[data-action=propose]").click()
        mediator.expect_online()

    # A first proposal, declined by the shop with a reason (asked in the card).
    propose("299.00", "商家全额退款 299 元。")
    first = shop.room("joint").get_by_test_id("chat-proposal")
    expect(first).to_have_count(1)
    first.get_by_test_id("chat-decline").click()
    first.get_by_test_id("chat-decline-confirm").click()  # no reason yet: refused
    expect(first.get_by_test_id("chat-action-error")).to_be_visible()
    first.get_by_test_id("chat-decline-reason").fill("只能接受部分退款。")
    first.get_by_test_id("chat-decline-confirm").click()
    for person in (consumer, shop, mediator):
        card = person.room("joint").get_by_test_id("chat-proposal")
        expect(card).to_have_attribute("data-offer-status", "rejected")
        expect(card.get_by_test_id("chat-accept")).to_have_count(0)
        expect(person.room("joint").get_by_test_id("chat-system").last).to_contain_text(
            "只能接受部分退款"
        )

    agreement = "商家退款 199 元，消费者保留商品。"
    propose("199.00", agreement)

    # The card reaches both parties live, with its terms.
    for person in (consumer, shop):
        card = person.room("joint").get_by_test_id("chat-proposal").last
        expect(card).to_have_count(1)
        expect(card.get_by_test_id("chat-proposal-amount")).to_have_text("¥199.00")
        expect(card.get_by_test_id("chat-proposal-deadline")).to_have_text(
            deadline.isoformat()
        )
        expect(card.get_by_test_id("chat-body")).to_have_text(agreement)
        expect(card.get_by_test_id("chat-accept")).to_be_visible()
    expect(
        mediator.room("joint")
        .get_by_test_id("chat-proposal")
        .get_by_test_id("chat-accept")
    ).to_have_count(0)

    # One click each.
    consumer.room("joint").get_by_test_id("chat-accept").click()
    consumer_card = consumer.room("joint").get_by_test_id("chat-proposal").last
    expect(consumer_card.get_by_test_id("chat-accept")).to_have_count(0)
    expect(consumer_card.get_by_test_id("chat-proposal-state")).not_to_be_empty()
    shop_card = shop.room("joint").get_by_test_id("chat-proposal").last
    # The shop sees live that the consumer accepted (a system message, the card).
    expect(shop.room("joint").get_by_test_id("chat-system").last).to_contain_text(
        zh_catalog.get("Accept the proposal", "Accept the proposal")
    )
    expect(consumer.page.get_by_test_id("case-status")).to_have_attribute(
        "data-status", "in_mediation"
    )
    shop_card.get_by_test_id("chat-accept").click()

    settled = zh_catalog.get("Settled", "Settled")
    for person in (consumer, shop, mediator):
        status = person.page.get_by_test_id("case-status")
        expect(status).to_have_attribute("data-status", "settled")
        expect(status).to_have_text(settled)
        event = person.page.locator(
            "[data-testid=timeline-item][data-event-action=accept_proposal]"
        ).filter(has=person.page.get_by_test_id("event-agreement"))
        expect(event).to_have_count(1)
        expect(event.get_by_test_id("agreement-text")).to_have_text(agreement)
        expect(event.get_by_test_id("agreement-hash")).to_have_text(
            re.compile(r"^[0-9a-f]{64}$")
        )
        # The rooms are now a read-only transcript.
        expect(person.chat.get_by_test_id("chat-composer")).to_have_count(0)


def test_chat_fits_a_phone_and_works_with_the_keyboard(people, zh_catalog):
    consumer, shop, mediator = people["consumer"], people["shop"], people["mediator"]
    case_id = bring_into_mediation(shop, mediator)
    page = consumer.page
    page.set_viewport_size({"width": 375, "height": 740})
    consumer.open_case(case_id)
    consumer.expect_online()
    # Nothing wider than the screen.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, width
    box = consumer.chat.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    # Tab to the chat's tab list, move with the arrows, type, send with Enter.
    consumer.tab("joint").focus()
    page.keyboard.press("ArrowRight")
    expect(consumer.tab("caucus:consumer")).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(consumer.tab("joint")).to_be_focused()
    consumer.room("joint").get_by_test_id("chat-input").focus()
    page.keyboard.type("手机上发送")
    page.keyboard.press("Enter")
    consumer.expect_delivered_once("joint", "手机上发送")
    mediator.open_case(case_id)
    mediator.expect_delivered_once("joint", "手机上发送")
    # The input limit: counter, refusal before sending.
    count = consumer.room("joint").get_by_test_id("chat-count")
    limit = int(count.inner_text().split("/")[1].strip())
    consumer.room("joint").get_by_test_id("chat-input").fill("长" * (limit + 1))
    expect(consumer.room("joint").get_by_test_id("chat-send")).to_be_disabled()
    expect(consumer.room("joint").get_by_test_id("chat-error")).to_be_visible()
    expect(count).to_have_class(re.compile("chat-over"))
    expect(count).to_have_text(f"{limit + 1} / {limit}")
    page.screenshot(path="/tmp/c_phone.png", full_page=False)
    # A refused message is marked failed, with the reason, Retry and Delete.
    consumer.room("joint").get_by_test_id("chat-input").fill("坏字符\x00")
    consumer.room("joint").get_by_test_id("chat-send").click()
    failed = consumer.messages("joint", "坏字符")
    expect(failed).to_have_attribute("data-state", "failed")
    expect(failed.get_by_test_id("chat-failure")).not_to_be_empty()
    # The field's own reason, not the general "invalid input".
    expect(failed.get_by_test_id("chat-failure")).not_to_have_text(
        zh_catalog.get("Some fields are not valid.", "Some fields are not valid.")
    )
    expect(failed.get_by_test_id("chat-retry")).to_be_visible()
    failed.get_by_test_id("chat-discard").click()
    expect(consumer.messages("joint", "坏字符")).to_have_count(0)
    page.reload()
    expect(consumer.messages("joint", "坏字符")).to_have_count(0)  # not kept either
