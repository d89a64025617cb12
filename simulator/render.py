"""Agency messages of a season, in the agencies' native formats.

Contract: :func:`render_hour` turns the plan's steps of one simulated hour into the documents the
agencies send in that hour, as :class:`Delivery` values (body bytes, what feed they are, a name
unique within the run). Pure: the same plan, steps and label give the same bytes.

* operators: per (operator, agent) one registration JSON document (``registrations`` of the JSON
  groups, then the ``groups`` formed that hour); the bulk-CSV groups' rows of the hour in one CSV
  file (``;`` or ``,``, sometimes with a byte-order mark and CRLF, as spreadsheets export them);
* immigration: one JSON batch (``visa_issued``, ``border_entry``, ``border_exit``) with TD3 MRZs
  built by :func:`connectors.formats.mrz.format_td3`, times in Saudi time (``+03:00``);
* hotels: one ``OTA_HotelResNotifRQ`` with one ``HotelReservation`` per pilgrim record:
  ``Commit`` (``CreateDateTime`` = the confirmation), ``In-house`` / ``Checked-Out``
  (``LastModifyDateTime`` = the check-in / check-out instant, which the hotels connector takes as
  ``occurred_at``);
* airlines: one UN/EDIFACT PAXLST interchange per flight manifest (UNA, UNB, UNG, UNH, BGM 745,
  NAD+MS, TDT+20, LOC/DTM departure and arrival in local time, per passenger NAD+FL ATT DTM+329
  LOC+178/179/174 NAT RFF+AVF DOC+P DTM+36 LOC+91, CNT+42, UNT, UNE, UNZ with correct counts; data
  escaped with the release character; UNB time in UTC, as the connector reads it), and one
  flight-status JSON per carrier with the hour's ``departed`` / ``arrived`` updates.

Large hours are split (:data:`MAX_RECORDS`) so that no body nears a connector's size limit.
Malformed records are corrupted here, as the plan says: an impossible birth date (registration,
PAXLST passenger), a wrong document-number check digit in the MRZ (immigration), no
``HotelCode`` (hotels).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal
from xml.sax.saxutils import escape

from connectors.formats.countries import ALPHA2_TO_ALPHA3
from connectors.formats.mrz import format_td3
from simulator.season import (
    SAUDI_OFFSET_HOURS,
    GroupStep,
    ManifestStep,
    Pilgrim,
    PilgrimStep,
    SeasonPlan,
    StatusStep,
    Step,
    local_time,
)

logger = logging.getLogger(__name__)

Feed = Literal["operators-json", "operators-csv", "immigration", "hotels", "paxlst", "flight-status"]
AGENCY: dict[str, str] = {
    "operators-json": "operators",
    "operators-csv": "operators",
    "immigration": "immigration",
    "hotels": "hotels",
    "paxlst": "airlines",
    "flight-status": "airlines",
}
MAX_RECORDS: dict[str, int] = {"operators-json": 2000, "operators-csv": 5000, "immigration": 2000, "hotels": 1000}
"""Records per document, well under the connectors' limits (HTTP bodies 10 MB, OTA 5 MB)."""
AUTHORITY = "SA-JAWAZAT"
API_RECIPIENT = "SAUDIAPIS"
OTA_NAMESPACE = "http://www.opentravel.org/OTA/2003/05"
ALPHA3_TO_ALPHA2: dict[str, str] = {alpha3: alpha2 for alpha2, alpha3 in ALPHA2_TO_ALPHA3.items()}
CSV_COLUMNS = (
    "operator_code",
    "agent_code",
    "registration_id",
    "group_id",
    "season",
    "surname",
    "given_names",
    "sex",
    "birth_date",
    "nationality",
    "passport_number",
    "passport_expiry",
    "issuing_state",
    "planned_arrival",
    "planned_departure",
    "housing",
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One document an agency sends: to an HTTP endpoint or as a file into an inbox."""

    feed: Feed
    name: str
    """File name (file drops) or Idempotency-Key (HTTP); unique within the run."""
    body: bytes
    content_type: str
    events: int
    """How many hub events the document stands for, rejected records included."""

    @property
    def agency(self) -> str:
        return AGENCY[self.feed]


def steps_by_hour(plan: SeasonPlan) -> Iterator[tuple[datetime, list[Step]]]:
    """Every simulated hour from the plan's first to its end, with the steps that occur in it."""
    hour = plan.first_hour
    steps = plan.steps
    position = 0
    while hour < plan.end:
        next_hour = hour + timedelta(hours=1)
        first = position
        while position < len(steps) and steps[position].at < next_hour:
            position += 1
        yield hour, list(steps[first:position])
        hour = next_hour


def render_hour(plan: SeasonPlan, steps: Sequence[Step], hour_start: datetime, label: str) -> list[Delivery]:
    """The documents of one hour, in sending order: operators, immigration, hotels, then airline files.

    ``label`` names this hour in this run (e.g. ``sim42-1f2e3d4c-h00017``); every name derives from it.
    """
    sent_at = hour_start + timedelta(hours=1)
    registrations: dict[tuple[str, str], list[PilgrimStep]] = {}
    csv_rows: list[PilgrimStep] = []
    formed: dict[tuple[str, str], list[GroupStep]] = {}
    immigration: list[PilgrimStep] = []
    hotels: list[PilgrimStep] = []
    manifests: list[ManifestStep] = []
    statuses: dict[str, list[StatusStep]] = {}
    for step in steps:
        if isinstance(step, PilgrimStep):
            if step.kind == "registration":
                pilgrim = plan.pilgrims[step.pilgrim]
                if plan.groups[pilgrim.group].channel == "csv":
                    csv_rows.append(step)
                else:
                    registrations.setdefault((pilgrim.operator_code, pilgrim.agent_code), []).append(step)
            elif step.kind in ("visa", "entry", "exit"):
                immigration.append(step)
            else:
                hotels.append(step)
        elif isinstance(step, GroupStep):
            group = plan.groups[step.group]
            formed.setdefault((group.operator_code, group.agent_code), []).append(step)
        elif isinstance(step, ManifestStep):
            manifests.append(step)
        else:
            statuses.setdefault(plan.flights[step.flight].carrier, []).append(step)

    out: list[Delivery] = []
    senders = list(registrations) + [k for k in formed if k not in registrations]
    for operator, agent in senders:
        regs = registrations.get((operator, agent), [])
        groups = formed.get((operator, agent), [])
        for chunk in _chunks(regs, MAX_RECORDS["operators-json"]) if regs else [[]]:
            body = render_registrations(plan, operator, agent, chunk, groups)
            events = len(chunk) + sum(1 + len(plan.groups[g.group].members) for g in groups)
            out.append(
                Delivery("operators-json", f"{label}-operators-{len(out):03d}", body, "application/json", events)
            )
            groups = []  # the groups go with the first chunk
    for number, chunk in enumerate(_chunks(csv_rows, MAX_RECORDS["operators-csv"])):
        body = render_registrations_csv(plan, chunk, variant=hash_variant(label, number))
        out.append(Delivery("operators-csv", f"{label}-{len(out):03d}-registrations.csv", body, "text/csv", len(chunk)))
    for number, chunk in enumerate(_chunks(immigration, MAX_RECORDS["immigration"])):
        body = render_immigration(plan, chunk, batch_id=f"JWZ-{label}-{number}", sent_at=sent_at)
        out.append(Delivery("immigration", f"{label}-immigration-{len(out):03d}", body, "application/json", len(chunk)))
    for number, chunk in enumerate(_chunks(hotels, MAX_RECORDS["hotels"])):
        body = render_ota(plan, chunk, echo_token=f"{label}-{number}", sent_at=sent_at)
        out.append(Delivery("hotels", f"{label}-hotels-{len(out):03d}", body, "application/xml", len(chunk)))
    hour_number = int(hour_start.timestamp()) // 3600
    for manifest in manifests:
        flight = plan.flights[manifest.flight]
        control_ref = f"{hour_number % 10**8:08d}{len(out) % 1000:03d}"
        body = render_paxlst(plan, manifest, control_ref, layout=("\n", "\r\n", "")[flight.index % 3])
        name = f"{label}-{len(out):03d}-{flight.designator}-{flight.departure_airport}-{flight.arrival_airport}.paxlst"
        out.append(Delivery("paxlst", name, body, "application/edifact", len(flight.passengers) + 1))
    for carrier, updates in statuses.items():
        body = render_flight_status(plan, carrier, updates)
        name = f"{label}-{len(out):03d}-status-{carrier}.json"
        out.append(Delivery("flight-status", name, body, "application/json", len(updates)))
    return out


def hash_variant(label: str, number: int) -> int:
    """A stable small number from a label (never Python's salted ``hash``)."""
    return (sum(label.encode()) + number) % 4


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _iso(moment: datetime, offset_hours: int = SAUDI_OFFSET_HOURS) -> str:
    return local_time(moment, offset_hours).isoformat(timespec="seconds")


def _impossible(day: date) -> str:
    """A date that looks right but does not exist: 30 February of the same year."""
    return f"{day.year:04d}-02-30"


# -- operators -------------------------------------------------------------------------------------


def _registration(plan: SeasonPlan, step: PilgrimStep) -> dict[str, Any]:
    pilgrim = plan.pilgrims[step.pilgrim]
    group = plan.groups[pilgrim.group]
    return {
        "registration_id": pilgrim.registration_id,
        "group_id": group.group_id,
        "season": "umrah",
        "pilgrim": {
            "surname": pilgrim.surname,
            "given_names": pilgrim.given_names,
            "sex": pilgrim.sex,
            "birth_date": _impossible(pilgrim.birth_date) if step.malformed else pilgrim.birth_date.isoformat(),
            "nationality": pilgrim.nationality,
            "passport_number": pilgrim.passport_number,
            "passport_expiry": pilgrim.passport_expiry.isoformat(),
            "issuing_state": pilgrim.nationality,
        },
        "planned_arrival": group.arrival_day.isoformat(),
        "planned_departure": group.departure_day.isoformat(),
        "housing": plan.hotels[group.hotels[0]].code,
        "registered_at": _iso(step.at),
    }


def render_registrations(
    plan: SeasonPlan, operator_code: str, agent_code: str, steps: Sequence[PilgrimStep], groups: Sequence[GroupStep]
) -> bytes:
    """An operator's registration JSON document (``registrations`` and/or ``groups``)."""
    document: dict[str, Any] = {"operator_code": operator_code, "agent_code": agent_code}
    if steps:
        document["registrations"] = [_registration(plan, step) for step in steps]
    if groups:
        document["groups"] = []
        for step in groups:
            group = plan.groups[step.group]
            members = [plan.pilgrims[i] for i in group.members]
            document["groups"].append(
                {
                    "group_id": group.group_id,
                    "season": "umrah",
                    "capacity": 45,
                    "members": [
                        {
                            "nationality": p.nationality,
                            "passport_number": p.passport_number,
                            "registration_id": p.registration_id,
                        }
                        for p in members
                    ],
                    "housing": plan.hotels[group.hotels[0]].code,
                    "arrival": group.arrival_day.isoformat(),
                    "departure": group.departure_day.isoformat(),
                    "formed_at": _iso(step.at),
                }
            )
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def render_registrations_csv(plan: SeasonPlan, steps: Sequence[PilgrimStep], variant: int = 0) -> bytes:
    """A bulk registration CSV as an operator's spreadsheet exports it.

    ``variant`` 0-3: delimiter ``;`` or ``,``; with or without a UTF-8 byte-order mark and CRLF.
    """
    delimiter = ";" if variant % 2 == 0 else ","
    excel = variant >= 2
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n" if excel else "\n")
    writer.writerow(CSV_COLUMNS)
    for step in steps:
        row = _registration(plan, step)
        person = row.pop("pilgrim")
        pilgrim = plan.pilgrims[step.pilgrim]
        values = {**row, **person, "operator_code": pilgrim.operator_code, "agent_code": pilgrim.agent_code}
        writer.writerow([values.get(column, "") for column in CSV_COLUMNS])
    return (b"\xef\xbb\xbf" if excel else b"") + buffer.getvalue().encode()


# -- immigration -----------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _mrz(pilgrim: Pilgrim) -> str:
    return format_td3(
        surname=pilgrim.surname,
        given_names=pilgrim.given_names,
        document_number=pilgrim.passport_number,
        nationality=pilgrim.nationality,
        birth_date=pilgrim.birth_date,
        sex=pilgrim.sex,
        expiry_date=pilgrim.passport_expiry,
    )


def passport_mrz(pilgrim: Pilgrim, malformed: bool = False) -> str:
    """The pilgrim's TD3 MRZ; malformed: the document-number check digit (line 2, position 10) is wrong."""
    mrz = _mrz(pilgrim)
    if not malformed:
        return mrz
    line1, line2 = mrz.split("\n")
    wrong = str((int(line2[9]) + 1) % 10)
    return f"{line1}\n{line2[:9]}{wrong}{line2[10:]}"


def _immigration_record(plan: SeasonPlan, step: PilgrimStep) -> dict[str, Any]:
    pilgrim = plan.pilgrims[step.pilgrim]
    mrz = passport_mrz(pilgrim, step.malformed)
    if step.kind == "visa":
        return {
            "record_type": "visa_issued",
            "record_id": f"V-{pilgrim.visa_number}",
            "visa_number": pilgrim.visa_number,
            "visa_type": "umrah",
            "issued_at": _iso(step.at),
            "valid_from": pilgrim.visa_valid_from.isoformat(),
            "valid_until": pilgrim.visa_valid_until.isoformat(),
            "max_stay_days": 90,
            "operator_code": pilgrim.operator_code,
            "surname": pilgrim.surname,
            "given_names": pilgrim.given_names,
            "passport_mrz": mrz,
        }
    flight = plan.flights[step.flight]
    port = flight.arrival_airport if step.kind == "entry" else flight.departure_airport
    return {
        "record_type": "border_entry" if step.kind == "entry" else "border_exit",
        "record_id": f"B-{port}-{step.seq:09d}",
        "port": port,
        "port_type": "air",
        "crossed_at": _iso(step.at),
        "flight_number": flight.designator,
        "visa_number": pilgrim.visa_number,
        "passport_mrz": mrz,
    }


def render_immigration(plan: SeasonPlan, steps: Sequence[PilgrimStep], batch_id: str, sent_at: datetime) -> bytes:
    """The passports authority's JSON batch of visa and border-crossing records."""
    document = {
        "authority": AUTHORITY,
        "batch_id": batch_id[:64],
        "sent_at": _iso(sent_at),
        "records": [_immigration_record(plan, step) for step in steps],
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


# -- hotels ----------------------------------------------------------------------------------------

_OTA_STATUS = {"reservation": "Commit", "check_in": "In-house", "check_out": "Checked-Out"}


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _ota_reservation(plan: SeasonPlan, step: PilgrimStep) -> str:
    pilgrim = plan.pilgrims[step.pilgrim]
    stay = pilgrim.stays[step.stay]
    hotel = plan.hotels[stay.hotel]
    when = _iso(step.at)
    times = f'CreateDateTime="{when}"' if step.kind == "reservation" else f'LastModifyDateTime="{when}"'
    nationality = ALPHA3_TO_ALPHA2.get(pilgrim.nationality, pilgrim.nationality)
    if not hotel.alpha2_nationality:
        nationality = pilgrim.nationality
    hotel_code = "" if step.malformed else f' HotelCode="{_attr(hotel.code)}"'
    return (
        f'<HotelReservation ResStatus="{_OTA_STATUS[step.kind]}" {times}>'
        f'<UniqueID Type="14" ID="{_attr(stay.reservation_id)}"/>'
        "<RoomStays><RoomStay>"
        '<RoomTypes><RoomType RoomTypeCode="QUAD"/></RoomTypes>'
        '<GuestCounts><GuestCount AgeQualifyingCode="10" Count="1"/></GuestCounts>'
        f'<TimeSpan Start="{stay.start.isoformat()}" End="{stay.end.isoformat()}"/>'
        f'<BasicPropertyInfo{hotel_code} HotelName="{_attr(hotel.name)}"/>'
        "</RoomStay></RoomStays>"
        "<ResGuests><ResGuest><Profiles><ProfileInfo><Profile>"
        f'<Customer BirthDate="{pilgrim.birth_date.isoformat()}">'
        f"<PersonName><GivenName>{escape(pilgrim.given_names)}</GivenName>"
        f"<Surname>{escape(pilgrim.surname)}</Surname></PersonName>"
        f'<Document DocType="2" DocID="{_attr(pilgrim.passport_number)}" DocHolderNationality="{nationality}"'
        f' ExpireDate="{pilgrim.passport_expiry.isoformat()}"/>'
        "</Customer></Profile></ProfileInfo></Profiles></ResGuest></ResGuests>"
        "<ResGlobalInfo><HotelReservationIDs>"
        f'<HotelReservationID ResID_Type="10" ResID_Value="HTL-{step.pilgrim + 1:07d}-{step.stay + 1}"/>'
        "</HotelReservationIDs></ResGlobalInfo>"
        "</HotelReservation>"
    )


def render_ota(plan: SeasonPlan, steps: Sequence[PilgrimStep], echo_token: str, sent_at: datetime) -> bytes:
    """An ``OTA_HotelResNotifRQ`` with one reservation per step (confirmation, check-in, check-out)."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<OTA_HotelResNotifRQ xmlns="{OTA_NAMESPACE}" EchoToken="{_attr(echo_token)}" '
        f'TimeStamp="{_iso(sent_at)}" Version="1.003">\n<HotelReservations>\n',
    ]
    parts.extend(_ota_reservation(plan, step) + "\n" for step in steps)
    parts.append("</HotelReservations>\n</OTA_HotelResNotifRQ>\n")
    return "".join(parts).encode()


# -- airlines --------------------------------------------------------------------------------------

_EDIFACT_SPECIAL = re.compile(r"([?:+'])")


def edifact_escape(value: str) -> str:
    """Data for an EDIFACT element: the release character ``?`` before ``?``, ``:``, ``+`` and ``'``."""
    return _EDIFACT_SPECIAL.sub(r"?\1", value)


def _yymmdd(day: date) -> str:
    return f"{day.year % 100:02d}{day.month:02d}{day.day:02d}"


def _flight_time(moment: datetime, offset_hours: int) -> str:
    """DTM format 201 (YYMMDDHHMM), local time at the airport."""
    return local_time(moment, offset_hours).strftime("%y%m%d%H%M")


def render_paxlst(plan: SeasonPlan, step: ManifestStep, control_ref: str, layout: str = "\n") -> bytes:
    """One PAXLST interchange (one functional group, one message) for a flight's passengers.

    ``layout`` goes after every segment terminator: ``"\\n"``, ``"\\r\\n"`` or ``""`` (one line).
    A corrupted passenger gets a birth date that does not exist (30 February).
    """
    flight = plan.flights[step.flight]
    carrier = flight.carrier
    prepared = step.at
    day, clock = prepared.strftime("%y%m%d"), prepared.strftime("%H%M")  # UTC: the connector reads UNB as UTC
    ref = f"M{flight.designator}"[:14]
    departure, arrival = flight.departure_airport, flight.arrival_airport
    message = [
        f"UNH+{ref}+PAXLST:D:05B:UN:IATA",
        "BGM+745",
        f"NAD+MS+++{carrier} APIS DESK",
        f"TDT+20+{flight.designator}+++{carrier}",
        f"LOC+125+{departure}",
        f"DTM+189:{_flight_time(flight.departure, flight.departure_offset_hours)}:201",
        f"LOC+87+{arrival}",
        f"DTM+232:{_flight_time(flight.arrival, flight.arrival_offset_hours)}:201",
    ]
    for index in flight.passengers:
        pilgrim = plan.pilgrims[index]
        names = [pilgrim.surname.upper(), *pilgrim.given_names.upper().split()]
        birth = _yymmdd(pilgrim.birth_date)
        if index in step.corrupt:
            birth = birth[:2] + "0230"
        message.extend(
            (
                "NAD+FL+++" + ":".join(edifact_escape(name) for name in names),
                f"ATT+2++{pilgrim.sex}",
                f"DTM+329:{birth}",
                f"LOC+178+{departure}",
                f"LOC+179+{arrival}",
                f"LOC+174+{pilgrim.nationality}",
                f"NAT+2+{pilgrim.nationality}",
                f"RFF+AVF:{plan.groups[pilgrim.group].booking_ref}",
                f"DOC+P:110:111+{edifact_escape(pilgrim.passport_number)}",
                f"DTM+36:{_yymmdd(pilgrim.passport_expiry)}",
                f"LOC+91+{pilgrim.nationality}",
            )
        )
    message.append(f"CNT+42:{len(flight.passengers)}")
    message.append(f"UNT+{len(message) + 1}+{ref}")
    segments = [
        f"UNB+UNOA:4+{carrier}+{API_RECIPIENT}+{day}:{clock}+{control_ref}++APIS",
        f"UNG+PAXLST+{carrier}+{API_RECIPIENT}+{day}:{clock}+1+UN+D:05B",
        *message,
        "UNE+1+1",
        f"UNZ+1+{control_ref}",
    ]
    return ("UNA:+.? '" + layout + "".join(segment + "'" + layout for segment in segments)).encode("ascii")


def render_flight_status(plan: SeasonPlan, carrier: str, steps: Sequence[StatusStep]) -> bytes:
    """An airline's flight-status JSON document: one update per step."""
    updates: list[dict[str, Any]] = []
    for step in steps:
        flight = plan.flights[step.flight]
        update: dict[str, Any] = {
            "flight_number": flight.designator,
            "scheduled_departure": _iso(flight.departure, flight.departure_offset_hours),
            "status": step.status,
            "departure_airport": flight.departure_airport,
            "arrival_airport": flight.arrival_airport,
        }
        if step.status == "departed":
            update["at"] = _iso(step.at, flight.departure_offset_hours)
            update["estimated_arrival"] = _iso(flight.arrival, flight.arrival_offset_hours)
        else:
            update["at"] = _iso(step.at, flight.arrival_offset_hours)
            update["actual_arrival"] = _iso(flight.actual_arrival, flight.arrival_offset_hours)
            late = int((flight.actual_arrival - flight.arrival).total_seconds() // 60)
            if late > 0:
                update["delay_minutes"] = late
        updates.append(update)
    return json.dumps({"carrier": carrier, "updates": updates}, separators=(",", ":")).encode()
