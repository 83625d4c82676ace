"""The case lifecycle: one pure table of status x role x action -> next status.

No Flask and no database here. Services ask :func:`next_status` before changing a
case and :func:`allowed_actions` to list the buttons and the API's
``allowed_actions``. Outcomes that depend on the case (does the shop sell on a
registered platform? did both parties consent to arbitration?) are read from a
small :class:`Facts` value, so the table stays a table.

Roles here are relations to the case, not account roles: ``merchant`` is staff of
the case's merchant, ``platform`` staff of the platform the shop sells on, and
``system`` the routing and the SLA sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

SUBMITTED = "submitted"
AWAITING_MERCHANT = "awaiting_merchant"
AWAITING_PLATFORM = "awaiting_platform"
OFFER_PENDING = "offer_pending"
IN_MEDIATION = "in_mediation"
IN_ARBITRATION = "in_arbitration"
SETTLED = "settled"
AWARDED = "awarded"
RESOLVED = "resolved"
CLOSED_UNRESOLVED = "closed_unresolved"
CLOSED_NONCOMPLIANT = "closed_noncompliant"
WITHDRAWN = "withdrawn"
REJECTED = "rejected"

STATUSES: tuple[str, ...] = (
    SUBMITTED,
    AWAITING_MERCHANT,
    AWAITING_PLATFORM,
    OFFER_PENDING,
    IN_MEDIATION,
    IN_ARBITRATION,
    SETTLED,
    AWARDED,
    RESOLVED,
    CLOSED_UNRESOLVED,
    CLOSED_NONCOMPLIANT,
    WITHDRAWN,
    REJECTED,
)
CLOSED_STATUSES: frozenset[str] = frozenset(
    {RESOLVED, CLOSED_UNRESOLVED, CLOSED_NONCOMPLIANT, WITHDRAWN, REJECTED}
)
OPEN_STATUSES: tuple[str, ...] = tuple(s for s in STATUSES if s not in CLOSED_STATUSES)

ROLES: tuple[str, ...] = (
    "consumer",
    "merchant",
    "platform",
    "mediator",
    "arbitrator",
    "regulator",
    "system",
)
#: The two sides of a dispute (a platform stands in for an unregistered shop).
PARTIES: tuple[str, ...] = ("consumer", "merchant")

#: Every action name of API.md plus the system's own (routing, SLA expiry).
ACTIONS: tuple[str, ...] = (
    "amend",
    "withdraw",
    "accept_offer",
    "reject_offer",
    "accept_proposal",
    "decline_proposal",
    "consent_arbitration",
    "answer_info",
    "object_arbitrator",
    "request_correction",
    "confirm_fulfilment",
    "report_unfulfilled",
    "rate",
    "offer",
    "reject",
    "mark_fulfilled",
    "take",
    "propose",
    "end_mediation",
    "request_info",
    "issue_award",
    "correct_award",
    "refuse_correction",
    "link_merchant",
    "dismiss",
    "reassign",
    "decide_objection",
    "request_evidence",
    "provide_evidence",
    "route",
    "expire",
    "auto_assign",
    "lapse_info",
)


@dataclass(frozen=True)
class Facts:
    """What the table needs to know about a case beyond its status."""

    has_merchant: bool = True
    has_platform: bool = False
    consumer_consented: bool = False
    merchant_consented: bool = False
    #: The merchant (or platform) has answered: no more amendments.
    answered: bool = False
    was_mediated: bool = False
    fulfilment_marked: bool = False
    has_mediator: bool = False
    has_arbitrator: bool = False
    rated: bool = False
    has_open_proposal: bool = False
    #: Parties (``consumer``/``merchant``) that accepted the open proposal.
    proposal_accepted_by: frozenset[str] = field(default_factory=frozenset)
    #: Parties with an unanswered information request.
    info_pending_for: frozenset[str] = field(default_factory=frozenset)
    #: Parties that already objected to the arbitrator.
    objected_by: frozenset[str] = field(default_factory=frozenset)
    has_award: bool = False
    #: An objection to the arbitrator waits for the regulator's decision.
    objection_pending: bool = False
    #: The award's correction window is open now.
    correction_open: bool = False
    #: A correction request waits for the arbitrator.
    correction_pending: bool = False
    #: The deadline clock is stopped (the merchant side waits on the consumer).
    clock_paused: bool = False

    @property
    def both_consented(self) -> bool:
        return self.consumer_consented and self.merchant_consented


class TransitionNotAllowed(Exception):
    """The table has no such transition, or its condition does not hold."""

    def __init__(self, status: str, role: str, action: str) -> None:
        self.status, self.role, self.action = status, role, action
        super().__init__(f"{action!r} by {role!r} is not allowed in {status!r}")


Next = str | Callable[[Facts, str], str] | None
Guard = Callable[[Facts, str], bool]


@dataclass(frozen=True)
class Rule:
    """One row: ``next`` is a status, a function of the facts, or None (stay)."""

    next: Next
    guard: Guard | None = None

    def resolve(self, status: str, facts: Facts, role: str) -> str:
        if self.next is None:
            return status
        if callable(self.next):
            return self.next(facts, role)
        return self.next


TABLE: dict[tuple[str, str, str], Rule] = {}


def _add(
    statuses: Iterable[str],
    roles: Iterable[str],
    action: str,
    next_: Next = None,
    guard: Guard | None = None,
) -> None:
    for status in statuses:
        for role in roles:
            key = (status, role, action)
            if key in TABLE:
                raise ValueError(f"duplicate lifecycle row {key}")
            TABLE[key] = Rule(next_, guard)


# Conditions ---------------------------------------------------------------


def _always(facts: Facts, role: str) -> bool:
    return True


def _side_acts(facts: Facts, role: str) -> bool:
    """A platform acts for the merchant side only when the shop is unregistered."""
    return role != "platform" or not facts.has_merchant


def _after_merchant_silence(facts: Facts, role: str) -> str:
    return AWAITING_PLATFORM if facts.has_platform else IN_MEDIATION


def _after_mediation(facts: Facts, role: str) -> str:
    return IN_ARBITRATION if facts.both_consented else CLOSED_UNRESOLVED


def _after_unfulfilled_settlement(facts: Facts, role: str) -> str:
    return CLOSED_NONCOMPLIANT if facts.was_mediated else IN_MEDIATION


def _after_fulfilment_deadline(facts: Facts, role: str) -> str:
    """Consumer silence after a marked fulfilment counts as confirmation."""
    if facts.fulfilment_marked:
        return RESOLVED
    return _after_unfulfilled_settlement(facts, role)


def _after_award_deadline(facts: Facts, role: str) -> str:
    return RESOLVED if facts.fulfilment_marked else CLOSED_NONCOMPLIANT


def _after_proposal_acceptance(facts: Facts, role: str) -> str:
    party = "merchant" if role == "platform" else role
    others = set(PARTIES) - {party}
    return SETTLED if others <= facts.proposal_accepted_by else IN_MEDIATION


# The table ----------------------------------------------------------------

SIDE = ("merchant", "platform")
CONSUMER = ("consumer",)

# Filing and routing.
_add(
    [SUBMITTED],
    ["system"],
    "route",
    lambda f, r: AWAITING_MERCHANT if f.has_merchant else AWAITING_PLATFORM,
    lambda f, r: f.has_merchant or f.has_platform,
)
_add(
    [SUBMITTED, AWAITING_PLATFORM],
    ["regulator"],
    "link_merchant",
    AWAITING_MERCHANT,
    lambda f, r: not f.has_merchant,
)
_add([SUBMITTED], ["regulator"], "dismiss", REJECTED)

# Direct settlement.
_add([AWAITING_MERCHANT], ["merchant"], "offer", OFFER_PENDING)
_add([AWAITING_MERCHANT], ["merchant"], "reject", IN_MEDIATION)
_add([AWAITING_MERCHANT], ["system"], "expire", _after_merchant_silence)
_add(
    [AWAITING_PLATFORM],
    SIDE,
    "offer",
    OFFER_PENDING,
    lambda f, r: r == "platform" or f.has_merchant,
)
_add(
    [AWAITING_PLATFORM],
    SIDE,
    "reject",
    IN_MEDIATION,
    lambda f, r: r == "platform" or f.has_merchant,
)
_add([AWAITING_PLATFORM], ["system"], "expire", IN_MEDIATION)
_add(
    [SUBMITTED, AWAITING_MERCHANT, AWAITING_PLATFORM],
    CONSUMER,
    "amend",
    None,
    lambda f, r: not f.answered,
)
# The merchant side may ask the consumer for more evidence before answering: its
# clock stops until the consumer provides it.
_add(
    [AWAITING_MERCHANT, AWAITING_PLATFORM],
    SIDE,
    "request_evidence",
    None,
    lambda f, r: (r == "platform" or f.has_merchant) and not f.clock_paused,
)
_add(
    [AWAITING_MERCHANT, AWAITING_PLATFORM],
    CONSUMER,
    "provide_evidence",
    None,
    lambda f, r: f.clock_paused,
)
_add([OFFER_PENDING], CONSUMER, "accept_offer", SETTLED)
_add([OFFER_PENDING], CONSUMER, "reject_offer", IN_MEDIATION)
_add([OFFER_PENDING], ["system"], "expire", IN_MEDIATION)

# Mediation.
_add([IN_MEDIATION], ["mediator"], "take", None, lambda f, r: not f.has_mediator)
_add([IN_MEDIATION], ["system"], "auto_assign", None, lambda f, r: not f.has_mediator)
_add([IN_MEDIATION], ["regulator"], "reassign", None, lambda f, r: f.has_mediator)
_add([IN_MEDIATION], ["mediator"], "propose", None, lambda f, r: f.has_mediator)
_add(
    [IN_MEDIATION],
    ("consumer",) + SIDE,
    "accept_proposal",
    _after_proposal_acceptance,
    lambda f, r: (
        _side_acts(f, r)
        and f.has_open_proposal
        and ("merchant" if r == "platform" else r) not in f.proposal_accepted_by
    ),
)
_add(
    [IN_MEDIATION],
    ("consumer",) + SIDE,
    "decline_proposal",
    None,
    lambda f, r: _side_acts(f, r) and f.has_open_proposal,
)
_add(
    [IN_MEDIATION],
    ["mediator"],
    "end_mediation",
    _after_mediation,
    lambda f, r: f.has_mediator,
)
_add(
    [IN_MEDIATION], ["system"], "expire", _after_mediation, lambda f, r: f.has_mediator
)

# Arbitration consent: until mediation ends.
_add(
    [SUBMITTED, AWAITING_MERCHANT, AWAITING_PLATFORM, OFFER_PENDING, IN_MEDIATION],
    CONSUMER,
    "consent_arbitration",
    None,
    lambda f, r: not f.consumer_consented,
)

# Arbitration.
_add([IN_ARBITRATION], ["arbitrator"], "take", None, lambda f, r: not f.has_arbitrator)
_add(
    [IN_ARBITRATION], ["system"], "auto_assign", None, lambda f, r: not f.has_arbitrator
)
_add([IN_ARBITRATION], ["regulator"], "reassign", None, lambda f, r: f.has_arbitrator)
_add(
    [IN_ARBITRATION],
    ["arbitrator"],
    "request_info",
    None,
    lambda f, r: f.has_arbitrator,
)
_add(
    [IN_ARBITRATION],
    ("consumer",) + SIDE,
    "answer_info",
    None,
    lambda f, r: (
        _side_acts(f, r)
        and ("merchant" if r == "platform" else r) in f.info_pending_for
    ),
)
# An information request past its deadline lapses (the SLA sweep).
_add(
    [IN_ARBITRATION],
    ["system"],
    "lapse_info",
    None,
    lambda f, r: bool(f.info_pending_for),
)
# Each party may object to the arbitrator once; a regulator decides.
_add(
    [IN_ARBITRATION],
    ("consumer",) + SIDE,
    "object_arbitrator",
    None,
    lambda f, r: (
        _side_acts(f, r)
        and f.has_arbitrator
        and not f.objection_pending
        and ("merchant" if r == "platform" else r) not in f.objected_by
    ),
)
_add(
    [IN_ARBITRATION],
    ["regulator"],
    "decide_objection",
    None,
    lambda f, r: f.objection_pending,
)
# No award while a party still has to answer or an objection is undecided.
_add(
    [IN_ARBITRATION],
    ["arbitrator"],
    "issue_award",
    AWARDED,
    lambda f, r: (
        f.has_arbitrator and not f.info_pending_for and not f.objection_pending
    ),
)

# After the award: corrections of clerical or computational errors, in the window.
_add(
    [AWARDED],
    ("consumer",) + SIDE,
    "request_correction",
    None,
    lambda f, r: _side_acts(f, r) and f.correction_open and not f.correction_pending,
)
_add(
    [AWARDED], ["arbitrator"], "correct_award", None, lambda f, r: f.correction_pending
)
_add(
    [AWARDED],
    ["arbitrator"],
    "refuse_correction",
    None,
    lambda f, r: f.correction_pending,
)

# Fulfilment.
_add(
    [SETTLED, AWARDED],
    SIDE,
    "mark_fulfilled",
    None,
    lambda f, r: _side_acts(f, r) and not f.fulfilment_marked,
)
_add([SETTLED, AWARDED], CONSUMER, "confirm_fulfilment", RESOLVED)
_add([SETTLED], CONSUMER, "report_unfulfilled", _after_unfulfilled_settlement)
_add([SETTLED], ["system"], "expire", _after_fulfilment_deadline)
_add([AWARDED], CONSUMER, "report_unfulfilled", CLOSED_NONCOMPLIANT)
_add([AWARDED], ["system"], "expire", _after_award_deadline)

# The consumer may walk away from any open case; closed cases only take a rating.
_add(OPEN_STATUSES, CONSUMER, "withdraw", WITHDRAWN)
_add(sorted(CLOSED_STATUSES), CONSUMER, "rate", None, lambda f, r: not f.rated)


# Queries ------------------------------------------------------------------


def rule_for(status: str, role: str, action: str) -> Rule | None:
    """Return the table row for ``(status, role, action)``, or None."""
    return TABLE.get((status, role, action))


def is_allowed(status: str, role: str, action: str, facts: Facts) -> bool:
    """Say whether ``role`` may take ``action`` on a case in ``status``."""
    rule = rule_for(status, role, action)
    return rule is not None and (rule.guard or _always)(facts, role)


def next_status(status: str, role: str, action: str, facts: Facts) -> str:
    """Return the status after ``action``.

    :raise TransitionNotAllowed: if the table has no such row or its guard fails.
    """
    rule = rule_for(status, role, action)
    if rule is None or not (rule.guard or _always)(facts, role):
        raise TransitionNotAllowed(status, role, action)
    return rule.resolve(status, facts, role)


def allowed_actions(status: str, role: str | None, facts: Facts) -> list[str]:
    """Return, in table order, the actions ``role`` may take now."""
    if role is None:
        return []
    return [
        action
        for (st, ro, action), rule in TABLE.items()
        if st == status and ro == role and (rule.guard or _always)(facts, role)
    ]


def is_closed(status: str) -> bool:
    """Say whether ``status`` ends the case."""
    return status in CLOSED_STATUSES
