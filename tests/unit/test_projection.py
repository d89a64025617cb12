"""Subscription projections: allowlist, always-delivered ids, masks, derived Avro schemas.

The key property: for random events of every real event schema and random projections, nothing
outside the allowlist (plus the ids) is delivered, nothing dropped is delivered, and no hashed or
``last``-masked value is delivered in clear.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import fastavro
import pytest
import yaml
from fastavro.utils import generate_many
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from router.projection import (
    ALWAYS_DELIVERED,
    UNMASKABLE,
    LastMask,
    Projection,
    Projector,
    keep_last,
    keyed_hash,
    render,
    schema_leaf_paths,
)
from schemas.catalogue import load_sources

KEY = b"hub-masking-key-for-tests"
SOURCES = load_sources()
SUBJECTS = sorted(SOURCES)

BRIEF_YAML = """
projection:
  fields: [envelope.occurred_at, envelope.source.agency, flight_number, arrival_airport, pilgrim.surname,
           pilgrim.nationality, pilgrim.passport_number]
  mask:
    pilgrim.passport_number: {last: 4}   # keep last 4 chars, others replaced by '*'
    pilgrim.surname: hash                 # HMAC-SHA256 hex (first 32 chars) under the hub's masking key
    pilgrim.birth_date: drop              # never delivered even if listed
