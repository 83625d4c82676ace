"""Online arbitration in real Chromium: the issue's walk-through, end to end.

A complaint that failed mediation waits in the arbitrators' queue. The demo
arbitrator takes it, reads the case file (both versions of the complaint, the
evidence with its hash, the joint-room transcript and never the caucus), asks
the merchant for a delivery record by a date (the award clock stops), the
shop answers with a file, and the arbitrator issues an award that partly
grants the claim with a refund order. Consumer and shop each download the
award PDF: it prints the case reference and the SHA-256 the case page shows,
which is also the hash of the ``issue_award`` event on the timeline. The shop
marks the award fulfilled, the consumer confirms: resolved. A second test: the
consumer reports an award not fulfilled and the case closes as non-compliant.

Each test has its own server and copy of the demo database (``live_server``).
The complaint (amended once, with one file) and its way into mediation are
prepared through the JSON API with the demo accounts' bearer tokens; the chat
messages are typed in the case page's chat panel and the mediator ends the
mediation on the case page. The rest is done in separate browser contexts (one
session each) for the consumer, the shop's staff, the mediator and the
arbitrator. The walk-through runs in Chinese (the default) and in English;
expected texts come from the catalogues as they are now. The second test
prepares its award through the API.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import APIRequestContext, BrowserContext, Locator, Page, expect
from pypdf import PdfReader

pytestmark = pytest.mark.browser

PASSWORD = "demo-pass-2026"
CONSUMER = "consumer@example.com"
SHOP = "shop@example.com"
MEDIATOR = "mediator1@example.com"
ARBITRATOR = "arbitrator@example.com"
SHOP_NAME = "优品家电旗舰店"
TIMEOUT_MS = 15_000
#: Rendering the PDF (WeasyPrint, CJK fonts) takes a few seconds.
PDF_TIMEOUT_MS = 60_000
TZ = ZoneInfo("Asia/Shanghai")
SHA256 = re.compile(r"^[0-9a-f]{64}$")

FIRST_TEXT = "电饭煲收到时内胆有划痕，要求全额退款 399 元。"
AMENDED_TEXT = "电饭煲收到时内胆有划痕，外包装也已破损；要求全额退款 399 元。"
EVIDENCE_NAME = "开箱说明.txt"
EVIDENCE_BYTES = "开箱时内胆已有三道划痕，外箱一角压扁。".encode()
JOINT_TEXT = "我已上传开箱说明，请商家核实。"
CAUCUS_TEXT = "仅与消费者私下沟通：能否接受部分退款？"
QUESTION = "请提供该订单的物流签收记录（含签收时间与签收人）。"
DELIVERY_NAME = "签收记录.txt"
DELIVERY_BYTES = "顺丰 SF1234567890，签收人：本人，外包装完好。".encode()
ANSWER_TEXT = "签收记录见附件：快递签收时外包装完好。"
FINDINGS = "内胆划痕属实；签收记录显示外包装完好，无法认定运输损坏。"
REASONS = "商品存在外观瑕疵但不影响使用，酌情支持部分退款。"
ORDER_TEXT = "商家向消费者退款 120 元，原路退回。"
REFUND = "120.00"
REFUND_SHOWN = "¥120.00"


@dataclass(frozen=True)
class Language:
    code: str  # the app's locale
    browser_locale: str  # the browser context's locale (Accept-Language)
    html_lang: str  # <html lang> of the pages


LANGUAGES = [
    Language(code="zh_CN", browser_locale="zh-CN", html_lang="zh-CN"),
    Language(code="en", browser_locale="en-US", html_lang="en"),
]


def business_today():
    return datetime.now(TZ).date()


# The API: how the data is prepared ---------------------------------------------


class Api:
    """One demo account's bearer-token calls to the JSON API."""

    def __init__(self, request: APIRequestContext, email: str) -> None:
        self.request = request
        answer = request.post(
            "/api/v1/auth/tokens", data={"email": email, "password": PASSWORD}
        )
        assert answer.ok, (answer.status, answer.text())
        self.headers = {"Authorization": f"Bearer {answer.json()['token']}"}

    def get(self, path: str) -> dict:
        answer = self.request.get(f"/api/v1{path}", headers=self.headers)
        assert answer.ok, (path, answer.status, answer.text())
        return answer.json()

    def post(self, path: str, body: dict) -> dict:
        answer = self.request.post(f"/api/v1{path}", data=body, headers=self.headers)
        assert answer.ok, (path, body.get("action"), answer.status, answer.text())
        return answer.json()

    def act(self, case_id: int, action: str, **payload) -> dict:
        return self.post(f"/cases/{case_id}/actions", {"action": action, **payload})

    def upload(self, case_id: int, name: str, data: bytes) -> dict:
        answer = self.request.post(
            f"/api/v1/cases/{case_id}/evidence",
            headers=self.headers,
            multipart={
                "file": {"name": name, "mimeType": "text/plain", "buffer": data}
            },
        )
        assert answer.status == 201, (answer.status, answer.text())
        return answer.json()


