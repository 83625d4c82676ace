"""After-commit callbacks: outermost commit only, savepoints respected."""

from __future__ import annotations

import pytest

from mediation.extensions import db
from mediation.unit_of_work import after_commit


def test_callbacks_run_once_after_the_outer_commit(ctx):
    ran: list[str] = []
    after_commit(lambda: ran.append("outer"))
    with db.session.begin_nested():
        after_commit(lambda: ran.append("inner"))
    assert ran == []  # releasing the savepoint is not the commit
    db.session.commit()
    assert ran == ["outer", "inner"]
    db.session.commit()
    assert ran == ["outer", "inner"]


def test_a_rolled_back_savepoint_drops_only_its_own_callbacks(ctx):
    ran: list[str] = []
    after_commit(lambda: ran.append("outer"))
    with pytest.raises(ValueError):
        with db.session.begin_nested():
            after_commit(lambda: ran.append("inner"))
            raise ValueError
    db.session.commit()
    assert ran == ["outer"]


def test_released_then_new_savepoint_rollback_keeps_released_callbacks(ctx):
    ran: list[str] = []
    with db.session.begin_nested():
        after_commit(lambda: ran.append("kept"))
    with pytest.raises(ValueError):
        with db.session.begin_nested():
            after_commit(lambda: ran.append("dropped"))
            raise ValueError
    db.session.commit()
    assert ran == ["kept"]


def test_rollback_drops_everything(ctx):
    ran: list[str] = []
    db.session.execute(db.select(1))  # services register inside a transaction
    after_commit(lambda: ran.append("x"))
    db.session.rollback()
    db.session.commit()
    assert ran == []
