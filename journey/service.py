"""The journey service: every pilgrim's journey, kept from the journey topic, and its alerts.

Contract (docs/journey-alerts.md; the rules are in :mod:`journey.state`):

* **Start**: :meth:`JourneyService.rebuild` reads the compacted changelog topic (``journeys``:
  key = pilgrim_key, value = the journey as JSON) to its end, read_committed. The changelog and the
  consumer offsets are written in the same transactions, so the state rebuilt is exactly the state
  after the last committed offset: nothing is applied twice, nothing is lost, no alert is raised
  twice.
* **Loop**: poll the journey topic (read_committed, own consumer group ``group_id``); fold each
  event into its pilgrim's journey (the service's own ``JourneyAlertRaised`` only add a timeline
  entry); judge deadlines at the **lag-aware clock** — ``clock()``, but while the service is behind
  the end of the topic never later than the latest ``occurred_at`` it has read on the pilgrim's
  partition — for the pilgrims whose deadline passed (a :class:`~journey.state.DeadlineIndex`, so
  deadlines are judged also when no event arrives); then write in ONE Kafka transaction the alert
  events (``JourneyAlertRaised``, event id = alert id, agency ``hub``, connector
  ``journey-service``, keyed by pilgrim_key), the changed journeys (changelog) and the consumer
  offsets. Memory changes only once the transaction committed. A failed transaction may or may not
  have committed: the producer is discarded, and the service starts again from what Kafka holds — a
  new producer (same transactional id: it fences the old one and settles its transaction), the
  state rebuilt from the changelog, a new consumer at the committed offsets — so nothing is applied
  twice and no alert written twice. A failed read (poll, lag) just re-reads the batch.
* **Several instances** share the partitions through the consumer group; each judges only the
  pilgrims of the partitions assigned to it, and reloads the changelog when its assignment changes.
* **Retention**: with ``forget_after_exit``, a journey that ended (the pilgrim exited, no alert
  open) is forgotten that long after the exit, at the same lag-aware clock: a tombstone in the
  changelog in the loop's transaction, then out of memory. Personal data is not kept beyond its use,
  and the service's memory follows the pilgrims in the country, not the whole season.
* :meth:`JourneyService.get` serves a journey to the API, thread-safe.

Metrics: ``hub_journey_events_total{event_type}``, ``hub_journey_alerts_total{alert_type}``,
``hub_journey_open_alerts{alert_type}`` (raised and not resolved since), ``hub_journey_pilgrims``,
``hub_journey_forgotten_total``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge

from journey.state import (
    ALERT_EVENT_TYPE,
    ALERT_TYPES,
    FORGET,
    Alert,
    DeadlineIndex,
    Journey,
    Thresholds,
    apply,
    armed_deadlines,
    due_alerts,
    effective_now,
    forget_at,
    journey_document,
    mark_raised,
    occurred_at,
)
from schemas.codec import Codec, CodecError
from streaming.kafka import (
    Admin,
    ClientSettings,
    Consumer,
    Producer,
    Record,
    StreamingError,
    TopicSpec,
    batch_start,
    next_offsets,
    read_to_end,
)

__all__ = ["JourneyService", "JourneyTopics", "TransactionAborted", "read_journeys"]

logger = logging.getLogger(__name__)

EVENTS = Counter("hub_journey_events", "Journey events read by the journey service, by type.", ["event_type"])
ALERTS = Counter("hub_journey_alerts", "Journey alerts raised (JourneyAlertRaised published), by type.", ["alert_type"])
OPEN_ALERTS = Gauge(
    "hub_journey_open_alerts", "Journey alerts raised whose resolving event has not arrived since.", ["alert_type"]
)
PILGRIMS = Gauge("hub_journey_pilgrims", "Pilgrims whose journey the journey service keeps.")
FORGOTTEN = Counter(
    "hub_journey_forgotten", "Finished journeys forgotten (tombstoned in the changelog) after the retention."
)

SOURCE_AGENCY = "hub"
SOURCE_CONNECTOR = "journey-service"
MAX_DUE_PER_BATCH = 5_000  # pilgrims judged per transaction; the rest wait for the next loop


class TransactionAborted(StreamingError):
    """A journey transaction failed; whether it committed is unknown until a new producer fences it."""


@dataclass(frozen=True)
class JourneyTopics:
    events: str
    """The journey topic (read, and where alerts are written)."""
    journeys: str
    """The compacted changelog of journey states."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Batch:
    """What one loop changes; applied to the service only once its transaction committed."""

    journeys: dict[str, Journey] = dataclasses.field(default_factory=dict)
    alerts: list[Alert] = dataclasses.field(default_factory=list)
    events: Tally[str] = dataclasses.field(default_factory=Tally)
    latest: dict[int, datetime] = dataclasses.field(default_factory=dict)
    forgotten: set[str] = dataclasses.field(default_factory=set)