@pytest.fixture()
def api(live_server, playwright):
    """The demo accounts' API clients (bearer tokens), by email."""
    request = playwright.request.new_context(base_url=live_server.url)
    clients: dict[str, Api] = {}

    def client(email: str) -> Api:
        if email not in clients:
            clients[email] = Api(request, email)
        return clients[email]

    yield client
    request.dispose()


def file_complaint(api, order_ref: str, description: str) -> dict:
    """The demo consumer files against the demo shop, consenting to arbitration."""
    shops = api(CONSUMER).get("/merchants?q=优品家电")["items"]
    shop_id = next(m["id"] for m in shops if m["name"] == SHOP_NAME)
    today = business_today()
    case = api(CONSUMER).post(
        "/cases",
        {
            "merchant_id": shop_id,
            "category": "quality_defect",
            "order_ref": order_ref,
            "order_date": (today - timedelta(days=10)).isoformat(),
            "amount_paid": 39900,
            "claim": {"type": "refund", "amount": 39900},
            "description": description,
            "arbitration_consent": True,
        },
    )
    assert case["status"] == "awaiting_merchant", case["status"]
    return case


def into_mediation(api, case_id: int) -> None:
    """The shop rejects the complaint; the demo mediator takes it."""
    api(SHOP).act(case_id, "reject", reason="商品出库检验合格，不同意退款。")
    taken = api(MEDIATOR).act(case_id, "take")
    assert taken["status"] == "in_mediation", taken["status"]


def awarded_case(api, order_ref: str) -> dict:
    """A case through a failed mediation to an award (all through the API)."""
    case = file_complaint(api, order_ref, FIRST_TEXT)
    into_mediation(api, case["id"])
    ended = api(MEDIATOR).act(case["id"], "end_mediation", reason="双方分歧较大。")
    assert ended["status"] == "in_arbitration", ended["status"]
    api(ARBITRATOR).act(case["id"], "take")
    deadline = (business_today() + timedelta(days=7)).isoformat()
    awarded = api(ARBITRATOR).act(
        case["id"],
        "issue_award",
        decision="partly_granted",
        findings=FINDINGS,
        reasons=REASONS,
        orders=[
            {
                "type": "refund",
                "amount": 12000,
                "deadline": deadline,
                "text": ORDER_TEXT,
            }
        ],
    )
    assert awarded["status"] == "awarded", awarded["status"]
    return case


# People in the browser ------------------------------------------------------------


