"""The deadline countdown ticks in real Chromium, and the case page notices a change.

The demo shop opens the case waiting for its answer; the countdown's text moves
with the seconds. The consumer then withdraws the complaint through the API (the
shop's page is not reloaded): within a few polls the page shows the notice that
the case has changed.
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PASSWORD = "demo-pass-2026"
CONSUMER = "consumer@example.com"
SHOP = "shop@example.com"
#: The demo case waiting for the shop's answer (see mediation/seed.py).
ORDER_REF = "JX20261101001"
TIMEOUT_MS = 15_000


def api(base_url: str, method: str, path: str, body=None, token=None) -> dict:
    """Call the JSON API and return the decoded answer."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{base_url}/api/v1{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_countdown_ticks_and_a_change_elsewhere_shows(live_server, new_context):
    base = live_server.url
    token = api(
        base, "POST", "/auth/tokens", {"email": CONSUMER, "password": PASSWORD}
    )["token"]
    cases = api(base, "GET", "/cases", token=token)["items"]
    case = next(c for c in cases if c["order_ref"] == ORDER_REF)
    assert case["status"] == "awaiting_merchant"

    context = new_context(locale="en-US", timezone_id="Asia/Shanghai")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.goto(f"{base}/login")
    form = page.get_by_test_id("login-form")
    form.locator("input[name=email]").fill(SHOP)
    form.locator("input[name=password]").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("logout")).to_be_visible()

    page.goto(f"{base}/cases/{case['id']}")
    countdown = page.locator("[data-testid=case-deadline-card] [data-testid=countdown]")
    expect(countdown).to_have_count(1)
    expect(countdown).to_have_attribute("data-colour", "green")
    expect(countdown).to_have_class(re.compile(r"\bdeadline-green\b"))
    expect(countdown).to_have_text(re.compile(r"\d{2}:\d{2}:\d{2}$"))
    first = countdown.inner_text()
    # The next tick: the text changes within about a second.
    expect(countdown).not_to_have_text(first, timeout=3_000)
    changed = page.get_by_test_id("case-changed")
    expect(changed).to_be_hidden()

    withdrawn = api(
        base,
        "POST",
        f"/cases/{case['id']}/actions",
        {"action": "withdraw", "reason": "Settled with the shop by phone."},
        token=token,
    )
    assert withdrawn["status"] == "withdrawn"
    expect(changed).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_test_id("case-reload").click()
    expect(page.get_by_test_id("case-status")).to_have_attribute(
        "data-status", "withdrawn", timeout=TIMEOUT_MS
    )
    expect(page.get_by_test_id("countdown")).to_have_count(0)
    assert not problems, problems
