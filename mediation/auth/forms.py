"""HTML forms of the account pages (Flask-WTF: CSRF token included)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    AnyOf,
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
)
from wtforms.widgets import CheckboxInput, ListWidget

from mediation.auth.services import MIN_PASSWORD_LENGTH
from mediation.labels import CATEGORY

REQUIRED = _l("This field is required.")


def locale_choices() -> list[SelectChoice]:
    """Return the language choices, each named in its own language."""
    return [SelectChoice("zh_CN", "简体中文"), SelectChoice("en", "English")]


def staff_role_choices() -> list[SelectChoice]:
    """Return the roles a regulator may create accounts for."""
    return [
        SelectChoice("merchant", _l("Merchant staff")),
        SelectChoice("mediator", _l("Mediator")),
        SelectChoice("arbitrator", _l("Arbitrator")),
        SelectChoice("regulator", _l("Regulator")),
    ]


class LoginForm(FlaskForm):
    """Sign in with e-mail and password."""

    email = EmailField(
        _l("E-mail"), validators=[DataRequired(REQUIRED), Length(max=254)]
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(REQUIRED)])
    next = HiddenField()
    submit = SubmitField(_l("Sign in"))


class _PersonForm(FlaskForm):
    """The name and e-mail every new account needs."""

    name = StringField(
        _l("Name"),
        validators=[
            DataRequired(REQUIRED),
            Length(max=100, message=_l("The name is too long.")),
        ],
    )
    email = EmailField(
        _l("E-mail"),
        validators=[
            DataRequired(REQUIRED),
            Length(max=254, message=_l("The address is too long.")),
        ],
    )


class RegisterForm(_PersonForm):
    """Self-registration of a consumer."""

    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(REQUIRED),
            Length(
                min=MIN_PASSWORD_LENGTH,
                message=_l("Use at least %(n)d characters.", n=MIN_PASSWORD_LENGTH),
            ),
        ],
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[
            DataRequired(REQUIRED),
            EqualTo("password", message=_l("The two passwords differ.")),
        ],
    )
    locale = SelectField(_l("Language"), choices=locale_choices(), default="zh_CN")
    next = HiddenField()
    submit = SubmitField(_l("Register"))


class LanguageForm(FlaskForm):
    """The language switch of every page."""

    locale = StringField(validators=[AnyOf(["zh_CN", "en"])])
    next = HiddenField()


class StaffForm(_PersonForm):
    """A regulator creates a staff account."""

    password = PasswordField(
        _l("Initial password"),
        validators=[
            DataRequired(REQUIRED),
            Length(
                min=MIN_PASSWORD_LENGTH,
                message=_l("Use at least %(n)d characters.", n=MIN_PASSWORD_LENGTH),
            ),
        ],
    )
    role = SelectField(_l("Role"), choices=staff_role_choices)
    merchant_id = IntegerField(
        _l("Merchant (registry number)"),
        validators=[
            Optional(),
            NumberRange(min=1, message=_l("Choose a registered merchant.")),
        ],
    )
    locale = SelectField(_l("Language"), choices=locale_choices(), default="zh_CN")
    phone = StringField(
        _l("Phone"),
        validators=[Optional(), Length(max=30, message=_l("The number is too long."))],
    )
    categories = SelectMultipleField(
        _l("Categories handled (mediators; none: all)"),
        choices=lambda: [(code, label) for code, label in CATEGORY.items()],
        option_widget=CheckboxInput(),
        widget=ListWidget(prefix_label=False),
        validate_choice=False,
    )
    submit = SubmitField(_l("Create account"))


class ClaimForm(FlaskForm):
    """A consumer asks to act as staff of a merchant."""

    merchant_id = IntegerField(
        _l("Merchant (registry number)"),
        validators=[
            InputRequired(_l("Choose a merchant.")),
            NumberRange(min=1, message=_l("Choose a registered merchant.")),
        ],
    )
    statement = TextAreaField(
        _l("How are you related to this merchant?"),
        validators=[
            DataRequired(REQUIRED),
            Length(max=2000, message=_l("The text is too long.")),
        ],
    )
    submit = SubmitField(_l("Send the request"))


class DecideClaimForm(FlaskForm):
    """A regulator approves or rejects a merchant-staff claim."""

    decision = StringField(
        validators=[
            AnyOf(["approve", "reject"], message=_l("Choose approve or reject."))
        ]
    )
    note = TextAreaField(
        _l("Note"),
        validators=[Optional(), Length(max=2000, message=_l("The text is too long."))],
    )
