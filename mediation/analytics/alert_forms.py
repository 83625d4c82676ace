"""Forms of the alert and case-group pages.

The forms only parse; the rules (which cases may be grouped, who may handle a
group, notes and reasons) live in :mod:`mediation.analytics.alerts` and
:mod:`mediation.analytics.groups`, whose ``ValidationError`` fields the views
put back on these forms.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from wtforms import Field, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length
from wtforms.validators import ValidationError as FieldError

from mediation import labels
from mediation.analytics.alert_models import AlertStatus
from mediation.cases.forms import MultiCheckboxField

#: Words of an alert's status.
ALERT_STATUS: dict[str, Any] = {
    AlertStatus.open.value: _l("Awaiting action"),
    AlertStatus.grouped.value: _l("Grouped"),
    AlertStatus.resolved.value: _l("Resolved"),
    AlertStatus.dismissed.value: _l("Dismissed"),
}
#: The list's status filter: the active alerts, one status, or all.
STATUS_FILTERS: dict[str, Any] = {
    "active": _l("Needing attention (open or grouped)"),
    **ALERT_STATUS,
    "all": _l("All"),
}
#: Where grouped complaints go: a new group, or ``group:<id>``.
NEW_GROUP = "new"


def _id_or_none(value: Any) -> int | None:
    """Coerce a submitted id; junk becomes None (refused by the validator)."""
    if isinstance(value, int):
        return value
    text = str(value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


class AlertFilterForm(FlaskForm):
    """The alert list's filters (a GET form: no CSRF)."""

    class Meta:
        csrf = False

    status = SelectField(
        _l("Status"),
        choices=[SelectChoice(k, v) for k, v in STATUS_FILTERS.items()],
        default="active",
        validate_choice=False,
    )
    category = SelectField(
        _l("Category"),
        choices=[SelectChoice("", _l("All categories"))]
        + [SelectChoice(k, v) for k, v in labels.CATEGORY.items()],
        default="",
        validate_choice=False,
    )

    def chosen_status(self) -> str:
        return self.status.data if self.status.data in STATUS_FILTERS else "active"

    def chosen_category(self) -> str | None:
        return self.category.data if self.category.data in labels.CATEGORY else None


def _mediator_label(user: Any, load: int) -> str:
    return "{} ({})".format(
        user.name, ngettext("%(num)d open case", "%(num)d open cases", load)
    )


class GroupForm(FlaskForm):
    """Group complaints of an alert: which ones, for whom, into which group."""

    case_ids = MultiCheckboxField(
        _l("Complaints to group"), coerce=_id_or_none, validate_choice=False
    )
    target = SelectField(_l("Group"), validate_choice=False, default=NEW_GROUP)
    mediator_id = SelectField(
        _l("Mediator who handles the group"),
        coerce=_id_or_none,
        validate_choice=False,
    )
    title = StringField(
        _l("Name of the group (optional)"),
        validators=[Length(max=200, message=_l("At most 200 characters."))],
    )

    def __init__(
        self,
        *args: Any,
        mediators: list | None = None,
        groups: list | None = None,
        **kwargs: Any,
    ) -> None:
        """:param mediators: ``(user, open cases)`` of the mediators to choose
        from (None: the field is not offered, a mediator groups for themselves).
        :param groups: the alert's groups the user may add to."""
        super().__init__(*args, **kwargs)
        self.offers_mediator = mediators is not None
        self.mediator_id.choices = [SelectChoice("", _l("Choose a mediator"))] + [
            SelectChoice(str(u.id), _mediator_label(u, load))
            for u, load in (mediators or [])
        ]
        self.target.choices = [SelectChoice(NEW_GROUP, _l("A new group"))] + [
            SelectChoice(
                f"group:{g.id}",
                _l("Add to %(group)s (%(title)s)", group=g.reference, title=g.title),
            )
            for g in (groups or [])
        ]

    def validate_case_ids(self, field: Field) -> None:
        if any(value is None for value in field.data or []):
            raise FieldError(_l("Choose complaints listed here."))
        field.data = sorted(set(field.data or []))

    def validate_target(self, field: Field) -> None:
        allowed = {str(choice[0]) for choice in self.target.iter_choices()}
        if (field.data or NEW_GROUP) not in allowed:
            raise FieldError(_l("Choose a group listed here."))

    def group_id(self) -> int | None:
        """Return the existing group chosen, or None for a new one."""
        value = self.target.data or NEW_GROUP
        return int(value.split(":", 1)[1]) if value.startswith("group:") else None


class ResolveForm(FlaskForm):
    """A regulator closes the alert as resolved."""

    note = TextAreaField(
        _l("How was it resolved?"),
        render_kw={"rows": 3},
        validators=[Length(max=2000, message=_l("At most 2000 characters."))],
    )


class DismissForm(FlaskForm):
    """A regulator dismisses the alert as unfounded."""

    reason = TextAreaField(
        _l("Why is the alert unfounded?"),
        render_kw={"rows": 3},
        validators=[Length(max=2000, message=_l("At most 2000 characters."))],
    )


class MediatorForm(FlaskForm):
    """A regulator gives a group to another mediator."""

    mediator_id = SelectField(
        _l("Give the group to"), coerce=_id_or_none, validate_choice=False
    )

    def __init__(self, *args: Any, mediators: list | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.mediator_id.choices = [SelectChoice("", _l("Choose a mediator"))] + [
            SelectChoice(str(u.id), _mediator_label(u, load))
            for u, load in (mediators or [])
        ]


class RemoveCaseForm(FlaskForm):
    """A regulator takes a complaint out of its group."""

    reason = StringField(
        _l("Why take it out?"),
        validators=[Length(max=2000, message=_l("At most 2000 characters."))],
    )
