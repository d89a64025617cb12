"""UN/EDIFACT PAXLST (D:05B, WCO/IATA API guide) parser: interchange bytes in, typed manifests out.

Contract of :func:`parse_paxlst`:

* **Structure.** ``UNA? UNB (UNG (UNH ... UNT)+ UNE | UNH ... UNT)+ UNZ``. Every message must be a
  PAXLST with BGM 745 (passenger list) or 250 (crew list), a TDT+20 flight and departure (LOC+125,
  DTM+189) and arrival (LOC+87, DTM+232) airport and time. Control totals are checked: UNT segment
  count (UNH to UNT inclusive) and reference, UNE message count and group reference, UNZ count
  (groups when UNG is used, else messages) and control reference, CNT+42 against the number of
  NAD+FL groups and CNT+41 against the number of crew groups. Any breach raises
  :class:`~connectors.rejections.InputRejected` naming ``segment N (TAG)``: nothing of the input is
  to be published.
* **People.** A person group starts at NAD+FL (passenger) or NAD+FM (crew; in a BGM 250 crew list
  everyone is crew) and runs to the next person, CNT or UNT. A person with a missing name, an
  impossible date, a bad sex code or no document number is left out of ``people`` and each of its
  problems is appended to ``rejections`` (location ``message REF segment N (NAD)``); the other
  people come through. Of several DOC groups the passport (type ``P``) wins, else the first one.
* **Dates.** ``datetime.date`` and naive ``datetime.datetime`` as sent (local time at that port).
  Two-digit years: birth dates lie on or before the interchange's preparation date (UNB), expiry
  dates take that century unless that puts them more than 50 years ahead, flight times take the
  century nearest the preparation year; a YYMMDD preparation date itself is read as 20YY. Times
  are DTM format 201 (YYMMDDHHMM) or 203 (CCYYMMDDHHMM), dates YYMMDD or 102 (CCYYMMDD).
* **Leniency.** Unknown segments and qualifiers are ignored; values are stripped of surrounding
  spaces and otherwise kept as sent (codes are not normalised: that is the connector's business).
  Only ``InputRejected`` is ever raised: an unexpected exception inside the parser is logged and
  turned into one ("internal parser error"), so a bug refuses an input instead of crashing a task.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime

from connectors.formats.edifact import Segment, tokenize
from connectors.rejections import InputRejected, Rejection

logger = logging.getLogger(__name__)

__all__ = ["ManifestPerson", "PaxlstInterchange", "PaxlstMessage", "parse_paxlst"]

PASSENGER_LIST = "745"
CREW_LIST = "250"
PASSENGER = "FL"
CREW_MEMBER = "FM"
_PERSON_QUALIFIERS = frozenset({PASSENGER, CREW_MEMBER})
_SEX = {"M": "M", "F": "F", "U": "X", "X": "X"}
_PASSPORT = "P"
_CARRIER_PREFIX = re.compile(r"([A-Z]{3}|[A-Z][A-Z0-9]|[0-9][A-Z]) ?[0-9]{1,4}[A-Z]?")
_ENVELOPE = frozenset({"UNH", "UNT", "UNG", "UNE", "UNZ", "UNB"})


@dataclass(frozen=True, slots=True)
class ManifestPerson:
    """One passenger or crew member of a manifest, as the airline sent it."""

    position: str
    """``message PAX001 segment 11 (NAD)``: where the person's group starts."""
    segment_index: int
    offset: int
    """Byte offset of the person's NAD in the input."""
    is_crew: bool
    surname: str
    given_names: str | None
    """Given names separated by one space; None for a single-name person."""
    sex: str | None
    """``M``, ``F`` or ``X`` (sent as U, unspecified)."""
    birth_date: date | None
    nationality: str | None
    passport_number: str
    """Number of the chosen travel document (the passport when there is one)."""
    document_type: str
    """Document type code as sent: ``P`` passport, ``V`` visa, ``I`` identity card, ..."""
    document_expiry: date | None
    issuing_state: str | None
    residence_country: str | None
    embark_airport: str | None
    debark_airport: str | None
    booking_ref: str | None


