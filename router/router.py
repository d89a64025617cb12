"""The router: fans each journey event out to the subscribers entitled to its type.

Reads the journey topic in a consumer group; for each event, every subscription whose event types
include it gets a copy (same key, value and CloudEvents headers) on its target topic. Offsets are
committed only after Kafka acknowledged every copy, so a crash repeats deliveries rather than
losing them (at-least-once). An event whose type cannot be told is sent to the dead-letter topic
with the reason, never dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from router.subscriptions import Subscription
from schemas.codec import Codec, CodecError
from streaming.kafka import Consumer, Delivery, Producer, Record, StreamingError

logger = logging.getLogger(__name__)

CONSUMED = Counter("hub_router_consumed", "Journey events read by the router.", ["event_type"])
DELIVERIES = Counter(
    "hub_router_deliveries", "Routing decisions per subscriber (delivered or filtered out).", ["subscriber", "outcome"]
)
DEAD_LETTERS = Counter("hub_router_dead_letters", "Events the router could not route.", ["reason"])


@dataclass(frozen=True)
class RouterTopics:
    events: str
    dead_letter: str


class Router:
    """Consume, match, copy, then commit."""

    def __init__(
        self,
        subscriptions: Sequence[Subscription],
        consumer: Consumer,
        producer: Producer,
        codec: Codec,
        topics: RouterTopics,
    ) -> None:
        self.subscriptions = list(subscriptions)
        self.consumer = consumer
        self.producer = producer
        self.codec = codec
        self.topics = topics

    def event_type(self, record: Record) -> str:
        ce_type = record.header("ce_type")
        if ce_type is not None:
            return ce_type.decode().rsplit(".", 1)[-1]
        if record.value is None:
            raise CodecError("empty value and no ce_type header")
        return self.codec.catalogue.by_id(Codec.schema_id(record.value)).subject.rsplit(".", 1)[-1]

    def route(self, records: Sequence[Record]) -> dict[tuple[str, int], int]:
        """Deliver ``records``; return the next offsets to commit once all copies are acknowledged."""
        deliveries: list[Delivery] = []
        offsets: dict[tuple[str, int], int] = {}
        for record in records:
            offsets[(record.topic, record.partition)] = record.offset + 1
            try:
                event_type = self.event_type(record)
            except Exception as exc:
                deliveries.append(self._dead_letter(record, f"unknown event type: {exc}"))
                continue
            CONSUMED.labels(event_type).inc()
            for sub in self.subscriptions:
                if event_type not in sub.event_types:
                    DELIVERIES.labels(sub.id, "filtered").inc()
                    continue
                headers = [*record.headers, ("hub_subscriber", sub.id.encode())]
                deliveries.append(self.producer.send(sub.target.topic, record.value, record.key, headers))
                DELIVERIES.labels(sub.id, "delivered").inc()
        for delivery in deliveries:
            delivery.wait()
        return offsets

    def _dead_letter(self, record: Record, reason: str) -> Delivery:
        DEAD_LETTERS.labels("undecodable").inc()
        headers = [
            *record.headers,
            ("hub_dlq_reason", reason.encode()),
            ("hub_original", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        return self.producer.send(self.topics.dead_letter, record.value, record.key, headers)

    def run(self, stop: threading.Event, poll_timeout_ms: int = 500) -> None:
        """Route until ``stop`` is set. Kafka outages are retried; nothing is committed before delivery."""
        while not stop.is_set():
            records: list[Record] = []
            try:
                records = self.consumer.poll(timeout_ms=poll_timeout_ms)
                if records:
                    self.consumer.commit(self.route(records))
            except StreamingError as exc:
                logger.warning("router: %s; redelivering the batch in 1s", exc)
                self.consumer.seek(_batch_start(records))
                stop.wait(1.0)


def _batch_start(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    start: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        start[key] = min(start.get(key, record.offset), record.offset)
    return start
