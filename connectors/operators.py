"""Operators connector: Umrah/Hajj operators (and their agents abroad) register pilgrims, form
groups and dispatch transport.

One connector takes four feeds; which one an input is, is read from its content.

**Registrations** (JSON, pushed over HTTP)::

    {"operator_code": "OP-1001", "agent_code": "AG-IDN-055",
     "registrations": [{"registration_id": "R-1", "group_id": "G-7", "season": "umrah",
                        "pilgrim": {"surname": "...", "given_names": "...", "sex": "F",
                                    "birth_date": "1974-08-12", "nationality": "IDN",
                                    "passport_number": "...", "passport_expiry": "2031-04-15"},
                        "planned_arrival": "2026-12-01", "planned_departure": "2026-12-15"}]}

Each registration becomes a ``PilgrimRegistered`` (position ``$.registrations[i]``).

**Bulk registrations** (CSV, as operators export them from spreadsheets; typically a file drop)::

    operator_code;agent_code;registration_id;season;surname;given_names;sex;birth_date;nationality;passport_number
    OP-1001;AG-IDN-055;R-1;umrah;Siregar;Ahmad Fauzi;M;1968-03-14;IDN;C4721938

A header row is required. Columns: operator_code, agent_code, registration_id, group_id, season,
surname, given_names, sex, birth_date, nationality, passport_number, passport_expiry,
issuing_state, planned_arrival, planned_departure, housing, mobile; of these agent_code,
group_id, given_names, passport_expiry, issuing_state, planned_arrival, planned_departure, housing
and mobile may be left out. Column order is free, header names are case-insensitive, other columns
are ignored, an empty cell means "not given". The text must be UTF-8 (a byte-order mark is
skipped); the delimiter is ``,`` or ``;`` (whichever the header uses more); LF or CRLF line ends.
Each row is validated exactly as a JSON registration is, so both give identical
``PilgrimRegistered`` events (position ``line N``, the physical line in the file, header = line 1).
A row is rejected alone (location ``line N``, field = the column, or none when the row as a whole
is unreadable: wrong number of fields, not UTF-8); a header lacking a required column or naming
one twice, or a header with no rows after it, rejects the whole file (location ``line 1``). The
file is read as a stream of lines, never as a list of rows, so 10⁵-row files cost only their events.

**Groups** (JSON)::

    {"operator_code": "OP-1001",
     "groups": [{"group_id": "G-IDN-0007", "season": "umrah", "capacity": 45,
                 "leader": {"surname": "...", "sex": "M", "birth_date": "1970-01-31",
                            "nationality": "IDN", "passport_number": "C1234567"},
                 "members": [{"nationality": "IDN", "passport_number": "C4721938", "registration_id": "R-1"}],
                 "housing": "MAK-0412", "arrival": "2026-12-03", "departure": "2026-12-17"}]}

Each group becomes one ``GroupRegistered`` (position ``$.groups[i]``, Kafka key
``group:<operator_code>:<group_id>``, no pilgrim) carrying ``member_count`` (the leader plus each
member, a person listed twice counted once) and ``over_capacity`` (more people than ``capacity``:
accepted, but flagged), then one ``GroupMembershipAssigned`` per person (pilgrim-keyed; role
``member`` at ``$.groups[i].members[j]``; role ``leader`` at the member entry that names the
leader, or at ``$.groups[i].leader`` when the leader is not among the members). A group whose own
fields are invalid is rejected with its members; a bad member entry, or one repeating a person, is
rejected alone.

**Transport dispatches** (JSON)::

    {"operator_code": "OP-1001",
     "dispatches": [{"dispatch_id": "D-88", "vehicle": "BUS-1234", "route": "JED-MAK",
                     "departed_at": "2026-12-03T14:30:00+03:00",
                     "passengers": [{"nationality": "IDN", "passport_number": "C4721938"}]}]}

Each passenger becomes a ``TransportDispatched`` (position ``$.dispatches[i].passengers[j]``,
``occurred_at`` = ``departed_at``, which must carry its UTC offset). A dispatch with invalid own
fields is rejected whole; a bad or repeated passenger alone.

A JSON document may hold several of ``registrations``, ``groups`` and ``dispatches`` (events come
in that order). The whole input is refused (``InputRejected``) when it is neither such a JSON
object (location ``$``) nor a CSV whose first line is a header naming ``passport_number``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from connectors.base import ConnectorConfig, JourneyRecord, Parsed, field_path, inline_refs, register
from connectors.formats.countries import normalize_document_number, normalize_nationality
from connectors.rejections import InputRejected, Rejection

logger = logging.getLogger(__name__)


class Config(ConnectorConfig):
    type: Literal["operators"] = "operators"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


Nationality = Annotated[
    str, AfterValidator(normalize_nationality), Field(description="ISO 3166 alpha-3 (alpha-2 accepted).")
]


def _has_document_number(value: str) -> str:
    normalize_document_number(value)  # raises ValueError when only spaces, '-' and '<' are left
    return value


PassportNumber = Annotated[
    str, Field(min_length=3, max_length=20, pattern=r"^[A-Za-z0-9 <-]+$"), AfterValidator(_has_document_number)
]


class PilgrimIdentity(_Strict):
    surname: str = Field(min_length=1, max_length=80)
    given_names: str = Field("", max_length=120)
    sex: Literal["M", "F", "X"]
    birth_date: date
    nationality: str = Field(description="ISO 3166 alpha-3 (alpha-2 accepted).")
    passport_number: PassportNumber
    passport_expiry: date | None = None
    issuing_state: str | None = None

    @field_validator("nationality", "issuing_state")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else normalize_nationality(value)

    @field_validator("birth_date")
    @classmethod
    def _born_in_the_past(cls, value: date) -> date:
        if value >= date.today():
            raise ValueError("birth date must be in the past")
        if value.year < 1900:
            raise ValueError("birth date before 1900")
        return value


class Registration(_Strict):
    """One pilgrim registration, as the operator's system sends it."""

    registration_id: str = Field(min_length=1, max_length=64)
    group_id: str | None = Field(None, max_length=64)
    season: Literal["umrah", "hajj"]
    pilgrim: PilgrimIdentity
    planned_arrival: date | None = None
    planned_departure: date | None = None
    housing: str | None = Field(None, max_length=32, description="Hotel code of the booked housing.")
    mobile: str | None = Field(None, max_length=32, pattern=r"^\+?[0-9 ]+$")
    registered_at: datetime | None = Field(None, description="When the operator approved it; default: now.")


