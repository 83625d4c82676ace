"""The chat panel of the case page: who sees which room, escaped transcripts."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.cases.models import Case
from mediation.cases.services import apply_action
from mediation.chat.services import post_message
from mediation.extensions import db


@pytest.fixture()
def mediation_case(app, make_user, make_merchant, make_case):
    """A case in mediation with its mediator, and a message in every room."""
    shop = make_merchant(name="Kettle Shop")
    people = {
        "consumer": make_user("consumer", name="Carla Consumer"),
        "merchant": make_user("merchant", name="Sam Staff", merchant_id=shop.id),
        "mediator": make_user("mediator", name="Mona Mediator"),
        "other_mediator": make_user("mediator", name="Otto Other"),
        "regulator": make_user("regulator", name="Rita Regulator"),
        "other_consumer": make_user("consumer", name="Olga Outsider"),
    }
    case_id = make_case(people["consumer"], shop)
    with app.app_context():
        case = db.session.get(Case, case_id)
        staff = db.session.get(User, people["merchant"].id)
        mediator = db.session.get(User, people["mediator"].id)
        consumer = db.session.get(User, people["consumer"].id)
        now = clock.now_utc()
        apply_action(
            case, "reject", {"reason": "No."}, actor=staff, relation="merchant", now=now
        )
        apply_action(case, "take", {}, actor=mediator, relation="mediator", now=now)
        for room, author, body in (
            ("joint", consumer, "Joint hello <b>all</b>"),
            ("caucus:consumer", consumer, "CONSUMER SECRET <script>x()</script>"),
            ("caucus:merchant", staff, "MERCHANT SECRET"),
        ):
            post_message(
                case,
                room=room,
                author=author,
                body=body,
                client_id=f"c-{room}",
                now=now,
            )
        db.session.commit()
    return case_id, people


def _page(client, auth, user, case_id):
    auth.logout()
    auth.login(user)
    response = client.get(f"/cases/{case_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _config(html: str) -> dict:
    found = re.search(
        r'<script type="application/json" id="chat-config">(.*?)</script>', html, re.S
    )
    assert found, "no chat config on the page"
    return json.loads(found.group(1))


def test_consumer_sees_joint_and_own_caucus_never_the_merchants(
    client, auth, mediation_case
):
    case_id, people = mediation_case
    html = _page(client, auth, people["consumer"], case_id)
    assert 'data-testid="chat"' in html
    assert 'data-testid="chat-room-joint"' in html
    assert 'data-testid="chat-room-caucus-consumer"' in html
    assert 'data-testid="chat-room-caucus-merchant"' not in html
    assert "MERCHANT SECRET" not in html
    config = _config(html)
    assert [r["key"] for r in config["rooms"]] == ["joint", "caucus:consumer"]
    assert all(r["mode"] == "write" for r in config["rooms"])
    assert config["party"] == "consumer"


def test_merchant_never_gets_the_consumers_caucus(client, auth, mediation_case):
    case_id, people = mediation_case
    html = _page(client, auth, people["merchant"], case_id)
    assert "MERCHANT SECRET" in html
    assert "CONSUMER SECRET" not in html
    assert 'data-testid="chat-room-caucus-consumer"' not in html
    assert [r["key"] for r in _config(html)["rooms"]] == ["joint", "caucus:merchant"]


def test_mediator_has_both_caucus_tabs(client, auth, mediation_case):
    case_id, people = mediation_case
    html = _page(client, auth, people["mediator"], case_id)
    for key in ("joint", "caucus-consumer", "caucus-merchant"):
        assert f'data-testid="chat-tab-{key}"' in html
    assert "MERCHANT SECRET" in html and "CONSUMER SECRET" in html
    assert _config(html)["can_upload"] is False  # mediators attach no evidence


def test_regulator_reads_the_joint_room_only(client, auth, mediation_case):
    case_id, people = mediation_case
    html = _page(client, auth, people["regulator"], case_id)
    assert "Joint hello" in html
    assert "SECRET" not in html
    assert 'data-testid="chat-composer"' not in html
    assert 'data-testid="chat-read-only"' in html
    assert [(r["key"], r["mode"]) for r in _config(html)["rooms"]] == [
        ("joint", "read")
    ]


def test_unassigned_mediator_sees_no_case_and_no_chat(client, auth, mediation_case):
    case_id, people = mediation_case
    auth.login(people["other_mediator"])
    response = client.get(f"/cases/{case_id}")
    assert response.status_code == 404
    assert "SECRET" not in response.get_data(as_text=True)


def test_transcript_is_escaped_plain_text(client, auth, mediation_case):
    case_id, people = mediation_case
    html = _page(client, auth, people["consumer"], case_id)
    assert "<script>x()</script>" not in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert "<b>all</b>" not in html
    # The config block cannot end its <script> early either.
    block = re.search(r'id="chat-config">(.*?)</script>', html, re.S).group(1)
    assert "<" not in block


def test_messages_carry_seq_and_client_id_for_the_script(client, auth, mediation_case):
    case_id, people = mediation_case
    html = _page(client, auth, people["consumer"], case_id)
    joint = html.split('data-testid="chat-room-joint"', 1)[1].split("</ol>", 1)[0]
    assert re.search(r'data-seq="\d+"', joint)
    assert 'data-client-id="c-joint"' in joint
    config = _config(html)
    joint_meta = config["rooms"][0]
    assert joint_meta["last_seq"] >= 2  # the take's system message, then the text
    assert config["urls"]["actions"] == f"/api/v1/cases/{case_id}/actions"
    assert config["strings"]["pending"]


def test_system_message_and_proposal_card(app, client, auth, mediation_case):
    case_id, people = mediation_case
    with app.app_context():
        case = db.session.get(Case, case_id)
        apply_action(
            case,
            "propose",
            {
                "type": "refund",
                "amount": 12345,
                "deadline": date.today() + timedelta(days=7),
                "text": "Refund of the kettle.",
            },
            actor=db.session.get(User, people["mediator"].id),
            relation="mediator",
            now=clock.now_utc(),
        )
        db.session.commit()
    html = _page(client, auth, people["merchant"], case_id)
    assert 'data-testid="chat-system"' in html
    card = html.split('data-testid="chat-proposal"', 1)[1].split("</li>", 1)[0]
    assert "¥123.45" in card
    assert "Refund of the kettle." in card
    states = _config(html)["proposals"]
    assert list(states.values()) == [
        {"status": "open", "consumer_accepted": False, "merchant_accepted": False}
    ]


def test_no_panel_before_mediation(client, auth, make_user, make_merchant, make_case):
    shop = make_merchant()
    consumer = make_user("consumer")
    case_id = make_case(consumer, shop)
    html = _page(client, auth, consumer, case_id)
    assert 'data-testid="chat"' not in html
    assert "socket.io.min.js" not in html


def test_waiting_for_a_mediator_shows_a_read_only_panel(
    app, client, auth, make_user, make_merchant, make_case
):
    shop = make_merchant()
    consumer = make_user("consumer")
    staff = make_user("merchant", merchant_id=shop.id)
    case_id = make_case(consumer, shop)
    with app.app_context():
        apply_action(
            db.session.get(Case, case_id),
            "reject",
            {"reason": "No."},
            actor=db.session.get(User, staff.id),
            relation="merchant",
            now=clock.now_utc(),
        )
        db.session.commit()
    html = _page(client, auth, consumer, case_id)
    assert 'data-testid="chat-waiting"' in html
    assert 'data-testid="chat-composer"' not in html
    assert _config(html)["waiting"] is True


def test_panel_texts_follow_the_language(client, auth, mediation_case):
    case_id, people = mediation_case
    auth.login(people["consumer"])
    assert client.post("/language", data={"locale": "zh_CN"}).status_code in (302, 303)
    config = _config(client.get(f"/cases/{case_id}").get_data(as_text=True))
    assert config["roles"]["mediator"] == "调解员"
    assert config["strings"]["accept"] == config["actions"]["accept_proposal"]
