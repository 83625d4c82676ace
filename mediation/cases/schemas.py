"""JSON shapes of cases: the filing and action inputs, the case as the API shows it.

Input schemas (``<Action>Schema``) check types and shapes only; the domain rules
(an order date in the future, a description too short ...) stay in the services.
Output schemas (``Case...Schema``) describe exactly what the endpoints return and
feed the OpenAPI document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, fields, missing, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from mediation.cases import lifecycle as lc
from mediation.cases.models import Category, RemedyType
from mediation.errors import ValidationError
from mediation.schemas import BaseSchema

#: Largest amount accepted, in fen (10 billion yuan): keeps values inside BIGINT.
MAX_AMOUNT = 10**12
#: Largest row id accepted (PostgreSQL ``integer``).
MAX_ID = 2**31 - 1
CATEGORIES = tuple(c.value for c in Category)
REMEDY_TYPES = tuple(t.value for t in RemedyType)
DECISIONS = ("granted", "partly_granted", "rejected")
ORDER_TYPES = (*(t.value for t in RemedyType), "costs")
TEXT_MAX = 5000
SHORT_TEXT_MAX = 2000

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


# Strict field types -------------------------------------------------------------


class Text(fields.String):
    """A string without NUL or lone surrogates (the databases refuse them)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text or _SURROGATE.search(text):
            raise MarshmallowError(
                gettext("The text contains characters that are not allowed.")
            )
        return text


class StrictBoolean(fields.Boolean):
    """``true`` or ``false`` only: no ``"yes"``, ``1`` or ``"on"``."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class IsoDate(fields.Date):
    """A calendar date written exactly ``YYYY-MM-DD``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any):
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise self.make_error("invalid", input=value, obj_type="date")
        return super()._deserialize(value, attr, data, **kwargs)


def Amount(**kw: Any) -> fields.Integer:  # noqa: N802  (reads like a field class)
    """An amount of money in integer fen (no floats, no strings, no booleans)."""
    kw.setdefault("metadata", {"description": "Integer fen (CNY)."})
    amounts = validate.Range(
        0, MAX_AMOUNT, error=_l("Enter a whole number of fen from {min} to {max}.")
    )
    return fields.Integer(strict=True, validate=amounts, **kw)


def Id(**kw: Any) -> fields.Integer:  # noqa: N802
    """A row id."""
    ids = validate.Range(1, MAX_ID, error=_l("This is not a valid id."))
    return fields.Integer(strict=True, validate=ids, **kw)


class Derived(fields.Nested):
    """A nested object computed from the whole parent object (output only)."""

    def __init__(self, nested: Any, getter: Callable[[Any], Any], **kw: Any) -> None:
        super().__init__(nested, dump_only=True, **kw)
        self.getter = getter

    def get_value(
        self, obj: Any, attr: str, accessor: Any = None, default: Any = missing
    ):
        return self.getter(obj)


class DerivedString(fields.String):
    """A string computed from the whole parent object (output only)."""

    def __init__(self, getter: Callable[[Any], Any], **kw: Any) -> None:
        super().__init__(dump_only=True, **kw)
        self.getter = getter

    def get_value(
        self, obj: Any, attr: str, accessor: Any = None, default: Any = missing
    ):
        return self.getter(obj)


# Inputs -------------------------------------------------------------------------


class CaseClaimSchema(BaseSchema):
    """What the consumer asks for."""

    type = fields.String(required=True, validate=validate.OneOf(REMEDY_TYPES))
    amount = Amount(load_default=0)


class FileCaseSchema(BaseSchema):
    """A new complaint (``POST /api/v1/cases``)."""

    merchant_id = Id(
        allow_none=True,
        metadata={"description": "A registered merchant; or give merchant_name."},
    )
    merchant_name = Text(
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "The shop's name when it is not registered."},
    )
    platform_id = Id(
        allow_none=True,
        metadata={"description": "The platform the unregistered shop sells on."},
    )
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    order_ref = Text(required=True, validate=validate.Length(min=1, max=100))
    order_date = IsoDate(required=True, metadata={"description": "YYYY-MM-DD."})
    amount_paid = Amount(required=True)
    claim = fields.Nested(CaseClaimSchema, required=True)
    description = Text(required=True, validate=validate.Length(max=TEXT_MAX))
    arbitration_consent = StrictBoolean(load_default=False)


