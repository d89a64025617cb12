"""A pilgrim season, generated: pure, seeded, no I/O.

Contract of :func:`plan_season`: the same ``(pilgrims, seed, anomalies, start, keyer secret)`` always
give an equal :class:`SeasonPlan` (no wall clock, no set iteration, one ``random.Random(seed)``).
The plan holds the people and things of the season (operators and their agents, groups, flights,
hotels, pilgrims) and every native record the agencies will send, as :data:`Step` values sorted by
``(at, seq)``; ``at`` is the record's ``occurred_at`` as the hub's connector will read it (UTC).
Rendering the steps into agency formats is :mod:`simulator.render`'s job, delivering them
:mod:`simulator.driver`'s, and deciding which alerts they must raise :mod:`simulator.truth`'s.

The season (all instants UTC, whole seconds; flight and manifest times whole minutes):

* Inbound flights depart on ``arrival_days`` days starting ``LEAD_DAYS`` after ``start``, from the
  origins in :data:`ORIGINS` (fixed UTC offsets only: the hub's airport table gives CAI Egyptian
  summer time, so CAI is left out), to JED or MED (UTC+3). A flight carries 150-400 pilgrims in
  groups of 20-45 of one nationality, operator and agent (smaller only when the whole season is).
* Per group: registration by its operator (JSON over HTTP, or a bulk CSV row for ~20% of groups),
  then per pilgrim a visa 18-72 h later, hotel reservations 1-30 h after registration.
* Per flight: manifest 1-5 h before departure, ``departed`` and ``arrived`` status, stay of 7-20
  days, then the return flight from the airport of the last hotel's city; a third of flights split
  the stay between Makkah and Madinah (check-out, then check-in at the other hotel 4-7 h later).
* Per pilgrim: border entry 1-3 h after the actual arrival, check-in 2-8 h after entry, final
  check-out 6-11 h and border exit 1.5-3 h before the return departure (so exit is 3-9.5 h after
  check-out), return manifest 1-4 h before departure.

Timing margins, kept so that the hub's alert deadlines are never ambiguous within an hour: every
resolving event is at least 8 h before its deadline, and a rejected (malformed) resolving event
leaves the next event that could resolve it at least 8 h after the deadline.

Anomalies (per pilgrim, at most one of the first four, drawn with the probabilities of
:class:`Anomalies`; ``malformed`` independently):

* ``no_show``: manifested inbound, never enters; nothing after the inbound manifest.
* ``no_housing``: enters, never checks in or out; still flies home and exits with the flight.
* ``overstay``: checks out of the last hotel, is not on the return manifest and never exits.
* ``checkout_no_exit``: checks out and is on the return manifest (a missed flight), never exits.
* ``malformed``: one of the pilgrim's records (chosen uniformly among those it has) is corrupted in
  its native format so that the connector rejects it: an impossible birth date (registration,
  PAXLST person), a wrong MRZ check digit (visa, entry, exit), a missing hotel code (OTA).
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Literal

from connectors.identity import PilgrimKeyer

logger = logging.getLogger(__name__)

JOURNEY_ANOMALIES: tuple[str, ...] = ("overstay", "no_housing", "no_show", "checkout_no_exit")
"""Anomalies of the journey itself; a pilgrim has at most one of them."""
ANOMALY_NAMES: tuple[str, ...] = (*JOURNEY_ANOMALIES, "malformed")

LEAD_DAYS = 7
"""Days between the season's start (first registrations) and the first inbound departure."""
SAUDI_OFFSET_HOURS = 3
GROUP_SIZE = (20, 45)
FLIGHT_SIZE = (150, 400)
STAY_DAYS = (7, 20)
CSV_GROUP_SHARE = 0.2
SPLIT_STAY_SHARE = 0.3
VISA_MAX_STAY_DAYS = 90
VISA_VALID_DAYS = 90


