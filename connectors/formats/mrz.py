"""ICAO Doc 9303 TD3 (passport) machine-readable zone: parse and build.

Contract of :func:`parse_td3`:

* Input: the two 44-character lines, separated by ``\\n``, ``\\r\\n`` or ``\\r``, or the 88
  characters with no separator; whitespace around the whole input or around each line is ignored.
* Every line holds only ``A``-``Z``, ``0``-``9`` and ``<``; the document code starts with ``P``.
* All five check digits must hold: document number, birth date, expiry date, personal number
  (when the personal number is all filler, its check digit may be ``<`` or ``0``) and the
  composite over line-2 positions 1-10, 14-20 and 22-43.
* Dates must be calendar dates; a date of birth with unknown parts (``<``) is refused because the
  record carries a :class:`~datetime.date`. An expired passport is *not* refused: the parser
  reports what the document says, it does not judge whether it is valid for travel.
* Output: a :class:`PassportMrz`; any defect raises :class:`MrzError`, never another exception.

Century rule for the two-digit years (``today`` defaults to :meth:`date.today`): each date is
placed in a 100-year window ending on a fixed day, so it is decided by month and day, not only by
year:

* birth date: the latest such date that is not after ``today`` (born 1974-08-12 for ``740812``
  in 2010; born 2009-01-01 for ``090101`` in 2010);
* expiry date: the latest such date that is not more than 50 years after ``today``. Until 2050
  this is "20yy, unless that is more than 50 years ahead, then 19yy"; unlike a fixed "19 or 20"
  rule it keeps working after 2050.

:class:`MrzError` carries the failing ``field`` and a ``reason`` that says what was expected and
what was found (``document_number_check``: ``check digit is 7, computed 6``). Field names:
``length``, ``line_count``, ``line1_length``, ``line2_length``, ``line1_charset``,
``line2_charset``, ``document_type``, ``issuing_state``, ``name``, ``document_number``,
``document_number_check``, ``nationality``, ``birth_date``, ``birth_date_check``, ``sex``,
``expiry_date``, ``expiry_date_check``, ``personal_number_check``, ``composite_check``.
A connector turns it into a :class:`connectors.rejections.RecordRejected`. Reasons never repeat the
document number or dates in full, so they can be logged.

:func:`format_td3` builds a valid MRZ from fields (for tests and the feed simulator);
:func:`check_digit` is the 7-3-1 check digit of Doc 9303.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from connectors.formats.countries import normalize_document_number, normalize_nationality

Sex = Literal["M", "F", "X"]

LINE_LENGTH: Final = 44
FILLER: Final = "<"

_CHARSET: Final = frozenset(string.ascii_uppercase + string.digits + FILLER)
_VALUES: Final[dict[str, int]] = {
    **{digit: int(digit) for digit in string.digits},
    **{letter: 10 + index for index, letter in enumerate(string.ascii_uppercase)},
    FILLER: 0,
}
_WEIGHTS: Final = (7, 3, 1)
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_NAME_CHARSET: Final = frozenset(string.ascii_uppercase + FILLER)


class MrzError(ValueError):
    """The MRZ is unusable: ``field`` names what is wrong, ``reason`` says expected vs found."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class PassportMrz:
    """What a TD3 machine-readable zone says, decoded."""

    document_type: str
    """Document code without filler: ``P``, or ``P`` plus the issuer's type letter (``PD``)."""
    issuing_state: str
    """Issuing state, normalised (ISO 3166-1 alpha-3 or ICAO-only code; ``D<<`` becomes ``DEU``)."""
    surname: str
    """Primary identifier, filler turned to spaces (``VAN DER BERG``)."""
    given_names: str
    """Secondary identifier, filler turned to spaces; empty when the passport has none."""
    document_number: str
    """Document number without filler."""
    nationality: str
    """Holder's nationality, normalised like ``issuing_state``."""
    birth_date: date
    sex: Sex
    """``X`` when the MRZ says unspecified (``<``)."""
    expiry_date: date
    personal_number: str | None
    """Optional data of line 2 without trailing filler, or None when it is all filler."""


def check_digit(data: str) -> str:
    """Return the Doc 9303 check digit of ``data`` (digits, ``A``-``Z``, ``<``) as one character.

    Raises :class:`ValueError` for any other character.
    """
    total = 0
    for index, char in enumerate(data):
        value = _VALUES.get(char)
        if value is None:
            raise ValueError(f"character {char!r} at position {index + 1} has no check-digit value")
        total += value * _WEIGHTS[index % 3]
    return str(total % 10)


