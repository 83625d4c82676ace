"""The access matrix: every actor against every endpoint, on own and others' objects.

DESIGN.md: "Access is by role AND by relation ... Denied access answers 404 for
objects the user may not know exist, 403 otherwise." Each row of :data:`MATRIX`
is one endpoint of ``app.url_map`` (method and rule, sometimes with a variant:
another action, another case) in one channel, and says what each actor gets:

- ``html``: the pages, with a session opened through ``POST /login``;
- ``api``: the JSON API with a bearer token (``Authorization: Bearer``);
- ``cookie``: the JSON API on the browser session (a few reads).

The actors (:data:`ACTORS`):

==========  ==============================================================
``anon``    nobody signed in
``A``       consumer A, who filed the cases below
``B``       another consumer
``S``       staff of shop S, the merchant of the cases
``T``       staff of another shop T
``P``       staff of platform P, the platform shop S sells on
``med``     a mediator
``arb``     an arbitrator
``reg``     a regulator
==========  ==============================================================

The objects: the *main* case of A against S, awaiting the merchant's answer,
with one evidence file; a case of A against S *in mediation* without a mediator;
a case of A against S *escalated* to platform P; a case of A against S *in
arbitration* without an arbitrator (the mediator mediated it); a notification of
A; an API token of A; a merchant claim of a third consumer (about shop T); the
merchants.
Actions that change a case run on a fresh case per actor.

A cell is a status code, or one of:

- :data:`LOGIN`: an HTML page sends the visitor to ``/login`` (302; the case
  pages answer a POST with 303), with ``next`` = the page for a GET, none for a
  POST (it cannot be replayed);
- :data:`DONE` / :data:`REFUSED`: an HTML form answered with 303 back to the case
  page with a success / an error message (the page's way of saying 200 / 409);
- :func:`sees`: a case list (200) showing exactly these of the world's cases;
- :func:`notes`: a notification list (200), with A's notification or not, and
  never a notification about a case the reader may not see.

:func:`test_every_endpoint_is_in_the_matrix` fails when a route has no row, so a
new endpoint cannot ship without its access rules.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mediation import clock
from mediation.auth.models import User
from mediation.auth.services import issue_token, submit_claim
from mediation.cases import services
from mediation.cases.evidence import add_evidence
from mediation.cases.models import Case
from mediation.extensions import db
from mediation.merchants.models import Merchant
from mediation.merchants.uscc import check_character
from mediation.notifications.services import notify
from tests.conftest import PASSWORD

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
ACTORS = ("anon", "A", "B", "S", "T", "P", "med", "arb", "reg")
#: Which of the world's cases each actor may see (lists, and the leak check).
VISIBLE: dict[str, frozenset[str]] = {
    "anon": frozenset(),
    "A": frozenset({"main", "mediation", "escalated", "arbitration"}),
    "B": frozenset(),
    "S": frozenset({"main", "mediation", "escalated", "arbitration"}),
    "T": frozenset(),
    "P": frozenset({"escalated"}),
    # The mediator who mediated the case in arbitration is still assigned to it.
    "med": frozenset({"mediation", "arbitration"}),
    "arb": frozenset({"arbitration"}),
    "reg": frozenset({"main", "mediation", "escalated", "arbitration"}),
}

#: The world's cases, all of A against S: the main one (awaiting S), one in
#: mediation without a mediator, one escalated to P, one in arbitration without
#: an arbitrator (mediated by the mediator).
CASES = ("main", "mediation", "escalated", "arbitration")
#: What the list rows need to exist before the request.
EVERY_CASE = (*CASES, "note")

LOGIN = "-> /login"
DONE = "303 done"
REFUSED = "303 refused"


def sees(*names: str) -> str:
    """A case list (200) showing exactly these of the world's cases."""
    return "200 sees " + (",".join(sorted(names)) or "nothing")


def notes(*, own: bool, leaks: tuple[str, ...] = ()) -> str:
    """A notification list (200): with A's notification or not, and any leaks."""
    label = "200 +note" if own else "200"
    return label + (f" LEAKS {','.join(sorted(leaks))}" if leaks else "")


def cells(default: Any, **given: Any) -> dict[str, Any]:
    """Return a full row of expectations: ``default`` except for ``given`` actors."""
    unknown = set(given) - set(ACTORS)
    assert not unknown, f"unknown actors {unknown}"
    return {actor: given.get(actor, default) for actor in ACTORS}


# Requests ----------------------------------------------------------------------

Body = Callable[["World", str], dict[str, Any]]


def _form(**data: Any) -> Body:
    return lambda w, actor: {"data": dict(data)}


def _json(**data: Any) -> Body:
    return lambda w, actor: {"json": dict(data)}


def _login_body(w: World, actor: str) -> dict[str, Any]:
    user = w.users["A" if actor == "anon" else actor]
    return {"data": {"email": user.email, "password": PASSWORD}}


def _token_body(w: World, actor: str) -> dict[str, Any]:
    return {"json": _login_body(w, actor)["data"]}


def _register_form(w: World, actor: str) -> dict[str, Any]:
    n = w.unique()
    return {
        "data": {
            "name": f"New {n}",
            "email": f"new{n}@example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "locale": "en",
        }
    }


def _register_json(w: World, actor: str) -> dict[str, Any]:
    n = w.unique()
    return {
        "json": {
            "name": f"New {n}",
            "email": f"new{n}@example.com",
            "password": PASSWORD,
        }
    }


def _staff_form(w: World, actor: str) -> dict[str, Any]:
    n = w.unique()
    return {
        "data": {
            "name": f"Mediator {n}",
            "email": f"staff{n}@example.com",
            "password": PASSWORD,
            "role": "mediator",
            "locale": "zh_CN",
        }
    }


def _claim_form(w: World, actor: str) -> dict[str, Any]:
    return {
        "data": {"merchant_id": str(w.other_shop.id), "statement": "I run the shop."}
    }


def _filing_form(w: World, actor: str) -> dict[str, Any]:
    return {
        "data": {
            "merchant_query": w.shop.name,
            "merchant_id": str(w.shop.id),
            "platform_id": "",
            "category": "quality_defect",
            "order_ref": f"HTML-{w.unique()}",
            "order_date": "2026-02-20",
            "amount_paid": "199.00",
            "claim_type": "refund",
            "claim_amount": "199.00",
            "description": "The kettle leaks after two days of use.",
        }
    }


def _filing_json(w: World, actor: str) -> dict[str, Any]:
    return {
        "json": {
            "merchant_id": w.shop.id,
            "category": "quality_defect",
            "order_ref": f"API-{w.unique()}",
            "order_date": "2026-02-20",
            "amount_paid": 19900,
            "claim": {"type": "refund", "amount": 19900},
            "description": "The kettle leaks after two days of use.",
            "arbitration_consent": False,
        }
    }


def _amend_form(w: World, actor: str) -> dict[str, Any]:
    return {
        "data": {
            "category": "quality_defect",
            "order_ref": "ORDER-1",
            "order_date": "2026-01-05",
            "amount_paid": "199.00",
            "claim_type": "refund",
            "claim_amount": "199.00",
            "description": "The kettle leaks after two days; the lid broke too.",
        }
    }


