"""ICAO 9303 TD3 passport MRZ: the specimen, each way an MRZ can be wrong, and round trips."""

from __future__ import annotations

import dataclasses
import pickle
import string
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.formats.countries import ALPHA2_TO_ALPHA3, CANONICAL_CODES, normalize_nationality
from connectors.formats.mrz import MrzError, PassportMrz, Sex, check_digit, format_td3, parse_td3

LINE1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
LINE2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
SPECIMEN = f"{LINE1}\n{LINE2}"
SPECIMEN_TODAY = date(2010, 1, 1)
SPECIMEN_PARSED = PassportMrz(
    document_type="P",
    issuing_state="UTO",
    surname="ERIKSSON",
    given_names="ANNA MARIA",
    document_number="L898902C3",
    nationality="UTO",
    birth_date=date(1974, 8, 12),
    sex="F",
    expiry_date=date(2012, 4, 15),
    personal_number="ZE184226B",
)
FIXTURE = Path(__file__).parents[1] / "fixtures" / "immigration" / "mrz_samples.txt"
FIXTURE_TODAY = date(2026, 1, 1)
MRZ_CHARS = string.ascii_uppercase + string.digits + "<"
# Hypothesis writes its example database under the working directory unless told not to.
fast = settings(database=None, deadline=None)
fuzz = settings(fast, max_examples=300)


def with_checks(line2: str) -> str:
    """``line2`` with every check digit recomputed, to reach the validation behind them."""
    personal = line2[28:42]
    personal_check = check_digit(personal) if personal.strip("<") else line2[42]
    body = (
        line2[0:9]
        + check_digit(line2[0:9])
        + line2[10:19]
        + check_digit(line2[13:19])
        + line2[20:27]
        + check_digit(line2[21:27])
        + personal
        + personal_check
    )
    return body + check_digit(body[0:10] + body[13:20] + body[21:43])


def parse_error(mrz: str, today: date = SPECIMEN_TODAY) -> MrzError:
    with pytest.raises(MrzError) as caught:
        parse_td3(mrz, today=today)
    return caught.value


# --- the specimen and the accepted layouts ---------------------------------------------------


def test_specimen_parses() -> None:
    assert parse_td3(SPECIMEN, today=SPECIMEN_TODAY) == SPECIMEN_PARSED


@pytest.mark.parametrize(
    "layout",
    [
        f"{LINE1}\r\n{LINE2}",
        f"{LINE1}\r{LINE2}",
        f"  \n{LINE1}\n{LINE2}\n\n",
        f"{LINE1}  \n  {LINE2}",
        f"{LINE1}{LINE2}",
        f"\t{LINE1}{LINE2} \r\n",
    ],
)
def test_accepted_layouts(layout: str) -> None:
    assert parse_td3(layout, today=SPECIMEN_TODAY) == SPECIMEN_PARSED


def test_expired_passport_is_reported_not_refused() -> None:
    assert parse_td3(SPECIMEN, today=date(2026, 11, 25)).expiry_date == date(2012, 4, 15)


def test_today_defaults_to_the_current_date() -> None:
    assert parse_td3(SPECIMEN) == SPECIMEN_PARSED


@pytest.mark.parametrize(
    ("data", "digit"),
    [("L898902C3", "6"), ("740812", "2"), ("120415", "9"), ("ZE184226B<<<<<", "1"), ("", "0"), ("<<<", "0")],
)
def test_check_digit(data: str, digit: str) -> None:
    assert check_digit(data) == digit


@pytest.mark.parametrize("data", ["l898902c3", "AB 12", "12-3"])
def test_check_digit_refuses_characters_outside_the_mrz_set(data: str) -> None:
    with pytest.raises(ValueError, match="no check-digit value"):
        check_digit(data)


