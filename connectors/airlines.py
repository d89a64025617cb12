"""Airlines connector: Advance Passenger Information manifests and flight status updates.

One connector, two feeds, told apart by their first significant byte (after an optional UTF-8 BOM
and whitespace): ``UNA`` or ``UNB`` is a PAXLST interchange, ``{`` a flight-status document;
anything else is refused whole ("neither PAXLST nor flight-status JSON").

**1. UN/EDIFACT PAXLST** (D:05B, WCO/IATA API guide), read only by
:func:`connectors.formats.paxlst.parse_paxlst`, whose structural refusals (``InputRejected``:
broken control counts, truncation, no flight...) pass through unchanged::

    UNA:+.? '
    UNB+UNOA:4+SV+SAUDIAPIS+261202:2215+000004711++APIS'
    UNH+M0817A+PAXLST:D:05B:UN:IATA'  BGM+745'  TDT+20+SV817+++SV'
    LOC+125+CGK'  DTM+189:2612031040:201'  LOC+87+JED'  DTM+232:2612031630:201'
    NAD+FL+++RAHMAWATI:DEWI:AYU'  ATT+2++F'  DTM+329:680314'  NAT+2+IDN'
    RFF+AVF:KJ7Q2M'  DOC+P:110:111+C4821937'  DTM+36:290702'  LOC+91+IDN'
    CNT+42:1'  UNT+17+M0817A'  UNZ+1+000004711'

* Each passenger (NAD+FL in a passenger list) becomes a ``PassengerManifested`` keyed by the
  pilgrim (nationality + number of the travel document, the passport when several are given).
  Crew (everyone in a BGM 250 crew list, and NAD+FM anywhere) are never published one by one:
  each message gives one ``FlightManifestReceived`` (partition key
  ``flight:<designator>:<local departure date>``, e.g. ``flight:SV817:2026-12-03``) with the number
  of passengers and crew members it lists.
* Flight times are local to their airport. Saudi airports (:data:`SAUDI_AIRPORTS`) are UTC+3 all
  year. Main origin airports of pilgrims have an IANA zone in :data:`ORIGIN_AIRPORT_ZONES` (so
  summer time in LHR or CAI is right); where the host has no time-zone database the table's
  standard offset is used. **An airport in neither table is read as UTC** and the event says so
  with ``time_zone_assumed: true``; its ``*_local`` time then carries no offset.
* ``occurred_at`` is the interchange's preparation time (UNB). PAXLST does not say in which zone
  the sender prepared it, so it is **read as UTC**.
* Direction: ``inbound`` (arrival airport Saudi, departure not), ``outbound`` (departure Saudi,
  arrival not), ``domestic`` (both Saudi), ``transit`` (neither).
* Codes: airports, carrier and document type are upper-cased; nationality is normalised to ISO
  3166 alpha-3 (or the ICAO code) and must be known, issuing state and residence are normalised
  when recognised and kept as sent otherwise; document numbers lose spaces, hyphens and ``<``; a
  passenger without ATT+2 has sex ``X``, one without given names ``""``.
* Refused people: the parser's person-level rejections (missing name, impossible date...), merged
  into one rejection per person (field of the first problem, every problem in the reason), plus
  this connector's own (no or unknown nationality, empty document number), located
  ``message REF segment N (NAD)``. Each is quarantined with the raw segments of that person (its
  NAD up to the next person or CNT; cut with the parser's tokenizer, which only runs a second
  time when someone was refused). The other people of the input still come through.
  ``passenger_count`` and ``crew_count`` include refused people (they match the sender's CNT
  totals); ``rejected_passenger_count`` says how many passengers were not published. A flight
  time outside 2000-2099 refuses the whole input, like the parser's own flight-level checks.

**2. Flight status JSON**, validated with pydantic::

    {"carrier": "SV",
     "updates": [{"flight_number": "SV817", "scheduled_departure": "2026-12-03T10:40:00+07:00",
                  "status": "departed", "departure_airport": "CGK", "arrival_airport": "JED",
                  "at": "2026-12-03T10:52:00+07:00",
                  "estimated_arrival": "2026-12-03T16:41:00+03:00",    # optional
                  "actual_arrival": null, "delay_minutes": null, "reason": null}]}  # optional

``status`` is ``departed``, ``arrived``, ``delayed`` or ``cancelled``; times are ISO 8601 strings
with a UTC offset (a time without one is refused: it could be any of several instants) in the
years 2000-2099; events hold them as UTC instants, ``scheduled_departure_local`` as sent. A flight
number without airline prefix (``817``) takes the document's carrier; one with another carrier's
prefix is refused. Each update becomes a ``FlightStatusChanged`` (``occurred_at`` = ``at``,
partition key ``flight:<designator>:<scheduled departure date, local as sent>``, the same key
as the flight's manifest). An unusable document (not JSON, no carrier, no updates list) is refused
whole at ``$``; a bad update is refused alone at ``$.updates[i]``, naming its field.

Flight designators are normalised in both feeds (upper case, no spaces, no leading zeros:
``SV 0817`` is ``SV817``) so that a flight's events share one partition key.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.base import ConnectorConfig, JourneyRecord, Parsed, field_path, register
from connectors.formats.countries import normalize_document_number, normalize_nationality
from connectors.formats.edifact import Segment, tokenize
from connectors.formats.paxlst import ManifestPerson, PaxlstInterchange, PaxlstMessage, parse_paxlst
from connectors.rejections import InputRejected, Rejection

logger = logging.getLogger(__name__)


class Config(ConnectorConfig):
    type: Literal["airlines"] = "airlines"


# -- airports and time zones ----------------------------------------------------------------------

SAUDI_TIME: Final[tzinfo] = timezone(timedelta(hours=3), "AST")
"""Arabia Standard Time: Saudi Arabia keeps UTC+3 all year."""

SAUDI_AIRPORTS: Final[frozenset[str]] = frozenset(
    {
        "JED",  # Jeddah, King Abdulaziz
        "MED",  # Madinah, Prince Mohammad bin Abdulaziz
        "RUH",  # Riyadh, King Khalid
        "DMM",  # Dammam, King Fahd
        "TIF",  # Taif
        "TUU",  # Tabuk
        "AHB",  # Abha
        "GIZ",  # Jazan
        "YNB",  # Yanbu
        "ELQ",  # Qassim
        "HAS",  # Hail
        "AJF",  # Al-Jouf
        "URY",  # Qurayyat
        "RAE",  # Arar
        "RAH",  # Rafha
        "EAM",  # Najran
        "ABT",  # Al-Baha
        "BHH",  # Bisha
        "WAE",  # Wadi al-Dawasir
        "TUI",  # Turaif
        "AQI",  # Qaisumah (Hafr Al-Batin)
        "HOF",  # Al-Ahsa
        "SHW",  # Sharurah
        "EJH",  # Al-Wajh
        "ULH",  # AlUla
        "RSI",  # Red Sea International
        "DWD",  # Dawadmi
        "NUM",  # Neom Bay
    }
)
"""IATA codes of Saudi airports (all UTC+3). TAI is Ta'izz in Yemen, not Taif (TIF)."""

