"""The routing core: match → project → deliver, retry, dead-letter, for every subscription.

**Kafka targets share one lane** (:class:`KafkaLane`): one consumer group (``<router group>.lane``)
reads the journey topic (read_committed) and the replay topic once, decodes each event once, and for
each subscription whose event types and filter it matches, projects it, encodes it with the
subscriber's own schema (derived from the projection, registered under a stable id) and sends it to
the subscriber's topic. All deliveries of a polled batch, its audit record and the consumer offsets
are written in one Kafka transaction (``send_offsets_to_transaction``): exactly once, for every
subscriber at the cost of one. A failed transaction is aborted and the batch re-read; a producer
that cannot abort (fenced, fatal) is re-created.

Where each subscriber stands is kept with the offsets, in the metadata string of each committed
partition: the subscribers *at* the committed offset, and any *behind* it with their own position.
A subscription added to a running hub starts behind, at the log start: a catch-up reader
(:class:`streaming.kafka.Reader`) replays history to it in the same transactions, beside the live
traffic, and it joins the others where it reaches them (so it receives every event once and in
partition order, and nobody else waits for its back-fill). A removed subscription is forgotten.

**Webhooks keep a worker each** (:class:`WebhookWorker`, group ``<router group>.<subscriber>``): a
bulkhead, so a slow or dead endpoint never delays another. At-least-once, idempotency key = event
id; transient failures are retried with tenacity, exponential backoff with jitter (honouring
Retry-After), within the subscription's retry budget (attempts and seconds); permanent failures and
spent budgets go to the dead-letter topic. Offsets are committed only after every event of the batch
was delivered or dead-lettered.

Dead letters keep the original bytes and headers, plus ``hub_dlq_*`` headers naming subscriber,
error, attempts and the original topic/partition/offset. ``hub dlq replay`` puts them on the replay
topic addressed to their subscriber. Every delivery (and dead letter) is recorded in the audit
topic (:mod:`router.audit`): subscriber, event id, pilgrim key, the fields delivered, time, outcome.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
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

from router.audit import AuditBatch, Send
from router.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from router.filters import Dispatch, compile_filter
from router.projection import Projector, binary_shape, schema_leaf_paths
from router.subscriptions import KafkaTarget, Subscription
from router.webhook import WebhookSender, WebhookTarget
from schemas.codec import HEADER, MAGIC, Codec, CodecError, subject_for
from streaming.kafka import (
    ClientSettings,
    Consumer,
    Producer,
    Reader,
    Record,
    StreamingError,
    batch_start,
    next_offsets,
)

logger = logging.getLogger(__name__)

DELIVERIES = Counter(
    "hub_router_deliveries",
    "Routing outcomes per subscriber: delivered, filtered (of its event types, refused by its filter), dead_lettered.",
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
FORWARDED_HEADERS = ("content-type", "traceparent")  # besides every ce_* (CloudEvents) header
METADATA_LIMIT = 4000  # bytes of offset metadata per partition; brokers accept 4096 by default


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


class EventTypes:
    """The short event type of a record: from its ``ce_type`` header, else from its schema id."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._by_header: dict[bytes, str] = {}

    def __call__(self, record: Record) -> str:
        ce_type = record.header("ce_type")
        if ce_type is not None:
            found = self._by_header.get(ce_type)
            if found is None:
                found = self._by_header[ce_type] = ce_type.decode().rsplit(".", 1)[-1]
            return found
        return self.codec.catalogue.by_id(Codec.schema_id(record.value or b"")).subject.rsplit(".", 1)[-1]


def forwarded_headers(record: Record) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in record.headers if k.startswith("ce_") or k in FORWARDED_HEADERS]