# --- check digits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "field"),
    [
        (9, "document_number_check"),
        (19, "birth_date_check"),
        (27, "expiry_date_check"),
        (42, "personal_number_check"),
        (43, "composite_check"),
    ],
)
@pytest.mark.parametrize("wrong", ["7", "A", "<"])
def test_each_wrong_check_digit_names_its_field(position: int, field: str, wrong: str) -> None:
    good = LINE2[position]
    line2 = LINE2[:position] + wrong + LINE2[position + 1 :]
    error = parse_error(f"{LINE1}\n{line2}")
    assert error.field == field
    shown = wrong if wrong.isdigit() else repr(wrong)
    assert error.reason == f"check digit is {shown}, computed {good}"


@pytest.mark.parametrize(
    ("position", "field"),
    [
        (3, "document_number_check"),  # document number L898902C3 -> L893902C3
        (15, "birth_date_check"),
        (24, "expiry_date_check"),
        (30, "personal_number_check"),
    ],
)
def test_misread_data_fails_its_own_check_before_the_composite(position: int, field: str) -> None:
    line2 = LINE2[:position] + "3" + LINE2[position + 1 :]
    assert parse_error(f"{LINE1}\n{line2}").field == field


@pytest.mark.parametrize("check", ["<", "0"])
def test_empty_personal_number_accepts_filler_or_zero_check(check: str) -> None:
    line2 = with_checks(LINE2[:28] + "<" * 14 + check + "0")
    assert line2[42] == check
    assert parse_td3(f"{LINE1}\n{line2}", today=SPECIMEN_TODAY).personal_number is None


def test_empty_personal_number_refuses_another_check_digit() -> None:
    line2 = with_checks(LINE2[:28] + "<" * 14 + "5" + "0")
    error = parse_error(f"{LINE1}\n{line2}")
    assert (error.field, error.reason) == ("personal_number_check", "check digit is 5, computed 0")


# --- shape and charset -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mrz", "field", "reason"),
    [
        ("", "length", "found 0 characters"),
        (LINE1 + LINE2[:-1], "length", "found 87 characters"),
        (LINE1 + LINE2 + "<", "length", "found 89 characters"),
        (f"{LINE1[:-1]}\n{LINE2}", "line1_length", "expected 44 characters, found 43"),
        (f"{LINE1}\n{LINE2}<", "line2_length", "expected 44 characters, found 45"),
        (f"{LINE1}\n{LINE2[:-1]}", "line2_length", "expected 44 characters, found 43"),
        (f"{LINE1}\n\n{LINE2}", "line_count", "expected 2 lines, found 3"),
        (f"{LINE1}\n{LINE2}\n{LINE2}", "line_count", "expected 2 lines, found 3"),
        (LINE1, "length", "found 44 characters"),
    ],
)
def test_bad_length(mrz: str, field: str, reason: str) -> None:
    error = parse_error(mrz)
    assert error.field == field
    assert reason in error.reason


@pytest.mark.parametrize(
    ("mrz", "field", "reason"),
    [
        (LINE1.replace("ERIKSSON", "Eriksson"), "line1_charset", "at position 7, found 'r'"),
        (LINE1.replace("ANNA<", "ANNA "), "line1_charset", "at position 20, found ' '"),
        (LINE1.replace("<UTO", "<UT\u00d6"), "line1_charset", "at position 5, found '\u00d6'"),
        (LINE1 + "\n" + LINE2.replace("7408", "74\u0660\u0668"), "line2_charset", "at position 16"),
        (f"{LINE1}\n{LINE2.replace('<<<<<1', '<<-<<1')}", "line2_charset", "found '-'"),
    ],
)
def test_bad_charset(mrz: str, field: str, reason: str) -> None:
    mrz = mrz if "\n" in mrz else f"{mrz}\n{LINE2}"
    error = parse_error(mrz)
    assert error.field == field
    assert error.reason.startswith("expected A-Z, 0-9 or <")
    assert reason in error.reason


# --- fields --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "parsed"), [("P<", "P"), ("PD", "PD"), ("PO", "PO")])
def test_passport_document_types(code: str, parsed: str) -> None:
    mrz = f"{code}{LINE1[2:]}\n{LINE2}"
    assert parse_td3(mrz, today=SPECIMEN_TODAY).document_type == parsed