def parse_td3(mrz: str, *, today: date | None = None) -> PassportMrz:
    """Decode and validate a TD3 MRZ; see the module docstring for the contract."""
    today = today or date.today()
    line1, line2 = _split_lines(mrz)

    if line1[0] != "P" or line1[1] not in _NAME_CHARSET:
        raise MrzError("document_type", f"expected P and a letter or <, found {line1[0:2]!r}")
    document_type = line1[0:2].rstrip(FILLER)
    issuing_state = _country("issuing_state", line1[2:5])
    surname, given_names = _names(line1[5:])

    document_number_field = line2[0:9]
    _verify_check("document_number_check", document_number_field, line2[9])
    if document_number_field.strip(FILLER) == "":
        raise MrzError("document_number", "expected at least one character, found only filler")
    nationality = _country("nationality", line2[10:13])
    _verify_check("birth_date_check", line2[13:19], line2[19])
    birth_date = _date("birth_date", line2[13:19], latest=(today.year, today.month, today.day))
    sex = _sex(line2[20])
    _verify_check("expiry_date_check", line2[21:27], line2[27])
    expiry_date = _date("expiry_date", line2[21:27], latest=(today.year + 50, today.month, today.day))
    personal_number_field = line2[28:42]
    if personal_number_field.strip(FILLER) or line2[42] not in (FILLER, "0"):
        _verify_check("personal_number_check", personal_number_field, line2[42])
    _verify_check("composite_check", line2[0:10] + line2[13:20] + line2[21:43], line2[43])

    return PassportMrz(
        document_type=document_type,
        issuing_state=issuing_state,
        surname=surname,
        given_names=given_names,
        document_number=normalize_document_number(document_number_field),
        nationality=nationality,
        birth_date=birth_date,
        sex=sex,
        expiry_date=expiry_date,
        personal_number=personal_number_field.rstrip(FILLER) or None,
    )


def format_td3(
    *,
    surname: str,
    given_names: str,
    document_number: str,
    nationality: str,
    birth_date: date,
    sex: Sex,
    expiry_date: date,
    issuing_state: str | None = None,
    personal_number: str | None = None,
    document_type: str = "P",
) -> str:
    """Build a valid TD3 MRZ (two lines joined by ``\\n``) from its fields.

    Keyword names match :class:`PassportMrz`, so ``format_td3(**dataclasses.asdict(passport))``
    rebuilds a parsed MRZ. ``issuing_state`` defaults to ``nationality``. Country codes may be
    alpha-2, alpha-3 or ICAO; ``D`` is written ``D<<`` as German passports do, anything else as its
    normalised code. Names take letters, spaces, hyphens (written as filler) and apostrophes
    (dropped); they must already be transliterated to A-Z. A name field longer than 39 characters is
    cut at the end, which shortens given names first. Raises :class:`ValueError` for fields that
    cannot be written.
    """
    doc_type = document_type.upper()
    if not re.fullmatch(r"P[A-Z]?", doc_type):
        raise ValueError(f"document_type must be P or P plus a letter, got {document_type!r}")
    number = normalize_document_number(document_number)
    if not re.fullmatch(r"[A-Z0-9]{1,9}", number):
        raise ValueError("document_number must be 1-9 characters from A-Z and 0-9")
    optional = (personal_number or "").upper().replace(" ", FILLER)
    if not re.fullmatch(r"[A-Z0-9<]{0,14}", optional):
        raise ValueError("personal_number must be at most 14 letters, digits or <")
    if sex not in ("M", "F", "X"):
        raise ValueError(f"sex must be M, F or X, got {sex!r}")

    name = _mrz_name(surname, "surname")
    given = _mrz_name(given_names, "given_names")
    if not name:
        raise ValueError("surname must not be empty")
    if given:
        name = f"{name}<<{given}"
    line1 = (doc_type.ljust(2, FILLER) + _mrz_country(issuing_state or nationality) + name)[:LINE_LENGTH]

    number_field = number.ljust(9, FILLER)
    birth = _yymmdd(birth_date)
    expiry = _yymmdd(expiry_date)
    optional_field = optional.ljust(14, FILLER)
    optional_check = check_digit(optional_field) if optional.strip(FILLER) else FILLER
    line2 = (
        number_field
        + check_digit(number_field)
        + _mrz_country(nationality)
        + birth
        + check_digit(birth)
        + ("<" if sex == "X" else sex)
        + expiry
        + check_digit(expiry)
        + optional_field
        + optional_check
    )
    line2 += check_digit(line2[0:10] + line2[13:20] + line2[21:43])
    return line1.ljust(LINE_LENGTH, FILLER) + "\n" + line2