class OfferSchema(BaseSchema):
    """A settlement: a merchant's offer, a mediator's proposal, an award's order."""

    type = fields.String(required=True, validate=validate.OneOf(REMEDY_TYPES))
    amount = Amount(load_default=0)
    deadline = IsoDate(
        required=True, metadata={"description": "Fulfilled by this date (YYYY-MM-DD)."}
    )
    text = Text(required=True, validate=validate.Length(max=SHORT_TEXT_MAX))


class OrderSchema(OfferSchema):
    """One order of an award: a remedy, or the costs of the arbitration."""

    type = fields.String(required=True, validate=validate.OneOf(ORDER_TYPES))


class ReasonSchema(BaseSchema):
    """An action that needs a reason (reject, withdraw, dismiss ...)."""

    reason = Text(required=True, validate=validate.Length(max=SHORT_TEXT_MAX))


class AmendClaimSchema(BaseSchema):
    """The parts of the claim that change."""

    type = fields.String(validate=validate.OneOf(REMEDY_TYPES))
    amount = Amount()

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise MarshmallowError(gettext("Give at least one field to change."))


class AmendSchema(BaseSchema):
    """The filing fields that change (at least one)."""

    category = fields.String(validate=validate.OneOf(CATEGORIES))
    order_ref = Text(validate=validate.Length(min=1, max=100))
    order_date = IsoDate()
    amount_paid = Amount()
    claim = fields.Nested(AmendClaimSchema)
    description = Text(validate=validate.Length(max=TEXT_MAX))

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise MarshmallowError(gettext("Give at least one field to change."))


class RateSchema(BaseSchema):
    """The consumer's satisfaction with the handling of a closed case."""

    score = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(1, 5, error=_l("Give a score from 1 to 5.")),
    )
    comment = Text(allow_none=True, validate=validate.Length(max=SHORT_TEXT_MAX))


class LinkMerchantSchema(BaseSchema):
    """The regulator names the registered shop of an intake case."""

    merchant_id = Id(required=True)


class ReassignSchema(BaseSchema):
    """The regulator gives the case to another mediator or arbitrator."""

    user_id = Id(required=True)


class EndMediationSchema(BaseSchema):
    """The mediator ends a mediation that failed."""

    result = fields.String(load_default="failed", validate=validate.OneOf(("failed",)))
    reason = Text(required=True, validate=validate.Length(max=SHORT_TEXT_MAX))


class TextSchema(BaseSchema):
    """An action with an optional note."""

    text = Text(allow_none=True, validate=validate.Length(max=SHORT_TEXT_MAX))


class RequestInfoSchema(BaseSchema):
    """The arbitrator asks one party for information."""

    party = fields.String(required=True, validate=validate.OneOf(lc.PARTIES))
    question = Text(required=True, validate=validate.Length(max=SHORT_TEXT_MAX))
    deadline = IsoDate(required=True)


class AnswerInfoSchema(BaseSchema):
    """A party answers the arbitrator's request."""

    text = Text(required=True, validate=validate.Length(max=TEXT_MAX))
    evidence_ids = fields.List(Id(), load_default=list)
    request_id = Id(
        metadata={"description": "The request answered (default: your oldest open)."}
    )


class AwardActionSchema(BaseSchema):
    """The arbitrator's award (or its correction)."""

    findings = Text(required=True, validate=validate.Length(max=TEXT_MAX * 4))
    reasons = Text(required=True, validate=validate.Length(max=TEXT_MAX * 4))
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    orders = fields.List(fields.Nested(OrderSchema), load_default=list)


class DecideObjectionSchema(BaseSchema):
    """The regulator upholds or dismisses an objection to the arbitrator."""

    decision = fields.String(
        required=True, validate=validate.OneOf(("upheld", "dismissed"))
    )
    reason = Text(required=True, validate=validate.Length(max=SHORT_TEXT_MAX))
    user_id = Id(metadata={"description": "The new arbitrator (required when upheld)."})