"""


def projection(raw: Any) -> Projection:
    return Projection.model_validate(raw)


def projector(raw: Any | None) -> Projector:
    return Projector(None if raw is None else projection(raw), KEY)


def hmac32(text: str) -> str:
    return hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()[:32]


def envelope(event_type: str, pilgrim_key: str | None = "pk_0123456789abcdef") -> dict[str, Any]:
    return {
        "event_id": "2f1c4a52-4a7e-5b55-9d4f-0a1b2c3d4e5f",
        "event_type": event_type,
        "occurred_at": datetime(2026, 5, 1, 8, 30, tzinfo=UTC),
        "ingested_at": datetime(2026, 5, 1, 8, 30, 1, tzinfo=UTC),
        "source": {"agency": "immigration", "connector": "jawazat-sftp", "position": "entries.csv:1042"},
        "pilgrim_key": pilgrim_key,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    }


def person(**changes: Any) -> dict[str, Any]:
    return {
        "surname": "ERIKSSON",
        "given_names": "ANNA MARIA",
        "sex": "F",
        "birth_date": date(1974, 8, 12),
        "nationality": "SWE",
        "passport_number": "L898902C3",
        "passport_expiry": date(2031, 4, 15),
        "issuing_state": None,
        **changes,
    }


def border_entry() -> dict[str, Any]:
    return {
        "envelope": envelope("BorderEntryRecorded"),
        "record_id": "JW-77",
        "port": "JED",
        "port_type": "air",
        "crossed_at": datetime(2026, 5, 1, 8, 30, tzinfo=UTC),
        "crossed_at_local": "2026-05-01T11:30:00+03:00",
        "flight_number": "SV817",
        "visa_number": "V-1",
        "pilgrim": person(),
    }


def group_registered(leader: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "envelope": envelope("GroupRegistered", pilgrim_key=None),
        "group_id": "G-1",
        "operator_code": "OP-1",
        "agent_code": None,
        "season": "umrah",
        "leader": leader,
        "capacity": 40,
        "member_count": 41,
        "over_capacity": True,
        "housing": None,
        "arrival": date(2026, 5, 1),
        "departure": date(2026, 5, 20),
    }


# --- the example from the config docs --------------------------------------------------------------


def test_brief_example() -> None:
    raw = yaml.safe_load(BRIEF_YAML)["projection"]
    projected = projector(raw).project(border_entry())
    assert projected == {
        "envelope": {
            "event_id": "2f1c4a52-4a7e-5b55-9d4f-0a1b2c3d4e5f",
            "event_type": "BorderEntryRecorded",
            "occurred_at": datetime(2026, 5, 1, 8, 30, tzinfo=UTC),
            "source": {"agency": "immigration"},
            "pilgrim_key": "pk_0123456789abcdef",
        },
        "flight_number": "SV817",
        "pilgrim": {"surname": hmac32("ERIKSSON"), "nationality": "SWE", "passport_number": "*****02C3"},
    }


def test_delivered_paths_for_the_audit() -> None:
    raw = yaml.safe_load(BRIEF_YAML)["projection"]
    chosen = projector(raw)
    assert chosen.delivered_paths(chosen.project(border_entry())) == [
        "envelope.event_id",
        "envelope.event_type",
        "envelope.occurred_at",
        "envelope.pilgrim_key",
        "envelope.source.agency",
        "flight_number",
        "pilgrim.nationality",
        "pilgrim.passport_number",
        "pilgrim.surname",
    ]
    assert Projector.delivered_paths({"a": {"b": None, "c": {}}, "d": [1, 2]}) == ["a.b", "d"]


def test_validate_against_names_paths_the_event_type_lacks() -> None:
    chosen = projector(yaml.safe_load(BRIEF_YAML)["projection"])
    assert chosen.validate_against(SOURCES["hajj.journey.BorderEntryRecorded"]) == ["arrival_airport"]
    assert chosen.validate_against(SOURCES["hajj.journey.PassengerManifested"]) == [
        "pilgrim.surname",
        "pilgrim.nationality",
        "pilgrim.passport_number",
        "pilgrim.birth_date",
    ]
    assert projector({"fields": ["leader.surname", "leader.nope", "capacity.x"]}).validate_against(
        SOURCES["hajj.journey.GroupRegistered"]
    ) == ["leader.nope", "capacity.x"]
    assert projector(None).validate_against(SOURCES["hajj.journey.GroupRegistered"]) == []


# --- selection ---------------------------------------------------------------------------------------


def test_a_record_path_delivers_its_whole_subtree() -> None:
    projected = projector({"fields": ["pilgrim", "envelope.source"]}).project(border_entry())
    assert projected["pilgrim"] == person()
    assert projected["envelope"]["source"] == border_entry()["envelope"]["source"]
    assert set(projected) == {"envelope", "pilgrim"}


def test_overlapping_paths_deliver_the_wider_one() -> None:
    for fields in (["pilgrim.surname", "pilgrim"], ["pilgrim", "pilgrim.surname"]):
        assert projector({"fields": fields}).project(border_entry())["pilgrim"] == person()
    deep_first = projector({"fields": ["envelope.source.agency", "envelope"]}).project(border_entry())
    assert deep_first["envelope"] == border_entry()["envelope"]


def test_event_ids_are_always_delivered() -> None:
    projected = projector({"fields": ["port"]}).project(border_entry())
    assert projected == {
        "envelope": {
            "event_id": "2f1c4a52-4a7e-5b55-9d4f-0a1b2c3d4e5f",
            "event_type": "BorderEntryRecorded",
            "pilgrim_key": "pk_0123456789abcdef",
        },
        "port": "JED",
    }
    assert set(ALWAYS_DELIVERED) <= set(Projector.delivered_paths(projected))


def test_pilgrim_key_can_be_dropped_or_hashed_but_not_the_ids() -> None:
    dropped = projector({"fields": ["port"], "mask": {"envelope.pilgrim_key": "drop"}}).project(border_entry())
    assert dropped["envelope"] == {
        "event_id": "2f1c4a52-4a7e-5b55-9d4f-0a1b2c3d4e5f",
        "event_type": "BorderEntryRecorded",
    }
    hashed = projector({"fields": ["port"], "mask": {"envelope.pilgrim_key": "hash"}}).project(border_entry())
    assert hashed["envelope"]["pilgrim_key"] == hmac32("pk_0123456789abcdef")
    for path in sorted(UNMASKABLE):
        with pytest.raises(ValidationError, match="always delivered in clear"):
            projection({"fields": ["port"], "mask": {path: "drop"}})


def test_a_missing_path_is_just_absent() -> None:
    event = border_entry()
    del event["visa_number"]
    del event["envelope"]["pilgrim_key"]
    projected = projector({"fields": ["visa_number", "port", "nothing.here"]}).project(event)
    assert projected == {
        "envelope": {"event_id": "2f1c4a52-4a7e-5b55-9d4f-0a1b2c3d4e5f", "event_type": "BorderEntryRecorded"},
        "port": "JED",
    }


def test_a_null_record_is_null_when_delivered_whole_and_absent_when_only_its_fields_are() -> None:
    assert projector({"fields": ["leader"]}).project(group_registered(None))["leader"] is None
    assert "leader" not in projector({"fields": ["leader.surname"]}).project(group_registered(None))
    assert projector({"fields": ["leader.surname"]}).project(group_registered(person()))["leader"] == {
        "surname": "ERIKSSON"
    }


def test_a_path_into_a_leaf_delivers_nothing() -> None:
    assert "port" not in projector({"fields": ["port.code"]}).project(border_entry())


def test_no_projection_delivers_the_whole_event_sharing_its_values() -> None:
    event = border_entry()
    projected = projector(None).project(event)
    assert projected == event
    assert projected is not event
    assert projected["pilgrim"] is event["pilgrim"]  # one decoded event feeds every subscriber: no copies


def test_the_event_is_never_mutated() -> None:
    event = border_entry()
    event["tags"] = ["a", "b"]
    before = copy.deepcopy(event)
    for raw in (None, {"fields": ["pilgrim", "tags"], "mask": {"pilgrim": "hash"}}, {"fields": ["tags", "envelope"]},
                {"fields": ["pilgrim.surname"], "mask": {"pilgrim.surname": {"last": 2}}}):
        projected = projector(raw).project(event)
        assert projected is not event
    assert event == before


def test_schema_leaf_paths_reach_through_nullable_records() -> None:
    schema = {
        "type": "record", "name": "E", "namespace": "x",
        "fields": [
            {"name": "a", "type": ["null", {"type": "record", "name": "A", "fields": [
                {"name": "b", "type": "string"}, {"name": "c", "type": {"type": "array", "items": "string"}}]}]},
            {"name": "again", "type": ["null", "A"]},
            {"name": "d", "type": "long"},
        ],
    }
    assert schema_leaf_paths(schema) == ["a.b", "a.c", "again.b", "again.c", "d"]


# --- masks -------------------------------------------------------------------------------------------


def test_a_mask_on_a_record_masks_every_leaf_below_and_null_stays_null() -> None:
    projected = projector({"fields": ["pilgrim"], "mask": {"pilgrim": "hash"}}).project(border_entry())
    assert projected["pilgrim"] == {
        "surname": hmac32("ERIKSSON"),
        "given_names": hmac32("ANNA MARIA"),
        "sex": hmac32("F"),
        "birth_date": hmac32("1974-08-12"),
        "nationality": hmac32("SWE"),
        "passport_number": hmac32("L898902C3"),
        "passport_expiry": hmac32("2031-04-15"),
        "issuing_state": None,
    }


def test_the_most_specific_mask_wins_but_drop_above_withholds_everything() -> None:
    projected = projector(
        {"fields": ["pilgrim"], "mask": {"pilgrim": {"last": 1}, "pilgrim.passport_number": "hash"}}
    ).project(border_entry())
    assert projected["pilgrim"]["passport_number"] == hmac32("L898902C3")
    assert projected["pilgrim"]["surname"] == "*******N"
    dropped = projector({"fields": ["pilgrim"], "mask": {"pilgrim": "drop", "pilgrim.surname": "hash"}})
    assert "pilgrim" not in dropped.project(border_entry())


def test_drop_withholds_a_listed_field() -> None:
    projected = projector({"fields": ["pilgrim"], "mask": {"pilgrim.birth_date": "drop"}}).project(border_entry())
    assert "birth_date" not in projected["pilgrim"]
    assert projected["pilgrim"]["surname"] == "ERIKSSON"


def test_a_record_reached_only_through_dropped_paths_is_left_out() -> None:
    chosen = projector({"fields": ["pilgrim.birth_date", "port"], "mask": {"pilgrim.birth_date": "drop"}})
    assert "pilgrim" not in chosen.project(border_entry())
    schema = chosen.derive_schema(SOURCES["hajj.journey.BorderEntryRecorded"], "Ops", "hub.out")
    assert [f["name"] for f in schema["fields"]] == ["envelope", "port"]


def test_masks_never_widen_the_allowlist() -> None:
    projected = projector(
        {"fields": ["port"], "mask": {"pilgrim.surname": "hash", "visa_number": {"last": 2}}}
    ).project(border_entry())
    assert set(projected) == {"envelope", "port"}


@pytest.mark.parametrize(
    ("value", "last", "expected"),
    [
        ("L898902C3", 4, "*****02C3"),
        ("L898902C3", 0, "*********"),
        ("L898902C3", 9, "L898902C3"),  # not longer than N: left as it is
        ("AB", 4, "AB"),
        ("", 4, ""),
        (1234567, 2, "*****67"),
        (True, 1, "***e"),
        (date(1974, 8, 12), 2, "********12"),
        (datetime(2026, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=3))), 6, "*******************+00:00"),
        (None, 2, None),
    ],
)
def test_last(value: Any, last: int, expected: Any) -> None:
    projected = projector({"fields": ["v"], "mask": {"v": {"last": last}}}).project({"v": value})
    assert projected["v"] == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("ERIKSSON", "ERIKSSON"),
        (41, "41"),
        (2.5, "2.5"),
        (False, "false"),
        (date(1974, 8, 12), "1974-08-12"),
        (datetime(2026, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=3))), "2026-05-01T08:30:00+00:00"),
        (b"\x01\xff", "01ff"),
    ],
)
def test_hash_renders_then_hmacs(value: Any, text: str) -> None:
    assert render(value) == text
    projected = projector({"fields": ["v"], "mask": {"v": "hash"}}).project({"v": value})
    assert projected["v"] == hmac32(text) == keyed_hash(text, KEY)
    assert len(projected["v"]) == 32


def test_hash_depends_on_the_key() -> None:
    chosen = projection({"fields": ["v"], "mask": {"v": "hash"}})
    assert Projector(chosen, b"one").project({"v": "x"}) != Projector(chosen, b"two").project({"v": "x"})
    with pytest.raises(ValueError, match="non-empty masking key"):
        Projector(chosen, b"")
    assert Projector(projection({"fields": ["v"], "mask": {"v": {"last": 1}}}), b"").project({"v": "xy"}) == {"v": "*y"}


def test_lists_are_masked_item_by_item() -> None:
    projected = projector({"fields": ["tags"], "mask": {"tags": {"last": 1}}}).project({"tags": ["abc", None, 12]})
    assert projected == {"tags": ["**c", None, "*2"]}


def test_keep_last_helper() -> None:
    assert keep_last("abcdef", 2) == "****ef"
    assert keep_last("ab", 2) == "ab"


# --- validation --------------------------------------------------------------------------------------


def errors(raw: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        Projection.model_validate(raw)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, [("fields", "Field required")]),
        ({"fields": []}, [("fields", "give at least one item")]),
        (
            {"fields": ["pilgrim surname"]},
            [
                (
                    "fields.0",
                    "'pilgrim surname' is not a dotted field path of Avro names, such as envelope.source.agency",
                )
            ],
        ),
        (
            {"fields": ["a"], "mask": {"a": "blur"}},
            [("mask.a", "a mask is hash, drop or a mapping like 'last: 4', got 'blur'")],
        ),
        ({"fields": ["a"], "mask": {"a": 4}}, [("mask.a", "a mask is hash, drop or a mapping like 'last: 4', got 4")]),
        (
            {"fields": ["a"], "mask": {"a": {"last": -1}}},
            [("mask.a.last", "Input should be greater than or equal to 0")],
        ),
        (
            {"fields": ["a"], "mask": {"a": {"first": 2}}},
            [("mask.a.last", "Field required"), ("mask.a.first", "Extra inputs are not permitted")],
        ),
        (
            {"fields": ["a"], "mask": {"envelope.event_id": "hash"}},
            [
                (
                    "mask",
                    "Value error, cannot mask envelope.event_id: envelope.event_id and envelope.event_type are always "
                    "delivered in clear (idempotency and correlation)",
                )
            ],
        ),
        ({"fields": ["a"], "masks": {}}, [("masks", "Extra inputs are not permitted")]),
    ],
)
def test_validation_errors_name_the_bad_field(raw: Any, expected: list[tuple[str, str]]) -> None:
    assert errors(raw) == expected


def test_mask_path_keys_are_checked() -> None:
    problems = errors({"fields": ["a"], "mask": {"a b": "hash"}})
    assert problems[0][0] == "mask.a b.[key]"
    assert "not a dotted field path" in problems[0][1]


def test_the_model_is_frozen_and_documented() -> None:
    chosen = projection(yaml.safe_load(BRIEF_YAML)["projection"])
    assert chosen.mask["pilgrim.passport_number"] == LastMask(last=4)
    with pytest.raises(ValidationError):
        chosen.fields = ("x",)  # type: ignore[misc]
    schema = Projection.model_json_schema()
    assert all(prop.get("description") for prop in schema["properties"].values())


# --- derived schemas ---------------------------------------------------------------------------------


def field_of(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in record["fields"] if f["name"] == name)


def test_derived_schema_prunes_renames_and_types_masked_fields_as_strings() -> None:
    chosen = projector(
        {
            "fields": ["envelope.occurred_at", "flight_number", "crossed_at", "pilgrim"],
            "mask": {
                "pilgrim.passport_number": {"last": 4},
                "pilgrim.surname": "hash",
                "pilgrim.birth_date": "drop",
                "pilgrim.passport_expiry": "hash",
                "crossed_at": "hash",
            },
        }
    )
    schema = chosen.derive_schema(SOURCES["hajj.journey.BorderEntryRecorded"], "OpsBorderEntry", "hub.deliver.ops")
    assert schema["name"] == "OpsBorderEntry" and schema["namespace"] == "hub.deliver.ops"
    assert [f["name"] for f in schema["fields"]] == ["envelope", "crossed_at", "flight_number", "pilgrim"]
    env = field_of(schema, "envelope")["type"]
    assert env["name"] == "OpsBorderEntry_envelope"
    assert [f["name"] for f in env["fields"]] == ["event_id", "event_type", "occurred_at", "pilgrim_key"]
    assert field_of(env, "occurred_at")["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert field_of(env, "pilgrim_key") | {"doc": ""} == {
        "name": "pilgrim_key",
        "type": ["null", "string"],
        "default": None,
        "doc": "",
    }
    assert field_of(schema, "crossed_at")["type"] == "string"
    assert field_of(schema, "flight_number")["type"] == ["null", "string"]
    assert field_of(schema, "flight_number")["default"] is None
    pilgrim = field_of(schema, "pilgrim")["type"]
    assert pilgrim["name"] == "OpsBorderEntry_pilgrim"
    assert "birth_date" not in [f["name"] for f in pilgrim["fields"]]
    assert field_of(pilgrim, "surname")["type"] == "string"
    assert field_of(pilgrim, "passport_number")["type"] == "string"
    assert field_of(pilgrim, "passport_expiry") == {
        "name": "passport_expiry",
        "type": ["null", "string"],
        "default": None,
    }
    assert field_of(pilgrim, "issuing_state") == {"name": "issuing_state", "type": ["null", "string"], "default": None}
    fastavro.parse_schema(schema)
    assert json.loads(json.dumps(schema)) == schema


def test_derived_schema_keeps_defaults_of_unmasked_fields_only() -> None:
    source = SOURCES["hajj.journey.FlightManifestReceived"]
    clear = projector({"fields": ["time_zone_assumed"]}).derive_schema(source, "A", "hub.out")
    assert field_of(clear, "time_zone_assumed")["default"] is False
    masked = projector({"fields": ["time_zone_assumed"], "mask": {"time_zone_assumed": "hash"}}).derive_schema(
        source, "A", "hub.out"
    )
    assert field_of(masked, "time_zone_assumed") | {"doc": ""} == {
        "name": "time_zone_assumed",
        "type": "string",
        "doc": "",
    }


def test_derived_schema_of_a_nullable_record() -> None:
    chosen = projector({"fields": ["leader.surname", "leader.birth_date"], "mask": {"leader": "hash"}})
    schema = chosen.derive_schema(SOURCES["hajj.journey.GroupRegistered"], "G", "hub.out")
    leader = field_of(schema, "leader")
    assert leader["default"] is None
    assert leader["type"][0] == "null"
    assert leader["type"][1]["name"] == "G_leader"
    assert leader["type"][1]["fields"] == [
        {"name": "surname", "type": "string"},
        {"name": "birth_date", "type": ["null", "string"], "default": None},
    ]
    for event in (group_registered(None), group_registered(person())):
        assert write_and_read(schema, chosen.project(event)) == chosen.project(event) | (
            {"leader": None} if event["leader"] is None else {}
        )


def test_every_record_name_is_unique_in_the_namespace() -> None:
    for subject in SUBJECTS:
        schema = projector(None).derive_schema(SOURCES[subject], "Whole", "hub.out")
        names = list(_record_names(schema))
        assert len(names) == len(set(names))
        assert all(name == "Whole" or name.startswith("Whole_") for name in names)


def _record_names(schema: Any) -> Iterator[str]:
    if isinstance(schema, list):
        for branch in schema:
            yield from _record_names(branch)
    elif isinstance(schema, dict) and schema.get("type") == "record":
        yield schema["name"]
        for item in schema["fields"]:
            yield from _record_names(item["type"])


def write_and_read(schema: dict[str, Any], value: dict[str, Any]) -> Any:
    parsed = fastavro.parse_schema(copy.deepcopy(schema))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, value)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, parsed)


def decoded_samples(subject: str, count: int) -> list[dict[str, Any]]:
    """Events of ``subject`` as the codec hands them over: generated, written, read back."""
    state = random.getstate()
    random.seed(subject)
    try:
        parsed = fastavro.parse_schema(copy.deepcopy(SOURCES[subject]))
        return [write_and_read(SOURCES[subject], raw) for raw in generate_many(parsed, count)]
    finally:
        random.setstate(state)


SENSITIVE = {
    "fields": [
        "envelope.occurred_at",
        "envelope.source",
        "pilgrim",
        "passenger",
        "guest",
        "leader",
        "passport_number",
        "nationality",
        "flight_number",
        "crossed_at",
        "stay_start",
        "valid_until",
    ],
    "mask": {
        "pilgrim.passport_number": {"last": 4},
        "pilgrim.surname": "hash",
        "pilgrim.birth_date": "drop",
        "passenger": "hash",
        "passenger.passport_number": {"last": 3},
        "guest": {"last": 2},
        "guest.nationality": "drop",
        "leader.surname": "hash",
        "passport_number": "hash",
        "crossed_at": "hash",
        "stay_start": {"last": 2},
        "valid_until": "hash",
        "envelope.pilgrim_key": "hash",
        "envelope.source.position": "drop",
    },
}


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize(
    "raw", [None, SENSITIVE, {"fields": ["envelope.source.agency"]}], ids=["whole", "masked", "ids"]
)
def test_projected_events_round_trip_through_the_derived_schema(subject: str, raw: Any) -> None:
    chosen = projector(raw)
    name = "Sub_" + subject.rsplit(".", 1)[-1]
    schema = chosen.derive_schema(SOURCES[subject], name, "hub.deliver.test")
    parsed_schema_json = json.dumps(schema)  # JSON-able
    assert json.loads(parsed_schema_json)["name"] == name
    for event in decoded_samples(subject, 4):
        projected = chosen.project(event)
        assert write_and_read(schema, projected) == projected


# --- property: nothing outside the allowlist, nothing dropped, nothing masked in clear ------------


def strategy_for(schema: Any, named: dict[str, Any], namespace: str | None = None) -> st.SearchStrategy[Any]:
    """Decoded Avro values of ``schema``, as fastavro's reader returns them."""
    if isinstance(schema, str):
        if schema in named or f"{namespace}.{schema}" in named:
            return strategy_for(named.get(schema) or named[f"{namespace}.{schema}"], named, namespace)
        schema = {"type": schema}
    if isinstance(schema, list):
        return st.one_of([strategy_for(branch, named, namespace) for branch in schema])
    kind, logical = schema["type"], schema.get("logicalType")
    if isinstance(kind, dict | list):
        return strategy_for(kind, named, namespace)
    if kind == "record":
        full = schema["name"] if "." in schema["name"] else f"{schema.get('namespace', namespace)}.{schema['name']}"
        named[full] = schema
        inner = full.rsplit(".", 1)[0]
        return st.fixed_dictionaries({f["name"]: strategy_for(f["type"], named, inner) for f in schema["fields"]})
    if logical == "date":
        return st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1))
    if logical == "timestamp-millis":
        return st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC)
        )
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(width=32, allow_nan=False),
        "double": st.floats(allow_nan=False),
        "string": st.text(max_size=16),
        "bytes": st.binary(max_size=8),
    }
    return simple[kind]