ORIGIN_AIRPORT_ZONES: Final[Mapping[str, tuple[str, int]]] = MappingProxyType(
    {
        # Indonesia
        "CGK": ("Asia/Jakarta", 420),  # Jakarta
        "SUB": ("Asia/Jakarta", 420),  # Surabaya
        "KNO": ("Asia/Jakarta", 420),  # Medan Kualanamu
        "BTJ": ("Asia/Jakarta", 420),  # Banda Aceh
        "PDG": ("Asia/Jakarta", 420),  # Padang
        "SOC": ("Asia/Jakarta", 420),  # Solo
        "YIA": ("Asia/Jakarta", 420),  # Yogyakarta
        "UPG": ("Asia/Makassar", 480),  # Makassar
        "BPN": ("Asia/Makassar", 480),  # Balikpapan
        "LOP": ("Asia/Makassar", 480),  # Lombok
        # Malaysia, Brunei, Singapore, Thailand, Philippines
        "KUL": ("Asia/Kuala_Lumpur", 480),
        "PEN": ("Asia/Kuala_Lumpur", 480),
        "BKI": ("Asia/Kuching", 480),
        "BWN": ("Asia/Brunei", 480),
        "SIN": ("Asia/Singapore", 480),
        "BKK": ("Asia/Bangkok", 420),
        "MNL": ("Asia/Manila", 480),
        # Pakistan
        "ISB": ("Asia/Karachi", 300),
        "LHE": ("Asia/Karachi", 300),
        "KHI": ("Asia/Karachi", 300),
        "PEW": ("Asia/Karachi", 300),
        "MUX": ("Asia/Karachi", 300),
        "SKT": ("Asia/Karachi", 300),
        "UET": ("Asia/Karachi", 300),
        # India, Bangladesh, Sri Lanka, Maldives, Afghanistan
        "DEL": ("Asia/Kolkata", 330),
        "BOM": ("Asia/Kolkata", 330),
        "HYD": ("Asia/Kolkata", 330),
        "BLR": ("Asia/Kolkata", 330),
        "MAA": ("Asia/Kolkata", 330),
        "CCJ": ("Asia/Kolkata", 330),
        "COK": ("Asia/Kolkata", 330),
        "LKO": ("Asia/Kolkata", 330),
        "SXR": ("Asia/Kolkata", 330),
        "CCU": ("Asia/Kolkata", 330),
        "DAC": ("Asia/Dhaka", 360),
        "CGP": ("Asia/Dhaka", 360),
        "ZYL": ("Asia/Dhaka", 360),
        "CMB": ("Asia/Colombo", 330),
        "MLE": ("Indian/Maldives", 300),
        "KBL": ("Asia/Kabul", 270),
        # Middle East
        "DXB": ("Asia/Dubai", 240),
        "AUH": ("Asia/Dubai", 240),
        "SHJ": ("Asia/Dubai", 240),
        "MCT": ("Asia/Muscat", 240),
        "DOH": ("Asia/Qatar", 180),
        "BAH": ("Asia/Bahrain", 180),
        "KWI": ("Asia/Kuwait", 180),
        "AMM": ("Asia/Amman", 180),
        "BGW": ("Asia/Baghdad", 180),
        "NJF": ("Asia/Baghdad", 180),
        "BSR": ("Asia/Baghdad", 180),
        "EBL": ("Asia/Baghdad", 180),
        "BEY": ("Asia/Beirut", 120),
        "IKA": ("Asia/Tehran", 210),
        "IST": ("Europe/Istanbul", 180),
        "SAW": ("Europe/Istanbul", 180),
        "ESB": ("Europe/Istanbul", 180),
        "TAS": ("Asia/Tashkent", 300),
        # Africa
        "CAI": ("Africa/Cairo", 120),
        "HBE": ("Africa/Cairo", 120),
        "KRT": ("Africa/Khartoum", 120),
        "LOS": ("Africa/Lagos", 60),
        "KAN": ("Africa/Lagos", 60),
        "ABV": ("Africa/Lagos", 60),
        "ALG": ("Africa/Algiers", 60),
        "ORN": ("Africa/Algiers", 60),
        "CZL": ("Africa/Algiers", 60),
        "TUN": ("Africa/Tunis", 60),
        "CMN": ("Africa/Casablanca", 60),
        "RAK": ("Africa/Casablanca", 60),
        "DSS": ("Africa/Dakar", 0),
        "JNB": ("Africa/Johannesburg", 120),
        "CPT": ("Africa/Johannesburg", 120),
        "DUR": ("Africa/Johannesburg", 120),
        "ADD": ("Africa/Addis_Ababa", 180),
        "NBO": ("Africa/Nairobi", 180),
        "DAR": ("Africa/Dar_es_Salaam", 180),
        # Europe, North America
        "LHR": ("Europe/London", 0),
        "LGW": ("Europe/London", 0),
        "MAN": ("Europe/London", 0),
        "BHX": ("Europe/London", 0),
        "CDG": ("Europe/Paris", 60),
        "FRA": ("Europe/Berlin", 60),
        "AMS": ("Europe/Amsterdam", 60),
        "JFK": ("America/New_York", -300),
        "IAD": ("America/New_York", -300),
        "YYZ": ("America/Toronto", -300),
    }
)
"""Main origin airports of pilgrims: IATA code -> (IANA time zone, standard UTC offset in minutes).

The offset is used only where the host has no IANA time-zone database (it misses summer time)."""