@dataclass(frozen=True, slots=True)
class PaxlstMessage:
    """One PAXLST message (UNH ... UNT): the people on one flight."""

    message_ref: str
    is_crew_list: bool
    flight_number: str
    carrier: str | None
    departure_airport: str
    departure_time: datetime
    arrival_airport: str
    arrival_time: datetime
    reporting_party: str | None
    people: list[ManifestPerson]


@dataclass(frozen=True, slots=True)
class PaxlstInterchange:
    """One interchange (UNB ... UNZ): its messages, and the people that were refused."""

    sender: str
    recipient: str
    control_ref: str
    prepared_at: datetime
    messages: list[PaxlstMessage]
    rejections: list[Rejection]


def parse_paxlst(data: bytes, input_name: str) -> PaxlstInterchange:
    """Parse one PAXLST interchange; see the module docstring for the contract."""
    segments = tokenize(data, input_name)
    try:
        return _Parser(segments, input_name).interchange()
    except InputRejected:
        raise
    except Exception as exc:
        # A bug, not the sender's fault; still only InputRejected may leave this module.
        logger.exception("PAXLST parser failed on %s", input_name)
        raise InputRejected(
            Rejection(input_name, "interchange", None, f"internal parser error ({type(exc).__name__})")
        ) from exc


class _FieldError(ValueError):
    """A value that cannot be read; the caller decides whether it sinks the person or the input."""


@dataclass(slots=True)
class _Document:
    type: str
    number: str
    expiry: Segment | None = None
    issuing_state: str | None = None