@dataclass(frozen=True)
class Anomalies:
    """Probability per pilgrim of each injected anomaly (the first four together at most 1)."""

    overstay: float = 0.02
    no_housing: float = 0.01
    no_show: float = 0.01
    checkout_no_exit: float = 0.01
    malformed: float = 0.005

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"anomaly {item.name} must be a probability between 0 and 1, got {value!r}")
        journey = sum(getattr(self, name) for name in JOURNEY_ANOMALIES)
        if journey > 1.0 + 1e-9:
            raise ValueError(f"{', '.join(JOURNEY_ANOMALIES)} exclude each other: their sum {journey:g} exceeds 1")

    @classmethod
    def none(cls) -> Anomalies:
        """A season without anomalies."""
        return cls(**dict.fromkeys(ANOMALY_NAMES, 0.0))

    @classmethod
    def parse(cls, text: str) -> Anomalies:
        """``"overstay=0.05,no_show=0.02"``: the named ones changed, the others at their defaults.

        ``""`` gives the defaults, ``"none"`` no anomalies at all. Raises ValueError naming the bad part.
        """
        text = text.strip()
        if text.lower() == "none":
            return cls.none()
        values: dict[str, float] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, sep, raw = part.partition("=")
            name = name.strip()
            if not sep:
                raise ValueError(f"expected name=probability, got {part!r}")
            if name not in ANOMALY_NAMES:
                raise ValueError(f"unknown anomaly {name!r}; known: {', '.join(ANOMALY_NAMES)}")
            if name in values:
                raise ValueError(f"anomaly {name} given twice")
            try:
                values[name] = float(raw)
            except ValueError:
                raise ValueError(f"{name}: {raw.strip()!r} is not a number") from None
        return cls(**values)


# -- the world -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """An origin airport of pilgrims with a fixed UTC offset (no summer time)."""

    airport: str
    country: str
    """ISO 3166 alpha-3 nationality of the pilgrims flying from it."""
    utc_offset_hours: int
    carriers: tuple[str, ...]
    block_minutes: int
    """Flight time to Jeddah or Madinah."""
    weight: int


ORIGINS: tuple[Origin, ...] = (
    Origin("CGK", "IDN", 7, ("GA", "SV"), 575, 26),
    Origin("KUL", "MYS", 8, ("MH", "SV"), 545, 10),
    Origin("ISB", "PAK", 5, ("PK", "SV"), 290, 8),
    Origin("LHE", "PAK", 5, ("PK", "SV"), 295, 10),
    Origin("KHI", "PAK", 5, ("PK", "SV"), 250, 10),
    Origin("DAC", "BGD", 6, ("BG", "SV"), 400, 10),
    Origin("ALG", "DZA", 1, ("AH", "SV"), 320, 8),
    Origin("LOS", "NGA", 1, ("SV",), 365, 5),
    Origin("KAN", "NGA", 1, ("SV",), 305, 5),
)
"""CAI (Africa/Cairo) is left out on purpose: Egypt keeps summer time, the simulator fixed offsets."""
ORIGIN_BY_AIRPORT: dict[str, Origin] = {origin.airport: origin for origin in ORIGINS}
CITY_AIRPORT: dict[str, str] = {"MAK": "JED", "MED": "MED"}
"""Makkah's pilgrims fly through Jeddah, Madinah's through Madinah."""
AIRPORT_CITY: dict[str, str] = {"JED": "MAK", "MED": "MED"}


@dataclass(frozen=True, slots=True)
class Operator:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Hotel:
    index: int
    code: str
    name: str
    city: Literal["MAK", "MED"]
    alpha2_nationality: bool
    """The hotel's system sends ISO alpha-2 nationalities (``ID``), as many do."""


@dataclass(frozen=True, slots=True)
class Flight:
    index: int
    designator: str
    carrier: str
    departure_airport: str
    arrival_airport: str
    departure_offset_hours: int
    arrival_offset_hours: int
    departure: datetime
    """Scheduled departure, UTC."""
    arrival: datetime
    """Scheduled arrival, UTC (what the manifest's DTM+232 says)."""
    actual_arrival: datetime
    direction: Literal["inbound", "outbound"]
    passengers: tuple[int, ...]
    """Pilgrim indices on its manifest, in manifest order."""


@dataclass(frozen=True, slots=True)
class Group:
    index: int
    group_id: str
    operator_code: str
    agent_code: str
    nationality: str
    channel: Literal["json", "csv"]
    """How the operator registers it: JSON over HTTP, or rows of a bulk CSV file."""
    members: tuple[int, ...]
    booking_ref: str
    inbound_flight: int
    outbound_flight: int
    """-1 until assigned; every group has one (some members may miss it)."""
    hotels: tuple[int, ...]
    """One hotel per city of the itinerary, in order."""
    arrival_day: date
    departure_day: date
    transfer_day: date | None
    """Planned, local (Saudi) dates; ``transfer_day`` when the stay is split between two cities."""