def _merchant_form(w: World, actor: str) -> dict[str, Any]:
    return {
        "data": {
            "name": f"New Shop {w.unique()}",
            "uscc": w.new_uscc(),
            "kind": "goods",
            "platform_id": "",
            "region_code": "330106",
            "commitment": "We answer within a day.",
        }
    }


def _edit_merchant_form(w: World, actor: str) -> dict[str, Any]:
    return {
        "data": {
            "name": w.shop.name,
            "uscc": w.shop.uscc,
            "kind": "goods",
            "platform_id": str(w.platform.id),
            "region_code": "330106",
            "commitment": "We answer within a day.",
        }
    }


def _merchant_json(w: World, actor: str) -> dict[str, Any]:
    return {
        "json": {
            "name": f"New Shop {w.unique()}",
            "uscc": w.new_uscc(),
            "kind": "goods",
            "region_code": "330106",
        }
    }


def _webhook_json(w: World, actor: str) -> dict[str, Any]:
    return {"json": {"url": "https://hooks.example.com/odr", "events": ["case.filed"]}}


def _platform_hook(w: World) -> int:
    """A webhook subscription of platform P's staff, made for each request."""
    from mediation.credit.webhooks import subscribe

    with w.app.app_context():
        subscription, _secret = subscribe(
            db.session.get(User, w.users["P"].id),
            url="https://hooks.example.com/odr",
            events=["credit.listed"],
            now=clock.now_utc(),
        )
        db.session.commit()
        return subscription.id


def _evidence_form(w: World, actor: str) -> dict[str, Any]:
    return {
        "data": {"evidence": (io.BytesIO(b"Chat log with the shop.\n"), "chat.txt")},
        "content_type": "multipart/form-data",
    }


def _evidence_upload(w: World, actor: str) -> dict[str, Any]:
    return {
        "data": {"file": (io.BytesIO(b"Chat log with the shop.\n"), "chat.txt")},
        "content_type": "multipart/form-data",
    }


OFFER_FORM = {
    "offer-type": "refund",
    "offer-amount": "199.00",
    "offer-deadline": "2026-03-09",
    "offer-text": "Full refund to the original payment method.",
}
OFFER_JSON = {
    "action": "offer",
    "type": "refund",
    "amount": 19900,
    "deadline": "2026-03-09",
    "text": "Full refund to the original payment method.",
}
WITHDRAW_FORM = {"withdraw-reason": "The shop refunded me after all."}
WITHDRAW_JSON = {"action": "withdraw", "reason": "The shop refunded me after all."}


# Observations --------------------------------------------------------------------


def _case_names(w: World, ids: set[int]) -> set[str]:
    return {name for name in CASES if name in w.ids and w.ids[name] in ids}


def _listed_api(w: World, actor: str, response) -> str:
    ids = {item["id"] for item in response.get_json()["items"]}
    return sees(*_case_names(w, ids))


def _listed_html(w: World, actor: str, response) -> str:
    html = response.get_data(as_text=True)
    ids = {int(i) for i in re.findall(r'data-case-id="(\d+)"', html)}
    return sees(*_case_names(w, ids))


def _notes_label(w: World, actor: str, own: bool, case_ids: set[int]) -> str:
    leaks = tuple(_case_names(w, case_ids) - VISIBLE[actor])
    return notes(own=own, leaks=leaks)


def _notes_api(w: World, actor: str, response) -> str:
    items = response.get_json()["items"]
    own = any(item["id"] == w.ids["note"] for item in items)
    return _notes_label(w, actor, own, {i["case_id"] for i in items if i["case_id"]})


def _notes_html(w: World, actor: str, response) -> str:
    html = response.get_data(as_text=True)
    own = f'data-id="{w.ids["note"]}"' in html
    case_ids = {int(i) for i in re.findall(r'href="/cases/(\d+)"', html)}
    return _notes_label(w, actor, own, case_ids)


# The table -----------------------------------------------------------------------

CASE = "/cases/<int:case_id>"
API_CASE = "/api/v1/cases/<int(max=2147483647):case_id>"
API_EVIDENCE = API_CASE + "/evidence/<int(max=2147483647):evidence_id>"
AWARD_CASE = "/cases/<int(max=2147483647):case_id>"
API_HOOK = "/api/v1/webhooks/<int(max=2147483647):subscription_id>"
API_WARNING = "/api/v1/warnings/<int(max=2147483647):warning_id>"
ALERT = "/supervision/alerts/<int(max=2147483647):alert_id>"
GROUP = "/supervision/groups/<int(max=2147483647):group_id>"


@dataclass(frozen=True)
class Row:
    """One endpoint in one channel, and what each actor gets there.

    :param rule: the rule as ``app.url_map`` spells it (the coverage check).
    :param path: the URL, formatted with the world's ids (``{case}``, ...).
    :param fresh: makes the ``{case}`` of each request (state-changing rows).
    :param flash: an HTML form that answers with a flash: tell DONE from REFUSED.
    :param observe: turns a 200 into a richer cell (lists).
    :param needs: objects that must exist before the request (lists).
    """

    channel: str
    method: str
    rule: str
    path: str
    expect: dict[str, Any]
    variant: str = ""
    body: Body | None = None
    fresh: Callable[[World], int] | None = None
    flash: bool = False
    observe: Callable[[World, str, Any], str] | None = None
    needs: tuple[str, ...] = ()
    note: str = ""
    id: str = field(init=False)

    def __post_init__(self) -> None:
        short = re.sub(r"<(?:[^>]*:)?(\w+)>", r"<\1>", self.rule)
        label = f"{self.channel} {self.method} {short}"
        object.__setattr__(
            self, "id", f"{label} [{self.variant}]" if self.variant else label
        )


def _html(method: str, rule: str, expect: dict[str, Any], **kw: Any) -> Row:
    path = kw.pop("path", None) or _default_path(rule)
    return Row("html", method, rule, path, expect, **kw)


def _api(method: str, rule: str, expect: dict[str, Any], **kw: Any) -> Row:
    path = kw.pop("path", None) or _default_path(rule)
    return Row(kw.pop("channel", "api"), method, rule, path, expect, **kw)


def _default_path(rule: str) -> str:
    return re.sub(r"<(?:[^>]*:)?(\w+)>", lambda m: "{" + m.group(1) + "}", rule)


def _fresh(w: World) -> int:
    return w.fresh_case()


def _fresh_in_mediation(w: World) -> int:
    return w.fresh_case(then="in_mediation")


def _fresh_escalated(w: World) -> int:
    return w.fresh_case(then="awaiting_platform")


def _fresh_in_arbitration(w: World) -> int:
    return w.fresh_case(then="in_arbitration")


def _awarded(w: World) -> int:
    """A case of A against S awarded by the arbitrator (mediated by the mediator),
    made once per test."""
    if "awarded" not in w.ids:
        case_id = w.fresh_case(then="in_arbitration")
        award = {
            "decision": "granted",
            "findings": "The kettle leaks.",
            "reasons": "The defect is proven.",
            "orders": [
                {
                    "type": "refund",
                    "amount": 19900,
                    "deadline": "2026-03-16",
                    "text": "Full refund.",
                }
            ],
        }
        with w.app.app_context():
            case = db.session.get(Case, case_id)
            arbitrator = db.session.get(User, w.users["arb"].id)
            for action, payload in (("take", {}), ("issue_award", award)):
                services.apply_action(
                    case,
                    action,
                    payload,
                    actor=arbitrator,
                    relation="arbitrator",
                    now=clock.now_utc(),
                )
            db.session.commit()
        w.ids["awarded"] = case_id
    return w.ids["awarded"]


