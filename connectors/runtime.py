"""Connector runtime: parsed records in, acknowledged Avro events on Kafka out.

For one input (an HTTP body, a dropped file, a poll page) the runtime asks the connector to parse
it, wraps each record in the common envelope (deterministic event id from the source position,
pilgrim key, trace id), encodes it with the codec and produces it to the journey topic. Rejected
inputs and records go to the quarantine topic, raw, with headers naming the input, location,
field and reason. :meth:`IngestRuntime.ingest` returns only once Kafka has acknowledged every
record it produced (events and quarantine alike), so an input the runtime reports as taken is
never lost; if Kafka does not acknowledge, it raises and the sender must retry.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from prometheus_client import Counter, Histogram

from connectors.base import Connector, JourneyRecord, Parsed
from connectors.identity import PilgrimKeyer
from connectors.rejections import InputRejected, Rejection
from schemas.codec import Codec, CodecError, EncodedEvent
from streaming.kafka import Delivery, Producer, StreamingError

logger = logging.getLogger(__name__)

# Below Kafka's default 1 MiB record limit, with room for headers.
MAX_QUARANTINE_RECORD_BYTES = 900_000
EVENT_ID_NAMESPACE = uuid.UUID("6b1f8a52-0c55-4a8e-9a43-5d3f3c1e2a10")

EVENTS = Counter("hub_ingest_events", "Journey events accepted and published.", ["agency", "connector", "event_type"])
REJECTIONS = Counter(
    "hub_ingest_rejections",
    "Inputs (kind=input) and records (kind=record) refused and quarantined.",
    ["agency", "connector", "kind"],
)
INPUTS = Counter("hub_ingest_inputs", "Inputs processed, by outcome.", ["agency", "connector", "outcome"])
DURATION = Histogram(
    "hub_ingest_duration_seconds",
    "Time from receiving an input to Kafka acknowledging all of it.",
    ["connector"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@dataclass(frozen=True)
class IngestTopics:
    events: str
    quarantine: str


@dataclass
class IngestResult:
    input_name: str
    outcome: Literal["accepted", "partial", "rejected"]
    accepted: int
    event_ids: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    whole_input_rejected: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "input": self.input_name,
            "outcome": self.outcome,
            "accepted": self.accepted,
            "rejected": len(self.rejections),
            "event_ids": self.event_ids,
            "rejections": [r.to_dict() for r in self.rejections],
        }


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    event_type: str
    event_id: str
    event: dict[str, Any]
    encoded: EncodedEvent


@dataclass
class Prepared:
    parsed: Parsed
    events: list[PreparedEvent] = field(default_factory=list)


class Checkpoint(Protocol):
    """Progress written with an input's events (same transaction), so a restart neither skips nor repeats."""

    def record(self, result: IngestResult) -> tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]: ...


def new_trace_id() -> str:
    return secrets.token_hex(16)


