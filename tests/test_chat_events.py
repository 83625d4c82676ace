"""The /chat namespace with the Socket.IO test client: every event and refusal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from sqlalchemy import event

from mediation import clock
from mediation.auth.models import ApiToken, User
from mediation.cases.models import Case
from mediation.chat import services as chat
from mediation.chat.models import ChatMessage
from mediation.extensions import db
from tests.chat_support import MONDAY, NS, ChatWorld, ack, events_of, received


@pytest.fixture()
def world(app, make_user, make_merchant, make_case, token_for):
    clock.freeze(MONDAY)
    # Many sign-ins from one address: the sign-in limit must not get in the way.
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    yield ChatWorld(app, make_user, make_merchant, make_case, token_for)
    clock.unfreeze()


def join(sio, case_id, room="joint", **kw):
    return ack(sio, "join_case", {"case_id": case_id, "room": room, **kw})


def send(sio, case_id, body, client_id, room="joint", **kw):
    return ack(
        sio,
        "send_message",
        {"case_id": case_id, "room": room, "body": body, "client_id": client_id, **kw},
    )


def code(answer) -> str:
    assert answer["ok"] is False, answer
    return answer["error"]["code"]


def stored(app, case_id, room="joint"):
    with app.app_context():
        return [
            (m.seq, m.kind, m.body)
            for m in db.session.scalars(
                db.select(ChatMessage)
                .where(ChatMessage.case_id == case_id, ChatMessage.room == room)
                .order_by(ChatMessage.seq)
            )
        ]


# Connecting -----------------------------------------------------------------


def test_anonymous_connection_is_refused(world):
    sio = world.socket(None)
    assert not sio.is_connected(NS)


def test_api_token_in_auth_connects_and_is_checked_at_every_event(world):
    token = world.token("A")
    sio = world.socket(None, auth={"token": token})
    assert sio.is_connected(NS)
    assert join(sio, world.case_id)["ok"] is True
    with world.app.app_context():
        row = db.session.scalar(
            db.select(ApiToken).where(ApiToken.token_hash == ApiToken.hash_token(token))
        )
        row.revoked_at = clock.now_utc()
        db.session.commit()
    assert code(join(sio, world.case_id)) == "unauthorized"
    assert sio.is_connected(NS)  # refusals come back in the ack


def _set_user(app, user_id, **values):
    with app.app_context():
        user = db.session.get(User, user_id)
        for name, value in values.items():
            setattr(user, name, value)
        db.session.commit()


@pytest.mark.parametrize("how", ["session", "token", "bearer"])
def test_a_deactivated_account_is_refused_at_the_next_event(world, how):
    if how == "session":
        sio = world.socket("A")
    elif how == "token":
        sio = world.socket(None, auth={"token": world.token("A")})
    else:
        token = world.token("A")
        sio = world.socket(None, headers={"Authorization": f"Bearer {token}"})
    assert join(sio, world.case_id)["ok"] is True
    _set_user(world.app, world.user("A").id, is_active_account=False)
    assert code(send(sio, world.case_id, "Still here?", "d-1")) == "unauthorized"
    typing = ack(sio, "typing", {"case_id": world.case_id, "room": "joint"})
    assert code(typing) == "unauthorized"
    assert [s for s, k, _ in stored(world.app, world.case_id) if k == "text"] == []


def test_signing_out_everywhere_ends_a_session_connection(world):
    # A new session nonce (password change, sign out everywhere) ends every
    # session of the account, the socket's included.
    sio = world.socket("S")
    assert join(sio, world.case_id)["ok"] is True
    _set_user(world.app, world.user("S").id, session_nonce="changed")
    assert code(join(sio, world.case_id)) == "unauthorized"


def test_a_revoked_bearer_header_token_is_refused_at_the_next_event(world):
    token = world.token("S")
    sio = world.socket(None, headers={"Authorization": f"Bearer {token}"})
    assert send(sio, world.case_id, "Hello", "b-1")["ok"] is True
    with world.app.app_context():
        row = db.session.scalar(
            db.select(ApiToken).where(ApiToken.token_hash == ApiToken.hash_token(token))
        )
        row.revoked_at = clock.now_utc()
        db.session.commit()
    assert code(send(sio, world.case_id, "Hello again", "b-2")) == "unauthorized"


def test_a_token_that_expires_while_connected_is_refused(world):
    sio = world.socket(None, auth={"token": world.token("M")})  # valid for an hour
    assert join(sio, world.case_id)["ok"] is True
    clock.advance(timedelta(minutes=61))
    assert code(join(sio, world.case_id)) == "unauthorized"


def test_bad_or_expired_token_is_refused(world):
    assert not world.socket(None, auth={"token": "not-a-token"}).is_connected(NS)
    assert not world.socket(None, auth={"token": 12}).is_connected(NS)
    token = world.token("A")  # valid for an hour
    clock.advance(timedelta(hours=2))
    assert not world.socket(None, auth={"token": token}).is_connected(NS)


def test_bearer_header_on_the_handshake_connects(world):
    token = world.token("S")
    sio = world.socket(None, headers={"Authorization": f"Bearer {token}"})
    assert sio.is_connected(NS)
    assert join(sio, world.case_id)["ok"] is True


def test_foreign_origin_is_refused_by_the_handshake(world, client):
    # Engine.IO's own check, through the real WSGI middleware.
    foreign = client.get(
        "/socket.io/?EIO=4&transport=polling",
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 400
    ours = client.get(
        "/socket.io/?EIO=4&transport=polling",
        headers={"Origin": "http://127.0.0.1:5000"},
    )
    assert ours.status_code == 200
    assert b'"sid"' in ours.data
    # And the connect handler's own check (signed in, foreign page).
    sio = world.socket("A", headers={"Origin": "https://evil.example"})
    assert not sio.is_connected(NS)
    sio = world.socket("A", headers={"Origin": "http://127.0.0.1:5000"})
    assert sio.is_connected(NS)


def test_allowed_origins_come_from_public_url_or_the_list():
    from mediation.chat.events import allowed_origins

    assert allowed_origins(
        {"PUBLIC_URL": "https://odr.example.cn/app/", "SOCKETIO_CORS_ORIGINS": None}
    ) == ["https://odr.example.cn"]
    assert allowed_origins(
        {
            "PUBLIC_URL": "https://odr.example.cn",
            "SOCKETIO_CORS_ORIGINS": "https://a.example, https://b.example:8443",
        }
    ) == ["https://a.example", "https://b.example:8443"]
    assert allowed_origins({"PUBLIC_URL": "x", "SOCKETIO_CORS_ORIGINS": "*"}) == "*"


# Joining --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "read_only"),
    [("A", False), ("S", False), ("M", False), ("reg", True)],
)
def test_members_join_the_joint_room(world, actor, read_only):
    sio = world.socket(actor)
    answer = join(sio, world.case_id)
    assert answer["ok"] is True, answer
    assert answer["read_only"] is read_only
    assert answer["room"] == "joint" and answer["party"] is None
    # The mediator's "take" is already in the room as a system message.
    assert [m["kind"] for m in answer["messages"]] == ["system"]
    assert answer["messages"][0]["data"]["action"] == "take"
    assert answer["last_read"] == 0 and answer["last_seq"] == 1


@pytest.mark.parametrize(
    ("actor", "room", "party", "expected"),
    [
        ("B", "joint", None, "not_found"),  # a consumer of another case
        ("T", "joint", None, "not_found"),  # a merchant of another shop
        ("P", "joint", None, "not_found"),  # the platform before any escalation
        ("M2", "joint", None, "not_found"),  # a mediator not assigned
        ("arb", "joint", None, "not_found"),  # not in arbitration
        ("reg", "caucus", "consumer", "forbidden"),  # regulators: joint only
        ("S", "caucus", "consumer", "forbidden"),  # the other party's caucus
        ("A", "caucus", "merchant", "forbidden"),
        ("M", "caucus", None, "validation"),  # the mediator names the party
        ("A", "lobby", None, "validation"),
    ],
)
def test_join_refusals(world, actor, room, party, expected):
    sio = world.socket(actor)
    payload = {"case_id": world.case_id, "room": room}
    if party:
        payload["party"] = party
    assert code(ack(sio, "join_case", payload)) == expected
    assert sio.is_connected(NS)


def test_unassigned_mediator_sees_the_queued_case_but_no_room(world):
    queued = world.new_case(take=False)
    sio = world.socket("M2")
    assert code(join(sio, queued)) == "forbidden"
    assert code(join(sio, 2_000_000)) == "not_found"


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "joint",
        [1, 2],
        {"room": "joint"},
        {"case_id": "1", "room": "joint"},
        {"case_id": 1, "room": "joint", "after": -1},
        {"case_id": 1, "room": "joint", "extra": True},
    ],
)
def test_malformed_payloads_are_validation_errors(world, payload):
    sio = world.socket("A")
    assert code(ack(sio, "join_case", payload)) == "validation"
    assert sio.is_connected(NS)


def test_parties_reach_their_own_caucus_without_naming_it(world):
    consumer, merchant, mediator = (world.socket(a) for a in ("A", "S", "M"))
    assert join(consumer, world.case_id, "caucus")["party"] == "consumer"
    assert join(merchant, world.case_id, "caucus")["party"] == "merchant"
    answer = join(mediator, world.case_id, "caucus", party="merchant")
    assert answer["room_key"] == "caucus:merchant"


# Messages -------------------------------------------------------------------


def test_message_is_stored_acked_with_seq_and_broadcast_to_the_room(world):
    consumer, merchant, mediator = (world.socket(a) for a in ("A", "S", "M"))
    for sio in (consumer, merchant, mediator):
        join(sio, world.case_id)
        sio.get_received(NS)
    answer = send(consumer, world.case_id, "  The kettle leaks.  ", "c-1")
    assert answer["ok"] is True
    assert answer["seq"] == 2 and answer["duplicate"] is False
    for sio in (merchant, mediator, consumer):
        (message,) = received(sio, "message_created")
        assert message["seq"] == 2 and message["id"] == answer["id"]
        assert message["body"] == "The kettle leaks."
        assert message["client_id"] == "c-1"
        assert message["author"]["name"] == "Consumer A"
        assert message["role"] == "consumer" and message["kind"] == "text"
        assert message["room"] == "joint"
    assert stored(world.app, world.case_id)[-1] == (2, "text", "The kettle leaks.")


def test_same_client_id_stores_once(world):
    consumer, merchant = world.socket("A"), world.socket("S")
    join(consumer, world.case_id)
    join(merchant, world.case_id)
    merchant.get_received(NS)
    first = send(consumer, world.case_id, "Hello", "retry-me")
    again = send(consumer, world.case_id, "Hello", "retry-me")
    assert again["ok"] is True and again["duplicate"] is True
    assert (again["seq"], again["id"]) == (first["seq"], first["id"])
    assert len(received(merchant, "message_created")) == 1
    assert [s for s, k, _ in stored(world.app, world.case_id) if k == "text"] == [2]
    # The same id for another room is a client error, not a second message.
    join(consumer, world.case_id, "caucus")
    clash = send(consumer, world.case_id, "Hello", "retry-me", room="caucus")
    assert code(clash) == "validation"
    # A retry gives its number back: the next message has the next seq.
    assert send(consumer, world.case_id, "Next", "next-1")["seq"] == 3
    assert send(consumer, world.case_id, "Own", "own-1", room="caucus")["seq"] == 1


def test_a_retry_is_answered_after_the_room_closed(world):
    consumer = world.socket("A")
    first = send(consumer, world.case_id, "Before the end", "late-retry")
    world.act("end_mediation", "M", "mediator", result="failed", reason="No deal.")
    # The acknowledgement was lost; the client retries after mediation ended.
    again = send(consumer, world.case_id, "Before the end", "late-retry")
    assert again["ok"] is True and again["duplicate"] is True
    assert again["id"] == first["id"] and again["seq"] == first["seq"]
    assert code(send(consumer, world.case_id, "New one", "late-new")) == "read_only"


def test_client_ids_are_per_author(world):
    consumer, merchant = world.socket("A"), world.socket("S")
    a = send(consumer, world.case_id, "From A", "same-id")
    s = send(merchant, world.case_id, "From S", "same-id")
    assert a["ok"] and s["ok"] and a["id"] != s["id"]


def test_replay_after_the_last_seen_seq_in_order(world):
    consumer, mediator = world.socket("A"), world.socket("M")
    for n in range(5):
        assert send(mediator, world.case_id, f"m{n}", f"id-{n}")["ok"]
    answer = join(consumer, world.case_id, after=3)
    assert [m["seq"] for m in answer["messages"]] == [4, 5, 6]
    assert [m["body"] for m in answer["messages"]] == ["m2", "m3", "m4"]
    assert answer["more"] is False
    world.app.config["CHAT_REPLAY_LIMIT"] = 2
    answer = join(consumer, world.case_id, after=0)
    assert [m["seq"] for m in answer["messages"]] == [1, 2]
    assert answer["more"] is True


def test_caucus_message_reaches_only_the_caucus(world):
    consumer, merchant, mediator = (world.socket(a) for a in ("A", "S", "M"))
    join(consumer, world.case_id, "caucus")
    join(consumer, world.case_id)
    join(merchant, world.case_id, "caucus")
    join(merchant, world.case_id)
    join(mediator, world.case_id, "caucus", party="consumer")
    for sio in (consumer, merchant, mediator):
        sio.get_received(NS)
    answer = send(
        mediator, world.case_id, "Between us: 150?", "m-1", "caucus", party="consumer"
    )
    assert answer["ok"] and answer["seq"] == 1
    (message,) = received(consumer, "message_created")
    assert message["room"] == "caucus" and message["party"] == "consumer"
    assert received(merchant, "message_created") == []
    # The merchant may not write there either.
    merchant_try = send(
        merchant, world.case_id, "Let me in", "s-1", "caucus", party="consumer"
    )
    assert code(merchant_try) == "forbidden"


def test_too_long_and_empty_messages_are_refused(world):
    world.app.config["CHAT_MAX_LENGTH"] = 10
    consumer = world.socket("A")
    answer = send(consumer, world.case_id, "x" * 11, "long")
    assert code(answer) == "too_long"
    assert "10" in answer["error"]["message"]
    assert send(consumer, world.case_id, "x" * 10, "ok")["ok"] is True
    assert code(send(consumer, world.case_id, "   ", "empty")) == "validation"
    assert code(send(consumer, world.case_id, "a\x00b", "nul")) == "validation"
    assert code(send(consumer, world.case_id, "hi", "")) == "validation"
    assert code(send(consumer, world.case_id, "hi", "x" * 65)) == "validation"


def test_sending_too_fast_is_rate_limited(world):
    world.app.config["CHAT_RATE_LIMIT"] = "3 per 10 seconds"
    consumer, merchant = world.socket("A"), world.socket("S")
    for n in range(3):
        assert send(consumer, world.case_id, f"n{n}", f"r-{n}")["ok"] is True
    answer = send(consumer, world.case_id, "one more", "r-3")
    assert code(answer) == "rate_limited"
    assert answer["error"]["message"]
    # A retry of a stored message is still answered; others are not limited.
    assert send(consumer, world.case_id, "n0", "r-0")["duplicate"] is True
    assert send(merchant, world.case_id, "fine", "s-0")["ok"] is True
    # The refused message was not stored and took no number.
    assert [b for _, k, b in stored(world.app, world.case_id) if k == "text"] == [
        "n0",
        "n1",
        "n2",
        "fine",
    ]
    assert [s for s, _, _ in stored(world.app, world.case_id)] == [1, 2, 3, 4, 5]


def test_retries_do_not_count_towards_the_rate_limit(world):
    world.app.config["CHAT_RATE_LIMIT"] = "2 per 10 seconds"
    consumer = world.socket("A")
    assert send(consumer, world.case_id, "one", "q-1")["ok"] is True
    for _ in range(3):
        assert send(consumer, world.case_id, "one", "q-1")["duplicate"] is True
    assert send(consumer, world.case_id, "two", "q-2")["ok"] is True
    assert code(send(consumer, world.case_id, "three", "q-3")) == "rate_limited"


def test_regulator_reads_but_may_not_write(world):
    regulator = world.socket("reg")
    assert join(regulator, world.case_id)["read_only"] is True
    assert code(send(regulator, world.case_id, "Hello", "reg-1")) == "read_only"
    assert code(
        ack(regulator, "typing", {"case_id": world.case_id, "room": "joint"})
    ) == ("read_only")


def test_outsiders_may_not_send(world):
    for actor in ("B", "T", "M2"):
        sio = world.socket(actor)
        assert code(send(sio, world.case_id, "Hi", f"{actor}-1")) == "not_found"


def test_rooms_are_read_only_after_mediation_ends(world):
    consumer, mediator = world.socket("A"), world.socket("M")
    join(consumer, world.case_id)
    consumer.get_received(NS)
    world.act("end_mediation", "M", "mediator", result="failed", reason="No deal.")
    events = events_of(consumer)
    names = [name for name, _ in events]
    assert "case_updated" in names
    (system,) = [p for n, p in events if n == "message_created"]
    assert system["kind"] == "system" and system["role"] == "system"
    assert system["data"]["action"] == "end_mediation"
    assert system["data"]["status"] == "in_arbitration"
    assert system["data"]["reason"] == "No deal."
    assert code(send(mediator, world.case_id, "Anyone?", "late-1")) == "read_only"
    answer = join(consumer, world.case_id)
    assert answer["read_only"] is True
    assert [m["data"]["action"] for m in answer["messages"]] == [
        "take",
        "end_mediation",
    ]
    # The arbitrator who takes the case reads the joint room, nothing else.
    world.act("take", "arb", "arbitrator")
    arbitrator = world.socket("arb")
    assert join(arbitrator, world.case_id)["read_only"] is True
    caucus = join(arbitrator, world.case_id, "caucus", party="consumer")
    assert code(caucus) == "forbidden"


def test_attachment_card_for_evidence_of_the_sender(world):
    import io

    from mediation.cases.evidence import add_evidence

    with world.app.app_context():
        case = db.session.get(Case, world.case_id)
        own = add_evidence(
            case,
            io.BytesIO(b"Receipt: one kettle.\n"),
            "receipt.txt",
            actor=db.session.get(User, world.user("A").id),
            relation="consumer",
            now=clock.now_utc(),
        )
        theirs = add_evidence(
            case,
            io.BytesIO(b"Shipping note.\n"),
            "note.txt",
            actor=db.session.get(User, world.user("S").id),
            relation="merchant",
            now=clock.now_utc(),
        )
        db.session.commit()
        own_id, theirs_id = own.id, theirs.id
    consumer = world.socket("A")
    answer = send(consumer, world.case_id, "", "att-1", evidence_id=own_id)
    assert answer["ok"] is True, answer
    message = answer["message"]
    assert message["kind"] == "attachment"
    assert message["data"]["evidence_id"] == own_id
    assert message["data"]["name"] == "receipt.txt"
    refused = send(consumer, world.case_id, "", "att-2", evidence_id=theirs_id)
    assert code(refused) == "validation"


# Typing, presence, read positions ---------------------------------------------


def test_typing_reaches_the_others_not_the_typist(world):
    consumer, merchant = world.socket("A"), world.socket("S")
    join(consumer, world.case_id)
    join(merchant, world.case_id)
    consumer.get_received(NS)
    merchant.get_received(NS)
    answer = ack(consumer, "typing", {"case_id": world.case_id, "room": "joint"})
    assert answer == {"ok": True}
    (typing,) = received(merchant, "typing")
    assert typing["user"]["name"] == "Consumer A" and typing["role"] == "consumer"
    assert received(consumer, "typing") == []


def test_presence_on_join_leave_and_disconnect(world):
    consumer, merchant = world.socket("A"), world.socket("S")
    join(consumer, world.case_id)
    (first,) = received(consumer, "presence")
    assert [p["name"] for p in first["online"]] == ["Consumer A"]
    join(merchant, world.case_id)
    (both,) = received(consumer, "presence")
    assert [(p["name"], p["role"]) for p in both["online"]] == [
        ("Consumer A", "consumer"),
        ("Staff S", "merchant"),
    ]
    assert received(merchant, "presence") == [both]
    # A second tab of the same person is still one person online.
    tab = world.socket("S")
    join(tab, world.case_id)
    (three,) = received(consumer, "presence")
    assert len(three["online"]) == 2
    assert ack(tab, "leave_case", {"case_id": world.case_id, "room": "joint"}) == {
        "ok": True
    }
    (after_leave,) = received(consumer, "presence")
    assert len(after_leave["online"]) == 2
    merchant.disconnect(namespace=NS)
    (after_disconnect,) = received(consumer, "presence")
    assert [p["name"] for p in after_disconnect["online"]] == ["Consumer A"]
    # Left rooms get no more messages.
    send(consumer, world.case_id, "still there?", "p-1")
    assert received(tab, "message_created") == []


def test_read_position_moves_forward_only(world):
    consumer, mediator = world.socket("A"), world.socket("M")
    for n in range(3):
        send(mediator, world.case_id, f"m{n}", f"id-{n}")
    read = {"case_id": world.case_id, "room": "joint"}
    assert ack(consumer, "read", {**read, "seq": 3}) == {"ok": True, "last_read": 3}
    assert ack(consumer, "read", {**read, "seq": 2}) == {"ok": True, "last_read": 3}
    # Not past the last message (4).
    assert ack(consumer, "read", {**read, "seq": 99}) == {"ok": True, "last_read": 4}
    assert join(consumer, world.case_id)["last_read"] == 4
    assert code(ack(consumer, "read", {**read, "seq": -1})) == "validation"
    outsider = world.socket("B")
    assert code(ack(outsider, "read", {**read, "seq": 1})) == "not_found"


# Case events in the room ---------------------------------------------------------


def test_proposal_card_and_acceptances(world):
    consumer = world.socket("A")
    join(consumer, world.case_id)
    consumer.get_received(NS)
    world.act(
        "propose",
        "M",
        "mediator",
        type="refund",
        amount=15000,
        deadline=date(2026, 3, 9),
        text="Refund 150 yuan; the shop keeps the kettle.",
    )
    (card,) = received(consumer, "message_created")
    assert card["kind"] == "proposal" and card["role"] == "mediator"
    assert card["author"]["name"] == "Mediator M"
    assert card["data"]["amount"] == 15000
    assert card["data"]["deadline"] == "2026-03-09"
    assert card["data"]["status"] == "open"
    world.act("accept_proposal", "A", "consumer")
    world.act("accept_proposal", "S", "merchant")
    answer = join(consumer, world.case_id, after=0)
    kinds = [(m["kind"], m["data"].get("action")) for m in answer["messages"]]
    assert kinds == [
        ("system", "take"),
        ("proposal", None),
        ("system", "accept_proposal"),
        ("system", "accept_proposal"),
    ]
    # The card shows the proposal as it is now: accepted by both.
    replayed = answer["messages"][1]["data"]
    assert replayed["status"] == "accepted"
    assert replayed["consumer_accepted_at"] and replayed["merchant_accepted_at"]
    assert answer["messages"][-1]["data"]["status"] == "settled"
    assert answer["read_only"] is True


def test_no_system_messages_before_a_mediator_is_assigned(world):
    queued = world.new_case(take=False)
    assert stored(world.app, queued) == []
    world.act("take", "M2", "mediator", case_id=queued)
    assert stored(world.app, queued) == [(1, "system", "")]


def test_a_deadline_reminder_is_a_system_message_in_mediation(world):
    from mediation.sla.sweep import run_sweep

    consumer = world.socket("A")
    join(consumer, world.case_id)
    consumer.get_received(NS)
    with world.app.app_context():
        case = db.session.get(Case, world.case_id)
        due, remind = case.due_at, case.remind_at
    assert remind is not None and remind < due
    report = run_sweep(world.app, now=remind)
    assert [cid for cid, _stage in report.reminded] == [world.case_id]
    (note,) = received(consumer, "message_created")
    assert note["kind"] == "system" and note["data"]["action"] == "remind"
    assert note["data"]["party"] == "mediator"
    assert note["data"]["due_at"] == due.isoformat()


def test_replaced_mediator_is_taken_out_of_the_rooms(world):
    old, consumer = world.socket("M"), world.socket("A")
    join(old, world.case_id)
    join(old, world.case_id, "caucus", party="consumer")
    join(consumer, world.case_id)
    world.act("reassign", "reg", "regulator", user_id=world.user("M2").id)
    old.get_received(NS)
    consumer.get_received(NS)
    send(consumer, world.case_id, "New mediator?", "x-1")
    assert received(old, "message_created") == []
    assert code(join(old, world.case_id)) == "not_found"
    new = world.socket("M2")
    assert join(new, world.case_id)["read_only"] is False


def test_an_unexpected_error_is_an_ack_not_a_crash(world, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(chat, "messages_after", broken)
    consumer = world.socket("A")
    answer = join(consumer, world.case_id)
    assert code(answer) == "internal"
    assert consumer.is_connected(NS)
    monkeypatch.undo()
    assert join(consumer, world.case_id)["ok"] is True


# Cost per event ---------------------------------------------------------------


@contextmanager
def statements(app) -> Iterator[list[str]]:
    """Collect the SQL statements this thread sends while the block runs.

    The test client runs the socket handlers in the test's thread; the mail
    outbox's thread, still sending the setup's notifications, is not counted.
    """
    seen: list[str] = []
    with app.app_context():
        engine = db.engine
    me = threading.get_ident()

    def record(conn, cursor, statement, *args):
        if threading.get_ident() == me:
            seen.append(" ".join(statement.split())[:80])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("actor_auth", ["session", "token"])
def test_each_event_costs_a_fixed_small_number_of_statements(world, actor_auth):
    """The hot path: one query for the user and the case, one to store.

    No lazy loads, no duplicate check before the insert, no savepoint: a new
    statement here is a regression of the chat's latency (BENCHMARKS.md).
    """
    with world.app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    if actor_auth == "session":
        consumer = world.socket("A")
    else:
        consumer = world.socket(None, auth={"token": world.token("A")})
    mediator = world.socket("M")
    room = {"case_id": world.case_id, "room": "joint"}
    for n in range(3):
        send(mediator, world.case_id, f"m{n}", f"warm-{n}")
    with statements(world.app) as seen:
        assert join(consumer, world.case_id, after=1)["ok"] is True
    # user + case, the missed messages with their authors, read position + last seq
    assert len(seen) == 3, seen
    with statements(world.app) as seen:
        assert send(consumer, world.case_id, "Hello", "cost-1")["ok"] is True
    # user + case, then the counter and the insert (one CTE on PostgreSQL)
    assert len(seen) == (2 if postgres else 3), seen
    assert not any("SAVEPOINT" in s for s in seen)
    with statements(world.app) as seen:
        assert send(consumer, world.case_id, "Hello", "cost-1")["duplicate"] is True
    # ... and for a retry: the number given back, the stored message read
    assert len(seen) == (4 if postgres else 5), seen
    with statements(world.app) as seen:
        assert ack(consumer, "typing", room) == {"ok": True}
    assert len(seen) == 1, seen  # user + case; nothing written
    assert seen[0].startswith("SELECT")
    with statements(world.app) as seen:
        assert ack(consumer, "read", {**room, "seq": 5})["last_read"] == 5
    assert len(seen) == 2, seen  # user + case, the upsert


def test_the_in_process_rate_window_moves_with_the_clock():
    from mediation.chat.events import LocalMovingWindow

    window = LocalMovingWindow(2, 10)
    clock.freeze(MONDAY)
    try:
        assert window.hit("a") and window.hit("a")
        assert not window.hit("a")  # a refused hit is not counted
        assert window.hit("b")
        clock.advance(timedelta(seconds=5))
        assert not window.hit("a")
        clock.advance(timedelta(seconds=5, milliseconds=1))
        # The first two hits left the window; "b" is forgotten at the next prune.
        assert window.hit("a")
        assert "b" not in window._hits
        assert window.hit("a") and not window.hit("a")
    finally:
        clock.unfreeze()


def test_socket_events_leave_no_exception_behind(world):
    """Each event runs in a request context for the /socket.io/ path; the URL
    rule for it keeps that context from raising (and keeping) a NotFound with its
    traceback, garbage in reference cycles for every event."""
    consumer = world.socket("A")
    assert join(consumer, world.case_id)["ok"] is True
    with world.app.test_request_context("/socket.io/"):
        from flask import request

        assert request.routing_exception is None
        assert request.url_rule.endpoint == "socketio_transport"
    # Over HTTP, Engine.IO answers the path, never Flask's 404 page.
    client = world.app.test_client()
    answer = client.get("/socket.io/?EIO=4&transport=polling")
    assert answer.status_code in (200, 400), answer.status_code
    assert b"<html" not in answer.data.lower()