@dataclass
class Person:
    """One signed-in browser context (its own session) and its page."""

    name: str
    context: BrowserContext
    page: Page
    base_url: str
    lang: Language
    catalogs: dict[str, dict[str, str]]
    #: Problems seen by the browser: 5xx answers and uncaught script errors.
    problems: list[str] = field(default_factory=list)
    #: The documents the page loaded, for the report of a failed test.
    documents: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on(
            "response",
            lambda r: r.status >= 500 and self.problems.append(f"{r.status} {r.url}"),
        )
        self.page.on(
            "request",
            lambda r: (
                r.is_navigation_request()
                and self.documents.append(
                    f"{r.method} {r.url.removeprefix(self.base_url)}"
                )
            ),
        )
        self.page.on(
            "pageerror", lambda exc: self.problems.append(f"script error: {exc}")
        )

    def t(self, msgid: str) -> str:
        """Return what a page shows for ``msgid`` in this run's language."""
        return self.catalogs[self.lang.code].get(msgid, msgid)

    def sign_in(self, email: str) -> None:
        """Sign in; the demo accounts are Chinese: switch in the English run."""
        page = self.page
        page.goto(f"{self.base_url}/login")
        form = page.get_by_test_id("login-form")
        form.locator("input[name=email]").fill(email)
        form.locator("input[name=password]").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("logout")).to_be_visible()
        if self.lang.code != "zh_CN":
            page.get_by_test_id("lang-en").click()
        expect(page.locator("html")).to_have_attribute("lang", self.lang.html_lang)

    def open_case(self, case_id: int) -> None:
        self.page.goto(f"{self.base_url}/cases/{case_id}")
        expect(self.page.get_by_test_id("case-reference")).to_be_visible()

    def expect_status(self, status: str) -> None:
        badge = self.page.get_by_test_id("case-status")
        expect(badge).to_have_attribute("data-status", status)

    def expect_done(self, msgid: str) -> None:
        """The flash message of an action that left the status as it was."""
        expect(self.page.locator(".flash-success")).to_have_text(self.t(msgid))

    def expect_moved(self, status: str, msgid: str) -> None:
        """After an action that changed the status: its flash message, and the
        new status (the chat panel must not reload the page over the form's
        answer; static/js/chat/main.js holds off while a form is sent)."""
        self.expect_done(msgid)
        self.expect_status(status)

    def form(self, action: str) -> Locator:
        return self.page.get_by_test_id(f"action-form-{action}")

    def event(self, action: str) -> Locator:
        return self.page.locator(
            "[data-testid=timeline] [data-testid=timeline-item]"
            f"[data-event-action={action}]"
        )

    # The chat panel (see test_chat.py) ----------------------------------------

    def room(self, key: str) -> Locator:
        return self.page.get_by_test_id(f"chat-room-{key.replace(':', '-')}")

    def say(self, key: str, text: str) -> None:
        """Type in a room's box, send, and wait until the server stored it."""
        expect(self.page.get_by_test_id("chat")).to_have_attribute(
            "data-state", "online"
        )
        self.page.get_by_test_id(f"chat-tab-{key.replace(':', '-')}").click()
        box = self.room(key).get_by_test_id("chat-input")
        expect(box).to_be_enabled()
        box.fill(text)
        box.press("Enter")
        sent = self.room(key).get_by_test_id("chat-message").filter(has_text=text)
        expect(sent).to_have_count(1)
        expect(sent).to_have_attribute("data-seq", re.compile(r"^\d+$"))

    # The award --------------------------------------------------------------------

    def shown_award_sha256(self) -> str:
        """The award's SHA-256 as the case page's award summary shows it."""
        shown = self.page.get_by_test_id("award-summary").get_by_test_id("award-sha256")
        expect(shown).to_have_text(SHA256)
        return shown.inner_text().strip()

    def download_award(self, tmp_path: Path) -> tuple[str, str]:
        """Download the award PDF from the case page; return (file name, text)."""
        link = self.page.get_by_test_id("award-summary").get_by_test_id(
            "award-pdf-link"
        )
        expect(link).to_have_text(self.t("Download the PDF"))
        with self.page.expect_download(timeout=PDF_TIMEOUT_MS) as info:
            link.click()
        download = info.value
        assert download.failure() is None, download.failure()
        path = tmp_path / f"{self.name}-{download.suggested_filename}"
        download.save_as(path)
        assert path.read_bytes()[:5] == b"%PDF-"
        reader = PdfReader(path)
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
        keywords = (reader.metadata or {}).get("/Keywords", "")
        return download.suggested_filename, f"{text}\n{keywords}"


@pytest.fixture(scope="session")
def catalogs(zh_catalog, en_catalog) -> dict[str, dict[str, str]]:
    return {"zh_CN": zh_catalog, "en": en_catalog}