class IngestRuntime:
    """Runs one connector instance: parse, envelope, encode, publish, quarantine."""

    def __init__(
        self,
        connector: Connector,
        codec: Codec,
        keyer: PilgrimKeyer,
        producer: Producer | None,
        topics: IngestTopics,
        transactional: bool = False,
        spill_dir: Path = Path(".data/quarantine"),
    ) -> None:
        self.transactional = transactional
        self.spill_dir = spill_dir
        self.connector = connector
        self.codec = codec
        self.keyer = keyer
        self.producer = producer
        self.topics = topics
        self.name = connector.config.name
        self.agency = connector.agency

    def prepare(self, data: bytes, input_name: str, trace_id: str | None = None) -> Prepared:
        """Parse ``data`` and build the enveloped events, without Kafka. Raises InputRejected."""
        trace_id = trace_id or new_trace_id()
        parsed = self.connector.parse(data, input_name)
        prepared = Prepared(parsed)
        ingested_at = datetime.now(UTC)
        for record in parsed.records:
            try:
                prepared.events.append(self._envelope(record, input_name, ingested_at, trace_id))
            except (ValueError, CodecError) as exc:
                parsed.reject(Rejection(input_name, record.position, None, str(exc)), repr(record.payload).encode())
        return prepared

    def ingest(
        self, data: bytes, input_name: str, trace_id: str | None = None, checkpoint: Checkpoint | None = None
    ) -> IngestResult:
        """Publish everything usable in ``data``; quarantine the rest.

        Returns once Kafka acknowledged it all. With a transactional producer, events, quarantined
        records and ``checkpoint`` are written in one transaction: all visible, or none.
        Raises StreamingError if Kafka fails (nothing is then reported as taken).
        """
        started = time.perf_counter()
        sends: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        try:
            prepared = self.prepare(data, input_name, trace_id)
        except InputRejected as exc:
            sends.append(self._quarantine(exc.rejection, data, kind="input"))
            result = IngestResult(input_name, "rejected", 0, rejections=[exc.rejection], whole_input_rejected=True)
        else:
            parsed = prepared.parsed
            for event in prepared.events:
                sends.append((self.topics.events, event.encoded.value, event.encoded.key, event.encoded.headers))
            sends.extend(
                self._quarantine(rejection, raw, kind="record")
                for rejection, raw in zip(parsed.rejections, parsed.raw_rejected, strict=True)
            )
            result = IngestResult(
                input_name,
                _outcome(parsed, len(prepared.events)),
                len(prepared.events),
                [e.event_id for e in prepared.events],
                list(parsed.rejections),
            )
        if checkpoint is not None:
            sends.append(checkpoint.record(result))
        self._publish(sends)
        self._count(result, [] if result.whole_input_rejected else prepared.events)
        DURATION.labels(self.name).observe(time.perf_counter() - started)
        if result.rejections:
            logger.info(
                "%s: %s, %d rejection(s), first: %s",
                input_name,
                result.outcome,
                len(result.rejections),
                result.rejections[0],
            )
        return result

    def _publish(self, sends: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]]) -> None:
        if self.producer is None:
            raise RuntimeError(f"connector {self.name} runs without Kafka (dry run): use prepare()")
        if self.transactional:
            self.producer.begin()
            try:
                for topic, value, key, headers in sends:
                    self.producer.send(topic, value, key, headers)
                self.producer.commit()
            except StreamingError:
                with contextlib.suppress(StreamingError):
                    self.producer.abort()
                raise
            return
        deliveries: list[Delivery] = [self.producer.send(t, v, k, h) for t, v, k, h in sends]
        for delivery in deliveries:
            delivery.wait()

    def _count(self, result: IngestResult, events: list[PreparedEvent]) -> None:
        for event in events:
            EVENTS.labels(self.agency, self.name, event.event_type).inc()
        kind = "input" if result.whole_input_rejected else "record"
        if result.rejections:
            REJECTIONS.labels(self.agency, self.name, kind).inc(len(result.rejections))
        INPUTS.labels(self.agency, self.name, result.outcome).inc()

    def _envelope(self, record: JourneyRecord, input_name: str, ingested_at: datetime, trace_id: str) -> PreparedEvent:
        if record.event_type not in self.connector.event_types:
            raise ValueError(f"connector {self.name} may not publish {record.event_type}")
        position = f"{input_name}#{record.position}"
        pilgrim_key: str | None = None
        if record.nationality is not None and record.passport_number is not None:
            pilgrim_key = kafka_key = self.keyer.key(record.nationality, record.passport_number)
        elif record.partition_key:
            kafka_key = record.partition_key
        else:
            raise ValueError("record has neither a person's identity nor a partition key")
        event_id = str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{self.name}|{position}|{record.event_type}"))
        envelope = {
            "event_id": event_id,
            "event_type": record.event_type,
            "occurred_at": record.occurred_at,
            "ingested_at": ingested_at,
            "source": {"agency": self.agency, "connector": self.name, "position": position},
            "pilgrim_key": pilgrim_key,
            "trace_id": trace_id,
        }
        event = {"envelope": envelope, **record.payload}
        return PreparedEvent(
            record.event_type, event_id, event, self.codec.encode(record.event_type, event, key=kafka_key.encode())
        )

    def _quarantine(
        self, rejection: Rejection, raw: bytes, kind: str
    ) -> tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]:
        headers = [
            ("hub_agency", self.agency.encode()),
            ("hub_connector", self.name.encode()),
            ("hub_rejection_kind", kind.encode()),
            ("hub_input", rejection.input.encode()),
            ("hub_location", rejection.location.encode()),
            ("hub_field", (rejection.field or "").encode()),
            ("hub_reason", rejection.reason.encode()),
            ("hub_rejected_at", datetime.now(UTC).isoformat().encode()),
            ("hub_payload_bytes", str(len(raw)).encode()),
            ("hub_payload_sha256", hashlib.sha256(raw).hexdigest().encode()),
        ]
        if len(raw) > MAX_QUARANTINE_RECORD_BYTES:
            # Kafka refuses records over its message size limit: keep the head in the topic and the
            # whole payload on disk, named by its hash, and say so in the headers.
            spilled = self._spill(raw)
            headers.append(("hub_payload_truncated", b"true"))
            headers.append(("hub_payload_file", str(spilled).encode()))
            raw = raw[:MAX_QUARANTINE_RECORD_BYTES]
        return (self.topics.quarantine, raw, self.name.encode(), headers)

    def _spill(self, raw: bytes) -> Path:
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        path = self.spill_dir / f"{self.name}-{hashlib.sha256(raw).hexdigest()[:32]}.bin"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(raw)
            os.replace(tmp, path)
        return path


def _outcome(parsed: Parsed, accepted: int) -> Literal["accepted", "partial", "rejected"]:
    if not parsed.rejections:
        return "accepted"
    return "partial" if accepted else "rejected"
