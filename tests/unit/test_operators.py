"""Operators connector and the connector runtime, with a fake producer (no broker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.identity import PilgrimKeyer
from connectors.operators import Config, OperatorsConnector
from connectors.rejections import InputRejected
from connectors.runtime import IngestRuntime, IngestTopics
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from tests.fakes import FakeProducer

FEEDS = Path(__file__).parents[2] / "demo" / "feeds" / "operators"
TOPICS = IngestTopics("journey.events", "journey.quarantine")


def connector() -> OperatorsConnector:
    return OperatorsConnector(Config(name="operators-http", transport={"kind": "http", "path": "/ingest/operators"}))


def runtime(producer: FakeProducer) -> IngestRuntime:
    return IngestRuntime(
        connector(), Codec(SchemaCatalogue()), PilgrimKeyer(b"unit-test-secret-0123456789"), producer, TOPICS
    )  # type: ignore[arg-type]


def test_a_good_document_gives_one_event_per_registration() -> None:
    parsed = connector().parse((FEEDS / "01-jakarta-agent-group.json").read_bytes(), "f1")
    assert parsed.rejections == []
    assert [r.position for r in parsed.records] == [f"$.registrations[{i}]" for i in range(4)]
    second = parsed.records[1]
    assert second.event_type == "PilgrimRegistered"
    assert second.nationality == "IDN"  # sent as alpha-2 "ID"
    assert second.payload["pilgrim"]["surname"] == "SIREGAR"
    assert parsed.records[2].payload["pilgrim"]["passport_number"] == "C5510237"  # spaces removed


def test_bad_registrations_are_rejected_alone_with_path_and_field() -> None:
    parsed = connector().parse((FEEDS / "02-lahore-agent-with-errors.json").read_bytes(), "f2")
    assert len(parsed.records) == 2
    by_location = {r.location: r for r in parsed.rejections}
    assert by_location["$.registrations[1]"].field == "pilgrim.birth_date"
    assert by_location["$.registrations[2]"].field == "pilgrim.nationality"
    assert "PAKISTAN" in by_location["$.registrations[2]"].reason
    assert json.loads(parsed.raw_rejected[0])["registration_id"] == "R-2026-004502"


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b"\xff\xfe not json", None, "not JSON"),
        (b'{"registrations": []}', "operator_code", "Field required"),
        (b'{"operator_code": "OP-1", "registrations": []}', "registrations", "at least 1"),
        (b"[1, 2]", None, "valid dictionary"),
    ],
)
def test_unusable_documents_are_rejected_whole(body: bytes, field: str | None, reason: str) -> None:
    with pytest.raises(InputRejected) as err:
        connector().parse(body, "req-9")
    assert err.value.rejection.input == "req-9"
    assert err.value.rejection.field == field
    assert reason in err.value.rejection.reason


def test_runtime_publishes_events_and_quarantines_rejections() -> None:
    producer = FakeProducer()
    result = runtime(producer).ingest((FEEDS / "02-lahore-agent-with-errors.json").read_bytes(), "http:ops:req-1")
    assert (result.outcome, result.accepted, len(result.rejections)) == ("partial", 2, 2)
    events = producer.on("journey.events")
    assert len(events) == 2
    assert all(key and key.startswith(b"pk_") for _, _, key, _ in events)
    quarantined = producer.on("journey.quarantine")
    assert len(quarantined) == 2
    headers = dict(quarantined[0][3])
    assert headers["hub_location"] == b"$.registrations[1]"
    assert headers["hub_field"] == b"pilgrim.birth_date"
    assert headers["hub_connector"] == b"operators-http"
    assert b"R-2026-004502" in (quarantined[0][1] or b"")


def test_a_rejected_input_is_quarantined_raw() -> None:
    producer = FakeProducer()
    body = (FEEDS / "04-truncated-upload.json").read_bytes()
    result = runtime(producer).ingest(body, "http:ops:req-2")
    assert (result.outcome, result.accepted) == ("rejected", 0)
    assert producer.on("journey.events") == []
    [(_, value, _, headers)] = producer.on("journey.quarantine")
    assert value == body
    assert dict(headers)["hub_rejection_kind"] == b"input"


def test_event_ids_follow_the_source_position_so_retries_repeat_them() -> None:
    body = (FEEDS / "01-jakarta-agent-group.json").read_bytes()
    first = runtime(FakeProducer()).ingest(body, "http:ops:idem-1")
    again = runtime(FakeProducer()).ingest(body, "http:ops:idem-1")
    other = runtime(FakeProducer()).ingest(body, "http:ops:idem-2")
    assert first.event_ids == again.event_ids
    assert set(first.event_ids).isdisjoint(other.event_ids)
    assert len(set(first.event_ids)) == 4


def test_events_decode_with_envelope_and_source_position() -> None:
    producer = FakeProducer()
    runtime(producer).ingest((FEEDS / "03-cairo-single.json").read_bytes(), "http:ops:req-3")
    [(_, value, key, headers)] = producer.on("journey.events")
    event_type, event = Codec(SchemaCatalogue()).decode(value or b"")
    envelope = event["envelope"]
    assert event_type == "PilgrimRegistered"
    assert envelope["source"] == {
        "agency": "operators",
        "connector": "operators-http",
        "position": "http:ops:req-3#$.registrations[0]",
    }
    assert envelope["pilgrim_key"].encode() == key
    assert len(envelope["trace_id"]) == 32
    assert dict(headers)["ce_id"] == envelope["event_id"].encode()
    assert event["pilgrim"]["passport_number"] == "A29384756"