@dataclass(frozen=True, slots=True)
class Stay:
    hotel: int
    reservation_id: str
    start: date
    end: date
    """Planned, local dates (OTA ``TimeSpan``)."""


@dataclass(frozen=True, slots=True)
class Pilgrim:
    index: int
    pilgrim_key: str
    surname: str
    given_names: str
    sex: Literal["M", "F"]
    birth_date: date
    nationality: str
    passport_number: str
    passport_expiry: date
    group: int
    operator_code: str
    agent_code: str
    registration_id: str
    visa_number: str
    visa_valid_from: date
    visa_valid_until: date
    stays: tuple[Stay, ...]
    injected: tuple[str, ...]
    """Anomaly names in :data:`ANOMALY_NAMES` order."""
    malformed_record: str | None
    """Which record is corrupted: a :data:`PilgrimRecordKind` (``#n`` = stay n, 1-based) or ``manifest:inbound``
    / ``manifest:outbound``; None when the pilgrim is not ``malformed``."""


PilgrimRecordKind = Literal["registration", "visa", "reservation", "check_in", "check_out", "entry", "exit"]


@dataclass(frozen=True, slots=True)
class PilgrimStep:
    """One record about one pilgrim: registration row, immigration record, OTA reservation."""

    at: datetime
    seq: int
    kind: PilgrimRecordKind
    pilgrim: int
    stay: int = -1
    """Index into the pilgrim's stays (hotel records)."""
    flight: int = -1
    """Entry and exit: the flight it came in on or leaves by."""
    malformed: bool = False


@dataclass(frozen=True, slots=True)
class GroupStep:
    """An operator forms a group (the JSON ``groups`` document; members by registration id)."""

    at: datetime
    seq: int
    group: int


@dataclass(frozen=True, slots=True)
class ManifestStep:
    """The airline sends a flight's PAXLST manifest; ``at`` is its preparation time (UNB)."""

    at: datetime
    seq: int
    flight: int
    corrupt: frozenset[int]
    """Passengers (pilgrim indices) whose record in this manifest is malformed."""


@dataclass(frozen=True, slots=True)
class StatusStep:
    """The airline reports a flight departed or arrived."""

    at: datetime
    seq: int
    flight: int
    status: Literal["departed", "arrived"]


Step = PilgrimStep | GroupStep | ManifestStep | StatusStep


@dataclass(frozen=True)
class SeasonPlan:
    """Everything the simulator will send, and who it is about."""

    seed: int
    start: datetime
    anomalies: Anomalies
    arrival_days: int
    operators: tuple[Operator, ...]
    hotels: tuple[Hotel, ...]
    groups: tuple[Group, ...]
    flights: tuple[Flight, ...]
    pilgrims: tuple[Pilgrim, ...]
    steps: tuple[Step, ...]
    """Sorted by ``(at, seq)``."""

    @property
    def first_hour(self) -> datetime:
        """Start of the first simulated hour (``start`` rounded down to the hour)."""
        return self.start.replace(minute=0, second=0, microsecond=0)

    @property
    def end(self) -> datetime:
        """End of the last simulated hour with a delivery."""
        last = self.steps[-1].at if self.steps else self.start
        return last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)

    @property
    def final_clock(self) -> datetime:
        """Where the run leaves the clock: past every alert deadline (end of season + 100 days)."""
        return self.end + timedelta(days=100)


# -- names and documents ---------------------------------------------------------------------------