def make_people(live_server, new_context, catalogs, lang, names) -> dict[str, Person]:
    expect.set_options(timeout=TIMEOUT_MS)
    emails = {
        "consumer": CONSUMER,
        "shop": SHOP,
        "mediator": MEDIATOR,
        "arbitrator": ARBITRATOR,
    }
    out = {}
    for name in names:
        context = new_context(locale=lang.browser_locale, timezone_id="Asia/Shanghai")
        context.set_default_timeout(TIMEOUT_MS)
        person = Person(
            name, context, context.new_page(), live_server.url, lang, catalogs
        )
        person.sign_in(emails[name])
        out[name] = person
    return out


def finish(people: dict[str, Person], tmp_path: Path) -> None:
    """Print the last pages loaded and save screenshots (for debugging)."""
    for person in people.values():
        print(f"{person.name} loaded: {person.documents[-8:]}")
        shot = tmp_path / f"{person.name}.png"
        try:
            person.page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
        except Exception as exc:  # never hide the step's own failure
            print(f"no screenshot of {person.name}: {exc}")


def no_problems(people: dict[str, Person]) -> None:
    problems = [f"{p.name}: {x}" for p in people.values() for x in p.problems]
    assert problems == [], problems


# The walk-through -----------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES, ids=[lang.code for lang in LANGUAGES])
def test_arbitration_walkthrough(
    live_server, new_context, catalogs, api, tmp_path, lang: Language
):
    """Queue, file, information request, award, PDFs, fulfilment: resolved."""
    people = make_people(
        live_server,
        new_context,
        catalogs,
        lang,
        ("consumer", "shop", "mediator", "arbitrator"),
    )
    try:
        walk(people, api, tmp_path)
    finally:
        finish(people, tmp_path)
    no_problems(people)


