"""OpenTravel ``OTA_HotelResNotifRQ`` (hotel reservation notification) parser.

Contract of :func:`parse_hotel_res_notif`: the bytes of one notification in, a
:class:`HotelResNotif` out. It knows nothing of events, Kafka or Avro, and it raises nothing but
:class:`~connectors.rejections.InputRejected`.

Safety
    The XML is parsed only by defusedxml with DTDs, entity declarations and external references
    refused, so XXE and entity-expansion bombs ("billion laughs") are rejected, never expanded.
    An input longer than ``max_bytes`` is refused before a single byte is parsed.

The whole input is refused (``InputRejected``) when
    it is too big, not well-formed XML (or in an encoding the parser cannot read), carries a
    DOCTYPE, its root is not ``OTA_HotelResNotifRQ``, it has no (or more than one)
    ``HotelReservations`` element, or its ``@TimeStamp`` is not an ISO 8601 date-time.

One reservation is refused, the others still come through, when
    its ``@ResStatus`` is missing or unknown, ``UniqueID/@ID`` or the first room stay's
    ``BasicPropertyInfo/@HotelCode`` is missing, ``TimeSpan/@Start``/``@End`` are missing for a
    reserved or modified stay or ``@End`` is before ``@Start``, any date or date-time present is
    malformed or impossible (``2024-02-30``), a ``GuestCount/@Count`` is not a whole number, or a
    guest has no ``Document/@DocID`` or ``Document/@DocHolderNationality``. Each problem becomes
    a :class:`~connectors.rejections.Rejection` in :attr:`HotelResNotif.rejections` whose
    location is the reservation's XPath (``/OTA_HotelResNotifRQ/HotelReservations/
    HotelReservation[2]``, always indexed, without namespace prefixes) and whose field is the
    path below it (``RoomStays/RoomStay/BasicPropertyInfo/@HotelCode``). All problems of a
    reservation are reported, not just the first. An unexpected error while reading one
    reservation refuses that reservation only.

Namespace
    The root must be ``OTA_HotelResNotifRQ`` in ``http://www.opentravel.org/OTA/2003/05``, as
    the default namespace or under any prefix. A root with no namespace at all is accepted as
    well: some property-management systems omit ``xmlns``, and the OTA element name is
    unambiguous on its own. Any other namespace is refused. Elements below the root are looked
    up in the root's namespace; elements in another namespace, and unknown elements or
    attributes, are ignored.

Values
    Attribute values and element text are stripped; an empty value counts as absent. Codes are
    kept as sent: ``@DocHolderNationality`` may be ISO alpha-2 or alpha-3 (another module
    normalises it), ``@DocType`` stays an OTA code (``"2"`` is a passport). ``@ResStatus`` is
    matched case-insensitively and normalised to :data:`ReservationStatus`. Dates accept
    ``YYYY-MM-DD``, optionally with a zone suffix (dropped), or a full date-time, whose calendar
    date as written is taken (OTA ``TimeSpan`` allows both). Date-times are kept naive when
    sent without an offset. Reservation-level arrival or check-in times are not required and
    not read.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Literal
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as safe_etree
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from connectors.rejections import InputRejected, Rejection

__all__ = [
    "OTA_NAMESPACE",
    "RESERVATION_XPATH",
    "ROOT_ELEMENT",
    "HotelGuest",
    "HotelResNotif",
    "HotelReservation",
    "ReservationStatus",
    "parse_hotel_res_notif",
]

logger = logging.getLogger(__name__)

OTA_NAMESPACE: Final = "http://www.opentravel.org/OTA/2003/05"
ROOT_ELEMENT: Final = "OTA_HotelResNotifRQ"
RESERVATION_XPATH: Final = f"/{ROOT_ELEMENT}/HotelReservations/HotelReservation"
"""XPath of the reservations; one reservation is ``f"{RESERVATION_XPATH}[{index}]"``."""

ReservationStatus = Literal["reserved", "modified", "cancelled", "checked_in", "checked_out", "no_show"]

_STATUSES: Final[dict[str, ReservationStatus]] = {
    "reserved": "reserved",
    "commit": "reserved",
    "book": "reserved",
    "modify": "modified",
    "cancel": "cancelled",
    "cancelled": "cancelled",
    "in-house": "checked_in",
    "inhouse": "checked_in",
    "checked-out": "checked_out",
    "checkedout": "checked_out",
    "no-show": "no_show",
    "noshow": "no_show",
}
_STAY_DATES_REQUIRED: Final[frozenset[ReservationStatus]] = frozenset({"reserved", "modified"})
_PASSPORT: Final = "2"
"""OTA code list DOC (document type): 2 = passport."""

_DATE: Final = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})?", re.ASCII)
_DATETIME: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)
_COUNT: Final = re.compile(r"[0-9]{1,4}", re.ASCII)
_SHOWN_CHARS: Final = 60


@dataclass(frozen=True, slots=True)
class HotelGuest:
    """One guest of a reservation, identified by the travel document the hotel recorded."""

    surname: str | None
    given_names: list[str]
    """``PersonName/GivenName`` in document order; empty when none was sent."""
    document_id: str
    document_type: str | None
    """OTA document type code as sent (``"2"`` = passport)."""
    nationality: str
    """``Document/@DocHolderNationality`` as sent (alpha-2 or alpha-3)."""
    birth_date: date | None
    document_expiry: date | None


@dataclass(frozen=True, slots=True)
class HotelReservation:
    """One ``HotelReservation`` that passed every check."""

    xpath: str
    """Where it sits in the input, e.g. ``/OTA_HotelResNotifRQ/HotelReservations/HotelReservation[2]``."""
    index: int
    """1-based position among the input's ``HotelReservation`` elements (the XPath index)."""
    status: ReservationStatus
    reservation_id: str
    """``UniqueID/@ID``: the sender's reservation id."""
    hotel_code: str
    hotel_name: str | None
    room_type: str | None
    start: date | None
    end: date | None
    created_at: datetime | None
    modified_at: datetime | None
    guests: list[HotelGuest]
    guest_count: int | None
    """Sum of the first room stay's ``GuestCount/@Count``; None when no count was sent."""
    hotel_confirmation: str | None
    """``ResGlobalInfo/HotelReservationIDs/HotelReservationID/@ResID_Value``: the hotel's own number."""


