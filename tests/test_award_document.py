"""The award document: the printable page, the PDF and the API.

A case goes to arbitration and gets its award through the real lifecycle
actions; the document must print exactly what was hashed and the hash that the
award row and the ``issue_award`` timeline event hold, with the Chinese text in
an embedded CJK font.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from pypdf import PdfReader

from mediation import clock
from mediation.arbitration import documents
from mediation.arbitration.models import Award
from mediation.arbitration.services import award_sha256
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case, CaseEvent
from mediation.extensions import db
from tests.conftest import PASSWORD

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
SHOP = "水壶旗舰店 Kettle Store"
FINDINGS = "The kettle leaked on the second day.\n壶底焊缝开裂。\n<b>not bold</b>"
REASONS = "Article 24 of the Consumer Rights Protection Law.\nThe defect is proven."
REFUND_TEXT = "退还全部货款 (full refund)"
ORDERS = [
    {
        "type": "refund",
        "amount": 19900,
        "deadline": "2026-03-16",
        "text": REFUND_TEXT,
    },
    {
        "type": "compensation",
        "amount": 5050,
        "deadline": "2026-03-16",
        "text": "Compensation for the damaged table.",
    },
]


@dataclass
class Awarded:
    """An awarded case and the people around it."""

    case_id: int
    reference: str
    sha256: str
    users: dict[str, Any]


def _act(case_id: int, action: str, payload: dict, user, relation: str) -> None:
    case = db.session.get(Case, case_id)
    services.apply_action(
        case,
        action,
        payload,
        actor=db.session.get(User, user.id),
        relation=relation,
        now=clock.now_utc(),
    )
    db.session.commit()


@pytest.fixture()
def awarded(app, make_user, make_merchant, make_case) -> Awarded:
    """A case of consumer A against a shop on platform P, awarded by ``arb``."""
    clock.freeze(MONDAY)
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    platform = make_merchant(name="Whale Mall", kind="platform")
    shop = make_merchant(name=SHOP, platform_id=platform.id, arbitration_consent=True)
    users = {
        "A": make_user("consumer", name="张三 Zhang San"),
        "B": make_user("consumer", name="Consumer B"),
        "S": make_user("merchant", merchant_id=shop.id, name="Staff S"),
        "P": make_user("merchant", merchant_id=platform.id, name="Staff P"),
        "med": make_user("mediator", name="Mediator M"),
        "arb": make_user("arbitrator", name="仲裁员 Li Arbiter"),
        "arb2": make_user("arbitrator", name="Other Arbitrator"),
        "reg": make_user("regulator", name="Regulator R"),
    }
    case_id = make_case(users["A"], shop, arbitration_consent=True)
    with app.app_context():
        _act(case_id, "reject", {"reason": "Not our fault."}, users["S"], "merchant")
        _act(case_id, "take", {}, users["med"], "mediator")
        failed = {"result": "failed", "reason": "No agreement."}
        _act(case_id, "end_mediation", failed, users["med"], "mediator")
        _act(case_id, "take", {}, users["arb"], "arbitrator")
        award = {
            "decision": "granted",
            "findings": FINDINGS,
            "reasons": REASONS,
            "orders": ORDERS,
        }
        _act(case_id, "issue_award", award, users["arb"], "arbitrator")
        case = db.session.get(Case, case_id)
        assert case.status == "awarded"
        row = db.session.scalars(db.select(Award).where(Award.case_id == case_id)).one()
        return Awarded(case_id, case.reference, row.sha256, users)


def _login(client, user) -> None:
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302


def _pdf_text(data: bytes) -> str:
    return "\n".join(
        page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages
    )


def _fonts(data: bytes) -> list[dict[str, Any]]:
    """Return each font of the PDF: its name and whether its file is embedded."""
    found = []
    for page in PdfReader(io.BytesIO(data)).pages:
        resources = page["/Resources"].get_object()
        for ref in resources.get("/Font", {}).values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            target = descendants[0].get_object() if descendants else font
            descriptor = target.get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor else {}
            found.append(
                {
                    "name": str(font.get("/BaseFont")),
                    "embedded": any(
                        key in descriptor
                        for key in ("/FontFile", "/FontFile2", "/FontFile3")
                    ),
                }
            )
    return found


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# The hash -------------------------------------------------------------------------


def test_award_hash_is_the_hash_of_its_content_and_on_the_timeline(app, awarded):
    with app.app_context():
        award = db.session.scalars(
            db.select(Award).where(Award.case_id == awarded.case_id)
        ).one()
        assert award.sha256 == award_sha256(award.content)
        event = db.session.scalars(
            db.select(CaseEvent).where(
                CaseEvent.case_id == awarded.case_id,
                CaseEvent.action == "issue_award",
            )
        ).one()
        assert event.data["sha256"] == award.sha256
        assert award.content["orders"][0]["text"] == REFUND_TEXT


# The PDF --------------------------------------------------------------------------


def test_pdf_prints_the_reference_orders_and_the_exact_hash(client, awarded):
    _login(client, awarded.users["A"])
    response = client.get(f"/cases/{awarded.case_id}/award.pdf?lang=en")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{awarded.reference}-award-v1.pdf"'
    )
    data = response.get_data()
    assert data.startswith(b"%PDF")
    text = _pdf_text(data)
    assert awarded.reference in text
    assert "¥199.00" in text
    assert "¥50.50" in text
    assert "2026-03-16" in text
    assert awarded.sha256 in _squash(text)
    assert "Arbitral award" in text
    # In the default language (zh_CN) the same document, in Chinese.
    chinese = _pdf_text(client.get(f"/cases/{awarded.case_id}/award.pdf").get_data())
    assert "仲裁裁决书" in chinese and awarded.sha256 in _squash(chinese)


def test_pdf_embeds_a_cjk_font_and_the_chinese_text(client, awarded):
    _login(client, awarded.users["A"])
    data = client.get(f"/cases/{awarded.case_id}/award.pdf").get_data()
    fonts = _fonts(data)
    cjk = [f for f in fonts if "CJK" in f["name"]]
    assert cjk, fonts
    assert all(f["embedded"] for f in fonts), fonts
    text = _pdf_text(data)
    # WeasyPrint writes ToUnicode maps, so the Chinese text comes back out.
    assert "退还全部货款" in text
    assert "水壶旗舰店" in text
    assert "壶底焊缝开裂" in text


def test_pdf_footer_has_page_numbers_reference_and_hash_prefix(client, awarded):
    _login(client, awarded.users["A"])
    data = client.get(f"/cases/{awarded.case_id}/award.pdf?lang=en").get_data()
    reader = PdfReader(io.BytesIO(data))
    pages = len(reader.pages)
    assert pages >= 1
    text = _pdf_text(data)
    assert f"Page 1 of {pages}" in text
    assert f"{awarded.reference} · SHA-256 {awarded.sha256[:16]}" in text
    assert reader.metadata.title.endswith(awarded.reference)


def test_pdf_in_chinese_prints_the_same_hash(client, awarded):
    _login(client, awarded.users["A"])
    data = client.get(f"/cases/{awarded.case_id}/award.pdf?lang=zh_CN").get_data()
    assert data.startswith(b"%PDF")
    assert awarded.sha256 in _squash(_pdf_text(data))


def test_pdf_renderer_fetches_no_url(ctx):
    fetcher = documents._refuse_fetches()
    for url in (
        "http://127.0.0.1:9/x.png",
        "https://example.com/style.css",
        "file:///etc/passwd",
        "ftp://example.com/a",
    ):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    response = fetcher.fetch("data:text/plain,hello")
    assert response.read() == b"hello"


# The page -------------------------------------------------------------------------


def test_award_page_shows_the_document_with_the_hash(client, awarded):
    _login(client, awarded.users["S"])
    response = client.get(f"/cases/{awarded.case_id}/award?lang=en")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'href="/static/css/award.css"' in html
    assert f'data-testid="award-sha256">{awarded.sha256}</p>' in html
    assert "recorded on the case's timeline" in unescape(html)
    assert awarded.reference in html
    assert "¥199.00" in html and "¥50.50" in html
    assert REFUND_TEXT in unescape(html)
    assert "水壶旗舰店" in html
    assert "仲裁员 Li Arbiter" in html
    assert "Claim granted" in html
    # User text is escaped, with its line breaks kept.
    assert "<b>not bold</b>" not in html
    findings = re.search(r'data-testid="award-findings">(.*?)</p>', html, re.S)
    assert unescape(findings.group(1)) == FINDINGS
    assert f'/cases/{awarded.case_id}/award.pdf?version=1"' in html


def test_award_page_prints_the_uscc_of_the_merchant(app, client, awarded):
    with app.app_context():
        case = db.session.get(Case, awarded.case_id)
        uscc = case.merchant.uscc
    _login(client, awarded.users["reg"])
    html = client.get(f"/cases/{awarded.case_id}/award").get_data(as_text=True)
    assert f'data-testid="award-uscc">{uscc}</span>' in html


# Access ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "status"),
    [
        ("A", 200),
        ("S", 200),
        ("arb", 200),
        ("reg", 200),
        ("B", 404),
        ("P", 404),
        ("arb2", 404),
        ("med", 403),
    ],
)
def test_who_may_read_the_award(client, awarded, token_for, actor, status):
    user = awarded.users[actor]
    headers = token_for(user)
    api = client.get(f"/api/v1/cases/{awarded.case_id}/award", headers=headers)
    assert api.status_code == status
    _login(client, user)
    for path in ("award", "award.pdf"):
        page = client.get(f"/cases/{awarded.case_id}/{path}")
        assert page.status_code == status, path


def test_anonymous_visitors_sign_in_first(client, awarded):
    for path in ("award", "award.pdf?version=1"):
        response = client.get(f"/cases/{awarded.case_id}/{path}")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")
    api = client.get(f"/api/v1/cases/{awarded.case_id}/award")
    assert api.status_code == 401
    assert api.get_json()["error"]["code"] == "unauthorized"


def test_mediator_is_told_the_award_is_not_for_them(client, awarded, token_for):
    response = client.get(
        f"/api/v1/cases/{awarded.case_id}/award",
        headers=token_for(awarded.users["med"]),
    )
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


# Versions ---------------------------------------------------------------------------


@pytest.fixture()
def corrected(app, awarded) -> Awarded:
    """The award of :func:`awarded`, corrected once (version 2)."""
    users = awarded.users
    clock.advance(timedelta(hours=2))
    with app.app_context():
        _act(
            awarded.case_id,
            "request_correction",
            {"reason": "The compensation is 50.50, not 5.05."},
            users["A"],
            "consumer",
        )
        orders = [dict(ORDERS[0]), {**ORDERS[1], "amount": 6060}]
        payload = {
            "decision": "granted",
            "findings": FINDINGS,
            "reasons": REASONS,
            "orders": orders,
        }
        _act(awarded.case_id, "correct_award", payload, users["arb"], "arbitrator")
    return awarded


def test_page_shows_the_current_version_and_earlier_ones_on_request(
    app, client, corrected
):
    with app.app_context():
        v1, v2 = db.session.scalars(
            db.select(Award)
            .where(Award.case_id == corrected.case_id)
            .order_by(Award.version)
        ).all()
        assert v2.content["corrects"] == v1.sha256
        event = db.session.scalars(
            db.select(CaseEvent).where(
                CaseEvent.case_id == corrected.case_id,
                CaseEvent.action == "correct_award",
            )
        ).one()
        assert event.data["sha256"] == v2.sha256
    _login(client, corrected.users["A"])
    current = client.get(f"/cases/{corrected.case_id}/award?lang=en")
    html = current.get_data(as_text=True)
    assert f'data-sha256="{v2.sha256}"' in html
    assert "¥60.60" in html
    assert "This version corrects version 1" in html
    assert f'href="/cases/{corrected.case_id}/award?version=1"' in html
    assert v1.sha256 in html
    earlier = client.get(f"/cases/{corrected.case_id}/award?version=1&lang=en")
    html = earlier.get_data(as_text=True)
    assert f'data-sha256="{v1.sha256}"' in html
    assert "¥50.50" in html and "¥60.60" not in html
    assert "it is not the award in force" in html
    pdf = client.get(f"/cases/{corrected.case_id}/award.pdf?version=1")
    assert pdf.headers["Content-Disposition"].endswith('-award-v1.pdf"')
    assert v1.sha256 in _squash(_pdf_text(pdf.get_data()))
    latest = client.get(f"/cases/{corrected.case_id}/award.pdf")
    assert latest.headers["Content-Disposition"].endswith('-award-v2.pdf"')
    assert v2.sha256 in _squash(_pdf_text(latest.get_data()))


@pytest.mark.parametrize(
    ("query", "status"),
    [("version=3", 404), ("version=0", 400), ("version=abc", 400), ("version=-1", 400)],
)
def test_bad_or_unknown_versions_are_refused(client, awarded, token_for, query, status):
    headers = token_for(awarded.users["A"])
    api = client.get(f"/api/v1/cases/{awarded.case_id}/award?{query}", headers=headers)
    assert api.status_code == status
    assert api.get_json()["error"]["message"]
    _login(client, awarded.users["A"])
    for path in ("award", "award.pdf"):
        page = client.get(f"/cases/{awarded.case_id}/{path}?{query}")
        assert page.status_code == status


# The API --------------------------------------------------------------------------


def test_api_returns_the_award_with_its_versions(app, client, awarded, token_for):
    headers = token_for(awarded.users["A"])
    response = client.get(f"/api/v1/cases/{awarded.case_id}/award", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["case_id"] == awarded.case_id
    assert body["reference"] == awarded.reference
    assert body["version"] == 1
    assert body["current"] is True
    assert body["sha256"] == awarded.sha256
    assert body["decision"] == "granted"
    assert body["findings"] == FINDINGS
    assert body["reasons"] == REASONS
    assert body["orders"] == ORDERS
    assert body["final"] is False
    assert body["issued_at"] == MONDAY.isoformat()
    assert datetime.fromisoformat(body["correction_until"]) > MONDAY
    assert body["content"]["reference"] == awarded.reference
    assert award_sha256(body["content"]) == awarded.sha256
    assert body["versions"] == [
        {
            "version": 1,
            "sha256": awarded.sha256,
            "issued_at": MONDAY.isoformat(),
            "decision": "granted",
        }
    ]
    assert "Accept" in response.headers["Vary"]
    # After the correction window the award is final.
    clock.freeze(
        datetime.fromisoformat(body["correction_until"]) + timedelta(seconds=1)
    )
    headers = token_for(awarded.users["A"])  # the first one expired meanwhile
    later = client.get(f"/api/v1/cases/{awarded.case_id}/award", headers=headers)
    assert later.get_json()["final"] is True


def test_api_sends_the_pdf_when_asked(client, awarded, token_for):
    headers = {**token_for(awarded.users["reg"]), "Accept": "application/pdf"}
    response = client.get(f"/api/v1/cases/{awarded.case_id}/award", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{awarded.reference}-award-v1.pdf"'
    )
    assert awarded.sha256 in _squash(_pdf_text(response.get_data()))


def test_api_on_the_browser_session(client, awarded):
    _login(client, awarded.users["S"])
    response = client.get(f"/api/v1/cases/{awarded.case_id}/award")
    assert response.status_code == 200
    assert response.get_json()["sha256"] == awarded.sha256


def test_api_versions_after_a_correction(client, corrected, token_for):
    headers = token_for(corrected.users["arb"])
    body = client.get(
        f"/api/v1/cases/{corrected.case_id}/award", headers=headers
    ).get_json()
    assert body["version"] == 2
    assert [v["version"] for v in body["versions"]] == [1, 2]
    assert body["content"]["corrects"] == body["versions"][0]["sha256"]
    old = client.get(
        f"/api/v1/cases/{corrected.case_id}/award?version=1", headers=headers
    ).get_json()
    assert old["version"] == 1
    assert old["current"] is False
    assert old["final"] is False
    assert old["sha256"] == body["versions"][0]["sha256"] == corrected.sha256


def test_no_award_yet_is_a_404(client, make_user, make_merchant, make_case, token_for):
    consumer = make_user("consumer")
    case_id = make_case(consumer, make_merchant())
    response = client.get(f"/api/v1/cases/{case_id}/award", headers=token_for(consumer))
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "no_award"
    assert error["message"]
    _login(client, consumer)
    page = client.get(f"/cases/{case_id}/award?lang=en")
    assert page.status_code == 404
    assert "This case has no award yet." in page.get_data(as_text=True)
    assert client.get(f"/cases/{case_id}/award.pdf").status_code == 404


def test_unknown_case_is_a_404(client, make_user, token_for):
    consumer = make_user("consumer")
    headers = token_for(consumer)
    _login(client, consumer)
    # Ids past PostgreSQL's integer are simply not found.
    for case_id in (999999, 99999999999):
        api = client.get(f"/api/v1/cases/{case_id}/award", headers=headers)
        assert api.status_code == 404
        for path in ("award", "award.pdf"):
            assert client.get(f"/cases/{case_id}/{path}").status_code == 404


def test_openapi_documents_the_award(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/cases/{case_id}/award"]["get"]
    assert "x-spec-error" not in operation
    content = operation["responses"]["200"]["content"]
    assert "application/pdf" in content
    ref = content["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"sha256", "versions", "final", "orders", "content"} <= set(
        schema["properties"]
    )
