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

import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from prometheus_client import Counter, Histogram

from connectors.base import Connector, JourneyRecord, Parsed
from connectors.identity import PilgrimKeyer
from connectors.rejections import InputRejected, Rejection
from schemas.codec import Codec, CodecError, EncodedEvent
from streaming.kafka import Delivery, Producer

logger = logging.getLogger(__name__)

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

    def to_dict(self) -> dict[str, object]:
        return {
            "input": self.input_name,
            "outcome": self.outcome,
            "accepted": self.accepted,
            "rejected": len(self.rejections),
            "event_ids": self.event_ids,
            "rejections": [r.to_dict() for r in self.rejections],
        }


def new_trace_id() -> str:
    return secrets.token_hex(16)


class IngestRuntime:
    """Runs one connector instance: parse, envelope, encode, publish, quarantine."""

    def __init__(
        self, connector: Connector, codec: Codec, keyer: PilgrimKeyer, producer: Producer, topics: IngestTopics
    ) -> None:
        self.connector = connector
        self.codec = codec
        self.keyer = keyer
        self.producer = producer
        self.topics = topics
        self.name = connector.config.name
        self.agency = connector.agency

    def ingest(self, data: bytes, input_name: str, trace_id: str | None = None) -> IngestResult:
        """Publish everything usable in ``data``; quarantine the rest. Raises StreamingError if Kafka fails."""
        started = time.perf_counter()
        trace_id = trace_id or new_trace_id()
        try:
            parsed = self.connector.parse(data, input_name)
        except InputRejected as exc:
            self._quarantine(exc.rejection, data, kind="input").wait()
            REJECTIONS.labels(self.agency, self.name, "input").inc()
            INPUTS.labels(self.agency, self.name, "rejected").inc()
            logger.info("rejected input %s: %s", input_name, exc.rejection)
            return IngestResult(input_name, "rejected", 0, rejections=[exc.rejection])

        deliveries: list[Delivery] = []
        event_ids: list[str] = []
        ingested_at = datetime.now(UTC)
        for record in parsed.records:
            try:
                event_id, encoded = self._encode(record, input_name, ingested_at, trace_id)
            except (ValueError, CodecError) as exc:
                rejection = Rejection(input_name, record.position, None, str(exc))
                parsed.reject(rejection, repr(record.payload).encode())
                continue
            deliveries.append(self.producer.send(self.topics.events, encoded.value, encoded.key, encoded.headers))
            event_ids.append(event_id)
            EVENTS.labels(self.agency, self.name, record.event_type).inc()
        deliveries.extend(
            self._quarantine(rejection, raw, kind="record")
            for rejection, raw in zip(parsed.rejections, parsed.raw_rejected, strict=True)
        )
        for delivery in deliveries:
            delivery.wait()
        if parsed.rejections:
            REJECTIONS.labels(self.agency, self.name, "record").inc(len(parsed.rejections))
        outcome = _outcome(parsed, len(event_ids))
        INPUTS.labels(self.agency, self.name, outcome).inc()
        DURATION.labels(self.name).observe(time.perf_counter() - started)
        return IngestResult(input_name, outcome, len(event_ids), event_ids, list(parsed.rejections))

    def _encode(
        self, record: JourneyRecord, input_name: str, ingested_at: datetime, trace_id: str
    ) -> tuple[str, EncodedEvent]:
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
        return event_id, self.codec.encode(record.event_type, event, key=kafka_key.encode())

    def _quarantine(self, rejection: Rejection, raw: bytes, kind: str) -> Delivery:
        headers = [
            ("hub_agency", self.agency.encode()),
            ("hub_connector", self.name.encode()),
            ("hub_rejection_kind", kind.encode()),
            ("hub_input", rejection.input.encode()),
            ("hub_location", rejection.location.encode()),
            ("hub_field", (rejection.field or "").encode()),
            ("hub_reason", rejection.reason.encode()),
            ("hub_rejected_at", datetime.now(UTC).isoformat().encode()),
        ]
        return self.producer.send(self.topics.quarantine, raw, self.name.encode(), headers)


def _outcome(parsed: Parsed, accepted: int) -> Literal["accepted", "partial", "rejected"]:
    if not parsed.rejections:
        return "accepted"
    return "partial" if accepted else "rejected"