def _load_zones() -> dict[str, tzinfo]:
    zones: dict[str, tzinfo] = dict.fromkeys(SAUDI_AIRPORTS, SAUDI_TIME)
    missing: list[str] = []
    for airport, (name, minutes) in ORIGIN_AIRPORT_ZONES.items():
        try:
            zones[airport] = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            zones[airport] = timezone(timedelta(minutes=minutes))
            missing.append(name)
    if missing:
        logger.warning("no IANA time-zone data for %s: using standard offsets", ", ".join(sorted(set(missing))))
    return zones


_ZONES: Final[Mapping[str, tzinfo]] = MappingProxyType(_load_zones())


def airport_time_zone(airport: str) -> tzinfo | None:
    """The time zone of an airport the hub knows, else None (the caller then assumes UTC)."""
    return _ZONES.get(airport.strip().upper())


def _localize(local: datetime, airport: str) -> tuple[datetime, str, bool]:
    """(UTC instant, local ISO text, zone assumed) of a naive local time at ``airport``."""
    zone = airport_time_zone(airport)
    if zone is None:
        return local.replace(tzinfo=UTC), local.isoformat(), True
    aware = local.replace(tzinfo=zone)
    return aware.astimezone(UTC), aware.isoformat(), False


def direction(departure_airport: str, arrival_airport: str) -> str:
    """inbound, outbound, domestic or transit, seen from Saudi Arabia."""
    departs_saudi = departure_airport.upper() in SAUDI_AIRPORTS
    arrives_saudi = arrival_airport.upper() in SAUDI_AIRPORTS
    if arrives_saudi:
        return "domestic" if departs_saudi else "inbound"
    return "outbound" if departs_saudi else "transit"