class _Parser:
    def __init__(self, segments: list[Segment], input_name: str) -> None:
        self.segments = segments
        self.input_name = input_name
        self.rejections: list[Rejection] = []
        self.prepared_at = datetime.min

    # -- envelope ---------------------------------------------------------------------------------

    def interchange(self) -> PaxlstInterchange:
        segments = self.segments
        if not segments or segments[0].tag != "UNB":
            raise self._reject(segments[0] if segments else None, None, "missing UNB interchange header")
        unb = segments[0]
        control_ref = unb.value(5).strip()
        if not control_ref:
            raise self._reject(unb, "UNB control_ref", "UNB has no interchange control reference (element 5)")
        try:
            self.prepared_at = _prepared_at(unb.value(4, 1), unb.value(4, 2))
        except _FieldError as exc:
            raise self._reject(unb, "UNB prepared_at", str(exc)) from None
        unz = segments[-1]
        if unz.tag != "UNZ":
            raise self._reject(unz, None, f"missing UNZ interchange trailer: the interchange ends with {unz.tag}")

        messages: list[PaxlstMessage] = []
        groups = bare_messages = 0
        i, end = 1, len(segments) - 1
        while i < end:
            segment = segments[i]
            if segment.tag == "UNG" and not bare_messages:
                group_ref = segment.value(5).strip()
                i += 1
                in_group = 0
                while i < end and segments[i].tag == "UNH":
                    i = self._message(i, messages)
                    in_group += 1
                une = segments[i]
                if une.tag != "UNE":
                    raise self._reject(une, None, f"missing UNE group trailer for group {group_ref!r}")
                self._check_count(une, "UNE message_count", in_group, "messages in the group")
                if une.value(2).strip() != group_ref:
                    raise self._reject(
                        une,
                        "UNE group_ref",
                        f"UNE refers to group {une.value(2)!r}, the UNG opened {group_ref!r}",
                    )
                groups += 1
                i += 1
            elif segment.tag == "UNH" and not groups:
                i = self._message(i, messages)
                bare_messages += 1
            elif segment.tag in ("UNG", "UNH"):
                raise self._reject(segment, None, "messages inside and outside functional groups are mixed")
            elif segment.tag == "UNZ":
                raise self._reject(segments[i + 1], None, "the interchange continues after UNZ")
            else:
                raise self._reject(segment, None, f"{segment.tag} is not expected outside a message")
        if not messages:
            raise self._reject(unz, None, "missing UNH: the interchange holds no message")
        self._check_count(unz, "UNZ count", groups or bare_messages, "groups" if groups else "messages")
        if unz.value(2).strip() != control_ref:
            raise self._reject(
                unz,
                "UNZ control_ref",
                f"UNZ control reference {unz.value(2)!r} differs from UNB's {control_ref!r}",
            )
        return PaxlstInterchange(
            sender=unb.value(2).strip(),
            recipient=unb.value(3).strip(),
            control_ref=control_ref,
            prepared_at=self.prepared_at,
            messages=messages,
            rejections=self.rejections,
        )

    def _message(self, start: int, messages: list[PaxlstMessage]) -> int:
        """Parse the message whose UNH is at ``start``; append it and return the index after its UNT."""
        segments = self.segments
        unh = segments[start]
        ref = unh.value(1).strip()
        if not ref:
            raise self._reject(unh, "UNH message_ref", "UNH has no message reference (element 1)")
        if unh.value(2, 1).strip() != "PAXLST":
            raise self._reject(unh, "UNH message_type", f"not a PAXLST message but {unh.value(2, 1)!r}")
        end = start + 1
        while segments[end].tag not in _ENVELOPE:
            end += 1
        unt = segments[end]
        if unt.tag != "UNT":
            raise self._reject(unt, None, f"missing UNT: message {ref!r} is not closed before {unt.tag}")
        self._check_count(unt, "UNT segment_count", end - start + 1, "segments from UNH to UNT inclusive")
        if unt.value(2).strip() != ref:
            raise self._reject(unt, "UNT message_ref", f"UNT refers to message {unt.value(2)!r}, UNH opened {ref!r}")
        messages.append(self._message_body(unh, ref, segments[start + 1 : end]))
        return end + 1

    # -- message ----------------------------------------------------------------------------------

    def _message_body(self, unh: Segment, ref: str, body: list[Segment]) -> PaxlstMessage:
        bgm: Segment | None = None
        tdt: Segment | None = None
        departure: Segment | None = None
        arrival: Segment | None = None
        departure_time: Segment | None = None
        arrival_time: Segment | None = None
        reporting_party: str | None = None
        groups: list[list[Segment]] = []
        group: list[Segment] | None = None
        counts: list[Segment] = []
        for segment in body:
            tag = segment.tag
            if tag == "NAD" and segment.value(1) in _PERSON_QUALIFIERS:
                group = [segment]
                groups.append(group)
            elif tag == "CNT":
                counts.append(segment)
                group = None
            elif group is not None:
                group.append(segment)
            elif counts:
                continue  # after the control totals only UNT matters
            elif tag == "BGM":
                if bgm is None:
                    bgm = segment
            elif tag == "TDT":
                if tdt is None and segment.value(1) == "20":
                    tdt = segment
            elif tag == "LOC":
                qualifier = segment.value(1)
                if qualifier == "125" and departure is None:
                    departure = segment
                elif qualifier == "87" and arrival is None:
                    arrival = segment
            elif tag == "DTM":
                qualifier = segment.value(1, 1)
                if qualifier == "189" and departure_time is None:
                    departure_time = segment
                elif qualifier == "232" and arrival_time is None:
                    arrival_time = segment
            elif tag == "NAD" and segment.value(1) == "MS":
                reporting_party = _party_name(segment)

        if bgm is None:
            raise self._reject(unh, "BGM", f"message {ref!r} has no BGM segment")
        document = bgm.value(1, 1).strip()
        if document not in (PASSENGER_LIST, CREW_LIST):
            raise self._reject(
                bgm, "BGM document_code", f"{document!r} is neither a passenger (745) nor a crew (250) list"
            )
        is_crew_list = document == CREW_LIST
        if tdt is None or not tdt.value(2).strip():
            raise self._reject(
                tdt if tdt is not None else unh,
                "TDT+20 flight_number",
                f"message {ref!r} names no flight (TDT+20)",
            )
        flight_number = tdt.value(2).strip()
        carrier = tdt.value(5, 1).strip() or _carrier_from(flight_number)

        departure_airport = self._airport(departure, unh, ref, "LOC+125 departure_airport")
        arrival_airport = self._airport(arrival, unh, ref, "LOC+87 arrival_airport")
        departure_at = self._flight_time(departure_time, unh, ref, "DTM+189 departure_time")
        arrival_at = self._flight_time(arrival_time, unh, ref, "DTM+232 arrival_time")

        crew_flags = [is_crew_list or members[0].value(1) == CREW_MEMBER for members in groups]
        for cnt in counts:
            qualifier = cnt.value(1, 1)
            if qualifier == "42":
                passengers = sum(1 for members in groups if members[0].value(1) == PASSENGER)
                self._check_count(cnt, "CNT+42 passenger_count", passengers, "passengers (NAD+FL)", component=2)
            elif qualifier == "41":
                self._check_count(cnt, "CNT+41 crew_count", sum(crew_flags), "crew members", component=2)

        people: list[ManifestPerson] = []
        for members, is_crew in zip(groups, crew_flags, strict=True):
            person = self._person(members, ref, is_crew)
            if person is not None:
                people.append(person)

        return PaxlstMessage(
            message_ref=ref,
            is_crew_list=is_crew_list,
            flight_number=flight_number,
            carrier=carrier,
            departure_airport=departure_airport,
            departure_time=departure_at,
            arrival_airport=arrival_airport,
            arrival_time=arrival_at,
            reporting_party=reporting_party,
            people=people,
        )

    def _airport(self, loc: Segment | None, unh: Segment, ref: str, field: str) -> str:
        airport = loc.value(2, 1).strip() if loc is not None else ""
        if not airport:
            raise self._reject(
                loc if loc is not None else unh, field, f"message {ref!r} has no {field.split()[0]} airport"
            )
        return airport

    def _flight_time(self, dtm: Segment | None, unh: Segment, ref: str, field: str) -> datetime:
        if dtm is None:
            raise self._reject(unh, field, f"message {ref!r} has no {field.split()[0]} date and time")
        try:
            return _flight_datetime(dtm.value(1, 2).strip(), dtm.value(1, 3).strip(), self.prepared_at.year)
        except _FieldError as exc:
            raise self._reject(dtm, field, str(exc)) from None

    # -- person -----------------------------------------------------------------------------------

    def _person(self, members: list[Segment], ref: str, is_crew: bool) -> ManifestPerson | None:
        nad = members[0]
        position = f"message {ref} segment {nad.index} (NAD)"
        problems: list[tuple[str, str]] = []

        names = [name.strip() for name in nad.components(4)]
        surname = names[0] if names else ""
        if not surname:
            problems.append(("NAD name", "the person has no surname (NAD element 4, component 1)"))
        given_names = " ".join(name for name in names[1:] if name) or None

        sex: str | None = None
        birth_date: date | None = None
        nationality: str | None = None
        residence: str | None = None
        embark: str | None = None
        debark: str | None = None
        booking_ref: str | None = None
        documents: list[_Document] = []
        prepared = self.prepared_at.date()
        seen: set[str] = set()  # DTM+329 and ATT+2 count once, even when unreadable
        for segment in members[1:]:
            tag = segment.tag
            elements = segment.elements
            qualifier = elements[0][0] if elements else ""
            if tag == "DTM":
                if qualifier == "329" and "birth" not in seen:
                    seen.add("birth")
                    try:
                        birth_date = _birth_date(segment.value(1, 2).strip(), segment.value(1, 3).strip(), prepared)
                    except _FieldError as exc:
                        problems.append(("DTM+329 birth_date", f"segment {segment.index} (DTM): {exc}"))
                elif qualifier == "36" and documents and documents[-1].expiry is None:
                    documents[-1].expiry = segment
            elif tag == "LOC":
                place = segment.value(2).strip() or None
                if qualifier == "178":
                    embark = embark or place
                elif qualifier == "179":
                    debark = debark or place
                elif qualifier == "174":
                    residence = residence or place
                elif qualifier == "91" and documents and documents[-1].issuing_state is None:
                    documents[-1].issuing_state = place
            elif tag == "ATT":
                if qualifier == "2" and "sex" not in seen:
                    seen.add("sex")
                    code = segment.value(3).strip()
                    sex = _SEX.get(code)
                    if sex is None and code:  # an empty ATT+2 says nothing, like a missing one
                        problems.append(("ATT+2 sex", f"segment {segment.index} (ATT): {code!r} is not M, F or U"))
            elif tag == "NAT":
                if qualifier == "2":
                    nationality = nationality or segment.value(2).strip() or None
            elif tag == "RFF":
                if qualifier == "AVF":
                    booking_ref = booking_ref or segment.value(1, 2).strip() or None
            elif tag == "DOC":
                documents.append(_Document(qualifier.strip(), segment.value(2).strip()))

        document = next((d for d in documents if d.type == _PASSPORT), documents[0] if documents else None)
        expiry: date | None = None
        if document is None:
            problems.append(("DOC document_number", "the person has no travel document (DOC)"))
        else:
            if not document.number:
                problems.append(("DOC document_number", f"the {document.type or '?'} document has no number"))
            if not document.type:
                problems.append(("DOC document_type", "the document has no type code (element 1)"))
            if document.expiry is not None:
                dtm = document.expiry
                try:
                    expiry = _expiry_date(dtm.value(1, 2).strip(), dtm.value(1, 3).strip(), prepared)
                except _FieldError as exc:
                    problems.append(("DTM+36 document_expiry", f"segment {dtm.index} (DTM): {exc}"))

        if problems:
            for field, reason in problems:
                self.rejections.append(Rejection(self.input_name, position, field, reason))
            return None
        assert document is not None
        return ManifestPerson(
            position=position,
            segment_index=nad.index,
            offset=nad.offset,
            is_crew=is_crew,
            surname=surname,
            given_names=given_names,
            sex=sex,
            birth_date=birth_date,
            nationality=nationality,
            passport_number=document.number,
            document_type=document.type,
            document_expiry=expiry,
            issuing_state=document.issuing_state,
            residence_country=residence,
            embark_airport=embark,
            debark_airport=debark,
            booking_ref=booking_ref,
        )

    # -- helpers ----------------------------------------------------------------------------------

    def _check_count(self, segment: Segment, field: str, actual: int, what: str, component: int = 1) -> None:
        """The count in element 1 (``component`` of it) of ``segment`` must equal ``actual``."""
        sent = segment.value(1, component).strip()
        if not (sent.isascii() and sent.isdigit()):
            raise self._reject(segment, field, f"count {sent!r} is not a number")
        if int(sent) != actual:
            raise self._reject(segment, field, f"{segment.tag} says {int(sent)} but there are {actual} {what}")

    def _reject(self, segment: Segment | None, field: str | None, reason: str) -> InputRejected:
        location = f"segment {segment.index} ({segment.tag})" if segment is not None else "segment 1"
        return InputRejected(Rejection(self.input_name, location, field, reason))


