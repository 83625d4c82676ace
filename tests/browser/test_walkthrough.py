"""The demo walk-through in real Chromium, once in Chinese and once in English.

The demo consumer files a complaint with a photo, the demo shop offers a refund,
the consumer accepts it; every step shows on the case timeline. Each run has its
own server and its own copy of the demo database (``live_server``), so the two
runs are independent.

The Chinese run is the default: the browser asks for zh-CN and the demo accounts
are Chinese. The English run's browser asks for en-US (the signed-out start page
is English); the consumer's and the shop's pages are Chinese after signing in,
until the header's language button switches them. The switch stores the choice
on the account, so the consumer's second sign-in is English at once.

Expected texts come from the catalogues as they are when the test runs (an
untranslated message shows its English msgid), so the test follows the
translators instead of freezing their wording.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.browser

PASSWORD = "demo-pass-2026"
CONSUMER = "consumer@example.com"
SHOP = "shop@example.com"
MERCHANT_NAME = "优品家电旗舰店"
TIMEOUT_MS = 15_000
TZ = ZoneInfo("Asia/Shanghai")
CJK = re.compile(r"[\u4e00-\u9fff]")
AMOUNT = "399.00"
AMOUNT_SHOWN = "¥399.00"


@dataclass(frozen=True)
class Language:
    code: str  # the app's locale
    browser_locale: str  # the browser context's locale (Accept-Language)
    html_lang: str  # <html lang> of the pages
    switch_testid: str  # the header button that switches to this language
    order_ref: str
    description: str
    offer_text: str
    photo_name: str


LANGUAGES = [
    Language(
        code="zh_CN",
        browser_locale="zh-CN",
        html_lang="zh-CN",
        switch_testid="lang-zh",
        order_ref="JX-BROWSER-ZH-0001",
        description="收到的电饭煲内胆有明显划痕，要求退款。",
        offer_text="全额退款，三日内原路退回。",
        photo_name="内胆划痕.png",
    ),
    Language(
        code="en",
        browser_locale="en-US",
        html_lang="en",
        switch_testid="lang-en",
        order_ref="JX-BROWSER-EN-0001",
        description="The rice cooker arrived with a deep scratch in the inner pot.",
        offer_text="Full refund to the original payment method within three days.",
        photo_name="scratched-pot.png",
    ),
]


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    """Return a small, valid RGB PNG (a colour gradient), built without Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 4 % 256, y * 5 % 256, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@dataclass
class Walkthrough:
    """The steps of the walk-through on one page, in one language."""

    page: Page
    base_url: str
    lang: Language
    catalogs: dict[str, dict[str, str]]
    #: Problems seen by the browser: 5xx answers and uncaught script errors.
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on(
            "response",
            lambda r: r.status >= 500 and self.problems.append(f"{r.status} {r.url}"),
        )
        self.page.on(
            "pageerror", lambda exc: self.problems.append(f"script error: {exc}")
        )

    # Language -------------------------------------------------------------

    def t(self, msgid: str, code: str | None = None) -> str:
        """Return what a page shows for ``msgid`` in this run's language."""
        return self.catalogs[code or self.lang.code].get(msgid, msgid)

    def expect_language(self) -> None:
        expect(self.page.locator("html")).to_have_attribute("lang", self.lang.html_lang)

    def expect_chinese_account_then_switch(self) -> None:
        """Check that a Chinese account's page is Chinese; switch in the English run.

        The header's button stores the choice on the account.
        """
        expect(self.page.locator("html")).to_have_attribute("lang", "zh-CN")
        if self.lang.code != "zh_CN":
            self.page.get_by_test_id(self.lang.switch_testid).click()
        self.expect_language()

    def expect_label(self, locator: Locator, msgid: str) -> None:
        expect(locator).to_have_text(self.t(msgid))

    # Accounts -------------------------------------------------------------

    def sign_in(self, email: str) -> None:
        page = self.page
        page.goto(f"{self.base_url}/login")
        form = page.get_by_test_id("login-form")
        form.locator("input[name=email]").fill(email)
        form.locator("input[name=password]").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("logout")).to_be_visible()

    def sign_out(self) -> None:
        self.page.get_by_test_id("logout").click()
        expect(self.page).to_have_url(re.compile(r"/login"))
        expect(self.page.get_by_test_id("logout")).to_have_count(0)
        expect(self.page.get_by_test_id("login-form")).to_be_visible()
        self.expect_language()  # the language chosen survives signing out

    # The case page ----------------------------------------------------------

    def nav_link(self, endpoint_path: str) -> Locator:
        return self.page.locator(f"nav.mainnav a[href$='{endpoint_path}']")

    def open_case_from_list(self, nav_msgid: str, reference: str) -> None:
        """Open the case through the header's list link and the case's row."""
        link = self.nav_link("/cases")
        self.expect_label(link, nav_msgid)
        link.click()
        row = self.page.locator(f"[data-testid=case-row][data-reference='{reference}']")
        expect(row).to_have_count(1)
        row.get_by_role("link", name=reference).click()
        expect(self.page.get_by_test_id("case-reference")).to_have_text(reference)
        self.expect_language()

    def expect_status(self, status: str, msgid: str) -> None:
        badge = self.page.get_by_test_id("case-status")
        expect(badge).to_have_attribute("data-status", status)
        self.expect_label(badge, msgid)

    def event(self, action: str) -> Locator:
        return self.page.locator(
            "[data-testid=timeline] [data-testid=timeline-item]"
            f"[data-event-action={action}]"
        )

    def expect_event(self, action: str, label_msgid: str) -> Locator:
        item = self.event(action)
        expect(item).to_have_count(1)
        self.expect_label(item.get_by_test_id("event-label"), label_msgid)
        return item

    def timeline(self) -> list[str]:
        return self.page.locator("[data-testid=timeline-item]").evaluate_all(
            "items => items.map(i => i.dataset.eventAction)"
        )


