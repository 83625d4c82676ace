"""The unified social credit code (统一社会信用代码) of GB 32100-2015.

18 characters from a 31-character alphabet (digits and capitals without I, O, S,
V, Z): registration authority, organisation type, 6-digit administrative
division, 9-character organisation code, and a check character computed over
the first 17 with weights 3^i mod 31.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES = {ch: i for i, ch in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
#: Registration authority codes (first character) in use.
AUTHORITIES = set("123456789ABCDEFGHNY")


def check_character(first17: str) -> str:
    """Return the check character for the first 17 characters.

    :raise ValueError: if a character is outside the code's alphabet.
    """
    if len(first17) != 17:
        raise ValueError("need 17 characters")
    total = 0
    for ch, weight in zip(first17, WEIGHTS, strict=True):
        if ch not in VALUES:
            raise ValueError(f"character {ch!r} is not allowed")
        total += VALUES[ch] * weight
    return ALPHABET[(31 - total % 31) % 31]


def normalise(code: str) -> str:
    """Strip spaces and upper-case a code as typed."""
    return "".join((code or "").split()).upper()


def validation_error(code: str) -> str | None:
    """Return why ``code`` is not a valid credit code, or None when it is.

    The reason is a short English key: ``length``, ``alphabet``, ``authority``,
    ``region`` or ``check``.
    """
    if len(code) != 18:
        return "length"
    if any(ch not in VALUES for ch in code):
        return "alphabet"
    if code[0] not in AUTHORITIES:
        return "authority"
    if not code[2:8].isdigit():
        return "region"
    if check_character(code[:17]) != code[17]:
        return "check"
    return None


def is_valid(code: str) -> bool:
    """Return True when ``code`` (already normalised) is a valid credit code."""
    return validation_error(code) is None