def _party_name(nad: Segment) -> str | None:
    name = " ".join(part.strip() for part in nad.components(4) if part.strip())
    return name or nad.value(2, 1).strip() or None


def _carrier_from(flight_number: str) -> str | None:
    """The airline designator a flight number starts with: ``SV817`` -> ``SV``, ``SVA817`` -> ``SVA``."""
    match = _CARRIER_PREFIX.fullmatch(flight_number)
    return match.group(1) if match else None


def _digits(value: str, lengths: tuple[int, ...], what: str) -> None:
    if len(value) not in lengths or not (value.isascii() and value.isdigit()):
        expected = " or ".join(str(n) for n in lengths)
        raise _FieldError(f"{value!r} is not a {what} ({expected} digits)")


def _prepared_at(day: str, time: str) -> datetime:
    day, time = day.strip(), time.strip()
    _digits(day, (6, 8), "preparation date (YYMMDD or CCYYMMDD)")
    if time:
        _digits(time, (4,), "preparation time (HHMM)")
    year = int(day[:-4]) + (2000 if len(day) == 6 else 0)
    try:
        return datetime(year, int(day[-4:-2]), int(day[-2:]), int(time[:2] or 0), int(time[2:] or 0))
    except ValueError:
        raise _FieldError(f"{day}:{time} is not a real date and time") from None