def _warning(w: World, status: str = "published", *, once: bool = False) -> int:
    """A consumer warning naming shop S, written by the regulator (draft or
    published); ``once``: one per test, else one per request."""
    key = f"warning-{status}"
    if once and key in w.ids:
        return w.ids[key]
    from mediation.analytics.warning_services import create_warning

    with w.app.app_context():
        warning = create_warning(
            {
                "title": "Leaking kettles",
                "body": "Kettles of this batch leak.",
                "category": "quality_defect",
                "merchant_ids": [w.shop.id],
            },
            actor=db.session.get(User, w.users["reg"].id),
            now=clock.now_utc(),
            publish=status == "published",
        )
        db.session.commit()
        if once:
            w.ids[key] = warning.id
        return warning.id


def _warning_form(w: World, actor: str) -> dict[str, Any]:
    return {
        "data": {
            "title": "Leaking kettles",
            "category": "quality_defect",
            "body": "Kettles of this batch leak.",
            "merchant_ids": [str(w.shop.id)],
            "op": "save",
        }
    }


def _warning_json(w: World, actor: str) -> dict[str, Any]:
    return {
        "json": {
            "title": "Leaking kettles",
            "body": "Kettles of this batch leak.",
            "category": "quality_defect",
            "merchant_ids": [w.shop.id],
        }
    }


def _repair(w: World) -> int:
    """A pending credit-repair application of shop S (sent by S), made once per
    test."""
    if "repair" not in w.ids:
        from mediation.credit.models import CreditRepair

        with w.app.app_context():
            application = CreditRepair(
                merchant_id=w.shop.id,
                applicant_id=w.users["S"].id,
                event_ids=[],
                commitment="We answer every complaint within a day.",
                created_at=clock.now_utc(),
                status="pending",
            )
            db.session.add(application)
            db.session.commit()
            w.ids["repair"] = application.id
    return w.ids["repair"]


def _alert(w: World) -> int:
    """An open mass-complaint alert of shop S holding the case in arbitration
    (which the mediator mediated), made per request (closing one is final)."""
    from mediation.analytics.alert_models import MassAlert, MassAlertCase

    case_id = w.ids["arbitration"]
    with w.app.app_context():
        now = clock.now_utc()
        # One active alert per merchant and category: the previous one closes.
        for earlier in db.session.scalars(
            db.select(MassAlert).where(MassAlert.status == "open")
        ):
            earlier.status = "resolved"
        db.session.flush()
        alert = MassAlert(
            merchant_id=w.shop.id,
            category="quality_defect",
            threshold=10,
            window_days=7,
            window_start=now - timedelta(days=7),
            count=1,
            status="open",
            raised_at=now,
            raised_by="job",
            last_filed_at=now,
            updated_at=now,
        )
        db.session.add(alert)
        db.session.flush()
        db.session.add(MassAlertCase(alert_id=alert.id, case_id=case_id, added_at=now))
        db.session.commit()
        return alert.id


def _group(w: World) -> int:
    """A case group of shop S handled by the mediator, with the case in
    mediation moved into it; made per request."""
    from mediation.analytics.alert_models import CaseGroup

    case_id = w.ids["mediation"]
    with w.app.app_context():
        now = clock.now_utc()
        group = CaseGroup(
            merchant_id=w.shop.id,
            category="quality_defect",
            title="Leaking kettles",
            mediator_id=w.users["med"].id,
            created_by_id=w.users["reg"].id,
            room_case_id=case_id,
            created_at=now,
            updated_at=now,
        )
        db.session.add(group)
        db.session.flush()
        db.session.get(Case, case_id).group_id = group.id
        db.session.commit()
        return group.id


def _interview(w: World) -> int:
    """A warning interview of shop S planned by the regulator, made once per test."""
    if "interview" not in w.ids:
        from mediation.analytics import interviews

        with w.app.app_context():
            interview = interviews.plan_interview(
                interviews.lock_merchant(w.shop.id),
                interviews.PlanInput(
                    reason="Unanswered complaints.", planned_for=MONDAY.date()
                ),
                actor=db.session.get(User, w.users["reg"].id),
                now=clock.now_utc(),
            )
            db.session.commit()
            w.ids["interview"] = interview.id
    return w.ids["interview"]


def _text_flag(w: World) -> int:
    """A text flag on a case of A against S (刷单 under quality), made once per test."""
    if "flag" not in w.ids:
        from mediation.analytics.tagging_models import TextFlag

        case_id = w._make_case(
            w.users["A"],
            w.shop,
            order_ref=f"ORDER-{w.unique()}",
            description="The kettle leaks, and the shop brushes orders: 刷单.",
        )
        with w.app.app_context():
            w.ids["flag"] = db.session.scalar(
                db.select(TextFlag.id).where(TextFlag.case_id == case_id)
            )
    return w.ids["flag"]


PUBLIC = cells(200)
#: Pages for anyone signed in.
SIGNED_IN = cells(200, anon=LOGIN)
#: Regulator-only pages and endpoints.
REGULATOR_PAGE = cells(403, anon=LOGIN, reg=200)
REGULATOR_API = cells(403, anon=401, reg=200)
#: The main case (awaiting S's answer): A, S and regulators see it.
MAIN_CASE_PAGE = cells(404, anon=LOGIN, A=200, S=200, reg=200)
MAIN_CASE_API = cells(404, anon=401, A=200, S=200, reg=200)
#: The award of a case: its parties, its arbitrator and regulators (the mediator
#: who mediated it sees the case, not the award).
AWARD_PAGE = cells(404, anon=LOGIN, A=200, S=200, med=403, arb=200, reg=200)
AWARD_API = cells(404, anon=401, A=200, S=200, med=403, arb=200, reg=200)
LISTS_HTML = {a: LOGIN if a == "anon" else sees(*VISIBLE[a]) for a in ACTORS}
LISTS_API = {a: 401 if a == "anon" else sees(*VISIBLE[a]) for a in ACTORS}
NOTES_HTML = cells(notes(own=False), anon=LOGIN, A=notes(own=True))
NOTES_API = cells(notes(own=False), anon=401, A=notes(own=True))