class Route:
    """One subscription, compiled: which events it takes, how they are projected and audited."""

    def __init__(
        self,
        sub: Subscription,
        codec: Codec,
        topics: RouterTopics,
        mask_key: bytes,
        derived: DerivedSchemas | None = None,
    ) -> None:
        self.sub = sub
        self.id = sub.id
        self.codec = codec
        self.topics = topics
        self.matches = compile_filter(sub.filter)
        self.projector = Projector(sub.projection, mask_key)
        self.delivered = DELIVERIES.labels(sub.id, "delivered")
        self.filtered = DELIVERIES.labels(sub.id, "filtered")
        self.dead_lettered = DELIVERIES.labels(sub.id, "dead_lettered")
        self.latency = LATENCY.labels(sub.id)
        self.derived = derived or DerivedSchemas()
        self._fields: dict[str, list[str]] = {}

    def addressed(self, record: Record) -> bool:
        """A replayed record is for the subscriber it names only; everything else is for all."""
        return record.topic != self.topics.replay or (record.header(REPLAY_HEADER) or b"").decode() == self.id

    def schema(self, event_type: str) -> tuple[int, Any, dict[str, Any]]:
        """This subscriber's schema for ``event_type``: id, parsed, as published."""
        return self.derived.get(self.projector, self.codec, self.id, event_type)

    def fields(self, event_type: str) -> list[str]:
        """The dotted paths this subscriber receives of ``event_type`` (for the audit)."""
        found = self._fields.get(event_type)
        if found is None:
            found = self._fields[event_type] = schema_leaf_paths(self.schema(event_type)[2])
        return found

    def audit(self, batch: AuditBatch, event_type: str, event: dict[str, Any], outcome: str) -> None:
        batch.add(self.id, self.sub.agency, self.sub.target.kind, event_type, event["envelope"], outcome, self.fields)

    def dead_letter(self, record: Record, error: DeliveryError, attempts: int) -> Send:
        original = record.header("hub_dlq_original")
        headers = [(k, v) for k, v in record.headers if not k.startswith(("hub_dlq_", REPLAY_HEADER))]
        headers += [
            ("hub_dlq_subscriber", self.id.encode()),
            ("hub_dlq_error", str(error)[:1000].encode()),
            (
                "hub_dlq_error_kind",
                ("transient" if isinstance(error, TransientDeliveryError) else "permanent").encode(),
            ),
            ("hub_dlq_attempts", str(attempts).encode()),
            ("hub_dlq_original", original or f"{record.topic}/{record.partition}/{record.offset}".encode()),
            ("hub_dlq_at", datetime.now(UTC).isoformat().encode()),
        ]
        self.dead_lettered.inc()
        return (self.topics.dead_letter, record.value, record.key, headers)

    def observe(self, records: Sequence[Record]) -> None:
        """Count deliveries once they are acknowledged (committed)."""
        if not records:
            return
        self.delivered.inc(len(records))
        now = time.time()
        observe = self.latency.observe
        for record in records:
            observe(max(0.0, now - record.timestamp_ms / 1000))