def _flight_datetime(value: str, format_code: str, prepared_year: int) -> datetime:
    """DTM 201 (YYMMDDHHMM) or 203 (CCYYMMDDHHMM); without a format code the length decides."""
    if format_code == "201" or (not format_code and len(value) == 10):
        _digits(value, (10,), "date and time in format 201 (YYMMDDHHMM)")
        year = prepared_year - prepared_year % 100 + int(value[:2])
        if year - prepared_year > 50:
            year -= 100
        elif prepared_year - year > 50:
            year += 100
        rest = value[2:]
    elif format_code == "203" or not format_code:
        _digits(value, (12,), "date and time in format 203 (CCYYMMDDHHMM)")
        year, rest = int(value[:4]), value[4:]
    else:
        raise _FieldError(f"date/time format {format_code!r} is not 201 (YYMMDDHHMM) or 203 (CCYYMMDDHHMM)")
    try:
        return datetime(year, int(rest[:2]), int(rest[2:4]), int(rest[4:6]), int(rest[6:8]))
    except ValueError:
        raise _FieldError(f"{value!r} is not a real date and time") from None


def _date_parts(value: str, format_code: str) -> tuple[int | None, int, int]:
    """(full year or None for a two-digit year, month, day) of a DTM date (101 YYMMDD, 102 CCYYMMDD)."""
    if format_code not in ("", "101", "102"):
        raise _FieldError(f"date format {format_code!r} is not 101 (YYMMDD) or 102 (CCYYMMDD)")
    if format_code == "102" or (not format_code and len(value) == 8):
        _digits(value, (8,), "date in format 102 (CCYYMMDD)")
        return int(value[:4]), int(value[4:6]), int(value[6:])
    _digits(value, (6,), "date in format YYMMDD")
    return None, int(value[2:4]), int(value[4:])


def _make_date(year: int, month: int, day: int, value: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise _FieldError(f"{value!r} is not a real date (month {month:02d}, day {day:02d})") from None


def _birth_date(value: str, format_code: str, prepared: date) -> date:
    """A birth date: two-digit years fall in the hundred years up to the preparation date."""
    year, month, day = _date_parts(value, format_code)
    if year is None:
        century = prepared.year - prepared.year % 100
        year = century + int(value[:2])
        if (year, month, day) > (prepared.year, prepared.month, prepared.day):
            year -= 100
    born = _make_date(year, month, day, value)
    if born > prepared:
        raise _FieldError(f"birth date {born.isoformat()} is after the manifest was prepared")
    return born


def _expiry_date(value: str, format_code: str, prepared: date) -> date:
    """A document expiry: two-digit years take the preparation century unless >50 years ahead."""
    year, month, day = _date_parts(value, format_code)
    if year is None:
        year = prepared.year - prepared.year % 100 + int(value[:2])
        if year - prepared.year > 50:
            year -= 100
    return _make_date(year, month, day, value)
