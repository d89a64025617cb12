"""Immigration connector: the passports authority's e-visas and border crossings.

Feed: JSON over HTTP push. One document is a batch of records, in the order the authority's
systems produced them; each record names its kind in ``record_type``::

    {"authority": "SA-JAWAZAT", "batch_id": "JWZ-20261203-0042", "sent_at": "2026-12-03T16:40:00+03:00",
     "records": [
       {"record_type": "visa_issued", "record_id": "V-2026-0000417", "visa_number": "6012345678",
        "visa_type": "umrah", "issued_at": "2026-11-20T10:00:00+03:00",
        "valid_from": "2026-11-20", "valid_until": "2027-02-18", "max_stay_days": 90,
        "operator_code": "OP-1001", "surname": "Rahmawati", "given_names": "Dewi Ayu",
        "passport_mrz": "P<IDNRAHMAWATI<<DEWI<AYU<<<<<<<<<<<<<<<<<<<<\\nC4821937<2IDN6803144F2907022<<<<<<<<<<<<<<<2"},
       {"record_type": "border_entry", "record_id": "B-JED-88120331", "port": "JED", "port_type": "air",
        "crossed_at": "2026-12-03T16:35:00+03:00", "flight_number": "SV817", "visa_number": "6012345678",
        "passport_mrz": "P<IDNRAHMAWATI<<...\\nC4821937<2IDN..."}]}

Top level: ``authority`` (who sends, required), ``batch_id`` and ``sent_at`` (optional, for the
authority's own tracing), ``records`` (1 to 100,000). Records:

* ``visa_issued``: ``record_id``, ``visa_number``, ``visa_type`` (``umrah``, ``hajj``,
  ``tourist``), ``issued_at``, ``valid_from``, ``valid_until`` (not before ``valid_from``),
  ``max_stay_days`` (1-365), ``operator_code`` (optional: the Saudi operator sponsoring an Umrah or
  Hajj visa), ``passport_mrz``; optional ``surname`` / ``given_names``, the full name as the
  authority holds it, used instead of the MRZ name (which is truncated to 39 characters).
* ``border_entry`` / ``border_exit``: ``record_id``, ``port`` (an IATA airport code such as
  ``JED`` or ``MED`` for ``port_type: air``; the authority's 3-5 character code for a ``land`` or
  ``sea`` port, e.g. ``HDT`` Al-Haditha, ``JDP`` Jeddah Islamic Port), ``port_type``, ``crossed_at``,
  ``flight_number`` (optional, air only), ``visa_number`` (optional), ``passport_mrz``.

Times carry their UTC offset (``+03:00`` is Saudi time); a time without one is refused, since it
could be any of several instants. ``passport_mrz`` is the passport's ICAO 9303 TD3 machine-readable
zone as read at the counter: two 44-character lines separated by ``\\n`` (or the 88 characters).
It is decoded with :func:`connectors.formats.mrz.parse_td3`; the two-digit years are placed
relative to the record's own date (``issued_at`` / ``crossed_at``), so replaying an old batch gives
the same people as ingesting it live. The nationality and document number of the MRZ make the
pilgrim key.

Rejections. The whole document is refused (``InputRejected``, location ``$``) when it is not JSON,
not an object, or has no usable ``authority`` / ``records`` list. A record is refused alone, with
location ``$.records[i]``, when its ``record_type`` is missing or unknown (field ``record_type``),
when a field is missing or invalid (the field's path, e.g. ``valid_until``), or when its MRZ does not
decode (field ``passport_mrz.<what>``, e.g. ``passport_mrz.document_number_check``, with the reason
from :class:`~connectors.formats.mrz.MrzError`); the other records of the batch still go through.

Events: ``visa_issued`` becomes ``VisaIssued``, ``border_entry`` ``BorderEntryRecorded``,
``border_exit`` ``BorderExitRecorded`` (schemas in ``schemas/avro/events/``); ``occurred_at`` is
``issued_at`` / ``crossed_at``.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from connectors.base import ConnectorConfig, JourneyRecord, Parsed, field_path, inline_refs, register
from connectors.formats.mrz import MrzError, PassportMrz, parse_td3
from connectors.rejections import InputRejected, Rejection

logger = logging.getLogger(__name__)


class Config(ConnectorConfig):
    type: Literal["immigration"] = "immigration"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    record_id: str = Field(min_length=1, max_length=64, description="The authority's reference for this record.")
    passport_mrz: str = Field(
        max_length=200, description="ICAO 9303 TD3 MRZ: two lines of 44 characters, joined by \\n."
    )


class VisaIssuedRecord(_Record):
    """An e-visa the authority issued."""

    record_type: Literal["visa_issued"]
    visa_number: str = Field(min_length=4, max_length=20, pattern=r"^[A-Z0-9]+$")
    visa_type: Literal["umrah", "hajj", "tourist"]
    issued_at: AwareDatetime
    valid_from: date
    valid_until: date
    max_stay_days: int = Field(ge=1, le=365)
    operator_code: str | None = Field(None, min_length=2, max_length=32, description="Sponsoring Saudi operator.")
    surname: str | None = Field(None, min_length=1, max_length=80, description="Full surname; default: the MRZ's.")
    given_names: str | None = Field(None, max_length=120, description="Full given names; default: the MRZ's.")

    @field_validator("valid_until")
    @classmethod
    def _not_before_valid_from(cls, value: date, info: ValidationInfo) -> date:
        valid_from = info.data.get("valid_from")
        if valid_from is not None and value < valid_from:
            raise ValueError(f"valid_until {value} is before valid_from {valid_from}")
        return value


class BorderCrossingRecord(_Record):
    """A pilgrim crossed the border at a port, inbound (entry) or outbound (exit)."""

    record_type: Literal["border_entry", "border_exit"]
    port_type: Literal["air", "land", "sea"]
    port: str = Field(pattern=r"^[A-Z0-9]{3,5}$", description="IATA airport code (air) or the authority's port code.")
    crossed_at: AwareDatetime
    flight_number: str | None = Field(None, pattern=r"^[A-Z0-9]{2}[A-Z]?[0-9]{1,4}[A-Z]?$")
    visa_number: str | None = Field(None, min_length=4, max_length=20, pattern=r"^[A-Z0-9]+$")

    @field_validator("port")
    @classmethod
    def _airports_are_iata(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("port_type") == "air" and not (len(value) == 3 and value.isalpha()):
            raise ValueError(f"an airport is a 3-letter IATA code, found {value!r}")
        return value

    @field_validator("flight_number")
    @classmethod
    def _flights_land_at_airports(cls, value: str | None, info: ValidationInfo) -> str | None:
        port_type = info.data.get("port_type")
        if value is not None and port_type in ("land", "sea"):
            raise ValueError(f"a flight number is only for an air port, this is a {port_type} port")
        return value


ImmigrationRecord = Annotated[VisaIssuedRecord | BorderCrossingRecord, Field(discriminator="record_type")]
_RECORD = TypeAdapter(ImmigrationRecord)
RECORD_TYPES = ("visa_issued", "border_entry", "border_exit")


class ImmigrationBatch(BaseModel):
    """The document the passports authority POSTs: who sends, and a batch of records."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    authority: str = Field(min_length=2, max_length=32, description="Sending authority, e.g. SA-JAWAZAT.")
    batch_id: str | None = Field(None, max_length=64, description="The authority's batch reference.")
    sent_at: AwareDatetime | None = None
    records: list[Any] = Field(min_length=1, max_length=100_000)