def _split_lines(mrz: str) -> tuple[str, str]:
    text = mrz.strip()
    if _LINE_BREAK.search(text):
        lines = [line.strip() for line in _LINE_BREAK.split(text)]
        if len(lines) != 2:
            raise MrzError("line_count", f"expected 2 lines, found {len(lines)}")
    elif len(text) == 2 * LINE_LENGTH:
        lines = [text[:LINE_LENGTH], text[LINE_LENGTH:]]
    else:
        raise MrzError(
            "length",
            f"expected two lines of {LINE_LENGTH} characters or {2 * LINE_LENGTH} characters without "
            f"a line break, found {len(text)} characters",
        )
    for number, line in enumerate(lines, start=1):
        if len(line) != LINE_LENGTH:
            raise MrzError(f"line{number}_length", f"expected {LINE_LENGTH} characters, found {len(line)}")
        for position, char in enumerate(line, start=1):
            if char not in _CHARSET:
                raise MrzError(
                    f"line{number}_charset",
                    f"expected A-Z, 0-9 or < at position {position}, found {char!r}",
                )
    return lines[0], lines[1]


def _verify_check(field: str, data: str, found: str) -> None:
    computed = check_digit(data)
    if found != computed:
        shown = found if found in string.digits else repr(found)
        raise MrzError(field, f"check digit is {shown}, computed {computed}")


def _country(field: str, code: str) -> str:
    # Three letters or Germany's D<<; filler elsewhere ("SA<") is not an MRZ code.
    if code.isalpha() or code == "D<<":
        try:
            return normalize_nationality(code)
        except ValueError:
            pass
    raise MrzError(field, f"expected an ICAO Doc 9303 or ISO 3166-1 alpha-3 code, found {code!r}")


def _names(field: str) -> tuple[str, str]:
    for position, char in enumerate(field, start=6):
        if char not in _NAME_CHARSET:
            raise MrzError("name", f"expected A-Z or < at line-1 position {position}, found {char!r}")
    if field.startswith(FILLER):
        raise MrzError("name", "expected the name to start with the surname, found filler")
    surname, _, given_names = field.partition("<<")
    return _words(surname), _words(given_names)


def _words(field: str) -> str:
    return " ".join(word for word in field.split(FILLER) if word)


def _date(field: str, yymmdd: str, *, latest: tuple[int, int, int]) -> date:
    """Decode ``yymmdd`` as the latest date whose (year, month, day) is not after ``latest``."""
    if FILLER in yymmdd:
        raise MrzError(field, "expected YYMMDD digits, found filler (unknown date parts are not supported)")
    if not yymmdd.isdigit():
        raise MrzError(field, "expected YYMMDD digits, found letters")
    yy, month, day = int(yymmdd[0:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    if not 1 <= month <= 12:
        raise MrzError(field, f"expected a month 01-12, found {month:02d}")
    latest_year = latest[0]
    year = latest_year - (latest_year - yy) % 100
    if (year, month, day) > latest:
        year -= 100
    try:
        return date(year, month, day)
    except ValueError:
        raise MrzError(
            field, f"expected a calendar date, found day {day:02d} of {year}-{month:02d}"
        ) from None


def _sex(char: str) -> Sex:
    if char == "M":
        return "M"
    if char == "F":
        return "F"
    if char in (FILLER, "X"):
        return "X"
    raise MrzError("sex", f"expected M, F or <, found {char!r}")


def _mrz_country(code: str) -> str:
    if re.sub(r"[\s<]", "", code).upper() == "D":
        return "D<<"
    return normalize_nationality(code)


def _mrz_name(name: str, field: str) -> str:
    words = re.split(r"[\s\-]+", name.upper().replace("'", ""))
    written = FILLER.join(word for word in words if word)
    if not set(written) <= _NAME_CHARSET:
        raise ValueError(f"{field} must be transliterated to A-Z, spaces and hyphens, got {name!r}")
    return written


def _yymmdd(day: date) -> str:
    return f"{day.year % 100:02d}{day.month:02d}{day.day:02d}"
