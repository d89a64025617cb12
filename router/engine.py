"""The routing core: one worker per subscription, match → project → deliver, retry, dead-letter.

Each subscription has its own consumer group (``<router group>.<subscriber>``) and its own worker
thread: a bulkhead, so a slow or dead subscriber never delays another. A worker reads the journey
topic (read_committed) and the replay topic, and for each event in partition order:

1. **match**: the event type is one of the subscription's, and its filter holds;
2. **project**: only the allowed fields, masked as configured;
3. **deliver** to the target:

   * **Kafka target** (exactly-once): the projected event, Avro-encoded with the subscriber's own
     schema (derived from the projection, registered under a stable id), the delivery audit
     record and the consumer offsets are written in one Kafka transaction per batch
     (``send_offsets_to_transaction``). A failed transaction is aborted and the batch re-read; a
     producer that cannot abort (fenced, fatal) is re-created.
   * **Webhook** (at-least-once, idempotency key = event id): transient failures are retried with
     tenacity, exponential backoff with jitter (honouring Retry-After), within the subscription's
     retry budget (attempts and seconds);
     permanent failures and spent budgets go to the dead-letter topic. Offsets are committed only
     after every event of the batch was delivered or dead-lettered.

Dead letters keep the original bytes and headers, plus ``hub_dlq_*`` headers naming subscriber,
error, attempts and the original topic/partition/offset. ``hub dlq replay`` puts them on the replay
topic addressed to their subscriber. Every delivery (and dead letter) is recorded in the audit
topic: subscriber, event id, pilgrim key, the fields delivered, time, outcome.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fastavro
from prometheus_client import Counter, Gauge, Histogram
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    stop_when_event_set,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from router.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from router.filters import compile_filter
from router.projection import Projector
from router.subscriptions import KafkaTarget, Subscription
from router.webhook import WebhookSender, WebhookTarget
from schemas.codec import HEADER, MAGIC, Codec, CodecError, subject_for
from streaming.kafka import (
    ClientSettings,
    Consumer,
    Producer,
    Record,
    StreamingError,
    batch_start,
    next_offsets,
)

logger = logging.getLogger(__name__)

DELIVERIES = Counter(
    "hub_router_deliveries",
    "Routing outcomes per subscriber: delivered, filtered, dead_lettered.",
    ["subscriber", "outcome"],
)
RETRIES = Counter("hub_router_retries", "Delivery attempts retried after a transient failure.", ["subscriber"])
LATENCY = Histogram(
    "hub_router_delivery_latency_seconds",
    "From the event's append to the journey topic to its delivery.",
    ["subscriber"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
LAG = Gauge("hub_router_consumer_lag", "Events on the journey topic not yet handled by the subscriber.", ["subscriber"])

DERIVED_ID_BASE = 1_000_000
REPLAY_HEADER = "hub_replay_for"
AUDIT_BATCH = 1000  # entries per audit record: well under Kafka's 1 MiB record limit


@dataclass(frozen=True)
class RouterTopics:
    events: str
    replay: str
    dead_letter: str
    audit: str
    schemas: str


class DerivedSchemas:
    """Subscriber schemas derived from projections, with ids stable across runs and processes.

    The id is a function of the schema's fingerprint (in a range above the hub's own catalogue), so
    every router process derives the same id without coordination. Each schema is also published,
    keyed by id, to the schemas topic, where a subscriber looks it up to decode.
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], tuple[int, Any, dict[str, Any]]] = {}

    def get(
        self, projector: Projector, codec: Codec, subscriber: str, event_type: str
    ) -> tuple[int, Any, dict[str, Any]]:
        key = (subscriber, event_type)
        found = self._by_key.get(key)
        if found is None:
            full = codec.catalogue.latest(subject_for(event_type)).schema
            namespace = "hajj.deliver." + subscriber.replace("-", "_")
            schema = projector.derive_schema(full, event_type, namespace)
            digest = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()
            schema_id = DERIVED_ID_BASE + int(digest[:8], 16) % 1_000_000_000
            found = (schema_id, fastavro.parse_schema(schema), schema)
            self._by_key[key] = found
        return found


