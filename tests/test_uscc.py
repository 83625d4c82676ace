"""The unified social credit code validator (GB 32100-2015)."""

from __future__ import annotations

import pytest

from mediation.merchants import uscc

#: Codes of real companies, printed on their business licences.
REAL_CODES = [
    "91440300708461136T",  # Tencent (Shenzhen)
    "914403001922038216",  # Huawei (Shenzhen)
    "91110108551385082Q",  # Xiaomi (Beijing)
    "91110000802100433B",
    "91330100716105852F",
    "91350100M000100Y43",
]
#: Characters that never occur in a code: the five excluded capitals and lowercase.
FORBIDDEN = "IOSVZ" + "abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_codes_are_valid(code):
    assert uscc.validation_error(code) is None
    assert uscc.is_valid(code)
    assert uscc.check_character(code[:17]) == code[17]


def _expected_reason(position: int, char: str) -> str:
    """Why a code with ``char`` at ``position`` fails, given the rest is valid."""
    if position == 0 and char not in uscc.AUTHORITIES:
        return "authority"
    if 2 <= position < 8 and not char.isdigit():
        return "region"
    return "check"


@pytest.mark.parametrize("code", REAL_CODES)
@pytest.mark.parametrize("position", range(18))
def test_every_single_character_substitution_is_rejected(code, position):
    accepted = []
    for char in uscc.ALPHABET:
        if char == code[position]:
            continue
        mutated = code[:position] + char + code[position + 1 :]
        reason = uscc.validation_error(mutated)
        if reason != _expected_reason(position, char):
            accepted.append((mutated, reason))
    assert accepted == []


@pytest.mark.parametrize("code", REAL_CODES)
@pytest.mark.parametrize("position", range(18))
def test_forbidden_and_lowercase_characters_are_rejected(code, position):
    for char in FORBIDDEN:
        mutated = code[:position] + char + code[position + 1 :]
        assert uscc.validation_error(mutated) == "alphabet", mutated
        assert not uscc.is_valid(mutated)


@pytest.mark.parametrize("code", REAL_CODES)
def test_lowercase_typing_of_another_character_is_still_rejected(code):
    """Normalising (upper-casing) a typo never turns it into a valid code."""
    for position in range(18):
        for char in uscc.ALPHABET:
            if char == code[position] or not char.isalpha():
                continue
            typed = code[:position] + char.lower() + code[position + 1 :]
            assert not uscc.is_valid(uscc.normalise(typed)), typed


@pytest.mark.parametrize("code", REAL_CODES)
def test_adjacent_transpositions_of_the_body_are_rejected(code):
    """Swapping two neighbours among the first 17 characters changes the check."""
    for position in range(16):
        a, b = code[position], code[position + 1]
        if a == b:
            continue
        swapped = code[:position] + b + a + code[position + 2 :]
        assert uscc.validation_error(swapped) is not None, swapped


@pytest.mark.parametrize(
    "code",
    [
        "",
        "9144030070846113",
        "91440300708461136",
        "91440300708461136TT",
        "91440300708461136T0000",
    ],
)
def test_wrong_length_is_rejected(code):
    assert uscc.validation_error(code) == "length"


@pytest.mark.parametrize(
    "code",
    [
        "91440300-08461136T",
        "9144030070846113 T",
        "91440300708461136Ｔ",
        "91440300708461136统",
    ],
)
def test_characters_outside_the_alphabet_are_rejected(code):
    assert len(code) == 18
    assert uscc.validation_error(code) == "alphabet"


def test_normalise_strips_spaces_and_upper_cases():
    assert uscc.normalise(" 9144 0300 7084 6113 6t\t") == "91440300708461136T"
    assert uscc.is_valid(uscc.normalise("91440300708461136t"))


def test_alphabet_has_31_characters_without_i_o_s_v_z():
    assert len(uscc.ALPHABET) == 31
    assert not set("IOSVZ") & set(uscc.ALPHABET)


@pytest.mark.parametrize(
    "body", ["9144030070846113", "91440300708461136T", "9144030070846113I"]
)
def test_check_character_refuses_bad_input(body):
    with pytest.raises(ValueError):
        uscc.check_character(body)
