"""One conformance suite that every registered connector passes (no broker).

For each connector type in the registry: it declares an agency and event types that have schemas;
every fixture file of its agency parses into events that fit their schemas and carry a position,
or into rejections that name input, location and reason; and arbitrary bytes never raise anything
but InputRejected.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import REGISTRY, Connector, load_all
from connectors.identity import PilgrimKeyer
from connectors.rejections import InputRejected
from connectors.runtime import IngestRuntime, IngestTopics
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec, subject_for

load_all()
FIXTURES = Path(__file__).parents[1] / "fixtures"
CODEC = Codec(SchemaCatalogue())
TYPES = sorted(REGISTRY)


def build(type_name: str) -> Connector:
    model, factory = REGISTRY[type_name]
    config = model.model_validate(
        {"name": f"{type_name}-conformance", "type": type_name, "transport": {"kind": "http", "path": "/x"}}
    )
    return factory(config)


def runtime(connector: Connector) -> IngestRuntime:
    return IngestRuntime(
        connector,
        CODEC,
        PilgrimKeyer(b"conformance-secret-0123"),
        None,  # type: ignore[arg-type]
        IngestTopics("e", "q"),
    )


def fixture_files(type_name: str) -> list[Path]:
    folder = FIXTURES / build(type_name).agency
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.endswith((".expected.json", ".py")))


CASES = [(t, f) for t in TYPES for f in fixture_files(t)]


def test_every_agency_has_a_connector() -> None:
    assert {build(t).agency for t in TYPES} >= {"operators"}


@pytest.mark.parametrize("type_name", TYPES)
def test_declares_agency_and_event_types_with_schemas(type_name: str) -> None:
    connector = build(type_name)
    assert connector.agency
    assert connector.event_types
    for event_type in connector.event_types:
        assert CODEC.catalogue.latest(subject_for(event_type))


@pytest.mark.parametrize("type_name", TYPES)
def test_has_golden_fixtures(type_name: str) -> None:
    assert fixture_files(type_name), f"add real-shaped examples to tests/fixtures/{build(type_name).agency}/"


@pytest.mark.parametrize(("type_name", "path"), CASES, ids=[f"{t}:{p.name}" for t, p in CASES])
def test_fixture_parses_into_valid_events_or_named_rejections(type_name: str, path: Path) -> None:
    connector = build(type_name)
    try:
        prepared = runtime(connector).prepare(path.read_bytes(), path.name)
    except InputRejected as exc:
        rejection = exc.rejection
        assert rejection.input == path.name and rejection.location and rejection.reason
        return
    for event in prepared.events:
        assert event.event_type in connector.event_types
        envelope = event.event["envelope"]
        assert envelope["source"]["position"].startswith(f"{path.name}#")
        assert isinstance(envelope["occurred_at"], datetime) and envelope["occurred_at"].tzinfo is not None
        decoded_type, decoded = CODEC.decode(event.encoded.value)
        assert decoded_type == event.event_type
        assert decoded["envelope"]["event_id"] == event.event_id
    parsed = prepared.parsed
    assert len(parsed.rejections) == len(parsed.raw_rejected)
    for rejection in parsed.rejections:
        assert rejection.input == path.name and rejection.location and rejection.reason
    assert prepared.events or parsed.rejections, "a fixture should give events or rejections"


@pytest.mark.parametrize("type_name", TYPES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=2000), st.text(max_size=2000).map(str.encode)))
def test_garbage_is_refused_never_crashes(type_name: str, data: bytes) -> None:
    connector = build(type_name)
    try:
        parsed = connector.parse(data, "fuzz")
    except InputRejected:
        return
    assert len(parsed.rejections) == len(parsed.raw_rejected)


@pytest.mark.parametrize(("type_name", "path"), CASES, ids=[f"{t}:{p.name}" for t, p in CASES])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0), flip=st.integers(min_value=0), byte=st.integers(0, 255))
def test_mutated_fixtures_never_crash(type_name: str, path: Path, cut: int, flip: int, byte: int) -> None:
    data = bytearray(path.read_bytes())
    if data:
        data[flip % len(data)] = byte
        data = data[: len(data) - cut % max(1, len(data) // 4)]
    with contextlib.suppress(InputRejected):
        runtime(build(type_name)).prepare(bytes(data), "mutant")