@pytest.mark.parametrize("code", ["V<", "I<", "AC", "<P", "P1"])
def test_other_documents_are_refused(code: str) -> None:
    error = parse_error(f"{code}{LINE1[2:]}\n{LINE2}")
    assert error.field == "document_type"
    assert repr(code) in error.reason


def test_germany_writes_d_and_normalises_to_deu() -> None:
    mrz = format_td3(
        surname="MUSTERMANN",
        given_names="ERIKA",
        document_number="C01X00T47",
        nationality="D",
        birth_date=date(1983, 8, 12),
        sex="F",
        expiry_date=date(2031, 10, 16),
    )
    line1, line2 = mrz.split("\n")
    assert line1.startswith("P<D<<MUSTERMANN<<ERIKA<")
    assert line2[10:13] == "D<<"
    parsed = parse_td3(mrz, today=FIXTURE_TODAY)
    assert (parsed.issuing_state, parsed.nationality) == ("DEU", "DEU")


@pytest.mark.parametrize(
    ("line", "start", "code", "field"),
    [
        (2, 10, "XYZ", "nationality"),
        (2, 10, "SA<", "nationality"),
        (2, 10, "<<D", "nationality"),
        (2, 10, "123", "nationality"),
        (1, 2, "ZZZ", "issuing_state"),
        (1, 2, "<<<", "issuing_state"),
    ],
)
def test_unknown_country_codes_are_refused(line: int, start: int, code: str, field: str) -> None:
    line1, line2 = LINE1, LINE2
    if line == 1:
        line1 = line1[:start] + code + line1[start + 3 :]
    else:
        line2 = with_checks(line2[:start] + code + line2[start + 3 :])
    error = parse_error(f"{line1}\n{line2}")
    assert error.field == field
    assert repr(code) in error.reason


@pytest.mark.parametrize(
    ("birth", "reason"),
    [
        ("741312", "expected a month 01-12, found 13"),
        ("740012", "expected a month 01-12, found 00"),
        ("740832", "expected a calendar date, found day 32 of 1974-08"),
        ("750229", "expected a calendar date, found day 29 of 1975-02"),
        ("740800", "expected a calendar date, found day 00 of 1974-08"),
        ("74<<<<", "found filler"),
        ("<<<<<<", "found filler"),
        ("74AB12", "found letters"),
    ],
)
def test_impossible_birth_dates_are_refused(birth: str, reason: str) -> None:
    line2 = with_checks(LINE2[:13] + birth + LINE2[19:])
    error = parse_error(f"{LINE1}\n{line2}")
    assert error.field == "birth_date"
    assert reason in error.reason


def test_impossible_expiry_date_is_refused() -> None:
    line2 = with_checks(LINE2[:21] + "120431" + LINE2[27:])
    error = parse_error(f"{LINE1}\n{line2}")
    assert (error.field, error.reason) == ("expiry_date", "expected a calendar date, found day 31 of 2012-04")


@pytest.mark.parametrize(
    ("today", "yymmdd", "born"),
    [
        (date(2010, 1, 1), "740812", date(1974, 8, 12)),
        (date(2010, 1, 1), "091231", date(2009, 12, 31)),
        (date(2010, 1, 1), "100101", date(2010, 1, 1)),  # born today
        (date(2010, 1, 1), "100102", date(1910, 1, 2)),  # tomorrow cannot be a birth date
        (date(2026, 11, 25), "000229", date(2000, 2, 29)),
        (date(2026, 11, 25), "261125", date(2026, 11, 25)),
        (date(2026, 11, 25), "261126", date(1926, 11, 26)),
    ],
)
def test_birth_century_is_the_latest_not_after_today(today: date, yymmdd: str, born: date) -> None:
    line2 = with_checks(LINE2[:13] + yymmdd + LINE2[19:])
    assert parse_td3(f"{LINE1}\n{line2}", today=today).birth_date == born


