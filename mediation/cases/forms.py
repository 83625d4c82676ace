"""Forms of the case pages: filing, amending, the lifecycle actions and evidence.

Money is typed in yuan (``199.00``) and converted here, exactly, to integer fen;
every form of an action knows how to turn itself into the payload of API.md.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField,
    DateField,
    Field,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FieldError
from wtforms.widgets import CheckboxInput, ListWidget, TextInput

try:  # WTForms 3.3 deprecates (value, label) tuples.
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    SelectChoice = None

from mediation import clock, labels
from mediation.cases import lifecycle as lc
from mediation.formatting import fen_to_yuan_input

#: Largest amount the forms accept: one hundred million yuan, in fen.
MAX_FEN = 100_000_000 * 100
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")

#: Labels of the filing fields (forms, version history, amendment diffs).
FIELD_LABELS: dict[str, Any] = {
    "merchant": _l("Merchant or shop"),
    "platform": _l("Platform"),
    "category": _l("Category"),
    "order_ref": _l("Order number"),
    "order_date": _l("Order date"),
    "amount_paid": _l("Amount paid (yuan)"),
    "claim_type": _l("What you ask for"),
    "claim_amount": _l("Amount claimed (yuan)"),
    "description": _l("What went wrong"),
    "arbitration_consent": _l("I agree to online arbitration if mediation fails"),
}
#: Claim types that are about money: the amount claimed is required for them.
MONETARY_CLAIMS = frozenset({"refund", "compensation"})


def yuan_to_fen(text: str) -> int:
    """Convert an amount typed in yuan to integer fen, exactly (no floats).

    Accepts full-width digits, a leading ``¥`` and thousands separators.

    :raise ValueError: with a user-facing message when the text is not an amount
        with at most two decimals, is negative or is too large.
    """
    value = unicodedata.normalize("NFKC", text or "").strip()
    value = value.removeprefix("¥").removeprefix("￥").replace(",", "").strip()
    if value.startswith("-"):
        raise ValueError(_l("Amounts cannot be negative."))
    if not _AMOUNT.fullmatch(value):
        raise ValueError(_l("Enter an amount in yuan, such as 199.00."))
    whole, _, decimals = value.partition(".")
    if len(decimals) > 2:
        raise ValueError(_l("Use at most two decimals (fen)."))
    try:
        fen = Decimal(value).scaleb(2)
    except InvalidOperation as exc:  # pragma: no cover - the pattern excludes it
        raise ValueError(_l("Enter an amount in yuan, such as 199.00.")) from exc
    if fen > MAX_FEN:
        raise ValueError(_l("The amount is too large."))
    return int(fen)


class YuanField(Field):
    """A text box for an amount in yuan whose ``data`` is integer fen (or None)."""

    widget = TextInput()

    def __init__(self, label=None, validators=None, **kwargs: Any) -> None:
        render_kw = {
            "inputmode": "decimal",
            "autocomplete": "off",
            "placeholder": "0.00",
        }
        render_kw.update(kwargs.pop("render_kw", None) or {})
        super().__init__(label, validators, render_kw=render_kw, **kwargs)

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return fen_to_yuan_input(self.data) if isinstance(self.data, int) else ""

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        self.data = None
        self.data = yuan_to_fen(valuelist[0])


class HiddenIntegerField(HiddenField):
    """A hidden field holding an optional id (the autocomplete writes into it)."""

    def _value(self) -> str:
        return "" if self.data is None else str(self.data)

    def process_data(self, value: Any) -> None:
        self.data = value if isinstance(value, int) else None

    def process_formdata(self, valuelist: list[str]) -> None:
        text = (valuelist[0] if valuelist else "").strip()
        if not text:
            self.data = None
            return
        if not text.isdigit():
            self.data = None
            raise ValueError(_l("Choose a merchant from the list."))
        self.data = int(text)


def _optional_int(value: Any) -> int | None:
    """Coerce a select value to an id, or None for the empty choice."""
    if value in (None, "", "None"):
        return None
    return int(value)


def _choice(value: Any, label: Any) -> Any:
    """Return one option of a select (a ``SelectChoice`` where WTForms has it)."""
    return SelectChoice(value, label) if SelectChoice is not None else (value, label)


def _choices(table: dict[str, Any]) -> list[Any]:
    return [_choice(value, label) for value, label in table.items()]


def _required(message: Any) -> InputRequired:
    return InputRequired(message=message)


#: What the file inputs offer to pick (the server sniffs the content anyway).
ACCEPT = "image/jpeg,image/png,image/webp,application/pdf,text/plain,video/mp4"


class ComplaintForm(FlaskForm):
    """The amendable filing fields, shared by filing and amending."""

    category = SelectField(
        FIELD_LABELS["category"],
        choices=[_choice("", _l("Choose a category"))] + _choices(labels.CATEGORY),
    )
    order_ref = StringField(
        FIELD_LABELS["order_ref"],
        validators=[_required(_l("Give the order number.")), Length(max=100)],
    )
    order_date = DateField(
        FIELD_LABELS["order_date"],
        validators=[_required(_l("Give the date of the order."))],
    )
    amount_paid = YuanField(
        FIELD_LABELS["amount_paid"],
        validators=[_required(_l("Enter the amount paid."))],
    )
    claim_type = SelectField(
        FIELD_LABELS["claim_type"], choices=_choices(labels.REMEDY)
    )
    #: Optional, but required for monetary claims (see ``validate_claim_amount``).
    claim_amount = YuanField(FIELD_LABELS["claim_amount"])
    description = TextAreaField(
        FIELD_LABELS["description"],
        validators=[_required(_l("Describe what went wrong.")), Length(max=10000)],
        render_kw={"rows": 7},
    )

    def validate_category(self, field: Field) -> None:
        if not field.errors and not field.data:
            raise FieldError(_l("Choose a category."))

    def validate_claim_amount(self, field: Field) -> None:
        if field.errors:
            return
        if field.data is None and self.claim_type.data in MONETARY_CLAIMS:
            raise FieldError(_l("Enter the amount you claim."))

    def complaint_values(self) -> dict[str, Any]:
        """Return the amendable fields as the services take them (fen, dates)."""
        return {
            "category": self.category.data,
            "order_ref": (self.order_ref.data or "").strip(),
            "order_date": self.order_date.data,
            "amount_paid": self.amount_paid.data,
            "claim_type": self.claim_type.data,
            "claim_amount": self.claim_amount.data or 0,
            "description": (self.description.data or "").strip(),
        }


class FilingForm(ComplaintForm):
    """The complaint a consumer files (``POST /cases/new``)."""

    merchant_query = StringField(
        FIELD_LABELS["merchant"],
        validators=[Length(max=200)],
        render_kw={
            "data-merchant-autocomplete": True,
            "data-target-id": "merchant_id",
            "autocomplete": "off",
        },
    )
    merchant_id = HiddenIntegerField()
    platform_id = SelectField(FIELD_LABELS["platform"], coerce=_optional_int)
    arbitration_consent = BooleanField(FIELD_LABELS["arbitration_consent"])
    evidence = MultipleFileField(
        _l("Evidence (photos, screenshots, receipts, PDF, video)"),
        render_kw={"accept": ACCEPT},
    )
    confirm_duplicate = BooleanField(
        _l("This is a different problem: file it anyway"), default=False
    )

    def __init__(self, *args: Any, platforms: list | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.platform_id.choices = [
            _choice("", _l("Not on a platform, or I do not know"))
        ] + [_choice(str(p.id), p.name) for p in (platforms or [])]

    def validate_merchant_query(self, field: Field) -> None:
        if self.merchant_id.data is None and not (field.data or "").strip():
            raise FieldError(_l("Name the shop or choose a registered merchant."))

    def merchant_name(self) -> str | None:
        """Return the typed shop name (used when no registered merchant is chosen)."""
        return (self.merchant_query.data or "").strip() or None

    def files(self) -> list:
        """Return the uploaded files, without the empty part of an unused input."""
        return [f for f in (self.evidence.data or []) if f and f.filename]


class AmendForm(ComplaintForm):
    """The amendable filing fields, prefilled from the case."""

    def changes(self, current: dict[str, Any]) -> dict[str, Any]:
        """Return the fields whose value differs from ``current`` (the case's)."""
        return {
            name: value
            for name, value in self.complaint_values().items()
            if value != current.get(name)
        }


# Action forms -------------------------------------------------------------


class ActionForm(FlaskForm):
    """Base of the small forms of the case page; ``payload()`` gives API.md fields."""

    def payload(self) -> dict[str, Any]:
        """Return the action's payload (amounts in fen, dates as dates)."""
        return {}


class ButtonForm(ActionForm):
    """A single button (accepting an offer or a proposal)."""


class NoteForm(ActionForm):
    """A button with an optional note (take, mark_fulfilled, confirm ...)."""

    text = TextAreaField(
        _l("Note (optional)"), validators=[Length(max=2000)], render_kw={"rows": 2}
    )

    def payload(self) -> dict[str, Any]:
        text = (self.text.data or "").strip()
        return {"text": text} if text else {}


class ReasonForm(ActionForm):
    """An action that needs a reason (reject, withdraw, dismiss ...)."""

    reason = TextAreaField(
        _l("Reason"),
        validators=[_required(_l("Give a reason.")), Length(max=2000)],
        render_kw={"rows": 3},
    )

    def payload(self) -> dict[str, Any]:
        return {"reason": (self.reason.data or "").strip()}


class EndMediationForm(ReasonForm):
    """The mediator ends a failed mediation, with reasons."""

    def payload(self) -> dict[str, Any]:
        return {"result": "failed", **super().payload()}


class OfferForm(ActionForm):
    """A merchant's offer or a mediator's proposal."""

    type = SelectField(_l("Type"), choices=_choices(labels.REMEDY))
    amount = YuanField(_l("Amount (yuan)"))
    deadline = DateField(
        _l("To be done by"),
        validators=[_required(_l("Give a date by which it will be done."))],
    )
    text = TextAreaField(
        _l("What you offer"),
        validators=[_required(_l("Describe the offer.")), Length(max=5000)],
        render_kw={"rows": 3},
    )

    def validate_amount(self, field: Field) -> None:
        if (
            not field.errors
            and field.data is None
            and self.type.data in MONETARY_CLAIMS
        ):
            raise FieldError(_l("Enter the amount."))

    def payload(self) -> dict[str, Any]:
        return {
            "type": self.type.data,
            "amount": self.amount.data or 0,
            "deadline": self.deadline.data,
            "text": (self.text.data or "").strip(),
        }


class RateForm(ActionForm):
    """The consumer rates how the case was handled."""

    score = RadioField(
        _l("Your satisfaction (1 = very unhappy, 5 = very satisfied)"),
        choices=[_choice(i, str(i)) for i in range(1, 6)],
        coerce=int,
        validate_choice=False,
        validators=[
            _required(_l("Give a score from 1 to 5.")),
            NumberRange(min=1, max=5, message=_l("Give a score from 1 to 5.")),
        ],
    )
    comment = TextAreaField(
        _l("Comment (optional)"), validators=[Length(max=2000)], render_kw={"rows": 2}
    )

    def payload(self) -> dict[str, Any]:
        return {"score": self.score.data, "comment": (self.comment.data or "").strip()}


class LinkMerchantForm(ActionForm):
    """The regulator names the registered shop of an intake case."""

    merchant_query = StringField(
        _l("Search the registry"),
        validators=[Length(max=200)],
        render_kw={"data-merchant-autocomplete": True, "autocomplete": "off"},
    )
    merchant_id = IntegerField(
        _l("Merchant id"),
        validators=[
            _required(_l("Choose a registered shop.")),
            NumberRange(min=1, message=_l("Choose a registered shop.")),
        ],
    )

    def payload(self) -> dict[str, Any]:
        return {"merchant_id": self.merchant_id.data}


class ReassignForm(ActionForm):
    """The regulator gives the case to another mediator or arbitrator."""

    user_id = SelectField(_l("Give the case to"), coerce=_optional_int)

    def __init__(self, *args: Any, staff: list | None = None, **kwargs: Any) -> None:
        """:param staff: the eligible people, each a user or ``(user, open cases)``."""
        super().__init__(*args, **kwargs)
        self.user_id.choices = [_choice("", _l("Choose a person"))] + [
            _choice(str(item.id), _staff_label(item))
            if not isinstance(item, tuple)
            else _choice(str(item[0].id), _staff_label(*item))
            for item in (staff or [])
        ]

    def validate_user_id(self, field: Field) -> None:
        if not field.errors and field.data is None:
            raise FieldError(_l("Choose a person."))

    def payload(self) -> dict[str, Any]:
        return {"user_id": self.user_id.data}


def _staff_label(user: Any, load: int | None = None) -> str:
    """Name a person of the reassignment list: role, and open cases if known."""
    role = labels.ROLE.get(user.role, user.role)
    if load is None:
        return f"{user.name} ({role})"
    return "{} ({}, {})".format(
        user.name,
        role,
        ngettext("%(num)d open case", "%(num)d open cases", load),
    )


class EvidenceForm(FlaskForm):
    """Upload more evidence to an open case."""

    evidence = MultipleFileField(
        _l("Files"),
        render_kw={"accept": ACCEPT},
    )

    def files(self) -> list:
        """Return the uploaded files, without the empty part of an unused input."""
        return [f for f in (self.evidence.data or []) if f and f.filename]


class FilterForm(Form):
    """The filters of the case list (a GET form read from the query string)."""

    status = SelectField(_l("Status"), validators=[Optional()])
    category = SelectField(_l("Category"), validators=[Optional()])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.status.choices = [
            _choice("", _l("All statuses")),
            _choice("open", _l("Open cases")),
        ] + [_choice(s, labels.STATUS[s]) for s in lc.STATUSES]
        self.category.choices = [_choice("", _l("All categories"))] + _choices(
            labels.CATEGORY
        )


class QueueFilterForm(Form):
    """The category filter of the mediators' queue (a GET form)."""

    category = SelectField(_l("Category"), validators=[Optional()])

    def __init__(self, *args: Any, mine: bool = False, **kwargs: Any) -> None:
        """:param mine: offer "the categories I handle" (the mediator has some)."""
        super().__init__(*args, **kwargs)
        choices = [_choice("all", _l("All categories"))]
        if mine:
            choices.insert(0, _choice("mine", _l("My categories")))
        self.category.choices = choices + _choices(labels.CATEGORY)


class QuestionForm(ActionForm):
    """An action that needs a text (``request_evidence``)."""

    text = TextAreaField(
        _l("What evidence do you need?"),
        validators=[_required(_l("Say what evidence you need.")), Length(max=2000)],
        render_kw={"rows": 3},
    )

    def payload(self) -> dict[str, Any]:
        return {"text": (self.text.data or "").strip()}


# Arbitration forms ---------------------------------------------------------

#: Longest findings or reasons of an award (characters; the service's limit).
AWARD_TEXT_MAX = 20000
#: Order rows the award form shows (empty rows are ignored).
ORDER_ROWS = 3
#: Most order rows a posted award form may carry.
MAX_ORDER_ROWS = 20
#: What an award may order: the remedies, and the costs of the arbitration.
ORDER_TYPES: dict[str, Any] = {**labels.REMEDY, "costs": _l("Costs of the arbitration")}
#: Order types about money: an amount is required for them.
MONETARY_ORDERS = frozenset({"refund", "compensation", "costs"})
#: How an award decides the claim.
DECISIONS: dict[str, Any] = {
    "granted": _l("Claim granted"),
    "partly_granted": _l("Claim partly granted"),
    "rejected": _l("Claim rejected"),
}
#: The parties an arbitrator may ask for information.
INFO_PARTIES: dict[str, Any] = {
    "consumer": _l("The consumer"),
    "merchant": _l("The merchant side"),
}
#: A regulator's decisions on an objection to the arbitrator.
OBJECTION_DECISIONS: dict[str, Any] = {
    "upheld": _l("Uphold: another arbitrator takes over"),
    "dismissed": _l("Dismiss: the arbitrator stays"),
}


def business_today() -> date:
    """Return today's date in the platform's business time zone (one clock)."""
    zone = ZoneInfo(current_app.config["TIME_ZONE"])
    return clock.now_utc().astimezone(zone).date()


def _not_in_past(field: Field) -> None:
    if field.data is not None and not field.errors and field.data < business_today():
        raise FieldError(_l("The deadline cannot be in the past."))


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes (ids); nothing ticked is an empty list."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class RequestInfoForm(ActionForm):
    """The arbitrator asks one party for a document or an answer, by a date."""

    party = SelectField(
        _l("Ask"),
        choices=[_choice("", _l("Choose a party"))] + _choices(INFO_PARTIES),
    )
    question = TextAreaField(
        _l("What do you need to know or see?"),
        validators=[
            _required(_l("Say what you need to know or see.")),
            Length(max=2000),
        ],
        render_kw={"rows": 3},
    )
    deadline = DateField(
        _l("Last day to answer"),
        validators=[_required(_l("Give the last day to answer."))],
    )

    def validate_party(self, field: Field) -> None:
        if field.data not in INFO_PARTIES:
            raise FieldError(_l("Choose the consumer or the merchant."))

    def validate_deadline(self, field: Field) -> None:
        _not_in_past(field)

    def payload(self) -> dict[str, Any]:
        return {
            "party": self.party.data,
            "question": (self.question.data or "").strip(),
            "deadline": self.deadline.data,
        }


class AnswerInfoForm(ActionForm):
    """A party answers the arbitrator's request, with files of the case."""

    request_id = SelectField(_l("Request"), coerce=_optional_int, validate_choice=False)
    text = TextAreaField(
        _l("Your answer"),
        validators=[_required(_l("Write your answer.")), Length(max=5000)],
        render_kw={"rows": 4},
    )
    evidence_ids = MultiCheckboxField(
        _l("Files of the case that answer it (upload new ones with “Add evidence”)"),
        coerce=int,
    )

    def __init__(
        self,
        *args: Any,
        requests: list | None = None,
        evidence: list | None = None,
        **kwargs: Any,
    ) -> None:
        """:param requests: the open requests to this party, oldest first.
        :param evidence: the case's evidence files (the choices to attach).
        """
        super().__init__(*args, **kwargs)
        self._request_ids = {r.id for r in requests or []}
        self.request_id.choices = [
            _choice(str(r.id), _shorten(r.question, 80)) for r in (requests or [])
        ]
        if self.request_id.data is None and requests:
            self.request_id.data = requests[0].id
        self.evidence_ids.choices = [
            _choice(e.id, f"{e.original_name} · {e.sha256[:12]}")
            for e in (evidence or [])
        ]

    def validate_request_id(self, field: Field) -> None:
        if field.data is not None and field.data not in self._request_ids:
            raise FieldError(_l("There is no open request of yours to answer."))

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "text": (self.text.data or "").strip(),
            "evidence_ids": sorted(set(self.evidence_ids.data or [])),
        }
        if self.request_id.data is not None:
            payload["request_id"] = self.request_id.data
        return payload


