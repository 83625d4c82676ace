"""Translated labels of the codes (statuses, categories, types, roles, actions)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

STATUS = {
    "submitted": _l("Submitted"),
    "awaiting_merchant": _l("Awaiting merchant"),
    "awaiting_platform": _l("Awaiting platform"),
    "offer_pending": _l("Offer pending"),
    "in_mediation": _l("In mediation"),
    "in_arbitration": _l("In arbitration"),
    "settled": _l("Settled"),
    "awarded": _l("Awarded"),
    "resolved": _l("Resolved"),
    "closed_unresolved": _l("Closed unresolved"),
    "closed_noncompliant": _l("Closed non-compliant"),
    "withdrawn": _l("Withdrawn"),
    "rejected": _l("Rejected"),
}

CATEGORY = {
    "counterfeit": _l("Counterfeit or shoddy goods"),
    "false_advertising": _l("False advertising"),
    "fake_reviews": _l("Fake reviews and brushed orders"),
    "fake_promotion": _l("Fake promotion"),
    "unfair_terms": _l("Unfair standard terms"),
    "quality_defect": _l("Quality defect"),
    "delivery": _l("Non-delivery or delivery problem"),
    "refund_refused": _l("Return or refund refused"),
    "after_sales": _l("After-sales service"),
    "personal_info": _l("Personal information misuse"),
    "other": _l("Other"),
}

REMEDY = {
    "refund": _l("Refund"),
    "replacement": _l("Replacement"),
    "repair": _l("Repair"),
    "compensation": _l("Compensation"),
    "apology": _l("Apology"),
    "other": _l("Other"),
}

MERCHANT_KIND = {
    "goods": _l("Goods merchant"),
    "service": _l("Service merchant"),
    "platform": _l("Platform operator"),
}

ROLE = {
    "consumer": _l("Consumer"),
    "merchant": _l("Merchant"),
    "platform": _l("Platform operator"),
    "mediator": _l("Mediator"),
    "arbitrator": _l("Arbitrator"),
    "regulator": _l("Regulator"),
    "system": _l("System"),
}

#: What an arbitral award orders (the remedy types and the costs).
ORDER_TYPE = {
    "refund": _l("Refund"),
    "replacement": _l("Replacement"),
    "repair": _l("Repair"),
    "compensation": _l("Compensation"),
    "apology": _l("Apology"),
    "costs": _l("Costs of the arbitration"),
    "other": _l("Other"),
}

#: The award's decision on the claim.
DECISION = {
    "granted": _l("Claim granted"),
    "partly_granted": _l("Claim partly granted"),
    "rejected": _l("Claim rejected"),
}

ACTION = {
    "file": _l("Complaint filed"),
    "route": _l("Sent to the merchant"),
    "evidence": _l("Evidence added"),
    "remind": _l("Reminder sent"),
    "request_evidence": _l("Ask for more evidence"),
    "provide_evidence": _l("Evidence provided"),
    "amend": _l("Amend the complaint"),
    "withdraw": _l("Withdraw"),
    "accept_offer": _l("Accept the offer"),
    "reject_offer": _l("Reject the offer"),
    "accept_proposal": _l("Accept the proposal"),
    "decline_proposal": _l("Decline the proposal"),
    "consent_arbitration": _l("Consent to arbitration"),
    "answer_info": _l("Answer the request"),
    "object_arbitrator": _l("Object to the arbitrator"),
    "request_correction": _l("Request a correction"),
    "confirm_fulfilment": _l("Confirm fulfilment"),
    "report_unfulfilled": _l("Report not fulfilled"),
    "rate": _l("Rate the handling"),
    "offer": _l("Make an offer"),
    "reject": _l("Reject the complaint"),
    "mark_fulfilled": _l("Mark as fulfilled"),
    "take": _l("Take the case"),
    "propose": _l("Propose a settlement"),
    "end_mediation": _l("End mediation"),
    "request_info": _l("Request information"),
    "issue_award": _l("Issue the award"),
    "correct_award": _l("Correct the award"),
    "refuse_correction": _l("Refuse the correction"),
    "decide_objection": _l("Decide the objection"),
    "lapse_info": _l("Information request lapsed"),
    "link_merchant": _l("Link the merchant"),
    "dismiss": _l("Dismiss"),
    "reassign": _l("Reassign"),
    "expire": _l("Deadline passed"),
    "auto_assign": _l("Assigned automatically"),
}
