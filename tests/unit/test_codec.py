"""Avro codec: Confluent wire format, CloudEvents headers, schema evolution on read."""

from __future__ import annotations

import copy
import struct
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from schemas.catalogue import SchemaCatalogue, load_sources
from schemas.codec import Codec, CodecError


def event(**changes: object) -> dict:
    base = {
        "envelope": {
            "event_id": "2f1c4a52-4a7e-5b55-9d4f-0a1b2c3d4e5f",
            "event_type": "PilgrimRegistered",
            "occurred_at": datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
            "ingested_at": datetime(2026, 12, 1, 8, 30, 1, tzinfo=UTC),
            "source": {"agency": "operators", "connector": "operators-http", "position": "http:x#$.registrations[0]"},
            "pilgrim_key": "pk_0123456789abcdef0123456789abcdef",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        },
        "registration_id": "R-1",
        "operator_code": "OP-1",
        "season": "umrah",
        "pilgrim": {
            "surname": "ERIKSSON",
            "given_names": "ANNA MARIA",
            "sex": "F",
            "birth_date": date(1974, 8, 12),
            "nationality": "UTO",
            "passport_number": "L898902C3",
        },
    }
    base.update(changes)
    return base


def test_round_trip_with_wire_format_and_headers() -> None:
    codec = Codec(SchemaCatalogue())
    encoded = codec.encode("PilgrimRegistered", event())
    magic, schema_id = struct.unpack(">bI", encoded.value[:5])
    assert magic == 0
    assert schema_id == SchemaCatalogue().latest("hajj.journey.PilgrimRegistered").id
    assert encoded.key == b"pk_0123456789abcdef0123456789abcdef"
    headers = dict(encoded.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == b"2f1c4a52-4a7e-5b55-9d4f-0a1b2c3d4e5f"
    assert headers["ce_type"] == b"hajj.journey.PilgrimRegistered"
    assert headers["ce_source"] == b"/agencies/operators/operators-http"
    assert headers["ce_time"] == b"2026-12-01T08:30:00Z"
    assert headers["content-type"] == b"application/vnd.apache.avro+binary"
    event_type, decoded = codec.decode(encoded.value)
    assert event_type == "PilgrimRegistered"
    assert decoded["pilgrim"]["birth_date"] == date(1974, 8, 12)
    assert decoded["envelope"]["occurred_at"] == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert decoded["housing"] is None


def test_an_event_that_does_not_fit_is_refused() -> None:
    codec = Codec(SchemaCatalogue())
    with pytest.raises(CodecError, match="PilgrimRegistered"):
        codec.encode("PilgrimRegistered", event(season=42))
    with pytest.raises(CodecError, match="no schema"):
        codec.encode("NoSuchEvent", event())


def test_bytes_that_are_not_ours_are_refused() -> None:
    codec = Codec(SchemaCatalogue())
    with pytest.raises(CodecError, match="magic"):
        codec.decode(b'{"json": true}')
    with pytest.raises(Exception, match="unknown schema id 99999"):
        codec.decode(struct.pack(">bI", 0, 99999) + b"\x00")
    good = codec.encode("PilgrimRegistered", event()).value
    with pytest.raises(CodecError):
        codec.decode(good[:20])


def test_old_data_reads_as_the_new_version(tmp_path: Path) -> None:
    """Bytes written with v1 decode with v2's shape once v2 is registered (new field -> default)."""
    catalogue = SchemaCatalogue(tmp_path / "c.json")
    v1 = load_sources()["hajj.journey.PilgrimRegistered"]
    catalogue.register("hajj.journey.PilgrimRegistered", v1)
    old_bytes = Codec(catalogue).encode("PilgrimRegistered", event()).value
    v2 = copy.deepcopy(v1)
    v2["fields"].append({"name": "insurance_ref", "type": ["null", "string"], "default": None})
    catalogue.register("hajj.journey.PilgrimRegistered", v2)
    _, decoded = Codec(catalogue).decode(old_bytes)
    assert decoded["insurance_ref"] is None
    assert decoded["registration_id"] == "R-1"
