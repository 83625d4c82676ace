"""Translated labels of the statistics' codes: SLA stages, outcomes, metrics."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

#: SLA stages in the order a case meets them.
STAGES = (
    "submitted",
    "awaiting_merchant",
    "awaiting_platform",
    "offer_pending",
    "mediation_pickup",
    "in_mediation",
    "arbitration_pickup",
    "in_arbitration",
    "fulfilment",
    "confirmation",
)

STAGE = {
    "submitted": _l("Intake: merchant identified"),
    "awaiting_merchant": _l("Merchant's answer"),
    "awaiting_platform": _l("Platform's answer"),
    "offer_pending": _l("Consumer's decision on the offer"),
    "mediation_pickup": _l("Mediator takes the case"),
    "in_mediation": _l("Mediation concluded"),
    "arbitration_pickup": _l("Arbitrator takes the case"),
    "in_arbitration": _l("Award issued"),
    "fulfilment": _l("Merchant fulfils"),
    "confirmation": _l("Consumer confirms fulfilment"),
}

#: How closed cases ended, in the order the dashboard shows them.
OUTCOMES = (
    "settled_directly",
    "settled_in_mediation",
    "award_complied",
    "closed_unresolved",
    "closed_noncompliant",
    "withdrawn",
    "rejected",
)

OUTCOME = {
    "settled_directly": _l("Settled directly"),
    "settled_in_mediation": _l("Settled in mediation"),
    "award_complied": _l("Award complied with"),
    "closed_unresolved": _l("Unresolved"),
    "closed_noncompliant": _l("Not complied with"),
    "withdrawn": _l("Withdrawn"),
    "rejected": _l("Rejected (out of scope)"),
}

UNKNOWN_REGION = _l("Unknown region")
NO_PLATFORM = _l("No platform (independent shops)")
UNREGISTERED_SHOP = _l("Unregistered shops")
