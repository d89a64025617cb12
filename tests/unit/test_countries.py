"""Nationality and document-number normalisation: the two halves of the pilgrim join key."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.formats.countries import (
    ALPHA2_TO_ALPHA3,
    CANONICAL_CODES,
    ICAO_CODES,
    normalize_document_number,
    normalize_nationality,
)

# Written out here rather than read from the module, so that dropping one from the table fails.
ICAO_ONLY = frozenset(
    {"UTO", "XXA", "XXB", "XXC", "XXX", "GBD", "GBN", "GBO", "GBP", "GBS", "EUE"}
    | {"UNO", "UNA", "UNK", "XOM", "XPO", "XBA", "XIM", "XCC", "XES", "RKS"}
)


def test_table_holds_every_officially_assigned_code_once() -> None:
    assert len(ALPHA2_TO_ALPHA3) == 249
    assert all(re.fullmatch(r"[A-Z]{2}", code) for code in ALPHA2_TO_ALPHA3)
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in ALPHA2_TO_ALPHA3.values())
    assert len(set(ALPHA2_TO_ALPHA3.values())) == 249
    assert not set(ICAO_CODES) & set(ALPHA2_TO_ALPHA3.values())
    assert set(ICAO_CODES) == ICAO_ONLY


@pytest.mark.parametrize(
    ("alpha2", "alpha3"),
    [
        ("SA", "SAU"),
        ("ID", "IDN"),
        ("PK", "PAK"),
        ("GB", "GBR"),
        ("EG", "EGY"),
        ("TR", "TUR"),
        ("MY", "MYS"),
        ("IN", "IND"),
        ("BD", "BGD"),
        ("NG", "NGA"),
        ("DZ", "DZA"),
        ("DE", "DEU"),
        ("KM", "COM"),
        ("YT", "MYT"),
    ],
)
def test_alpha2_maps_to_alpha3(alpha2: str, alpha3: str) -> None:
    assert normalize_nationality(alpha2) == alpha3


@pytest.mark.parametrize("code", ["SAU", "IDN", "PAK", "DEU", "GBR", "PSE", "SSD"])
def test_alpha3_is_kept(code: str) -> None:
    assert normalize_nationality(code) == code


@pytest.mark.parametrize("code", sorted(ICAO_ONLY))
def test_icao_only_codes_are_kept(code: str) -> None:
    assert normalize_nationality(code) == code


@pytest.mark.parametrize(("raw", "expected"), [("D", "DEU"), ("D<<", "DEU"), ("d", "DEU"), (" D< ", "DEU")])
def test_germany_mrz_code_maps_to_deu(raw: str, expected: str) -> None:
    assert normalize_nationality(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("sau", "SAU"), (" id ", "IDN"), ("Pk", "PAK"), ("UTO", "UTO"), ("gbr\n", "GBR"), ("ID<", "IDN")],
)
def test_case_whitespace_and_filler_are_ignored(raw: str, expected: str) -> None:
    assert normalize_nationality(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "XY",  # unassigned alpha-2
        "ZZZ",  # unassigned alpha-3
        "ANT",  # retired (Netherlands Antilles)
        "XKX",  # user-assigned, not ICAO
        "SAUD",
        "1",
        "\u0131d",  # dotless i: would upper-case to "ID"
        "Saudi Arabia",
    ],
)
def test_unknown_codes_are_refused_naming_the_code(raw: str) -> None:
    with pytest.raises(ValueError, match="unknown nationality code") as caught:
        normalize_nationality(raw)
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize("raw", ["", "   ", "<<<"])
def test_empty_codes_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="empty nationality code"):
        normalize_nationality(raw)


@settings(database=None)
@given(st.text(max_size=6))
def test_any_text_normalises_to_a_canonical_code_or_value_error(raw: str) -> None:
    try:
        code = normalize_nationality(raw)
    except ValueError:
        return
    assert code in CANONICAL_CODES
    assert normalize_nationality(code) == code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("L898902C3", "L898902C3"),
        ("l898902c3", "L898902C3"),
        (" AB 123-456 ", "AB123456"),
        ("C01X00T47<<", "C01X00T47"),
        ("a-b<c d", "ABCD"),
    ],
)
def test_document_number_is_normalised(raw: str, expected: str) -> None:
    assert normalize_document_number(raw) == expected


@pytest.mark.parametrize("raw", ["", " - ", "<<<<<<<<<"])
def test_empty_document_number_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="empty document number"):
        normalize_document_number(raw)