_DESIGNATOR = re.compile(r"([A-Z]{3}|[A-Z][A-Z0-9]|[0-9][A-Z])?([0-9]{1,4})([A-Z]?)")


def flight_designator(flight_number: str, carrier: str | None) -> str:
    """``SV 0817`` -> ``SV817``; ``817`` with carrier ``SV`` -> ``SV817``; anything else upper-cased."""
    compact = flight_number.replace(" ", "").upper()
    match = _DESIGNATOR.fullmatch(compact)
    if match is None:
        return compact
    prefix, number, suffix = match.groups()
    return f"{prefix or (carrier or '').strip().upper()}{int(number)}{suffix}"


def flight_key(designator: str, departure_day: date) -> str:
    """Partition key of a flight's events: ``flight:SV817:2026-12-03`` (local departure date)."""
    return f"flight:{designator}:{departure_day.isoformat()}"


# -- the connector --------------------------------------------------------------------------------

_BOM = b"\xef\xbb\xbf"
_LAYOUT = b" \t\r\n"


@register(Config)
class AirlinesConnector:
    agency: ClassVar[str] = "airlines"
    event_types: ClassVar[tuple[str, ...]] = ("PassengerManifested", "FlightManifestReceived", "FlightStatusChanged")

    def __init__(self, config: Config) -> None:
        self.config = config

    def parse(self, data: bytes, input_name: str) -> Parsed:
        start = len(_BOM) if data.startswith(_BOM) else 0
        while start < len(data) and data[start] in _LAYOUT:
            start += 1
        head = data[start : start + 3]
        try:
            if head in (b"UNA", b"UNB"):
                return _parse_manifest(data, input_name)
            if head[:1] == b"{":
                return _parse_status(data, input_name)
        except InputRejected:
            raise
        except Exception as exc:  # a bug must refuse the input, never crash the task
            logger.exception("airlines connector failed on %s", input_name)
            raise InputRejected(
                Rejection(
                    input_name,
                    "$" if head[:1] == b"{" else "interchange",
                    None,
                    f"internal error ({type(exc).__name__}); the input was kept in quarantine",
                )
            ) from exc
        shown = data[start : start + 20].decode("utf-8", "replace")
        raise InputRejected(
            Rejection(
                input_name,
                f"byte {start}",
                None,
                f"neither PAXLST nor flight-status JSON: expected UNA, UNB or {{, found {shown!r}",
            )
        )


