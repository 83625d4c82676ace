"""Translated labels of the credit codes: event kinds, grades, listing reasons,
feed changes and repair statuses (pages and documents read them; the API sends
the codes)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

#: Ledger event kinds (the keys of the points table).
EVENT_KIND = {
    "late_response": _l("Responded late"),
    "no_response": _l("Did not respond before the deadline"),
    "resolved_directly": _l("Resolved directly with the consumer"),
    "mediation_failed": _l(
        "Refused mediation, or mediation failed through the merchant"
    ),
    "award_against": _l("Award against the merchant"),
    "not_fulfilled": _l("Settlement or award not fulfilled in time"),
    "mass_alert": _l("Mass-complaint alert raised against the merchant"),
    "escalation_late": _l("Answered an escalation about a shop late"),
    "escalation_unanswered": _l("Did not answer an escalation about a shop"),
    "escalation_resolved": _l("Resolved an escalation about a shop directly"),
}

#: The credit risk classes of market supervision, by grade.
GRADE_RISK = {
    "A": _l("Low risk"),
    "B": _l("Ordinary risk"),
    "C": _l("Higher risk"),
    "D": _l("High risk"),
}

#: Why a merchant is on the dishonesty list (event kinds that list, or the count).
LISTING_REASON = {
    "not_fulfilled": _l("A settlement or award was not fulfilled in time"),
    "mass_alert": _l("A mass-complaint alert was raised against the merchant"),
    "no_response_count": _l("Too many complaints went unanswered"),
}

#: Rows of the public change feed, as the history on the credit page names them.
CHANGE_KIND = {
    "grade": _l("Grade changed"),
    "listed": _l("Entered the dishonesty list"),
    "delisted": _l("Left the dishonesty list"),
    "trusted": _l("Received the trusted online merchant mark"),
    "untrusted": _l("Lost the trusted online merchant mark"),
    "repaired": _l("Credit repaired"),
    # Consumer warnings naming the merchant are feed rows too (issue #7).
    "warning": _l("Named in a consumer warning"),
    "warning_withdrawn": _l("Consumer warning withdrawn"),
}

#: Credit repair applications.
#: ("Refused" alone is the refusal of an award correction, translated otherwise.)
REPAIR_STATUS = {
    "pending": _l("Waiting for a decision"),
    "approved": _l("Approved"),
    "refused": _l("Refused by the regulator"),
}

#: The two points norms.
NORM = {
    "merchant": _l("Goods and service merchants"),
    "platform": _l("Platform operators"),
}


def event_label(kind: str) -> str:
    """Return the label of a ledger event kind (the code itself when unknown)."""
    return str(EVENT_KIND.get(kind, kind))


def listing_label(reason: str) -> str:
    """Return the label of a listing reason; an event kind's label otherwise."""
    if reason in LISTING_REASON:
        return str(LISTING_REASON[reason])
    return event_label(reason)


def risk_label(grade: str | None) -> str:
    """Return the risk class of a grade ('' for a grade the table does not know)."""
    return str(GRADE_RISK.get(grade or "", ""))