_EVENT_TYPES: dict[str, str] = {
    "visa_issued": "VisaIssued",
    "border_entry": "BorderEntryRecorded",
    "border_exit": "BorderExitRecorded",
}


@register(Config)
class ImmigrationConnector:
    agency: ClassVar[str] = "immigration"
    event_types: ClassVar[tuple[str, ...]] = ("VisaIssued", "BorderEntryRecorded", "BorderExitRecorded")

    def __init__(self, config: Config) -> None:
        self.config = config

    def body_schema(self) -> dict[str, Any]:
        """JSON schema of the request body, for the OpenAPI docs."""
        document = ImmigrationBatch.model_json_schema()
        document["properties"]["records"]["items"] = _RECORD.json_schema()
        return inline_refs(document)

    def parse(self, data: bytes, input_name: str) -> Parsed:
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, int too long
            raise InputRejected(Rejection(input_name, "$", None, f"not JSON: {exc}")) from exc
        if not isinstance(raw, dict):
            reason = f"expected a JSON object with authority and records, found {_json_type(raw)}"
            raise InputRejected(Rejection(input_name, "$", None, reason))
        try:
            batch = ImmigrationBatch.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputRejected(Rejection(input_name, "$", field_path(first["loc"]) or None, first["msg"])) from exc
        parsed = Parsed()
        for index, item in enumerate(batch.records):
            location = f"$.records[{index}]"
            try:
                parsed.records.append(_event(_RECORD.validate_python(item), location))
            except ValidationError as exc:
                field, reason = _explain(exc.errors(), item)
                parsed.reject(Rejection(input_name, location, field, reason), _raw(item))
            except MrzError as exc:
                parsed.reject(Rejection(input_name, location, f"passport_mrz.{exc.field}", exc.reason), _raw(item))
            except Exception as exc:  # a bug here must cost one record, not the batch
                logger.exception("unexpected error in %s %s", input_name, location)
                reason = f"internal error ({type(exc).__name__}); the record was kept in quarantine"
                parsed.reject(Rejection(input_name, location, None, reason), _raw(item))
        return parsed