# -- PAXLST ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Flight:
    """What every event about one manifested flight says about the flight."""

    designator: str
    partition_key: str
    fields: dict[str, Any]

    @classmethod
    def of(cls, message: PaxlstMessage) -> _Flight:
        origin, destination = message.departure_airport.upper(), message.arrival_airport.upper()
        departure, departure_local, departure_assumed = _localize(message.departure_time, origin)
        arrival, arrival_local, arrival_assumed = _localize(message.arrival_time, destination)
        carrier = message.carrier.upper() if message.carrier else None
        designator = flight_designator(message.flight_number, carrier)
        fields = {
            "flight_number": designator,
            "carrier": carrier,
            "departure_airport": origin,
            "departure_time": departure,
            "departure_time_local": departure_local,
            "arrival_airport": destination,
            "arrival_time": arrival,
            "arrival_time_local": arrival_local,
            "time_zone_assumed": departure_assumed or arrival_assumed,
            "direction": direction(origin, destination),
        }
        return cls(designator, flight_key(designator, message.departure_time.date()), fields)


class _Refused(ValueError):
    """This connector refuses one record (a person, an update): which field, and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


_NAD_LOCATION = re.compile(r"segment (\d+) \(NAD\)$")
_PERSON_END = frozenset({"CNT", "UNT", "UNE", "UNZ", "UNH", "UNG"})


class _Segments:
    """The interchange's segments, tokenized again only when a refused person needs them
    (to cut its raw bytes for quarantine and to tell which message and role it had)."""

    def __init__(self, data: bytes, input_name: str) -> None:
        self.data = data
        self.input_name = input_name
        self._segments: list[Segment] | None = None
        self._messages: list[int] = []

    def _load(self) -> list[Segment]:
        if self._segments is None:
            self._segments = tokenize(self.data, self.input_name)
            self._messages = [s.index for s in self._segments if s.tag == "UNH"]
        return self._segments

    def _at(self, index: int) -> int:
        segments = self._load()
        if 0 < index <= len(segments) and segments[index - 1].index == index:
            return index - 1
        return next(i for i, s in enumerate(segments) if s.index == index)

    def message_of(self, index: int) -> int:
        """Position (0-based) among the interchange's messages of the message holding segment ``index``."""
        self._load()
        return bisect.bisect_right(self._messages, index) - 1

    def is_crew_member(self, index: int) -> bool:
        nad = self._load()[self._at(index)]
        return nad.tag == "NAD" and nad.value(1) == "FM"

    def person_bytes(self, index: int) -> bytes:
        """The raw segments of the person whose NAD is segment ``index``, up to the next person or CNT."""
        segments = self._load()
        start = self._at(index)
        end = start + 1
        while end < len(segments):
            segment = segments[end]
            if segment.tag in _PERSON_END or (segment.tag == "NAD" and segment.value(1) in ("FL", "FM")):
                break
            end += 1
        stop = segments[end].offset if end < len(segments) else len(self.data)
        return self.data[segments[start].offset : stop].rstrip()


