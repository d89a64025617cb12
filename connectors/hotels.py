"""Hotels connector: OpenTravel ``OTA_HotelResNotifRQ`` reservation notifications from hotels.

Feed: the XML notification of a property-management system, pushed over HTTP or dropped as a file
(the transport is configuration). It is read only by :func:`connectors.formats.ota.
parse_hotel_res_notif`, which refuses DTDs and entities and checks every reservation; what it
refuses as a whole (not XML, wrong root or namespace, too big) is passed on as ``InputRejected``.

Events: one per named guest, because the pilgrim key is per person (nationality + passport number
of the guest's ``Document``). ``@ResStatus`` decides the type:

* reserved (``Reserved``, ``Commit``, ``Book``): ``HotelReservationConfirmed``
* modified (``Modify``): ``HotelReservationModified``
* cancelled (``Cancel``, ``Cancelled``): ``HotelReservationCancelled``
* no_show (``No-show``): ``HotelNoShowReported``
* checked_in (``In-house``): ``GuestCheckedIn``
* checked_out (``Checked-Out``): ``GuestCheckedOut``

Position: the reservation's XPath and the guest's index among its ``ResGuest`` elements,
``/OTA_HotelResNotifRQ/HotelReservations/HotelReservation[2]/ResGuests/ResGuest[1]``, so every
guest of every reservation has its own stable event id.

The guest (``hajj.journey.Person``): names upper-cased as the other agencies send them (surname
``""`` when the hotel sent only given names; given names joined by single spaces), sex ``X`` (the
parser reads no gender), nationality as ISO 3166 alpha-3 (hotels often send alpha-2), the document
number without spaces, hyphens or ``<``, the document's expiry, no issuing state. The parser picks
the guest's passport (``DocType`` 2) or, when there is none, the first document;
``document_type`` says which it was.

``occurred_at``, the first of these that applies (``occurred_at_basis`` names it):

1. ``@LastModifyDateTime``: the reservation's last change, which is what a notification reports;
2. ``@CreateDateTime``, for a new reservation (reserved) only: for any other status it dates the
   booking, not the change being reported (a check-in dated at booking time would be weeks early);
3. the notification's ``@TimeStamp``: when the hotel's system sent it, at or just after the change;
4. for a check-in the stay's ``@Start``, for a check-out its ``@End``, at 00:00 Saudi time;
5. the hub's clock when it parsed the input (``received``).

A date-time sent without a UTC offset is taken as Saudi time (UTC+3 all year, no daylight saving),
the hotels' own; everything is converted to UTC.

Rejections, each naming the reservation's XPath as location:

* reservations the parser refused keep its rejections (location, field, reason). The parser gives
  no slice of the input, so the first of them in an input carries the whole input as raw bytes and
  the later ones a small JSON reference to it: one bulk file with a thousand bad reservations is
  quarantined once, not a thousand times;
* a guest whose nationality code is not a known ISO 3166 / ICAO code, or whose document number is
  empty or not 3-20 letters and digits once spaces, hyphens and ``<`` are removed, is refused alone
  (field ``ResGuests/ResGuest[i]/Profiles/ProfileInfo/Profile/Customer/Document/@DocID`` or
  ``.../@DocHolderNationality``); the reservation's other guests still give events. Raw bytes: a
  JSON summary of the reservation and that guest only (the parser gives no element to serialise);
* a reservation naming no guest is refused (field ``ResGuests``) unless it is a cancellation:
  without a person there is no pilgrim key and nothing to say about a pilgrim;
* a cancellation naming no guest gives a single ``HotelReservationCancelled`` with ``guest`` null,
  keyed ``reservation:<hotel_code>:<reservation_id>`` instead of a pilgrim key. It lands on another
  partition than the guests' events of the same reservation, so consumers join it to them by
  hotel code and reservation id, not by order.

A bug while mapping one reservation refuses that reservation alone; ``parse`` raises nothing but
``InputRejected``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, ClassVar, Final, Literal

from connectors.base import ConnectorConfig, JourneyRecord, Parsed, register
from connectors.formats.countries import normalize_document_number, normalize_nationality
from connectors.formats.ota import (
    RESERVATION_XPATH,
    HotelGuest,
    HotelReservation,
    ReservationStatus,
    parse_hotel_res_notif,
)
from connectors.rejections import Rejection

logger = logging.getLogger(__name__)

SAUDI_TIME: Final = timezone(timedelta(hours=3), "+03:00")
"""Makkah and Madinah: UTC+3 all year, no daylight saving."""

EVENT_TYPES: Final[dict[ReservationStatus, str]] = {
    "reserved": "HotelReservationConfirmed",
    "modified": "HotelReservationModified",
    "cancelled": "HotelReservationCancelled",
    "no_show": "HotelNoShowReported",
    "checked_in": "GuestCheckedIn",
    "checked_out": "GuestCheckedOut",
}

_STATUS_WORDS: Final[dict[ReservationStatus, str]] = {
    "reserved": "confirmed",
    "modified": "modified",
    "cancelled": "cancelled",
    "no_show": "no-show",
    "checked_in": "checked-in",
    "checked_out": "checked-out",
}

OccurredAtBasis = Literal[
    "LastModifyDateTime", "CreateDateTime", "TimeStamp", "TimeSpan/@Start", "TimeSpan/@End", "received"
]

_DOCUMENT: Final = "Profiles/ProfileInfo/Profile/Customer/Document"
_DOCUMENT_NUMBER: Final = re.compile(r"[A-Z0-9]{3,20}", re.ASCII)
_SHOWN_CHARS: Final = 40


class Config(ConnectorConfig):
    type: Literal["hotels"] = "hotels"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@register(Config)
class HotelsConnector:
    agency: ClassVar[str] = "hotels"
    event_types: ClassVar[tuple[str, ...]] = tuple(EVENT_TYPES.values())

    def __init__(self, config: Config, clock: Callable[[], datetime] = _utc_now) -> None:
        self.config = config
        self._clock = clock
        """Gives ``occurred_at`` when the input says nothing better (rule 5); tests fix it."""

    def parse(self, data: bytes, input_name: str) -> Parsed:
        notification = parse_hotel_res_notif(data, input_name)  # InputRejected goes to the caller as is
        received = self._clock()
        records: list[JourneyRecord] = []
        # (reservation index, rejection, raw bytes or None for the parser's own), sorted into document order
        refused: list[tuple[int, Rejection, bytes | None]] = [
            (_index_of(rejection.location), rejection, None) for rejection in notification.rejections
        ]
        for reservation in notification.reservations:
            mapped = _Mapped()
            try:
                _map_reservation(reservation, notification.timestamp, received, input_name, mapped)
            except Exception as exc:  # a bug here must cost one reservation, not the input
                logger.exception("unexpected error mapping %s %s", input_name, reservation.xpath)
                reason = f"internal error ({type(exc).__name__}); the reservation was kept in quarantine"
                rejection = Rejection(input_name, reservation.xpath, None, reason)
                refused.append((reservation.index, rejection, _summary(input_name, reservation)))
                continue
            records.extend(mapped.records)
            refused.extend((reservation.index, rejection, raw) for rejection, raw in mapped.rejected)
        parsed = Parsed(records=records)
        copies = _InputCopies(data, input_name)
        for _, rejection, raw in sorted(refused, key=lambda item: item[0]):
            parsed.reject(rejection, copies.raw_for(rejection) if raw is None else raw)
        return parsed


def _index_of(location: str) -> int:
    """The reservation index in a parser rejection's location, ``.../HotelReservation[7]``."""
    if location.startswith(RESERVATION_XPATH + "[") and location.endswith("]"):
        number = location[len(RESERVATION_XPATH) + 1 : -1]
        if number.isdecimal():
            return int(number)
    return 0