def _shorten(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DecideObjectionForm(ActionForm):
    """The regulator upholds (and names the new arbitrator) or dismisses."""

    decision = RadioField(
        _l("Decision"),
        choices=_choices(OBJECTION_DECISIONS),
        validate_choice=False,
    )
    reason = TextAreaField(
        _l("Reasons"),
        validators=[_required(_l("Give a reason.")), Length(max=2000)],
        render_kw={"rows": 3},
    )
    user_id = SelectField(
        _l("New arbitrator (when upheld)"), coerce=_optional_int, validate_choice=False
    )

    def __init__(self, *args: Any, staff: list | None = None, **kwargs: Any) -> None:
        """:param staff: the arbitrators who may take over (users)."""
        super().__init__(*args, **kwargs)
        self.user_id.choices = [_choice("", _l("Choose an arbitrator"))] + [
            _choice(str(u.id), u.name) for u in (staff or [])
        ]
        self._eligible = {u.id for u in staff or []}

    def validate_decision(self, field: Field) -> None:
        if field.data not in OBJECTION_DECISIONS:
            raise FieldError(_l("Uphold or dismiss the objection."))

    def validate_user_id(self, field: Field) -> None:
        if self.decision.data != "upheld" or field.errors:
            return
        if field.data is None:
            raise FieldError(_l("Choose the arbitrator who takes over."))
        if field.data not in self._eligible:
            raise FieldError(
                _l(
                    "Choose another arbitrator (not the one objected to, "
                    "not the mediator)."
                )
            )

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "decision": self.decision.data,
            "reason": (self.reason.data or "").strip(),
        }
        if self.decision.data == "upheld":
            payload["user_id"] = self.user_id.data
        return payload