def _encode(schema_id: int, parsed: Any, record: dict[str, Any]) -> bytes:
    import io

    buffer = io.BytesIO()
    buffer.write(HEADER.pack(MAGIC, schema_id))
    fastavro.schemaless_writer(buffer, parsed, record)
    return buffer.getvalue()


def _event_type(record: Record, codec: Codec) -> str:
    ce_type = record.header("ce_type")
    if ce_type is not None:
        return ce_type.decode().rsplit(".", 1)[-1]
    return codec.catalogue.by_id(Codec.schema_id(record.value or b"")).subject.rsplit(".", 1)[-1]


Send = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]


@dataclass(frozen=True, slots=True)
class Selected:
    event_type: str
    event: dict[str, Any]
    projected: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    send: Send


class SubscriberWorker:
    """Delivers one subscription. Subclasses implement :meth:`handle_batch` for their target."""

    def __init__(
        self,
        sub: Subscription,
        settings: ClientSettings,
        group_prefix: str,
        codec: Codec,
        topics: RouterTopics,
        mask_key: bytes,
    ) -> None:
        self.sub = sub
        self.settings = settings
        self.codec = codec
        self.topics = topics
        self.group_id = f"{group_prefix}.{sub.id}"
        self.matches = compile_filter(sub.filter)
        self.projector = Projector(sub.projection, mask_key)
        self.consumer: Consumer | None = None
        self.busy = False
        """True while a polled batch is not yet delivered and committed."""
        self._last_lag = 0.0

    # ---- matching and projection --------------------------------------------------------------

    def select(self, record: Record) -> Selected | DeadLetter | None:
        """The matched and projected event; None when not for this subscriber; a dead letter when
        the record cannot be decoded."""
        addressed = record.header(REPLAY_HEADER)
        if record.topic == self.topics.replay and (addressed or b"").decode() != self.sub.id:
            return None
        try:
            event_type = _event_type(record, self.codec)
        except Exception as exc:
            return DeadLetter(self.dead_letter(record, PermanentDeliveryError(f"undecodable: {exc}"), 0))
        if event_type not in self.sub.event_types:
            DELIVERIES.labels(self.sub.id, "filtered").inc()
            return None
        try:
            _, event = self.codec.decode(record.value or b"")
        except Exception as exc:
            return DeadLetter(self.dead_letter(record, PermanentDeliveryError(f"undecodable: {exc}"), 0))
        if not self.matches(event):
            DELIVERIES.labels(self.sub.id, "filtered").inc()
            return None
        return Selected(event_type, event, self.projector.project(event))

    # ---- records the worker writes besides deliveries ------------------------------------------

    def dead_letter(self, record: Record, error: DeliveryError, attempts: int) -> Send:
        original = record.header("hub_dlq_original")
        headers = [(k, v) for k, v in record.headers if not k.startswith(("hub_dlq_", REPLAY_HEADER))]
        headers += [
            ("hub_dlq_subscriber", self.sub.id.encode()),
            ("hub_dlq_error", str(error)[:1000].encode()),
            (
                "hub_dlq_error_kind",
                ("transient" if isinstance(error, TransientDeliveryError) else "permanent").encode(),
            ),
            ("hub_dlq_attempts", str(attempts).encode()),
            ("hub_dlq_original", original or f"{record.topic}/{record.partition}/{record.offset}".encode()),
            ("hub_dlq_at", datetime.now(UTC).isoformat().encode()),
        ]
        DELIVERIES.labels(self.sub.id, "dead_lettered").inc()
        return (self.topics.dead_letter, record.value, record.key, headers)

    def audit(
        self, event_type: str, event: dict[str, Any], projected: dict[str, Any] | None, outcome: str
    ) -> dict[str, Any]:
        """The audit entry of one delivery (or dead letter): who received which fields about whom."""
        envelope = event["envelope"]
        return {
            "kind": "delivery",
            "subscriber": self.sub.id,
            "agency": self.sub.agency,
            "target": self.sub.target.kind,
            "event_id": envelope["event_id"],
            "event_type": event_type,
            "pilgrim_key": envelope.get("pilgrim_key"),
            "fields": self.projector.delivered_paths(projected) if projected is not None else [],
            "outcome": outcome,
            "at": datetime.now(UTC).isoformat(),
        }

    def audit_records(self, entries: list[dict[str, Any]]) -> list[Send]:
        """A batch's audit entries as few records (one per ``AUDIT_BATCH`` entries), keyed by subscriber."""
        return [
            (
                self.topics.audit,
                json.dumps(
                    {"kind": "deliveries", "subscriber": self.sub.id, "entries": entries[i : i + AUDIT_BATCH]}
                ).encode(),
                self.sub.id.encode(),
                [],
            )
            for i in range(0, len(entries), AUDIT_BATCH)
        ]

    def observe_delivery(self, record: Record) -> None:
        DELIVERIES.labels(self.sub.id, "delivered").inc()
        LATENCY.labels(self.sub.id).observe(max(0.0, time.time() - record.timestamp_ms / 1000))

    # ---- loop ----------------------------------------------------------------------------------

    def open_consumer(self) -> Consumer:
        return Consumer(
            self.settings,
            group_id=self.group_id,
            topics=[self.topics.events, self.topics.replay],
            read_committed=True,
            max_poll_records=1000,
            max_poll_interval_ms=900_000,
        )

    def handle_batch(self, records: Sequence[Record]) -> None:
        raise NotImplementedError

    def run(self, stop: threading.Event, poll_timeout_ms: int = 200) -> None:
        self.consumer = self.open_consumer()
        try:
            while not stop.is_set():
                records: list[Record] = []
                try:
                    records = self.consumer.poll(timeout_ms=poll_timeout_ms)
                    if records:
                        self.busy = True
                        self.handle_batch(records)
                    self.busy = False
                    self._report_lag()
                except StreamingError as exc:
                    logger.warning("subscriber %s: %s; re-reading the batch", self.sub.id, exc)
                    self.rewind(records)
                    stop.wait(1.0)
        finally:
            self.close()

    def rewind(self, records: Sequence[Record]) -> None:
        """After a failed batch: read it again."""
        assert self.consumer is not None
        self.consumer.seek(batch_start(records))

    def _report_lag(self) -> None:
        now = time.monotonic()
        if self.consumer is not None and now - self._last_lag > 5:
            self._last_lag = now
            with contextlib.suppress(StreamingError):
                LAG.labels(self.sub.id).set(self.consumer.lag())

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()