@dataclass(slots=True)
class _Refusal:
    segment_index: int
    rejection: Rejection
    is_crew: bool


def _parse_manifest(data: bytes, input_name: str) -> Parsed:
    interchange = parse_paxlst(data, input_name)
    segments = _Segments(data, input_name)
    occurred = interchange.prepared_at.replace(tzinfo=UTC)  # the sender's zone is unknown: UTC, as documented
    refused = _parser_refusals(interchange, segments)
    parsed = Parsed()
    seen_refs: dict[str, int] = {}
    for number, message in enumerate(interchange.messages):
        _check_flight_times(message, input_name)
        flight = _Flight.of(message)
        refusals = refused.get(number, [])
        passengers: list[JourneyRecord] = []
        crew = 0
        for person in message.people:
            if person.is_crew:
                crew += 1
                continue
            try:
                passengers.append(_passenger(person, flight, message, interchange, occurred))
            except _Refused as exc:
                rejection = Rejection(input_name, person.position, exc.field, exc.reason)
                refusals.append(_Refusal(person.segment_index, rejection, is_crew=False))
        refused_passengers = sum(1 for r in refusals if not r.is_crew)
        seen_refs[message.message_ref] = seen_refs.get(message.message_ref, 0) + 1
        occurrence = seen_refs[message.message_ref]
        parsed.records.append(
            JourneyRecord(
                event_type="FlightManifestReceived",
                occurred_at=occurred,
                position=f"message {message.message_ref}" + (f" #{occurrence}" if occurrence > 1 else ""),
                payload={
                    **flight.fields,
                    "is_crew_list": message.is_crew_list,
                    "passenger_count": len(passengers) + refused_passengers,
                    "crew_count": crew + sum(1 for r in refusals if r.is_crew),
                    "rejected_passenger_count": refused_passengers,
                    "message_ref": message.message_ref,
                    "interchange_ref": interchange.control_ref,
                    "sender": interchange.sender,
                    "reporting_party": message.reporting_party,
                },
                partition_key=flight.partition_key,
            )
        )
        parsed.records.extend(passengers)
        for refusal in sorted(refusals, key=lambda r: r.segment_index):
            parsed.reject(refusal.rejection, segments.person_bytes(refusal.segment_index))
    for refusal in refused.get(-1, []):  # not located at a person: cannot happen with the parser's contract
        parsed.reject(refusal.rejection, data)
    return parsed


_PLAUSIBLE_YEARS = range(2000, 2100)


def _check_flight_times(message: PaxlstMessage, input_name: str) -> None:
    """A flight time outside 2000-2099 is a sender's error that would also break UTC conversion."""
    for field, moment in (
        ("DTM+189 departure_time", message.departure_time),
        ("DTM+232 arrival_time", message.arrival_time),
    ):
        if moment.year not in _PLAUSIBLE_YEARS:
            reason = f"{moment.isoformat()} is not a plausible flight time (years 2000-2099)"
            raise InputRejected(Rejection(input_name, f"message {message.message_ref}", field, reason))