class _Encoder:
    """Confluent wire format with a derived schema, into one reused buffer."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()

    def __call__(self, schema_id: int, parsed: Any, record: dict[str, Any]) -> bytes:
        buffer = self._buffer
        buffer.seek(0)
        buffer.truncate()
        buffer.write(HEADER.pack(MAGIC, schema_id))
        fastavro.schemaless_writer(buffer, parsed, record)
        return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class Selected:
    event_type: str
    event: dict[str, Any]
    projected: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    send: Send


# ---- webhooks: a worker per subscription -------------------------------------------------------


class SubscriberWorker:
    """Delivers one subscription from its own consumer group. Subclasses implement :meth:`handle_batch`."""

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
        self.name = sub.id
        self.settings = settings
        self.codec = codec
        self.topics = topics
        self.group_id = f"{group_prefix}.{sub.id}"
        self.route = Route(sub, codec, topics, mask_key)
        self.event_type = EventTypes(codec)
        self.consumer: Consumer | None = None
        self.busy = False
        """True while a polled batch is not yet delivered and committed."""
        self._last_lag = 0.0

    def select(self, record: Record) -> Selected | DeadLetter | None:
        """The matched and projected event; None when not for this subscriber; a dead letter when
        the record cannot be decoded."""
        route = self.route
        if not route.addressed(record):
            return None
        try:
            event_type = self.event_type(record)
        except Exception as exc:
            return DeadLetter(route.dead_letter(record, PermanentDeliveryError(f"undecodable: {exc}"), 0))
        if event_type not in self.sub.event_types:
            return None
        try:
            _, event = self.codec.decode(record.value or b"")
        except Exception as exc:
            return DeadLetter(route.dead_letter(record, PermanentDeliveryError(f"undecodable: {exc}"), 0))
        if not route.matches(event):
            route.filtered.inc()
            return None
        return Selected(event_type, event, route.projector.project(event))

    def dead_letter(self, record: Record, error: DeliveryError, attempts: int) -> Send:
        return self.route.dead_letter(record, error, attempts)

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
                    logger.warning("subscriber %s: %s; re-reading the batch", self.name, exc)
                    self.rewind(records)
                    stop.wait(1.0)
        finally:
            self.close()

    def rewind(self, records: Sequence[Record]) -> None:
        """After a failed batch: read it again."""
        assert self.consumer is not None
        self.consumer.seek(batch_start(records))

    def lag(self) -> int:
        """Events this worker has still to handle (0 before it has partitions)."""
        return self.consumer.lag() if self.consumer is not None else 0

    def _report_lag(self) -> None:
        now = time.monotonic()
        if self.consumer is not None and now - self._last_lag > 5:
            self._last_lag = now
            with contextlib.suppress(StreamingError):
                LAG.labels(self.sub.id).set(self.lag())

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()


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
        audit = AuditBatch(self.topics.audit, self.sub.id)
        delivered: list[Record] = []
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
                delivered.append(record)
                self.route.audit(audit, event_type, event, "delivered")
            else:
                pending.append(self.producer.send(*outcome))
                self.route.audit(audit, event_type, event, "dead_lettered")
        pending.extend(self.producer.send(*send) for send in audit.records())
        for delivery in pending:
            delivery.wait()
        self.consumer.commit(next_offsets(records))
        self.route.observe(delivered)

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


# ---- Kafka targets: one lane for all ------------------------------------------------------------


@dataclass
class Standing:
    """Where the subscribers stand on one partition.

    ``head`` is the lane's committed offset (None before its first commit there): every subscriber
    in ``at`` has received everything before it. A subscriber in ``behind`` has received everything
    before its own position, which is below ``head``; the catch-up reader brings it up."""

    head: int | None
    at: set[str] = field(default_factory=set)
    behind: dict[str, int] = field(default_factory=dict)

    def note(self) -> str:
        """The offset metadata that records this standing with the committed offset (JSON; deflated
        and base64-encoded behind ``z:`` when long, as many subscriber ids are)."""
        text = json.dumps({"v": 1, "at": sorted(self.at), "behind": self.behind}, separators=(",", ":"))
        if len(text) <= 512:
            return text
        return "z:" + base64.b64encode(zlib.compress(text.encode(), 9)).decode()

    @classmethod
    def read(cls, committed: tuple[int, str] | None, configured: Iterable[str]) -> Standing:
        """The standing after a commit: configured subscribers it does not name are new, behind from
        the log start; subscribers it names that are no longer configured are dropped. Before the
        lane's first commit on a partition every subscriber starts there, together."""
        wanted = set(configured)
        if committed is None:
            return cls(None, wanted)
        offset, note = committed
        try:
            raw = json.loads(zlib.decompress(base64.b64decode(note[2:])) if note.startswith("z:") else note)
            at, behind = set(raw["at"]), {str(k): int(v) for k, v in raw["behind"].items()}
        except (ValueError, KeyError, TypeError, AttributeError, zlib.error):
            logger.warning("offset metadata %r is not a lane's standing; taking every subscriber as up to date", note)
            return cls(offset, wanted)
        at = (at | {s for s, p in behind.items() if p >= offset}) & wanted
        standing = cls(offset, at, {s: p for s, p in behind.items() if s in wanted and p < offset})
        for sub in wanted - standing.at - set(standing.behind):
            standing.behind[sub] = 0
        return standing