OperatorCode = Annotated[str, Field(min_length=2, max_length=32, description="Licence code of the Saudi operator.")]
AgentCode = Annotated[str | None, Field(max_length=32, description="The external agent abroad, if any.")]


class CsvRegistration(Registration):
    """A CSV row: a registration plus the sender columns that JSON gives once per document."""

    operator_code: OperatorCode
    agent_code: AgentCode = None


class PersonRef(_Strict):
    """A person named by the join key only: nationality and passport number."""

    nationality: Nationality
    passport_number: PassportNumber


class GroupMember(PersonRef):
    registration_id: str | None = Field(None, min_length=1, max_length=64)


class Group(_Strict):
    """A group an operator formed; ``members`` are validated one by one (see :class:`GroupMember`)."""

    group_id: str = Field(min_length=1, max_length=64)
    season: Literal["umrah", "hajj"]
    leader: PilgrimIdentity | None = Field(None, description="The group leader, if any (counts as a member).")
    capacity: int = Field(ge=1, le=100_000, description="How many people the group may hold.")
    members: list[Any] = Field(max_length=100_000, description="The pilgrims placed in the group.")
    housing: str | None = Field(None, max_length=32, description="Hotel code of the group's housing.")
    arrival: date
    departure: date
    formed_at: AwareDatetime | None = Field(None, description="When the operator formed the group; default: now.")

    @field_validator("departure")
    @classmethod
    def _leaves_after_arriving(cls, value: date, info: ValidationInfo) -> date:
        arrival = info.data.get("arrival")
        if arrival is not None and value < arrival:
            raise ValueError(f"departure is before arrival {arrival.isoformat()}")
        return value


class Dispatch(_Strict):
    """One vehicle leaving with passengers; ``passengers`` are validated one by one (see :class:`PersonRef`)."""

    dispatch_id: str = Field(min_length=1, max_length=64)
    vehicle: str = Field(min_length=1, max_length=32, description="e.g. BUS-1234.")
    route: str = Field(
        pattern=r"^[A-Za-z0-9]{2,12}-[A-Za-z0-9]{2,12}$", description="FROM-TO place codes, e.g. JED-MAK."
    )
    departed_at: AwareDatetime = Field(description="ISO 8601 with UTC offset, e.g. 2026-12-03T14:30:00+03:00.")
    passengers: list[Any] = Field(min_length=1, max_length=10_000)