def _parser_refusals(interchange: PaxlstInterchange, segments: _Segments) -> dict[int, list[_Refusal]]:
    """The parser's rejections, one per refused person, by message position (-1: not located)."""
    by_location: dict[str, list[Rejection]] = {}
    for rejection in interchange.rejections:
        by_location.setdefault(rejection.location, []).append(rejection)
    refused: dict[int, list[_Refusal]] = {}
    for location, problems in by_location.items():
        first = problems[0]
        merged = first
        if len(problems) > 1:
            reason = "; ".join(f"{p.field}: {p.reason}" if p.field else p.reason for p in problems)
            merged = Rejection(first.input, location, first.field, reason)
        match = _NAD_LOCATION.search(location)
        if match is None:
            refused.setdefault(-1, []).append(_Refusal(0, merged, is_crew=False))
            continue
        index = int(match.group(1))
        number = segments.message_of(index)
        in_crew_list = 0 <= number < len(interchange.messages) and interchange.messages[number].is_crew_list
        is_crew = in_crew_list or segments.is_crew_member(index)
        refused.setdefault(number, []).append(_Refusal(index, merged, is_crew))
    return refused


def _passenger(
    person: ManifestPerson,
    flight: _Flight,
    message: PaxlstMessage,
    interchange: PaxlstInterchange,
    occurred: datetime,
) -> JourneyRecord:
    if not person.nationality:
        raise _Refused(
            "NAT+2 nationality", "the passenger has no nationality (NAT+2); with the passport it identifies a pilgrim"
        )
    try:
        nationality = normalize_nationality(person.nationality)
    except ValueError as exc:
        raise _Refused("NAT+2 nationality", str(exc)) from None
    document_number = normalize_document_number(person.passport_number)
    if not document_number:
        raise _Refused("DOC document_number", f"{person.passport_number!r} is not a document number")
    return JourneyRecord(
        event_type="PassengerManifested",
        occurred_at=occurred,
        position=f"{person.position} @ byte {person.offset}",
        payload={
            **flight.fields,
            "passenger": {
                "surname": person.surname.upper(),
                "given_names": (person.given_names or "").upper(),
                "sex": person.sex or "X",
                "birth_date": person.birth_date,
                "nationality": nationality,
                "passport_number": document_number,
                "passport_expiry": person.document_expiry,
                "issuing_state": _country(person.issuing_state),
            },
            "document_type": person.document_type.upper(),
            "booking_ref": person.booking_ref,
            "embark_airport": person.embark_airport.upper() if person.embark_airport else None,
            "debark_airport": person.debark_airport.upper() if person.debark_airport else None,
            "residence_country": _country(person.residence_country),
            "message_ref": message.message_ref,
            "interchange_ref": interchange.control_ref,
            "sender": interchange.sender,
        },
        nationality=nationality,
        passport_number=document_number,
    )


def _country(code: str | None) -> str | None:
    """ISO 3166 alpha-3 (or ICAO) code when recognised, else the code as sent, upper-cased."""
    if code is None:
        return None
    try:
        return normalize_nationality(code)
    except ValueError:
        return code.strip().upper() or None


# -- flight status JSON ---------------------------------------------------------------------------

_AIRPORT = r"^[A-Z]{3}$"
_CARRIER = r"^([A-Z]{2,3}|[A-Z][0-9]|[0-9][A-Z])$"
_TIME_FIELDS = ("scheduled_departure", "at", "estimated_arrival", "actual_arrival")


