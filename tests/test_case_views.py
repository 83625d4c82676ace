"""Case pages: start page, filing with evidence, lists, intake, amending, access."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import unquote

import pytest
from sqlalchemy import func

from mediation import clock, create_app
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case, CaseEvent, Evidence
from mediation.extensions import db
from tests.conftest import PASSWORD, _testing

#: A real 1x1 PNG: the evidence store sniffs the type from the content.
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


def filing_data(**overrides) -> dict:
    """Return a valid filing form (amounts typed in yuan)."""
    data = {
        "merchant_query": "",
        "merchant_id": "",
        "platform_id": "",
        "category": "quality_defect",
        "order_ref": "JD-20260301-7788",
        "order_date": "2026-02-20",
        "amount_paid": "199.00",
        "claim_type": "refund",
        "claim_amount": "199.00",
        "description": "The kettle leaks from the base after two days of use.",
    }
    data.update(overrides)
    return data


def case_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(func.count(Case.id)))


def only_case(app) -> Case:
    with app.app_context():
        case = db.session.scalars(db.select(Case)).one()
        db.session.expunge(case)
        return case


@pytest.fixture(autouse=True)
def _monday():
    clock.freeze(MONDAY)
    yield
    clock.unfreeze()


@pytest.fixture()
def make_app(app, database_url, tmp_path):
    """Return a factory of apps with other settings on the same test database.

    It depends on ``app`` so that its engines are closed before ``app`` empties
    the tables (PostgreSQL would wait on their locks).
    """
    made = []

    def factory(**overrides):
        other = create_app(
            {
                **_testing(),
                "SQLALCHEMY_DATABASE_URI": database_url,
                "EVIDENCE_DIR": str(tmp_path / "other-evidence"),
                **overrides,
            }
        )
        made.append(other)
        return other

    yield factory
    for other in made:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture()
def parties(make_user, make_merchant):
    platform = make_merchant(name="Whale Mall", kind="platform")
    shop = make_merchant(name="Kettle Shop", platform_id=platform.id)
    other_shop = make_merchant(name="Tea House")
    return {
        "consumer": make_user("consumer", name="Zhang San"),
        "other_consumer": make_user("consumer", name="Li Si"),
        "merchant": make_user("merchant", merchant_id=shop.id, name="Kettle Staff"),
        "other_merchant": make_user("merchant", merchant_id=other_shop.id),
        "regulator": make_user("regulator", name="Wang Regulator"),
        "mediator": make_user("mediator", name="Mia Mediator"),
        "shop": shop,
        "other_shop": other_shop,
        "platform": platform,
    }


# Start page -----------------------------------------------------------------


def test_start_page_explains_the_platform_to_anonymous_visitors(client):
    response = client.get("/?lang=en")
    assert response.status_code == 200
    html = page(response)
    assert 'data-testid="home-intro"' in html
    assert 'href="/login"' in html
    assert 'data-testid="home-register"' in html
    assert 'data-testid="home-merchant-search"' in html


def test_start_page_shows_a_dashboard_for_each_role(client, parties, make_case):
    make_case(parties["consumer"], parties["shop"])
    login(client, parties["consumer"])
    html = page(client.get("/"))
    assert 'data-testid="home-file-complaint"' in html
    assert 'data-testid="home-open-cases"' in html

    login(client, parties["merchant"])
    html = page(client.get("/"))
    assert 'data-testid="home-status-counts"' in html
    assert 'data-status="awaiting_merchant">1<' in html
    assert 'data-testid="home-nearest"' in html

    login(client, parties["regulator"])
    html = page(client.get("/"))
    assert 'data-testid="home-intake-count">0<' in html

    login(client, parties["mediator"])
    html = page(client.get("/"))
    assert 'data-testid="home-unassigned"' in html


# Filing ---------------------------------------------------------------------


def test_filing_form_offers_the_merchant_autocomplete(client, parties):
    login(client, parties["consumer"])
    response = client.get("/cases/new")
    assert response.status_code == 200
    html = page(response)
    assert re.search(
        r'<input[^>]*data-merchant-autocomplete[^>]*data-target-id="merchant_id"'
        r'[^>]*id="merchant_query"|<input[^>]*id="merchant_query"[^>]*'
        r"data-merchant-autocomplete",
        html,
    ) or ('id="merchant_query"' in html and "data-merchant-autocomplete" in html)
    assert '<input id="merchant_id" name="merchant_id" type="hidden"' in html
    assert 'enctype="multipart/form-data"' in html
    assert 'name="evidence"' in html and "multiple" in html
    assert "js/merchant-autocomplete.js" in html
    assert 'value="{}"'.format(parties["platform"].id) in html  # platform select


def test_filing_with_a_photo_files_the_case_and_records_the_evidence(
    app, client, parties
):
    login(client, parties["consumer"])
    data = filing_data(
        merchant_query="Kettle Shop", merchant_id=str(parties["shop"].id)
    )
    data["evidence"] = [(io.BytesIO(PNG), "leak.png")]
    data["arbitration_consent"] = "y"
    response = client.post(
        "/cases/new?lang=en", data=data, content_type="multipart/form-data"
    )
    assert response.status_code == 303
    case = only_case(app)
    assert response.headers["Location"].endswith(f"/cases/{case.id}")
    assert case.status == lc.AWAITING_MERCHANT
    assert case.amount_paid == 19900 and case.claim_amount == 19900
    assert case.arbitration_consent is True
    assert case.platform_id == parties["platform"].id

    html = page(client.get(response.headers["Location"] + "?lang=en"))
    assert case.reference in html  # the flash names the public reference
    assert f"Its reference is {case.reference}" in html
    assert 'data-testid="case-reference">' + case.reference in html
    assert 'data-status="awaiting_merchant"' in html
    for action in ("file", "route", "evidence"):
        assert f'data-event-action="{action}"' in html
    assert "leak.png" in html
    with app.app_context():
        evidence = db.session.scalars(db.select(Evidence)).one()
        assert evidence.content_type == "image/png"
        assert evidence.sha256[:16] in html
        with client.get(f"/cases/{case.id}/evidence/{evidence.id}") as download:
            assert download.status_code == 200
            assert download.data == PNG
            assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_unregistered_shop_is_filed_by_its_typed_name(app, client, parties):
    login(client, parties["consumer"])
    response = client.post(
        "/cases/new",
        data=filing_data(
            merchant_query="Unknown Tea Stall", claim_type="apology", claim_amount=""
        ),
    )
    assert response.status_code == 303
    case = only_case(app)
    assert case.merchant_id is None
    assert case.merchant_name == "Unknown Tea Stall"
    assert case.status == lc.SUBMITTED
    assert case.claim_amount == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount_paid", "12.345", "at most two decimals"),
        ("amount_paid", "abc", "Enter an amount in yuan"),
        ("claim_amount", "-5", "cannot be negative"),
        ("order_date", "2026-03-09", "cannot be in the future"),
        ("description", "", "Describe what went wrong"),
        ("description", "Broken", "at least 10 characters"),
        ("merchant_query", "", "Name the shop or choose a registered merchant"),
        ("claim_amount", "", "Enter the amount you claim"),
        ("category", "", "Choose a category."),
    ],
)
def test_filing_errors_are_shown_and_typed_values_kept(
    app, client, parties, field, value, message
):
    login(client, parties["consumer"])
    data = filing_data(merchant_query="Some Shop", order_ref="KEEP-ME-42")
    data[field] = value
    response = client.post("/cases/new?lang=en", data=data)
    assert response.status_code == 422
    html = page(response)
    assert message in html
    assert 'value="KEEP-ME-42"' in html
    if field in ("amount_paid", "claim_amount") and value:
        assert f'value="{value}"' in html  # the wrong amount is shown as typed
    assert case_count(app) == 0


def test_amounts_are_converted_to_fen_exactly(app, client, parties):
    login(client, parties["consumer"])
    data = filing_data(
        merchant_query="Some Shop", amount_paid="1,234.5", claim_amount="0.10"
    )
    assert client.post("/cases/new", data=data).status_code == 303
    case = only_case(app)
    assert (case.amount_paid, case.claim_amount) == (123450, 10)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("tool.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\xff\xff", "Only JPG, PNG"),
        ("empty.png", b"", "The file is empty"),
    ],
)
def test_a_refused_evidence_file_files_nothing(
    app, client, parties, name, content, message
):
    login(client, parties["consumer"])
    data = filing_data(
        merchant_query="Kettle Shop", merchant_id=str(parties["shop"].id)
    )
    data["evidence"] = [(io.BytesIO(PNG), "good.png"), (io.BytesIO(content), name)]
    response = client.post(
        "/cases/new?lang=en", data=data, content_type="multipart/form-data"
    )
    assert response.status_code == 422
    html = page(response)
    assert message in html
    assert 'data-testid="evidence-error"' in html
    assert 'value="JD-20260301-7788"' in html
    assert "The kettle leaks from the base" in html
    assert case_count(app) == 0
    with app.app_context():
        assert db.session.scalar(db.select(func.count(Evidence.id))) == 0
        assert db.session.scalar(db.select(func.count(CaseEvent.id))) == 0


def test_a_too_large_evidence_file_files_nothing(make_user, make_app):
    app = make_app(EVIDENCE_MAX_FILE_BYTES=1024)
    consumer = make_user("consumer")
    client = app.test_client()
    login(client, consumer)
    data = filing_data(merchant_query="Some Shop")
    data["evidence"] = [(io.BytesIO(PNG + b"\0" * 2048), "big.png")]
    response = client.post(
        "/cases/new?lang=en", data=data, content_type="multipart/form-data"
    )
    assert response.status_code == 422
    assert "A file may be at most" in page(response)
    assert case_count(app) == 0


def test_a_likely_duplicate_is_flagged_then_filed_on_confirmation(
    app, client, parties, make_case
):
    first = make_case(
        parties["consumer"], parties["shop"], order_ref="JD-20260301-7788"
    )
    login(client, parties["consumer"])
    data = filing_data(
        merchant_query="Kettle Shop", merchant_id=str(parties["shop"].id)
    )
    response = client.post("/cases/new?lang=en", data=data)
    assert response.status_code == 200
    html = page(response)
    assert 'data-testid="duplicate-warning"' in html
    assert f'href="/cases/{first}"' in html
    assert 'name="confirm_duplicate"' in html
    assert 'value="JD-20260301-7788"' in html
    assert case_count(app) == 1

    response = client.post("/cases/new", data={**data, "confirm_duplicate": "y"})
    assert response.status_code == 303
    assert case_count(app) == 2


def test_only_consumers_file_and_anonymous_visitors_sign_in_first(client, parties):
    response = client.get("/cases/new")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert "next=/cases/new" in unquote(response.headers["Location"])
    login(client, parties["merchant"])
    assert client.get("/cases/new").status_code == 403
    assert client.post("/cases/new", data=filing_data()).status_code == 403


# Lists ------------------------------------------------------------------------


def test_consumers_see_their_own_cases_newest_first(client, parties, make_case):
    older = make_case(parties["consumer"], parties["shop"], order_ref="A-1")
    clock.advance(timedelta(hours=1))
    newer = make_case(parties["consumer"], parties["shop"], order_ref="A-2")
    theirs = make_case(parties["other_consumer"], parties["shop"], order_ref="B-1")
    login(client, parties["consumer"])
    html = page(client.get("/cases"))
    ids = [
        int(i) for i in re.findall(r'data-testid="case-row" data-case-id="(\d+)"', html)
    ]
    assert ids == [newer, older]
    assert theirs not in ids


def test_merchant_inbox_is_sorted_by_deadline(app, client, parties, make_case):
    # Filed on Friday: due Wednesday. Filed on Monday: due Thursday.
    clock.freeze(datetime(2026, 3, 6, 2, 0, tzinfo=UTC))
    friday = make_case(parties["consumer"], parties["shop"], order_ref="F-1")
    clock.freeze(MONDAY + timedelta(days=7))
    monday = make_case(parties["consumer"], parties["shop"], order_ref="M-1")
    clock.freeze(MONDAY + timedelta(days=7, hours=1))
    later = make_case(parties["other_consumer"], parties["shop"], order_ref="M-2")
    make_case(parties["consumer"], parties["other_shop"], order_ref="T-1")
    login(client, parties["merchant"])
    html = page(client.get("/cases?lang=en"))
    ids = [
        int(i) for i in re.findall(r'data-testid="case-row" data-case-id="(\d+)"', html)
    ]
    assert ids == [friday, monday, later]
    # The deadline is the first column of the inbox.
    first_row = html.split('data-testid="case-row"')[1]
    assert first_row.index('data-testid="case-deadline"') < first_row.index("/cases/")


def test_overdue_deadlines_are_highlighted(client, parties, make_case):
    make_case(parties["consumer"], parties["shop"])
    clock.advance(timedelta(days=10))
    login(client, parties["merchant"])
    html = page(client.get("/cases?lang=en"))
    assert 'data-overdue="true"' in html
    assert "Overdue" in html


def test_case_list_filters_by_status_and_pages(app, client, parties, make_case):
    app.config["PAGE_SIZE"] = 2
    ids = [
        make_case(parties["consumer"], parties["shop"], order_ref=f"P-{i}")
        for i in range(3)
    ]
    intake_case = make_case(parties["consumer"], None, merchant_name="Nowhere Shop")
    login(client, parties["regulator"])
    html = page(client.get("/cases?status=submitted"))
    assert re.findall(r'data-case-id="(\d+)"', html) == [str(intake_case)]
    html = page(client.get("/cases?status=awaiting_merchant&page=2"))
    assert len(re.findall(r'data-testid="case-row"', html)) == 1
    assert "status=awaiting_merchant" in html  # the pager keeps the filter
    html = page(client.get("/cases?category=delivery"))
    assert 'data-testid="no-cases"' in html
    assert ids


def test_mediators_see_the_queue_and_their_own_cases(app, client, parties, make_case):
    from mediation.auth.models import User
    from mediation.cases.services import apply_action

    waiting = make_case(parties["consumer"], parties["shop"], order_ref="Q-1")
    untouched = make_case(parties["consumer"], parties["shop"], order_ref="Q-2")
    with app.app_context():
        case = db.session.get(Case, waiting)
        merchant = db.session.get(User, parties["merchant"].id)
        apply_action(
            case,
            "reject",
            {"reason": "Not our product."},
            actor=merchant,
            relation="merchant",
            now=clock.now_utc(),
        )
        db.session.commit()
    login(client, parties["mediator"])
    html = page(client.get("/cases"))
    ids = re.findall(r'data-testid="case-row" data-case-id="(\d+)"', html)
    assert ids == [str(waiting)]
    assert client.get(f"/cases/{untouched}").status_code == 404


# Intake -----------------------------------------------------------------------


def test_regulator_links_an_intake_case_to_a_registered_shop(
    app, client, parties, make_case
):
    case_id = make_case(parties["consumer"], None, merchant_name="kettle shop online")
    login(client, parties["regulator"])
    response = client.get("/cases/intake?lang=en")
    html = page(response)
    assert response.status_code == 200
    assert f'data-testid="intake-item" data-case-id="{case_id}"' in html
    assert 'data-action="link_merchant"' in html and 'data-action="dismiss"' in html
    assert f'id="link_merchant-merchant_id-{case_id}"' in html

    response = client.post(
        f"/cases/{case_id}/actions/link_merchant",
        data={
            "link_merchant-merchant_id": str(parties["shop"].id),
            "next": "/cases/intake",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/cases/intake")
    case = only_case(app)
    assert case.merchant_id == parties["shop"].id
    assert case.status == lc.AWAITING_MERCHANT
    assert 'data-testid="intake-empty"' in page(client.get("/cases/intake"))
    login(client, parties["merchant"])
    assert 'data-event-action="link_merchant"' in page(client.get(f"/cases/{case_id}"))


def test_regulator_dismisses_an_intake_case_with_a_reason(
    app, client, parties, make_case
):
    case_id = make_case(parties["consumer"], None, merchant_name="Offline market stall")
    login(client, parties["regulator"])
    response = client.post(
        f"/cases/{case_id}/actions/dismiss?lang=en", data={"dismiss-reason": ""}
    )
    assert response.status_code == 422
    assert "Give a reason." in page(response)
    assert only_case(app).status == lc.SUBMITTED
    response = client.post(
        f"/cases/{case_id}/actions/dismiss",
        data={"dismiss-reason": "An offline purchase: out of scope."},
    )
    assert response.status_code == 303
    assert only_case(app).status == lc.REJECTED
    login(client, parties["consumer"])
    html = page(client.get(f"/cases/{case_id}"))
    assert 'data-event-action="dismiss"' in html
    assert "An offline purchase: out of scope." in html


def test_intake_is_for_regulators_only(client, parties):
    login(client, parties["consumer"])
    assert client.get("/cases/intake").status_code == 403


# Amending --------------------------------------------------------------------


def test_amending_creates_version_two_shown_on_the_case_page(
    app, client, parties, make_case
):
    case_id = make_case(parties["consumer"], parties["shop"], amount_paid=19900)
    login(client, parties["consumer"])
    response = client.get(f"/cases/{case_id}/amend")
    assert response.status_code == 200
    html = page(response)
    assert 'value="199.00"' in html  # prefilled in yuan
    assert 'value="ORDER-1"' in html

    form = {
        "category": "quality_defect",
        "order_ref": "ORDER-1",
        "order_date": "2026-01-05",
        "amount_paid": "199.00",
        "claim_type": "refund",
        "claim_amount": "199.00",
        "description": "The kettle leaks and the handle came off as well.",
    }
    response = client.post(f"/cases/{case_id}/amend?lang=en", data=form)
    assert response.status_code == 303
    case = only_case(app)
    assert case.version == 2
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert "version 2" in html
    assert 'data-testid="version" data-version="1"' in html
    assert 'data-testid="version" data-version="2"' in html
    assert 'data-changed="description"' in html
    assert 'data-changed="amount_paid"' not in html
    assert "The kettle leaks after two days of use." in html  # v1 is still shown
    assert 'data-event-action="amend"' in html
    with app.app_context():
        event = db.session.scalars(
            db.select(CaseEvent).where(CaseEvent.action == "amend")
        ).one()
        assert list(event.data["changes"]) == ["description"]

    # Saving without a change says so, and files no version.
    response = client.post(
        f"/cases/{case_id}/amend?lang=en",
        data={
            **form,
            "description": "The kettle leaks and the handle came off as well.",
        },
    )
    assert response.status_code == 422
    assert "Nothing was changed." in page(response)
    assert only_case(app).version == 2


def test_amending_is_refused_after_the_merchant_answered(
    app, client, parties, make_case
):
    from mediation.auth.models import User
    from mediation.cases.services import apply_action

    case_id = make_case(parties["consumer"], parties["shop"])
    with app.app_context():
        apply_action(
            db.session.get(Case, case_id),
            "offer",
            {
                "type": "refund",
                "amount": 100,
                "deadline": date(2026, 3, 20),
                "text": "Partial refund",
            },
            actor=db.session.get(User, parties["merchant"].id),
            relation="merchant",
            now=clock.now_utc(),
        )
        db.session.commit()
    login(client, parties["consumer"])
    response = client.get(f"/cases/{case_id}/amend")
    assert response.status_code == 303
    assert 'data-action="amend"' not in page(client.get(f"/cases/{case_id}"))


# Access -------------------------------------------------------------------------


def test_strangers_get_404_on_the_case_its_evidence_and_its_actions(
    app, client, parties, make_case
):
    login(client, parties["consumer"])
    data = filing_data(
        merchant_query="Kettle Shop", merchant_id=str(parties["shop"].id)
    )
    data["evidence"] = [(io.BytesIO(PNG), "leak.png")]
    client.post("/cases/new", data=data, content_type="multipart/form-data")
    case = only_case(app)
    with app.app_context():
        evidence_id = db.session.scalar(db.select(Evidence.id))
    for stranger in ("other_consumer", "other_merchant", "mediator"):
        login(client, parties[stranger])
        assert client.get(f"/cases/{case.id}").status_code == 404
        assert client.get(f"/cases/{case.id}/evidence/{evidence_id}").status_code == 404
        assert client.get(f"/cases/{case.id}/amend").status_code == 404
        response = client.post(
            f"/cases/{case.id}/actions/withdraw", data={"withdraw-reason": "mine now"}
        )
        assert response.status_code == 404
        response = client.post(
            f"/cases/{case.id}/evidence",
            data={"evidence": [(io.BytesIO(PNG), "x.png")]},
            content_type="multipart/form-data",
        )
        assert response.status_code == 404
    assert only_case(app).status == lc.AWAITING_MERCHANT
    # Evidence of another case is not reachable through this one.
    login(client, parties["consumer"])
    assert (
        client.get(f"/cases/{case.id}/evidence/{evidence_id + 99}").status_code == 404
    )


def test_the_merchant_sees_the_consumer_name_but_no_contact_details(
    client, parties, make_case
):
    case_id = make_case(parties["consumer"], parties["shop"])
    login(client, parties["merchant"])
    html = page(client.get(f"/cases/{case_id}"))
    assert "Zhang San" in html
    assert parties["consumer"].email not in html


def test_anonymous_visitors_are_sent_to_sign_in(client, parties, make_case):
    case_id = make_case(parties["consumer"], parties["shop"])
    response = client.get(f"/cases/{case_id}")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    response = client.post(f"/cases/{case_id}/actions/withdraw", data={})
    assert response.status_code in (302, 303)
    assert "/login" in response.headers["Location"]


def test_forms_without_the_csrf_token_are_refused(make_user, make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    consumer = make_user("consumer")
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = f"{consumer.id}:{consumer.session_nonce}"
        session["_fresh"] = True
    response = client.post("/cases/new", data=filing_data(merchant_query="Some Shop"))
    assert response.status_code == 400
    assert case_count(app) == 0
    # With the token from the page, the same form is accepted.
    html = page(client.get("/cases/new"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post(
        "/cases/new",
        data={**filing_data(merchant_query="Some Shop"), "csrf_token": token},
    )
    assert response.status_code == 303
    assert case_count(app) == 1
    # The case page's action forms carry their own (prefixed) token.
    case_url = response.headers["Location"]
    response = client.post(
        case_url + "/actions/withdraw", data={"withdraw-reason": "x"}
    )
    assert response.status_code == 400
    html = page(client.get(case_url))
    token = re.search(
        r'name="withdraw-csrf_token" type="hidden" value="([^"]+)"', html
    ).group(1)
    response = client.post(
        case_url + "/actions/withdraw",
        data={"withdraw-reason": "Settled by phone.", "withdraw-csrf_token": token},
    )
    assert response.status_code == 303
    assert only_case(app).status == lc.WITHDRAWN


def test_an_id_beyond_the_database_range_is_a_404(client, auth, make_user):
    user = make_user("consumer")
    auth.login(user)
    for url in (
        "/cases/99999999999",
        "/cases/99999999999/file",
        "/merchants/99999999999",
    ):
        assert client.get(url).status_code == 404, url
