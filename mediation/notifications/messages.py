"""The text of each notification kind, rendered in the reader's language."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

#: kind -> message; ``%(reference)s`` and ``%(status)s`` are filled in when shown.
MESSAGES: dict[str, Any] = {
    "case_file": _l("New complaint %(reference)s is waiting for your answer."),
    "case_intake": _l(
        "Complaint %(reference)s names an unregistered shop: link the merchant."
    ),
    "case_route": _l("Complaint %(reference)s has been sent to the merchant."),
    "case_link_merchant": _l("Complaint %(reference)s is now addressed to your shop."),
    "case_dismiss": _l("Complaint %(reference)s was dismissed by the regulator."),
    "case_offer": _l("The merchant made an offer on complaint %(reference)s."),
    "case_reject": _l(
        "The merchant rejected complaint %(reference)s; it goes to mediation."
    ),
    "case_accept_offer": _l(
        "The consumer accepted the offer on complaint %(reference)s."
    ),
    "case_reject_offer": _l(
        "The consumer rejected the offer on complaint %(reference)s; "
        "it goes to mediation."
    ),
    "case_request_evidence": _l(
        "The merchant asks for more evidence on complaint %(reference)s."
    ),
    "case_provide_evidence": _l(
        "The consumer answered the request for evidence on complaint %(reference)s."
    ),
    "case_amend": _l("The consumer amended complaint %(reference)s."),
    "case_withdraw": _l("The consumer withdrew complaint %(reference)s."),
    "case_consent_arbitration": _l(
        "The consumer consented to arbitration on complaint %(reference)s."
    ),
    "case_mark_fulfilled": _l(
        "The merchant says complaint %(reference)s has been fulfilled; please confirm."
    ),
    "case_confirm_fulfilment": _l(
        "The consumer confirmed fulfilment of complaint %(reference)s."
    ),
    "case_report_unfulfilled": _l(
        "The consumer reported complaint %(reference)s as not fulfilled."
    ),
    "case_take": _l("A mediator or arbitrator has taken complaint %(reference)s."),
    "case_reassign": _l("Complaint %(reference)s has been reassigned."),
    "case_propose": _l(
        "The mediator proposed a settlement on complaint %(reference)s."
    ),
    "case_accept_proposal": _l(
        "A party accepted the proposal on complaint %(reference)s."
    ),
    "case_decline_proposal": _l(
        "A party declined the proposal on complaint %(reference)s."
    ),
    "case_end_mediation": _l("Mediation of complaint %(reference)s has ended."),
    "case_expire": _l("A deadline passed on complaint %(reference)s; it moved on."),
    "case_auto_assign": _l(
        "Nobody took complaint %(reference)s in time; it was assigned automatically."
    ),
    "case_reminder": _l(
        "Complaint %(reference)s is waiting for you: act before %(due_at)s."
    ),
    "case_rate": _l("The consumer rated the handling of complaint %(reference)s."),
    "case_evidence": _l("New evidence was added to complaint %(reference)s."),
    "case_request_info": _l(
        "The arbitrator asks for information on complaint %(reference)s."
    ),
    "case_answer_info": _l(
        "A party answered the arbitrator's request on complaint %(reference)s."
    ),
    "case_lapse_info": _l(
        "An information request on complaint %(reference)s was not answered in time."
    ),
    "case_object_arbitrator": _l(
        "A party objected to the arbitrator of complaint %(reference)s."
    ),
    "objection_filed": _l(
        "An objection to the arbitrator of complaint %(reference)s awaits your "
        "decision."
    ),
    "case_decide_objection": _l(
        "The regulator decided the objection on complaint %(reference)s."
    ),
    "case_issue_award": _l("The award on complaint %(reference)s has been issued."),
    "case_request_correction": _l(
        "A correction of the award on complaint %(reference)s was requested."
    ),
    "case_correct_award": _l(
        "The award on complaint %(reference)s was corrected (a new version)."
    ),
    "case_refuse_correction": _l(
        "The arbitrator refused to correct the award on complaint %(reference)s."
    ),
    "case_noncompliant": _l(
        "Complaint %(reference)s closed as not complied with by %(merchant)s."
    ),
    "claim_approved": _l("Your request to act for %(merchant)s was approved."),
    "claim_rejected": _l("Your request to act for %(merchant)s was refused."),
    # Mass-complaint alerts and case groups (mediation/analytics).
    "mass_alert": _l(
        "Mass-complaint alert %(alert)s: %(merchant)s drew %(count)s complaints "
        "of “%(category)s” within %(days)s days."
    ),
    "group_assigned": _l(
        "You now handle case group %(group)s: %(count)s complaints against "
        "%(merchant)s, with a shared group room."
    ),
    "group_merchant": _l(
        "%(count)s complaints against %(merchant)s were grouped (%(group)s) for "
        "one mediator; the case pages show the group room."
    ),
    "case_grouped": _l(
        "Complaint %(reference)s is now handled together with related complaints "
        "against %(merchant)s; its page shows the group room."
    ),
    "case_group_assign": _l(
        "Complaint %(reference)s went to the mediator of its case group."
    ),
}

GENERIC = _l("Complaint %(reference)s was updated.")


def render(kind: str, params: dict[str, Any]) -> str:
    """Return the text of a notification in the current locale."""
    template = MESSAGES.get(kind, GENERIC)
    if "category" in params:
        # Stored as a code; shown in the reader's language.
        from mediation.labels import CATEGORY

        category = params["category"]
        params = {**params, "category": str(CATEGORY.get(category, category))}
    try:
        return str(template) % params
    except (KeyError, TypeError, ValueError):
        return str(GENERIC) % {"reference": params.get("reference", "")}
