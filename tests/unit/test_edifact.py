"""UN/EDIFACT tokenizer: separators, release characters, layout, offsets, rejections, and a
differential test against pydifact 0.2.3 on generated interchanges with random separators."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydifact.parser import Parser

from connectors.formats.edifact import Segment, Separators, tokenize
from connectors.rejections import InputRejected

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "airlines"


def _shape(segments: list[Segment]) -> list[tuple[str, list[list[str]]]]:
    return [(s.tag, s.elements) for s in segments]


def _rejected(data: bytes) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        tokenize(data, "t.edi")
    assert caught.value.rejection.input == "t.edi"
    return caught.value


# --- separators and release characters -----------------------------------------------------------


def test_default_separators_without_una() -> None:
    segments = tokenize(b"UNB+UNOA:4+SV+SAUDIAPIS+240315:0930+1'UNZ+0+1'")
    assert _shape(segments) == [
        ("UNB", [["UNOA", "4"], ["SV"], ["SAUDIAPIS"], ["240315", "0930"], ["1"]]),
        ("UNZ", [["0"], ["1"]]),
    ]


def test_una_sets_every_separator() -> None:
    data = b"UNA*|,# ~UNB|UNOA*4|A B~NAD|FL|||O'BRIEN*ANNA+MARIA:X~"
    assert _shape(tokenize(data)) == [
        ("UNB", [["UNOA", "4"], ["A B"]]),
        ("NAD", [["FL"], [""], [""], ["O'BRIEN", "ANNA+MARIA:X"]]),
    ]


@pytest.mark.parametrize(
    ("sent", "value"),
    [
        ("O?'BRIEN", ["O'BRIEN"]),
        ("A?+B", ["A+B"]),
        ("A?:B", ["A:B"]),
        ("A??B", ["A?B"]),
        ("????", ["??"]),
        ("A??:B", ["A?", "B"]),
        ("?'", ["'"]),
        ("?A", ["A"]),  # a release before an ordinary character is dropped, as pydifact does
    ],
)
def test_release_character_makes_the_next_character_literal(sent: str, value: list[str]) -> None:
    data = f"UNB+UNOA:4'FTX+{sent}+Z'UNZ+1'".encode()
    assert tokenize(data)[1].elements == [value, ["Z"]]


def test_an_even_run_of_release_characters_does_not_escape_the_terminator() -> None:
    segments = tokenize(b"UNB+1'FTX+A??'FTX+B???''UNZ+1'")
    assert _shape(segments)[1:] == [("FTX", [["A?"]]), ("FTX", [["B?'"]]), ("UNZ", [["1"]])]


def test_space_in_the_release_position_means_no_release_character() -> None:
    segments = tokenize(b"UNA:+.  'UNB+1'FTX+WHAT?+SO'")
    assert segments[1].elements == [["WHAT?"], ["SO"]]


def test_segments_with_and_without_release_characters_split_alike() -> None:
    plain = tokenize(b"UNB+1'NAD+FL+++SMITH:JOHN'DOC+P+X1'UNZ+1'")
    mixed = tokenize(b"UNB+1'NAD+FL+++SMITH:JOHN'DOC+P+X?1'UNZ+1'")
    assert _shape(plain) == _shape(mixed)


@pytest.mark.parametrize(
    "una",
    [
        "UNA:+.?",  # short
        "UNA::.? '",  # component == element
        "UNA:+.: '",  # release == component
        "UNA:+.? :",  # terminator == component
        "UNAA+.? '",  # letter as separator
    ],
)
def test_unusable_una_is_rejected(una: str) -> None:
    rejection = _rejected(f"{una}UNB+1'".encode()).rejection
    assert rejection.location == "UNA"


# --- layout --------------------------------------------------------------------------------------


def test_lf_crlf_and_single_line_read_the_same() -> None:
    segments = ["UNB+UNOA:4+SV+X+240315:0930+1", "UNH+1+PAXLST:D:05B:UN:IATA", "UNT+2+1", "UNZ+1+1"]
    one_line = "UNA:+.? '" + "'".join(segments) + "'"
    lf = "UNA:+.? '\n" + "'\n".join(segments) + "'\n"
    crlf = "\r\n  UNA:+.? '\r\n" + "'\r\n".join(segments) + "'\r\n\r\n"
    shapes = [_shape(tokenize(text.encode())) for text in (one_line, lf, crlf)]
    assert shapes[0] == shapes[1] == shapes[2]
    assert [tag for tag, _ in shapes[0]] == ["UNB", "UNH", "UNT", "UNZ"]


def test_spaces_inside_data_are_kept() -> None:
    assert tokenize(b"UNB+1'NAD+MS+++ SV APIS DESK '")[1].elements[3] == [" SV APIS DESK "]


def test_lf_as_segment_terminator_drops_the_cr_before_it() -> None:
    segments = tokenize(b"UNA:+.? \nUNB+1\r\nFTX+A B\r\n")
    assert _shape(segments) == [("UNB", [["1"]]), ("FTX", [["A B"]])]


# --- index and offset ----------------------------------------------------------------------------


def test_index_counts_from_unb_and_offset_points_at_the_tag() -> None:
    data = b"UNA:+.? '\r\nUNB+1'\r\nUNH+1'\r\nUNT+2+1'\r\nUNZ+1+1'"
    segments = tokenize(data)
    assert [s.index for s in segments] == [1, 2, 3, 4]
    for segment in segments:
        assert data[segment.offset : segment.offset + 3].decode() == segment.tag


def test_offsets_are_bytes_for_utf8_latin1_and_bom() -> None:
    text = "UNB+UNOY:4'NAD+FL+++ÇELİK:AYŞE'NAD+FL+++GARCÍA:JOSÉ'UNZ+1'"
    for data in (text.encode("utf-8"), b"\xef\xbb\xbf" + text.encode("utf-8")):
        segments = tokenize(data)
        assert segments[1].elements[3] == ["ÇELİK", "AYŞE"]
        assert [data[s.offset : s.offset + 3] for s in segments] == [b"UNB", b"NAD", b"NAD", b"UNZ"]
    latin1 = "UNB+UNOC:4'NAD+FL+++MÜLLER:JÜRGEN'UNZ+1'".encode("latin-1")
    segments = tokenize(latin1)
    assert segments[1].elements[3] == ["MÜLLER", "JÜRGEN"]
    assert [latin1[s.offset : s.offset + 3] for s in segments] == [b"UNB", b"NAD", b"UNZ"]


def test_value_and_components_are_1_based_and_never_raise() -> None:
    tdt = tokenize(b"UNB+1'TDT+20+SV817+++SV:IATA'")[1]
    assert tdt.value(1) == "20"
    assert tdt.value(2) == "SV817"
    assert tdt.value(5, 2) == "IATA"
    assert tdt.value(5, 3) == tdt.value(9) == tdt.value(0) == tdt.value(-1) == ""
    assert tdt.components(5) == ["SV", "IATA"]
    assert tdt.components(6) == []


# --- rejections ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"   \r\n", b"<OTA_HotelResNotifRQ/>", b'{"a": 1}', b"UNH+1+PAXLST'", b"\xff\xfe\x00U\x00N\x00B"],
)
def test_not_edifact_is_rejected(data: bytes) -> None:
    rejection = _rejected(data).rejection
    assert rejection.location == "segment 1"
    assert "not a UN/EDIFACT interchange" in rejection.reason


@pytest.mark.parametrize(
    ("data", "location"),
    [
        (b"UNB+1'UNZ+1", "segment 2 (UNZ)"),
        (b"UNB+1'UNZ", "segment 2"),
        (b"UNB+1'UNZ+1?'", "segment 2 (UNZ)"),  # the last terminator is released: data, not an end
        (b"UNB+1'UNZ+1?'\n", "segment 2 (UNZ)"),
        (b"UNB+1", "segment 1 (UNB)"),
    ],
)
def test_truncated_interchange_is_rejected(data: bytes, location: str) -> None:
    rejection = _rejected(data).rejection
    assert rejection.location == location
    assert "truncated" in rejection.reason


def test_truncated_golden_file_names_the_cut_segment() -> None:
    rejection = _rejected((FIXTURES / "truncated.edi").read_bytes()).rejection
    assert rejection.location == "segment 33 (DTM)"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"UNB+1''UNZ+1'", "empty segment"),
        (b"UNB+1'\r\n'UNZ+1'", "empty segment"),
        (b"UNB+1'unz+1'", "segment tag"),
        (b"UNB+1'UN+1'", "segment tag"),
        (b"UNB+1'UNZ:4+1'", "segment tag"),
        (b"UNB+1'UNZ?:4+1'", "segment tag"),
    ],
)
def test_malformed_segment_is_rejected(data: bytes, reason: str) -> None:
    rejection = _rejected(data).rejection
    assert rejection.location == "segment 2"
    assert reason in rejection.reason


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"UNA:+.? 'UNB+" + b)))
def test_arbitrary_bytes_only_ever_raise_input_rejected(data: bytes) -> None:
    try:
        segments = tokenize(data)
    except InputRejected:
        return
    assert all(len(s.tag) == 3 and all(s.elements) for s in segments)


# --- differential test against pydifact ----------------------------------------------------------

# No letters, digits or whitespace: those are data; pydifact treats a space release as a release.
SERVICE_CHARACTERS = "!\"#$%&()*,-./:;<=>?@[\\]^_`{|}~'+"
TAGS = ["BGM", "NAD", "TDT", "LOC", "DTM", "ATT", "NAT", "RFF", "DOC", "CNT", "FTX", "UNH", "UNT", "X9Z"]


@st.composite
def interchanges(draw: st.DrawFn) -> tuple[str, list[tuple[str, list[list[str]]]]]:
    """(text, segments as written) with random UNA separators and values full of them."""
    chars = draw(st.lists(st.sampled_from(SERVICE_CHARACTERS), min_size=6, max_size=6, unique=True))
    separators = Separators.from_una("".join(chars))
    component, element, release, terminator = chars[0], chars[1], chars[3], chars[5]
    special = {component, element, release, terminator}
    alphabet = st.sampled_from([*"AZaz09 -/", "É", "ß", "中", *chars])
    value = st.text(alphabet, max_size=6)
    elements = st.lists(st.lists(value, min_size=1, max_size=4), max_size=6)
    body = draw(st.lists(st.tuples(st.sampled_from(TAGS), elements), min_size=1, max_size=10))
    written = [("UNB", [["UNOC", "4"], ["SENDER"]]), *body]
    newline = draw(st.sampled_from(["", "\n", "\r\n"]))

    def escape(text: str) -> str:
        return "".join(release + c if c in special else c for c in text)

    lines = [
        tag + "".join(element + component.join(escape(c) for c in components) for components in parts)
        for tag, parts in written
    ]
    assert separators.release == release
    text = "UNA" + "".join(chars) + newline + "".join(line + terminator + newline for line in lines)
    return text, written


def _normalise(elements: list[list[str]]) -> list[list[str]]:
    """pydifact drops trailing empty components (``A:B::`` -> ``[A, B]``); compare without them."""
    out = []
    for components in elements:
        trimmed = list(components)
        while len(trimmed) > 1 and trimmed[-1] == "":
            trimmed.pop()
        out.append(trimmed)
    return out


def _pydifact(text: str) -> list[tuple[str, list[list[str]]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segments = [s for s in Parser().parse(text) if s.tag != "UNA"]
    return [(s.tag, _normalise([[e] if isinstance(e, str) else list(e) for e in s.elements])) for s in segments]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(interchanges())
def test_tokenizer_agrees_with_pydifact(case: tuple[str, list[tuple[str, list[list[str]]]]]) -> None:
    text, written = case
    ours = [(s.tag, _normalise(s.elements)) for s in tokenize(text.encode("utf-8"))]
    assert ours == _pydifact(text)
    # and, stronger than pydifact, the exact values written (trailing empty components included)
    assert [(s.tag, s.elements) for s in tokenize(text.encode("utf-8"))] == written
