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
