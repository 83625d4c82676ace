"""The arbitration pages: the arbitrators' workspace, the case file, and the
arbitration forms of the case page (posted like a browser does)."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from mediation import clock
from mediation.arbitration.models import Award, AwardCorrection, InfoRequest, Objection
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.evidence import add_evidence
from mediation.cases.models import Case
from mediation.chat import services as chat_services
from mediation.extensions import db
from tests.conftest import PASSWORD

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
#: Dates typed into the forms (the Monday is 2026-03-02 in Shanghai).
NEXT_WEEK = "2026-03-09"
YESTERDAY = "2026-03-01"


@pytest.fixture(autouse=True)
def _monday():
    clock.freeze(MONDAY)
    yield
    clock.unfreeze()


@pytest.fixture()
def people(make_user, make_merchant):
    shop = make_merchant(name="Kettle Shop", arbitration_consent=True)
    return {
        "shop": shop,
        "consumer": make_user("consumer", name="Zhang San"),
        "merchant": make_user("merchant", merchant_id=shop.id, name="Kettle Staff"),
        "mediator": make_user("mediator", name="Max Mediator"),
        "ada": make_user("arbitrator", name="Ada Arbitrator"),
        "ben": make_user("arbitrator", name="Ben Arbitrator"),
        "regulator": make_user("regulator", name="Rui Regulator"),
    }


# Helpers -------------------------------------------------------------------------


def login(client, user) -> None:
    client.post("/logout")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.status_code


def page(response) -> str:
    return response.get_data(as_text=True)


def flashes(client) -> list[tuple[str, str]]:
    with client.session_transaction() as session:
        return list(session.pop("_flashes", []))


def apply(app, case_id: int, action: str, user, relation: str, **payload) -> None:
    """Apply an action through the service and commit (test set-up)."""
    with app.app_context():
        case = db.session.get(Case, case_id)
        actor = db.session.get(User, user.id) if user is not None else None
        services.apply_action(
            case, action, payload, actor=actor, relation=relation, now=clock.now_utc()
        )
        db.session.commit()


def to_arbitration(app, make_case, people, *, mediator=None, **kw) -> int:
    """File a case (both consent), the merchant rejects, mediation fails: the
    case waits for an arbitrator."""
    case_id = make_case(
        people["consumer"], people["shop"], arbitration_consent=True, **kw
    )
    apply(app, case_id, "reject", people["merchant"], "merchant", reason="No.")
    mediator = mediator or people["mediator"]
    apply(app, case_id, "take", mediator, "mediator")
    apply(app, case_id, "end_mediation", mediator, "mediator", reason="Stuck.")
    return case_id


def assigned(app, make_case, people, arbitrator="ada", **kw) -> int:
    """A case in arbitration taken by ``arbitrator``."""
    case_id = to_arbitration(app, make_case, people, **kw)
    apply(app, case_id, "take", people[arbitrator], "arbitrator")
    return case_id


def load(app, case_id: int) -> Case:
    with app.app_context():
        case = db.session.get(Case, case_id)
        db.session.expunge(case)
        return case


def rows(app, model, case_id: int) -> list:
    with app.app_context():
        found = list(
            db.session.scalars(
                db.select(model).where(model.case_id == case_id).order_by(model.id)
            ).all()
        )
        db.session.expunge_all()
        return found


def row_ids(html: str, testid: str) -> list[int]:
    return [
        int(i)
        for i in re.findall(rf'data-testid="{testid}" data-case-id="(\d+)"', html)
    ]


def evidence(app, case_id: int, user, relation: str, name: str, body: bytes) -> int:
    with app.app_context():
        item = add_evidence(
            db.session.get(Case, case_id),
            io.BytesIO(body),
            name,
            actor=db.session.get(User, user.id),
            relation=relation,
            now=clock.now_utc(),
        )
        db.session.commit()
        return item.id


def award_form(prefix: str = "issue_award", **overrides) -> dict[str, str]:
    """A good award form: one refund order, two empty rows."""
    data = {
        f"{prefix}-decision": "granted",
        f"{prefix}-findings": "The kettle leaked; the shop refused the return.",
        f"{prefix}-reasons": "A product that leaks is defective.",
        f"{prefix}-orders-0-type": "refund",
        f"{prefix}-orders-0-amount": "199.50",
        f"{prefix}-orders-0-deadline": NEXT_WEEK,
        f"{prefix}-orders-0-text": "Refund the price to the original payment method.",
        f"{prefix}-orders-1-type": "apology",
        f"{prefix}-orders-1-amount": "",
        f"{prefix}-orders-1-deadline": "",
        f"{prefix}-orders-1-text": "",
        f"{prefix}-orders-2-type": "refund",
        f"{prefix}-orders-2-amount": "",
        f"{prefix}-orders-2-deadline": "",
        f"{prefix}-orders-2-text": "",
    }
    data.update(overrides)
    return data


def part(html: str, testid: str, end: str = "</form>") -> str:
    """Return the markup from the element with ``testid`` to ``end``."""
    return html.split(f'data-testid="{testid}"')[1].split(end)[0]


def post(client, case_id: int, action: str, data: dict[str, str]):
    return client.post(f"/cases/{case_id}/actions/{action}?lang=en", data=data)


def refused(response, *messages: str) -> str:
    """Assert a form error (422, the case page again) and return the page."""
    assert response.status_code == 422, response.status_code
    html = page(response)
    for message in messages:
        assert message in html, message
    return html


def done(client, response, message: str) -> None:
    assert response.status_code == 303, page(response)
    assert ("success", message) in flashes(client)


# The workspace -------------------------------------------------------------------


def test_the_queue_lists_waiting_cases_by_deadline_but_not_those_i_mediated(
    app, client, make_case, people, make_user
):
    # A mediator who later became an arbitrator: never the arbitrator of a case
    # they mediated.
    mo = make_user("mediator", name="Mo Mediator")
    mediated_by_mo = to_arbitration(app, make_case, people, mediator=mo, order_ref="MO")
    clock.advance(timedelta(days=1))
    later = to_arbitration(app, make_case, people, order_ref="LATER")
    first = mediated_by_mo
    taken = assigned(app, make_case, people, arbitrator="ben", order_ref="BEN")
    with app.app_context():
        db.session.get(User, mo.id).role = "arbitrator"
        db.session.commit()

    login(client, mo)
    html = page(client.get("/arbitration?lang=en"))
    assert row_ids(html, "queue-row") == [later]
    assert 'data-testid="caseload-empty"' in html

    login(client, people["ada"])
    html = page(client.get("/arbitration?lang=en"))
    assert row_ids(html, "queue-row") == [first, later]
    assert taken not in row_ids(html, "queue-row")
    assert 'data-testid="nav-arbitration"' in html
    # The category filter: nothing waits in another category.
    html = page(client.get("/arbitration?category=delivery&lang=en"))
    assert row_ids(html, "queue-row") == []
    assert 'data-testid="queue-empty"' in html
    assert client.get("/arbitration?category=%3Cscript%3E").status_code == 200


def test_take_from_the_workspace_then_the_case_is_in_my_caseload(
    app, client, make_case, people
):
    case_id = to_arbitration(app, make_case, people)
    app.config["WTF_CSRF_ENABLED"] = True
    token = re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', page(client.get("/login"))
    ).group(1)
    client.post(
        "/login",
        data={"email": people["ada"].email, "password": PASSWORD, "csrf_token": token},
    )
    html = page(client.get("/arbitration?lang=en"))
    assert re.search(
        rf'<form method="post" action="/cases/{case_id}/actions/take"[^>]*'
        r'data-testid="take-form"',
        html,
    )
    form = part(html, "take-form")
    name, value = re.search(
        r'<input type="hidden" name="([^"]+)" value="([^"]+)">', form
    ).groups()
    response = client.post(f"/cases/{case_id}/actions/take?lang=en", data={name: value})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/cases/{case_id}")
    assert load(app, case_id).arbitrator_id == people["ada"].id

    html = page(client.get("/arbitration?lang=en"))
    assert row_ids(html, "queue-row") == []
    assert row_ids(html, "caseload-row") == [case_id]


def test_the_caseload_shows_status_requests_and_corrections(
    app, client, make_case, people
):
    asking = assigned(app, make_case, people, order_ref="ASK")
    apply(
        app,
        asking,
        "request_info",
        people["ada"],
        "arbitrator",
        party="merchant",
        question="Send the delivery record.",
        deadline=date(2026, 3, 6),
    )
    awarded = assigned(app, make_case, people, order_ref="AWARD")
    apply(
        app,
        awarded,
        "issue_award",
        people["ada"],
        "arbitrator",
        decision="granted",
        findings="Leaks.",
        reasons="Defective.",
        orders=[
            {
                "type": "refund",
                "amount": 19900,
                "deadline": date(2026, 3, 9),
                "text": "Refund.",
            }
        ],
    )
    apply(
        app,
        awarded,
        "request_correction",
        people["consumer"],
        "consumer",
        reason="The amount is 199.50, not 199.00.",
    )
    others = assigned(app, make_case, people, arbitrator="ben", order_ref="BEN")

    login(client, people["ada"])
    html = page(client.get("/arbitration?lang=en"))
    assert sorted(row_ids(html, "caseload-row")) == sorted([asking, awarded])
    assert others not in row_ids(html, "caseload-row")
    assert re.search(rf'data-case-id="{asking}"[^>]*data-status="in_arbitration"', html)
    row = html.split(f'data-case-id="{asking}"')[1].split("</tr>")[0]
    assert 'data-testid="open-info-requests" data-count="1"' in row
    assert "1 open information request" in row
    row = html.split(f'data-case-id="{awarded}"')[1].split("</tr>")[0]
    assert 'data-testid="open-corrections" data-count="1"' in row
    assert 'data-testid="correction-window"' in row
    assert "Awarded" in row


def test_a_late_take_sends_the_arbitrator_back_to_the_workspace(
    app, client, make_case, people
):
    case_id = assigned(app, make_case, people, arbitrator="ben")
    login(client, people["ada"])
    response = client.post(f"/cases/{case_id}/actions/take?lang=en")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/arbitration")
    assert ("error", "Someone else took this case a moment ago.") in flashes(client)


def test_regulators_see_every_arbitration_case_and_others_may_not(
    app, client, make_case, people
):
    waiting = to_arbitration(app, make_case, people, order_ref="WAIT")
    taken = assigned(app, make_case, people, order_ref="TAKEN")
    apply(
        app, taken, "object_arbitrator", people["consumer"], "consumer", reason="Bias."
    )
    make_case(people["consumer"], people["shop"], order_ref="NEW")

    login(client, people["regulator"])
    html = page(client.get("/arbitration?lang=en"))
    assert sorted(row_ids(html, "overview-row")) == sorted([waiting, taken])
    assert 'data-testid="take-form"' not in html
    row = html.split(f'data-case-id="{taken}"')[1].split("</tr>")[0]
    assert 'data-testid="open-objection"' in row
    assert "Ada Arbitrator" in row
    assert 'data-testid="nav-arbitration"' in html

    assert client.get("/arbitration", follow_redirects=False).status_code == 200
    client.post("/logout")
    assert client.get("/arbitration").status_code == 302
    for who in ("consumer", "merchant", "mediator"):
        login(client, people[who])
        assert client.get("/arbitration").status_code == 403, who
        assert 'href="/arbitration"' not in page(client.get("/"))


# The case file -------------------------------------------------------------------


def _case_with_history(app, make_case, people) -> dict:
    """A case amended once, with evidence and chat in both kinds of rooms, then
    in arbitration with Ada."""
    case_id = make_case(
        people["consumer"], people["shop"], arbitration_consent=True, order_ref="FILE"
    )
    apply(
        app,
        case_id,
        "amend",
        people["consumer"],
        "consumer",
        description="The kettle leaks and the lid broke.",
    )
    receipt = evidence(
        app, case_id, people["consumer"], "consumer", "receipt.txt", b"Receipt 199.00\n"
    )
    apply(app, case_id, "reject", people["merchant"], "merchant", reason="No.")
    apply(app, case_id, "take", people["mediator"], "mediator")
    with app.app_context():
        case = db.session.get(Case, case_id)
        for room, author, body, n in (
            ("joint", "consumer", "JOINT: the kettle leaked twice.", 1),
            ("caucus:consumer", "consumer", "CAUCUS: I would take 150.", 2),
            ("caucus:merchant", "merchant", "CAUCUS: we could pay 120.", 3),
        ):
            chat_services.post_message(
                case,
                room=room,
                author=db.session.get(User, people[author].id),
                body=body,
                client_id=f"file-{n}",
                now=clock.now_utc(),
            )
        db.session.commit()
    apply(
        app, case_id, "end_mediation", people["mediator"], "mediator", reason="Stuck."
    )
    with app.app_context():
        sha = db.session.get(Case, case_id).evidence[0].sha256
    return {"case_id": case_id, "receipt": receipt, "sha": sha}


def test_the_case_file_shows_versions_evidence_joint_transcript_and_hashes(
    app, client, make_case, people
):
    world = _case_with_history(app, make_case, people)
    case_id = world["case_id"]
    apply(app, case_id, "take", people["ada"], "arbitrator")

    login(client, people["ada"])
    response = client.get(f"/cases/{case_id}/file?lang=en")
    assert response.status_code == 200
    html = page(response)
    # Both versions, the change marked.
    assert re.findall(r'data-testid="version" data-version="(\d)"', html) == ["1", "2"]
    assert 'data-changed="description"' in html
    assert "The kettle leaks and the lid broke." in html
    # Evidence with its full hash and a download link.
    assert world["sha"] in html
    assert f"/cases/{case_id}/evidence/{world['receipt']}" in html
    # The joint room, never a caucus.
    assert "JOINT: the kettle leaked twice." in html
    assert "CAUCUS" not in html
    # The timeline with every event's full hash, and the chain checked.
    with app.app_context():
        hashes = [e.hash for e in db.session.get(Case, case_id).events]
    assert hashes and all(h in html for h in hashes)
    assert 'data-testid="chain-status" data-intact="true"' in html
    assert "Offers and proposals" in html
    # The case page links to the file.
    assert f'href="/cases/{case_id}/file"' in page(client.get(f"/cases/{case_id}"))


def test_who_may_read_the_case_file(app, client, make_case, people, make_user):
    world = _case_with_history(app, make_case, people)
    case_id = world["case_id"]
    url = f"/cases/{case_id}/file"
    # Waiting in the queue: any arbitrator may read it before taking it.
    for who in ("ada", "ben", "consumer", "merchant", "regulator"):
        login(client, people[who])
        assert client.get(url).status_code == 200, who
    # The case's mediator has the case page; the file is not theirs.
    login(client, people["mediator"])
    assert client.get(url).status_code == 403
    apply(app, case_id, "take", people["ada"], "arbitrator")
    login(client, people["ben"])
    assert client.get(url).status_code == 404
    stranger = make_user("consumer", name="Li Si")
    login(client, stranger)
    assert client.get(url).status_code == 404
    client.post("/logout")
    assert client.get(url).status_code == 302
    # Unknown case.
    login(client, people["regulator"])
    assert client.get("/cases/999999/file").status_code == 404


# The forms of the case page --------------------------------------------------------


def test_request_info_and_answer_it_with_files_of_the_case(
    app, client, make_case, people
):
    case_id = assigned(app, make_case, people)
    login(client, people["ada"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-testid="action-form-request_info"' in html

    refused(
        post(client, case_id, "request_info", {"request_info-question": "Why?"}),
        "Choose the consumer or the merchant.",
        "Give the last day to answer.",
    )
    refused(
        post(
            client,
            case_id,
            "request_info",
            {
                "request_info-party": "merchant",
                "request_info-question": "Send the delivery record.",
                "request_info-deadline": YESTERDAY,
            },
        ),
        "The deadline cannot be in the past.",
    )
    refused(
        post(
            client,
            case_id,
            "request_info",
            {
                "request_info-party": "merchant",
                "request_info-question": "",
                "request_info-deadline": "not a date",
            },
        ),
        "Say what you need to know or see.",
    )
    done(
        client,
        post(
            client,
            case_id,
            "request_info",
            {
                "request_info-party": "merchant",
                "request_info-question": "Send the delivery record.",
                "request_info-deadline": NEXT_WEEK,
            },
        ),
        "Request sent: the award deadline stops until the answer.",
    )
    (request,) = rows(app, InfoRequest, case_id)
    assert (request.party, request.deadline) == ("merchant", date(2026, 3, 9))
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert "Send the delivery record." in html
    assert 'data-testid="info-request"' in html

    # The merchant answers, with a file of the case.
    record = evidence(
        app, case_id, people["merchant"], "merchant", "delivery.txt", b"Delivered 3/1\n"
    )
    login(client, people["merchant"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    form = part(html, "action-form-answer_info")
    assert f'value="{record}"' in form and 'type="checkbox"' in form
    refused(
        post(client, case_id, "answer_info", {"answer_info-text": ""}),
        "Write your answer.",
    )
    refused(
        post(
            client,
            case_id,
            "answer_info",
            {"answer_info-text": "Here.", "answer_info-evidence_ids": "99999"},
        )
    )
    refused(
        post(
            client,
            case_id,
            "answer_info",
            {"answer_info-text": "Here.", "answer_info-evidence_ids": "x"},
        )
    )
    done(
        client,
        post(
            client,
            case_id,
            "answer_info",
            {
                "answer_info-request_id": str(request.id),
                "answer_info-text": "The record is attached.",
                "answer_info-evidence_ids": str(record),
            },
        ),
        "Your answer was sent to the arbitrator.",
    )
    (request,) = rows(app, InfoRequest, case_id)
    assert request.status == "answered"
    assert request.answer_evidence_ids == [record]
    html = page(client.get(f"/cases/{case_id}/file?lang=en"))
    assert "The record is attached." in html and "delivery.txt" in html


def test_object_to_the_arbitrator_and_a_regulator_decides(
    app, client, make_case, people
):
    case_id = assigned(app, make_case, people)
    login(client, people["consumer"])
    refused(
        post(client, case_id, "object_arbitrator", {"object_arbitrator-reason": ""}),
        "Give a reason.",
    )
    done(
        client,
        post(
            client,
            case_id,
            "object_arbitrator",
            {"object_arbitrator-reason": "The arbitrator knows the shop owner."},
        ),
        "Your objection was sent to the regulator.",
    )

    login(client, people["regulator"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    form = part(html, "action-form-decide_objection")
    # The new arbitrator: not the one objected to, not the case's mediator.
    assert "Ben Arbitrator" in form and "Ada Arbitrator" not in form
    refused(
        post(
            client,
            case_id,
            "decide_objection",
            {"decide_objection-decision": "upheld", "decide_objection-reason": "Yes."},
        ),
        "Choose the arbitrator who takes over.",
    )
    refused(
        post(
            client,
            case_id,
            "decide_objection",
            {
                "decide_objection-decision": "upheld",
                "decide_objection-reason": "Yes.",
                "decide_objection-user_id": str(people["ada"].id),
            },
        ),
        "Choose another arbitrator",
    )
    refused(
        post(client, case_id, "decide_objection", {"decide_objection-reason": "?"}),
        "Uphold or dismiss the objection.",
    )
    done(
        client,
        post(
            client,
            case_id,
            "decide_objection",
            {
                "decide_objection-decision": "upheld",
                "decide_objection-reason": "A personal relation is a conflict.",
                "decide_objection-user_id": str(people["ben"].id),
            },
        ),
        "The objection was decided.",
    )
    assert load(app, case_id).arbitrator_id == people["ben"].id
    (objection,) = rows(app, Objection, case_id)
    assert (objection.status, objection.replacement_id) == ("upheld", people["ben"].id)
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-testid="objection-decision"' in html
    assert "new arbitrator: Ben Arbitrator" in html


def test_a_regulator_dismisses_an_objection(app, client, make_case, people):
    case_id = assigned(app, make_case, people)
    apply(app, case_id, "object_arbitrator", people["merchant"], "merchant", reason="?")
    login(client, people["regulator"])
    done(
        client,
        post(
            client,
            case_id,
            "decide_objection",
            {
                "decide_objection-decision": "dismissed",
                "decide_objection-reason": "No reason to doubt.",
            },
        ),
        "The objection was decided.",
    )
    assert load(app, case_id).arbitrator_id == people["ada"].id
    assert rows(app, Objection, case_id)[0].status == "dismissed"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"issue_award-findings": ""}, "Write the findings."),
        ({"issue_award-decision": ""}, "Choose the decision."),
        ({"issue_award-decision": "maybe"}, "Choose the decision."),
        ({"issue_award-orders-0-amount": "abc"}, "Enter an amount in yuan"),
        ({"issue_award-orders-0-amount": "-5"}, "Amounts cannot be negative."),
        ({"issue_award-orders-0-amount": ""}, "Enter the amount."),
        (
            {"issue_award-orders-0-deadline": YESTERDAY},
            "The deadline cannot be in the past.",
        ),
        (
            {"issue_award-orders-0-deadline": ""},
            "Give a date by which it will be done.",
        ),
        ({"issue_award-orders-0-text": ""}, "Say what is ordered."),
        ({"issue_award-orders-0-type": "bribe"}, "Not a valid choice"),
        (
            {
                "issue_award-orders-0-amount": "",
                "issue_award-orders-0-deadline": "",
                "issue_award-orders-0-text": "",
            },
            "An award that grants the claim orders something.",
        ),
    ],
)
def test_a_bad_award_form_is_shown_again_with_its_errors(
    app, client, make_case, people, overrides, message
):
    case_id = assigned(app, make_case, people)
    login(client, people["ada"])
    html = refused(
        post(client, case_id, "issue_award", award_form(**overrides)), message
    )
    # What was typed stays in the form.
    assert (
        "A product that leaks is defective." in html
        or overrides.get("issue_award-reasons") == ""
    )
    assert load(app, case_id).status == "in_arbitration"
    assert rows(app, Award, case_id) == []


def test_issue_request_and_make_a_correction_of_the_award(
    app, client, make_case, people
):
    case_id = assigned(app, make_case, people)
    login(client, people["ada"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    form = part(html, "action-form-issue_award")
    assert form.count('data-testid="order-row"') == 3
    done(
        client,
        post(client, case_id, "issue_award", award_form()),
        "The award was issued.",
    )
    (award,) = rows(app, Award, case_id)
    assert award.decision == "granted"
    assert award.orders == [
        {
            "type": "refund",
            "amount": 19950,
            "deadline": "2026-03-09",
            "text": "Refund the price to the original payment method.",
        }
    ]
    assert load(app, case_id).status == "awarded"

    # Everyone reading the case page sees the award and the correction window.
    login(client, people["consumer"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    summary = part(html, "award-summary", "</section>")
    assert award.sha256 in summary
    assert "¥199.50" in summary
    assert "may be requested until" in summary
    assert 'data-final="false"' in html
    if "arbitration.award_page" in app.view_functions:
        assert f'href="/cases/{case_id}/award"' in summary
        assert f'href="/cases/{case_id}/award.pdf"' in summary

    refused(
        post(client, case_id, "request_correction", {"request_correction-reason": ""}),
        "Give a reason.",
    )
    done(
        client,
        post(
            client,
            case_id,
            "request_correction",
            {"request_correction-reason": "The refund is 199.00, not 199.50."},
        ),
        "Your correction request was sent to the arbitrator.",
    )

    # The arbitrator's correction form starts from the award in force.
    login(client, people["ada"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    form = part(html, "action-form-correct_award")
    assert "A product that leaks is defective." in form
    assert 'value="199.50"' in form and 'value="2026-03-09"' in form
    assert form.count('data-testid="order-row"') == 3
    assert 'data-testid="action-form-refuse_correction"' in html
    refused(
        post(
            client,
            case_id,
            "correct_award",
            award_form("correct_award", **{"correct_award-reasons": ""}),
        ),
        "Write the reasons.",
    )
    done(
        client,
        post(
            client,
            case_id,
            "correct_award",
            award_form(
                "correct_award",
                **{
                    "correct_award-orders-0-amount": "199.00",
                    "correct_award-reason": "The refund was miscalculated.",
                },
            ),
        ),
        "The award was corrected: a new version was issued.",
    )
    first, second = rows(app, Award, case_id)
    assert second.version == 2 and second.orders[0]["amount"] == 19900
    assert second.content["corrects"] == first.sha256
    (correction,) = rows(app, AwardCorrection, case_id)
    assert correction.status == "upheld"
    assert correction.decision_reason == "The refund was miscalculated."
    html = page(client.get(f"/cases/{case_id}/file?lang=en"))
    assert first.sha256 in html and second.sha256 in html


def test_the_arbitrator_refuses_a_correction(app, client, make_case, people):
    case_id = assigned(app, make_case, people)
    apply(
        app,
        case_id,
        "issue_award",
        people["ada"],
        "arbitrator",
        decision="rejected",
        findings="No defect shown.",
        reasons="No evidence.",
        orders=[],
    )
    apply(
        app, case_id, "request_correction", people["merchant"], "merchant", reason="?"
    )
    login(client, people["ada"])
    refused(
        post(client, case_id, "refuse_correction", {"refuse_correction-reason": ""}),
        "Give a reason.",
    )
    done(
        client,
        post(
            client,
            case_id,
            "refuse_correction",
            {"refuse_correction-reason": "There is no clerical error."},
        ),
        "The correction was refused.",
    )
    (correction,) = rows(app, AwardCorrection, case_id)
    assert correction.status == "dismissed"
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert "There is no clerical error." in html


def test_the_award_becomes_final_after_the_correction_window(
    app, client, make_case, people
):
    case_id = assigned(app, make_case, people)
    apply(
        app,
        case_id,
        "issue_award",
        people["ada"],
        "arbitrator",
        decision="rejected",
        findings="No defect shown.",
        reasons="No evidence.",
        orders=[],
    )
    clock.advance(timedelta(days=14))
    login(client, people["consumer"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    assert 'data-final="true"' in html
    assert "The award is final" in html
    assert 'data-testid="action-form-request_correction"' not in html


def test_consent_to_arbitration_is_one_button_with_an_explanation(
    app, client, make_case, people
):
    case_id = make_case(people["consumer"], people["shop"], arbitration_consent=False)
    login(client, people["consumer"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    block = part(html, "action-consent_arbitration")
    assert "an arbitrator decides the case with a binding award" in block
    assert "<textarea" not in block
    assert 'data-action="consent_arbitration"' in block
    done(
        client,
        post(client, case_id, "consent_arbitration", {}),
        "Your consent to arbitration was recorded.",
    )
    assert load(app, case_id).arbitration_consent is True


def test_arbitration_actions_refused_to_the_wrong_people(
    app, client, make_case, people
):
    case_id = assigned(app, make_case, people)
    login(client, people["consumer"])
    response = post(
        client,
        case_id,
        "request_info",
        {
            "request_info-party": "merchant",
            "request_info-question": "?",
            "request_info-deadline": NEXT_WEEK,
        },
    )
    assert response.status_code == 303
    assert flashes(client)[0][0] == "error"
    login(client, people["ben"])
    assert post(client, case_id, "issue_award", award_form()).status_code == 404
    assert rows(app, InfoRequest, case_id) == []