DOCUMENT_KEYS = ("registrations", "groups", "dispatches")


class OperatorsDocument(BaseModel):
    """The JSON document an operator POSTs: who sends, and one or more lists of records."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    operator_code: OperatorCode
    agent_code: AgentCode = None
    registrations: list[Any] | None = Field(None, min_length=1, max_length=100_000)
    groups: list[Any] | None = Field(None, min_length=1, max_length=10_000)
    dispatches: list[Any] | None = Field(None, min_length=1, max_length=10_000)


def _reason(errors: list[ErrorDetails]) -> str:
    return "; ".join(f"{field_path(e['loc'])}: {e['msg']}" if e["loc"] else e["msg"] for e in errors)


def _raw_json(item: Any) -> bytes:
    try:
        return json.dumps(item, default=str, ensure_ascii=False).encode()
    except (ValueError, TypeError, RecursionError):
        return repr(item)[:10_000].encode()


def _passport(value: str) -> str:
    """The passport number as events carry it: upper case, no spaces."""
    return value.replace(" ", "").upper()


def _identity(nationality: str, passport_number: str) -> tuple[str, str]:
    """The join key of a person, to find one listed twice (already-normalised nationality)."""
    return nationality, normalize_document_number(passport_number)


def _person(person: PilgrimIdentity) -> dict[str, Any]:
    return {
        "surname": person.surname.upper(),
        "given_names": person.given_names.upper(),
        "sex": person.sex,
        "birth_date": person.birth_date,
        "nationality": person.nationality,
        "passport_number": _passport(person.passport_number),
        "passport_expiry": person.passport_expiry,
        "issuing_state": person.issuing_state,
    }


def _aware(moment: datetime | None, default: datetime) -> datetime:
    if moment is None:
        return default
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- CSV ------------------------------------------------------------------------------------------

PILGRIM_COLUMNS = (
    "surname",
    "given_names",
    "sex",
    "birth_date",
    "nationality",
    "passport_number",
    "passport_expiry",
    "issuing_state",
)
CSV_COLUMNS = (
    "operator_code",
    "agent_code",
    "registration_id",
    "group_id",
    "season",
    *PILGRIM_COLUMNS,
    "planned_arrival",
    "planned_departure",
    "housing",
    "mobile",
)
"""The columns a registration CSV may have; any others are ignored."""
REQUIRED_COLUMNS = (
    "operator_code",
    "registration_id",
    "season",
    "surname",
    "sex",
    "birth_date",
    "nationality",
    "passport_number",
)
"""Columns the header must name; the others may be left out."""

_BOM = b"\xef\xbb\xbf"


class _Lines:
    """The lines of a byte buffer, decoded one by one, for ``csv.reader``.

    Counts lines and bytes so each row can be located and quarantined raw; a line that is not
    UTF-8 is decoded with replacement characters and remembered, so that its row alone is refused.
    """

    __slots__ = ("_lines", "bad", "number", "offset")

    def __init__(self, data: bytes, start: int) -> None:
        buffer = io.BytesIO(data)
        buffer.seek(start)
        self._lines: Iterator[bytes] = iter(buffer)
        self.number = 0
        self.offset = start
        self.bad: set[int] = set()

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = next(self._lines)
        self.number += 1
        self.offset += len(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad.add(self.number)
            return raw.decode("utf-8", "replace")


def _csv_column(loc: tuple[int | str, ...]) -> str | None:
    """The CSV column a validation error is about: ``("pilgrim", "birth_date")`` -> ``birth_date``."""
    for part in reversed(loc):
        if part in CSV_COLUMNS:
            return str(part)
    return None


_MAX_HEADER = 64 * 1024


def _csv_header(data: bytes) -> tuple[int, str] | str:
    """If ``data`` looks like a registration CSV: (offset after any BOM, header line). Otherwise why not."""
    start = len(_BOM) if data.startswith(_BOM) else 0
    end = data.find(b"\n", start, start + _MAX_HEADER)
    if end < 0 and len(data) - start > _MAX_HEADER:
        return f"its first line is longer than {_MAX_HEADER // 1024} KiB"
    try:
        line = data[start : len(data) if end < 0 else end + 1].decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"its first line is not UTF-8 text ({exc.reason} at byte {start + exc.start})"
    if "passport_number" not in line.lower():
        return "its first line is not a CSV header naming passport_number"
    return start, line


class _CsvFile:
    """Parses one registration CSV into ``PilgrimRegistered`` records (see the module docstring)."""

    def __init__(self, data: bytes, input_name: str, start: int, header: str) -> None:
        self.data = data
        self.input_name = input_name
        self.start = start
        self.delimiter = ";" if header.count(";") > header.count(",") else ","
        self.header_fields = 0
        self.columns = self._columns(header)

    def _reject_file(self, field: str | None, reason: str) -> InputRejected:
        return InputRejected(Rejection(self.input_name, "line 1", field, reason))

    def _columns(self, header: str) -> dict[str, int]:
        if "\r" in header.rstrip("\r\n"):
            raise self._reject_file(None, "lines end with a bare CR; save the file with LF or CRLF line ends")
        try:
            names = next(csv.reader([header], delimiter=self.delimiter))
        except (csv.Error, StopIteration) as exc:
            raise self._reject_file(None, f"header row unreadable: {exc}") from exc
        self.header_fields = len(names)
        columns: dict[str, int] = {}
        for index, name in enumerate(names):
            key = name.strip().lower()
            if key not in CSV_COLUMNS:
                continue
            if key in columns:
                raise self._reject_file(
                    key, f"column {key} appears twice in the header (columns {columns[key] + 1} and {index + 1})"
                )
            columns[key] = index
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise self._reject_file(
                ", ".join(missing),
                f"header lacks required column(s) {', '.join(missing)} (delimiter {self.delimiter!r})",
            )
        return columns

    def parse(self) -> Parsed:
        parsed = Parsed()
        lines = _Lines(self.data, self.start)
        next(lines)  # the header, already read
        reader = csv.reader(lines, delimiter=self.delimiter)
        header_fields = self.header_fields
        top = [(name, i) for name, i in self.columns.items() if name not in PILGRIM_COLUMNS]
        pilgrim = [(name, i) for name, i in self.columns.items() if name in PILGRIM_COLUMNS]
        now = datetime.now(UTC)
        rows = 0
        while True:
            first, begin = lines.number + 1, lines.offset
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                rows += 1
                self._reject(parsed, lines, first, begin, None, f"unreadable CSV: {exc}")
                continue
            if not any(row) or (len(row) == 1 and not row[0].strip()):
                continue  # blank line, or a spreadsheet's empty row
            rows += 1
            if lines.bad.intersection(range(first, lines.number + 1)):
                self._reject(parsed, lines, first, begin, None, "not UTF-8 text (save the file as CSV UTF-8)")
                continue
            if len(row) < header_fields or (len(row) > header_fields and any(v.strip() for v in row[header_fields:])):
                spans = f" (a quoted field runs over lines {first}-{lines.number})" if lines.number > first else ""
                reason = f"has {len(row)} fields where the header has {header_fields}{spans}"
                self._reject(parsed, lines, first, begin, None, reason)
                continue
            item: dict[str, Any] = {name: value for name, i in top if (value := row[i].strip())}
            item["pilgrim"] = {name: value for name, i in pilgrim if (value := row[i].strip())}
            try:
                registration = CsvRegistration.model_validate(item)
            except ValidationError as exc:
                errors = exc.errors()
                reason = "; ".join(f"{_csv_column(e['loc']) or field_path(e['loc'])}: {e['msg']}" for e in errors)
                self._reject(parsed, lines, first, begin, _csv_column(errors[0]["loc"]), reason)
                continue
            parsed.records.append(
                registration_record(
                    registration.operator_code, registration.agent_code, registration, f"line {first}", now
                )
            )
        if not rows:
            raise self._reject_file(None, "no registration rows after the header")
        return parsed

    def _reject(self, parsed: Parsed, lines: _Lines, first: int, begin: int, field: str | None, reason: str) -> None:
        parsed.reject(Rejection(self.input_name, f"line {first}", field, reason), self.data[begin : lines.offset])


# --- events ---------------------------------------------------------------------------------------


def registration_record(
    operator_code: str, agent_code: str | None, reg: Registration, location: str, now: datetime
) -> JourneyRecord:
    """The ``PilgrimRegistered`` of one registration, whether it came as JSON or as a CSV row."""
    person = reg.pilgrim
    return JourneyRecord(
        event_type="PilgrimRegistered",
        occurred_at=_aware(reg.registered_at, now),
        position=location,
        payload={
            "registration_id": reg.registration_id,
            "operator_code": operator_code,
            "agent_code": agent_code,
            "group_id": reg.group_id,
            "season": reg.season,
            "pilgrim": _person(person),
            "planned_arrival": reg.planned_arrival,
            "planned_departure": reg.planned_departure,
            "housing": reg.housing,
            "mobile": reg.mobile,
        },
        nationality=person.nationality,
        passport_number=person.passport_number,
    )


class _JsonDocument:
    """Turns one validated :class:`OperatorsDocument` into records and record rejections."""

    def __init__(self, document: OperatorsDocument, input_name: str) -> None:
        self.document = document
        self.input_name = input_name
        self.parsed = Parsed()
        self.now = datetime.now(UTC)

    def _validate(self, model: type[_Strict], item: Any, location: str) -> Any:
        """``model`` validated from ``item``, or None after rejecting it at ``location``."""
        try:
            return model.model_validate(item)
        except ValidationError as exc:
            errors = exc.errors()
            rejection = Rejection(self.input_name, location, field_path(errors[0]["loc"]) or None, _reason(errors))
            self.parsed.reject(rejection, _raw_json(item))
            return None

    def _reject(self, location: str, field: str | None, reason: str, item: Any) -> None:
        self.parsed.reject(Rejection(self.input_name, location, field, reason), _raw_json(item))

    def parse(self) -> Parsed:
        doc = self.document
        for index, item in enumerate(doc.registrations or ()):
            location = f"$.registrations[{index}]"
            registration = self._validate(Registration, item, location)
            if registration is not None:
                self.parsed.records.append(
                    registration_record(doc.operator_code, doc.agent_code, registration, location, self.now)
                )
        for index, item in enumerate(doc.groups or ()):
            self._group(f"$.groups[{index}]", item)
        for index, item in enumerate(doc.dispatches or ()):
            self._dispatch(f"$.dispatches[{index}]", item)
        return self.parsed

    def _group(self, location: str, item: Any) -> None:
        group: Group | None = self._validate(Group, item, location)
        if group is None:
            return
        operator, group_id = self.document.operator_code, group.group_id
        occurred = group.formed_at or self.now
        leader = group.leader
        leader_key = _identity(leader.nationality, leader.passport_number) if leader else None
        seen: dict[tuple[str, str], str] = {}
        memberships: list[JourneyRecord] = []
        listed = 0

        def membership(position: str, person: PersonRef | PilgrimIdentity, role: str, reg_id: str | None) -> None:
            memberships.append(
                JourneyRecord(
                    event_type="GroupMembershipAssigned",
                    occurred_at=occurred,
                    position=position,
                    payload={
                        "group_id": group_id,
                        "operator_code": operator,
                        "role": role,
                        "registration_id": reg_id,
                        "nationality": person.nationality,
                        "passport_number": _passport(person.passport_number),
                    },
                    nationality=person.nationality,
                    passport_number=person.passport_number,
                )
            )

        for index, raw in enumerate(group.members):
            position = f"{location}.members[{index}]"
            member: GroupMember | None = self._validate(GroupMember, raw, position)
            if member is None:
                listed += 1  # still a person on the operator's roster
                continue
            key = _identity(member.nationality, member.passport_number)
            if key in seen:
                self._reject(position, "passport_number", f"person already listed in this group at {seen[key]}", raw)
                continue
            seen[key] = position
            listed += 1
            membership(position, member, "leader" if key == leader_key else "member", member.registration_id)
        if leader is not None and leader_key not in seen:
            listed += 1
            membership(f"{location}.leader", leader, "leader", None)

        self.parsed.records.append(
            JourneyRecord(
                event_type="GroupRegistered",
                occurred_at=occurred,
                position=location,
                payload={
                    "group_id": group_id,
                    "operator_code": operator,
                    "agent_code": self.document.agent_code,
                    "season": group.season,
                    "leader": _person(leader) if leader else None,
                    "capacity": group.capacity,
                    "member_count": listed,
                    "over_capacity": listed > group.capacity,
                    "housing": group.housing,
                    "arrival": group.arrival,
                    "departure": group.departure,
                },
                partition_key=f"group:{operator}:{group_id}",
            )
        )
        self.parsed.records.extend(memberships)

    def _dispatch(self, location: str, item: Any) -> None:
        dispatch: Dispatch | None = self._validate(Dispatch, item, location)
        if dispatch is None:
            return
        origin, destination = dispatch.route.upper().split("-")
        seen: dict[tuple[str, str], str] = {}
        for index, raw in enumerate(dispatch.passengers):
            position = f"{location}.passengers[{index}]"
            passenger: PersonRef | None = self._validate(PersonRef, raw, position)
            if passenger is None:
                continue
            key = _identity(passenger.nationality, passenger.passport_number)
            if key in seen:
                self._reject(position, "passport_number", f"passenger already listed at {seen[key]}", raw)
                continue
            seen[key] = position
            self.parsed.records.append(
                JourneyRecord(
                    event_type="TransportDispatched",
                    occurred_at=dispatch.departed_at,
                    position=position,
                    payload={
                        "dispatch_id": dispatch.dispatch_id,
                        "operator_code": self.document.operator_code,
                        "vehicle": dispatch.vehicle,
                        "route": {"from": origin, "to": destination},
                        "departed_at": dispatch.departed_at,
                        "departed_at_local": dispatch.departed_at.isoformat(),
                        "nationality": passenger.nationality,
                        "passport_number": _passport(passenger.passport_number),
                    },
                    nationality=passenger.nationality,
                    passport_number=passenger.passport_number,
                )
            )


# --- the connector --------------------------------------------------------------------------------


def _starts_like_json(data: bytes) -> bool:
    head = data[:4096].lstrip(b" \t\r\n")
    if head.startswith(_BOM):
        head = head[len(_BOM) :].lstrip(b" \t\r\n")
    return head[:1] in (b"{", b"[")


@register(Config)
class OperatorsConnector:
    agency: ClassVar[str] = "operators"
    event_types: ClassVar[tuple[str, ...]] = (
        "PilgrimRegistered",
        "GroupRegistered",
        "GroupMembershipAssigned",
        "TransportDispatched",
    )

    def __init__(self, config: Config) -> None:
        self.config = config

    def body_schema(self) -> dict[str, Any]:
        """JSON schema of the JSON request bodies, for the OpenAPI docs.

        One object type whose ``properties`` cover every list, and an ``anyOf`` naming the
        document types: registrations, groups, transport dispatches. ``anyOf`` rather than
        ``oneOf`` because one document may carry several lists, which ``oneOf`` would refuse.
        """
        document = OperatorsDocument.model_json_schema()
        properties = document["properties"]
        group = Group.model_json_schema()
        group["properties"]["members"]["items"] = GroupMember.model_json_schema()
        dispatch = Dispatch.model_json_schema()
        dispatch["properties"]["passengers"]["items"] = PersonRef.model_json_schema()
        items = {"registrations": Registration.model_json_schema(), "groups": group, "dispatches": dispatch}
        titles = {
            "registrations": "Registration document: one PilgrimRegistered per registration.",
            "groups": "Group document: one GroupRegistered per group, one GroupMembershipAssigned per person.",
            "dispatches": "Transport dispatch document: one TransportDispatched per passenger.",
        }
        for key, schema in items.items():
            properties[key] = {
                "type": "array",
                "minItems": 1,
                "items": schema,
                "description": titles[key],
            }
        document["required"] = ["operator_code"]
        document["anyOf"] = [{"title": titles[key], "required": [key]} for key in DOCUMENT_KEYS]
        document["description"] = (
            "Pilgrim registrations, groups and transport dispatches of one operator; a document holds at "
            "least one of the three lists. Bulk registrations may also be sent as CSV (see the connector docs)."
        )
        return inline_refs(document)

    def parse(self, data: bytes, input_name: str) -> Parsed:
        if _starts_like_json(data):
            return self._parse_json(data, input_name)
        header = _csv_header(data)
        if isinstance(header, str):
            reason = f"not JSON (no '{{' or '[' at the start) and not a registration CSV: {header}"
            raise InputRejected(Rejection(input_name, "$", None, reason))
        start, line = header
        return _CsvFile(data, input_name, start, line).parse()

    def _parse_json(self, data: bytes, input_name: str) -> Parsed:
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise InputRejected(Rejection(input_name, "$", None, f"not JSON: {exc}")) from exc
        if isinstance(raw, dict) and not any(key in raw for key in DOCUMENT_KEYS):
            keys = ", ".join(list(raw)[:8]) or "none"
            reason = f"JSON object has none of the keys {', '.join(DOCUMENT_KEYS)} (its keys: {keys})"
            raise InputRejected(Rejection(input_name, "$", None, reason))
        try:
            document = OperatorsDocument.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputRejected(Rejection(input_name, "$", field_path(first["loc"]) or None, first["msg"])) from exc
        return _JsonDocument(document, input_name).parse()