@dataclass(slots=True)
class _Mapped:
    """What one reservation gave; added to the result only once the whole reservation is mapped."""

    records: list[JourneyRecord] = field(default_factory=list)
    rejected: list[tuple[Rejection, bytes]] = field(default_factory=list)


def _map_reservation(
    reservation: HotelReservation,
    notification_time: datetime | None,
    received: datetime,
    input_name: str,
    mapped: _Mapped,
) -> None:
    event_type = EVENT_TYPES[reservation.status]
    occurred_at, basis = occurred_at_of(reservation, notification_time, received)
    common: dict[str, Any] = {
        "reservation_id": reservation.reservation_id,
        "hotel_code": reservation.hotel_code,
        "hotel_name": reservation.hotel_name,
        "room_type": reservation.room_type,
        "stay_start": reservation.start,
        "stay_end": reservation.end,
        "hotel_confirmation": reservation.hotel_confirmation,
        "party_size": reservation.guest_count,
        "occurred_at_basis": basis,
    }
    if not reservation.guests:
        if reservation.status == "cancelled":
            mapped.records.append(
                JourneyRecord(
                    event_type=event_type,
                    occurred_at=occurred_at,
                    position=reservation.xpath,
                    payload={**common, "guest": None, "document_type": None},
                    partition_key=f"reservation:{reservation.hotel_code}:{reservation.reservation_id}",
                )
            )
        else:
            reason = (
                f"no guest named: the hub records a {_STATUS_WORDS[reservation.status]} reservation per guest, "
                "by the nationality and number of each guest's travel document"
            )
            rejection = Rejection(input_name, reservation.xpath, "ResGuests", reason)
            mapped.rejected.append((rejection, _summary(input_name, reservation)))
        return
    # The parser refuses a reservation when any of its guests is unreadable, so guests[i] is ResGuest[i + 1].
    for number, guest in enumerate(reservation.guests, start=1):
        guest_path = f"ResGuests/ResGuest[{number}]"
        identity = _identity(guest, f"{guest_path}/{_DOCUMENT}")
        if isinstance(identity, list):
            raw = _summary(input_name, reservation, number, guest)
            for field_name, reason in identity:
                mapped.rejected.append((Rejection(input_name, reservation.xpath, field_name, reason), raw))
            continue
        nationality, document_number = identity
        mapped.records.append(
            JourneyRecord(
                event_type=event_type,
                occurred_at=occurred_at,
                position=f"{reservation.xpath}/{guest_path}",
                payload={
                    **common,
                    "guest": _person(guest, nationality, document_number),
                    "document_type": guest.document_type,
                },
                nationality=nationality,
                passport_number=document_number,
            )
        )