@pytest.fixture(scope="session")
def catalogs(zh_catalog, en_catalog) -> dict[str, dict[str, str]]:
    return {"zh_CN": zh_catalog, "en": en_catalog}


@pytest.mark.parametrize("lang", LANGUAGES, ids=[lang.code for lang in LANGUAGES])
def test_walkthrough(live_server, new_context, catalogs, tmp_path, lang: Language):
    """Consumer files with a photo, the shop offers a refund, the consumer accepts."""
    expect.set_options(timeout=TIMEOUT_MS)
    context = new_context(locale=lang.browser_locale, timezone_id="Asia/Shanghai")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    run = Walkthrough(page, live_server.url, lang, catalogs)
    screenshot = tmp_path / f"case-{lang.code}.png"
    try:
        walk(run, context)
    finally:
        # The last page (the case page, or where a step failed), for debugging.
        try:
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"screenshot: {screenshot}")
        except Exception as exc:  # never hide the step's own failure
            print(f"no screenshot: {exc}")
        print(f"browser problems: {run.problems}")
    assert run.problems == [], run.problems


def walk(run: Walkthrough, context) -> None:
    """The steps; each one checks what the page shows afterwards."""
    page, lang, base_url = run.page, run.lang, run.base_url
    photo = png_bytes()
    today = datetime.now(TZ).date()

    # The start page, signed out: the browser's language decides.
    page.goto(f"{base_url}/")
    run.expect_language()

    # --- The consumer signs in (the account is in Chinese) ---------------------
    run.sign_in(CONSUMER)
    new_link = run.nav_link("/cases/new")
    chinese_label = run.t("File a complaint", "zh_CN")
    expect(new_link).to_have_text(chinese_label)
    run.expect_chinese_account_then_switch()
    if lang.code == "zh_CN":
        if "投诉" in chinese_label:
            expect(page.locator("nav.mainnav")).to_contain_text("投诉")
    else:
        # The same element, now in English.
        expect(new_link).to_have_text(run.t("File a complaint"))
        if chinese_label != "File a complaint":
            assert not CJK.search(new_link.inner_text())

    # --- ... and files the complaint with a photo --------------------------------
    new_link.click()
    form = page.get_by_test_id("filing-form")
    expect(form).to_be_visible()
    run.expect_language()
    expect(page.locator("h1")).to_have_text(run.t("File a complaint"))

    query = form.locator("#merchant_query")
    query.press_sequentially("优品", delay=30)
    options = page.locator("[role=listbox] li[role=option]")
    options.filter(has_text=MERCHANT_NAME).first.click()
    expect(query).to_have_value(MERCHANT_NAME)
    expect(form.locator("input[name=merchant_id]")).to_have_value(re.compile(r"^\d+$"))

    form.locator("select[name=category]").select_option("quality_defect")
    form.locator("input[name=order_ref]").fill(lang.order_ref)
    form.locator("input[name=order_date]").fill((today - timedelta(days=6)).isoformat())
    form.locator("input[name=amount_paid]").fill(AMOUNT)
    form.locator("select[name=claim_type]").select_option("refund")
    form.locator("input[name=claim_amount]").fill(AMOUNT)
    form.locator("textarea[name=description]").fill(lang.description)
    form.locator("input[name=arbitration_consent]").check()
    form.locator("input[type=file][name=evidence]").set_input_files(
        {"name": lang.photo_name, "mimeType": "image/png", "buffer": photo}
    )
    page.get_by_test_id("file-complaint").click()

    expect(page).to_have_url(re.compile(r"/cases/\d+$"))
    reference_el = page.get_by_test_id("case-reference")
    expect(reference_el).to_have_text(re.compile(r"^MC-\d{4}-\d{6}$"))
    reference = reference_el.inner_text()
    expect(page.locator(".flash-success")).to_contain_text(reference)
    run.expect_language()
    run.expect_status("awaiting_merchant", "Awaiting merchant")
    expect(page.get_by_test_id("case-merchant")).to_contain_text(MERCHANT_NAME)
    expect(page.get_by_test_id("case-order-ref")).to_have_text(lang.order_ref)
    expect(page.get_by_test_id("case-amount-paid")).to_have_text(AMOUNT_SHOWN)
    expect(page.get_by_test_id("complaint-text")).to_have_text(lang.description)

    evidence = page.get_by_test_id("evidence-item")
    expect(evidence).to_have_count(1)
    expect(evidence).to_contain_text(lang.photo_name)
    expect(evidence).to_contain_text("image/png")
    # The stored photo is the one uploaded, byte for byte.
    href = evidence.get_by_test_id("evidence-download").get_attribute("href")
    download = context.request.get(f"{base_url}{href}")
    assert download.status == 200, download.status
    assert download.body() == photo

    run.expect_event("file", "Complaint filed")
    run.expect_event("route", "Sent to the merchant")
    photo_event = run.expect_event("evidence", "Evidence added")
    expect(photo_event).to_contain_text(lang.photo_name)
    expect(photo_event.get_by_test_id("event-evidence-hash")).to_have_text(
        re.compile(r"^[0-9a-f]{16}$")
    )
    case_path = page.url.removeprefix(base_url)
    run.sign_out()

    # --- The shop opens the case from its inbox and offers a refund --------------
    run.sign_in(SHOP)
    run.expect_chinese_account_then_switch()
    run.open_case_from_list("Inbox", reference)
    assert page.url.endswith(case_path)
    run.expect_status("awaiting_merchant", "Awaiting merchant")
    expect(page.get_by_test_id("complaint-text")).to_have_text(lang.description)
    expect(page.get_by_test_id("evidence-item")).to_contain_text(lang.photo_name)

    offer = page.get_by_test_id("action-form-offer")
    offer.locator("select[name=offer-type]").select_option("refund")
    offer.locator("input[name=offer-amount]").fill(AMOUNT)
    deadline = today + timedelta(days=7)
    offer.locator("input[name=offer-deadline]").fill(deadline.isoformat())
    offer.locator("textarea[name=offer-text]").fill(lang.offer_text)
    submit = offer.locator("[data-action=offer]")
    run.expect_label(submit, "Make an offer")
    submit.click()

    expect(page.locator(".flash-success")).to_have_text(run.t("Offer sent."))
    run.expect_status("offer_pending", "Offer pending")
    offer_event = run.expect_event("offer", "Make an offer")
    expect(offer_event.get_by_test_id("event-amount")).to_have_text(AMOUNT_SHOWN)
    expect(offer_event).to_contain_text(lang.offer_text)
    expect(page.get_by_test_id("action-form-offer")).to_have_count(0)
    run.sign_out()

    # --- The consumer signs in again and accepts the offer ------------------------
    run.sign_in(CONSUMER)
    run.expect_language()  # English or Chinese: the account remembers the choice
    run.open_case_from_list("My complaints", reference)
    run.expect_status("offer_pending", "Offer pending")
    expect(page.get_by_test_id("open-offer")).to_contain_text(lang.offer_text)
    expect(page.get_by_test_id("open-offer")).to_contain_text(AMOUNT_SHOWN)
    accept = page.locator("[data-action=accept_offer]")
    run.expect_label(accept, "Accept the offer")
    accept.click()

    expect(page.locator(".flash-success")).to_have_text(
        run.t("Offer accepted: the merchant now fulfils it.")
    )
    run.expect_status("settled", "Settled")
    run.expect_event("accept_offer", "Accept the offer")
    expect(page.locator("[data-action=accept_offer]")).to_have_count(0)
    expect(page.get_by_test_id("offer")).to_have_attribute(
        "data-offer-status", "accepted"
    )

    # Every step is on the timeline, in order, each event once.
    walked = {"file", "route", "evidence", "offer", "accept_offer"}
    steps = [action for action in run.timeline() if action in walked]
    assert sorted(steps) == sorted(walked), steps
    assert steps[0] == "file" and steps[-2:] == ["offer", "accept_offer"], steps