@pytest.mark.parametrize(
    ("today", "yymmdd", "expires"),
    [
        (date(2010, 1, 1), "120415", date(2012, 4, 15)),
        (date(2026, 1, 1), "760101", date(2076, 1, 1)),  # exactly 50 years ahead: still 20yy
        (date(2026, 1, 1), "760102", date(1976, 1, 2)),  # more than 50 years ahead: 19yy
        (date(2026, 1, 1), "991231", date(1999, 12, 31)),
        (date(2026, 1, 1), "000101", date(2000, 1, 1)),
        (date(2060, 6, 1), "050101", date(2105, 1, 1)),  # the window slides past 2050
    ],
)
def test_expiry_century_is_within_fifty_years_ahead(today: date, yymmdd: str, expires: date) -> None:
    line2 = with_checks(LINE2[:21] + yymmdd + LINE2[27:])
    assert parse_td3(f"{LINE1}\n{line2}", today=today).expiry_date == expires


@pytest.mark.parametrize(("code", "sex"), [("M", "M"), ("F", "F"), ("<", "X"), ("X", "X")])
def test_sex(code: str, sex: Sex) -> None:
    line2 = LINE2[:20] + code + LINE2[21:]
    assert parse_td3(f"{LINE1}\n{line2}", today=SPECIMEN_TODAY).sex == sex


def test_unknown_sex_is_refused() -> None:
    error = parse_error(f"{LINE1}\n{LINE2[:20]}Q{LINE2[21:]}")
    assert (error.field, error.reason) == ("sex", "expected M, F or <, found 'Q'")


@pytest.mark.parametrize(
    ("name", "surname", "given_names"),
    [
        ("ERIKSSON<<ANNA<MARIA", "ERIKSSON", "ANNA MARIA"),
        ("ERIKSSON", "ERIKSSON", ""),
        ("VAN<DER<BERG<<JAN", "VAN DER BERG", "JAN"),
        ("AL<FARSI<<NOOR<<<<A", "AL FARSI", "NOOR A"),
        ("WIJAYAKUSUMANINGRAT<<RADEN<AJENG<SRI<WA", "WIJAYAKUSUMANINGRAT", "RADEN AJENG SRI WA"),
    ],
)
def test_names_turn_filler_into_spaces(name: str, surname: str, given_names: str) -> None:
    line1 = (LINE1[:5] + name).ljust(44, "<")
    parsed = parse_td3(f"{line1}\n{LINE2}", today=SPECIMEN_TODAY)
    assert (parsed.surname, parsed.given_names) == (surname, given_names)


@pytest.mark.parametrize("name", ["<ERIKSSON<<ANNA", "<" * 39, "ERIKSS0N<<ANNA", "ERIKSSON<<ANNA2"])
def test_bad_names_are_refused(name: str) -> None:
    line1 = (LINE1[:5] + name).ljust(44, "<")
    assert parse_error(f"{line1}\n{LINE2}").field == "name"


def test_filler_only_document_number_is_refused() -> None:
    line2 = with_checks("<" * 9 + LINE2[9:])
    assert parse_error(f"{LINE1}\n{line2}").field == "document_number"


def test_mrz_error_is_a_value_error_that_survives_pickling() -> None:
    error = parse_error(f"{LINE1}\n{LINE2[:9]}7{LINE2[10:]}")
    assert isinstance(error, ValueError)
    assert str(error) == "document_number_check: check digit is 7, computed 6"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.reason) == (error.field, error.reason)


# --- format_td3 --------------------------------------------------------------------------------


def test_format_rebuilds_the_specimen() -> None:
    assert format_td3(**dataclasses.asdict(SPECIMEN_PARSED)) == SPECIMEN


def test_format_writes_empty_personal_number_and_unspecified_sex_as_filler() -> None:
    fields = dataclasses.asdict(SPECIMEN_PARSED) | {"personal_number": None, "sex": "X"}
    line2 = format_td3(**fields).split("\n")[1]
    assert line2[20] == "<"
    assert line2[28:43] == "<" * 15