@dataclass(frozen=True, slots=True)
class HotelResNotif:
    """One parsed notification: the reservations that passed, and why the others did not."""

    echo_token: str | None
    timestamp: datetime | None
    reservations: list[HotelReservation]
    rejections: list[Rejection]


def parse_hotel_res_notif(data: bytes, input_name: str, max_bytes: int = 5_000_000) -> HotelResNotif:
    """Parse one ``OTA_HotelResNotifRQ``; see the module docstring for the full contract.

    Raises :class:`InputRejected` when the input as a whole is unusable; refused reservations are
    reported in :attr:`HotelResNotif.rejections` instead.
    """
    if len(data) > max_bytes:
        raise _input_rejected(
            input_name, "document", None, f"input is {len(data)} bytes, larger than the {max_bytes} accepted"
        )
    root = _parse_xml(data, input_name)
    try:
        return _read_notification(root, input_name)
    except InputRejected:
        raise
    except Exception as exc:  # a safety net: the contract is InputRejected or a result
        logger.exception("unexpected error reading %s", input_name)
        raise _input_rejected(input_name, "/", None, f"could not be read ({type(exc).__name__})") from exc


def _parse_xml(data: bytes, input_name: str) -> Element:
    try:
        root: Element = safe_etree.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DTDForbidden as exc:
        raise _input_rejected(
            input_name, "document", "DOCTYPE", "document type declarations (DOCTYPE) are refused"
        ) from exc
    except EntitiesForbidden as exc:
        raise _input_rejected(input_name, "document", "ENTITY", "entity declarations are refused") from exc
    except ExternalReferenceForbidden as exc:
        raise _input_rejected(input_name, "document", None, "external references are refused") from exc
    except safe_etree.ParseError as exc:
        line, column = exc.position
        raise _input_rejected(
            input_name, f"line {line}, column {column}", None, f"not well-formed XML: {exc}"
        ) from exc
    except Exception as exc:  # unsupported or unknown encodings raise ValueError / LookupError
        raise _input_rejected(
            input_name, "document", None, f"not readable as XML: {_shown(str(exc))}"
        ) from exc
    return root