_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # nationality: (male given names, female given names, surnames), transliterated to A-Z
    "IDN": (
        ("Ahmad", "Muhammad", "Budi", "Agus", "Rizky", "Hendra", "Joko", "Dedi", "Fajar", "Yusuf", "Slamet", "Bambang"),
        ("Siti", "Dewi", "Nur", "Sri", "Rina", "Ayu", "Fitri", "Aisyah", "Lestari", "Wulan"),
        (
            "Siregar",
            "Santoso",
            "Rahmawati",
            "Nasution",
            "Lubis",
            "Wibowo",
            "Hasibuan",
            "Saputra",
            "Pratama",
            "Hidayat",
            "Kurniawan",
            "Setiawan",
            "Harahap",
            "Nugroho",
        ),
    ),
    "MYS": (
        ("Ahmad", "Mohd", "Hafiz", "Faizal", "Azman", "Razak", "Iskandar", "Shahrul"),
        ("Nurul", "Siti", "Aishah", "Farah", "Zulaikha", "Hani"),
        ("Abdullah", "Ismail", "Ibrahim", "Hassan", "Osman", "Rahman", "Yusof", "Salleh", "Hamid"),
    ),
    "PAK": (
        ("Muhammad", "Imran", "Bilal", "Usman", "Tariq", "Asif", "Kamran", "Faisal"),
        ("Ayesha", "Fatima", "Nasreen", "Sana", "Rabia", "Zainab"),
        ("Khan", "Chaudhry", "Malik", "Qureshi", "Butt", "Sheikh", "Siddiqui", "Raja", "Awan", "Abbasi"),
    ),
    "BGD": (
        ("Abdul", "Mohammad", "Rafiq", "Kamal", "Jamal", "Shafiq", "Habib"),
        ("Nasrin", "Rokeya", "Shahana", "Farzana", "Taslima", "Sultana"),
        ("Rahman", "Hossain", "Islam", "Ahmed", "Uddin", "Chowdhury", "Sarkar", "Miah", "Karim"),
    ),
    "DZA": (
        ("Mohamed", "Karim", "Yacine", "Sofiane", "Rachid", "Larbi", "Nabil"),
        ("Amina", "Samira", "Nadia", "Khadidja", "Souad", "Lynda"),
        ("Benali", "Bouzid", "Haddad", "Belkacem", "Ben M'Hidi", "Ait Ahmed", "Cherif", "Mansouri", "Boudiaf"),
    ),
    "NGA": (
        ("Abubakar", "Musa", "Ibrahim", "Sani", "Aliyu", "Yusuf", "Bello"),
        ("Aisha", "Hauwa", "Zainab", "Amina", "Fatima", "Maryam"),
        ("Bello", "Abdullahi", "Mohammed", "Dan-Azumi", "Yakubu", "Garba", "Usman", "Lawal", "Sule"),
    ),
}

_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_HOTEL_AREAS: dict[str, tuple[str, ...]] = {
    "MAK": ("Ajyad", "Misfalah", "Aziziyah", "Jarwal", "Kudai", "Shisha", "Ibrahim Al-Khalil"),
    "MED": ("Markaziya", "Quba", "Bab Al-Salam", "Sultana", "Qurban"),
}


def _passport_number(rng: random.Random, nationality: str) -> str:
    if nationality == "IDN":
        return rng.choice("ABCX") + f"{rng.randrange(10**7):07d}"
    if nationality in ("MYS", "NGA"):
        return "A" + f"{rng.randrange(10**8):08d}"
    if nationality in ("PAK", "BGD"):
        return rng.choice(_LETTERS) + rng.choice(_LETTERS) + f"{rng.randrange(10**7):07d}"
    return f"{rng.randrange(10**8, 10**9):09d}"


def _booking_ref(rng: random.Random) -> str:
    return "".join(rng.choice(_LETTERS + "23456789") for _ in range(6))


def _seconds(rng: random.Random, low_h: float, high_h: float) -> timedelta:
    """A random whole-second duration between ``low_h`` and ``high_h`` hours."""
    return timedelta(seconds=rng.randint(round(low_h * 3600), round(high_h * 3600)))


