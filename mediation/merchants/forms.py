"""HTML forms of the registry: the public search and the regulator's entry form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import Length, Optional

from mediation.labels import MERCHANT_KIND
from mediation.merchants.models import Merchant
from mediation.merchants.services import (
    COMMITMENT_MAX,
    NAME_MAX,
    QUERY_MAX,
    SHOP_URL_MAX,
)


def optional_int(value: Any) -> int | None:
    """Coerce a select's value to an id; '' and None mean "none chosen".

    :raise ValueError: for anything else that is not a whole number (WTForms
        turns it into a field error).
    """
    if value in (None, "", "None"):
        return None
    return int(value)


def kind_choices(*, blank: str | None = None) -> list[tuple[str, Any]]:
    """Return the merchant kinds as select choices, optionally after a blank one."""
    choices: list[tuple[str, Any]] = list(MERCHANT_KIND.items())
    return [("", blank), *choices] if blank is not None else choices


class SearchForm(FlaskForm):
    """The registry search (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField(
        _l("Name or credit code"),
        validators=[Optional(), Length(max=QUERY_MAX)],
    )
    kind = SelectField(_l("Kind"), validators=[Optional()])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind.choices = kind_choices(blank=_l("All kinds"))


class MerchantForm(FlaskForm):
    """A registry entry, as the regulator creates or edits it.

    The service checks the values again (credit code, region, platform); its
    field errors are shown on the fields of the same name.
    """

    name = StringField(_l("Merchant name"), validators=[Length(max=NAME_MAX)])
    uscc = StringField(
        _l("Unified social credit code"),
        validators=[Length(max=40)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    kind = SelectField(_l("Kind"))
    platform_id = SelectField(_l("Sells on platform"), coerce=optional_int)
    shop_url = StringField(
        _l("Shop web address"), validators=[Length(max=SHOP_URL_MAX)]
    )
    region_code = StringField(
        _l("Administrative division code"),
        validators=[Length(max=6)],
        render_kw={"inputmode": "numeric", "maxlength": 6},
    )
    arbitration_consent = BooleanField(_l("Agrees in advance to online arbitration"))
    commitment = TextAreaField(
        _l("Public commitment"), validators=[Length(max=COMMITMENT_MAX)]
    )
    submit = SubmitField(_l("Save"))

    def __init__(
        self, *args: Any, platforms: Sequence[Merchant] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.kind.choices = kind_choices()
        self.platform_id.choices = [("", _l("None (sells independently)"))] + [
            (str(p.id), f"{p.name} ({p.uscc})") for p in platforms
        ]

    def values(self) -> dict[str, Any]:
        """Return the submitted registry fields, for the service."""
        return {
            "name": self.name.data,
            "uscc": self.uscc.data,
            "kind": self.kind.data,
            "platform_id": self.platform_id.data,
            "shop_url": self.shop_url.data,
            "region_code": self.region_code.data,
            "arbitration_consent": self.arbitration_consent.data,
            "commitment": self.commitment.data,
        }

    def add_errors(self, fields: dict[str, Any] | None, message: Any = None) -> None:
        """Show a service's field errors on the matching fields.

        Errors about no field of this form (or without fields) go to the top.
        """
        for name, error in (fields or {}).items():
            field = self._fields.get(name)
            errors = error if isinstance(error, list | tuple) else [error]
            if field is not None and name not in ("submit", "csrf_token"):
                field.errors = [*field.errors, *errors]
            else:
                self.form_errors.extend(errors)
        if not fields and message is not None:
            self.form_errors.append(message)
