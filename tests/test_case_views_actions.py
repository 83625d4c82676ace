"""The case page's action forms: the walk-through and its refusals, in HTML."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest

from mediation import clock
from mediation.cases import lifecycle as lc
from mediation.cases.forms import yuan_to_fen
from mediation.cases.models import Case, Evidence, Offer
from mediation.extensions import db
from tests.conftest import PASSWORD

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def login(client, user) -> None:
    """Sign in through the real sign-in form."""
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code in (302, 303), response.status_code


def page(response) -> str:
    return response.get_data(as_text=True)


def timeline(html: str) -> list[str]:
    """Return the actions of the timeline items on a case page, in order."""
    return re.findall(
        r'data-testid="timeline-item" data-event-action="([a-z_]+)"', html
    )


def status_on(html: str) -> str:
    return re.search(r'data-status="([a-z_]+)" data-testid="case-status"', html).group(
        1
    )


def load(app, case_id: int) -> Case:
    with app.app_context():
        case = db.session.get(Case, case_id)
        db.session.expunge(case)
        return case


@pytest.fixture(autouse=True)
def _monday():
    clock.freeze(MONDAY)
    yield
    clock.unfreeze()


@pytest.fixture()
def parties(make_user, make_merchant):
    shop = make_merchant(name="Kettle Shop", arbitration_consent=True)
    other = make_merchant(name="Tea House")
    return {
        "consumer": make_user("consumer", name="Zhang San"),
        "merchant": make_user("merchant", merchant_id=shop.id, name="Kettle Staff"),
        "other_merchant": make_user("merchant", merchant_id=other.id),
        "mediator": make_user("mediator", name="Mia Mediator"),
        "shop": shop,
    }


def act(client, case_id: int, action: str, lang: str = "en", **fields):
    """Submit one action form of the case page (fields get the action's prefix)."""
    data = {f"{action}-{name}": value for name, value in fields.items()}
    return client.post(f"/cases/{case_id}/actions/{action}?lang={lang}", data=data)


def test_walk_through_file_offer_accept_fulfil_confirm(app, client, parties):
    # The consumer files a complaint with a photo.
    login(client, parties["consumer"])
    response = client.post(
        "/cases/new",
        data={
            "merchant_query": "Kettle Shop",
            "merchant_id": str(parties["shop"].id),
            "platform_id": "",
            "category": "quality_defect",
            "order_ref": "TB-889900",
            "order_date": "2026-02-25",
            "amount_paid": "259.00",
            "claim_type": "refund",
            "claim_amount": "199.00",
            "description": "The kettle leaks from the base after two days of use.",
            "evidence": [(io.BytesIO(PNG), "photo.png")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    case_url = response.headers["Location"]
    case_id = int(case_url.rsplit("/", 1)[1])
    html = page(client.get(case_url + "?lang=en"))
    assert timeline(html) == ["file", "route", "evidence"]
    assert status_on(html) == lc.AWAITING_MERCHANT
    assert 'data-testid="next-step"' in html and "The merchant answers" in html
    assert 'data-testid="case-deadline"' in html

    # The merchant sees it and offers a refund of 199.00 yuan.
    login(client, parties["merchant"])
    html = page(client.get(case_url + "?lang=en"))
    assert 'data-action="offer"' in html and 'data-action="reject"' in html
    assert 'data-action="accept_offer"' not in html
    response = act(
        client,
        case_id,
        "offer",
        type="refund",
        amount="199.00",
        deadline="2026-03-10",
        text="Full refund of the claim; no need to send the kettle back.",
    )
    assert response.status_code == 303
    html = page(client.get(case_url + "?lang=en"))
    assert "Offer sent." in html
    assert status_on(html) == lc.OFFER_PENDING
    assert timeline(html)[-1] == "offer"
    assert "¥199.00" in html.split('data-event-action="offer"')[1]
    with app.app_context():
        assert db.session.scalars(db.select(Offer)).one().amount == 19900

    # The consumer accepts it (in Chinese, the default language).
    login(client, parties["consumer"])
    html = page(client.get(case_url))
    assert 'data-testid="open-offer"' in html and "¥199.00" in html
    assert 'data-action="accept_offer"' in html
    response = act(client, case_id, "accept_offer", lang="zh_CN")
    assert response.status_code == 303
    html = page(client.get(case_url + "?lang=en"))
    assert status_on(html) == lc.SETTLED
    assert timeline(html)[-1] == "accept_offer"
    assert 'data-offer-status="accepted"' in html

    # The merchant marks it fulfilled; the consumer confirms.
    login(client, parties["merchant"])
    assert (
        act(client, case_id, "mark_fulfilled", text="Refunded to Alipay.").status_code
        == 303
    )
    login(client, parties["consumer"])
    html = page(client.get(case_url + "?lang=en"))
    assert timeline(html)[-1] == "mark_fulfilled"
    assert "Refunded to Alipay." in html
    assert act(client, case_id, "confirm_fulfilment").status_code == 303
    html = page(client.get(case_url + "?lang=en"))
    assert status_on(html) == lc.RESOLVED
    assert timeline(html) == [
        "file",
        "route",
        "evidence",
        "offer",
        "accept_offer",
        "mark_fulfilled",
        "confirm_fulfilment",
    ]
    # Every event shows its shortened hash; the consumer can now rate.
    assert (
        len(
            re.findall(
                r'class="hash" title="[0-9a-f]{64}" data-testid="event-hash"', html
            )
        )
        == 7
    )
    assert 'data-action="rate"' in html
    assert (
        act(client, case_id, "rate", score="5", comment="Quick and fair.").status_code
        == 303
    )
    html = page(client.get(case_url + "?lang=en"))
    assert timeline(html)[-1] == "rate"
    assert 'data-action="rate"' not in html
    assert load(app, case_id).satisfaction == 5


def test_the_case_page_renders_in_chinese(client, parties, make_case):
    case_id = make_case(parties["consumer"], parties["shop"])
    login(client, parties["consumer"])
    response = client.get(f"/cases/{case_id}?lang=zh_CN")
    assert response.status_code == 200
    html = page(response)
    assert '<html lang="zh-CN">' in html
    # The hooks of the browser tests do not depend on the language.
    assert timeline(html) == ["file", "route"]
    assert status_on(html) == lc.AWAITING_MERCHANT
    assert 'data-action="withdraw"' in html


def test_a_merchant_cannot_take_a_consumer_action(app, client, parties, make_case):
    case_id = make_case(parties["consumer"], parties["shop"])
    login(client, parties["merchant"])
    response = act(client, case_id, "withdraw", reason="Trying to close it.")
    assert response.status_code == 303
    html = page(client.get(response.headers["Location"] + "?lang=en"))
    assert "is not possible now" in html
    assert load(app, case_id).status == lc.AWAITING_MERCHANT
    # An action in the wrong status is refused the same way.
    response = act(client, case_id, "mark_fulfilled")
    assert response.status_code == 303
    assert load(app, case_id).status == lc.AWAITING_MERCHANT
    # An action name that does not exist is not found.
    assert client.post(f"/cases/{case_id}/actions/explode", data={}).status_code == 404


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": "12.345"}, "at most two decimals"),
        ({"amount": "abc"}, "Enter an amount in yuan"),
        ({"amount": ""}, "Enter the amount."),
        ({"deadline": "2026-02-01"}, "cannot be in the past"),
        ({"text": ""}, "Describe the offer."),
    ],
)
def test_offer_errors_re_render_the_form_with_the_typed_values(
    app, client, parties, make_case, fields, message
):
    case_id = make_case(parties["consumer"], parties["shop"])
    login(client, parties["merchant"])
    values = {
        "type": "refund",
        "amount": "99.50",
        "deadline": "2026-03-10",
        "text": "Half the price back.",
    }
    values.update(fields)
    response = act(client, case_id, "offer", **values)
    assert response.status_code == 422
    html = page(response)
    assert message in html
    form = html.split('data-testid="action-form-offer"')[1].split("</form>")[0]
    assert message in form
    if values["text"]:
        assert "Half the price back." in form
    assert f'value="{values["amount"]}"' in form
    case = load(app, case_id)
    assert case.status == lc.AWAITING_MERCHANT
    with app.app_context():
        assert db.session.scalars(db.select(Offer)).all() == []


def test_rejection_goes_to_mediation_and_a_mediator_takes_it(
    app, client, parties, make_case
):
    case_id = make_case(parties["consumer"], parties["shop"])
    login(client, parties["merchant"])
    assert act(client, case_id, "reject", reason="").status_code == 422
    assert (
        act(client, case_id, "reject", reason="The kettle was dropped.").status_code
        == 303
    )
    assert load(app, case_id).status == lc.IN_MEDIATION

    login(client, parties["mediator"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-action="take"' in html
    assert act(client, case_id, "take").status_code == 303
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-testid="case-mediator">Mia Mediator<' in html
    assert 'data-action="propose"' in html and 'data-action="end_mediation"' in html
    response = act(
        client,
        case_id,
        "propose",
        type="refund",
        amount="100.00",
        deadline="2026-03-12",
        text="Half refund, each side bears part.",
    )
    assert response.status_code == 303

    login(client, parties["consumer"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-testid="open-proposal"' in html
    assert act(client, case_id, "accept_proposal").status_code == 303
    assert load(app, case_id).status == lc.IN_MEDIATION
    login(client, parties["merchant"])
    assert act(client, case_id, "accept_proposal").status_code == 303
    assert load(app, case_id).status == lc.SETTLED


def test_the_consumer_withdraws_with_a_reason(app, client, parties, make_case):
    case_id = make_case(parties["consumer"], parties["shop"])
    login(client, parties["consumer"])
    response = act(client, case_id, "withdraw", reason="The shop refunded me by phone.")
    assert response.status_code == 303
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert status_on(html) == lc.WITHDRAWN
    assert "The shop refunded me by phone." in html
    assert 'data-testid="evidence-upload"' not in html  # closed: no more evidence


def test_parties_add_evidence_on_the_case_page(app, client, parties, make_case):
    case_id = make_case(parties["consumer"], parties["shop"])
    login(client, parties["merchant"])
    html = page(client.get(f"/cases/{case_id}"))
    assert 'data-testid="evidence-upload"' in html
    response = client.post(
        f"/cases/{case_id}/evidence?lang=en",
        data={"evidence": [(io.BytesIO(b"%PDF-1.4 delivery receipt"), "receipt.pdf")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert "1 file added." in html
    assert timeline(html)[-1] == "evidence"
    assert "receipt.pdf" in html

    response = client.post(
        f"/cases/{case_id}/evidence?lang=en",
        data={"evidence": [(io.BytesIO(b"\x00\x01\x02binary"), "blob.bin")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert "blob.bin" in html and "Only JPG, PNG" in html
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Evidence.id))) == 1

    # Submitting the form without a file says so.
    response = client.post(
        f"/cases/{case_id}/evidence?lang=en",
        data={},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    assert "Choose at least one file." in page(client.get(f"/cases/{case_id}?lang=en"))


def test_every_open_status_has_action_forms_that_render(
    app, client, parties, make_case
):
    """Each allowed action of each side shows a form with a stable hook."""
    case_id = make_case(parties["consumer"], parties["shop"])
    login(client, parties["consumer"])
    html = page(client.get(f"/cases/{case_id}"))
    for action in ("amend", "withdraw", "consent_arbitration"):
        assert f'data-action="{action}"' in html
    assert act(client, case_id, "consent_arbitration").status_code == 303
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-action="consent_arbitration"' not in html
    assert timeline(html)[-1] == "consent_arbitration"


def test_offer_deadline_passes_and_the_page_shows_it_overdue(
    app, client, parties, make_case
):
    case_id = make_case(parties["consumer"], parties["shop"])
    clock.advance(timedelta(days=8))
    login(client, parties["merchant"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-overdue="true"' in html and "Overdue" in html


@pytest.mark.parametrize(
    ("typed", "fen"),
    [
        ("199.00", 19900),
        ("199", 19900),
        ("0.1", 10),
        ("0.01", 1),
        ("1,234.56", 123456),
        ("¥88.80", 8880),
        ("１９９．５", 19950),
        (" 7.5 ", 750),
        (".5", 50),
    ],
)
def test_yuan_is_converted_to_fen_exactly(typed, fen):
    assert yuan_to_fen(typed) == fen


@pytest.mark.parametrize(
    "typed", ["12.345", "abc", "-1", "1e3", "1.2.3", "", "NaN", "100000000.01"]
)
def test_bad_yuan_amounts_are_refused(typed):
    with pytest.raises(ValueError):
        yuan_to_fen(typed)


def test_a_regulator_reassigns_the_mediator(app, client, parties, make_case, make_user):
    regulator = make_user("regulator")
    other_mediator = make_user("mediator", name="Max Mediator")
    case_id = make_case(parties["consumer"], parties["shop"])
    login(client, parties["merchant"])
    act(client, case_id, "reject", reason="Not our fault.")
    login(client, parties["mediator"])
    act(client, case_id, "take")
    login(client, regulator)
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-action="reassign"' in html and "Max Mediator" in html
    assert act(client, case_id, "reassign", user_id="").status_code == 422
    response = act(client, case_id, "reassign", user_id=str(other_mediator.id))
    assert response.status_code == 303
    assert load(app, case_id).mediator_id == other_mediator.id


def test_action_redirect_ignores_a_next_that_leaves_the_site(
    app, client, parties, make_case
):
    case_id = make_case(parties["consumer"], parties["shop"])
    login(client, parties["consumer"])
    response = client.post(
        f"/cases/{case_id}/actions/withdraw",
        data={"withdraw-reason": "Sorted it out", "next": "/\t/evil.example"},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/cases/{case_id}")
