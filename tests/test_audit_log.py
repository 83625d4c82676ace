"""The audit log: regulators' actions land in it (case actions, credit repair,
the registry, staff accounts, claims), the page /supervision/audit shows them
newest first with filters, and only regulators may read it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mediation import clock
from mediation.analytics import audit_views
from mediation.analytics.audit import record_audit
from mediation.analytics.audit_models import AuditEntry
from mediation.auth.models import User
from mediation.auth.services import submit_claim
from mediation.cases import services
from mediation.cases.models import Case, CaseEvent
from mediation.credit.models import CreditRepair
from mediation.extensions import db
from mediation.merchants.models import Merchant
from mediation.merchants.uscc import check_character

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
PAGE = "/supervision/audit"


@pytest.fixture(autouse=True)
def _monday(app):
    clock.freeze(MONDAY)
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    yield
    clock.unfreeze()


@pytest.fixture()
def people(make_user, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")
    shop = make_merchant(
        name="Kettle Shop", platform_id=mall.id, arbitration_consent=True
    )
    return {
        "mall": mall,
        "shop": shop,
        "regulator": make_user("regulator", name="Wang Regulator", locale="en"),
        "consumer": make_user("consumer", name="Zhang Consumer", locale="en"),
        "staff": make_user("merchant", merchant_id=shop.id, locale="en"),
        "mediator": make_user("mediator", name="Mediator One", locale="en"),
        "mediator2": make_user("mediator", name="Mediator Two", locale="en"),
        "arbitrator": make_user("arbitrator", locale="en"),
        "arbitrator2": make_user("arbitrator", locale="en"),
    }


def entries(app, prefix: str = "") -> list[AuditEntry]:
    with app.app_context():
        found = list(
            db.session.scalars(
                db.select(AuditEntry)
                .where(AuditEntry.action.startswith(prefix))
                .order_by(AuditEntry.id)
            )
        )
        db.session.expunge_all()
        return found


def act(app, case_id, action, user, relation, **payload):
    with app.app_context():
        services.apply_action(
            db.session.get(Case, case_id),
            action,
            payload,
            actor=db.session.get(User, user.id) if user else None,
            relation=relation,
            now=clock.now_utc(),
        )
        db.session.commit()


def uscc(n: int) -> str:
    body = f"9133010{7000 + n:010d}"
    return body + check_character(body)


# Regulators' case actions -----------------------------------------------------------


def test_linking_and_dismissing_intake_cases_are_recorded(app, make_case, people):
    linked = make_case(people["consumer"], None, merchant_name="Kettle shop (typo)")
    dismissed = make_case(people["consumer"], None, merchant_name="Nowhere")
    act(
        app,
        linked,
        "link_merchant",
        people["regulator"],
        "regulator",
        merchant_id=people["shop"].id,
    )
    act(
        app,
        dismissed,
        "dismiss",
        people["regulator"],
        "regulator",
        reason="Duplicate of MC-1.",
    )
    link, dismiss = entries(app, "case.")
    assert (link.action, link.object_type, link.object_id) == (
        "case.link_merchant",
        "case",
        linked,
    )
    assert link.actor_id == people["regulator"].id
    assert link.actor_role == "regulator"
    with app.app_context():
        event = db.session.scalar(
            db.select(CaseEvent).where(
                CaseEvent.case_id == linked, CaseEvent.action == "link_merchant"
            )
        )
        reference = db.session.get(Case, linked).reference
    assert link.details == {
        "reference": reference,
        "from_status": "submitted",
        "to_status": "awaiting_merchant",
        "merchant_id": people["shop"].id,
        "merchant_name": "Kettle Shop",
        "event_seq": event.seq,
        "event_hash": event.hash,
    }
    assert dismiss.action == "case.dismiss"
    assert dismiss.details["reason"] == "Duplicate of MC-1."
    assert dismiss.details["to_status"] == "rejected"


def test_reassigning_and_deciding_an_objection_are_recorded(app, make_case, people):
    case_id = make_case(people["consumer"], people["shop"], arbitration_consent=True)
    act(app, case_id, "reject", people["staff"], "merchant", reason="No.")
    act(app, case_id, "take", people["mediator"], "mediator")
    act(
        app,
        case_id,
        "reassign",
        people["regulator"],
        "regulator",
        user_id=people["mediator2"].id,
    )
    act(
        app,
        case_id,
        "end_mediation",
        people["mediator2"],
        "mediator",
        reason="No deal.",
    )
    act(app, case_id, "take", people["arbitrator"], "arbitrator")
    act(app, case_id, "object_arbitrator", people["staff"], "merchant", reason="Bias.")
    act(
        app,
        case_id,
        "decide_objection",
        people["regulator"],
        "regulator",
        decision="dismissed",
        reason="No sign of bias.",
    )
    recorded = entries(app, "case.")
    assert [e.action for e in recorded] == ["case.reassign", "case.decide_objection"]
    reassign, objection = recorded
    assert reassign.details["user_id"] == people["mediator2"].id
    assert objection.details["decision"] == "dismissed"
    assert objection.details["reason"] == "No sign of bias."
    # The parties', mediators' and arbitrators' own actions are not regulator
    # actions: none of them is in the log.
    assert {e.action for e in entries(app)} == {
        "case.reassign",
        "case.decide_objection",
    }


def test_the_systems_and_the_parties_actions_are_not_recorded(app, make_case, people):
    case_id = make_case(people["consumer"], people["shop"])
    act(app, case_id, "withdraw", people["consumer"], "consumer", reason="Sorted.")
    other = make_case(people["consumer"], people["shop"], order_ref="ORDER-2")
    act(app, other, "expire", None, "system")
    assert entries(app) == []


# Credit repair, registry, accounts, claims ------------------------------------------


def test_credit_repair_decisions_are_recorded(app, client, auth, people):
    with app.app_context():
        application = CreditRepair(
            merchant_id=people["shop"].id,
            applicant_id=people["staff"].id,
            event_ids=[],
            commitment="We answer within a day.",
            created_at=clock.now_utc(),
            status="pending",
        )
        db.session.add(application)
        db.session.commit()
        repair_id = application.id
    auth.login(people["regulator"])
    response = client.post(
        f"/credit/repairs/{repair_id}",
        data={"decision": "refuse", "reason": "The refund is not proven."},
    )
    assert response.status_code == 303
    (entry,) = entries(app)
    assert (entry.action, entry.object_type, entry.object_id) == (
        "credit_repair.refuse",
        "credit_repair",
        repair_id,
    )
    assert entry.details == {
        "merchant_id": people["shop"].id,
        "event_ids": [],
        "reason": "The refund is not proven.",
        "performance_verified": False,
    }


def test_registry_changes_are_recorded_from_pages_and_api(
    app, client, auth, people, token_for
):
    auth.login(people["regulator"])
    created = client.post(
        "/merchants/admin/new",
        data={
            "name": "Page Shop",
            "uscc": uscc(1),
            "kind": "goods",
            "platform_id": "",
            "region_code": "330106",
        },
    )
    assert created.status_code == 302
    headers = token_for(people["regulator"])
    api = client.post(
        "/api/v1/merchants",
        json={
            "name": "API Shop",
            "uscc": uscc(2),
            "kind": "service",
            "region_code": "110101",
        },
        headers=headers,
    )
    assert api.status_code == 201
    shop_id = people["shop"].id
    assert (
        client.patch(
            f"/api/v1/merchants/{shop_id}",
            json={"commitment": "Refunds within 3 days."},
            headers=headers,
        ).status_code
        == 200
    )
    # Saving an unchanged entry records nothing.
    assert (
        client.patch(
            f"/api/v1/merchants/{shop_id}",
            json={"commitment": "Refunds within 3 days."},
            headers=headers,
        ).status_code
        == 200
    )
    recorded = entries(app, "merchant.")
    assert [e.action for e in recorded] == [
        "merchant.create",
        "merchant.create",
        "merchant.update",
    ]
    assert recorded[0].details == {
        "name": "Page Shop",
        "uscc": uscc(1),
        "kind": "goods",
        "region_code": "330106",
    }
    assert recorded[1].object_id == api.get_json()["id"]
    assert recorded[2].object_id == shop_id
    assert recorded[2].details == {
        "name": "Kettle Shop",
        "changed": {"commitment": [None, "Refunds within 3 days."]},
    }
    assert all(e.actor_id == people["regulator"].id for e in recorded)

    edited = client.post(
        f"/merchants/admin/{shop_id}/edit",
        data={
            "name": "Kettle Shop",
            "uscc": people["shop"].uscc,
            "kind": "goods",
            "platform_id": str(people["mall"].id),
            "region_code": "330106",
            "commitment": "Refunds within 3 days.",
            "arbitration_consent": "y",
            "shop_url": "https://kettle.example.cn",
        },
    )
    assert edited.status_code == 302
    last = entries(app, "merchant.")[-1]
    assert (last.action, last.object_id) == ("merchant.update", shop_id)
    assert last.details["changed"] == {"shop_url": [None, "https://kettle.example.cn"]}


def test_an_import_is_recorded_once_with_its_counts(app, runner, tmp_path: Path):
    path = tmp_path / "merchants.csv"
    path.write_text(
        "name,uscc,kind,region_code\n"
        f"Imported One,{uscc(3)},goods,330106\n"
        "Broken,123,goods,330106\n"
        f"Imported Two,{uscc(4)},service,330106\n",
        encoding="utf-8",
    )
    result = runner.invoke(args=["import-merchants", str(path)])
    assert result.exit_code == 1
    (entry,) = entries(app)
    with app.app_context():
        ids = sorted(
            db.session.scalars(
                db.select(Merchant.id).where(Merchant.name.like("Imported%"))
            )
        )
    assert (entry.action, entry.actor_id, entry.actor_role) == (
        "merchant.import",
        None,
        "system",
    )
    assert entry.details == {
        "file": "merchants.csv",
        "imported": 2,
        "rejected": 1,
        "merchant_ids": ids,
    }


def test_staff_accounts_and_claim_decisions_are_recorded(app, client, auth, people):
    with app.app_context():
        claimant = db.session.get(User, people["consumer"].id)
        claim = submit_claim(
            claimant,
            db.session.get(Merchant, people["shop"].id),
            "I run it.",
            now=clock.now_utc(),
        )
        db.session.commit()
        claim_id = claim.id
    # Self-registration is not a regulator action.
    client.post(
        "/register",
        data={
            "name": "New Consumer",
            "email": "new@example.com",
            "password": "correct-horse-9",
            "confirm": "correct-horse-9",
            "locale": "en",
        },
    )
    client.post("/logout")
    auth.login(people["regulator"])
    made = client.post(
        "/admin/staff",
        data={
            "name": "Mia Mediator",
            "email": "mia@example.com",
            "password": "correct-horse-9",
            "role": "mediator",
            "locale": "en",
            "categories": ["delivery"],
        },
    )
    assert made.status_code == 302
    decided = client.post(
        f"/admin/claims/{claim_id}", data={"decision": "reject", "note": "No proof."}
    )
    assert decided.status_code == 302
    created, rejected = entries(app)
    with app.app_context():
        mia = db.session.scalar(db.select(User).where(User.email == "mia@example.com"))
    assert (created.action, created.object_type, created.object_id) == (
        "user.create",
        "user",
        mia.id,
    )
    assert created.details == {
        "email": "mia@example.com",
        "name": "Mia Mediator",
        "role": "mediator",
        "merchant_id": None,
        "categories": ["delivery"],
    }
    assert "password" not in str(created.details)
    assert (rejected.action, rejected.object_id) == ("claim.reject", claim_id)
    assert rejected.details["note"] == "No proof."
    assert rejected.details["merchant_id"] == people["shop"].id

    with app.app_context():
        again = submit_claim(
            db.session.get(User, people["consumer"].id),
            db.session.get(Merchant, people["shop"].id),
            "Here is the business licence.",
            now=clock.now_utc(),
        )
        db.session.commit()
        again_id = again.id
    client.post(f"/admin/claims/{again_id}", data={"decision": "approve"})
    approved = entries(app, "claim.")[-1]
    assert (approved.action, approved.object_id) == ("claim.approve", again_id)
    assert approved.details["user_id"] == people["consumer"].id


# The page ---------------------------------------------------------------------


def _record(app, actor, action, object_type, object_id=None, details=None, at=None):
    with app.app_context():
        record_audit(
            db.session.get(User, actor.id) if actor else None,
            action,
            object_type=object_type,
            object_id=object_id,
            details=details or {},
            now=at or clock.now_utc(),
        )
        db.session.commit()


def _shown(response) -> list[str]:
    return re.findall(
        r'data-testid="audit-entry" data-entry-id="\d+" data-action="([^"]+)"',
        response.get_data(as_text=True),
    )


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("consumer", 403),
        ("staff", 403),
        ("mediator", 403),
        ("arbitrator", 403),
        ("regulator", 200),
    ],
)
def test_only_regulators_read_the_log(client, auth, people, who, status):
    auth.login(people[who])
    assert client.get(PAGE).status_code == status


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_the_page_filters_newest_first(app, client, auth, people):
    other = people["regulator"]
    _record(
        app,
        other,
        "warning.publish",
        "warning",
        7,
        {"title": "Kettles"},
        MONDAY - timedelta(days=3),
    )
    _record(
        app,
        people["mediator"],
        "export.cases",
        "export",
        None,
        {"filters": {"statuses": ["in_mediation"]}, "rows": 3, "personal_data": False},
    )
    _record(
        app, None, "merchant.import", "merchant", None, {"file": "m.csv", "imported": 2}
    )
    _record(
        app,
        other,
        "case.dismiss",
        "case",
        12,
        {"reason": "Duplicate."},
        MONDAY + timedelta(hours=1),
    )
    auth.login(people["regulator"])

    assert _shown(client.get(PAGE)) == [
        "case.dismiss",
        "merchant.import",
        "export.cases",
        "warning.publish",
    ]
    assert _shown(client.get(f"{PAGE}?actor=mediator")) == ["export.cases"]
    assert _shown(client.get(f"{PAGE}?actor=Wang")) == [
        "case.dismiss",
        "warning.publish",
    ]
    assert _shown(client.get(f"{PAGE}?actor=system")) == ["merchant.import"]
    assert _shown(client.get(f"{PAGE}?action=warning")) == ["warning.publish"]
    assert _shown(client.get(f"{PAGE}?action=case.")) == ["case.dismiss"]
    assert _shown(client.get(f"{PAGE}?action=%25")) == []
    assert _shown(client.get(f"{PAGE}?object_type=case&object_id=12")) == [
        "case.dismiss"
    ]
    assert _shown(client.get(f"{PAGE}?object_type=case&object_id=13")) == []
    assert _shown(client.get(f"{PAGE}?from=2026-02-27&to=2026-02-27")) == [
        "warning.publish"
    ]
    assert _shown(client.get(f"{PAGE}?from=2026-03-02")) == [
        "case.dismiss",
        "merchant.import",
        "export.cases",
    ]

    html = client.get(f"{PAGE}?action=export").get_data(as_text=True)
    assert "Exported cases as CSV" in html
    assert 'title="filters.statuses">Filters · statuses:</span> in_mediation' in html
    assert 'title="personal_data">Personal data:</span> ✗' in html
    dismiss = client.get(f"{PAGE}?action=case").get_data(as_text=True)
    assert 'href="/cases/12"' in dismiss


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("object_id=abc", "object_id"),
        ("object_id=99999999999", "object_id"),
        ("from=2026-02-30", "from"),
        ("from=2026-03-05&to=2026-03-01", "to"),
    ],
)
def test_bad_filters_are_marked_not_a_500(app, client, auth, people, query, field):
    _record(app, people["regulator"], "warning.publish", "warning", 1)
    auth.login(people["regulator"])
    response = client.get(f"{PAGE}?{query}")
    assert response.status_code == 422
    assert f'data-error="{field}"' in response.get_data(as_text=True)
    assert client.get(f"{PAGE}?page=abc").status_code == 400


def test_the_page_is_paginated(app, client, auth, people, monkeypatch):
    monkeypatch.setattr(audit_views, "PER_PAGE", 2)
    for n in range(5):
        _record(
            app,
            people["regulator"],
            f"warning.step{n}",
            "warning",
            n,
            at=MONDAY + timedelta(minutes=n),
        )
    auth.login(people["regulator"])
    assert _shown(client.get(PAGE)) == ["warning.step4", "warning.step3"]
    assert _shown(client.get(f"{PAGE}?page=3")) == ["warning.step0"]
    assert _shown(client.get(f"{PAGE}?page=3&action=warning.step")) == ["warning.step0"]
    assert _shown(client.get(f"{PAGE}?page=9")) == []