def occurred_at_of(
    reservation: HotelReservation, notification_time: datetime | None, received: datetime
) -> tuple[datetime, OccurredAtBasis]:
    """When the reported change happened, in UTC, and what that was taken from (module docstring)."""
    if reservation.modified_at is not None:
        return _utc(reservation.modified_at), "LastModifyDateTime"
    if reservation.status == "reserved" and reservation.created_at is not None:
        return _utc(reservation.created_at), "CreateDateTime"
    if notification_time is not None:
        return _utc(notification_time), "TimeStamp"
    if reservation.status == "checked_in" and reservation.start is not None:
        return _saudi_midnight(reservation.start), "TimeSpan/@Start"
    if reservation.status == "checked_out" and reservation.end is not None:
        return _saudi_midnight(reservation.end), "TimeSpan/@End"
    return _utc(received), "received"


def _utc(moment: datetime) -> datetime:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=SAUDI_TIME)
    return aware.astimezone(UTC)


def _saudi_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), SAUDI_TIME).astimezone(UTC)


def _identity(guest: HotelGuest, document_path: str) -> tuple[str, str] | list[tuple[str, str]]:
    """(alpha-3 nationality, document number) of a guest, or every (field, reason) that prevents it."""
    problems: list[tuple[str, str]] = []
    try:
        nationality = normalize_nationality(guest.nationality)
    except ValueError:
        problems.append(
            (
                f"{document_path}/@DocHolderNationality",
                f"unknown nationality code {_shown(guest.nationality)}: expected an ISO 3166-1 alpha-2 or "
                "alpha-3 code or an ICAO Doc 9303 code",
            )
        )
    try:
        document_number = normalize_document_number(guest.document_id)  # as the pilgrim key does
    except ValueError:  # nothing left once spaces, hyphens and < are removed
        document_number = ""
    if not _DOCUMENT_NUMBER.fullmatch(document_number):
        problems.append(
            (
                f"{document_path}/@DocID",
                f"{_shown(guest.document_id)} is not a travel document number: expected 3 to 20 letters and "
                "digits (spaces, hyphens and < are ignored)",
            )
        )
    return problems or (nationality, document_number)


def _person(guest: HotelGuest, nationality: str, document_number: str) -> dict[str, Any]:
    return {
        "surname": " ".join((guest.surname or "").split()).upper(),
        "given_names": " ".join(" ".join(guest.given_names).split()).upper(),
        "sex": "X",
        "birth_date": guest.birth_date,
        "nationality": nationality,
        "passport_number": document_number,
        "passport_expiry": guest.document_expiry,
        "issuing_state": None,
    }


def _shown(text: str) -> str:
    """A sent value quoted for a reason, cut short so that garbage cannot flood the report."""
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def _json(value: object) -> bytes:
    def default(v: object) -> str:
        if isinstance(v, date | datetime):
            return v.isoformat()
        raise TypeError(f"cannot render {type(v).__name__}")

    return json.dumps(value, ensure_ascii=False, default=default, sort_keys=True).encode()


def _summary(
    input_name: str, reservation: HotelReservation, guest_number: int | None = None, guest: HotelGuest | None = None
) -> bytes:
    """Raw bytes kept in quarantine for a refused reservation or guest: what the parser read of it.

    Only the refused guest is included, so other guests' personal data is not copied again.
    """
    summary: dict[str, Any] = {"input": input_name, "location": reservation.xpath}
    summary |= {f.name: getattr(reservation, f.name) for f in fields(reservation) if f.name not in ("xpath", "guests")}
    summary["guests_named"] = len(reservation.guests)
    if guest is not None:
        summary["guest"] = {"position": f"ResGuests/ResGuest[{guest_number}]"} | {
            f.name: getattr(guest, f.name) for f in fields(guest)
        }
    return _json(summary)


class _InputCopies:
    """Raw bytes for reservations the parser refused, which it names by XPath but gives no slice of.

    The first rejection of an input carries the whole input; each later one a reference to it.
    """

    def __init__(self, data: bytes, input_name: str) -> None:
        self._data = data
        self._input = input_name
        self._first: Rejection | None = None
        self._sha256: str | None = None

    def raw_for(self, rejection: Rejection) -> bytes:
        if self._first is None:
            self._first = rejection
            return self._data
        first = self._first
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self._data).hexdigest()
        return _json(
            {
                "input": self._input,
                "location": rejection.location,
                "raw_input": "quarantined once per input, with its first rejection",
                "raw_input_with": {"location": first.location, "field": first.field},
                "input_bytes": len(self._data),
                "input_sha256": self._sha256,
            }
        )
