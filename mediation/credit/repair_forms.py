"""Forms of the credit-repair pages: the merchant's application, the decision.

The forms only parse; the rules (which events, how long a commitment, reasons
to refuse) live in :mod:`mediation.credit.repair`, whose ``ValidationError``
fields the views put back on these forms.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError as FieldError

from mediation.cases.forms import MultiCheckboxField

#: The regulator's two answers.
DECISIONS = {"approve": _l("Approve"), "refuse": _l("Refuse")}


class RepairForm(FlaskForm):
    """The merchant applies: the events to repair and a written commitment."""

    event_ids = MultiCheckboxField(
        _l("Events to repair"), coerce=int, validate_choice=False
    )
    commitment = TextAreaField(_l("Your written commitment"), render_kw={"rows": 6})

    def __init__(self, *args: Any, events: list | None = None, **kwargs: Any) -> None:
        """:param events: the events that can be repaired now (the checkboxes)."""
        super().__init__(*args, **kwargs)
        self.event_ids.choices = [
            SelectChoice(e.id, f"#{e.id}") for e in (events or [])
        ]


class DecideRepairForm(FlaskForm):
    """The regulator approves or refuses an application, with reasons."""

    decision = RadioField(
        _l("Your decision on the application"),
        choices=[SelectChoice(k, v) for k, v in DECISIONS.items()],
        validate_choice=False,
    )
    reason = TextAreaField(
        _l("Reasons (required to refuse; shown to the merchant)"),
        render_kw={"rows": 4},
    )
    performance_verified = BooleanField(
        _l(
            "I checked that the award or settlement that was not performed in time "
            "has been performed since"
        )
    )

    def validate_decision(self, field: Field) -> None:
        if field.data not in DECISIONS:
            raise FieldError(_l("Approve or refuse the application."))