class OrderForm(Form):
    """One order row of an award; a row left empty is ignored."""

    type = SelectField(_l("Order"), choices=_choices(ORDER_TYPES))
    amount = YuanField(_l("Amount (yuan)"))
    deadline = DateField(_l("By"), validators=[Optional()])
    text = TextAreaField(
        _l("What is ordered"), validators=[Length(max=2000)], render_kw={"rows": 2}
    )

    def is_empty(self) -> bool:
        """Say whether nothing but the type was filled in (the row is ignored)."""
        return (
            self.amount.data is None
            and not _raw(self.amount)
            and self.deadline.data is None
            and not _raw(self.deadline)
            and not (self.text.data or "").strip()
        )

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.is_empty():
            return True
        ok = True
        if self.type.data in MONETARY_ORDERS and self.amount.data is None:
            self.amount.errors = [*self.amount.errors, _l("Enter the amount.")]
            ok = False
        if self.deadline.data is None:
            self.deadline.errors = [
                *self.deadline.errors,
                _l("Give a date by which it will be done."),
            ]
            ok = False
        else:
            try:
                _not_in_past(self.deadline)
            except FieldError as exc:
                self.deadline.errors = [*self.deadline.errors, *exc.args]
                ok = False
        if not (self.text.data or "").strip():
            self.text.errors = [*self.text.errors, _l("Say what is ordered.")]
            ok = False
        return ok

    def order(self) -> dict[str, Any]:
        """Return the row as the payload's order (amount in fen, date a date)."""
        return {
            "type": self.type.data,
            "amount": self.amount.data or 0,
            "deadline": self.deadline.data,
            "text": (self.text.data or "").strip(),
        }


