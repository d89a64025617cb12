"""confluent-kafka (librdkafka) behind the Kafka seam: the producer and consumer hot paths only.

Chosen with ``kafka.client: confluent-kafka`` in ``hub.yaml`` (``ClientSettings.client``); kafka-python
stays the default and still does topic admin, :func:`~streaming.kafka.read_to_end` and ``ping``. The
classes here are what :class:`~streaming.kafka.Producer` and :class:`~streaming.kafka.Consumer` build
when the settings ask for this client, with the same methods, the same guarantees (``acks=all``,
idempotence, transactions, no automatic commits) and the same errors. confluent-kafka is an optional
dependency (``pip install '.[confluent]'``).

librdkafka runs its own threads: produce callbacks are served by :meth:`ConfluentProducer.send`'s
``poll(0)`` and by :meth:`ConfluentDelivery.wait`, and group membership is kept by the library (none of
kafka-python's membership races, so no watchdog).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from streaming.kafka import (
    AuthenticationFailed,
    ClientSettings,
    Consumer,
    DeliveryFailed,
    Headers,
    KafkaUnavailable,
    Producer,
    Reader,
    Record,
    StreamingError,
    TransactionFailed,
    Written,
)

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import confluent_kafka
else:
    try:
        import confluent_kafka
    except ImportError:  # the optional dependency; settings naming it fail with a clear message
        confluent_kafka = None


def _require() -> Any:
    if confluent_kafka is None:
        raise StreamingError("kafka.client is confluent-kafka, but it is not installed: pip install '.[confluent]'")
    return confluent_kafka


def client_config(settings: ClientSettings) -> dict[str, Any]:
    """librdkafka's names for the settings the hub's clients share."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "security.protocol": settings.security_protocol.lower(),
        "socket.timeout.ms": settings.request_timeout_ms,
        "logger": logging.getLogger("librdkafka"),  # not stderr: through logging, like everything else
    }
    if settings.sasl_mechanism:
        config |= {
            "sasl.mechanism": settings.sasl_mechanism,
            "sasl.username": settings.sasl_username,
            "sasl.password": settings.sasl_password,
        }
    if settings.ssl_cafile:
        config["ssl.ca.location"] = settings.ssl_cafile
    return config


def _error(exc: BaseException, doing: str, settings: ClientSettings | None = None) -> StreamingError:
    kafka_error = exc.args[0] if exc.args and hasattr(exc.args[0], "code") else None
    if kafka_error is not None:
        code = kafka_error.code()
        errors = _require().KafkaError
        if code in (errors._AUTHENTICATION, errors.SASL_AUTHENTICATION_FAILED):
            user = settings.sasl_username if settings else "?"
            return AuthenticationFailed(f"the cluster refused the credentials of {user}: {kafka_error.str()}")
        if code in (errors._TRANSPORT, errors._ALL_BROKERS_DOWN, errors._TIMED_OUT, errors._MSG_TIMED_OUT):
            return KafkaUnavailable(f"{doing}: {kafka_error.str()}")
    return StreamingError(f"{doing}: {exc!r}")


class ConfluentDelivery:
    """A produce in flight; the delivery report sets it, :meth:`wait` serves reports until it has one."""

    __slots__ = ("_done", "_error", "_producer", "_written")

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._done = threading.Event()
        self._written: Written | None = None
        self._error: str | None = None

    def report(self, error: Any, message: Any) -> None:
        if error is not None:
            self._error = error.str()
        else:
            self._written = Written(message.topic(), message.partition(), message.offset())
        self._done.set()

    def wait(self, timeout_s: float = 60.0) -> Written:
        deadline = time.monotonic() + timeout_s
        while not self._done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeliveryFailed(f"not acknowledged within {timeout_s}s")
            self._producer.poll(min(left, 0.1))
        if self._error is not None or self._written is None:
            raise DeliveryFailed(self._error or "no delivery report")
        return self._written


