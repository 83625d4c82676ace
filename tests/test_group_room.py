"""The group room of a case group over Socket.IO and HTTP: who is in it, what
they may do, and that consumers are named only by their complaint."""

from __future__ import annotations

import json

import pytest

from mediation import clock
from mediation.analytics import groups
from mediation.analytics.alert_models import CaseGroup
from mediation.auth.models import User
from mediation.extensions import db
from tests.alert_support import MONDAY, NS, AlertWorld, ack, group_now, received


@pytest.fixture()
def world(app, make_user, make_merchant, make_case, token_for):
    """Complaints a (A), b (B), c (C) against S, grouped for M; a and b in
    mediation (so M's), c waiting for S. Another complaint d of A, ungrouped."""
    clock.freeze(MONDAY)
    app.config["MASS_ALERT_THRESHOLD"] = 50
    w = AlertWorld(app, make_user, make_merchant, make_case, token_for)
    w.a, w.b, w.c = w.file(3)
    (w.d,) = w.file(consumer="A", category="delivery")
    w.to_mediation(w.a)
    w.to_mediation(w.b)
    w.group_id = group_now(w, [w.a, w.b, w.c], mediator="M")
    w.reference = {}
    for name in ("a", "b", "c", "d"):
        with app.app_context():
            from mediation.cases.models import Case

            w.reference[name] = db.session.get(Case, getattr(w, name)).reference
    yield w
    clock.unfreeze()


def join(sio, case_id, room="group"):
    return ack(sio, "join_case", {"case_id": case_id, "room": room})


def send(sio, case_id, body, client_id, **extra):
    return ack(
        sio,
        "send_message",
        {"case_id": case_id, "room": "group", "body": body, "client_id": client_id}
        | extra,
    )


def code(answer):
    return answer["error"]["code"] if not answer.get("ok") else "ok"


@pytest.mark.parametrize(
    ("actor", "via", "expected"),
    [
        ("A", "a", "write"),
        ("B", "b", "write"),
        ("C", "c", "write"),  # before mediation: the group room is open already
        ("S", "a", "write"),
        ("S", "c", "write"),
        ("M", "a", "write"),
        ("R", "a", "read"),
        ("A", "b", "not_found"),  # another consumer's complaint
        ("A", "d", "forbidden"),  # own complaint, not grouped
        ("M2", "a", "not_found"),  # another mediator
        ("P", "a", "not_found"),  # the platform
        ("T", "a", "not_found"),
        ("arb", "a", "not_found"),
    ],
)
def test_who_is_in_the_group_room(world, actor, via, expected):
    sio = world.socket(actor)
    answer = join(sio, getattr(world, via))
    if expected in ("write", "read"):
        assert answer["ok"] is True, answer
        assert answer["room"] == "group" and answer["room_key"] == "group"
        assert answer["read_only"] is (expected == "read")
    else:
        assert code(answer) == expected
    assert sio.is_connected(NS)


def test_one_room_through_every_case_consumers_named_by_their_complaint(world):
    alice, bob, carol, shop, mediator = (
        world.socket(k) for k in ("A", "B", "C", "S", "M")
    )
    for sio, via in (
        (alice, world.a),
        (bob, world.b),
        (carol, world.c),
        (shop, world.a),
        (mediator, world.b),
    ):
        assert join(sio, via)["ok"]
        sio.get_received(NS)
    answer = send(alice, world.a, "Did anyone get the discount?", "g-1")
    assert answer["ok"] and answer["seq"] == 1
    for sio in (bob, carol, shop, mediator, alice):
        (message,) = received(sio, "message_created")
        assert message["room"] == "group" and message["case_id"] == world.a
        assert message["author"] == {"id": world.users["A"].id, "name": None}
        assert message["data"]["case_reference"] == world.reference["a"]
        assert "Alice" not in json.dumps(message)
    # The mediator and the shop write under their names.
    send(mediator, world.b, "The shop will answer everyone here.", "g-2")
    (message,) = received(bob, "message_created")
    assert message["author"]["name"] == "Mediator M" and message["seq"] == 2
    shop_answer = send(shop, world.c, "We honour the promotion price.", "g-3")
    assert shop_answer["ok"] and shop_answer["seq"] == 3
    # Whoever joins later gets the same transcript through their own case.
    late = world.socket("C")
    replay = join(late, world.c)["messages"]
    assert [m["seq"] for m in replay] == [1, 2, 3]
    assert replay[0]["author"]["name"] is None
    assert "Alice" not in json.dumps(replay)


def test_the_transcript_api_reads_the_group_room_through_any_case(world):
    alice = world.socket("A")
    join(alice, world.a)
    send(alice, world.a, "Hello everyone", "g-1")
    client = world.http("B")
    response = client.get(f"/api/v1/cases/{world.b}/messages?room=group")
    assert response.status_code == 200, response.get_json()
    (item,) = response.get_json()["items"]
    assert item["body"] == "Hello everyone" and item["author"]["name"] is None
    assert item["data"]["case_reference"] == world.reference["a"]
    assert "Alice" not in response.get_data(as_text=True)
    # Not through another consumer's case, nor an ungrouped own one.
    assert client.get(f"/api/v1/cases/{world.a}/messages?room=group").status_code == 404
    own = world.http("A").get(f"/api/v1/cases/{world.d}/messages?room=group")
    assert own.status_code == 403
    assert client.get(f"/api/v1/cases/{world.b}/messages?room=lobby").status_code == 422