def _minutes(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(minutes=rng.randint(low, high))


def saudi_date(moment: datetime) -> date:
    """The local (UTC+3) calendar date of a UTC instant."""
    return (moment + timedelta(hours=SAUDI_OFFSET_HOURS)).date()


def local_time(moment: datetime, offset_hours: int) -> datetime:
    """A UTC instant as local time at a fixed offset (aware)."""
    return moment.astimezone(timezone(timedelta(hours=offset_hours)))


def group_sizes(rng: random.Random, total: int) -> list[int]:
    """Split ``total`` pilgrims into groups of 20-45 (one smaller group when ``total`` < 20)."""
    low, high = GROUP_SIZE
    count = max(1, math.ceil(total / high))
    if total < low * count:
        return [total]
    sizes = [low] * count
    extra = total - low * count
    while extra:
        index = rng.randrange(count)
        if sizes[index] < high:
            sizes[index] += 1
            extra -= 1
    return sizes


def flight_sizes(rng: random.Random, total: int) -> list[int]:
    """Split ``total`` pilgrims into flights of 150-400 (one smaller flight when ``total`` < 150)."""
    low, high = FLIGHT_SIZE
    sizes: list[int] = []
    remaining = total
    while remaining:
        size = remaining if remaining <= high else rng.randint(low, min(high, remaining - low))
        sizes.append(size)
        remaining -= size
    return sizes


# -- the plan --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _PilgrimDraft:
    """A pilgrim's fields and timeline while the plan is built (UTC instants; None = does not happen)."""

    index: int
    group: int
    nationality: str
    surname: str
    given_names: str
    sex: Literal["M", "F"]
    birth_date: date
    passport_number: str
    passport_expiry: date
    anomaly: str | None
    malformed: bool
    registered_at: datetime
    visa_issued_at: datetime
    reserved_at: datetime
    entry_at: datetime | None = None
    check_ins: tuple[datetime | None, ...] = ()
    check_outs: tuple[datetime | None, ...] = ()
    exit_at: datetime | None = None
    on_outbound_manifest: bool = False


class _Builder:
    def __init__(self, rng: random.Random, start: datetime, anomalies: Anomalies, keyer: PilgrimKeyer) -> None:
        self.rng = rng
        self.start = start
        self.anomalies = anomalies
        self.keyer = keyer
        self.seq = 0
        self.steps: list[Step] = []
        self.flight_numbers: dict[tuple[str, date, int], int] = {}
        self.passports: set[tuple[str, str]] = set()
        self.registration_window: timedelta | None = None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def flight_designator(self, carrier: str, local_day: date, parity: int) -> str:
        """A flight number unused by ``carrier`` on that local date: odd inbound, even return."""
        key = (carrier, local_day, parity)
        number = self.flight_numbers.get(key, 3002 - parity)
        self.flight_numbers[key] = number + 2
        if number > 9999:
            raise ValueError(f"more than 3,500 flights of {carrier} on {local_day}: reduce the season")
        return f"{carrier}{number}"

    def unique_passport(self, nationality: str) -> str:
        while True:
            number = _passport_number(self.rng, nationality)
            if (nationality, number) not in self.passports:
                self.passports.add((nationality, number))
                return number

    def build(self, pilgrim_count: int, seed: int, arrival_days: int | None = None) -> SeasonPlan:
        rng = self.rng
        if arrival_days is None:
            arrival_days = min(60, max(2, math.ceil(pilgrim_count / 1000)))
        operators = tuple(
            Operator(f"OP-{1001 + i}", f"Umrah Operator {1001 + i}")
            for i in range(max(2, math.ceil(pilgrim_count / 1500)))
        )
        hotels: list[Hotel] = []
        for city, count in (
            ("MAK", max(2, math.ceil(pilgrim_count / 400))),
            ("MED", max(2, math.ceil(pilgrim_count / 600))),
        ):
            areas = _HOTEL_AREAS[city]
            for i in range(count):
                index = len(hotels)
                hotels.append(
                    Hotel(
                        index=index,
                        code=f"{city}-{i + 1:04d}",
                        name=f"Example Hotel {areas[i % len(areas)]} {i // len(areas) + 1}",
                        city="MAK" if city == "MAK" else "MED",
                        alpha2_nationality=index % 2 == 1,
                    )
                )
        by_city = {city: [h for h in hotels if h.city == city] for city in ("MAK", "MED")}

        drafts: list[_PilgrimDraft] = []
        groups: list[Group] = []
        flights: list[Flight] = []
        manifest_corrupt: dict[int, set[int]] = {}
        first_day = (self.start + timedelta(days=LEAD_DAYS)).date()
        origin_weights = [o.weight for o in ORIGINS]

        for size in flight_sizes(rng, pilgrim_count):
            origin = rng.choices(ORIGINS, weights=origin_weights)[0]
            carrier = rng.choice(origin.carriers)
            arrival_airport = "JED" if rng.random() < 0.7 else "MED"
            local_day = first_day + timedelta(days=rng.randrange(arrival_days))
            local_departure = datetime.combine(local_day, datetime.min.time(), UTC) + timedelta(
                minutes=5 * rng.randrange(24 * 12)
            )
            departure = local_departure - timedelta(hours=origin.utc_offset_hours)
            local_day = (departure + timedelta(hours=origin.utc_offset_hours)).date()
            arrival = departure + timedelta(minutes=origin.block_minutes)
            actual_arrival = arrival + _minutes(rng, -10, 25)
            stay_days = rng.randint(*STAY_DAYS)
            split = rng.random() < SPLIT_STAY_SHARE
            first_city = AIRPORT_CITY[arrival_airport]
            cities = (first_city, "MED" if first_city == "MAK" else "MAK") if split else (first_city,)
            return_airport = CITY_AIRPORT[cities[-1]]
            return_departure = arrival + timedelta(days=stay_days) + timedelta(minutes=5 * rng.randint(96, 240))
            transfer = None
            if split:
                earliest, latest = arrival + timedelta(hours=36), return_departure - timedelta(hours=83)
                transfer = min(max(arrival + (return_departure - arrival) * rng.uniform(0.35, 0.55), earliest), latest)
                transfer = transfer.replace(microsecond=0)

            inbound_index = len(flights)
            inbound_designator = self.flight_designator(carrier, local_day, 1)
            return_designator = self.flight_designator(
                carrier, (return_departure + timedelta(hours=SAUDI_OFFSET_HOURS)).date(), 0
            )
            flight_pilgrims: list[int] = []
            flight_groups: list[int] = []
            for group_size in group_sizes(rng, size):
                group_index = len(groups)
                operator = rng.choice(operators)
                operator_number = int(operator.code[3:])
                agent_number = (operator_number * 37 + sum(map(ord, origin.country))) % 900 + 100
                agent_code = f"AG-{origin.country}-{agent_number:03d}"
                channel: Literal["json", "csv"] = "csv" if rng.random() < CSV_GROUP_SHARE else "json"
                group_hotels = tuple(rng.choice(by_city[city]).index for city in cities)
                members = tuple(range(len(drafts), len(drafts) + group_size))
                earliest = self.start
                if self.registration_window is not None:
                    earliest = max(earliest, departure - timedelta(days=5) - self.registration_window)
                registered_base = earliest + _seconds(
                    rng, 0, max(0.0, (departure - timedelta(days=5) - earliest).total_seconds() / 3600)
                )
                for offset, index in enumerate(members):
                    drafts.append(
                        self.draft_pilgrim(index, group_index, origin.country, registered_base, offset, departure)
                    )
                groups.append(
                    Group(
                        index=group_index,
                        group_id=f"G-{origin.country}-{group_index + 1:05d}",
                        operator_code=operator.code,
                        agent_code=agent_code,
                        nationality=origin.country,
                        channel=channel,
                        members=members,
                        booking_ref=_booking_ref(rng),
                        inbound_flight=inbound_index,
                        outbound_flight=inbound_index + 1,
                        hotels=group_hotels,
                        arrival_day=saudi_date(arrival),
                        departure_day=saudi_date(return_departure),
                        transfer_day=saudi_date(transfer) if transfer is not None else None,
                    )
                )
                flight_groups.append(group_index)
                flight_pilgrims.extend(members)

            # the pilgrims' days in the kingdom
            for index in flight_pilgrims:
                draft = drafts[index]
                if draft.anomaly == "no_show":
                    continue
                draft.entry_at = actual_arrival + _seconds(rng, 1, 3)
                if draft.anomaly != "no_housing":
                    check_in = draft.entry_at + _seconds(rng, 2, 8)
                    final_check_out = return_departure - _seconds(rng, 6, 11)
                    if transfer is not None:
                        moved_out = transfer + _seconds(rng, 0, 1)
                        draft.check_ins = (check_in, moved_out + _seconds(rng, 4, 7))
                        draft.check_outs = (moved_out, final_check_out)
                    else:
                        draft.check_ins = (check_in,)
                        draft.check_outs = (final_check_out,)
                if draft.anomaly not in ("overstay",):
                    draft.on_outbound_manifest = True
                if draft.anomaly not in ("overstay", "checkout_no_exit"):
                    draft.exit_at = return_departure - _seconds(rng, 1.5, 3)

            inbound = Flight(
                index=inbound_index,
                designator=inbound_designator,
                carrier=carrier,
                departure_airport=origin.airport,
                arrival_airport=arrival_airport,
                departure_offset_hours=origin.utc_offset_hours,
                arrival_offset_hours=SAUDI_OFFSET_HOURS,
                departure=departure,
                arrival=arrival,
                actual_arrival=actual_arrival,
                direction="inbound",
                passengers=tuple(flight_pilgrims),
            )
            return_arrival = return_departure + timedelta(minutes=origin.block_minutes)
            outbound = Flight(
                index=inbound_index + 1,
                designator=return_designator,
                carrier=carrier,
                departure_airport=return_airport,
                arrival_airport=origin.airport,
                departure_offset_hours=SAUDI_OFFSET_HOURS,
                arrival_offset_hours=origin.utc_offset_hours,
                departure=return_departure,
                arrival=return_arrival,
                actual_arrival=return_arrival + _minutes(rng, -10, 25),
                direction="outbound",
                passengers=tuple(i for i in flight_pilgrims if drafts[i].on_outbound_manifest),
            )
            flights.extend((inbound, outbound))
            for flight in (inbound, outbound):
                if not flight.passengers:
                    continue
                prepared = flight.departure - _minutes(rng, 60, 300 if flight.direction == "inbound" else 240)
                manifest_corrupt[flight.index] = set()
                self.steps.append(ManifestStep(prepared, self.next_seq(), flight.index, frozenset()))
                departed = flight.departure + _minutes(rng, 5, 20)
                self.steps.append(StatusStep(departed, self.next_seq(), flight.index, "departed"))
                self.steps.append(StatusStep(flight.actual_arrival, self.next_seq(), flight.index, "arrived"))
            for group_index in flight_groups:
                last = drafts[groups[group_index].members[-1]].registered_at
                self.steps.append(GroupStep(last + timedelta(seconds=30), self.next_seq(), group_index))

        pilgrims = [self.finish_pilgrim(d, groups, flights, hotels, manifest_corrupt) for d in drafts]
        # manifests learn which of their passengers were corrupted
        self.steps = [
            ManifestStep(s.at, s.seq, s.flight, frozenset(manifest_corrupt[s.flight]))
            if isinstance(s, ManifestStep)
            else s
            for s in self.steps
        ]
        self.steps.sort(key=lambda s: (s.at, s.seq))
        return SeasonPlan(
            seed=seed,
            start=self.start,
            anomalies=self.anomalies,
            arrival_days=arrival_days,
            operators=operators,
            hotels=tuple(hotels),
            groups=tuple(groups),
            flights=tuple(flights),
            pilgrims=tuple(pilgrims),
            steps=tuple(self.steps),
        )

    def draft_pilgrim(
        self, index: int, group: int, nationality: str, registered_base: datetime, offset: int, departure: datetime
    ) -> _PilgrimDraft:
        rng = self.rng
        male, female, surnames = _NAMES[nationality]
        sex: Literal["M", "F"] = "M" if rng.random() < 0.5 else "F"
        pool = male if sex == "M" else female
        given = rng.choice(pool) if rng.random() < 0.5 else f"{rng.choice(pool)} {rng.choice(male)}"
        birth_date = date(rng.randint(1946, 2004), rng.randint(1, 12), rng.randint(1, 28))
        anomaly: str | None = None
        draw = rng.random()
        cumulative = 0.0
        for name in JOURNEY_ANOMALIES:
            cumulative += getattr(self.anomalies, name)
            if draw < cumulative:
                anomaly = name
                break
        malformed = rng.random() < self.anomalies.malformed
        registered_at = registered_base + timedelta(seconds=offset * rng.randint(20, 90))
        visa_issued_at = registered_at + _seconds(rng, 18, 72)
        reserved_at = registered_at + _seconds(rng, 1, 30)
        assert max(visa_issued_at, reserved_at) < departure
        return _PilgrimDraft(
            index=index,
            group=group,
            nationality=nationality,
            surname=rng.choice(surnames),
            given_names=given,
            sex=sex,
            birth_date=birth_date,
            passport_number=self.unique_passport(nationality),
            passport_expiry=date(self.start.year + rng.randint(2, 9), rng.randint(1, 12), rng.randint(1, 28)),
            anomaly=anomaly,
            malformed=malformed,
            registered_at=registered_at,
            visa_issued_at=visa_issued_at,
            reserved_at=reserved_at,
        )

    def finish_pilgrim(
        self,
        draft: _PilgrimDraft,
        groups: list[Group],
        flights: list[Flight],
        hotels: list[Hotel],
        manifest_corrupt: dict[int, set[int]],
    ) -> Pilgrim:
        rng = self.rng
        group = groups[draft.group]
        inbound, outbound = flights[group.inbound_flight], flights[group.outbound_flight]
        index = draft.index
        visa_valid_from = saudi_date(draft.visa_issued_at)
        days = (group.arrival_day, *((group.transfer_day,) if group.transfer_day else ()), group.departure_day)
        stays = [
            Stay(hotel, f"RES-{hotels[hotel].code}-{index + 1:07d}-{number + 1}", days[number], days[number + 1])
            for number, hotel in enumerate(group.hotels)
        ]

        # (kind, at, stay, flight): the pilgrim's own records, in time order of the plan
        records: list[tuple[PilgrimRecordKind, datetime, int, int]] = [
            ("registration", draft.registered_at, -1, -1),
            ("visa", draft.visa_issued_at, -1, -1),
        ]
        records.extend(("reservation", draft.reserved_at, n, -1) for n in range(len(stays)))
        if draft.entry_at is not None:
            records.append(("entry", draft.entry_at, -1, inbound.index))
        for n, moment in enumerate(draft.check_ins):
            if moment is not None:
                records.append(("check_in", moment, n, -1))
        for n, moment in enumerate(draft.check_outs):
            if moment is not None:
                records.append(("check_out", moment, n, -1))
        if draft.exit_at is not None:
            records.append(("exit", draft.exit_at, -1, outbound.index))

        malformed_record: str | None = None
        corrupt_at: int | None = None
        if draft.malformed:
            choices: list[str] = [f"{kind}#{stay + 1}" if stay >= 0 else kind for kind, _, stay, _ in records]
            choices.append("manifest:inbound")
            if draft.on_outbound_manifest:
                choices.append("manifest:outbound")
            malformed_record = rng.choice(choices)
            if malformed_record.startswith("manifest:"):
                flight = inbound if malformed_record == "manifest:inbound" else outbound
                manifest_corrupt[flight.index].add(index)
            else:
                corrupt_at = choices.index(malformed_record)
        for position, (kind, at, stay, flight_index) in enumerate(records):
            self.steps.append(PilgrimStep(at, self.next_seq(), kind, index, stay, flight_index, position == corrupt_at))

        injected = tuple(
            name for name in ANOMALY_NAMES if name == draft.anomaly or (name == "malformed" and draft.malformed)
        )
        return Pilgrim(
            index=index,
            pilgrim_key=self.keyer.key(draft.nationality, draft.passport_number),
            surname=draft.surname,
            given_names=draft.given_names,
            sex=draft.sex,
            birth_date=draft.birth_date,
            nationality=draft.nationality,
            passport_number=draft.passport_number,
            passport_expiry=draft.passport_expiry,
            group=draft.group,
            operator_code=group.operator_code,
            agent_code=group.agent_code,
            registration_id=f"R-{self.start.year}-{index + 1:07d}",
            visa_number=f"60{index + 1:08d}",
            visa_valid_from=visa_valid_from,
            visa_valid_until=visa_valid_from + timedelta(days=VISA_VALID_DAYS),
            stays=tuple(stays),
            injected=injected,
            malformed_record=malformed_record,
        )


def plan_season(
    pilgrims: int,
    seed: int,
    anomalies: Anomalies,
    start: datetime,
    keyer: PilgrimKeyer,
    *,
    arrival_days: int | None = None,
    registration_window_days: float | None = None,
) -> SeasonPlan:
    """Generate a season of ``pilgrims`` pilgrims from ``start`` (an aware datetime); see the module docstring.

    ``arrival_days`` spreads the inbound flights over that many days (default: one day per 1,000
    pilgrims, 2 to 60); ``registration_window_days`` registers each group at most that many days
    before the 5 days ahead of its departure (default: any time from ``start``). A long season with
    a short window is a steady state: as many journeys begin as end each day (the soak's load)."""
    if arrival_days is not None and arrival_days < 1:
        raise ValueError("arrival_days must be >= 1")
    if registration_window_days is not None and registration_window_days < 0:
        raise ValueError("registration_window_days must be >= 0")
    if pilgrims < 1:
        raise ValueError("a season needs at least one pilgrim")
    if pilgrims >= 10**8:
        raise ValueError("at most 99,999,999 pilgrims (visa and registration numbers have 8 digits)")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be an aware datetime (e.g. 2026-12-01T00:00:00+00:00)")
    start = start.astimezone(UTC).replace(microsecond=0)
    builder = _Builder(random.Random(seed), start, anomalies, keyer)
    builder.registration_window = (
        timedelta(days=registration_window_days) if registration_window_days is not None else None
    )
    return builder.build(pilgrims, seed, arrival_days)