class RequestEvidenceSchema(BaseSchema):
    """``request_evidence``: what the merchant side needs from the consumer."""

    text = fields.String(required=True, validate=validate.Length(min=1, max=2000))


#: The payload schema of each action a user may post (API.md "Payloads").
ACTION_SCHEMAS: dict[str, type[BaseSchema]] = {
    "offer": OfferSchema,
    "propose": OfferSchema,
    "reject": ReasonSchema,
    "reject_offer": ReasonSchema,
    "decline_proposal": ReasonSchema,
    "withdraw": ReasonSchema,
    "dismiss": ReasonSchema,
    "object_arbitrator": ReasonSchema,
    "request_correction": ReasonSchema,
    "amend": AmendSchema,
    "end_mediation": EndMediationSchema,
    "request_info": RequestInfoSchema,
    "answer_info": AnswerInfoSchema,
    "issue_award": AwardActionSchema,
    "correct_award": AwardActionSchema,
    "refuse_correction": ReasonSchema,
    "decide_objection": DecideObjectionSchema,
    "rate": RateSchema,
    "link_merchant": LinkMerchantSchema,
    "reassign": ReassignSchema,
    "mark_fulfilled": TextSchema,
    "confirm_fulfilment": TextSchema,
    "report_unfulfilled": TextSchema,
    "take": TextSchema,
    "accept_offer": TextSchema,
    "accept_proposal": TextSchema,
    "consent_arbitration": TextSchema,
    "request_evidence": RequestEvidenceSchema,
    "provide_evidence": TextSchema,
}