class _BatchOut:
    """What one transaction writes: deliveries, dead letters, schemas, the audit; and what to count after."""

    __slots__ = ("audit", "considered", "delivered", "filtered", "new_schemas", "sends", "typed")

    def __init__(self, audit: AuditBatch) -> None:
        self.sends: list[Send] = []
        self.audit = audit
        self.delivered: dict[str, list[Record]] = {}
        self.filtered: dict[str, int] = {}
        self.new_schemas: set[int] = set()
        self.typed: dict[str, int] = {}
        """Live events by type routed through the dispatch index ..."""
        self.considered: dict[str, int] = {}
        """... and how many of them each subscriber's filter was run on; the others were filtered."""

    def filtered_by(self, route: Route) -> int:
        """Events this batch's filters (or the dispatch index) kept from the subscriber."""
        typed = sum(self.typed.get(t, 0) for t in route.sub.event_types)
        return self.filtered.get(route.id, 0) + typed - self.considered.get(route.id, 0)


class KafkaLane:
    """Every Kafka-target subscription of a router: one consumer, one decode per event, one
    transaction per batch; new subscribers are caught up beside the live traffic (module docstring)."""

    def __init__(
        self,
        subs: Sequence[Subscription],
        settings: ClientSettings,
        group_prefix: str,
        codec: Codec,
        topics: RouterTopics,
        mask_key: bytes,
        *,
        instance: str = "0",
        derived: DerivedSchemas | None = None,
        max_poll_records: int = 1000,
    ) -> None:
        if not subs:
            raise ValueError("a lane needs at least one subscription")
        worst = len(Standing(10**15, set(), {s.id: 10**15 - 1 - i for i, s in enumerate(subs)}).note())
        if worst > METADATA_LIMIT:
            raise ValueError(
                f"{len(subs)} Kafka subscriptions are too many for one router group: where they stand takes up to "
                f"{worst} bytes of offset metadata (limit {METADATA_LIMIT}); split them over router groups"
            )
        self.name = "kafka-lane"
        self.settings = settings
        self.codec = codec
        self.topics = topics
        self.group_id = f"{group_prefix}.lane"
        self.transactional_id = f"{self.group_id}.{instance}"
        self.derived = derived or DerivedSchemas()
        self.max_poll_records = max_poll_records
        self.routes = {sub.id: Route(sub, codec, topics, mask_key, self.derived) for sub in subs}
        typed: dict[str, list[Route]] = {}
        for route in self.routes.values():
            for event_type in sorted(route.sub.event_types):
                typed.setdefault(event_type, []).append(route)
        self.by_type = {t: Dispatch((r, r.sub.filter) for r in routes) for t, routes in typed.items()}
        self.event_type = EventTypes(codec)
        self.encode = _Encoder()
        self.consumer: Consumer | None = None
        self.reader: Reader | None = None
        self.producer: Producer | None = None
        self.standing: dict[tuple[str, int], Standing] = {}
        self._assignments_seen = -1
        self._published_schemas: set[int] = set()
        self._sub_headers: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
        self._same_bytes: dict[tuple[str, int], bool] = {}
        self._notes: dict[tuple[frozenset[str], frozenset[tuple[str, int]]], str] = {}
        self.busy = False
        """True while a polled batch is not yet delivered and committed."""
        self._last_lag = 0.0

    # ---- loop ----------------------------------------------------------------------------------

    def open_consumer(self) -> Consumer:
        return Consumer(
            self.settings,
            group_id=self.group_id,
            topics=[self.topics.events, self.topics.replay],
            read_committed=True,
            max_poll_records=self.max_poll_records,
            max_poll_interval_ms=900_000,
        )

    def run(self, stop: threading.Event, poll_timeout_ms: int = 200) -> None:
        self.consumer = self.open_consumer()
        try:
            while not stop.is_set():
                records: list[Record] = []
                try:
                    catching_up = self._catching_up()
                    records = self.consumer.poll(timeout_ms=0 if catching_up else poll_timeout_ms)
                    self._sync_standing()
                    history: list[Record] = []
                    if self._catching_up() and self.reader is not None:  # wait a little only without live records
                        history = self.reader.poll(timeout_ms=0 if records else 50)
                    if records or history:
                        self.busy = True
                        self.handle_batch(records, history)
                    self.busy = False
                    self._report_lag()
                except StreamingError as exc:
                    logger.warning("kafka lane: %s; re-reading the batch", exc)
                    self.rewind(records)
                    stop.wait(1.0)
        finally:
            self.close()

    def _catching_up(self) -> bool:
        return any(standing.behind for standing in self.standing.values())

    def _sync_standing(self) -> None:
        """After a (re)assignment: read where everyone stands on the partitions now ours."""
        assert self.consumer is not None
        if self.consumer.assignments == self._assignments_seen:
            return
        seen = self.consumer.assignments
        assigned = self.consumer.assignment()
        committed = self.consumer.committed(sorted(assigned))
        self.standing = {tp: Standing.read(committed.get(tp), self.routes) for tp in assigned}
        self._assignments_seen = seen
        self._assign_reader()
        behind = {f"{t}/{p}": sorted(s.behind) for (t, p), s in self.standing.items() if s.behind}
        if behind:
            logger.info("kafka lane: catching up %s", behind)

    def _assign_reader(self) -> None:
        positions = {tp: min(s.behind.values()) for tp, s in self.standing.items() if s.behind}
        if not positions and self.reader is None:
            return
        if self.reader is None:
            self.reader = Reader(self.settings, read_committed=True, max_poll_records=self.max_poll_records)
        self.reader.assign(positions)

    def _producer(self) -> Producer:
        if self.producer is None:
            producer = Producer(self.settings, transactional_id=self.transactional_id, linger_ms=5)
            topics = {self.topics.audit, self.topics.schemas, self.topics.dead_letter}
            producer.know_topics(
                topics | {r.sub.target.topic for r in self.routes.values() if isinstance(r.sub.target, KafkaTarget)}
            )
            self.producer = producer
        return self.producer

    # ---- one batch -----------------------------------------------------------------------------

    def handle_batch(self, records: Sequence[Record], history: Sequence[Record] = ()) -> None:
        """Route ``history`` (catch-up reads) to those behind, then ``records`` to those up to date;
        commit both with where everyone now stands."""
        assert self.consumer is not None
        producer = self._producer()
        out = _BatchOut(AuditBatch(self.topics.audit, self.name))
        standing = {tp: Standing(s.head, set(s.at), dict(s.behind)) for tp, s in self.standing.items()}
        changed: set[tuple[str, int]] = set()
        if history:
            self._route_history(history, standing, out, changed)
        for record in records:
            tp = (record.topic, record.partition)
            here = standing.get(tp)
            if here is None:  # assigned since the last sync (cannot happen after _sync_standing): all up to date
                here = standing[tp] = Standing(None, set(self.routes))
            self._route(record, here.at, out)
        for tp, offset in next_offsets(records).items():
            standing[tp].head = offset
            changed.add(tp)
        out.sends.extend(out.audit.records())
        offsets = {tp: standing[tp].head for tp in changed if standing[tp].head is not None}
        notes = {tp: self._note(standing[tp]) for tp in offsets}
        try:
            producer.begin()
            producer.send_batch(out.sends)
            producer.send_offsets(self.consumer, offsets, notes)  # type: ignore[arg-type]
            producer.commit()
        except StreamingError as exc:
            self._recover(exc)
            raise
        self.standing = standing
        self._published_schemas |= out.new_schemas
        for sub, delivered in out.delivered.items():
            self.routes[sub].observe(delivered)
        for route in self.routes.values():
            filtered = out.filtered_by(route)
            if filtered:
                route.filtered.inc(filtered)
        if history and not self._catching_up() and self.reader is not None:
            logger.info("kafka lane: every subscriber is up to date")
            self.reader.assign({})

    def _note(self, standing: Standing) -> str:
        """The standing's offset metadata; the same in every batch while nobody catches up, so kept."""
        key = (frozenset(standing.at), frozenset(standing.behind.items()))
        note = self._notes.get(key)
        if note is None:
            if len(self._notes) > 256:  # catching up moves positions every batch: keep few
                self._notes.clear()
            note = self._notes[key] = standing.note()
        return note

    def _route_history(
        self,
        history: Sequence[Record],
        standing: dict[tuple[str, int], Standing],
        out: _BatchOut,
        changed: set[tuple[str, int]],
    ) -> None:
        assert self.reader is not None
        for record in history:
            here = standing.get((record.topic, record.partition))
            if here is None or not here.behind or here.head is None or record.offset >= here.head:
                continue
            wanted = {sub for sub, position in here.behind.items() if position <= record.offset}
            if wanted:
                self._route(record, wanted, out)
        for tp, here in standing.items():
            if not here.behind or here.head is None:
                continue
            read_to = min(self.reader.position(*tp), here.head)
            moved = {sub: max(position, read_to) for sub, position in here.behind.items()}
            if moved != here.behind:
                changed.add(tp)
            here.behind = {sub: position for sub, position in moved.items() if position < here.head}
            here.at |= {sub for sub, position in moved.items() if position >= here.head}

    def _route(self, record: Record, wanted: set[str], out: _BatchOut) -> None:
        """Deliver one record to the subscribers in ``wanted`` whose types, address and filter it matches."""
        try:
            event_type = self.event_type(record)
        except Exception as exc:
            for sub in sorted(wanted):
                route = self.routes[sub]
                if route.addressed(record):
                    out.sends.append(route.dead_letter(record, PermanentDeliveryError(f"undecodable: {exc}"), 0))
            return
        typed = self.by_type.get(event_type)
        if typed is None:
            return
        # The common case, a live event for everyone: the dispatch index leaves out, before any
        # filter runs, the subscribers whose filter cannot hold (counted as filtered per batch).
        everyone = len(wanted) == len(self.routes) and record.topic != self.topics.replay
        routes = typed.items if everyone else [r for r in typed.items if r.id in wanted and r.addressed(record)]
        if not routes:
            return
        try:
            _, event = self.codec.decode(record.value or b"")
        except Exception as exc:
            for route in routes:
                out.sends.append(route.dead_letter(record, PermanentDeliveryError(f"undecodable: {exc}"), 0))
            return
        if everyone:
            routes = typed.candidates(event)
            out.typed[event_type] = out.typed.get(event_type, 0) + 1
            for route in routes:
                out.considered[route.id] = out.considered.get(route.id, 0) + 1
        forwarded: list[tuple[str, bytes]] | None = None
        writer_id = Codec.schema_id(record.value or b"")
        for route in routes:
            if not route.matches(event):
                out.filtered[route.id] = out.filtered.get(route.id, 0) + 1
                continue
            schema_id, parsed, schema = route.schema(event_type)
            try:
                if self._verbatim(route, writer_id, schema):
                    value = HEADER.pack(MAGIC, schema_id) + (record.value or b"")[HEADER.size :]
                else:
                    value = self.encode(schema_id, parsed, route.projector.project(event))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                out.sends.append(route.dead_letter(record, PermanentDeliveryError(f"does not fit schema: {exc}"), 1))
                route.audit(out.audit, event_type, event, "dead_lettered")
                continue
            if schema_id not in self._published_schemas and schema_id not in out.new_schemas:
                out.new_schemas.add(schema_id)
                out.sends.append(
                    (
                        self.topics.schemas,
                        json.dumps(schema).encode(),
                        str(schema_id).encode(),
                        [("hub_subscriber", route.id.encode())],
                    )
                )
            if forwarded is None:
                forwarded = forwarded_headers(record)
            own = self._sub_headers.get((route.id, schema_id))
            if own is None:
                own = self._sub_headers[(route.id, schema_id)] = [
                    ("hub_subscriber", route.id.encode()),
                    ("hub_schema_id", str(schema_id).encode()),
                ]
            target = route.sub.target
            assert isinstance(target, KafkaTarget)
            out.sends.append((target.topic, value, record.key, forwarded + own))
            route.audit(out.audit, event_type, event, "delivered")
            out.delivered.setdefault(route.id, []).append(record)

    def _verbatim(self, route: Route, writer_id: int, derived: dict[str, Any]) -> bool:
        """Whether the subscriber's record is the event's own Avro body, unchanged: its projection
        masks nothing and its derived schema encodes like the schema the event was written with
        (decoding, projecting and encoding again would give the same bytes)."""
        key = (route.id, writer_id)
        found = self._same_bytes.get(key)
        if found is None:
            writer = self.codec.catalogue.by_id(writer_id).schema
            found = self._same_bytes[key] = not route.projector.masks and binary_shape(writer) == binary_shape(derived)
        return found

    # ---- failures ------------------------------------------------------------------------------

    def _recover(self, exc: StreamingError) -> None:
        """Discard the producer after a failed transaction whose outcome may be unknown (an
        indeterminate commit, a fenced or fatal producer)."""
        logger.warning("kafka lane: transaction failed (%s); re-creating the producer", exc)
        if self.producer is not None:
            self.producer.discard()
        self.producer = None

    def rewind(self, records: Sequence[Record]) -> None:
        """Resume from what the group committed, not from the batch start: a commit reported as
        failed may have succeeded. A new producer with the same transactional id first settles the
        old transaction (its initialisation fences the old producer; the broker completes or aborts
        what it left), so the committed offsets and standings read afterwards are the truth."""
        assert self.consumer is not None
        try:
            self._producer()
        except StreamingError as exc:
            logger.warning("kafka lane: producer not ready (%s); re-reading the batch", exc)
            self.consumer.seek(batch_start(records))
            return
        self.consumer.seek_to_committed()
        self._assignments_seen = -1  # read the standings again with the offsets

    # ---- reporting -----------------------------------------------------------------------------

    def _gap(self, sub: str | None = None) -> int:
        """Events the subscribers behind (or ``sub`` alone) have still to catch up on."""
        return sum(
            s.head - position
            for s in self.standing.values()
            if s.head is not None
            for name, position in s.behind.items()
            if sub is None or name == sub
        )

    def lag(self) -> int:
        """Events still to handle: the live lag, plus what the subscribers behind have still to catch up."""
        return (self.consumer.lag() if self.consumer is not None else 0) + self._gap()

    def _report_lag(self) -> None:
        now = time.monotonic()
        if self.consumer is None or now - self._last_lag <= 5:
            return
        self._last_lag = now
        with contextlib.suppress(StreamingError):
            live = self.consumer.lag()
            for sub in self.routes:
                LAG.labels(sub).set(live + self._gap(sub))

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.producer is not None:
            with contextlib.suppress(Exception):
                self.producer.close()


