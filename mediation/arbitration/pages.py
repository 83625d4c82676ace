"""What the pages show of arbitration: the case page's arbitration panel, the
choices of the arbitration forms, and the case file.

Reading only: everything here is built from the helpers of
:mod:`mediation.arbitration.services` and the case's own rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import selectinload

from mediation.arbitration import services as arbitration
from mediation.arbitration.models import Award
from mediation.auth.models import User
from mediation.cases import forms
from mediation.cases import lifecycle as lc
from mediation.cases.chain import verify_events
from mediation.cases.models import Case, CaseEvent, Evidence
from mediation.chat import services as chat_services
from mediation.extensions import db

#: Relations that may read the case file: the parties, the arbitrator and
#: regulators. The case's mediator reads everything on the case page already;
#: the file (the arbitrator's reading) is not theirs.
FILE_READERS = frozenset(
    {"consumer", "merchant", "platform", "arbitrator", "regulator"}
)

#: Labels of the states of an information request.
REQUEST_STATUSES: dict[str, Any] = {
    "open": _l("Waiting for the answer"),
    "answered": _l("Answered"),
    "lapsed": _l("Lapsed"),
}


def may_read_file(user: User, case: Case, relation: str | None) -> bool:
    """Say whether ``user`` (with ``relation`` to ``case``) may read its file.

    An arbitrator reads it when assigned, or when the case waits in their
    queue (to decide whether to take it), never for a case they mediated.
    """
    if relation not in FILE_READERS:
        return False
    if relation == "arbitrator":
        if case.mediator_id is not None and case.mediator_id == user.id:
            return False
        return case.arbitrator_id in (None, user.id)
    return True


def _endpoint_url(endpoint: str, **values: Any) -> str | None:
    """Return the URL of ``endpoint``, or None while the app has no such page."""
    if endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


# The arbitration forms ----------------------------------------------------------


def form_choices(action: str, case: Case, relation: str | None) -> dict[str, Any]:
    """Return what the case offers to an arbitration action's form.

    ``answer_info``: the party's open requests and the case's evidence;
    ``decide_objection``: the arbitrators who may take over; ``correct_award``:
    the award in force (the form starts from it).
    """
    if action == "answer_info":
        party = "consumer" if relation == "consumer" else "merchant"
        return {
            "requests": [
                r for r in arbitration.open_info_requests(case) if r.party == party
            ],
            "evidence": list(case.evidence),
        }
    if action == "decide_objection":
        return {"staff": arbitration.eligible_arbitrators(case)}
    if action == "correct_award":
        return {"award": arbitration.current_award(case)}
    return {}


# The case page ----------------------------------------------------------------


def _evidence_by_id(case: Case) -> dict[int, Evidence]:
    return {e.id: e for e in case.evidence}


def _requests(case: Case) -> list[dict[str, Any]]:
    """Return the case's information requests, each with its answer's files."""
    files = _evidence_by_id(case)
    return [
        {
            "request": r,
            "files": [files[i] for i in r.answer_evidence_ids or [] if i in files],
        }
        for r in arbitration.info_requests(case)
    ]


def _award_links(case: Case, award: Award | None) -> dict[str, str | None]:
    if award is None:
        return {"page": None, "pdf": None}
    return {
        "page": _endpoint_url("arbitration.award_page", case_id=case.id),
        "pdf": _endpoint_url("arbitration.award_pdf", case_id=case.id),
    }


def case_panel(
    case: Case, user: User, relation: str | None, now: datetime
) -> dict[str, Any] | None:
    """Return the arbitration part of the case page, or None for a case that
    never reached an arbitrator.

    :return: ``requests`` (each with ``files``), ``objections``, ``award`` (in
        force), ``versions``, ``corrections``, ``final``, ``links`` (award page
        and PDF, None when the user may not read them or they do not exist),
        ``file_url`` (None when the user may not read the file).
    """
    if case.status != lc.IN_ARBITRATION and case.arbitrator_id is None:
        return None
    # The award document's own rule (imported late: that module imports the
    # case views, which import this one).
    from mediation.arbitration.documents import may_read_award

    award = arbitration.current_award(case)
    readable = award is not None and may_read_award(user, case, relation)
    return {
        "requests": _requests(case),
        "objections": arbitration.objections(case),
        "award": award,
        "versions": len(arbitration.award_versions(case)) if award else 0,
        "corrections": arbitration.corrections(case),
        "final": arbitration.is_final(case, now) if award else False,
        "links": _award_links(case, award if readable else None),
        "file_url": url_for("arbitration.case_file", case_id=case.id)
        if may_read_file(user, case, relation)
        else None,
        "labels": {
            "decisions": forms.DECISIONS,
            "orders": forms.ORDER_TYPES,
            "requests": REQUEST_STATUSES,
        },
    }


# The case file ------------------------------------------------------------------


def joint_transcript(case: Case) -> list[Any]:
    """Return every message of the case's joint room, oldest first.

    Only the joint room: the caucus rooms (the mediator with one party) are
    confidential and never enter the file.
    """
    messages: list[Any] = []
    while True:
        after = messages[-1].seq if messages else 0
        page = chat_services.messages_after(case, chat_services.JOINT, after)
        messages.extend(page)
        if len(page) < chat_services.replay_limit():
            return messages


def case_file(case: Case) -> dict[str, Any]:
    """Return what the case file shows: the complaint and its versions, offers,
    evidence, information requests, objections, awards, the joint transcript
    and the hash-chained timeline.
    """
    from mediation.cases.views import _versions  # the case page's version diff

    events = list(
        db.session.scalars(
            db.select(CaseEvent)
            .where(CaseEvent.case_id == case.id)
            .options(selectinload(CaseEvent.actor))
            .order_by(CaseEvent.seq)
        ).all()
    )
    return {
        "versions": _versions(case),
        "offers": list(case.offers),
        "evidence": list(case.evidence),
        "requests": _requests(case),
        "objections": arbitration.objections(case),
        "awards": arbitration.award_versions(case),
        "corrections": arbitration.corrections(case),
        "transcript": joint_transcript(case),
        "events": events,
        "chain_intact": not verify_events(events),
    }
