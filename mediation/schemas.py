"""Marshmallow base: unknown fields refused, error messages translated."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext
from marshmallow import RAISE, Schema
from marshmallow import ValidationError as MarshmallowError

from mediation.errors import ValidationError

_MESSAGES = {
    "Missing data for required field.": lambda: gettext("This field is required."),
    "Unknown field.": lambda: gettext("Unknown field."),
    "Not a valid integer.": lambda: gettext("Enter a whole number."),
    "Not a valid string.": lambda: gettext("Enter text."),
    "Not a valid boolean.": lambda: gettext("Enter true or false."),
    "Not a valid date.": lambda: gettext("Enter a date as YYYY-MM-DD."),
    "Not a valid email address.": lambda: gettext("Enter a valid e-mail address."),
    "Field may not be null.": lambda: gettext("This field is required."),
    "Invalid input type.": lambda: gettext("The value has the wrong type."),
    "Not a valid list.": lambda: gettext("Enter a list."),
    "Not a valid mapping type.": lambda: gettext("Enter an object."),
    "Invalid input.": lambda: gettext("The value is not valid."),
}


def translate(messages: Any) -> Any:
    """Translate marshmallow's built-in English messages (nested)."""
    if isinstance(messages, dict):
        return {k: translate(v) for k, v in messages.items()}
    if isinstance(messages, list):
        flat = [translate(m) for m in messages]
        return flat[0] if len(flat) == 1 else flat
    text = str(messages)
    if text in _MESSAGES:
        return _MESSAGES[text]()
    if text.startswith("Must be one of:"):
        return gettext("Choose one of the allowed values.")
    if text.startswith("Must be greater than or equal to"):
        return gettext("The value is too small.")
    if text.startswith("Must be less than or equal to"):
        return gettext("The value is too large.")
    if (
        text.startswith("Length must be")
        or text.startswith("Shorter than")
        or text.startswith("Longer than")
    ):
        return gettext("The length is not allowed.")
    return text


class BaseSchema(Schema):
    """Every input schema: unknown fields are an error, not silently dropped."""

    class Meta:
        unknown = RAISE

    def load_or_raise(self, data: Any, **kw: Any) -> Any:
        """Load ``data``; marshmallow's error becomes a 422 ``ValidationError``."""
        try:
            return self.load(data, **kw)
        except MarshmallowError as exc:
            messages = exc.messages
            if not isinstance(messages, dict):
                messages = {"_schema": messages}
            raise ValidationError(fields=translate(messages)) from None