def schema_paths(schema: Any, prefix: str = "") -> list[str]:
    """Every record and leaf path of an (expanded) event schema."""
    paths: list[str] = []
    branches = schema if isinstance(schema, list) else [schema]
    for branch in branches:
        if isinstance(branch, dict) and isinstance(branch.get("type"), dict | list):
            paths += schema_paths(branch["type"], prefix)
        elif isinstance(branch, dict) and branch.get("type") == "record":
            for item in branch["fields"]:
                path = f"{prefix}{item['name']}"
                paths += [path, *schema_paths(item["type"], path + ".")]
    return paths


EVENTS = {subject: strategy_for(SOURCES[subject], {}) for subject in SUBJECTS}
PATHS = {subject: sorted(set(schema_paths(SOURCES[subject]))) for subject in SUBJECTS}
MASKS = st.one_of(st.just("hash"), st.just("drop"), st.builds(lambda n: {"last": n}, st.integers(0, 12)))


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    subject = draw(st.sampled_from(SUBJECTS))
    paths = PATHS[subject]
    maskable = [p for p in paths if p not in UNMASKABLE]
    fields = draw(st.lists(st.sampled_from(paths), min_size=1, max_size=8, unique=True))
    mask = draw(st.dictionaries(st.sampled_from(maskable), MASKS, max_size=6))
    return subject, {"fields": fields, "mask": mask}, draw(EVENTS[subject])