class KafkaTargetWorker(SubscriberWorker):
    """Exactly-once to the subscriber's topic: deliveries, audit and offsets in one transaction."""

    def __init__(self, *args: Any, instance: str = "0", derived: DerivedSchemas | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self.sub.target, KafkaTarget)
        self.target: KafkaTarget = self.sub.target
        self.transactional_id = f"{self.group_id}.{instance}"
        self.derived = derived or DerivedSchemas()
        self.producer: Producer | None = None
        self.published_schemas: set[int] = set()

    def _producer(self) -> Producer:
        if self.producer is None:
            self.producer = Producer(self.settings, transactional_id=self.transactional_id, linger_ms=5)
        return self.producer

    def handle_batch(self, records: Sequence[Record]) -> None:
        assert self.consumer is not None
        producer = self._producer()
        sends: list[Send] = []
        audits: list[dict[str, Any]] = []
        delivered: list[Record] = []
        new_schemas: list[int] = []
        for record in records:
            selected = self.select(record)
            if selected is None:
                continue
            if isinstance(selected, DeadLetter):
                sends.append(selected.send)
                continue
            event_type, event, projected = selected.event_type, selected.event, selected.projected
            schema_id, parsed, schema = self.derived.get(self.projector, self.codec, self.sub.id, event_type)
            try:
                value = _encode(schema_id, parsed, projected)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                sends.append(self.dead_letter(record, PermanentDeliveryError(f"does not fit schema: {exc}"), 1))
                audits.append(self.audit(event_type, event, None, "dead_lettered"))
                continue
            if schema_id not in self.published_schemas and schema_id not in new_schemas:
                new_schemas.append(schema_id)
                sends.append(
                    (
                        self.topics.schemas,
                        json.dumps(schema).encode(),
                        str(schema_id).encode(),
                        [("hub_subscriber", self.sub.id.encode())],
                    )
                )
            headers = [(k, v) for k, v in record.headers if k.startswith("ce_") or k in ("content-type", "traceparent")]
            headers += [("hub_subscriber", self.sub.id.encode()), ("hub_schema_id", str(schema_id).encode())]
            sends.append((self.target.topic, value, record.key, headers))
            audits.append(self.audit(event_type, event, projected, "delivered"))
            delivered.append(record)
        sends.extend(self.audit_records(audits))
        try:
            producer.begin()
            for send in sends:
                producer.send(*send)
            producer.send_offsets(self.consumer, next_offsets(records))
            producer.commit()
        except StreamingError as exc:
            self._recover(exc)
            raise
        for record in delivered:
            self.observe_delivery(record)
        self.published_schemas.update(new_schemas)

    def _recover(self, exc: StreamingError) -> None:
        """Discard the producer after a failed transaction whose outcome may be unknown (an
        indeterminate commit, a fenced or fatal producer)."""
        logger.warning("subscriber %s: transaction failed (%s); re-creating the producer", self.sub.id, exc)
        if self.producer is not None:
            self.producer.discard()
        self.producer = None

    def rewind(self, records: Sequence[Record]) -> None:
        """Resume from what the group committed, not from the batch start: a commit reported as
        failed may have succeeded. A new producer with the same transactional id first settles the
        old transaction (its initialisation fences the old producer; the broker completes or aborts
        what it left), so the committed offsets read afterwards are the truth."""
        assert self.consumer is not None
        try:
            self._producer()
        except StreamingError as exc:
            logger.warning("subscriber %s: producer not ready (%s); re-reading the batch", self.sub.id, exc)
            self.consumer.seek(batch_start(records))
            return
        self.consumer.seek_to_committed()

    def close(self) -> None:
        super().close()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                self.producer.close()


