"""Case groups: one mediator handles related complaints (reassignments on the
timeline, assignment on entering mediation, the sweep), and the rules of who
may group what."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mediation import clock
from mediation.analytics import groups
from mediation.analytics.alert_models import CaseGroup
from mediation.analytics.audit_models import AuditEntry
from mediation.auth.models import User
from mediation.auth.permissions import lock_case
from mediation.cases.models import Case
from mediation.errors import PermissionDenied, ValidationError
from mediation.extensions import db
from mediation.notifications.models import Notification
from mediation.sla.sweep import run_sweep
from tests.alert_support import MONDAY, AlertWorld, group_now


@pytest.fixture()
def world(app, make_user, make_merchant, make_case, token_for):
    clock.freeze(MONDAY)
    app.config["MASS_ALERT_THRESHOLD"] = 4
    yield AlertWorld(app, make_user, make_merchant, make_case, token_for)
    clock.unfreeze()


def _notes(world, kind):
    with world.app.app_context():
        return sorted(
            (n.user_id, n.case_id)
            for n in db.session.scalars(
                db.select(Notification).where(Notification.kind == kind)
            )
        )


def test_grouping_hands_every_case_in_mediation_to_the_group_mediator(world):
    ids = world.file(4)
    taken, queued, waiting, _later = ids
    world.to_mediation(taken, take="M2")
    world.to_mediation(queued)
    (alert,) = world.alerts()
    group_id = group_now(world, ids, mediator="M", alert_id=alert["id"])
    m, m2, r = (world.users[k].id for k in ("M", "M2", "R"))

    # Taken by M2: reassigned by the regulator, the group named in the event.
    case = world.case(taken)
    assert case["mediator_id"] == m and case["group_id"] == group_id
    assert case["events"][-1] == (
        "reassign",
        r,
        {"user_id": m, "group_id": group_id},
    )
    # Waiting in the queue: assigned at once, no missed pick-up.
    case = world.case(queued)
    assert case["mediator_id"] == m
    action, actor, data = case["events"][-1]
    assert (action, actor) == ("auto_assign", None)
    assert data["group_id"] == group_id and data["late_party"] is None
    # Not in mediation yet: grouped, no mediator.
    assert world.case(waiting)["mediator_id"] is None
    assert world.case(waiting)["group_id"] == group_id

    # Entering mediation later: the group's mediator at once, a step of its own.
    world.to_mediation(waiting)
    case = world.case(waiting)
    assert [e[0] for e in case["events"][-2:]] == ["reject", "auto_assign"]
    assert case["mediator_id"] == m and case["status"] == "in_mediation"
    told = {
        u for u, case_id in _notes(world, "case_group_assign") if case_id == waiting
    }
    assert {m, world.users["C"].id, world.users["S"].id} <= told

    assert world.alerts()[0]["status"] == "grouped"
    info = world.group(group_id)
    assert info["case_ids"] == sorted(ids) and info["room_case_id"] == min(ids)
    assert info["alert_id"] == alert["id"] and info["mediator_id"] == m
    assert "Promo Shop" in info["title"]
    with world.app.app_context():
        (entry,) = db.session.scalars(
            db.select(AuditEntry).where(AuditEntry.action == "group.create")
        ).all()
        assert entry.actor_id == r and entry.details["case_ids"] == sorted(ids)
    # The mediator, every consumer and the shop's staff were told.
    assert _notes(world, "group_assigned") == [(m, min(ids))]
    assert {case_id for _u, case_id in _notes(world, "case_grouped")} == set(ids)
    assert _notes(world, "group_merchant") == [(world.users["S"].id, min(ids))]


def test_a_grouped_case_entering_mediation_notifies_its_parties(world):
    ids = world.file(2)
    group_now(world, ids, mediator="M")
    world.to_mediation(ids[1])
    recipients = {u for u, case_id in _notes(world, "case_group_assign")}
    assert world.users["M"].id in recipients
    # The step is not "nobody took it in time".
    assert _notes(world, "case_auto_assign") == []


def test_the_sweep_brings_a_grouped_case_to_its_mediator(world):
    ids = world.file(2, shop="T")
    group_id = group_now(world, ids, mediator="M2")
    clock.advance(timedelta(days=10))  # T never answered
    run_sweep(world.app, now=clock.now_utc())
    for case_id in ids:
        case = world.case(case_id)
        assert case["status"] == "in_mediation"
        assert case["mediator_id"] == world.users["M2"].id
        assert [e[0] for e in case["events"][-2:]] == ["expire", "auto_assign"]
        assert case["events"][-1][2]["group_id"] == group_id


def test_an_inactive_group_mediator_leaves_the_case_to_the_queue(world):
    ids = world.file(2)
    group_now(world, ids, mediator="M")
    with world.app.app_context():
        db.session.get(User, world.users["M"].id).is_active_account = False
        db.session.commit()
    world.to_mediation(ids[0])
    assert world.case(ids[0])["mediator_id"] is None
    clock.advance(timedelta(days=3))
    run_sweep(world.app, now=clock.now_utc())
    case = world.case(ids[0])
    assert case["mediator_id"] == world.users["M2"].id
    assert case["events"][-1][2].get("group_id") is None


def test_a_mediator_groups_the_cases_they_mediate_into_their_own_handling(world):
    ids = world.file(3)
    for case_id in ids[:2]:
        world.to_mediation(case_id, take="M")
    world.to_mediation(ids[2], take="M2")
    with pytest.raises(ValidationError) as refused:
        group_now(world, ids, actor="M", mediator="M")
    assert "not mediated by you" in str(refused.value.fields["case_ids"])
    with pytest.raises(ValidationError) as other:
        group_now(world, ids[:2], actor="M", mediator="M2")
    assert "mediator_id" in other.value.fields
    group_id = group_now(world, ids[:2], actor="M", mediator="M")
    for case_id in ids[:2]:
        case = world.case(case_id)
        assert case["group_id"] == group_id and case["events"][-1][0] == "take"
    assert _notes(world, "group_assigned") == []  # M grouped for themselves


@pytest.mark.parametrize(
    "problem", ["one case", "closed", "other shop", "grouped", "inactive", "consumer"]
)
def test_what_cannot_be_grouped(world, problem):
    ids = world.file(2)
    mediator, actor = "M", "R"
    if problem == "one case":
        ids = ids[:1]
    elif problem == "closed":
        world.act(ids[0], "withdraw", "A", "consumer", reason="Done.")
    elif problem == "other shop":
        ids = [ids[0], *world.file(shop="T")]
    elif problem == "grouped":
        group_now(world, ids)
        ids = [ids[0], *world.file()]
    elif problem == "inactive":
        with world.app.app_context():
            db.session.get(User, world.users["M"].id).is_active_account = False
            db.session.commit()
    elif problem == "consumer":
        actor = "A"
    expected = PermissionDenied if problem == "consumer" else ValidationError
    with pytest.raises(expected):
        group_now(world, ids, actor=actor, mediator=mediator)
    with world.app.app_context():
        groups_made = db.session.scalar(db.select(db.func.count(CaseGroup.id)))
        assert groups_made == (1 if problem == "grouped" else 0)


def test_more_cases_join_a_group(world):
    ids = world.file(3)
    group_id = group_now(world, ids[:2], mediator="M")
    world.to_mediation(ids[2], take="M2")
    with world.app.app_context():
        group = db.session.get(CaseGroup, group_id)
        groups.group_cases(
            [lock_case(ids[2])],
            actor=db.session.get(User, world.users["R"].id),
            mediator=None,
            group=group,
            now=clock.now_utc(),
        )
        db.session.commit()
    case = world.case(ids[2])
    assert case["group_id"] == group_id and case["mediator_id"] == world.users["M"].id
    assert case["events"][-1][0] == "reassign"


def test_the_group_goes_to_another_mediator_and_a_case_leaves_it(world):
    ids = world.file(3)
    world.to_mediation(ids[0])
    group_id = group_now(world, ids, mediator="M")
    with world.app.app_context():
        group = db.session.get(CaseGroup, group_id)
        regulator = db.session.get(User, world.users["R"].id)
        with pytest.raises(ValidationError):  # the same mediator
            groups.change_mediator(
                group,
                db.session.get(User, world.users["M"].id),
                actor=regulator,
                now=clock.now_utc(),
            )
        with pytest.raises(PermissionDenied):
            groups.change_mediator(
                group,
                db.session.get(User, world.users["M2"].id),
                actor=db.session.get(User, world.users["M"].id),
                now=clock.now_utc(),
            )
        groups.change_mediator(
            group,
            db.session.get(User, world.users["M2"].id),
            actor=regulator,
            now=clock.now_utc(),
        )
        db.session.commit()
    case = world.case(ids[0])
    assert case["mediator_id"] == world.users["M2"].id
    assert case["events"][-1][0] == "reassign"
    assert world.group(group_id)["mediator_id"] == world.users["M2"].id
    with world.app.app_context():
        group = db.session.get(CaseGroup, group_id)
        regulator = db.session.get(User, world.users["R"].id)
        case = db.session.get(Case, ids[2])
        with pytest.raises(ValidationError):
            groups.remove_case(
                group, case, actor=regulator, reason=" ", now=clock.now_utc()
            )
        groups.remove_case(
            group,
            case,
            actor=regulator,
            reason="Another shop's order.",
            now=clock.now_utc(),
        )
        db.session.commit()
        actions = db.session.scalars(
            db.select(AuditEntry.action).where(AuditEntry.object_type == "group")
        ).all()
    assert sorted(actions) == ["group.create", "group.mediator", "group.remove"]
    assert world.case(ids[2])["group_id"] is None
    assert world.group(group_id)["case_ids"] == sorted(ids[:2])