def test_presence_and_typing_do_not_name_consumers(world):
    alice, bob = world.socket("A"), world.socket("B")
    join(alice, world.a)
    join(bob, world.b)
    (presence,) = received(alice, "presence")[-1:]
    people = {p["id"]: p for p in presence["online"]}
    assert people[world.users["B"].id]["name"] is None
    assert people[world.users["B"].id]["case_reference"] == world.reference["b"]
    assert presence["case_id"] == world.a and presence["room"] == "group"
    alice.get_received(NS)
    assert ack(alice, "typing", {"case_id": world.a, "room": "group"})["ok"]
    (typing,) = received(bob, "typing")
    assert typing["user"] == {"id": world.users["A"].id, "name": None}
    assert typing["case_reference"] == world.reference["a"]
    assert typing["case_id"] == world.a


def test_files_and_other_rooms_stay_with_each_complaint(world):
    alice, bob = world.socket("A"), world.socket("B")
    join(alice, world.a)
    refused = send(alice, world.a, "", "g-file", evidence_id=1)
    assert code(refused) == "validation"
    # Each complaint keeps its own joint room: Bob is not in Alice's.
    assert code(join(bob, world.a, room="joint")) == "not_found"
    assert join(alice, world.a, room="joint")["ok"]


def test_read_positions_in_the_group_room_are_per_reader(world):
    alice, bob = world.socket("A"), world.socket("B")
    join(alice, world.a)
    join(bob, world.b)
    send(alice, world.a, "One", "g-1")
    send(alice, world.a, "Two", "g-2")
    assert ack(bob, "read", {"case_id": world.b, "room": "group", "seq": 2}) == {
        "ok": True,
        "last_read": 2,
    }
    again = world.socket("B")
    answer = join(again, world.b)
    assert (answer["last_read"], answer["last_seq"]) == (2, 2)
    assert join(world.socket("A"), world.a)["last_read"] == 0


def test_a_closed_complaint_reads_the_group_room_the_others_write(world):
    world.act(world.c, "withdraw", "C", "consumer", reason="Refunded by the shop.")
    carol, alice = world.socket("C"), world.socket("A")
    assert join(carol, world.c)["read_only"] is True
    assert code(send(carol, world.c, "Still here?", "g-9")) == "read_only"
    join(alice, world.a)
    assert send(alice, world.a, "Yes", "g-10")["ok"]


def test_a_new_group_mediator_replaces_the_old_one_in_the_room(world):
    old, alice = world.socket("M"), world.socket("A")
    join(old, world.a)
    join(alice, world.a)
    with world.app.app_context():
        groups.change_mediator(
            db.session.get(CaseGroup, world.group_id),
            db.session.get(User, world.users["M2"].id),
            actor=db.session.get(User, world.users["R"].id),
            now=clock.now_utc(),
        )
        db.session.commit()
    old.get_received(NS)
    send(alice, world.a, "Who mediates now?", "g-1")
    assert received(old, "message_created") == []
    assert code(join(old, world.a)) == "not_found"
    new = world.socket("M2")
    assert join(new, world.a)["read_only"] is False


def test_the_case_page_shows_the_group_room_tab(world):
    page = world.http("C").get(f"/cases/{world.c}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-testid="chat-tab-group"' in html
    assert 'data-testid="case-supervision"' in html
    # Before mediation the group room is the open tab, with its composer.
    start = html.index('data-testid="chat-room-group"')
    panel = html[html.rindex("<div", 0, start) : html.index("</form>", start)]
    assert " hidden" not in panel.split(">", 1)[0]
    assert 'data-testid="chat-composer"' in panel
    assert 'data-testid="chat-attach"' not in panel  # files go to one's own case
    config = json.loads(
        html.split('<script type="application/json" id="chat-config">')[1].split(
            "</script>"
        )[0]
    )
    assert config["group"] == {"id": world.group_id, "room_case_id": world.a}
    # A message shows by the complaint's reference, never the name.
    alice = world.socket("A")
    join(alice, world.a)
    send(alice, world.a, "Hello from a", "g-1")
    html = world.http("B").get(f"/cases/{world.b}?lang=en").get_data(as_text=True)
    assert f"Consumer of {world.reference['a']}" in html
    assert "Alice Consumer" not in html
    # An ungrouped complaint has no group tab.
    html = world.http("A").get(f"/cases/{world.d}").get_data(as_text=True)
    assert 'data-testid="chat-tab-group"' not in html


def test_who_loses_the_case_they_came_through_leaves_the_group_room(world):
    mediator, alice = world.socket("M"), world.socket("A")
    join(mediator, world.a)
    join(alice, world.a)
    # The regulator gives complaint a alone to M2: M came in through a.
    world.act(world.a, "reassign", "R", "regulator", user_id=world.users["M2"].id)
    mediator.get_received(NS)
    send(alice, world.a, "Still here?", "g-1")
    assert received(mediator, "message_created") == []
    # Through complaint b, still M's, the group room is open to M.
    assert join(mediator, world.b)["read_only"] is False