def _raw(field: Field) -> str:
    return " ".join(field.raw_data or []).strip()


#: Marks a form built from the request (no ``formdata`` given).
_POSTED = object()


class AwardForm(ActionForm):
    """The award (or its correction): findings, reasons, decision and orders."""

    findings = TextAreaField(
        _l("Findings of fact"),
        validators=[_required(_l("Write the findings.")), Length(max=AWARD_TEXT_MAX)],
        render_kw={"rows": 6},
    )
    reasons = TextAreaField(
        _l("Reasons"),
        validators=[_required(_l("Write the reasons.")), Length(max=AWARD_TEXT_MAX)],
        render_kw={"rows": 6},
    )
    decision = SelectField(
        _l("Decision"),
        choices=[_choice("", _l("Choose the decision"))] + _choices(DECISIONS),
    )
    orders = FieldList(
        FormField(OrderForm), min_entries=ORDER_ROWS, max_entries=MAX_ORDER_ROWS
    )

    def __init__(self, *args: Any, award: Any = None, **kwargs: Any) -> None:
        """:param award: the award in force, to start the correction from (shown
        only when the form is not posted)."""
        if award is not None and kwargs.get("formdata", _POSTED) is None:
            orders = [
                {
                    "type": o.get("type"),
                    "amount": o.get("amount"),
                    "deadline": _as_date(o.get("deadline")),
                    "text": o.get("text"),
                }
                for o in award.orders or []
            ]
            # Room for one more order at least.
            orders += [{}] * max(1, ORDER_ROWS - len(orders))
            kwargs["data"] = {
                "findings": award.findings,
                "reasons": award.reasons,
                "decision": award.decision,
                "orders": orders,
            }
        super().__init__(*args, **kwargs)

    def validate_decision(self, field: Field) -> None:
        if field.data not in DECISIONS:
            raise FieldError(_l("Choose the decision."))

    def validate_orders(self, field: Field) -> None:
        if self.decision.data in ("granted", "partly_granted") and not [
            o for o in self.filled_orders() if o.type.data != "costs"
        ]:
            raise FieldError(_l("An award that grants the claim orders something."))

    def filled_orders(self) -> list[OrderForm]:
        """Return the order rows that were filled in (empty rows are ignored)."""
        return [entry.form for entry in self.orders if not entry.form.is_empty()]

    def payload(self) -> dict[str, Any]:
        return {
            "findings": (self.findings.data or "").strip(),
            "reasons": (self.reasons.data or "").strip(),
            "decision": self.decision.data,
            "orders": [row.order() for row in self.filled_orders()],
        }


