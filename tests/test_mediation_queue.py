"""The mediators' workspace: the queue, taking a case (also in a race), the
caseload, reassignment, and what a mediator may see."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case, CaseEvent
from mediation.extensions import db
from tests.conftest import PASSWORD

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


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
        "other_consumer": make_user("consumer", name="Li Si"),
        "merchant": make_user("merchant", merchant_id=shop.id, name="Kettle Staff"),
        "mia": make_user("mediator", name="Mia Mediator", categories=["delivery"]),
        "max": make_user("mediator", name="Max Mediator"),
        "arbitrator": make_user("arbitrator", name="Ada Arbitrator"),
        "regulator": make_user("regulator", name="Rui Regulator"),
    }


def login(client, user) -> None:
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.status_code


def page(response) -> str:
    return response.get_data(as_text=True)


def flashes(client) -> list[tuple[str, str]]:
    with client.session_transaction() as session:
        return list(session.pop("_flashes", []))


def apply(app, case_id: int, action: str, user, relation: str, **payload) -> Case:
    """Apply an action through the service and commit (test set-up)."""
    with app.app_context():
        case = db.session.get(Case, case_id)
        actor = db.session.get(User, user.id) if user is not None else None
        services.apply_action(
            case, action, payload, actor=actor, relation=relation, now=clock.now_utc()
        )
        db.session.commit()
        db.session.expunge_all()
        return case


def to_mediation(app, make_case, people, **kw) -> int:
    """File a case and let the merchant reject it: it waits in the queue."""
    case_id = make_case(people["consumer"], people["shop"], **kw)
    apply(app, case_id, "reject", people["merchant"], "merchant", reason="No.")
    return case_id


def load(app, case_id: int) -> Case:
    with app.app_context():
        case = db.session.get(Case, case_id)
        db.session.expunge(case)
        return case


def row_ids(html: str, testid: str) -> list[int]:
    return [
        int(i)
        for i in re.findall(rf'data-testid="{testid}" data-case-id="(\d+)"', html)
    ]


# The queue ---------------------------------------------------------------------


def test_the_queue_lists_waiting_cases_by_deadline_and_the_caseload_my_own(
    app, client, make_case, people
):
    # Filed in one order, sent to mediation in another: the deadline decides.
    first, second, third = (
        make_case(people["consumer"], people["shop"], order_ref=f"Q-{n}", category=c)
        for n, c in enumerate(("delivery", "quality_defect", "delivery"))
    )
    apply(app, third, "reject", people["merchant"], "merchant", reason="No.")
    clock.advance(timedelta(days=1))
    apply(app, first, "reject", people["merchant"], "merchant", reason="No.")
    clock.advance(timedelta(days=1))
    apply(app, second, "reject", people["merchant"], "merchant", reason="No.")
    mine = to_mediation(app, make_case, people, order_ref="MINE")
    apply(app, mine, "take", people["max"], "mediator")
    theirs = to_mediation(app, make_case, people, order_ref="THEIRS")
    apply(app, theirs, "take", people["mia"], "mediator")
    make_case(people["consumer"], people["shop"], order_ref="NOT-YET")

    login(client, people["max"])
    html = page(client.get("/mediation?lang=en"))
    assert row_ids(html, "queue-row") == [third, first, second]
    assert row_ids(html, "caseload-row") == [mine]
    assert f'data-case-id="{theirs}"' not in html
    # Every row shows its deadline with the live countdown, and a Take button.
    queue = html.split('data-testid="queue-list"')[1].split("</table>")[0]
    assert queue.count('data-testid="countdown"') == 3
    assert queue.count('data-testid="take"') == 3
    assert "Queue (3)" in html and "My caseload (1)" in html


def test_the_queue_prefilters_the_categories_the_mediator_handles(
    app, client, make_case, people
):
    delivery = to_mediation(app, make_case, people, order_ref="D", category="delivery")
    quality = to_mediation(app, make_case, people, order_ref="Q")
    login(client, people["mia"])  # handles "delivery" only

    html = page(client.get("/mediation?lang=en"))
    assert row_ids(html, "queue-row") == [delivery]
    assert 'data-testid="queue-others"' in html
    assert "1 more case waits in other categories." in html
    assert '<option selected value="mine">' in html

    html = page(client.get("/mediation?category=all&lang=en"))
    assert row_ids(html, "queue-row") == [delivery, quality]
    rows = dict(
        re.findall(r'data-case-id="(\d+)"[^>]*data-category="(\w+)"[^>]*?(?=>)', html)
    )
    assert set(rows) == {str(delivery), str(quality)}
    marked = re.findall(r'data-case-id="(\d+)"[^>]*data-mine="true"', html)
    assert marked == [str(delivery)]
    assert html.count('data-testid="my-category"') == 1

    html = page(client.get("/mediation?category=quality_defect&lang=en"))
    assert row_ids(html, "queue-row") == [quality]
    # Nonsense falls back to the mediator's categories.
    html = page(client.get("/mediation?category=%3Cscript%3E&lang=en"))
    assert row_ids(html, "queue-row") == [delivery]


def test_a_mediator_handling_every_category_sees_the_whole_queue(
    app, client, make_case, people
):
    ids = [
        to_mediation(app, make_case, people, order_ref=f"A{n}", category=c)
        for n, c in enumerate(("delivery", "counterfeit"))
    ]
    login(client, people["max"])  # no categories: handles all
    html = page(client.get("/mediation?lang=en"))
    assert sorted(row_ids(html, "queue-row")) == sorted(ids)
    assert 'value="mine"' not in html
    assert 'data-mine="true"' not in html
    assert 'data-testid="caseload-empty"' in html


def test_the_workspace_is_for_mediators_and_linked_in_their_navigation(
    app, client, people
):
    assert client.get("/mediation").status_code == 302
    for who in ("consumer", "merchant", "arbitrator", "regulator"):
        login(client, people[who])
        assert client.get("/mediation").status_code == 403, who
        assert 'href="/mediation"' not in page(client.get("/"))
    login(client, people["max"])
    assert 'data-testid="nav-workspace"' in page(client.get("/"))
    assert 'data-testid="queue-empty"' in page(client.get("/mediation?lang=en"))


# Taking a case ------------------------------------------------------------------


def test_take_from_the_queue_with_one_click_and_a_csrf_token(
    app, client, make_case, people
):
    case_id = to_mediation(app, make_case, people)
    app.config["WTF_CSRF_ENABLED"] = True
    login_page = page(client.get("/login"))
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page).group(1)
    response = client.post(
        "/login",
        data={
            "email": people["max"].email,
            "password": PASSWORD,
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    html = page(client.get("/mediation?lang=en"))
    form = html.split('data-testid="take-form"')[1].split("</form>")[0]
    name, value = re.search(
        r'<input type="hidden" name="([^"]+)" value="([^"]+)">', form
    ).groups()
    assert name == "take-csrf_token"
    # Without the token the form is refused; with it, one click takes the case.
    assert client.post(f"/cases/{case_id}/actions/take").status_code == 400
    response = client.post(f"/cases/{case_id}/actions/take?lang=en", data={name: value})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/cases/{case_id}")
    assert ("success", "You took the case.") in flashes(client)
    assert load(app, case_id).mediator_id == people["max"].id
    html = page(client.get("/mediation?lang=en"))
    assert row_ids(html, "queue-row") == []
    assert row_ids(html, "caseload-row") == [case_id]


def test_a_mediator_who_takes_a_case_too_late_is_told_so(
    app, client, make_case, people
):
    case_id = to_mediation(app, make_case, people, category="delivery")
    login(client, people["mia"])
    assert client.post(f"/cases/{case_id}/actions/take").status_code == 303

    login(client, people["max"])
    response = client.post(f"/cases/{case_id}/actions/take?lang=en")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/mediation")
    assert ("error", "Someone else took this case a moment ago.") in flashes(client)
    assert load(app, case_id).mediator_id == people["mia"].id
    # Other actions on the taken case stay unknown to them.
    response = client.post(
        f"/cases/{case_id}/actions/end_mediation",
        data={"end_mediation-reason": "No."},
    )
    assert response.status_code == 404


def test_the_api_answers_a_late_take_with_409_already_taken(
    app, client, make_case, people, token_for
):
    case_id = to_mediation(app, make_case, people)
    first = client.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": "take"},
        headers=token_for(people["mia"]),
    )
    assert first.status_code == 200
    assert first.get_json()["mediator"]["id"] == people["mia"].id
    late = client.post(
        f"/api/v1/cases/{case_id}/actions?lang=en",
        json={"action": "take"},
        headers=token_for(people["max"]),
    )
    assert late.status_code == 409
    assert late.get_json()["error"]["code"] == "already_taken"
    # Any other action of the unassigned mediator: the case is unknown to them.
    other = client.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": "end_mediation", "reason": "No."},
        headers=token_for(people["max"]),
    )
    assert other.status_code == 404
    # The taker taking again is a plain transition refusal.
    again = client.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": "take"},
        headers=token_for(people["mia"]),
    )
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "invalid_transition"


def _race(app, clients, send) -> list:
    """Run ``send(client)`` for each client at the same moment; return answers."""
    barrier = threading.Barrier(len(clients))
    results: list = [None] * len(clients)
    errors: list[BaseException] = []

    def run(index: int, client) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = send(index, client)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert all(not t.is_alive() for t in threads)
    return results


def _take_events(app, case_id: int) -> list[CaseEvent]:
    with app.app_context():
        return list(
            db.session.scalars(
                db.select(CaseEvent).where(
                    CaseEvent.case_id == case_id, CaseEvent.action == "take"
                )
            ).all()
        )


@pytest.mark.parametrize("round_", range(3))
def test_two_mediators_taking_at_once_one_wins_the_other_is_told(
    app, make_case, people, round_
):
    case_id = to_mediation(app, make_case, people, order_ref=f"RACE-{round_}")
    mediators = [people["mia"], people["max"]]
    clients = []
    for mediator in mediators:
        client = app.test_client()
        login(client, mediator)
        clients.append(client)

    def send(index: int, client):
        response = client.post(f"/cases/{case_id}/actions/take?lang=en")
        return response.status_code, response.headers.get("Location"), flashes(client)

    results = _race(app, clients, send)
    assert [status for status, _, _ in results] == [303, 303]
    winners = [
        i
        for i, (_, _, f) in enumerate(results)
        if ("success", "You took the case.") in f
    ]
    losers = [
        i
        for i, (_, where, f) in enumerate(results)
        if where.endswith("/mediation")
        and ("error", "Someone else took this case a moment ago.") in f
    ]
    assert len(winners) == 1 and len(losers) == 1, results
    case = load(app, case_id)
    assert case.mediator_id == mediators[winners[0]].id
    assert len(_take_events(app, case_id)) == 1


def test_two_mediators_taking_at_once_through_the_api(
    app, make_case, people, token_for
):
    case_id = to_mediation(app, make_case, people)
    mediators = [people["mia"], people["max"]]
    headers = [token_for(m) for m in mediators]
    clients = [app.test_client() for _ in mediators]

    def send(index: int, client):
        response = client.post(
            f"/api/v1/cases/{case_id}/actions",
            json={"action": "take"},
            headers=headers[index],
        )
        return response.status_code, response.get_json()

    results = _race(app, clients, send)
    assert sorted(status for status, _ in results) == [200, 409], results
    winner = next(i for i, (status, _) in enumerate(results) if status == 200)
    loser_body = next(body for status, body in results if status == 409)
    assert loser_body["error"]["code"] == "already_taken"
    assert load(app, case_id).mediator_id == mediators[winner].id
    assert len(_take_events(app, case_id)) == 1


# What a mediator may see ----------------------------------------------------------


def test_a_mediator_cannot_open_a_case_assigned_to_another(
    app, client, make_case, people, token_for
):
    case_id = to_mediation(app, make_case, people)
    apply(app, case_id, "take", people["mia"], "mediator")
    login(client, people["max"])
    assert client.get(f"/cases/{case_id}").status_code == 404
    assert f'data-case-id="{case_id}"' not in page(client.get("/cases"))
    assert f'data-case-id="{case_id}"' not in page(client.get("/mediation"))
    headers = token_for(people["max"])
    for path in (f"/api/v1/cases/{case_id}", f"/api/v1/cases/{case_id}/events"):
        response = client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "not_found"
    listed = client.get("/api/v1/cases", headers=headers).get_json()["items"]
    assert case_id not in {item["id"] for item in listed}

    # The assigned mediator sees it, in the page and the API.
    login(client, people["mia"])
    assert client.get(f"/cases/{case_id}").status_code == 200
    response = client.get(f"/api/v1/cases/{case_id}", headers=token_for(people["mia"]))
    assert response.status_code == 200
    assert response.get_json()["allowed_actions"] == ["propose", "end_mediation"]


def test_a_mediator_sees_queue_cases_but_not_cases_before_mediation(
    app, client, make_case, people, token_for
):
    waiting = to_mediation(app, make_case, people)
    early = make_case(people["consumer"], people["shop"], order_ref="EARLY")
    login(client, people["max"])
    html = page(client.get(f"/cases/{waiting}?lang=en"))
    assert 'data-action="take"' in html
    assert 'data-action="propose"' not in html  # not theirs yet
    assert client.get(f"/cases/{early}").status_code == 404
    headers = token_for(people["max"])
    assert client.get(f"/api/v1/cases/{early}", headers=headers).status_code == 404
    body = client.get(f"/api/v1/cases/{waiting}", headers=headers).get_json()
    assert body["allowed_actions"] == ["take"]


# Reassignment ---------------------------------------------------------------------


def test_a_regulator_reassigns_from_the_case_page_to_another_mediator(
    app, client, make_case, people, make_user
):
    case_id = to_mediation(app, make_case, people)
    apply(app, case_id, "take", people["mia"], "mediator")
    ivy = make_user("mediator", name="Inactive Ivy")
    with app.app_context():
        db.session.get(User, ivy.id).is_active_account = False
        db.session.commit()
    login(client, people["regulator"])
    html = page(client.get(f"/cases/{case_id}?lang=en"))
    form = html.split('data-testid="action-form-reassign"')[1].split("</form>")[0]
    options = re.findall(r'<option[^>]*value="(\d*)"[^>]*>([^<]*)</option>', form)
    # Only the other active mediators, with their open cases; not the assigned
    # one, no arbitrator.
    assert [label for _, label in options[1:]] == [
        "Max Mediator (Mediator, 0 open cases)"
    ]
    assert options[1][0] == str(people["max"].id)

    for bad in (str(people["mia"].id), str(people["arbitrator"].id), "abc", ""):
        response = client.post(
            f"/cases/{case_id}/actions/reassign?lang=en",
            data={"reassign-user_id": bad},
        )
        assert response.status_code == 422, bad
    response = client.post(
        f"/cases/{case_id}/actions/reassign?lang=en",
        data={"reassign-user_id": str(people["max"].id)},
    )
    assert response.status_code == 303
    assert ("success", "The case was reassigned.") in flashes(client)
    assert load(app, case_id).mediator_id == people["max"].id

    # The case moved from one caseload to the other; the first mediator lost it.
    login(client, people["mia"])
    assert client.get(f"/cases/{case_id}").status_code == 404
    assert row_ids(page(client.get("/mediation")), "caseload-row") == []
    login(client, people["max"])
    assert row_ids(page(client.get("/mediation")), "caseload-row") == [case_id]


def test_reassignment_through_the_api_checks_the_person(
    app, client, make_case, people, token_for
):
    case_id = to_mediation(app, make_case, people)
    headers = token_for(people["regulator"])
    url = f"/api/v1/cases/{case_id}/actions"
    # Nobody assigned yet: nothing to reassign (the queue or the sweep assigns).
    response = client.post(
        url, json={"action": "reassign", "user_id": people["max"].id}, headers=headers
    )
    assert response.status_code == 409
    apply(app, case_id, "take", people["mia"], "mediator")
    for user_id in (people["consumer"].id, people["arbitrator"].id, 999999):
        response = client.post(
            url, json={"action": "reassign", "user_id": user_id}, headers=headers
        )
        assert response.status_code == 422, user_id
        assert "user_id" in response.get_json()["error"]["fields"]
    response = client.post(
        url, json={"action": "reassign", "user_id": people["max"].id}, headers=headers
    )
    assert response.status_code == 200
    assert response.get_json()["mediator"]["id"] == people["max"].id
    # Mediators may not reassign.
    response = client.post(
        url,
        json={"action": "reassign", "user_id": people["mia"].id},
        headers=token_for(people["max"]),
    )
    assert response.status_code == 409


def test_the_caseload_shows_unread_messages_and_the_last_activity(
    app, client, make_case, people
):
    from mediation.chat import services as chat

    case_id = to_mediation(app, make_case, people)
    apply(app, case_id, "take", people["max"], "mediator")
    login(client, people["max"])
    html = page(client.get("/mediation?lang=en"))
    row = html.split('data-testid="caseload-row"')[1].split("</tr>")[0]
    # Taking the case posted a system message into the joint room.
    assert 'data-unread="1"' in row

    clock.advance(timedelta(hours=3))
    with app.app_context():
        case = db.session.get(Case, case_id)
        consumer = db.session.get(User, people["consumer"].id)
        mediator = db.session.get(User, people["max"].id)
        chat.post_message(
            case,
            room="caucus:consumer",
            author=consumer,
            body="Can you call me?",
            client_id="c-1",
            now=clock.now_utc(),
        )
        chat.post_message(
            case,
            room="joint",
            author=mediator,
            body="Hello both.",
            client_id="m-1",
            now=clock.now_utc(),
        )
        db.session.commit()
    html = page(client.get("/mediation?lang=en"))
    row = html.split('data-testid="caseload-row"')[1].split("</tr>")[0]
    # The mediator's own message is not unread; the consumer's and the system's are.
    assert 'data-unread="2"' in row and "2 unread messages" in row
    assert "2026-03-02 13:00" in row  # 05:00 UTC, in Shanghai

    with app.app_context():
        case = db.session.get(Case, case_id)
        mediator = db.session.get(User, people["max"].id)
        for room in ("joint", "caucus:consumer"):
            chat.mark_read(mediator, case, room, 99, now=clock.now_utc())
        db.session.commit()
    html = page(client.get("/mediation?lang=en"))
    row = html.split('data-testid="caseload-row"')[1].split("</tr>")[0]
    assert 'data-testid="unread"' not in row


def test_an_arbitrator_taking_too_late_goes_back_to_the_arbitration_workspace(
    app, client, make_case, people, make_user, token_for
):
    case_id = to_mediation(app, make_case, people, arbitration_consent=True)
    apply(app, case_id, "take", people["max"], "mediator")
    apply(app, case_id, "end_mediation", people["max"], "mediator", reason="Stuck.")
    assert load(app, case_id).status == "in_arbitration"
    apply(app, case_id, "take", people["arbitrator"], "arbitrator")
    late = make_user("arbitrator", name="Late Lu")
    login(client, late)
    response = client.post(f"/cases/{case_id}/actions/take?lang=en")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/arbitration")
    assert ("error", "Someone else took this case a moment ago.") in flashes(client)
    response = client.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": "take"},
        headers=token_for(late),
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "already_taken"
    assert load(app, case_id).arbitrator_id == people["arbitrator"].id