def walk(people: dict[str, Person], api, tmp_path: Path) -> None:
    consumer, shop = people["consumer"], people["shop"]
    mediator, arbitrator = people["mediator"], people["arbitrator"]
    today = business_today()

    # --- Prepared: filed, amended once, one file, then mediation ----------------
    case = file_complaint(api, "JX-ARB-0001", FIRST_TEXT)
    case_id, reference = case["id"], case["reference"]
    amended = api(CONSUMER).act(case_id, "amend", description=AMENDED_TEXT)
    assert amended["version"] == 2, amended.get("version")
    evidence = api(CONSUMER).upload(case_id, EVIDENCE_NAME, EVIDENCE_BYTES)
    assert evidence["sha256"] == hashlib.sha256(EVIDENCE_BYTES).hexdigest()
    into_mediation(api, case_id)

    # In the chat: the consumer in the joint room, the mediator in a caucus.
    consumer.open_case(case_id)
    consumer.say("joint", JOINT_TEXT)
    mediator.open_case(case_id)
    mediator.say("caucus:consumer", CAUCUS_TEXT)

    # The mediator ends the failed mediation on the case page: both consented.
    mediator.open_case(case_id)
    end = mediator.page.get_by_test_id("action-end_mediation")
    expect(end.get_by_test_id("end-mediation-next")).to_have_attribute(
        "data-next", "in_arbitration"
    )
    mediator.form("end_mediation").locator("textarea").fill("双方对退款金额分歧较大。")
    mediator.form("end_mediation").locator("[data-action=end_mediation]").click()
    mediator.expect_moved("in_arbitration", "Mediation ended.")
    mediator.page.close()  # the mediator's part is over

    # --- 1. The case waits in the arbitrators' queue; the arbitrator takes it ---
    page = arbitrator.page
    nav = page.get_by_test_id("nav-arbitration")
    expect(nav).to_have_text(arbitrator.t("Arbitration queue"))
    nav.click()
    row = page.locator(f"[data-testid=queue-row][data-reference='{reference}']")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(SHOP_NAME)
    take = row.get_by_test_id("take")
    expect(take).to_have_text(arbitrator.t("Take"))
    take.click()
    expect(page).to_have_url(re.compile(rf"/cases/{case_id}$"))
    arbitrator.expect_done("You took the case.")
    arbitrator.expect_status("in_arbitration")
    expect(page.get_by_test_id("case-facts")).to_contain_text("赵仲裁")
    # Gone from the queue, now in the arbitrator's caseload.
    nav = page.get_by_test_id("nav-arbitration")
    nav.click()
    expect(
        page.locator(f"[data-testid=queue-row][data-reference='{reference}']")
    ).to_have_count(0)
    caseload_row = page.locator(
        f"[data-testid=caseload-row][data-reference='{reference}']"
    )
    expect(caseload_row).to_have_attribute("data-status", "in_arbitration")
    caseload_row.get_by_test_id("caseload-open").click()
    expect(page.get_by_test_id("case-reference")).to_have_text(reference)

    # --- 2. The case file: every version, the evidence, the joint room only -----
    page.get_by_test_id("case-file-link").click()
    expect(page).to_have_url(re.compile(rf"/cases/{case_id}/file$"))
    file = page.get_by_test_id("case-file")
    expect(file.get_by_test_id("case-reference")).to_have_text(reference)
    versions = file.get_by_test_id("file-complaint").get_by_test_id("version")
    expect(versions).to_have_count(2)
    first = versions.and_(page.locator("[data-version='1']"))
    second = versions.and_(page.locator("[data-version='2']"))
    expect(first).to_contain_text(FIRST_TEXT)
    expect(first).not_to_contain_text(AMENDED_TEXT)
    expect(second).to_contain_text(AMENDED_TEXT)
    expect(second.locator("mark[data-changed=description]")).to_have_count(1)
    item = file.get_by_test_id("file-evidence-item")
    expect(item).to_have_count(1)
    expect(item.get_by_test_id("evidence-download")).to_have_text(EVIDENCE_NAME)
    expect(item.get_by_test_id("evidence-sha256")).to_have_text(evidence["sha256"])
    transcript = file.get_by_test_id("file-transcript")
    expect(
        transcript.get_by_test_id("transcript-body").filter(has_text=JOINT_TEXT)
    ).to_have_count(1)
    expect(transcript).to_contain_text("张消费")
    expect(page.locator("body")).not_to_contain_text(CAUCUS_TEXT)
    expect(file.get_by_test_id("chain-status")).to_have_attribute("data-intact", "true")

    # --- 3. The arbitrator asks the shop for the delivery record ----------------
    arbitrator.open_case(case_id)
    countdown = page.locator("[data-testid=case-deadline-card] [data-testid=countdown]")
    expect(countdown).to_have_count(1)
    expect(countdown).not_to_have_attribute("data-paused", "true")
    ask = arbitrator.form("request_info")
    ask.locator("select[name=request_info-party]").select_option("merchant")
    ask.locator("textarea[name=request_info-question]").fill(QUESTION)
    answer_by = today + timedelta(days=3)
    ask.locator("input[name=request_info-deadline]").fill(answer_by.isoformat())
    submit = ask.locator("[data-action=request_info]")
    expect(submit).to_have_text(arbitrator.t("Request information"))
    submit.click()
    arbitrator.expect_done("Request sent: the award deadline stops until the answer.")
    request = page.get_by_test_id("info-request")
    expect(request).to_have_count(1)
    expect(request).to_have_attribute("data-status", "open")
    expect(request).to_have_attribute("data-party", "merchant")
    expect(request.get_by_test_id("info-question")).to_have_text(QUESTION)
    # The award deadline is stopped, and no award while the shop owes an answer.
    expect(countdown).to_have_attribute("data-paused", "true")
    stopped = arbitrator.t("Clock stopped (%(time)s left)").split("%(time)s")[0]
    expect(countdown).to_contain_text(stopped.strip())
    expect(arbitrator.form("issue_award")).to_have_count(0)

    # --- 4. The shop answers, with the delivery record attached -----------------
    shop.open_case(case_id)
    shop.expect_status("in_arbitration")
    request = shop.page.get_by_test_id("info-request")
    expect(request.get_by_test_id("info-question")).to_have_text(QUESTION)
    upload = shop.page.get_by_test_id("evidence-upload")
    upload.locator("input[type=file][name=evidence]").set_input_files(
        {"name": DELIVERY_NAME, "mimeType": "text/plain", "buffer": DELIVERY_BYTES}
    )
    shop.page.get_by_test_id("upload-evidence").click()
    expect(shop.page.locator(".flash-success")).to_be_visible()
    delivery = shop.page.get_by_test_id("evidence-item").filter(has_text=DELIVERY_NAME)
    expect(delivery).to_have_count(1)
    delivery_id = delivery.get_attribute("data-evidence-id")
    answer = shop.form("answer_info")
    answer.locator("textarea[name=answer_info-text]").fill(ANSWER_TEXT)
    # The form offers the case's files: the shop ticks its delivery record.
    answer.locator(
        f"input[type=checkbox][name=answer_info-evidence_ids][value='{delivery_id}']"
    ).check()
    answer.locator("[data-action=answer_info]").click()
    shop.expect_done("Your answer was sent to the arbitrator.")
    request = shop.page.get_by_test_id("info-request")
    expect(request).to_have_attribute("data-status", "answered")
    expect(request.get_by_test_id("info-answer")).to_have_text(ANSWER_TEXT)
    expect(shop.form("answer_info")).to_have_count(0)

    # --- 5. The arbitrator reads the answer and issues the award ---------------
    arbitrator.open_case(case_id)
    request = page.get_by_test_id("info-request")
    expect(request).to_have_attribute("data-status", "answered")
    expect(request.get_by_test_id("info-answer")).to_have_text(ANSWER_TEXT)
    expect(request.get_by_role("link", name=DELIVERY_NAME)).to_have_count(1)
    expect(countdown).not_to_have_attribute("data-paused", "true")  # runs again
    award = arbitrator.form("issue_award")
    award.locator("select[name=issue_award-decision]").select_option("partly_granted")
    award.locator("textarea[name=issue_award-findings]").fill(FINDINGS)
    award.locator("textarea[name=issue_award-reasons]").fill(REASONS)
    pay_by = today + timedelta(days=7)
    row = award.get_by_test_id("order-row").first
    row.locator("select[name=issue_award-orders-0-type]").select_option("refund")
    row.locator("input[name=issue_award-orders-0-amount]").fill(REFUND)
    row.locator("input[name=issue_award-orders-0-deadline]").fill(pay_by.isoformat())
    row.locator("textarea[name=issue_award-orders-0-text]").fill(ORDER_TEXT)
    submit = award.locator("[data-action=issue_award]")
    expect(submit).to_have_text(arbitrator.t("Issue the award"))
    submit.click()
    arbitrator.expect_moved("awarded", "The award was issued.")
    summary = page.get_by_test_id("award-summary")
    expect(summary).to_have_attribute("data-version", "1")
    expect(summary.get_by_test_id("award-decision")).to_have_attribute(
        "data-decision", "partly_granted"
    )
    order = summary.get_by_test_id("award-order")
    expect(order).to_have_count(1)
    expect(order).to_contain_text(REFUND_SHOWN)
    expect(order).to_contain_text(pay_by.isoformat())
    expect(order).to_contain_text(ORDER_TEXT)
    award_sha = arbitrator.shown_award_sha256()
    expect(arbitrator.event("issue_award")).to_have_count(1)
    # The case file's timeline prints the same hash with the event.
    page.get_by_test_id("case-file-link").click()
    issued = page.locator("[data-testid=file-event][data-event-action=issue_award]")
    expect(issued).to_have_count(1)
    expect(issued).to_contain_text(award_sha)
    expect(
        page.get_by_test_id("file-awards").get_by_test_id("award-sha256")
    ).to_have_text(award_sha)

    # The hash of the issue_award event on the timeline (the API) and the award's.
    events = api(CONSUMER).get(f"/cases/{case_id}/events")
    assert events["chain_intact"] is True
    issue_events = [e for e in events["events"] if e["action"] == "issue_award"]
    assert len(issue_events) == 1, issue_events
    assert issue_events[0]["data"]["sha256"] == award_sha
    assert api(CONSUMER).get(f"/cases/{case_id}/award")["sha256"] == award_sha

    # --- 6. Both parties download the award PDF --------------------------------
    for party in (consumer, shop):
        party.open_case(case_id)
        party.expect_status("awarded")
        assert party.shown_award_sha256() == award_sha
        name, text = party.download_award(tmp_path)
        assert name == f"{reference}-award-v1.pdf", name
        assert reference in text, text
        # The hash printed in full (and in the metadata) is the award's, and
        # no other; the footer repeats its first 16 characters.
        printed = set(re.findall(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", text))
        assert printed == {award_sha}, (printed, award_sha, text)
        assert f"SHA-256 {award_sha[:16]}" in text, text
        for shown in (FINDINGS, REASONS, ORDER_TEXT, REFUND_SHOWN):
            assert shown in text, (shown, text)
        # In the reader's language.
        for msgid in ("Arbitral award", "Claim partly granted"):
            assert party.t(msgid) in text, (party.t(msgid), text)

    # --- 7. The shop pays on time, the consumer confirms: resolved --------------
    shop.open_case(case_id)
    fulfilled = shop.form("mark_fulfilled")
    fulfilled.locator("textarea").fill("已于今日原路退款 120 元。")
    expect(fulfilled.locator("[data-action=mark_fulfilled]")).to_have_text(
        shop.t("Mark as fulfilled")
    )
    fulfilled.locator("[data-action=mark_fulfilled]").click()
    shop.expect_done("Marked as fulfilled: the consumer is asked to confirm.")
    shop.expect_status("awarded")
    expect(shop.event("mark_fulfilled")).to_have_count(1)
    expect(shop.form("mark_fulfilled")).to_have_count(0)

    consumer.open_case(case_id)
    expect(consumer.event("mark_fulfilled")).to_contain_text("已于今日原路退款")
    confirm = consumer.form("confirm_fulfilment")
    expect(confirm.locator("[data-action=confirm_fulfilment]")).to_have_text(
        consumer.t("Confirm fulfilment")
    )
    confirm.locator("[data-action=confirm_fulfilment]").click()
    consumer.expect_moved("resolved", "Fulfilment confirmed.")
    expect(consumer.page.get_by_test_id("case-status")).to_have_text(
        consumer.t("Resolved")
    )
    expect(consumer.event("confirm_fulfilment")).to_have_count(1)
    # The award stays readable on the closed case, with the same hash.
    assert consumer.shown_award_sha256() == award_sha


def test_award_not_fulfilled_closes_noncompliant(
    live_server, new_context, catalogs, api, tmp_path
):
    """The shop does not pay: the consumer reports it, the case closes."""
    lang = LANGUAGES[0]
    case = awarded_case(api, "JX-ARB-0002")
    people = make_people(live_server, new_context, catalogs, lang, ("consumer", "shop"))
    consumer, shop = people["consumer"], people["shop"]
    try:
        consumer.open_case(case["id"])
        consumer.expect_status("awarded")
        award_sha = consumer.shown_award_sha256()
        report = consumer.form("report_unfulfilled")
        button = report.locator("[data-action=report_unfulfilled]")
        expect(button).to_have_text(consumer.t("Report not fulfilled"))
        report.locator("textarea").fill("已过履行期限，商家仍未退款。")
        button.click()
        consumer.expect_moved("closed_noncompliant", "Reported as not fulfilled.")
        expect(consumer.page.get_by_test_id("case-status")).to_have_text(
            consumer.t("Closed non-compliant")
        )
        expect(consumer.event("report_unfulfilled")).to_have_count(1)
        expect(consumer.form("mark_fulfilled")).to_have_count(0)
        expect(consumer.form("confirm_fulfilment")).to_have_count(0)
        # The shop sees it closed too, with nothing left to do but the award.
        shop.open_case(case["id"])
        shop.expect_status("closed_noncompliant")
        expect(shop.form("mark_fulfilled")).to_have_count(0)
        assert shop.shown_award_sha256() == award_sha
    finally:
        finish(people, tmp_path)
    no_problems(people)