class CorrectAwardForm(AwardForm):
    """The corrected award, starting from the award in force, and what changed."""

    reason = TextAreaField(
        _l("What was corrected (optional)"),
        validators=[Length(max=2000)],
        render_kw={"rows": 2},
    )

    def payload(self) -> dict[str, Any]:
        payload = super().payload()
        reason = (self.reason.data or "").strip()
        if reason:
            payload["reason"] = reason
        return payload


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


#: The form of each action a user may take on the case page.
ACTION_FORMS: dict[str, type[ActionForm]] = {
    "offer": OfferForm,
    "propose": OfferForm,
    "reject": ReasonForm,
    "reject_offer": ReasonForm,
    "withdraw": ReasonForm,
    "dismiss": ReasonForm,
    "decline_proposal": ReasonForm,
    "end_mediation": EndMediationForm,
    "accept_offer": ButtonForm,
    "accept_proposal": ButtonForm,
    "mark_fulfilled": NoteForm,
    "confirm_fulfilment": NoteForm,
    "report_unfulfilled": NoteForm,
    "take": NoteForm,
    "consent_arbitration": ButtonForm,
    "rate": RateForm,
    "link_merchant": LinkMerchantForm,
    "reassign": ReassignForm,
    "request_evidence": QuestionForm,
    "provide_evidence": NoteForm,
    "request_info": RequestInfoForm,
    "answer_info": AnswerInfoForm,
    "object_arbitrator": ReasonForm,
    "decide_objection": DecideObjectionForm,
    "issue_award": AwardForm,
    "correct_award": CorrectAwardForm,
    "refuse_correction": ReasonForm,
    "request_correction": ReasonForm,
}


def action_form(
    action: str,
    *,
    staff: list | None = None,
    choices: dict[str, Any] | None = None,
    **kwargs: Any,
) -> ActionForm:
    """Build the form of ``action``; its fields are prefixed with the action name.

    :param staff: the people a case may be reassigned to (``reassign`` only).
    :param choices: what the case offers to the form (``requests`` and
        ``evidence`` for ``answer_info``, ``staff`` for ``decide_objection``,
        ``award`` for ``correct_award``; see
        :func:`mediation.arbitration.pages.form_choices`).
    :raise KeyError: for an action without a form.
    """
    if action == "reassign":
        kwargs["staff"] = staff or []
    if choices:
        kwargs.update(choices)
    return ACTION_FORMS[action](prefix=action, **kwargs)
