"""Forms of the risk list, warning interviews and text flags.

The forms only parse; the rules (dates, required texts, states) live in the
services, whose ``ValidationError`` fields the views put back on these forms.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DecimalField,
    Field,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional
from wtforms.validators import ValidationError as FieldError

from mediation import labels

_REGION = re.compile(r"[0-9]{1,6}")


class RiskFilterForm(FlaskForm):
    """The risk list's filters (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField(_l("Name or credit code"), validators=[Optional(), Length(max=100)])
    region = StringField(
        _l("Region code starts with"),
        validators=[Optional(), Length(max=6)],
        render_kw={"inputmode": "numeric", "placeholder": "33, 3301, 330106"},
    )
    platform = SelectField(_l("Platform"), validators=[Optional()])
    category = SelectField(_l("Complaint category"), validators=[Optional()])
    min_score = DecimalField(
        _l("Minimum score"),
        validators=[Optional(), NumberRange(min=0, max=100)],
        places=1,
        render_kw={"inputmode": "decimal", "placeholder": "0-100"},
    )

    def __init__(self, *args: Any, platforms: list[tuple[int, str]], **kwargs: Any):
        """:param platforms: ``(id, name)`` of the registered platforms."""
        super().__init__(*args, **kwargs)
        self.platform.choices = [SelectChoice("", _l("All platforms"))] + [
            SelectChoice(str(pid), name) for pid, name in platforms
        ]
        self.category.choices = [SelectChoice("", _l("All categories"))] + [
            SelectChoice(code, label) for code, label in labels.CATEGORY.items()
        ]

    def validate_region(self, field: Field) -> None:
        value = (field.data or "").strip()
        if value and not _REGION.fullmatch(value):
            raise FieldError(_l("Digits of an administrative division code."))

    def validate_platform(self, field: Field) -> None:
        if field.data and field.data not in {c.value for c in self.platform.choices}:
            raise FieldError(_l("Choose one of the listed platforms."))

    def validate_category(self, field: Field) -> None:
        if field.data and field.data not in labels.CATEGORY:
            raise FieldError(_l("Choose one of the listed categories."))


class PlanInterviewForm(FlaskForm):
    """A regulator marks a merchant for a warning interview."""

    reason = TextAreaField(_l("Reason (shown to the merchant)"), render_kw={"rows": 4})
    planned_for = DateField(_l("Planned day"), validators=[Optional()])


class OutcomeForm(FlaskForm):
    """A regulator records that the interview was held."""

    held_on = DateField(_l("Interview held on"), validators=[Optional()])
    summary = TextAreaField(_l("Summary of the interview"), render_kw={"rows": 5})
    commitments = TextAreaField(_l("The merchant's commitments"), render_kw={"rows": 4})
    follow_up_on = DateField(_l("Follow-up on"), validators=[Optional()])


class CancelInterviewForm(FlaskForm):
    """A regulator cancels a planned interview."""

    cancel_reason = TextAreaField(_l("Why it is cancelled"), render_kw={"rows": 3})


#: A regulator's two answers to a text flag.
FLAG_DECISIONS = {"confirm": _l("Confirm"), "dismiss": _l("Dismiss the flag")}


class FlagDecisionForm(FlaskForm):
    """A regulator confirms or dismisses a text flag."""

    decision = HiddenField()
    reason = StringField(_l("Reason for dismissing"))
    #: Where to go back to (the list with its filters).
    next = HiddenField()

    def validate_decision(self, field: Field) -> None:
        if field.data not in FLAG_DECISIONS:
            raise FieldError(_l("Confirm or dismiss the flag."))