def _read_notification(root: Element, input_name: str) -> HotelResNotif:
    namespace, local_name = _split_tag(root.tag)
    if local_name != ROOT_ELEMENT or namespace not in (OTA_NAMESPACE, None):
        found = f"{_shown(local_name)} in namespace {_shown(namespace)}" if namespace else _shown(local_name)
        raise _input_rejected(
            input_name,
            "/",
            None,
            f"root element is {found}, expected {ROOT_ELEMENT} in namespace {OTA_NAMESPACE}",
        )
    tags = _Tags(namespace)
    root_path = f"/{ROOT_ELEMENT}"
    timestamp_text = _value(root, "TimeStamp")
    try:
        timestamp = _to_datetime(timestamp_text) if timestamp_text else None
    except ValueError as exc:
        raise _input_rejected(input_name, root_path, "@TimeStamp", str(exc)) from exc

    containers = tags.all(root, "HotelReservations")
    if len(containers) != 1:
        reason = (
            "no HotelReservations element" if not containers else "more than one HotelReservations element"
        )
        raise _input_rejected(input_name, root_path, "HotelReservations", reason)

    reservations: list[HotelReservation] = []
    rejections: list[Rejection] = []
    for index, element in enumerate(tags.all(containers[0], "HotelReservation"), start=1):
        xpath = f"{RESERVATION_XPATH}[{index}]"
        problems = _Problems(input_name, xpath)
        try:
            reservation = _read_reservation(element, tags, xpath, index, problems)
        except Exception as exc:
            logger.exception("unexpected error reading %s %s", input_name, xpath)
            problems.note(None, f"could not be read ({type(exc).__name__})")
            reservation = None
        if problems.found:
            rejections.extend(problems.found)
        elif reservation is not None:
            reservations.append(reservation)
    return HotelResNotif(
        echo_token=_value(root, "EchoToken"),
        timestamp=timestamp,
        reservations=reservations,
        rejections=rejections,
    )


def _read_reservation(
    element: Element, tags: _Tags, xpath: str, index: int, problems: _Problems
) -> HotelReservation | None:
    """Read one reservation, noting every problem; None when there was any."""
    status_text = _value(element, "ResStatus")
    status = _STATUSES.get(status_text.casefold()) if status_text else None
    if status_text is None:
        problems.note("@ResStatus", "missing")
    elif status is None:
        problems.note("@ResStatus", f"unknown status {_shown(status_text)}")
    created_at = problems.datetime_at(element, "CreateDateTime", "@CreateDateTime")
    modified_at = problems.datetime_at(element, "LastModifyDateTime", "@LastModifyDateTime")

    reservation_id = _first_value(tags.all(element, "UniqueID"), "ID")
    if reservation_id is None:
        problems.note("UniqueID/@ID", "missing reservation id")

    stay = tags.first(element, "RoomStays", "RoomStay")
    property_info = tags.first(stay, "BasicPropertyInfo")
    hotel_code = _value(property_info, "HotelCode")
    if hotel_code is None:
        problems.note("RoomStays/RoomStay/BasicPropertyInfo/@HotelCode", "missing hotel code")
    time_span = tags.first(stay, "TimeSpan")
    start = problems.date_at(time_span, "Start", "RoomStays/RoomStay/TimeSpan/@Start")
    end = problems.date_at(time_span, "End", "RoomStays/RoomStay/TimeSpan/@End")
    if status in _STAY_DATES_REQUIRED:
        for name, value in (("Start", start), ("End", end)):
            if value is None and _value(time_span, name) is None:
                problems.note(
                    f"RoomStays/RoomStay/TimeSpan/@{name}", f"missing; required for a {status} stay"
                )
    if start is not None and end is not None and end < start:
        problems.note("RoomStays/RoomStay/TimeSpan/@End", f"End {end} is before Start {start}")
    guest_count = _read_guest_count(tags.all(stay, "GuestCounts", "GuestCount"), problems)
    guests = [
        guest
        for number, res_guest in enumerate(tags.all(element, "ResGuests", "ResGuest"), start=1)
        if (guest := _read_guest(res_guest, tags, f"ResGuests/ResGuest[{number}]", problems)) is not None
    ]

    if problems.found or status is None or reservation_id is None or hotel_code is None:
        return None
    return HotelReservation(
        xpath=xpath,
        index=index,
        status=status,
        reservation_id=reservation_id,
        hotel_code=hotel_code,
        hotel_name=_value(property_info, "HotelName"),
        room_type=_first_value(tags.all(stay, "RoomTypes", "RoomType"), "RoomTypeCode"),
        start=start,
        end=end,
        created_at=created_at,
        modified_at=modified_at,
        guests=guests,
        guest_count=guest_count,
        hotel_confirmation=_first_value(
            tags.all(element, "ResGlobalInfo", "HotelReservationIDs", "HotelReservationID"), "ResID_Value"
        ),
    )


def _read_guest_count(counts: list[Element], problems: _Problems) -> int | None:
    total: int | None = None
    for number, element in enumerate(counts, start=1):
        text = _value(element, "Count")
        if text is None:
            continue
        if not _COUNT.fullmatch(text):
            problems.note(
                f"RoomStays/RoomStay/GuestCounts/GuestCount[{number}]/@Count",
                f"{_shown(text)} is not a whole number of guests",
            )
            continue
        total = (total or 0) + int(text)
    return total