Worker = SubscriberWorker | KafkaLane


def build_workers(
    subs: Sequence[Subscription],
    settings: ClientSettings,
    group_prefix: str,
    codec: Codec,
    topics: RouterTopics,
    mask_key: bytes,
    instance: str = "0",
    derived: DerivedSchemas | None = None,
    settings_for: Callable[[str], ClientSettings] | None = None,
) -> list[Worker]:
    """One lane for the Kafka-target subscriptions (if any), one worker per webhook subscription."""
    named = settings_for or (lambda _: settings)
    kafka_subs = [sub for sub in subs if isinstance(sub.target, KafkaTarget)]
    workers: list[Worker] = []
    if kafka_subs:
        workers.append(
            KafkaLane(
                kafka_subs, named("lane"), group_prefix, codec, topics, mask_key, instance=instance, derived=derived
            )
        )
    workers.extend(
        WebhookWorker(sub, named(sub.id), group_prefix, codec, topics, mask_key)
        for sub in subs
        if not isinstance(sub.target, KafkaTarget)
    )
    return workers


class RouterService:
    """Runs a thread per worker until stopped."""

    def __init__(self, workers: Sequence[Worker]) -> None:
        self.workers = list(workers)
        self.threads: list[threading.Thread] = []

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        for worker in self.workers:
            thread = threading.Thread(target=self._run, args=(worker, stop), name=f"route-{worker.name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        return self.threads

    @staticmethod
    def _run(worker: Worker, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                worker.run(stop)
            except Exception:
                logger.exception("%s: worker crashed; restarting in 2s", worker.name)
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
    schema_id = Codec.schema_id(value)
    if schema_id not in schemas:
        raise CodecError(f"unknown subscriber schema id {schema_id}")
    record = fastavro.schemaless_reader(io.BytesIO(value[HEADER.size :]), schemas[schema_id], None)
    if not isinstance(record, dict):
        raise CodecError("not a record")
    return record
