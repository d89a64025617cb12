"""The Kafka lane without a broker: where subscribers stand, routing one record to many, the
verbatim shortcut, and the compact audit."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from router.audit import AuditBatch, expand
from router.engine import REPLAY_HEADER, KafkaLane, RouterTopics, Standing, _BatchOut, decode_delivery
from router.projection import Projector, binary_shape
from router.subscriptions import Subscription
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec, subject_for
from streaming.kafka import ClientSettings, Record
from tests.unit.test_projection import border_entry

TOPICS = RouterTopics("events", "replay", "dlq", "audit", "schemas")
CODEC = Codec(SchemaCatalogue())
KEY = b"k" * 32


def sub(sub_id: str, **extra: Any) -> Subscription:
    return Subscription.model_validate(
        {
            "id": sub_id,
            "agency": "immigration",
            "event_types": ["BorderEntryRecorded"],
            "target": {"kind": "kafka", "topic": f"deliver.{sub_id}"},
            **extra,
        }
    )


def lane(*subs: Subscription) -> KafkaLane:
    return KafkaLane(list(subs), ClientSettings("unused:9092"), "router", CODEC, TOPICS, KEY)


def record(event: dict[str, Any], topic: str = "events", offset: int = 0, headers: Any = None) -> Record:
    encoded = CODEC.encode("BorderEntryRecorded", event)
    return Record(topic, 0, offset, encoded.key, encoded.value, list(headers or encoded.headers), 1_700_000_000_000)


def routed(the_lane: KafkaLane, rec: Record, wanted: set[str]) -> _BatchOut:
    out = _BatchOut(AuditBatch(TOPICS.audit, the_lane.name))
    the_lane._route(rec, wanted, out)
    return out


def schemas_of(out: _BatchOut) -> dict[int, Any]:
    import fastavro

    return {
        int((key or b"").decode()): fastavro.parse_schema(json.loads(value or b""))
        for topic, value, key, _ in out.sends
        if topic == TOPICS.schemas
    }


# --- where subscribers stand ---------------------------------------------------------------------------


def test_before_the_first_commit_everyone_starts_together() -> None:
    assert Standing.read(None, ["a", "b"]) == Standing(None, {"a", "b"}, {})


def test_a_new_subscriber_starts_behind_at_the_log_start_and_a_removed_one_is_forgotten() -> None:
    note = Standing(120, {"a", "gone"}, {"late": 40}).note()
    standing = Standing.read((120, note), ["a", "late", "new"])
    assert standing == Standing(120, {"a"}, {"late": 40, "new": 0})


def test_the_standing_survives_its_round_trip_through_offset_metadata() -> None:
    standing = Standing(7, {"b", "a"}, {"c": 3})
    assert Standing.read((7, standing.note()), ["a", "b", "c"]) == standing


def test_a_subscriber_recorded_behind_at_or_past_the_head_is_up_to_date() -> None:
    assert Standing.read((50, Standing(50, set(), {"a": 50}).note()), ["a"]) == Standing(50, {"a"}, {})


def test_metadata_that_is_not_a_standing_takes_everyone_as_up_to_date(caplog: pytest.LogCaptureFixture) -> None:
    assert Standing.read((9, "written by something else"), ["a"]) == Standing(9, {"a"}, {})
    assert "not a lane's standing" in caplog.text


def test_a_long_standing_is_deflated_and_still_reads_back() -> None:
    standing = Standing(10**12, {f"ministry-desk-{i}" for i in range(100)}, {f"new-desk-{i}": i for i in range(50)})
    note = standing.note()
    assert note.startswith("z:") and len(note) < 1000
    assert Standing.read((10**12, note), standing.at | set(standing.behind)) == standing


def test_a_hundred_subscriptions_fit_and_too_many_for_the_offset_metadata_are_refused_up_front() -> None:
    assert len(lane(*(sub(f"subscriber-{i:03d}-desk") for i in range(100))).routes) == 100
    with pytest.raises(ValueError, match="split them over router groups"):
        lane(*(sub(uuid.uuid4().hex) for _ in range(400)))


# --- routing one record to many -------------------------------------------------------------------------


def test_one_record_goes_to_each_subscriber_whose_filter_holds() -> None:
    the_lane = lane(
        sub("all-of-it"),
        sub("jed-only", filter={"field": "port", "equals": "JED"}),
        sub("med-only", filter={"field": "port", "equals": "MED"}),
    )
    out = routed(the_lane, record(border_entry()), {"all-of-it", "jed-only", "med-only"})
    targets = [topic for topic, *_ in out.sends if topic.startswith("deliver.")]
    assert sorted(targets) == ["deliver.all-of-it", "deliver.jed-only"]
    assert [out.filtered_by(route) for route in the_lane.routes.values()] == [0, 0, 1]
    assert sorted(out.delivered) == ["all-of-it", "jed-only"]


def test_only_the_wanted_subscribers_receive_it() -> None:
    the_lane = lane(sub("up-to-date"), sub("behind"))
    out = routed(the_lane, record(border_entry()), {"behind"})
    assert [t for t, *_ in out.sends if t.startswith("deliver.")] == ["deliver.behind"]


def test_a_replayed_record_goes_to_the_subscriber_it_names_only() -> None:
    the_lane = lane(sub("first"), sub("second"))
    base = record(border_entry())
    replayed = base._replace(topic=TOPICS.replay, headers=[*base.headers, (REPLAY_HEADER, b"second")])
    out = routed(the_lane, replayed, {"first", "second"})
    assert [t for t, *_ in out.sends if t.startswith("deliver.")] == ["deliver.second"]


def test_an_undecodable_record_is_dead_lettered_once_per_subscriber_naming_it() -> None:
    the_lane = lane(sub("first"), sub("second"))
    out = routed(the_lane, Record("events", 0, 5, b"k", b"not avro", [], 0), {"first", "second"})
    assert [(t, dict(h)["hub_dlq_subscriber"]) for t, _, _, h in out.sends] == [
        ("dlq", b"first"),
        ("dlq", b"second"),
    ]


# --- the verbatim shortcut: the event's own bytes when re-encoding would give them back -------------------


def test_a_whole_unmasked_event_is_delivered_as_its_own_bytes_and_decodes_the_same() -> None:
    the_lane = lane(sub("whole"))
    rec = record(border_entry())
    out = routed(the_lane, rec, {"whole"})
    [(_, value, _, _)] = [s for s in out.sends if s[0] == "deliver.whole"]
    assert value is not None and value[5:] == (rec.value or b"")[5:]
    _, event = CODEC.decode(rec.value or b"")
    assert decode_delivery(value, schemas_of(out)) == Projector(None, KEY).project(event)


@pytest.mark.parametrize(
    "projection",
    [
        {"fields": ["port", "pilgrim.nationality"]},
        {"fields": ["port", "pilgrim"], "mask": {"pilgrim.surname": "hash"}},  # a string stays a string
        {"fields": ["port", "pilgrim"], "mask": {"pilgrim.passport_number": {"last": 4}}},
    ],
)
def test_a_projected_or_masked_event_is_encoded_anew(projection: dict[str, Any]) -> None:
    the_lane = lane(sub("some", projection=projection))
    rec = record(border_entry())
    out = routed(the_lane, rec, {"some"})
    [(_, value, _, _)] = [s for s in out.sends if s[0] == "deliver.some"]
    _, event = CODEC.decode(rec.value or b"")
    assert value is not None and value[5:] != (rec.value or b"")[5:]
    assert decode_delivery(value, schemas_of(out)) == Projector(the_lane.routes["some"].sub.projection, KEY).project(
        event
    )


def test_every_event_type_derived_without_a_projection_encodes_like_its_own_schema() -> None:
    the_lane = lane(sub("whole"))
    projector = the_lane.routes["whole"].projector
    for subject in CODEC.catalogue.subjects():
        event_type = subject.rsplit(".", 1)[-1]
        latest = CODEC.catalogue.latest(subject_for(event_type)).schema
        _, _, derived = the_lane.derived.get(projector, CODEC, "whole", event_type)
        assert binary_shape(derived) == binary_shape(latest), event_type
        assert derived["namespace"] != latest.get("namespace")


def test_shapes_tell_apart_what_encodes_differently() -> None:
    record_of = lambda *types: {"type": "record", "name": "R", "fields": [  # noqa: E731
        {"name": f"f{i}", "type": t} for i, t in enumerate(types)]}
    assert binary_shape(record_of("string", "long")) == binary_shape({**record_of("string", "long"), "name": "Other"})
    assert binary_shape(record_of("string", "long")) != binary_shape(record_of("long", "string"))
    assert binary_shape(record_of(["null", "string"])) != binary_shape(record_of(["string", "null"]))
    timestamp = {"type": "long", "logicalType": "timestamp-micros"}
    assert binary_shape(record_of(timestamp)) == binary_shape(record_of("long"))
    enum = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
    assert binary_shape(record_of(enum)) != binary_shape(record_of({**enum, "symbols": ["B", "A"]}))


# --- the compact audit --------------------------------------------------------------------------------


def test_an_audit_record_expands_to_one_entry_per_delivery() -> None:
    the_lane = lane(sub("whole"), sub("some", projection={"fields": ["port"]}))
    out = routed(the_lane, record(border_entry()), {"whole", "some"})
    [(topic, value, key, _)] = out.audit.records()
    assert (topic, key) == ("audit", b"kafka-lane")
    entries = expand(json.loads(value or b""))
    assert [(e["subscriber"], e["outcome"], e["kind"], e["agency"], e["target"]) for e in entries] == [
        ("whole", "delivered", "delivery", "immigration", "kafka"),
        ("some", "delivered", "delivery", "immigration", "kafka"),
    ]
    assert entries[1]["fields"] == ["envelope.event_id", "envelope.event_type", "envelope.pilgrim_key", "port"]
    assert "pilgrim.passport_number" in entries[0]["fields"]
    assert entries[0]["event_id"] == border_entry()["envelope"]["event_id"]


def test_audit_records_of_the_older_form_still_expand() -> None:
    old = {"kind": "deliveries", "subscriber": "s", "entries": [{"kind": "delivery", "event_id": "e", "at": "t"}]}
    assert expand(old) == old["entries"]
    assert expand({"kind": "replay", "pilgrim_key": "p"}) == [{"kind": "replay", "pilgrim_key": "p"}]
