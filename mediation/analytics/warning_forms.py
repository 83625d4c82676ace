"""Forms of the consumer-warning pages: the regulator's editor and withdrawal.

The forms only parse; the rules (lengths, categories, registered merchants,
a reason to withdraw) live in :mod:`mediation.analytics.warning_services`,
whose ``ValidationError`` fields the views put back on these forms.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField

from mediation.analytics.warning_services import CATEGORIES, GENERAL
from mediation.cases.forms import MultiCheckboxField
from mediation.labels import CATEGORY
from mediation.merchants.services import QUERY_MAX

#: The label of the category of a warning about no complaint category.
GENERAL_LABEL = _l("General (no particular category)")


def category_label(code: str) -> str:
    """Return the label of a warning's category."""
    if code == GENERAL:
        return str(GENERAL_LABEL)
    return str(CATEGORY.get(code, code))


def category_choices(blank: Any = None) -> list[tuple[str, Any]]:
    """Return the categories of warnings as select choices."""
    choices: list[tuple[str, Any]] = [
        (GENERAL, GENERAL_LABEL),
        *((code, CATEGORY[code]) for code in CATEGORIES if code != GENERAL),
    ]
    return [("", blank), *choices] if blank is not None else choices


class WarningForm(FlaskForm):
    """Write or change a draft: title, category, text, the merchants named."""

    title = StringField(_l("Title"), render_kw={"maxlength": 200})
    category = SelectField(_l("Category"), validate_choice=False)
    body = TextAreaField(
        _l("Text of the warning"),
        description=_l(
            "Plain text. Leave an empty line between paragraphs. It is published "
            "as written, in whatever language you write it."
        ),
        render_kw={"rows": 12},
    )
    merchant_ids = MultiCheckboxField(
        _l("Merchants named"), coerce=int, validate_choice=False
    )
    #: The registry search of the merchant picker (not saved).
    merchant_query = StringField(
        _l("Find a registered merchant"), render_kw={"maxlength": QUERY_MAX}
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.category.choices = category_choices()

    def values(self) -> dict[str, Any]:
        """Return the fields the service takes."""
        return {
            "title": self.title.data or "",
            "body": self.body.data or "",
            "category": self.category.data,
            "merchant_ids": list(self.merchant_ids.data or []),
        }


class WithdrawWarningForm(FlaskForm):
    """Withdraw a published warning, with the reason (kept on record)."""

    reason = TextAreaField(
        _l("Reason for the withdrawal (kept on record, not published)"),
        render_kw={"rows": 3},
    )


class ConfirmForm(FlaskForm):
    """A button that only needs the CSRF token (publish, discard)."""