MATRIX: list[Row] = [
    # Public pages ------------------------------------------------------------------
    _html("GET", "/", PUBLIC),
    _html("GET", "/health", PUBLIC),
    _html("GET", "/ready", PUBLIC, note="names failed checks only, never details"),
    _html("GET", "/merchants/", PUBLIC),
    _html("GET", "/merchants/<int:merchant_id>", PUBLIC, path="/merchants/{shop}"),
    # Public credit pages (S's own staff also see what would raise its grade).
    _html("GET", "/credit/", PUBLIC),
    _html("GET", "/credit/dishonest", PUBLIC),
    _html("GET", "/credit/methodology", PUBLIC),
    _html(
        "GET",
        "/credit/merchants/<int:merchant_id>",
        PUBLIC,
        path="/credit/merchants/{shop}",
    ),
    _html(
        "GET",
        "/credit/merchants/<int:merchant_id>/events",
        PUBLIC,
        path="/credit/merchants/{shop}/events",
    ),
    _html(
        "GET",
        "/login",
        cells(302, anon=200),
        note="signed-in users are sent on to the start page",
    ),
    _html(
        "POST",
        "/login",
        cells(302),
        body=_login_body,
        note="own credentials (anonymous: A's)",
    ),
    _html("POST", "/logout", cells(LOGIN), note="always ends on the sign-in page"),
    _html(
        "GET",
        "/register",
        cells(302, anon=200),
        note="signed-in users are sent on to the start page",
    ),
    _html("POST", "/register", cells(302), body=_register_form),
    _html("POST", "/language", cells(302), body=_form(locale="en", next="/")),
    # The account -------------------------------------------------------------------
    _html("GET", "/account", SIGNED_IN),
    _html("POST", "/account/tokens", SIGNED_IN),
    _html(
        "POST",
        "/account/tokens/<int:token_id>/revoke",
        cells(404, anon=LOGIN, A=302),
        path="/account/tokens/{token}/revoke",
        note="A's token: nobody else's, not even a regulator's",
    ),
    _html("GET", "/account/claim", cells(403, anon=LOGIN, A=200, B=200)),
    _html(
        "POST",
        "/account/claim",
        cells(403, anon=LOGIN, A=302, B=302),
        body=_claim_form,
    ),
    # Regulator pages ---------------------------------------------------------------
    _html("GET", "/admin/staff", REGULATOR_PAGE),
    _html("POST", "/admin/staff", cells(403, anon=LOGIN, reg=302), body=_staff_form),
    _html("GET", "/admin/claims", REGULATOR_PAGE),
    _html(
        "POST",
        "/admin/claims/<int:claim_id>",
        cells(403, anon=LOGIN, reg=302),
        path="/admin/claims/{claim}",
        body=_form(decision="reject", note="No proof."),
    ),
    _html("GET", "/merchants/admin", REGULATOR_PAGE),
    _html("GET", "/merchants/admin/new", REGULATOR_PAGE),
    _html(
        "POST",
        "/merchants/admin/new",
        cells(403, anon=LOGIN, reg=302),
        body=_merchant_form,
    ),
    _html(
        "GET",
        "/merchants/admin/<int:merchant_id>/edit",
        REGULATOR_PAGE,
        path="/merchants/admin/{shop}/edit",
        note="S's own registry entry: S may not edit it either",
    ),
    _html(
        "POST",
        "/merchants/admin/<int:merchant_id>/edit",
        cells(403, anon=LOGIN, reg=302),
        path="/merchants/admin/{shop}/edit",
        body=_edit_merchant_form,
    ),
    _html("GET", "/cases/intake", REGULATOR_PAGE),
    _html(
        "GET",
        "/mediation",
        cells(403, anon=LOGIN, med=sees("mediation")),
        observe=_listed_html,
        needs=EVERY_CASE,
        note="the mediators' workspace: the queue and the mediator's own caseload",
    ),
    _html(
        "GET",
        "/arbitration",
        cells(403, anon=LOGIN, arb=sees("arbitration"), reg=sees("arbitration")),
        observe=_listed_html,
        needs=EVERY_CASE,
        note="the arbitrators' workspace (queue, caseload); regulators see every "
        "case in arbitration",
    ),
    _html("GET", "/cases/overdue", REGULATOR_PAGE),
    # Credit repair -----------------------------------------------------------------
    _html(
        "GET",
        "/credit/repair",
        cells(403, anon=LOGIN, S=200, T=200, P=200),
        note="merchant staff: their own merchant's record",
    ),
    _html(
        "POST",
        "/credit/repair",
        cells(403, anon=LOGIN, S=422, T=422, P=422),
        body=_form(commitment="We answer every complaint within a day."),
        note="no event chosen: the form again with its errors",
    ),
    _html("GET", "/credit/repairs", REGULATOR_PAGE),
    _html(
        "GET",
        "/credit/repairs/<int:repair_id>",
        REGULATOR_PAGE,
        path="/credit/repairs/{case}",
        fresh=_repair,
        note="S's own application: only regulators review it",
    ),
    _html(
        "POST",
        "/credit/repairs/<int:repair_id>",
        cells(403, anon=LOGIN, reg=303),
        path="/credit/repairs/{case}",
        fresh=_repair,
        body=_form(decision="refuse", reason="The refund is not proven."),
        note="regulators decide (the regulator refuses S's application)",
    ),
    # Supervision: consumer warnings, exports, the audit log ------------------------
    _html("GET", "/warnings/", PUBLIC),
    _html(
        "GET",
        "/warnings/<int:warning_id>",
        PUBLIC,
        path="/warnings/{case}",
        fresh=lambda w: _warning(w, once=True),
    ),
    _html(
        "GET",
        "/warnings/<int:warning_id>",
        cells(404),
        variant="draft",
        path="/warnings/{case}",
        fresh=lambda w: _warning(w, "draft", once=True),
        note="a draft is nobody's public page (regulators preview it elsewhere)",
    ),
    _html("GET", "/supervision/warnings", REGULATOR_PAGE),
    _html("GET", "/supervision/warnings/new", REGULATOR_PAGE),
    _html(
        "POST",
        "/supervision/warnings/new",
        cells(403, anon=LOGIN, reg=303),
        body=_warning_form,
    ),
    _html(
        "GET",
        "/supervision/warnings/<int:warning_id>",
        REGULATOR_PAGE,
        path="/supervision/warnings/{case}",
        fresh=lambda w: _warning(w, "draft", once=True),
    ),
    _html(
        "GET",
        "/supervision/warnings/<int:warning_id>/edit",
        REGULATOR_PAGE,
        path="/supervision/warnings/{case}/edit",
        fresh=lambda w: _warning(w, "draft", once=True),
    ),
    _html(
        "POST",
        "/supervision/warnings/<int:warning_id>/edit",
        cells(403, anon=LOGIN, reg=303),
        path="/supervision/warnings/{case}/edit",
        fresh=lambda w: _warning(w, "draft", once=True),
        body=_warning_form,
    ),
    _html(
        "POST",
        "/supervision/warnings/<int:warning_id>/publish",
        cells(403, anon=LOGIN, reg=303),
        path="/supervision/warnings/{case}/publish",
        fresh=lambda w: _warning(w, "draft"),
    ),
    _html(
        "POST",
        "/supervision/warnings/<int:warning_id>/withdraw",
        cells(403, anon=LOGIN, reg=303),
        path="/supervision/warnings/{case}/withdraw",
        fresh=lambda w: _warning(w),
        body=_form(reason="The batch was recalled."),
    ),
    _html(
        "POST",
        "/supervision/warnings/<int:warning_id>/discard",
        cells(403, anon=LOGIN, reg=303),
        path="/supervision/warnings/{case}/discard",
        fresh=lambda w: _warning(w, "draft"),
    ),
    _html(
        "GET",
        "/supervision/exports",
        cells(403, anon=LOGIN, med=200, arb=200, reg=200),
        note="mediators and arbitrators export their own cases",
    ),
    _html(
        "GET",
        "/supervision/exports/cases.csv",
        cells(403, anon=LOGIN, med=200, arb=200, reg=200),
        needs=EVERY_CASE,
    ),
    _html(
        "GET",
        "/supervision/exports/cases.csv",
        cells(403, anon=LOGIN, med=403, arb=403, reg=200),
        variant="personal data",
        path="/supervision/exports/cases.csv?personal=1",
        note="consumers' personal data: regulators only",
    ),
    _html("GET", "/supervision/audit", REGULATOR_PAGE),
    # Supervision: risk list, warning interviews, text flags (issue #7) -------------
    _html("GET", "/supervision/risk", REGULATOR_PAGE),
    _html(
        "GET",
        "/supervision/risk/merchants/<int:merchant_id>",
        REGULATOR_PAGE,
        path="/supervision/risk/merchants/{shop}",
        note="S's own risk page: regulators only",
    ),
    _html(
        "POST",
        "/supervision/risk/merchants/<int:merchant_id>/refresh",
        cells(403, anon=LOGIN, reg=303),
        path="/supervision/risk/merchants/{shop}/refresh",
    ),
    _html(
        "POST",
        "/supervision/risk/merchants/<int:merchant_id>/interviews",
        cells(403, anon=LOGIN, reg=303),
        path="/supervision/risk/merchants/{shop}/interviews",
        body=_form(reason="Unanswered complaints.", planned_for="2026-03-09"),
        note="the regulator marks S for a warning interview",
    ),
    _html("GET", "/supervision/interviews", REGULATOR_PAGE),
    _html(
        "GET",
        "/supervision/interviews/<int:interview_id>",
        REGULATOR_PAGE,
        path="/supervision/interviews/{case}",
        fresh=_interview,
        note="S's interview: S reads it at /interviews/, not here",
    ),
    _html(
        "POST",
        "/supervision/interviews/<int:interview_id>",
        cells(403, anon=LOGIN, reg=303),
        path="/supervision/interviews/{case}",
        fresh=_interview,
        body=_form(step="cancel", cancel_reason="The shop closed."),
    ),
    _html(
        "GET",
        "/interviews/",
        cells(403, anon=LOGIN, S=200, T=200, P=200),
        note="merchant staff: their own merchant's interviews only",
    ),
    _html("GET", "/supervision/tagging", REGULATOR_PAGE),
    _html(
        "GET",
        "/supervision/tagging/<int:flag_id>",
        REGULATOR_PAGE,
        path="/supervision/tagging/{case}",
        fresh=_text_flag,
    ),
    _html(
        "POST",
        "/supervision/tagging/<int:flag_id>",
        cells(403, anon=LOGIN, reg=303),
        path="/supervision/tagging/{case}",
        fresh=_text_flag,
        body=_form(decision="dismiss", reason="Hearsay."),
    ),
    # Case pages --------------------------------------------------------------------
    _html("GET", "/cases/new", cells(403, anon=LOGIN, A=200, B=200)),
    _html(
        "POST",
        "/cases/new",
        cells(403, anon=LOGIN, A=303, B=303),
        body=_filing_form,
    ),
    _html("GET", "/cases", LISTS_HTML, observe=_listed_html, needs=EVERY_CASE),
    _html("GET", CASE, MAIN_CASE_PAGE),
    _html(
        "GET",
        CASE,
        cells(404, anon=LOGIN, A=200, S=200, med=200, reg=200),
        variant="in mediation, no mediator",
        path="/cases/{mediation}",
    ),
    _html(
        "GET",
        CASE,
        cells(404, anon=LOGIN, A=200, S=200, P=200, reg=200),
        variant="escalated to platform P",
        path="/cases/{escalated}",
    ),
    _html(
        "GET",
        CASE,
        cells(404, anon=LOGIN, A=200, S=200, med=200, arb=200, reg=200),
        variant="in arbitration, no arbitrator",
        path="/cases/{arbitration}",
    ),
    _html(
        "POST",
        CASE + "/actions/<action>",
        cells(404, anon=LOGIN, A=DONE, S=REFUSED, reg=REFUSED),
        variant="withdraw",
        path="/cases/{case}/actions/withdraw",
        body=_form(**WITHDRAW_FORM),
        fresh=_fresh,
        flash=True,
    ),
    _html(
        "POST",
        CASE + "/actions/<action>",
        cells(404, anon=LOGIN, A=REFUSED, S=DONE, reg=REFUSED),
        variant="offer",
        path="/cases/{case}/actions/offer",
        body=_form(**OFFER_FORM),
        fresh=_fresh,
        flash=True,
        note="P may not act (nor know) before the escalation",
    ),
    _html(
        "POST",
        CASE + "/actions/<action>",
        cells(404, anon=LOGIN, A=REFUSED, S=DONE, P=DONE, reg=REFUSED),
        variant="offer, escalated",
        path="/cases/{case}/actions/offer",
        body=_form(**OFFER_FORM),
        fresh=_fresh_escalated,
        flash=True,
    ),
    _html(
        "POST",
        CASE + "/actions/<action>",
        cells(404, anon=LOGIN, A=REFUSED, S=REFUSED, reg=REFUSED),
        variant="take, not in mediation",
        path="/cases/{case}/actions/take",
        fresh=_fresh,
        flash=True,
    ),
    _html(
        "POST",
        CASE + "/actions/<action>",
        cells(404, anon=LOGIN, A=REFUSED, S=REFUSED, med=DONE, reg=REFUSED),
        variant="take, in mediation",
        path="/cases/{case}/actions/take",
        fresh=_fresh_in_mediation,
        flash=True,
    ),
    _html(
        "POST",
        CASE + "/actions/<action>",
        cells(404, anon=LOGIN),
        variant="unknown action",
        path="/cases/{case}/actions/no_such_action",
        flash=True,
    ),
    _html(
        "GET",
        CASE + "/amend",
        cells(404, anon=LOGIN, A=200, S=REFUSED, reg=REFUSED),
        flash=True,
    ),
    _html(
        "POST",
        CASE + "/amend",
        cells(404, anon=LOGIN, A=DONE, S=REFUSED, reg=REFUSED),
        body=_amend_form,
        fresh=_fresh,
        flash=True,
    ),
    _html(
        "POST",
        CASE + "/evidence",
        cells(404, anon=LOGIN, A=DONE, S=DONE, reg=REFUSED),
        body=_evidence_form,
        flash=True,
        note="only the parties add evidence; a regulator may read, not add",
    ),
    _html(
        "GET",
        CASE + "/evidence/<int:evidence_id>",
        MAIN_CASE_PAGE,
    ),
    _html("GET", CASE + "/file", MAIN_CASE_PAGE, note="the case file: parties' own"),
    _html(
        "GET",
        CASE + "/file",
        cells(404, anon=LOGIN, A=200, S=200, med=403, arb=200, reg=200),
        variant="in arbitration, no arbitrator",
        path="/cases/{arbitration}/file",
        note="an arbitrator reads the file before taking the case; its mediator "
        "has the case page, not the file",
    ),
    # Awards --------------------------------------------------------------------------
    _html(
        "GET",
        AWARD_CASE + "/award",
        AWARD_PAGE,
        fresh=_awarded,
        note="the parties, the case's arbitrator, regulators; not the mediator",
    ),
    _html("GET", AWARD_CASE + "/award.pdf", AWARD_PAGE, fresh=_awarded),
    # Notifications -----------------------------------------------------------------
    _html("GET", "/notifications/", NOTES_HTML, observe=_notes_html, needs=EVERY_CASE),
    _html("POST", "/notifications/read", cells(302, anon=LOGIN)),
    _html(
        "POST",
        "/notifications/<int:note_id>/read",
        cells(404, anon=LOGIN, A=302),
        path="/notifications/{note}/read",
    ),
    # API: accounts -----------------------------------------------------------------
    _api(
        "POST",
        "/api/v1/auth/tokens",
        cells(201),
        body=_token_body,
        note="own credentials (anonymous: A's)",
    ),
    _api("DELETE", "/api/v1/auth/tokens/current", cells(204, anon=401)),
    _api("POST", "/api/v1/users", cells(201), body=_register_json),
    _api("GET", "/api/v1/users/me", cells(200, anon=401)),
    # API: cases --------------------------------------------------------------------
    _api(
        "POST",
        "/api/v1/cases",
        cells(403, anon=401, A=201, B=201),
        body=_filing_json,
    ),
    _api("GET", "/api/v1/cases", LISTS_API, observe=_listed_api, needs=EVERY_CASE),
    _api("GET", API_CASE, MAIN_CASE_API),
    _api(
        "GET",
        API_CASE,
        cells(404, anon=401, A=200, S=200, med=200, reg=200),
        variant="in mediation, no mediator",
        path="/api/v1/cases/{mediation}",
    ),
    _api(
        "GET",
        API_CASE,
        cells(404, anon=401, A=200, S=200, P=200, reg=200),
        variant="escalated to platform P",
        path="/api/v1/cases/{escalated}",
    ),
    _api(
        "GET",
        API_CASE,
        cells(404, anon=401, A=200, S=200, med=200, arb=200, reg=200),
        variant="in arbitration, no arbitrator",
        path="/api/v1/cases/{arbitration}",
    ),
    _api(
        "POST",
        API_CASE + "/actions",
        cells(404, anon=401, A=200, S=409, reg=409),
        variant="withdraw",
        body=_json(**WITHDRAW_JSON),
        fresh=_fresh,
    ),
    _api(
        "POST",
        API_CASE + "/actions",
        cells(404, anon=401, A=409, S=200, reg=409),
        variant="offer",
        body=_json(**OFFER_JSON),
        fresh=_fresh,
        note="409 for regulators: they relate to every case but have no offer",
    ),
    _api(
        "POST",
        API_CASE + "/actions",
        cells(404, anon=401, A=409, S=200, P=200, reg=409),
        variant="offer, escalated",
        body=_json(**OFFER_JSON),
        fresh=_fresh_escalated,
    ),
    _api(
        "POST",
        API_CASE + "/actions",
        cells(404, anon=401, A=409, S=409, reg=409),
        variant="take, not in mediation",
        body=_json(action="take"),
        fresh=_fresh,
    ),
    _api(
        "POST",
        API_CASE + "/actions",
        cells(404, anon=401, A=409, S=409, med=200, reg=409),
        variant="take, in mediation",
        body=_json(action="take"),
        fresh=_fresh_in_mediation,
    ),
    _api(
        "POST",
        API_CASE + "/actions",
        cells(404, anon=401, A=409, S=409, med=409, arb=200, reg=409),
        variant="take, in arbitration",
        body=_json(action="take"),
        fresh=_fresh_in_arbitration,
        note="the mediator of the case sees it but may not take the arbitration",
    ),
    _api("GET", API_CASE + "/events", MAIN_CASE_API),
    _api("GET", API_CASE + "/messages", MAIN_CASE_API, note="the joint room"),
    _api(
        "GET",
        API_CASE + "/messages",
        cells(404, anon=401, A=200, S=200, med=403, reg=200),
        variant="joint, in mediation, no mediator",
        path="/api/v1/cases/{mediation}/messages",
        note="a mediator sees the queued case but not its rooms before taking it",
    ),
    _api(
        "GET",
        API_CASE + "/messages",
        cells(404, anon=401, A=200, S=403, med=200, arb=403, reg=403),
        variant="consumer's caucus",
        path="/api/v1/cases/{arbitration}/messages?room=caucus&party=consumer",
        note="a caucus: the party and the assigned mediator only",
    ),
    _api(
        "GET",
        API_CASE + "/messages",
        cells(404, anon=401, A=200, S=200, med=422, arb=403, reg=403),
        variant="own caucus",
        path="/api/v1/cases/{arbitration}/messages?room=caucus",
        note="a party's own caucus needs no party; the mediator must name it",
    ),
    _api(
        "POST",
        API_CASE + "/evidence",
        cells(404, anon=401, A=201, S=201, reg=403),
        body=_evidence_upload,
    ),
    _api("GET", API_EVIDENCE, MAIN_CASE_API),
    _api("GET", API_CASE + "/award", AWARD_API, fresh=_awarded),
    _api(
        "GET",
        API_CASE + "/award",
        cells(404, anon=401, med=403, arb=403),
        variant="in arbitration, no award yet",
        path="/api/v1/cases/{arbitration}/award",
        note="404 for those who may read an award (none yet); the arbitrators "
        "who see it in their queue are not its arbitrator",
    ),
    # API: merchants ----------------------------------------------------------------
    _api("GET", "/api/v1/merchants", PUBLIC),
    _api(
        "POST",
        "/api/v1/merchants",
        cells(403, anon=401, reg=201),
        body=_merchant_json,
    ),
    _api(
        "GET",
        "/api/v1/merchants/<int:merchant_id>",
        PUBLIC,
        path="/api/v1/merchants/{shop}",
    ),
    _api(
        "PATCH",
        "/api/v1/merchants/<int:merchant_id>",
        REGULATOR_API,
        path="/api/v1/merchants/{shop}",
        body=_json(commitment="We answer within a day."),
        note="S's own registry entry: S may not edit it either",
    ),
    _api(
        "GET",
        "/api/v1/merchants/<int:merchant_id>/credit",
        PUBLIC,
        path="/api/v1/merchants/{shop}/credit",
    ),
    # API: credit feed and webhooks ---------------------------------------------------
    _api("GET", "/api/v1/credit/feed", PUBLIC),
    _api(
        "POST",
        "/api/v1/webhooks",
        cells(403, anon=401, P=201, reg=201),
        body=_webhook_json,
        note="platform staff and regulators; a shop's staff (S, T) may not",
    ),
    _api("GET", "/api/v1/webhooks", cells(403, anon=401, P=200, reg=200)),
    _api(
        "DELETE",
        API_HOOK,
        cells(403, anon=401, P=204, reg=404),
        path="/api/v1/webhooks/{case}",
        fresh=_platform_hook,
        note="P's subscription: only its owner knows it",
    ),
    _api(
        "GET",
        API_HOOK + "/deliveries",
        cells(403, anon=401, P=200, reg=404),
        path="/api/v1/webhooks/{case}/deliveries",
        fresh=_platform_hook,
        note="P's subscription: only its owner knows it",
    ),
    # API: consumer warnings, exports -----------------------------------------------
    _api("GET", "/api/v1/warnings", PUBLIC),
    _api(
        "GET",
        "/api/v1/warnings",
        cells(403, reg=200),
        variant="drafts",
        path="/api/v1/warnings?status=draft",
        note="drafts and withdrawn warnings: regulators only",
    ),
    _api(
        "POST",
        "/api/v1/warnings",
        cells(403, anon=401, reg=201),
        body=_warning_json,
    ),
    _api(
        "GET",
        API_WARNING,
        PUBLIC,
        path="/api/v1/warnings/{case}",
        fresh=lambda w: _warning(w, once=True),
    ),
    _api(
        "GET",
        API_WARNING,
        cells(404, reg=200),
        variant="draft",
        path="/api/v1/warnings/{case}",
        fresh=lambda w: _warning(w, "draft", once=True),
    ),
    _api(
        "POST",
        API_WARNING + "/publish",
        cells(403, anon=401, reg=200),
        path="/api/v1/warnings/{case}/publish",
        fresh=lambda w: _warning(w, "draft"),
    ),
    _api(
        "POST",
        API_WARNING + "/withdraw",
        cells(403, anon=401, reg=200),
        path="/api/v1/warnings/{case}/withdraw",
        fresh=lambda w: _warning(w),
        body=_json(reason="The batch was recalled."),
    ),
    _api(
        "GET",
        "/api/v1/exports/cases.csv",
        cells(403, anon=401, med=200, arb=200, reg=200),
        needs=EVERY_CASE,
    ),
    _api(
        "GET",
        "/api/v1/exports/cases.csv",
        cells(403, anon=401, reg=200),
        variant="personal data",
        path="/api/v1/exports/cases.csv?personal=1",
    ),
    # API: notifications, documents ---------------------------------------------------
    _api(
        "GET", "/api/v1/notifications", NOTES_API, observe=_notes_api, needs=EVERY_CASE
    ),
    _api("POST", "/api/v1/notifications/read", cells(200, anon=401)),
    _api(
        "POST",
        "/api/v1/notifications/<int:note_id>/read",
        cells(404, anon=401, A=200),
        path="/api/v1/notifications/{note}/read",
    ),
    _api("GET", "/api/v1/openapi.json", PUBLIC),
    _api("GET", "/api/v1/docs", PUBLIC),
    # API reads on the browser session ----------------------------------------------
    _api("GET", "/api/v1/users/me", cells(200, anon=401), channel="cookie"),
    _api(
        "GET",
        "/api/v1/cases",
        LISTS_API,
        observe=_listed_api,
        needs=EVERY_CASE,
        channel="cookie",
    ),
    _api("GET", API_CASE, MAIN_CASE_API, channel="cookie"),
    _api("GET", API_EVIDENCE, MAIN_CASE_API, channel="cookie"),
    _api(
        "GET",
        "/api/v1/notifications",
        NOTES_API,
        observe=_notes_api,
        needs=EVERY_CASE,
        channel="cookie",
    ),
    # Supervision: the dashboard, its CSV files and the statistics API ---------------
    _html("GET", "/supervision/", REGULATOR_PAGE),
    _html(
        "GET",
        "/supervision/data/<chart>.csv",
        REGULATOR_PAGE,
        path="/supervision/data/categories.csv",
    ),
    _api("GET", "/api/v1/stats", REGULATOR_API),
    _api("GET", "/api/v1/stats", REGULATOR_API, channel="cookie"),
    # Supervision: mass-complaint alerts and case groups -------------------------------
    _html(
        "GET",
        "/supervision/alerts",
        cells(403, anon=LOGIN, med=200, reg=200),
        note="a mediator lists the alerts of the cases they mediate",
    ),
    _html(
        "GET",
        ALERT,
        cells(403, anon=LOGIN, med=200, reg=200),
        path="/supervision/alerts/{case}",
        fresh=_alert,
        note="the mediator mediated the alert's case (others get 404)",
    ),
    _html(
        "POST",
        ALERT + "/group",
        cells(403, anon=LOGIN, med=422, reg=422),
        path="/supervision/alerts/{case}/group",
        fresh=_alert,
        note="nothing ticked: the page again with the error",
    ),
    _html(
        "POST",
        ALERT + "/resolve",
        cells(403, anon=LOGIN, med=403, reg=DONE),
        path="/supervision/alerts/{case}/resolve",
        fresh=_alert,
        body=_form(**{"resolve-note": "Warning interview held."}),
        flash=True,
    ),
    _html(
        "POST",
        ALERT + "/dismiss",
        cells(403, anon=LOGIN, med=403, reg=DONE),
        path="/supervision/alerts/{case}/dismiss",
        fresh=_alert,
        body=_form(**{"dismiss-reason": "Duplicates."}),
        flash=True,
    ),
    _html(
        "GET",
        GROUP,
        cells(403, anon=LOGIN, med=200, reg=200),
        path="/supervision/groups/{case}",
        fresh=_group,
        note="the group's mediator and regulators",
    ),
    _html(
        "POST",
        GROUP + "/mediator",
        cells(403, anon=LOGIN, med=403, reg=422),
        path="/supervision/groups/{case}/mediator",
        fresh=_group,
        body=_form(mediator_id=""),
        note="no mediator chosen: the page again with the error",
    ),
    _html(
        "POST",
        GROUP + "/cases/<int(max=2147483647):case_id>/remove",
        cells(403, anon=LOGIN, med=403, reg=DONE),
        path="/supervision/groups/{case}/cases/{mediation}/remove",
        fresh=_group,
        body=_form(reason="Another order."),
        flash=True,
    ),
    _api("GET", "/api/v1/alerts", cells(403, anon=401, med=200, reg=200)),
    _api(
        "GET",
        "/api/v1/alerts",
        cells(403, anon=401, med=200, reg=200),
        channel="cookie",
    ),
]