class FlightStatusUpdate(BaseModel):
    """One status change of one flight."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    flight_number: str = Field(
        pattern=r"^([A-Z]{3}|[A-Z][A-Z0-9]|[0-9][A-Z])? ?[0-9]{1,4}[A-Z]?$",
        description="IATA flight designator (SV817), or the number alone (817) for the document's carrier.",
    )
    scheduled_departure: AwareDatetime = Field(description="Scheduled departure, local time with its UTC offset.")
    status: Literal["departed", "arrived", "delayed", "cancelled"]
    departure_airport: str = Field(pattern=_AIRPORT, description="IATA airport code.")
    arrival_airport: str = Field(pattern=_AIRPORT, description="IATA airport code.")
    at: AwareDatetime = Field(description="When the status took effect, with its UTC offset.")
    estimated_arrival: AwareDatetime | None = None
    actual_arrival: AwareDatetime | None = None
    delay_minutes: StrictInt | None = Field(None, ge=0, le=7 * 24 * 60)
    reason: str | None = Field(None, max_length=500)

    @field_validator("flight_number", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(*_TIME_FIELDS, mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError("expected an ISO 8601 date-time with UTC offset, e.g. 2026-12-03T10:40:00+07:00")
        return value

    @field_validator(*_TIME_FIELDS)
    @classmethod
    def _plausible(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.year not in _PLAUSIBLE_YEARS:
            raise ValueError(f"{value.isoformat()} is not a plausible flight time (years 2000-2099)")
        return value

    @model_validator(mode="after")
    def _two_airports(self) -> FlightStatusUpdate:
        if self.departure_airport == self.arrival_airport:
            raise ValueError(f"departure and arrival airport are both {self.departure_airport}")
        return self


class FlightStatusDocument(BaseModel):
    """The document an airline sends: its designator and a batch of status updates."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    carrier: str = Field(pattern=_CARRIER, description="IATA airline designator of the sender, e.g. SV.")
    updates: list[Any] = Field(min_length=1, max_length=100_000)


def _parse_status(data: bytes, input_name: str) -> Parsed:
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, too-long integers
        raise InputRejected(Rejection(input_name, "$", None, f"not JSON: {exc}")) from exc
    if not isinstance(raw, dict):
        raise InputRejected(Rejection(input_name, "$", None, "expected a JSON object with carrier and updates"))
    try:
        document = FlightStatusDocument.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputRejected(Rejection(input_name, "$", field_path(first["loc"]) or None, first["msg"])) from exc
    parsed = Parsed()
    for index, item in enumerate(document.updates):
        location = f"$.updates[{index}]"
        try:
            update = FlightStatusUpdate.model_validate(item)
            parsed.records.append(_status_event(document.carrier, update, location))
        except ValidationError as exc:
            errors = exc.errors()
            reason = "; ".join(f"{field_path(e['loc'])}: {e['msg']}" if e["loc"] else e["msg"] for e in errors)
            parsed.reject(Rejection(input_name, location, field_path(errors[0]["loc"]) or None, reason), _raw(item))
        except _Refused as exc:
            parsed.reject(Rejection(input_name, location, exc.field, exc.reason), _raw(item))
        except Exception as exc:  # a bug here must cost one update, not the batch
            logger.exception("unexpected error in %s %s", input_name, location)
            reason = f"internal error ({type(exc).__name__}); the update was kept in quarantine"
            parsed.reject(Rejection(input_name, location, None, reason), _raw(item))
    return parsed


def _status_event(carrier: str, update: FlightStatusUpdate, location: str) -> JourneyRecord:
    match = _DESIGNATOR.fullmatch(update.flight_number.replace(" ", ""))
    prefix = match.group(1) if match else None
    if prefix is not None and prefix != carrier:
        raise _Refused("flight_number", f"{update.flight_number} is not a flight of carrier {carrier}")
    designator = flight_designator(update.flight_number, carrier)
    return JourneyRecord(
        event_type="FlightStatusChanged",
        occurred_at=update.at.astimezone(UTC),
        position=location,
        payload={
            "flight_number": designator,
            "carrier": carrier,
            "departure_airport": update.departure_airport,
            "arrival_airport": update.arrival_airport,
            "direction": direction(update.departure_airport, update.arrival_airport),
            "scheduled_departure": update.scheduled_departure.astimezone(UTC),
            "scheduled_departure_local": update.scheduled_departure.isoformat(),
            "status": update.status,
            "changed_at": update.at.astimezone(UTC),
            "estimated_arrival": _utc(update.estimated_arrival),
            "actual_arrival": _utc(update.actual_arrival),
            "delay_minutes": update.delay_minutes,
            "reason": update.reason,
        },
        partition_key=flight_key(designator, update.scheduled_departure.date()),
    )


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _raw(item: Any) -> bytes:
    return json.dumps(item, ensure_ascii=False, default=str).encode()
