"""PAXLST parser: golden files, century rules, person-level rejections, envelope and control-total
rejections, and fuzzing (arbitrary bytes, mutated interchanges, garbled values) that may only ever
raise InputRejected.

Golden files live in ``tests/fixtures/airlines``: each ``X.edi`` has an ``X.expected.json`` beside
it, either the parse result rendered as JSON (ISO dates) or ``{"input_rejected": {...}}`` naming the
expected location, field and a substring of the reason.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.formats.edifact import tokenize
from connectors.formats.paxlst import ManifestPerson, PaxlstInterchange, parse_paxlst
from connectors.rejections import InputRejected, Rejection

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "airlines"
GOLDEN = sorted(FIXTURES.glob("*.edi"))
SPECIMEN = (FIXTURES / "specimen.edi").read_bytes()


def _render(value: PaxlstInterchange) -> Any:
    def default(v: object) -> str:
        if isinstance(v, date | datetime):
            return v.isoformat()
        raise TypeError(f"cannot render {type(v).__name__}")

    return json.loads(json.dumps(dataclasses.asdict(value), default=default))


# --- building interchanges -------------------------------------------------------------------------

HEADER = [
    "BGM+745",
    "NAD+MS+++SV APIS DESK",
    "TDT+20+SV817+++SV",
    "LOC+125+CGK",
    "DTM+189:2403151040:201",
    "LOC+87+JED",
    "DTM+232:2403151630:201",
]


def person(
    surname: str = "ERIKSSON:ANNA:MARIA",
    *,
    qualifier: str = "FL",
    sex: str = "F",
    birth: str = "740812",
    doc: str = "DOC+P:110:111+L898902C3",
    expiry: str = "120415",
    extra: tuple[str, ...] = (),
) -> list[str]:
    """One person group; pass ``""`` to leave a segment out."""
    segments = [
        f"NAD+{qualifier}+++{surname}",
        f"ATT+2++{sex}" if sex else "",
        f"DTM+329:{birth}" if birth else "",
        "LOC+178+CGK",
        "LOC+179+JED",
        "NAT+2+UTO",
        "RFF+AVF:ABC123",
        doc,
        f"DTM+36:{expiry}" if expiry else "",
        "LOC+91+UTO",
        *extra,
    ]
    return [s for s in segments if s]


def message(
    *people: list[str],
    ref: str = "PAX001",
    header: list[str] | None = None,
    counts: tuple[str, ...] | None = None,
    unt: str | None = None,
) -> list[str]:
    """UNH ... UNT with a correct segment count and CNT+42 unless told otherwise."""
    body = list(HEADER if header is None else header)
    for group in people:
        body += group
    if counts is None:
        counts = (f"CNT+42:{sum(1 for g in people if g[0].startswith('NAD+FL'))}",)
    body += counts
    segments = [f"UNH+{ref}+PAXLST:D:05B:UN:IATA", *body]
    segments.append(unt or f"UNT+{len(segments) + 1}+{ref}")
    return segments


def interchange(*messages: list[str], group: bool = True, unz: str | None = None, une: str | None = None) -> bytes:
    segments = ["UNB+UNOA:4+SV+SAUDIAPIS+240315:0930+000000001++APIS"]
    if group:
        segments.append("UNG+PAXLST+SV+SAUDIAPIS+240315:0930+1+UN+D:05B")
    for m in messages:
        segments += m
    if group:
        segments.append(une or f"UNE+{len(messages)}+1")
    segments.append(unz or f"UNZ+{1 if group else len(messages)}+000000001")
    return ("UNA:+.? '\n" + "".join(s + "'\n" for s in segments)).encode()


def parse(data: bytes) -> PaxlstInterchange:
    return parse_paxlst(data, "t.edi")


def people(data: bytes) -> list[ManifestPerson]:
    return [p for m in parse(data).messages for p in m.people]


def rejected(data: bytes) -> Rejection:
    with pytest.raises(InputRejected) as caught:
        parse_paxlst(data, "t.edi")
    assert caught.value.rejection.input == "t.edi"
    return caught.value.rejection


def test_builder_reproduces_the_specimen() -> None:
    assert _render(parse(interchange(message(person())))) == _render(parse(SPECIMEN))


# --- golden files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_file(path: Path) -> None:
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    if "input_rejected" in expected:
        want = expected["input_rejected"]
        with pytest.raises(InputRejected) as caught:
            parse_paxlst(path.read_bytes(), path.name)
        rejection = caught.value.rejection
        assert rejection.input == path.name
        assert rejection.location == want["location"]
        assert rejection.field == want["field"]
        assert want["reason_contains"] in rejection.reason
    else:
        assert _render(parse_paxlst(path.read_bytes(), path.name)) == expected


def test_every_golden_file_has_an_expectation() -> None:
    assert len(GOLDEN) >= 11
    missing = [p.name for p in GOLDEN if not p.with_suffix(".expected.json").exists()]
    assert missing == []


def test_specimen_reads_as_documented() -> None:
    result = parse(SPECIMEN)
    (msg,) = result.messages
    (anna,) = msg.people
    assert (result.sender, result.recipient, result.control_ref) == ("SV", "SAUDIAPIS", "000000001")
    assert result.prepared_at == datetime(2024, 3, 15, 9, 30)
    assert (msg.flight_number, msg.carrier, msg.departure_airport, msg.arrival_airport) == (
        "SV817",
        "SV",
        "CGK",
        "JED",
    )
    assert (msg.departure_time, msg.arrival_time) == (datetime(2024, 3, 15, 10, 40), datetime(2024, 3, 15, 16, 30))
    assert anna.position == "message PAX001 segment 11 (NAD)"
    assert SPECIMEN[anna.offset :].startswith(b"NAD+FL+++ERIKSSON")
    assert (anna.surname, anna.given_names, anna.sex) == ("ERIKSSON", "ANNA MARIA", "F")
    assert (anna.birth_date, anna.document_expiry) == (date(1974, 8, 12), date(2012, 4, 15))
    assert (anna.passport_number, anna.document_type, anna.issuing_state) == ("L898902C3", "P", "UTO")
    assert result.rejections == []


def test_layout_does_not_change_the_people() -> None:
    """The same person parses the same from LF, CRLF and single-line files; only the offset moves."""
    variants = [SPECIMEN, SPECIMEN.replace(b"\n", b"\r\n"), SPECIMEN.replace(b"\n", b"")]
    found = [parse(data).messages[0].people[0] for data in variants]
    assert len({dataclasses.replace(p, offset=0) for p in found}) == 1
    for data, p in zip(variants, found, strict=True):
        assert data[p.offset :].startswith(b"NAD+FL+++ERIKSSON")


# --- dates -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "born"),
    [
        ("740812", date(1974, 8, 12)),
        ("240315", date(2024, 3, 15)),  # born the day the manifest was prepared
        ("240316", date(1924, 3, 16)),  # a day later would be in the future: a century earlier
        ("250101", date(1925, 1, 1)),
        ("000229", date(2000, 2, 29)),
        ("231231", date(2023, 12, 31)),
        ("19740812", date(1974, 8, 12)),  # CCYYMMDD
    ],
)
def test_two_digit_birth_years_lie_in_the_past(sent: str, born: date) -> None:
    (p,) = people(interchange(message(person(birth=sent))))
    assert p.birth_date == born


def test_birth_date_with_format_code_102() -> None:
    (p,) = people(interchange(message(person(birth="19740812:102"))))
    assert p.birth_date == date(1974, 8, 12)


@pytest.mark.parametrize(
    ("sent", "expires"),
    [
        ("120415", date(2012, 4, 15)),  # already expired: kept as sent, judged downstream
        ("290101", date(2029, 1, 1)),
        ("740101", date(2074, 1, 1)),  # 50 years ahead
        ("750101", date(1975, 1, 1)),  # 51 years ahead cannot be an expiry date
        ("20340101", date(2034, 1, 1)),
    ],
)
def test_two_digit_expiry_years_lie_in_the_future(sent: str, expires: date) -> None:
    (p,) = people(interchange(message(person(expiry=sent))))
    assert p.document_expiry == expires


def test_flight_times_in_ccyymmddhhmm() -> None:
    header = [h.replace("2403151040:201", "202403151040:203") for h in HEADER]
    header = [h.replace("2403151630:201", "202403151630") for h in header]
    (msg,) = parse(interchange(message(person(), header=header))).messages
    assert (msg.departure_time, msg.arrival_time) == (datetime(2024, 3, 15, 10, 40), datetime(2024, 3, 15, 16, 30))


@pytest.mark.parametrize(
    ("flight", "carrier"),
    [
        ("SV817", "SV"),
        ("SVA1460", "SVA"),
        ("9W123", "9W"),
        ("G9 541", "G9"),
        ("SV817D", "SV"),
        ("817", None),
        ("12345", None),
    ],
)
def test_carrier_comes_from_the_flight_number_when_tdt_has_none(flight: str, carrier: str | None) -> None:
    header = [f"TDT+20+{flight}" if h.startswith("TDT") else h for h in HEADER]
    (msg,) = parse(interchange(message(person(), header=header))).messages
    assert (msg.flight_number, msg.carrier) == (flight, carrier)


# --- one person at a time --------------------------------------------------------------------------


@pytest.mark.parametrize(("sent", "sex"), [("M", "M"), ("F", "F"), ("U", "X"), ("X", "X")])
def test_sex_codes(sent: str, sex: str) -> None:
    (p,) = people(interchange(message(person(sex=sent))))
    assert p.sex == sex


def test_empty_sex_is_no_sex() -> None:
    result = parse(interchange(message(person(sex="", extra=("ATT+2",)))))
    assert [p.sex for p in result.messages[0].people] == [None]
    assert result.rejections == []


def test_optional_fields_are_none_when_not_sent() -> None:
    group = ["NAD+FL+++SUKARNO", "DOC+P+X0011223"]
    (p,) = people(interchange(message(group)))
    assert (p.surname, p.given_names, p.sex, p.birth_date, p.nationality) == ("SUKARNO", None, None, None, None)
    assert (p.document_expiry, p.issuing_state, p.embark_airport, p.booking_ref) == (None, None, None, None)


def test_passport_wins_over_a_visa_and_keeps_its_own_expiry_and_issuer() -> None:
    group = [
        *person(doc="DOC+V+SAVISA1", expiry="250101")[:-1],
        "LOC+91+SAU",
        "DOC+P:110:111+L898902C3",
        "DTM+36:300101",
        "LOC+91+UTO",
        "RFF+ABO:IGNORED",
    ]
    (p,) = people(interchange(message(group)))
    assert (p.document_type, p.passport_number, p.document_expiry, p.issuing_state) == (
        "P",
        "L898902C3",
        date(2030, 1, 1),
        "UTO",
    )
    assert p.booking_ref == "ABC123"


@pytest.mark.parametrize("doc_type", ["I", "V", "ACG", "C"])
def test_other_document_types_are_kept(doc_type: str) -> None:
    (p,) = people(interchange(message(person(doc=f"DOC+{doc_type}+ID99"))))
    assert (p.document_type, p.passport_number) == (doc_type, "ID99")


def test_unknown_segments_and_qualifiers_are_ignored() -> None:
    extra = ("FTX+AAI+++WHEELCHAIR", "MEA+CT++KGM:20", "GEI+4+ZZZ", "LOC+180+SOLO", "DTM+999:010101", "XYZ+1")
    header = [*HEADER, "COM+966 12 000:TE", "LOC+92+KUL"]
    (p,) = people(interchange(message(person(extra=extra), header=header)))
    assert p.surname == "ERIKSSON"


def test_crew_member_in_a_passenger_list_and_passenger_nad_in_a_crew_list() -> None:
    mixed = message(person(), person("PILOT:ONE", qualifier="FM"), counts=("CNT+42:1", "CNT+41:1"))
    assert [p.is_crew for p in people(interchange(mixed))] == [False, True]
    header = ["BGM+250", *HEADER[1:]]
    crew = message(person(), person("PILOT:ONE", qualifier="FM"), header=header, counts=("CNT+41:2",))
    result = parse(interchange(crew))
    assert result.messages[0].is_crew_list
    assert [p.is_crew for p in result.messages[0].people] == [True, True]


@pytest.mark.parametrize(
    ("group", "field", "reason"),
    [
        (person(birth="741332"), "DTM+329 birth_date", "not a real date"),
        (person(birth="74081"), "DTM+329 birth_date", "YYMMDD"),
        (person(birth="7408AB"), "DTM+329 birth_date", "YYMMDD"),
        (person(birth="20250101"), "DTM+329 birth_date", "after the manifest was prepared"),
        (person(birth="740812:999"), "DTM+329 birth_date", "format"),
        (person(expiry="301301"), "DTM+36 document_expiry", "not a real date"),
        (person(sex="Q"), "ATT+2 sex", "'Q'"),
        (person(sex="ABC:DEF"), "ATT+2 sex", "not M, F or U"),
        (person(surname=""), "NAD name", "no surname"),
        (person(surname=":ANNA"), "NAD name", "no surname"),
        (person(doc=""), "DOC document_number", "no travel document"),
        (person(doc="DOC+P"), "DOC document_number", "no number"),
        (person(doc="DOC++L898902C3"), "DOC document_type", "no type"),
        (["NAD+FL", "ATT", "DTM", "DOC", "LOC", "NAT", "RFF"], "NAD name", "no surname"),
    ],
)
def test_a_bad_person_is_rejected_alone(group: list[str], field: str, reason: str) -> None:
    good = person("GOOD:ONE")
    result = parse(interchange(message(good, group, person("GOOD:TWO"))))
    assert [p.surname for p in result.messages[0].people] == ["GOOD", "GOOD"]
    assert any(r.field == field and reason in r.reason for r in result.rejections), result.rejections
    assert {r.location for r in result.rejections} == {"message PAX001 segment 21 (NAD)"}
    assert all(r.input == "t.edi" for r in result.rejections)


def test_every_problem_of_a_person_is_reported() -> None:
    result = parse(interchange(message(person(surname="", sex="Q", birth="991399", doc="DOC+P"))))
    assert result.messages[0].people == []
    assert sorted(r.field or "" for r in result.rejections) == [
        "ATT+2 sex",
        "DOC document_number",
        "DTM+329 birth_date",
        "NAD name",
    ]


def test_positions_and_offsets_point_at_each_persons_nad() -> None:
    data = interchange(message(*(person(f"P{n}:X") for n in range(5))))
    found = people(data)
    assert [p.segment_index for p in found] == [11, 21, 31, 41, 51]
    assert [p.position for p in found][1] == "message PAX001 segment 21 (NAD)"
    for n, p in enumerate(found):
        assert data[p.offset :].startswith(f"NAD+FL+++P{n}:X'".encode())


# --- the whole input is refused --------------------------------------------------------------------

GOOD = message(person())


@pytest.mark.parametrize(
    ("data", "location", "field", "reason"),
    [
        (b"UNA:+.? 'UNH+1'", "segment 1 (UNH)", None, "missing UNB"),
        (b"UNB+UNOA:4+SV+X+240315:0930+1'UNZ+0+1'", "segment 2 (UNZ)", None, "missing UNH"),
        (b"UNB+UNOA:4+SV+X+240315:0930+1'UNH+1+PAXLST'", "segment 2 (UNH)", None, "missing UNZ"),
        (
            b"UNB+UNOA:4+SV+X+240315:0930+1'UNH+1+PAXLST'BGM+745'UNZ+1+1'",
            "segment 4 (UNZ)",
            None,
            "missing UNT",
        ),
        (interchange([*GOOD[:-1], "UNT+20+PAX002"]), "segment 22 (UNT)", "UNT message_ref", "PAX002"),
        (interchange([*GOOD[:-1], "UNT+21+PAX001"]), "segment 22 (UNT)", "UNT segment_count", "says 21"),
        (interchange([*GOOD[:-1], "UNT+X+PAX001"]), "segment 22 (UNT)", "UNT segment_count", "not a number"),
        (interchange(GOOD, une="UNE+2+1"), "segment 23 (UNE)", "UNE message_count", "says 2"),
        (interchange(GOOD, une="UNE+1+9"), "segment 23 (UNE)", "UNE group_ref", "'9'"),
        (interchange(GOOD, unz="UNZ+2+000000001"), "segment 24 (UNZ)", "UNZ count", "says 2"),
        (interchange(GOOD, unz="UNZ+1+000000002"), "segment 24 (UNZ)", "UNZ control_ref", "000000002"),
        (interchange(GOOD, group=False, unz="UNZ+1+000000002"), "segment 22 (UNZ)", "UNZ control_ref", "differs"),
        (
            interchange(message(person(), counts=("CNT+42:2",))),
            "segment 21 (CNT)",
            "CNT+42 passenger_count",
            "says 2 but there are 1",
        ),
        (
            interchange(message(person(), counts=("CNT+41:1",))),
            "segment 21 (CNT)",
            "CNT+41 crew_count",
            "says 1 but there are 0",
        ),
        (
            interchange([s.replace("PAXLST:D", "CUSRES:D") for s in GOOD]),
            "segment 3 (UNH)",
            "UNH message_type",
            "not a PAXLST message",
        ),
        (
            interchange(message(person(), header=["BGM+266", *HEADER[1:]])),
            "segment 4 (BGM)",
            "BGM document_code",
            "266",
        ),
        (interchange(message(person(), header=HEADER[1:])), "segment 3 (UNH)", "BGM", "no BGM"),
        (
            interchange(message(person(), header=[h for h in HEADER if not h.startswith("TDT")])),
            "segment 3 (UNH)",
            "TDT+20 flight_number",
            "no flight",
        ),
        (
            interchange(message(person(), header=[h for h in HEADER if not h.startswith("LOC+87")])),
            "segment 3 (UNH)",
            "LOC+87 arrival_airport",
            "no LOC+87",
        ),
        (
            interchange(message(person(), header=[h.replace("2403151040", "2413151040") for h in HEADER])),
            "segment 8 (DTM)",
            "DTM+189 departure_time",
            "not a real date",
        ),
        (
            interchange(message(person(), header=[h.replace(":201", ":102") for h in HEADER])),
            "segment 8 (DTM)",
            "DTM+189 departure_time",
            "format '102'",
        ),
        (interchange(GOOD) + b"UNH+2+PAXLST'", "segment 25 (UNH)", None, "missing UNZ"),
        (interchange(GOOD) + b"UNB+1'UNZ+0+1'", "segment 25 (UNB)", None, "continues after UNZ"),
        (interchange(GOOD, group=False).replace(b"UNZ", b"FTX+X'UNZ"), "segment 22 (FTX)", None, "outside a message"),
        (
            SPECIMEN.replace(b"UNB+UNOA:4+SV+SAUDIAPIS+240315:0930", b"UNB+UNOA:4+SV+SAUDIAPIS+241315:0930"),
            "segment 1 (UNB)",
            "UNB prepared_at",
            "not a real date",
        ),
        (SPECIMEN.replace(b"+000000001++APIS", b"+++APIS"), "segment 1 (UNB)", "UNB control_ref", "no interchange"),
        (
            interchange(GOOD).replace(b"UNE+1+1'\n", b"UNE+1+1'\nUNH+2+PAXLST'UNT+2+2'"),
            "segment 24 (UNH)",
            None,
            "mixed",
        ),
    ],
)
def test_structural_problems_reject_the_input(data: bytes, location: str, field: str | None, reason: str) -> None:
    rejection = rejected(data)
    assert (rejection.location, rejection.field) == (location, field), rejection
    assert reason in rejection.reason, rejection


def test_two_messages_must_both_add_up() -> None:
    second = message(person("OTHER:ONE"), ref="PAX002")
    assert len(parse(interchange(GOOD, second)).messages) == 2
    broken = [*second[:-1], "UNT+3+PAX002"]
    assert rejected(interchange(GOOD, broken)).location == "segment 42 (UNT)"


def test_ungrouped_messages_are_counted_by_unz() -> None:
    data = interchange(GOOD, message(person(), ref="PAX002"), group=False)
    assert [m.message_ref for m in parse(data).messages] == ["PAX001", "PAX002"]
    assert rejected(data.replace(b"UNZ+2+", b"UNZ+1+")).field == "UNZ count"


# --- fuzzing: only InputRejected, never a crash ---------------------------------------------------


def _check(data: bytes) -> None:
    """Parse; any outcome but InputRejected fails. On success the books must balance."""
    try:
        result = parse_paxlst(data, "fuzz.edi")
    except InputRejected as exc:
        reason = exc.rejection.reason
    else:
        reason = ""
    assert "internal parser error" not in reason, reason
    if reason:
        return
    for msg in result.messages:
        for p in msg.people:
            assert p.surname and p.passport_number and p.position.startswith(f"message {msg.message_ref} ")
    rejected_people = {r.location for r in result.rejections}
    assert all(loc.startswith("message ") and loc.endswith("(NAD)") for loc in rejected_people)
    assert not rejected_people & {p.position for m in result.messages for p in m.people}


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(st.binary(max_size=400), st.binary(max_size=400).map(lambda b: b"UNA:+.? '\nUNB+" + b)))
def test_arbitrary_bytes_only_raise_input_rejected(data: bytes) -> None:
    _check(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """The specimen, or a two-message manifest, with bytes deleted, inserted, replaced or repeated."""
    data = bytearray(draw(st.sampled_from([SPECIMEN, interchange(GOOD, message(person(), ref="B"))])))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "repeat"]))
        size = draw(st.integers(1, 12))
        if kind == "delete":
            del data[at : at + size]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=size) | st.sampled_from([b"'", b"+", b":", b"?", b"\n"]))
        elif kind == "replace" and at < len(data):
            data[at] = draw(st.sampled_from(b"'+:?\n0A9\xff"))
        else:
            data[at:at] = data[at : at + size]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_interchanges_only_raise_input_rejected(data: bytes) -> None:
    _check(data)


VALUE = st.text(st.sampled_from([*"0123456789AZaz :+'?-/", "É", "\x00"]), max_size=14)


def _escape(value: str) -> str:
    return "".join("?" + c if c in ":+'?" else c for c in value)


@FUZZ
@given(st.data())
def test_garbled_values_with_intact_counts_reject_people_not_the_parser(data: st.DataObject) -> None:
    """Replace components inside message bodies (counts stay right, mostly): garbage reaches the
    person-level code, which must turn it into rejections."""
    groups = [person(), person("SECOND:PAX"), person("THIRD:PAX", qualifier="FM")]
    body = message(*groups, counts=("CNT+42:2", "CNT+41:1"))
    edit = st.tuples(st.integers(1, len(body) - 3), st.integers(1, 4), st.integers(1, 3), VALUE)
    for index, element, component, value in data.draw(st.lists(edit, min_size=1, max_size=4)):
        elements = body[index].split("+")
        elements += [""] * (element + 1 - len(elements))
        components = elements[element].split(":")
        components += [""] * (component - len(components))
        components[component - 1] = _escape(value)
        elements[element] = ":".join(components)
        body[index] = "+".join(elements)
    sent = interchange(body)
    _check(sent)
    try:
        result = parse_paxlst(sent, "fuzz.edi")
    except InputRejected:
        return
    # every person group is either published or rejected, never lost
    groups = sum(1 for s in tokenize(sent) if s.tag == "NAD" and s.value(1) in ("FL", "FM"))
    published = sum(len(m.people) for m in result.messages)
    assert published + len({r.location for r in result.rejections}) == groups
