"""Avro codec for journey events: Confluent wire format plus CloudEvents Kafka binary-mode headers.

Value bytes: magic byte ``0``, the 4-byte big-endian schema id from the catalogue, then the Avro
binary body. Headers (CloudEvents 1.0 Kafka protocol binding, binary mode): ``ce_specversion``,
``ce_id``, ``ce_source``, ``ce_type``, ``ce_time``, ``content-type``, plus ``traceparent``. The key
is the pseudonymous ``pilgrim_key``, so one pilgrim's events stay in order on one partition.

Schemas are parsed once, when the codec is built. Decoding resolves the writer's schema (from the
id in the bytes) against the latest version of the same subject, so old data reads as new events.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fastavro

from schemas.catalogue import SchemaCatalogue

MAGIC = 0
HEADER = struct.Struct(">bI")
CONTENT_TYPE = b"application/vnd.apache.avro+binary"
EVENT_NAMESPACE = "hajj.journey"


class CodecError(Exception):
    """Bytes that are not a journey event we know, or an event that does not fit its schema."""


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def subject_for(event_type: str) -> str:
    """Subject (Avro full name) of a short event type name: PilgrimRegistered -> hajj.journey.PilgrimRegistered."""
    return event_type if "." in event_type else f"{EVENT_NAMESPACE}.{event_type}"


def _rfc3339(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return datetime.fromtimestamp(int(value) / 1000, UTC).isoformat().replace("+00:00", "Z")


class Codec:
    """Encodes and decodes journey events; one instance per process, built at start."""

    def __init__(self, catalogue: SchemaCatalogue) -> None:
        self.catalogue = catalogue
        self._writers: dict[str, tuple[int, Any]] = {}
        self._parsed_by_id: dict[int, Any] = {}
        for subject in catalogue.subjects():
            for version in catalogue.versions(subject):
                self._parsed_by_id[version.id] = fastavro.parse_schema(version.schema)
            latest = catalogue.latest(subject)
            self._writers[subject] = (latest.id, self._parsed_by_id[latest.id])
        self._readers: dict[int, Any] = {}

    def event_types(self) -> list[str]:
        return sorted(s.rsplit(".", 1)[-1] for s in self._writers)

    def schemas_by_type(self) -> dict[str, dict[str, Any]]:
        """Latest schema of every event type, by short name (for validating subscriptions)."""
        return {s.rsplit(".", 1)[-1]: self.catalogue.latest(s).schema for s in self._writers}

    def encode(self, event_type: str, event: dict[str, Any], key: bytes | None = None) -> EncodedEvent:
        """Encode a full event (``envelope`` + payload fields) with the latest schema of its type.

        The Kafka key is the envelope's ``pilgrim_key`` unless ``key`` is given (events about a
        flight or a group have no pilgrim key).
        """
        subject = subject_for(event_type)
        try:
            schema_id, parsed = self._writers[subject]
        except KeyError:
            raise CodecError(f"no schema for event type {event_type}") from None
        buffer = io.BytesIO()
        buffer.write(HEADER.pack(MAGIC, schema_id))
        try:
            fastavro.schemaless_writer(buffer, parsed, event, strict_allow_default=True)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CodecError(f"{event_type} does not fit its schema: {exc}") from exc
        envelope = event["envelope"]
        source = envelope["source"]
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", envelope["event_id"].encode()),
            ("ce_source", f"/agencies/{source['agency']}/{source['connector']}".encode()),
            ("ce_type", subject.encode()),
            ("ce_time", _rfc3339(envelope["occurred_at"]).encode()),
            ("content-type", CONTENT_TYPE),
            ("traceparent", f"00-{envelope['trace_id']}-{envelope['event_id'].replace('-', '')[:16]}-01".encode()),
        ]
        if key is None:
            if not envelope.get("pilgrim_key"):
                raise CodecError(f"{event_type}: no pilgrim_key and no explicit key")
            key = envelope["pilgrim_key"].encode()
        return EncodedEvent(key, buffer.getvalue(), headers)

    @staticmethod
    def schema_id(value: bytes) -> int:
        if len(value) < HEADER.size or value[0] != MAGIC:
            raise CodecError("not Confluent wire format (missing magic byte 0)")
        return int(HEADER.unpack_from(value)[1])

    def decode(self, value: bytes) -> tuple[str, dict[str, Any]]:
        """Return (event type, event) from wire-format bytes, resolved to the latest schema."""
        schema_id = self.schema_id(value)
        reader = self._readers.get(schema_id)
        if reader is None:
            version = self.catalogue.by_id(schema_id)
            latest = self.catalogue.latest(version.subject)
            self._readers[schema_id] = reader = (
                version.subject.rsplit(".", 1)[-1],
                self._parsed_by_id[version.id],
                self._parsed_by_id[latest.id],
            )
        event_type, writer_schema, reader_schema = reader
        try:
            record = fastavro.schemaless_reader(io.BytesIO(value[HEADER.size :]), writer_schema, reader_schema)
        except (EOFError, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise CodecError(f"schema id {schema_id}: cannot decode body: {exc}") from exc
        if not isinstance(record, dict):
            raise CodecError(f"schema id {schema_id}: not a record")
        return event_type, record