def under(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith(ancestor + ".")


def value_at(event: Any, path: str) -> Any:
    for part in path.split("."):
        event = event[part]
    return event


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_nothing_outside_the_projection_and_nothing_masked_in_clear(
    case: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    subject, raw, event = case
    before = copy.deepcopy(event)
    chosen = projector(raw)
    projected = chosen.project(event)
    delivered = chosen.delivered_paths(projected)
    allowed = [*raw["fields"], *ALWAYS_DELIVERED]
    masks = raw["mask"]
    drops = [path for path, mask in masks.items() if mask == "drop"]

    for path in delivered:
        assert any(under(path, a) for a in allowed), f"{path} delivered outside the allowlist"
        assert not any(under(path, d) for d in drops), f"{path} delivered although dropped"
        clear, shown = value_at(event, path), value_at(projected, path)
        governing = [m for m in masks if under(path, m)]
        if not governing:
            assert shown == clear
            continue
        mask = masks[max(governing, key=len)]  # the most specific mask wins
        if clear is None:
            assert shown is None
            continue
        text = render(clear)
        assert isinstance(shown, str)
        if mask == "hash":
            assert shown == hmac32(text) != text
        else:
            last = mask["last"]
            assert len(shown) == len(text) and shown.endswith(text[len(text) - last :])
            if len(text) > last:
                assert shown != clear
                hidden = text[: len(text) - last]
                # '*' is the replacement: a value whose hidden part is all '*' looks the same masked
                assert shown != text or set(hidden) == {"*"}

    # and nothing allowed is lost: every clear leaf under the allowlist and not dropped is delivered
    for path in Projector.delivered_paths(event):
        if any(under(path, a) for a in allowed) and not any(under(path, d) for d in drops):
            assert path in delivered, f"{path} allowed but not delivered"

    assert event == before
    schema = chosen.derive_schema(SOURCES[subject], "P", "hub.property")
    assert write_and_read(schema, projected) == _with_nulls(schema, projected)


def _with_nulls(schema: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """What the reader returns: nullable fields the projection left out come back null."""
    out = dict(value)
    for item in schema["fields"]:
        kind = item["type"]
        record = next((b for b in kind if isinstance(b, dict)), None) if isinstance(kind, list) else kind
        if item["name"] not in out:
            out[item["name"]] = None
        elif isinstance(record, dict) and record.get("type") == "record" and isinstance(out[item["name"]], dict):
            out[item["name"]] = _with_nulls(record, out[item["name"]])
    return out