def test_format_cuts_long_names_at_the_end() -> None:
    fields = dataclasses.asdict(SPECIMEN_PARSED) | {"given_names": "ANNA MARIA " * 5}
    line1 = format_td3(**fields).split("\n")[0]
    assert line1 == "P<UTOERIKSSON<<ANNA<MARIA<ANNA<MARIA<ANNA<MA"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"document_number": "L898902C3X"}, "document_number"),
        ({"document_number": "L898/02"}, "document_number"),
        ({"document_number": " "}, "empty document number"),
        ({"surname": ""}, "surname"),
        ({"surname": "\u00c5STR\u00d6M"}, "transliterated"),
        ({"given_names": "ANNA2"}, "transliterated"),
        ({"nationality": "XYZ"}, "unknown nationality code"),
        ({"issuing_state": "XY"}, "unknown nationality code"),
        ({"sex": "Q"}, "sex"),
        ({"document_type": "V"}, "document_type"),
        ({"personal_number": "X" * 15}, "personal_number"),
    ],
)
def test_format_refuses_fields_it_cannot_write(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        format_td3(**(dataclasses.asdict(SPECIMEN_PARSED) | change))


# --- properties --------------------------------------------------------------------------------

WORDS = st.lists(st.text(string.ascii_uppercase, min_size=1, max_size=9), min_size=1, max_size=3)
CODES = st.sampled_from(sorted(CANONICAL_CODES | set(ALPHA2_TO_ALPHA3) | {"D"}))


def years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@fast
@given(
    data=st.data(),
    today=st.dates(date(2000, 1, 1), date(2099, 12, 31)),
    surname=WORDS.map(" ".join),
    given_names=st.one_of(st.just(""), WORDS.map(" ".join)),
    document_number=st.text(string.ascii_uppercase + string.digits, min_size=1, max_size=9),
    nationality=CODES,
    issuing_state=st.one_of(st.none(), CODES),
    sex=st.sampled_from(["M", "F", "X"]),
    personal_number=st.one_of(st.none(), st.from_regex(r"\A[A-Z0-9]([A-Z0-9<]{0,12}[A-Z0-9])?\Z")),
    document_type=st.sampled_from(["P", "PD", "PO", "PS"]),
)
def test_format_then_parse_round_trips(
    data: st.DataObject,
    today: date,
    surname: str,
    given_names: str,
    document_number: str,
    nationality: str,
    issuing_state: str | None,
    sex: Sex,
    personal_number: str | None,
    document_type: str,
) -> None:
    # Representable dates: births in the 100 years up to today, expiries within 50 years either side.
    birth_date = data.draw(st.dates(years_later(today, -100) + timedelta(days=1), today))
    expiry_date = data.draw(st.dates(years_later(today, -50) + timedelta(days=1), years_later(today, 50)))
    if len(surname) + 2 + len(given_names) > 39:
        given_names = ""
        surname = surname[:39].strip()
    mrz = format_td3(
        surname=surname,
        given_names=given_names,
        document_number=document_number,
        nationality=nationality,
        birth_date=birth_date,
        sex=sex,
        expiry_date=expiry_date,
        issuing_state=issuing_state,
        personal_number=personal_number,
        document_type=document_type,
    )
    assert [len(line) for line in mrz.split("\n")] == [44, 44]
    assert parse_td3(mrz, today=today) == PassportMrz(
        document_type=document_type,
        issuing_state=normalize_nationality(issuing_state or nationality),
        surname=surname,
        given_names=given_names,
        document_number=document_number,
        nationality=normalize_nationality(nationality),
        birth_date=birth_date,
        sex=sex,
        expiry_date=expiry_date,
        personal_number=personal_number,
    )


FUZZ_CHARS = MRZ_CHARS + "<<<<<<" + " \t\r\nae\u00d6\u0660\x00"
EDITS = st.lists(
    st.tuples(
        st.sampled_from(["replace"] * 6 + ["insert", "delete"]),
        st.integers(0, 88),
        st.sampled_from(FUZZ_CHARS),
    ),
    min_size=1,
    max_size=6,
)
TODAYS = st.dates(date(1990, 1, 1), date(2150, 12, 31))


def assert_only_mrz_error(mrz: str, today: date) -> None:
    """Parsing either fails with MrzError or gives a record that formats back to itself."""
    outcome = parse_or_error(mrz, today)
    if isinstance(outcome, MrzError):
        assert outcome.field
        assert outcome.reason
    else:
        assert parse_td3(format_td3(**dataclasses.asdict(outcome)), today=today) == outcome


def parse_or_error(mrz: str, today: date) -> PassportMrz | MrzError:
    # Any other exception propagates and fails the test.
    try:
        return parse_td3(mrz, today=today)
    except MrzError as error:
        return error


@fuzz
@given(st.text(FUZZ_CHARS, min_size=88, max_size=88), TODAYS)
def test_random_88_characters_only_raise_mrz_error(mrz: str, today: date) -> None:
    assert_only_mrz_error(mrz, today)


@fuzz
@given(st.text(MRZ_CHARS, min_size=86, max_size=86), st.sampled_from(["P<", "PD"]), TODAYS)
def test_random_passport_lines_only_raise_mrz_error(rest: str, code: str, today: date) -> None:
    assert_only_mrz_error(code + rest, today)


@fuzz
@given(st.text(max_size=100), TODAYS)
def test_arbitrary_text_only_raises_mrz_error(text: str, today: date) -> None:
    assert_only_mrz_error(text, today)


@fuzz
@given(EDITS, st.booleans(), TODAYS)
def test_mutated_specimen_only_raises_mrz_error(
    edits: list[tuple[str, int, str]], repair: bool, today: date
) -> None:
    chars = list(LINE1 + LINE2)
    for kind, position, char in edits:
        at = min(position, len(chars))
        if kind == "insert":
            chars.insert(at, char)
        elif chars and at < len(chars):
            if kind == "replace":
                chars[at] = char
            else:
                del chars[at]
    mrz = "".join(chars)
    if repair and len(mrz) == 88 and set(mrz[44:]) <= set(MRZ_CHARS):
        # Recompute the check digits so that the dates, codes and names behind them are exercised.
        mrz = mrz[:44] + with_checks(mrz[44:])
    assert_only_mrz_error(mrz, today)


# --- fixture file --------------------------------------------------------------------------------


def fixture_records() -> list[tuple[str, str]]:
    """(expectation, MRZ) pairs: expectation is ``valid: CODE`` or ``invalid: FIELD - why``."""
    records = []
    for block in FIXTURE.read_text(encoding="utf-8").split("\n\n"):
        lines = block.strip().splitlines()
        mrz = [line for line in lines if not line.startswith("#")]
        expectations = [line[1:].strip() for line in lines if line.startswith(("# valid:", "# invalid:"))]
        if mrz:
            assert len(expectations) == 1, block
            records.append((expectations[0], "\n".join(mrz)))
    return records


RECORDS = fixture_records()


def test_fixture_covers_the_main_pilgrim_nationalities() -> None:
    valid = {
        expectation.split(":")[1].strip() for expectation, _ in RECORDS if expectation.startswith("valid")
    }
    assert {"IDN", "PAK", "EGY", "TUR", "MYS", "IND", "BGD", "NGA", "DZA", "GBR", "DEU"} <= valid
    assert any("D<<" in mrz for _, mrz in RECORDS)
    assert sum(expectation.startswith("invalid") for expectation, _ in RECORDS) >= 5


@pytest.mark.parametrize(("expectation", "mrz"), RECORDS, ids=[e.split(" - ")[0] for e, _ in RECORDS])
def test_fixture_sample(expectation: str, mrz: str) -> None:
    verdict, _, detail = expectation.partition(": ")
    if verdict == "valid":
        parsed = parse_td3(mrz, today=FIXTURE_TODAY)
        assert parsed.nationality == detail
        assert format_td3(**dataclasses.asdict(parsed)).replace("D<<", "DEU") == mrz.replace("D<<", "DEU")
    else:
        field = detail.split(" - ")[0]
        assert parse_error(mrz, today=FIXTURE_TODAY).field == field