# The world -----------------------------------------------------------------------


class _Lazy(dict):
    """A mapping that makes each entry on first use."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: str) -> Any:
        value = self[key] = self._make(key)
        return value


class _Overlay(dict):
    """Some values of a request, the world's ids for the rest."""

    def __init__(self, base: dict[str, Any], **values: Any) -> None:
        super().__init__(values)
        self._base = base

    def __missing__(self, key: str) -> Any:
        return self._base[key]


class World:
    """The actors, the objects, and one client per actor and channel."""

    def __init__(self, app, make_user, make_merchant, make_case, token_for) -> None:
        self.app = app
        self._make_case = make_case
        self._token_for = token_for
        self._counter = itertools.count(1)
        self._clients: dict[tuple[str, str], Any] = {}
        self._headers: dict[str, dict[str, str]] = {}
        self.platform = make_merchant(name="Whale Mall", kind="platform")
        self.shop = make_merchant(
            name="Kettle Shop", platform_id=self.platform.id, arbitration_consent=True
        )
        self.other_shop = make_merchant(name="Tea House")
        self.users = {
            "A": make_user("consumer", name="Consumer A"),
            "B": make_user("consumer", name="Consumer B"),
            "S": make_user("merchant", merchant_id=self.shop.id, name="Staff S"),
            "T": make_user("merchant", merchant_id=self.other_shop.id, name="Staff T"),
            "P": make_user("merchant", merchant_id=self.platform.id, name="Staff P"),
            "med": make_user("mediator"),
            "arb": make_user("arbitrator"),
            "reg": make_user("regulator"),
        }
        self._make_user = make_user
        #: The objects, made when a request first names them (``{case}`` ...).
        self.ids = _Lazy(self._make)

    def _make(self, name: str) -> int:
        """Make the object ``name`` of the world (see :data:`Row.path`)."""
        if name in ("case", "case_id"):
            return self.ids["main"]
        if name == "main":
            return self.fresh_case()
        if name == "mediation":
            return self.fresh_case(then="in_mediation")
        if name == "escalated":
            return self.fresh_case(then="awaiting_platform")
        if name == "arbitration":
            return self.fresh_case(then="in_arbitration")
        if name == "shop":
            return self.shop.id
        main_id = self.ids["main"] if name in ("evidence_id", "note") else None
        with self.app.app_context():
            now = clock.now_utc()
            consumer = db.session.get(User, self.users["A"].id)
            main = db.session.get(Case, main_id) if main_id else None
            if name == "evidence_id":
                made = add_evidence(
                    main,
                    io.BytesIO(b"Receipt: one kettle, 199.00 yuan.\n"),
                    "receipt.txt",
                    actor=consumer,
                    relation="consumer",
                    now=now,
                )
            elif name == "note":
                (made,) = notify(
                    [consumer],
                    "case_route",
                    {"reference": main.reference},
                    case_id=main.id,
                    now=now,
                )
            elif name == "token":
                _secret, made = issue_token(consumer, now=now, ttl=timedelta(hours=1))
            elif name == "claim":
                claimant = self._make_user("consumer", name="Claimant C")
                made = submit_claim(
                    db.session.get(User, claimant.id),
                    db.session.get(Merchant, self.other_shop.id),
                    "I manage the Tea House shop.",
                    now=now,
                )
            else:
                raise KeyError(name)
            db.session.commit()
            return made.id

    def unique(self) -> int:
        return next(self._counter)

    def new_uscc(self) -> str:
        body = f"9133010{5000 + self.unique():010d}"
        return body + check_character(body)

    def fresh_case(self, then: str = "awaiting_merchant") -> int:
        """File a case of A against S (awaiting S) and move it on to ``then``."""
        case_id = self._make_case(
            self.users["A"],
            self.shop,
            order_ref=f"ORDER-{self.unique()}",
            arbitration_consent=then == "in_arbitration",
        )
        steps: list[tuple[str, dict[str, Any], str | None, str]] = []
        if then in ("in_mediation", "in_arbitration"):
            # S rejects: the case waits in the mediators' queue.
            steps.append(("reject", {"reason": "Not our fault."}, "S", "merchant"))
        if then == "in_arbitration":
            # Mediation fails, both agreed to arbitration: the arbitrators' queue.
            failed = {"result": "failed", "reason": "No agreement."}
            steps.append(("take", {}, "med", "mediator"))
            steps.append(("end_mediation", failed, "med", "mediator"))
        if then == "awaiting_platform":
            # S's deadline passes: the SLA sweep's transition to the platform.
            steps.append(("expire", {}, None, "system"))
        with self.app.app_context():
            case = db.session.get(Case, case_id)
            for action, payload, actor, relation in steps:
                user = db.session.get(User, self.users[actor].id) if actor else None
                services.apply_action(
                    case,
                    action,
                    payload,
                    actor=user,
                    relation=relation,
                    now=clock.now_utc(),
                )
            db.session.commit()
            assert case.status == then, (case.status, then)
        return case_id

    def client(self, actor: str, channel: str):
        """Return the actor's client: fresh for anonymous, signed in for pages."""
        if actor == "anon":
            return self.app.test_client()
        kind = "token" if channel == "api" else "session"
        if (actor, kind) not in self._clients:
            client = self.app.test_client()
            if kind == "session":
                response = client.post(
                    "/login",
                    data={"email": self.users[actor].email, "password": PASSWORD},
                )
                assert response.status_code == 302, response.status_code
            self._clients[actor, kind] = client
        return self._clients[actor, kind]

    def headers(self, actor: str, channel: str) -> dict[str, str]:
        if channel != "api" or actor == "anon":
            return {}
        if actor not in self._headers:
            self._headers[actor] = self._token_for(self.users[actor])
        return self._headers[actor]

    def run(self, row: Row, actor: str) -> Any:
        """Send the row's request as ``actor``; return the observed cell."""
        for name in row.needs:
            self.ids[name]
        fresh = {}
        if row.fresh is not None:
            fresh["case"] = fresh["case_id"] = row.fresh(self)
        path = row.path.format_map(_Overlay(self.ids, **fresh))
        client = self.client(actor, row.channel)
        kwargs = row.body(self, actor) if row.body else {}
        response = client.open(
            path, method=row.method, headers=self.headers(actor, row.channel), **kwargs
        )
        try:
            return self._observe(row, actor, client, path, response)
        finally:
            response.close()

    def _observe(self, row: Row, actor: str, client, path: str, response) -> Any:
        status = response.status_code
        if status in (302, 303) and row.channel == "html":
            target = urlsplit(response.headers["Location"])
            if target.path == "/login":
                query = parse_qs(target.query)
                # A GET comes back after sign-in; a POST cannot be replayed.
                wanted = {"next": [path]} if row.method == "GET" else {}
                if query == wanted and (row.method != "GET" or status == 302):
                    return LOGIN
                return f"{status} -> {response.headers['Location']}"
            if row.flash and status == 303:
                with client.session_transaction() as session:
                    kinds = {kind for kind, _ in session.pop("_flashes", [])}
                if "error" in kinds:
                    return REFUSED
                if "success" in kinds:
                    return DONE
        if status == 200 and row.observe is not None:
            return row.observe(self, actor, response)
        return status


