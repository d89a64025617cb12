"""Operators connector: Umrah/Hajj operators (and their agents abroad) register pilgrims.

Feed: a JSON registration document, pushed over HTTP::

    {"operator_code": "OP-1001", "agent_code": "AG-IDN-055",
     "registrations": [{"registration_id": "R-1", "season": "umrah",
                        "pilgrim": {"surname": "...", "given_names": "...", "sex": "F",
                                    "birth_date": "1974-08-12", "nationality": "IDN",
                                    "passport_number": "...", "passport_expiry": "2031-04-15"},
                        "planned_arrival": "2026-12-01", "planned_departure": "2026-12-15"}]}

A document whose top level is unusable (not JSON, no operator code, no registrations list) is
rejected whole; a registration that fails validation is rejected alone (its JSON path and field
are named) and the others still go through. Each registration becomes a ``PilgrimRegistered``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.base import ConnectorConfig, JourneyRecord, Parsed, register
from connectors.formats.countries import normalize_nationality
from connectors.rejections import InputRejected, Rejection


class Config(ConnectorConfig):
    type: Literal["operators"] = "operators"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class PilgrimIdentity(_Strict):
    surname: str = Field(min_length=1, max_length=80)
    given_names: str = Field("", max_length=120)
    sex: Literal["M", "F", "X"]
    birth_date: date
    nationality: str = Field(description="ISO 3166 alpha-3 (alpha-2 accepted).")
    passport_number: str = Field(min_length=3, max_length=20, pattern=r"^[A-Za-z0-9 <-]+$")
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


class RegistrationDocument(BaseModel):
    """The document an operator POSTs: who sends, and one or more registrations."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    operator_code: str = Field(min_length=2, max_length=32)
    agent_code: str | None = Field(None, max_length=32)
    registrations: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace local ``$ref``s by their definitions, so the schema can be embedded anywhere."""
    defs: dict[str, Any] = {}

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            defs.update(node.get("$defs", {}))
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    collect(schema)
    result: dict[str, Any] = walk(schema)
    return result


def field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


@register(Config)
class OperatorsConnector:
    agency: ClassVar[str] = "operators"
    event_types: ClassVar[tuple[str, ...]] = ("PilgrimRegistered",)

    def __init__(self, config: Config) -> None:
        self.config = config

    def body_schema(self) -> dict[str, Any]:
        """JSON schema of the request body, for the OpenAPI docs."""
        document = RegistrationDocument.model_json_schema()
        document["properties"]["registrations"]["items"] = Registration.model_json_schema()
        return inline_refs(document)

    def parse(self, data: bytes, input_name: str) -> Parsed:
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputRejected(Rejection(input_name, "$", None, f"not JSON: {exc}")) from exc
        try:
            document = RegistrationDocument.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputRejected(Rejection(input_name, "$", field_path(first["loc"]) or None, first["msg"])) from exc
        parsed = Parsed()
        for index, item in enumerate(document.registrations):
            location = f"$.registrations[{index}]"
            try:
                registration = Registration.model_validate(item)
            except ValidationError as exc:
                errors = exc.errors()
                reason = "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in errors)
                rejection = Rejection(input_name, location, field_path(errors[0]["loc"]), reason)
                parsed.reject(rejection, json.dumps(item, default=str).encode())
                continue
            parsed.records.append(self._record(document, registration, location))
        return parsed

    def _record(self, document: RegistrationDocument, reg: Registration, location: str) -> JourneyRecord:
        person = reg.pilgrim
        occurred = reg.registered_at or datetime.now(UTC)
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=UTC)
        return JourneyRecord(
            event_type="PilgrimRegistered",
            occurred_at=occurred,
            position=location,
            payload={
                "registration_id": reg.registration_id,
                "operator_code": document.operator_code,
                "agent_code": document.agent_code,
                "group_id": reg.group_id,
                "season": reg.season,
                "pilgrim": {
                    "surname": person.surname.upper(),
                    "given_names": person.given_names.upper(),
                    "sex": person.sex,
                    "birth_date": person.birth_date,
                    "nationality": person.nationality,
                    "passport_number": person.passport_number.replace(" ", "").upper(),
                    "passport_expiry": person.passport_expiry,
                    "issuing_state": person.issuing_state,
                },
                "planned_arrival": reg.planned_arrival,
                "planned_departure": reg.planned_departure,
                "housing": reg.housing,
                "mobile": reg.mobile,
            },
            nationality=person.nationality,
            passport_number=person.passport_number,
        )