class ConfluentProducer(Producer):
    """:class:`~streaming.kafka.Producer` on librdkafka."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transactional_id: str | None = None,
        linger_ms: int = 5,
        batch_size: int = 64 * 1024,
        delivery_timeout_ms: int = 120_000,
        max_request_size: int = 4 * 1024 * 1024,
    ) -> None:
        ck = _require()
        config = client_config(settings) | {
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": linger_ms,
            "batch.size": batch_size,
            "delivery.timeout.ms": delivery_timeout_ms,
            "message.max.bytes": max_request_size,
        }
        if transactional_id:
            # librdkafka wants a record's delivery timeout within the transaction's
            config |= {"transactional.id": transactional_id, "transaction.timeout.ms": delivery_timeout_ms}
            # AddOffsetsToTxn right after a commit meets CONCURRENT_TRANSACTIONS while the coordinator
            # completes the previous transaction; librdkafka's default 100 ms backoff then held one
            # router batch in ten for 80-120 ms (bench/). The markers take a few milliseconds.
            config |= {"retry.backoff.ms": 5, "retry.backoff.max.ms": 100}
        self._settings = settings
        self._timeout_s = settings.request_timeout_ms / 1000
        self._producer = ck.Producer(config)
        self._transactional = transactional_id is not None
        if self._transactional:
            self._call(self._producer.init_transactions, self._timeout_s)

    def send(  # type: ignore[override]
        self, topic: str, value: bytes | None, key: bytes | None = None, headers: Headers | None = None
    ) -> ConfluentDelivery:
        delivery = ConfluentDelivery(self._producer)
        self._produce(topic, value, key, headers, delivery.report)
        self._producer.poll(0)
        return delivery

    def _produce(
        self, topic: str, value: bytes | None, key: bytes | None, headers: Headers | None, report: Any = None
    ) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers or None, on_delivery=report)
                return
            except BufferError:  # the local queue is full: serve reports until there is room
                self._producer.poll(0.1)
            except confluent_kafka.KafkaException as exc:
                raise DeliveryFailed(f"cannot send to {topic}: {exc}") from exc

    def know_topics(self, topics: Iterable[str], timeout_s: float = 30.0) -> None:
        """librdkafka fetches metadata for new topics without blocking sends: nothing to do."""

    def send_batch(self, sends: Iterable[tuple[str, bytes | None, bytes | None, Headers]]) -> None:
        for topic, value, key, headers in sends:
            self._produce(topic, value, key, headers)
        self._producer.poll(0)

    def flush(self, timeout_s: float | None = None) -> None:
        left = self._producer.flush(-1 if timeout_s is None else timeout_s)
        if left:
            raise DeliveryFailed(f"flush did not complete: {left} record(s) still in flight")

    def begin(self) -> None:
        self._call(self._producer.begin_transaction)

    def send_offsets(
        self,
        consumer: Consumer,
        offsets: Mapping[tuple[str, int], int],
        metadata: Mapping[tuple[str, int], str] | None = None,
    ) -> None:
        if not isinstance(consumer, ConfluentConsumer):
            raise TypeError("a confluent-kafka producer commits offsets of a confluent-kafka consumer only")
        notes = metadata or {}
        partitions = [
            confluent_kafka.TopicPartition(t, p, o, metadata=notes[(t, p)])
            if notes.get((t, p))
            else confluent_kafka.TopicPartition(t, p, o)
            for (t, p), o in offsets.items()
        ]
        self._call(
            self._producer.send_offsets_to_transaction,
            partitions,
            consumer._consumer.consumer_group_metadata(),
            self._timeout_s,
        )

    def commit(self) -> None:
        self._call(self._producer.commit_transaction, self._timeout_s)

    def abort(self) -> None:
        self._call(self._producer.abort_transaction, self._timeout_s)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except confluent_kafka.KafkaException as exc:
            raise TransactionFailed(f"{fn.__name__}: {exc!r}") from exc

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
        self._producer = None  # librdkafka's handle is destroyed with its last reference

    def discard(self) -> None:
        self._producer.purge(in_queue=True, in_flight=True)
        self._producer.flush(0)
        self._producer = None


class ConfluentConsumer(Consumer):
    """:class:`~streaming.kafka.Consumer` on librdkafka."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        group_id: str,
        topics: Sequence[str],
        read_committed: bool = False,
        from_beginning: bool = True,
        max_poll_records: int = 500,
        session_timeout_ms: int = 45_000,
        max_poll_interval_ms: int = 300_000,
    ) -> None:
        ck = _require()
        config = client_config(settings) | {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": min(3_000, session_timeout_ms // 3),
            "max.poll.interval.ms": max_poll_interval_ms,
            "allow.auto.create.topics": False,
        }
        self._settings = settings
        self._max_records = max_poll_records
        self.rejoins = 0
        self.assignments = 0
        self._consumer = ck.Consumer(config)
        # The assignment as the rebalance callbacks (served by poll) leave it: asking librdkafka for it
        # from another thread (lag and health checks do) can wait behind a poll in progress.
        self._assigned: frozenset[tuple[str, int]] = frozenset()
        self._consumer.subscribe(
            list(topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )

    def _on_assign(self, _: Any, partitions: list[Any]) -> None:
        self._assigned = frozenset((tp.topic, tp.partition) for tp in partitions)
        self.assignments += 1

    def _on_revoke(self, _: Any, partitions: list[Any]) -> None:
        self._assigned = frozenset()

    def poll(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[Record]:
        # consume(n, timeout) waits for n messages or the timeout, so a quiet topic would hold each
        # batch for the whole timeout: wait for the first message only, then take what is buffered.
        try:
            first = self._consumer.poll(timeout_ms / 1000)
            if first is None:
                return []
            more = (max_records or self._max_records) - 1
            messages = [first, *(self._consumer.consume(more, 0) if more > 0 else ())]
        except confluent_kafka.KafkaException as exc:
            raise _error(exc, "poll failed", self._settings) from exc
        return _records(messages)

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        if not offsets:
            return
        partitions = [confluent_kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self._consumer.commit(offsets=partitions, asynchronous=False)
        except confluent_kafka.KafkaException as exc:
            raise KafkaUnavailable(f"commit failed: {exc!r}") from exc

    def seek(self, positions: Mapping[tuple[str, int], int]) -> None:
        for (topic, partition), offset in positions.items():
            try:
                self._consumer.seek(confluent_kafka.TopicPartition(topic, partition, offset))
            except confluent_kafka.KafkaException as exc:  # not assigned (any more): the next owner reads it
                level = logging.WARNING if (topic, partition) in self._assigned else logging.DEBUG
                logger.log(level, "seek %s/%s to %s refused: %s", topic, partition, offset, exc)

    def committed(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, str] | None]:
        asked = [confluent_kafka.TopicPartition(t, p) for t, p in partitions]
        if not asked:
            return {}
        try:
            answer = self._consumer.committed(asked, timeout=self._settings.request_timeout_ms / 1000)
        except confluent_kafka.KafkaException as exc:
            raise KafkaUnavailable(f"cannot read committed offsets: {exc!r}") from exc
        return {
            (tp.topic, tp.partition): (tp.offset, tp.metadata or "") if tp.offset >= 0 else None for tp in answer
        }

    def seek_to_committed(self) -> None:
        try:
            assigned = self._consumer.assignment()
            if not assigned:
                return
            for tp in self._consumer.committed(assigned, timeout=self._settings.request_timeout_ms / 1000):
                offset = tp.offset if tp.offset >= 0 else confluent_kafka.OFFSET_BEGINNING
                self._consumer.seek(confluent_kafka.TopicPartition(tp.topic, tp.partition, offset))
        except confluent_kafka.KafkaException as exc:
            raise KafkaUnavailable(f"cannot rewind to committed offsets: {exc!r}") from exc

    def lag(self) -> int:
        assigned = [confluent_kafka.TopicPartition(t, p) for t, p in self._assigned]
        if not assigned:
            return 0
        try:
            total = 0
            for tp in self._consumer.position(assigned):
                # The watermarks of the last fetch response (read_committed: the last stable offset):
                # asking the broker instead blocked a busy router for 5 s per partition.
                low, high = self._consumer.get_watermark_offsets(tp, cached=True)
                if high < 0:
                    low, high = self._consumer.get_watermark_offsets(tp, timeout=2.0, cached=False)
                total += max(0, high - (tp.offset if tp.offset >= 0 else low))
            return total
        except confluent_kafka.KafkaException as exc:
            raise KafkaUnavailable(f"lag unknown: {exc!r}") from exc

    def assignment(self) -> set[tuple[str, int]]:
        return set(self._assigned)

    def close(self) -> None:
        self._consumer.close()


def _records(messages: Sequence[Any]) -> list[Record]:
    """The records among consumed messages; errors that are only news (end of partition, retriable)
    are skipped, the others raised."""
    records: list[Record] = []
    for message in messages:
        error = message.error()
        if error is None:
            records.append(_record(message))
        elif error.fatal() or not (error.retriable() or error.code() == confluent_kafka.KafkaError._PARTITION_EOF):
            raise KafkaUnavailable(f"poll failed: {error.str()}")
    return records


def _record(message: Any) -> Record:
    return Record(
        message.topic(),
        message.partition(),
        message.offset(),
        message.key(),
        message.value(),
        list(message.headers() or ()),
        message.timestamp()[1],
    )


class ConfluentReader(Reader):
    """:class:`~streaming.kafka.Reader` on librdkafka (its group id is never joined nor committed to)."""

    def __init__(self, settings: ClientSettings, *, read_committed: bool = True, max_poll_records: int = 1000) -> None:
        ck = _require()
        self._settings = settings
        self._max_records = max_poll_records
        self._assigned: list[Any] = []
        self._consumer = ck.Consumer(
            client_config(settings)
            | {
                "group.id": f"{settings.client_id}.reader",  # librdkafka insists; assign() never joins it
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed" if read_committed else "read_uncommitted",
                "allow.auto.create.topics": False,
            }
        )

    def assign(self, positions: Mapping[tuple[str, int], int]) -> None:
        self._assigned = [confluent_kafka.TopicPartition(t, p, o) for (t, p), o in positions.items()]
        try:
            self._consumer.assign(self._assigned)
        except confluent_kafka.KafkaException as exc:
            raise KafkaUnavailable(f"cannot assign {sorted(positions)}: {exc!r}") from exc

    def poll(self, timeout_ms: int = 0) -> list[Record]:
        if not self._assigned:
            return []
        try:
            messages = self._consumer.consume(self._max_records, timeout_ms / 1000)
        except confluent_kafka.KafkaException as exc:
            raise _error(exc, "poll failed", self._settings) from exc
        return _records(messages)

    def position(self, topic: str, partition: int) -> int:
        try:
            [tp] = self._consumer.position([confluent_kafka.TopicPartition(topic, partition)])
        except confluent_kafka.KafkaException as exc:
            raise KafkaUnavailable(f"position of {topic}/{partition} unknown: {exc!r}") from exc
        if tp.offset >= 0:
            return int(tp.offset)
        for assigned in self._assigned:  # nothing consumed yet: where it was told to start
            if (assigned.topic, assigned.partition) == (topic, partition):
                return int(assigned.offset)
        return 0

    def close(self) -> None:
        self._consumer.close()