@pytest.fixture(name="world")
def world_fixture(app, make_user, make_merchant, make_case, token_for):
    clock.freeze(MONDAY)
    # Every actor signs in once per test: the sign-in limit must not get in the way.
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    yield World(app, make_user, make_merchant, make_case, token_for)
    clock.unfreeze()


# The tests -----------------------------------------------------------------------


@pytest.mark.parametrize("row", MATRIX, ids=[row.id for row in MATRIX])
def test_access(world, row):
    got = {actor: world.run(row, actor) for actor in ACTORS}
    wrong = {
        actor: f"expected {row.expect[actor]!r}, got {got[actor]!r}"
        for actor in ACTORS
        if got[actor] != row.expect[actor]
    }
    assert not wrong, f"{row.id} ({row.note or 'no note'}): {wrong}"


def _routes(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        # The Socket.IO path's rule is never served by Flask (Engine.IO answers
        # it first; see create_app); tests/test_chat_events.py covers /chat.
        if rule.endpoint not in ("static", "socketio_transport")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_endpoint_is_in_the_matrix(app):
    routes = _routes(app)
    rows = {(row.method, row.rule) for row in MATRIX}
    missing = sorted(routes - rows)
    assert not missing, (
        "endpoints without a row in the access matrix (add one to MATRIX in "
        f"tests/test_access_matrix.py): {missing}"
    )
    stale = sorted(rows - routes)
    assert not stale, f"rows of the access matrix without an endpoint: {stale}"


def test_the_matrix_is_well_formed():
    assert len({row.id for row in MATRIX}) == len(MATRIX), "duplicate row ids"
    for row in MATRIX:
        assert set(row.expect) == set(ACTORS), row.id
        assert row.channel in ("html", "api", "cookie"), row.id
        if row.channel != "html":
            assert LOGIN not in row.expect.values(), row.id