def load_action(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split an action request into its name and validated payload.

    :param body: the JSON object ``{"action": <name>, ...payload}``.
    :raise ValidationError: for a missing or unknown action, or a bad payload.
    :return: the action name and the payload as the service takes it (an
        amended claim becomes ``claim_type`` / ``claim_amount``).
    """
    action = body.get("action")
    if action is None:
        raise ValidationError(fields={"action": gettext("This field is required.")})
    if not isinstance(action, str) or action not in ACTION_SCHEMAS:
        raise ValidationError(fields={"action": gettext("Unknown action.")})
    payload = {k: v for k, v in body.items() if k != "action"}
    values = ACTION_SCHEMAS[action]().load_or_raise(payload)
    if action == "amend" and "claim" in values:
        claim = values.pop("claim")
        if "type" in claim:
            values["claim_type"] = claim["type"]
        if "amount" in claim:
            values["claim_amount"] = claim["amount"]
    return action, values


class CaseListArgsSchema(BaseSchema):
    """Query arguments of ``GET /api/v1/cases`` (``page`` is read separately)."""

    class Meta:
        # page and lang belong to other readers.
        unknown = EXCLUDE

    status = fields.String(validate=validate.OneOf(lc.STATUSES))


# Outputs ------------------------------------------------------------------------


class UserRefSchema(Schema):
    """A person on a case: id and display name (never the e-mail)."""

    id = fields.Integer()
    name = fields.String()


class MerchantRefSchema(Schema):
    """A merchant or platform on a case."""

    id = fields.Integer()
    name = fields.String()


class EventActorSchema(Schema):
    """Who acted: a user in their relation to the case, or the system."""

    id = fields.Integer(allow_none=True)
    name = fields.String(allow_none=True)
    role = fields.String(
        metadata={"description": "Relation to the case when acting, or `system`."}
    )


def _actor_of(event: Any) -> dict[str, Any]:
    user = event.actor
    return {
        "id": user.id if user is not None else None,
        "name": user.name if user is not None else None,
        "role": event.actor_role,
    }


class CaseEventSchema(Schema):
    """One timeline entry, SHA-256 chained to the previous one."""

    seq = fields.Integer()
    at = fields.DateTime()
    action = fields.String()
    actor = Derived(EventActorSchema, _actor_of)
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    data = fields.Dict()
    hash = fields.String()
    prev_hash = fields.String(allow_none=True)


class CaseVersionSchema(Schema):
    """One version of the complaint (1 = as filed)."""

    number = fields.Integer()
    created_at = fields.DateTime()
    values = fields.Dict(attribute="fields", data_key="fields")


class CaseOfferSchema(Schema):
    """A merchant's offer or a mediator's proposal on a case."""

    id = fields.Integer()
    kind = fields.String(metadata={"description": "`offer` or `proposal`."})
    type = fields.String()
    amount = fields.Integer(metadata={"description": "Integer fen."})
    deadline = fields.Date()
    text = fields.String()
    status = fields.String(metadata={"description": "open, accepted, rejected, lapsed"})
    consumer_accepted_at = fields.DateTime(allow_none=True)
    merchant_accepted_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)


def _evidence_url(evidence: Any) -> str:
    return url_for(
        "api.download_evidence", case_id=evidence.case_id, evidence_id=evidence.id
    )


class EvidenceSchema(Schema):
    """An evidence file of a case."""

    id = fields.Integer()
    sha256 = fields.String()
    size = fields.Integer(metadata={"description": "Bytes."})
    content_type = fields.String(metadata={"description": "Sniffed from the content."})
    name = fields.String(attribute="original_name")
    created_at = fields.DateTime()
    url = DerivedString(_evidence_url)


def _claim_of(case: Any) -> dict[str, Any]:
    return {"type": case.claim_type, "amount": case.claim_amount}


class CaseSummarySchema(Schema):
    """A case as lists show it."""

    id = fields.Integer()
    reference = fields.String()
    status = fields.String()
    due_at = fields.DateTime(
        allow_none=True, metadata={"description": "Deadline of the current stage."}
    )
    filed_at = fields.DateTime()
    updated_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)
    category = fields.String()
    order_ref = fields.String()
    order_date = fields.Date()
    amount_paid = fields.Integer(metadata={"description": "Integer fen."})
    claim = Derived(CaseClaimSchema, _claim_of)
    description = fields.String()
    arbitration_consent = fields.Boolean()
    merchant = fields.Nested(MerchantRefSchema, allow_none=True)
    merchant_name = fields.String()
    platform = fields.Nested(MerchantRefSchema, allow_none=True)
    consumer = fields.Nested(UserRefSchema)
    mediator = fields.Nested(UserRefSchema, allow_none=True)
    arbitrator = fields.Nested(UserRefSchema, allow_none=True)
    outcome = fields.String(allow_none=True)
    version = fields.Integer()


class CaseSchema(CaseSummarySchema):
    """A case in full, as ``GET /api/v1/cases/{id}`` returns it."""

    versions = fields.List(fields.Nested(CaseVersionSchema))
    offers = fields.List(fields.Nested(CaseOfferSchema))
    evidence = fields.List(fields.Nested(EvidenceSchema))
    allowed_actions = fields.List(
        fields.String(),
        dump_only=True,
        metadata={"description": "The actions open to the caller now."},
    )
    timeline = fields.List(fields.Nested(CaseEventSchema), attribute="events")


class FilingWarningSchema(Schema):
    """Something the filer should look at (the case was filed all the same)."""

    code = fields.String(metadata={"description": "`possible_duplicate`"})
    case_ids = fields.List(fields.Integer())
    message = fields.String()


class CaseFiledSchema(CaseSchema):
    """The answer to a filing: the case plus warnings."""

    warnings = fields.List(fields.Nested(FilingWarningSchema), dump_only=True)


class CasePageSchema(Schema):
    """One page of cases."""

    items = fields.List(fields.Nested(CaseSummarySchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    pages = fields.Integer()


class BrokenLinkSchema(Schema):
    """An event whose hash or link does not match."""

    seq = fields.Integer()
    reason = fields.String()


class CaseEventsSchema(Schema):
    """The timeline of a case with the result of checking its hash chain."""

    case_id = fields.Integer()
    reference = fields.String()
    chain_intact = fields.Boolean()
    broken = fields.List(fields.Nested(BrokenLinkSchema))
    events = fields.List(fields.Nested(CaseEventSchema))