def _event(record: VisaIssuedRecord | BorderCrossingRecord, location: str) -> JourneyRecord:
    occurred = record.issued_at if isinstance(record, VisaIssuedRecord) else record.crossed_at
    passport = parse_td3(record.passport_mrz, today=occurred.date())
    payload: dict[str, Any]
    if isinstance(record, VisaIssuedRecord):
        surname = record.surname.upper() if record.surname else passport.surname
        given_names = (record.given_names or "").upper() if record.surname else passport.given_names
        payload = {
            "record_id": record.record_id,
            "visa_number": record.visa_number,
            "visa_type": record.visa_type,
            "issued_at": record.issued_at,
            "issued_at_local": record.issued_at.isoformat(),
            "valid_from": record.valid_from,
            "valid_until": record.valid_until,
            "max_stay_days": record.max_stay_days,
            "operator_code": record.operator_code,
            "pilgrim": _person(passport, surname, given_names),
        }
    else:
        payload = {
            "record_id": record.record_id,
            "port": record.port,
            "port_type": record.port_type,
            "crossed_at": record.crossed_at,
            "crossed_at_local": record.crossed_at.isoformat(),
            "flight_number": record.flight_number,
            "visa_number": record.visa_number,
            "pilgrim": _person(passport, passport.surname, passport.given_names),
        }
    return JourneyRecord(
        event_type=_EVENT_TYPES[record.record_type],
        occurred_at=occurred,
        position=location,
        payload=payload,
        nationality=passport.nationality,
        passport_number=passport.document_number,
    )


def _person(passport: PassportMrz, surname: str, given_names: str) -> dict[str, Any]:
    return {
        "surname": surname,
        "given_names": given_names,
        "sex": passport.sex,
        "birth_date": passport.birth_date,
        "nationality": passport.nationality,
        "passport_number": passport.document_number,
        "passport_expiry": passport.expiry_date,
        "issuing_state": passport.issuing_state,
    }


def _explain(errors: list[ErrorDetails], item: Any) -> tuple[str | None, str]:
    """The field and reason of a record that failed validation, with the union's tag left out of paths."""
    first = errors[0]
    if first["type"] == "union_tag_not_found":
        return "record_type", f"missing record_type; expected one of {', '.join(RECORD_TYPES)}"
    if first["type"] == "union_tag_invalid":
        found = item.get("record_type") if isinstance(item, dict) else None
        return "record_type", f"unknown record_type {found!r}; expected one of {', '.join(RECORD_TYPES)}"
    if first["type"] == "model_attributes_type":
        return None, f"expected a JSON object, found {_json_type(item)}"
    paths = [field_path(e["loc"][1:]) for e in errors]  # loc[0] is the record_type tag
    messages = [e["msg"].removeprefix("Value error, ") for e in errors]
    reason = "; ".join(f"{path}: {msg}" if path else msg for path, msg in zip(paths, messages, strict=True))
    return paths[0] or None, reason


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _raw(item: Any) -> bytes:
    return json.dumps(item, ensure_ascii=False, default=str).encode()