def _read_guest(res_guest: Element, tags: _Tags, path: str, problems: _Problems) -> HotelGuest | None:
    customer_path = f"{path}/Profiles/ProfileInfo/Profile/Customer"
    customer = tags.first(res_guest, "Profiles", "ProfileInfo", "Profile", "Customer")
    if customer is None:
        problems.note(customer_path, "guest has no Customer profile, hence no travel document")
        return None
    documents = tags.all(customer, "Document")
    # a visa or ID card may come first; the passport is what identifies a pilgrim.
    # (never `a or b` on Elements: one without children is falsy.)
    passports = [d for d in documents if _value(d, "DocType") == _PASSPORT]
    document = passports[0] if passports else next(iter(documents), None)
    document_id = _value(document, "DocID")
    if document_id is None:
        problems.note(f"{customer_path}/Document/@DocID", "guest has no travel document number")
    nationality = _value(document, "DocHolderNationality")
    if nationality is None:
        problems.note(f"{customer_path}/Document/@DocHolderNationality", "guest has no nationality")
    expiry = problems.date_at(document, "ExpireDate", f"{customer_path}/Document/@ExpireDate")
    birth_date = problems.date_at(customer, "BirthDate", f"{customer_path}/@BirthDate")
    document_birth_date = problems.date_at(document, "BirthDate", f"{customer_path}/Document/@BirthDate")
    if birth_date and document_birth_date and birth_date != document_birth_date:
        problems.note(
            f"{customer_path}/Document/@BirthDate",
            f"{document_birth_date} differs from the Customer's BirthDate {birth_date}",
        )
    person_name = tags.first(customer, "PersonName")
    if document_id is None or nationality is None:
        return None
    return HotelGuest(
        surname=_text(tags.first(person_name, "Surname")),
        given_names=[name for e in tags.all(person_name, "GivenName") if (name := _text(e)) is not None],
        document_id=document_id,
        document_type=_value(document, "DocType"),
        nationality=nationality,
        birth_date=birth_date or document_birth_date,
        document_expiry=expiry,
    )


class _Problems:
    """Collects the rejections of one reservation, so that all of them are reported at once."""

    def __init__(self, input_name: str, xpath: str) -> None:
        self._input = input_name
        self._xpath = xpath
        self.found: list[Rejection] = []

    def note(self, field: str | None, reason: str) -> None:
        self.found.append(Rejection(input=self._input, location=self._xpath, field=field, reason=reason))

    def date_at(self, element: Element | None, attribute: str, field: str) -> date | None:
        """The attribute as a date; None, noting a problem when it is malformed, if unusable."""
        text = _value(element, attribute)
        if text is None:
            return None
        try:
            return _to_date(text)
        except ValueError as exc:
            self.note(field, str(exc))
            return None

    def datetime_at(self, element: Element | None, attribute: str, field: str) -> datetime | None:
        text = _value(element, attribute)
        if text is None:
            return None
        try:
            return _to_datetime(text)
        except ValueError as exc:
            self.note(field, str(exc))
            return None


class _Tags:
    """Finds children by local name in the document's namespace (C fast path of ``findall``)."""

    def __init__(self, namespace: str | None) -> None:
        self._prefix = f"{{{namespace}}}" if namespace else ""

    def all(self, element: Element | None, *path: str) -> list[Element]:
        found = [] if element is None else [element]
        for name in path:
            tag = self._prefix + name
            found = [child for parent in found for child in parent.findall(tag)]
        return found

    def first(self, element: Element | None, *path: str) -> Element | None:
        return next(iter(self.all(element, *path)), None)


def _split_tag(tag: object) -> tuple[str | None, str]:
    text = str(tag)
    if text.startswith("{"):
        namespace, _, local_name = text[1:].partition("}")
        return namespace, local_name
    return None, text


def _value(element: Element | None, attribute: str) -> str | None:
    """The attribute's value, stripped; None when absent or blank."""
    if element is None:
        return None
    return (element.get(attribute) or "").strip() or None


def _first_value(elements: list[Element], attribute: str) -> str | None:
    return next((v for e in elements if (v := _value(e, attribute)) is not None), None)


def _text(element: Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip() or None


def _to_date(text: str) -> date:
    """``YYYY-MM-DD`` (zone suffix dropped) or an ISO 8601 date-time's calendar date."""
    match = _DATE.fullmatch(text)
    if match is None:
        return _to_datetime(text).date()
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise ValueError(f"impossible date {_shown(text)}") from None


def _to_datetime(text: str) -> datetime:
    if not _DATETIME.fullmatch(text):
        raise ValueError(f"{_shown(text)} is not an ISO 8601 date or date-time")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"impossible date-time {_shown(text)}") from None


def _shown(text: str) -> str:
    """The value quoted for a rejection reason, cut short so garbage cannot flood the report."""
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def _input_rejected(input_name: str, location: str, field: str | None, reason: str) -> InputRejected:
    return InputRejected(Rejection(input=input_name, location=location, field=field, reason=reason))
