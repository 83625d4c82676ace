"""Concurrent writers of one room on PostgreSQL: gap-free seqs, retries store once."""

from __future__ import annotations

import os
import threading

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.cases.models import Case
from mediation.chat import services as chat
from mediation.chat.models import ChatMessage
from mediation.errors import ValidationError
from mediation.extensions import db
from tests.chat_support import MONDAY, ChatWorld

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="runs in the PostgreSQL pass of .ci/run (TEST_DATABASE_URL)",
)

WRITERS = 6
EACH = 10


@pytest.fixture()
def world(app, make_user, make_merchant, make_case, token_for):
    clock.freeze(MONDAY)
    yield ChatWorld(app, make_user, make_merchant, make_case, token_for)
    clock.unfreeze()


def _run_together(app, work, count: int) -> list:
    """Run ``work(i)`` in ``count`` threads that start at the same moment."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def runner(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                results[i] = work(i)
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def _post(world, actor: str, body: str, client_id: str) -> tuple[int, int, bool]:
    case = db.session.get(Case, world.case_id)
    author = db.session.get(User, world.user(actor).id)
    message, created = chat.post_message(
        case,
        room="joint",
        author=author,
        body=body,
        client_id=client_id,
        now=clock.now_utc(),
    )
    db.session.commit()
    return message.id, message.seq, created


def test_concurrent_writers_get_gap_free_unique_seqs(app, world):
    actors = ("A", "S", "M")

    def work(i: int) -> list[int]:
        actor = actors[i % len(actors)]
        return [_post(world, actor, f"{i}-{n}", f"w{i}-{n}")[1] for n in range(EACH)]

    per_writer = _run_together(app, work, WRITERS)
    for seqs in per_writer:  # each writer's own messages in its order
        assert seqs == sorted(seqs)
    with app.app_context():
        seqs = list(
            db.session.scalars(
                db.select(ChatMessage.seq)
                .where(ChatMessage.case_id == world.case_id)
                .order_by(ChatMessage.seq)
            )
        )
    # seq 1 is the mediator's "take" system message.
    assert seqs == list(range(1, WRITERS * EACH + 2))


def test_concurrent_retries_of_one_message_store_it_once(app, world):
    results = _run_together(
        app, lambda i: _post(world, "A", "Same message", "one-id"), WRITERS
    )
    assert len({(mid, seq) for mid, seq, _ in results}) == 1
    assert sum(created for _, _, created in results) == 1
    with app.app_context():
        count = db.session.scalar(
            db.select(db.func.count(ChatMessage.id)).where(
                ChatMessage.client_id == "one-id"
            )
        )
    assert count == 1


def _seqs(app, case_id: int, room: str) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                db.select(ChatMessage.seq)
                .where(ChatMessage.case_id == case_id, ChatMessage.room == room)
                .order_by(ChatMessage.seq)
            )
        )


def _post_in(world, actor: str, room: str, client_id: str):
    case = db.session.get(Case, world.case_id)
    author = db.session.get(User, world.user(actor).id)
    try:
        message, created = chat.post_message(
            case,
            room=room,
            author=author,
            body=f"{actor} {client_id}",
            client_id=client_id,
            now=clock.now_utc(),
        )
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return exc
    return message.id, message.seq, created


def test_concurrent_first_messages_of_a_room_create_its_counter_once(app, world):
    # caucus:merchant has no message and no counter row yet: the upsert makes
    # it, and the writers that arrive together queue behind it.
    actors = ("S", "M")
    results = _run_together(
        app,
        lambda i: _post_in(world, actors[i % 2], "caucus:merchant", f"first-{i}"),
        WRITERS,
    )
    assert all(created for _, _, created in results)
    assert _seqs(app, world.case_id, "caucus:merchant") == list(range(1, WRITERS + 1))


def test_retries_among_other_writers_store_once_and_leave_no_gap(app, world):
    # Half the threads retry one message of A, the others write their own: the
    # retries that lose give their number back while holding the room's lock.
    def work(i: int):
        if i % 2:
            return _post_in(world, "A", "joint", "retried")
        return _post_in(world, "M", "joint", f"own-{i}")

    results = _run_together(app, work, WRITERS)
    retried = [r for i, r in enumerate(results) if i % 2]
    assert len({(mid, seq) for mid, seq, _ in retried}) == 1
    assert sum(created for _, _, created in retried) == 1
    # seq 1 is the "take" system message; then one per distinct message.
    assert _seqs(app, world.case_id, "joint") == list(range(1, WRITERS // 2 + 3))


def test_one_client_id_in_two_rooms_at_once_stores_once(app, world):
    rooms = ("joint", "caucus:consumer")
    results = _run_together(
        app, lambda i: _post_in(world, "A", rooms[i % 2], "twice"), 2
    )
    stored = [r for r in results if not isinstance(r, ValidationError)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(stored) == 1 and len(refused) == 1
    assert stored[0][2] is True
    # Neither room lost a number to the refused copy.
    assert _seqs(app, world.case_id, "joint") in ([1], [1, 2])
    assert _seqs(app, world.case_id, "caucus:consumer") in ([], [1])
    assert (
        len(_seqs(app, world.case_id, "joint"))
        + len(_seqs(app, world.case_id, "caucus:consumer"))
        == 2
    )
    with app.app_context():
        assert chat.last_seq(db.session.get(Case, world.case_id), "joint") == len(
            _seqs(app, world.case_id, "joint")
        )


def test_two_tabs_marking_read_at_once_keep_the_furthest(app, world):
    for n in range(WRITERS):
        with app.app_context():
            _post(world, "M", f"m{n}", f"m-{n}")

    def work(i: int) -> int:
        case = db.session.get(Case, world.case_id)
        user = db.session.get(User, world.user("A").id)
        position = chat.mark_read(user, case, "joint", i + 1, now=clock.now_utc())
        db.session.commit()
        return position.seq

    results = _run_together(app, work, WRITERS)
    assert all(seq >= i + 1 for i, seq in enumerate(results))
    with app.app_context():
        case = db.session.get(Case, world.case_id)
        user = db.session.get(User, world.user("A").id)
        assert chat.read_position(user, case, "joint") == WRITERS