class BudgetSpent(stop_base):
    """Stop when the next wait would end past the budget (time spent waiting or delivering, whichever is more)."""

    def __init__(self, budget_seconds: float) -> None:
        self.budget_seconds = budget_seconds

    def __call__(self, retry_state: RetryCallState) -> bool:
        spent = max(retry_state.seconds_since_start or 0.0, retry_state.idle_for)
        return spent + (retry_state.upcoming_sleep or 0.0) > self.budget_seconds


class WebhookWorker(SubscriberWorker):
    """At-least-once to an HTTP endpoint, retried within the budget, then dead-lettered."""

    def __init__(
        self,
        *args: Any,
        sender: WebhookSender | None = None,
        producer: Producer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self.sub.target, WebhookTarget)
        self.sender = sender or WebhookSender(self.sub.target)
        self.producer = producer or Producer(self.settings)
        self.sleep = sleep
        self.stop = threading.Event()

    def handle_batch(self, records: Sequence[Record]) -> None:
        assert self.consumer is not None
        pending = []
        audits: list[dict[str, Any]] = []
        for record in records:
            selected = self.select(record)
            if selected is None:
                continue
            if isinstance(selected, DeadLetter):
                pending.append(self.producer.send(*selected.send))
                continue
            event_type, event, projected = selected.event_type, selected.event, selected.projected
            outcome = self._deliver_with_retries(record, event["envelope"]["event_id"], projected)
            if outcome is None:
                self.observe_delivery(record)
                audits.append(self.audit(event_type, event, projected, "delivered"))
            else:
                pending.append(self.producer.send(*outcome))
                audits.append(self.audit(event_type, event, None, "dead_lettered"))
        pending.extend(self.producer.send(*send) for send in self.audit_records(audits))
        for delivery in pending:
            delivery.wait()
        self.consumer.commit(next_offsets(records))

    def _deliver_with_retries(self, record: Record, event_id: str, projected: dict[str, Any]) -> Send | None:
        """None when delivered; the dead-letter send otherwise (permanent failure or budget spent)."""
        policy = self.sub.retry
        backoff = wait_random_exponential(multiplier=policy.initial_backoff_seconds, max=policy.max_backoff_seconds)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, TransientDeliveryError) and exc.retry_after is not None:
                return exc.retry_after  # honoured; the budget below still bounds it
            return float(backoff(state))

        def before_sleep(state: RetryCallState) -> None:
            RETRIES.labels(self.sub.id).inc()
            exc = state.outcome.exception() if state.outcome else None
            logger.info(
                "subscriber %s: %s; retry %d in %.2fs", self.sub.id, exc, state.attempt_number, state.upcoming_sleep
            )

        retrying = Retrying(
            retry=retry_if_exception_type(TransientDeliveryError),
            stop=stop_any(
                stop_after_attempt(policy.max_attempts),
                BudgetSpent(policy.budget_seconds),
                stop_when_event_set(self.stop),
            ),
            wait=wait,
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            retrying(self.sender.deliver, event_id, projected)
        except DeliveryError as exc:
            return self.dead_letter(record, exc, int(retrying.statistics.get("attempt_number", 1)))
        return None

    def run(self, stop: threading.Event, poll_timeout_ms: int = 200) -> None:
        self.stop = stop
        super().run(stop, poll_timeout_ms)

    def close(self) -> None:
        super().close()
        self.sender.close()
        self.producer.close()


def build_worker(
    sub: Subscription,
    settings: ClientSettings,
    group_prefix: str,
    codec: Codec,
    topics: RouterTopics,
    mask_key: bytes,
    instance: str = "0",
    derived: DerivedSchemas | None = None,
) -> SubscriberWorker:
    if isinstance(sub.target, KafkaTarget):
        return KafkaTargetWorker(
            sub, settings, group_prefix, codec, topics, mask_key, instance=instance, derived=derived
        )
    return WebhookWorker(sub, settings, group_prefix, codec, topics, mask_key)


class RouterService:
    """Runs a worker thread per subscription until stopped."""

    def __init__(self, workers: Sequence[SubscriberWorker]) -> None:
        self.workers = list(workers)
        self.threads: list[threading.Thread] = []

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        for worker in self.workers:
            thread = threading.Thread(target=self._run, args=(worker, stop), name=f"route-{worker.sub.id}", daemon=True)
            thread.start()
            self.threads.append(thread)
        return self.threads

    @staticmethod
    def _run(worker: SubscriberWorker, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                worker.run(stop)
            except Exception:
                logger.exception("subscriber %s: worker crashed; restarting in 2s", worker.sub.id)
                stop.wait(2.0)


def read_derived_schemas(settings: ClientSettings, topic: str) -> dict[int, Any]:
    """Subscriber schemas published by routers, parsed, by id (what a subscriber needs to decode)."""
    from streaming.kafka import read_to_end

    schemas: dict[int, Any] = {}
    for record in read_to_end(settings, topic):
        if record.key and record.value:
            schemas[int(record.key.decode())] = fastavro.parse_schema(json.loads(record.value))
    return schemas


def decode_delivery(value: bytes, schemas: dict[int, Any]) -> dict[str, Any]:
    """Decode a record from a subscriber's Kafka topic with the schemas from :func:`read_derived_schemas`."""
    import io

    schema_id = Codec.schema_id(value)
    if schema_id not in schemas:
        raise CodecError(f"unknown subscriber schema id {schema_id}")
    record = fastavro.schemaless_reader(io.BytesIO(value[HEADER.size :]), schemas[schema_id], None)
    if not isinstance(record, dict):
        raise CodecError("not a record")
    return record