class JourneyService:
    """Keeps each pilgrim's journey from the journey topic and raises its alerts, exactly once."""

    def __init__(
        self,
        settings: ClientSettings,
        codec: Codec,
        topics: JourneyTopics,
        thresholds: Thresholds | None = None,
        clock: Callable[[], datetime] = _utc_now,
        group_id: str = "hub-journey",
        instance: str = "0",
        *,
        changelog_partitions: int = 3,
        replication_factor: int = 1,
        poll_timeout_ms: int = 200,
        max_poll_records: int = 500,
        forget_after_exit: timedelta | None = None,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.topics = topics
        self.thresholds = thresholds or Thresholds()
        self.clock = clock
        self.group_id = group_id
        self.transactional_id = f"{group_id}.{instance}"
        self.changelog_partitions = changelog_partitions
        self.replication_factor = replication_factor
        self.poll_timeout_ms = poll_timeout_ms
        self.max_poll_records = max_poll_records
        self.forget_after_exit = forget_after_exit
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self.ready = threading.Event()
        """Set once the state is rebuilt and the service owns partitions of the journey topic."""
        self._lock = threading.Lock()
        self._journeys: dict[str, Journey] = {}
        self._latest: dict[int, datetime] = {}
        self._index = DeadlineIndex()
        self._owned: set[int] | None = None
        self._fresh = False  # state rebuilt and nothing written since
        self._changelog_ends: dict[int, int] = {}  # the changelog's end when the state was rebuilt
        self._touched: set[str] = set()
        self._open: Tally[str] = Tally()
        self._pilgrims = 0

    # ---- the API's view -----------------------------------------------------------------------

    def get(self, pilgrim_key: str) -> dict[str, Any] | None:
        """The journey document of ``pilgrim_key`` (see :func:`journey.state.journey_document`), or None."""
        with self._lock:
            journey = self._journeys.get(pilgrim_key)
        return journey_document(journey, self.thresholds) if journey is not None else None

    def pilgrims(self) -> int:
        with self._lock:
            return len(self._journeys)

    # ---- state from the changelog -------------------------------------------------------------

    def ensure_changelog(self) -> None:
        admin = Admin(self.settings)
        try:
            admin.ensure_topics(
                [
                    TopicSpec(
                        self.topics.journeys,
                        self.changelog_partitions,
                        self.replication_factor,
                        {"cleanup.policy": "compact"},
                    )
                ]
            )
        finally:
            admin.close()

    def rebuild(self) -> None:
        """Replace the state by the changelog's (read to its end, committed records only)."""
        self.ensure_changelog()
        admin = Admin(self.settings)
        try:
            ends = admin.end_offsets(self.topics.journeys)
        finally:
            admin.close()
        journeys = read_journeys(self.settings, self.topics.journeys)
        latest: dict[int, datetime] = {}
        for journey in journeys.values():
            if journey.partition is not None and journey.last_event_at is not None:
                previous = latest.get(journey.partition)
                latest[journey.partition] = max(previous or journey.last_event_at, journey.last_event_at)
        with self._lock:
            self._journeys = journeys
            self._latest = latest
            self._fresh = True
            self._changelog_ends = ends
        self._reindex()
        self._reset_gauges()
        logger.info("journey state rebuilt from %s: %d pilgrims", self.topics.journeys, len(journeys))

    def _reindex(self) -> None:
        self._index.clear()
        owned = self._owned or set()
        for key, journey in self._journeys.items():
            if journey.partition in owned:
                self._index.schedule(key, self._deadlines(journey))

    def _deadlines(self, journey: Journey) -> dict[str, datetime]:
        """The journey's armed alert deadlines, and when it may be forgotten."""
        deadlines: dict[str, datetime] = {kind: at for kind, at in armed_deadlines(journey, self.thresholds).items()}
        forget = forget_at(journey, self.forget_after_exit)
        if forget is not None:
            deadlines[FORGET] = forget
        return deadlines

    def _reset_gauges(self) -> None:
        open_now: Tally[str] = Tally(t for j in self._journeys.values() for t in j.open_alerts())
        for kind in ALERT_TYPES:
            OPEN_ALERTS.labels(kind).inc(open_now[kind] - self._open[kind])
        PILGRIMS.inc(len(self._journeys) - self._pilgrims)
        self._open, self._pilgrims = open_now, len(self._journeys)

    # ---- the loop -----------------------------------------------------------------------------

    def open_consumer(self) -> Consumer:
        return Consumer(
            self.settings,
            group_id=self.group_id,
            topics=[self.topics.events],
            read_committed=True,
            max_poll_records=self.max_poll_records,
        )

    def run(self, stop: threading.Event) -> None:
        """Rebuild, then poll, fold, judge and commit until ``stop`` is set.

        A failure while reading (poll, lag, metadata) re-reads the batch: nothing was written. A
        failed transaction may have committed or not: the producer is discarded, and the service
        starts again from what Kafka holds (:meth:`open`), so no alert is written twice."""
        try:
            while not stop.is_set():
                try:
                    self.open()
                    self._loop(stop)
                except StreamingError as exc:
                    logger.warning("journey service: %s; starting again from the changelog", exc)
                    self._discard()
                    stop.wait(1.0)
        finally:
            self.close()

    def open(self) -> None:
        """Producer first (its initialisation fences a predecessor with the same transactional id
        and settles the transaction it left), then the state from the changelog, then the consumer
        (from the group's committed offsets, which the changelog matches)."""
        self._producer()
        self.rebuild()
        self.consumer = self.open_consumer()

    def _loop(self, stop: threading.Event) -> None:
        assert self.consumer is not None
        while not stop.is_set():
            records: list[Record] = []
            try:
                records = self.consumer.poll(timeout_ms=self.poll_timeout_ms)
                self.step(records)
            except TransactionAborted:
                raise
            except StreamingError as exc:
                logger.warning("journey service: %s; re-reading the batch", exc)
                self._unschedule_batch()
                self.consumer.seek(batch_start(records))
                stop.wait(1.0)

    def start(self, stop: threading.Event) -> threading.Thread:
        """Run in a daemon thread, restarted (state rebuilt) after an unexpected error."""

        def supervise() -> None:
            while not stop.is_set():
                try:
                    self.run(stop)
                except Exception:
                    logger.exception("journey service crashed; restarting in 2s")
                    stop.wait(2.0)

        thread = threading.Thread(target=supervise, name="journey-service", daemon=True)
        thread.start()
        return thread

    def step(self, records: Sequence[Record]) -> None:
        """One loop: fold ``records``, judge due deadlines, write it all in one transaction."""
        assert self.consumer is not None
        self._follow_assignment()
        batch = self._fold(records)
        self._judge(batch)
        if not records and not batch.journeys and not batch.forgotten:
            self._touched.clear()
            return
        producer = self._producer()
        try:
            producer.begin()
            for alert in batch.alerts:
                encoded = self.codec.encode(ALERT_EVENT_TYPE, self.alert_event(alert))
                producer.send(self.topics.events, encoded.value, encoded.key, encoded.headers)
            for key, journey in batch.journeys.items():
                producer.send(self.topics.journeys, journey.to_json().encode(), key.encode())
            for key in batch.forgotten:
                producer.send(self.topics.journeys, None, key.encode())  # tombstone: compaction drops it
            if records:
                producer.send_offsets(self.consumer, next_offsets(records))
            producer.commit()
        except StreamingError as exc:
            what = f"{len(records)} events, {len(batch.alerts)} alerts"
            raise TransactionAborted(f"transaction of {what}: {exc}") from exc
        self._committed(batch)

    def _follow_assignment(self) -> None:
        """Track the partitions this instance owns; after a rebalance, reload their state."""
        assert self.consumer is not None
        owned = {p for t, p in self.consumer.assignment() if t == self.topics.events}
        if owned == self._owned:
            return
        if owned - (self._owned or set()) and self._changelog_moved():
            self.rebuild()  # another instance may have moved these pilgrims on: take its committed state
        self._owned = owned
        self._reindex()
        if owned:
            self.ready.set()
        logger.info("journey service owns partitions %s of %s", sorted(owned), self.topics.events)

    def _changelog_moved(self) -> bool:
        """Whether the changelog may hold more than the state: this service wrote since its last
        rebuild, or its end moved (another instance wrote)."""
        if not self._fresh:
            return True
        admin = Admin(self.settings)
        try:
            return admin.end_offsets(self.topics.journeys) != self._changelog_ends
        finally:
            admin.close()

    def _fold(self, records: Sequence[Record]) -> _Batch:
        batch = _Batch(latest=dict(self._latest))
        for record in records:
            if record.value is None:
                continue
            try:
                event_type, event = self.codec.decode(record.value)
            except CodecError as exc:
                batch.events["undecodable"] += 1
                logger.warning("%s/%s/%s: skipped: %s", record.topic, record.partition, record.offset, exc)
                continue
            batch.events[event_type] += 1
            key = event["envelope"].get("pilgrim_key")
            if not key:
                continue  # about a flight, a group or a vehicle: no pilgrim's journey
            journey = batch.journeys.get(key) or self._journeys.get(key) or Journey(key)
            journey = apply(journey, event_type, event)
            if journey.partition != record.partition:
                journey = dataclasses.replace(journey, partition=record.partition)
            batch.journeys[key] = journey
            when = occurred_at(event)
            previous = batch.latest.get(record.partition)
            batch.latest[record.partition] = when if previous is None else max(previous, when)
        self._touched.update(batch.journeys)
        for key, journey in batch.journeys.items():
            self._index.schedule(key, self._deadlines(journey))
        return batch

    def _judge(self, batch: _Batch) -> None:
        """Raise the alerts due at the lag-aware clock."""
        assert self.consumer is not None
        owned = self._owned or set()
        clock_now = self.clock()
        upcoming = self._index.next_deadline()
        if not owned or upcoming is None or upcoming >= clock_now:
            return  # nothing can be due: spare the broker the lag request
        lagging = self.consumer.lag() > 0
        per_partition = {p: effective_now(clock_now, lagging, batch.latest.get(p)) for p in owned}
        horizons = [t for t in per_partition.values() if t is not None]
        if not horizons:
            return
        due = self._index.due(max(horizons), limit=MAX_DUE_PER_BATCH)
        self._touched.update(due)
        for key in due:
            journey = batch.journeys.get(key) or self._journeys.get(key)
            if journey is None or journey.partition not in owned:
                continue
            now = per_partition.get(journey.partition)
            alerts = due_alerts(journey, now, self.thresholds) if now is not None else []
            if alerts:
                journey = mark_raised(journey, alerts)
                batch.journeys[key] = journey
                batch.alerts.extend(alerts)
            forget = forget_at(journey, self.forget_after_exit)
            if now is not None and forget is not None and now > forget:
                batch.journeys.pop(key, None)
                batch.forgotten.add(key)
                continue
            self._index.schedule(key, self._deadlines(journey))

    def _committed(self, batch: _Batch) -> None:
        with self._lock:
            previous = {key: self._journeys.get(key) for key in batch.journeys}
            self._journeys.update(batch.journeys)
            for key in batch.forgotten:
                previous[key] = self._journeys.pop(key, None)
            self._latest = batch.latest
            self._fresh = False
        self._touched.clear()
        for event_type, count in batch.events.items():
            EVENTS.labels(event_type).inc(count)
        for alert in batch.alerts:
            ALERTS.labels(alert.alert_type).inc()
            logger.info("alert %s raised for %s (deadline %s)", alert.alert_type, alert.pilgrim_key, alert.deadline)
        for key in batch.forgotten:
            if previous[key] is not None:
                self._pilgrims -= 1
                PILGRIMS.dec()
                FORGOTTEN.inc()
        for key, journey in batch.journeys.items():
            old = previous[key]
            if old is None:
                self._pilgrims += 1
                PILGRIMS.inc()
            was_open = set(old.open_alerts()) if old is not None else set()
            now_open = set(journey.open_alerts())
            for kind in now_open - was_open:
                self._open[kind] += 1
                OPEN_ALERTS.labels(kind).inc()
            for kind in was_open - now_open:
                self._open[kind] -= 1
                OPEN_ALERTS.labels(kind).dec()

    def alert_event(self, alert: Alert) -> dict[str, Any]:
        """The ``JourneyAlertRaised`` event of ``alert`` (envelope: event id = alert id)."""
        return {
            "envelope": {
                "event_id": alert.alert_id,
                "event_type": ALERT_EVENT_TYPE,
                "occurred_at": alert.raised_at,
                "ingested_at": self.clock(),
                "source": {
                    "agency": SOURCE_AGENCY,
                    "connector": SOURCE_CONNECTOR,
                    "position": f"{alert.pilgrim_key}/{alert.alert_type}",
                },
                "pilgrim_key": alert.pilgrim_key,
                # derived from the alert id, so a retried transaction writes the same record
                "trace_id": uuid.UUID(alert.alert_id).hex,
            },
            "alert_id": alert.alert_id,
            "alert_type": alert.alert_type,
            "deadline": alert.deadline,
            "raised_at": alert.raised_at,
            "operator_code": alert.operator_code,
            "registration_id": alert.registration_id,
            "details": alert.details,
        }

    # ---- failure and shutdown -----------------------------------------------------------------

    def _producer(self) -> Producer:
        if self.producer is None:
            self.producer = Producer(self.settings, transactional_id=self.transactional_id)
        return self.producer

    def _unschedule_batch(self) -> None:
        """After a failed read: the deadlines of the pilgrims the batch touched, from the committed state."""
        owned = self._owned or set()
        for key in self._touched:
            journey = self._journeys.get(key)
            if journey is not None and journey.partition in owned:
                self._index.schedule(key, self._deadlines(journey))
            else:
                self._index.schedule(key, {})
        self._touched.clear()

    def _discard(self) -> None:
        """After a failed transaction: drop the producer at once (the next one, same transactional
        id, fences it and has the broker abort what it left open) and the consumer (the next one
        resumes from the committed offsets)."""
        if self.producer is not None:
            self.producer.discard()
        self.producer = None
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                self.consumer.close()
        self.consumer = None
        self._owned = None
        self._touched.clear()
        self.ready.clear()

    def close(self) -> None:
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                self.consumer.close()
            self.consumer = None
        if self.producer is not None:
            with contextlib.suppress(Exception):
                self.producer.close()
            self.producer = None
        self._owned = None
        self.ready.clear()


def read_journeys(settings: ClientSettings, topic: str) -> dict[str, Journey]:
    """The latest journey of every pilgrim in the changelog ``topic`` (committed records only)."""
    journeys: dict[str, Journey] = {}
    for record in read_to_end(settings, topic, read_committed=True):
        if record.key is None:
            continue
        key = record.key.decode()
        if record.value is None:
            journeys.pop(key, None)
            continue
        try:
            journeys[key] = Journey.from_json(record.value)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("%s: journey of %s unreadable, skipped: %r", topic, key, exc)
    return journeys
