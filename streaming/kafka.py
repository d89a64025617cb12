"""The Kafka seam: the only module that imports a Kafka client library.

Connectors, router and tools speak to Kafka through the few operations here (produce, consume,
commit, transactions, topic admin), with our own :class:`Record` type. kafka-python is the client;
``ClientSettings.client = "confluent-kafka"`` puts librdkafka under the producer and consumer hot paths
(:mod:`streaming.confluent`). Producers always use ``acks=all`` with idempotence: a record the hub has
acknowledged to a sender is on every in-sync replica.

Errors (everything the client raises is translated)::

    StreamingError
    ├── KafkaUnavailable   cannot reach the cluster or it did not answer in time (transient)
    ├── AuthenticationFailed  the cluster refused the credentials
    ├── DeliveryFailed     a produce was not acknowledged; the record may or may not be written
    └── TransactionFailed  a transaction could not be completed; abort, or re-create the producer
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import kafka
import kafka.errors
from kafka import OffsetAndMetadata, TopicPartition

logger = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


class StreamingError(Exception):
    """Base of the errors the Kafka seam raises."""


class AuthenticationFailed(StreamingError):
    """The cluster refused the client's credentials (SASL). Retrying with the same ones will not help."""


class KafkaUnavailable(StreamingError):
    """The cluster could not be reached, or did not answer in time. Worth retrying."""


class DeliveryFailed(StreamingError):
    """A record was not acknowledged by the cluster."""


class TransactionFailed(StreamingError):
    """A transaction failed; the caller aborts it, or re-creates the producer when fenced."""


@dataclass(frozen=True)
class ClientSettings:
    """How to reach the cluster. Secrets are kept out of ``repr``."""

    bootstrap_servers: str
    client_id: str = "pilgrim-hub"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    request_timeout_ms: int = 30_000
    bootstrap_timeout_ms: int = 30_000
    client: Literal["kafka-python", "confluent-kafka"] = "kafka-python"

    def client_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
            "bootstrap_timeout_ms": self.bootstrap_timeout_ms,
        }
        if self.sasl_mechanism:
            config |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        if self.ssl_cafile:
            config["ssl_cafile"] = self.ssl_cafile
        return config


def _unavailable(settings: ClientSettings, exc: Exception) -> StreamingError:
    if isinstance(exc, kafka.errors.SaslAuthenticationFailedError):
        return AuthenticationFailed(f"{settings.bootstrap_servers} refused the credentials of {settings.sasl_username}")
    return KafkaUnavailable(f"no broker answers at {settings.bootstrap_servers}: {exc!r}")


class Record(NamedTuple):
    """One consumed Kafka record (a tuple: made for every record read, so made cheaply)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def _record(r: Any) -> Record:
    """Our record from kafka-python's ConsumerRecord."""
    return Record(r.topic, r.partition, r.offset, r.key, r.value, list(r.headers or ()), r.timestamp)


def _for_client(cls: type, base: type, settings: ClientSettings, confluent_class: str) -> type:
    """The class a seam constructor makes: ``base`` itself, or its confluent-kafka twin when the
    settings ask for that client (imported only then: confluent-kafka is optional)."""
    if cls is base and settings.client == "confluent-kafka":
        from streaming import confluent

        return getattr(confluent, confluent_class)  # type: ignore[no-any-return]
    return cls


@dataclass(frozen=True, slots=True)
class Written:
    """Where an acknowledged record landed."""

    topic: str
    partition: int
    offset: int


def batch_start(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """The first offset of ``records`` per (topic, partition): where to seek to read a batch again."""
    start: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        start[key] = min(start.get(key, record.offset), record.offset)
    return start


def next_offsets(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """The offsets to commit once ``records`` are done, per (topic, partition)."""
    return {(r.topic, r.partition): r.offset + 1 for r in records}


# The group coordinator no longer knows the consumer that sent these offsets.
_REFUSED_MEMBER = (
    kafka.errors.UnknownMemberIdError,
    kafka.errors.IllegalGenerationError,
    kafka.errors.FencedInstanceIdError,
)


class Delivery:
    """A produce in flight; :meth:`wait` blocks until the cluster acknowledges it."""

    __slots__ = ("_future",)

    def __init__(self, future: Any) -> None:
        self._future = future

    def wait(self, timeout_s: float = 60.0) -> Written:
        try:
            meta = self._future.get(timeout=timeout_s)
        except kafka.errors.KafkaTimeoutError as exc:
            raise DeliveryFailed(f"not acknowledged within {timeout_s}s: {exc}") from exc
        except kafka.errors.KafkaError as exc:
            raise DeliveryFailed(str(exc)) from exc
        return Written(meta.topic, meta.partition, meta.offset)


class Producer:
    """Idempotent ``acks=all`` producer; transactional when given a ``transactional_id``.

    Settings naming ``client="confluent-kafka"`` make a :class:`streaming.confluent.ConfluentProducer`."""

    def __new__(cls, settings: ClientSettings, *args: Any, **kwargs: Any) -> Producer:
        return super().__new__(_for_client(cls, Producer, settings, "ConfluentProducer"))

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
        config = settings.client_config() | {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "delivery_timeout_ms": delivery_timeout_ms,
            "max_request_size": max_request_size,
            "allow_auto_create_topics": False,
        }
        if transactional_id:
            config["transactional_id"] = transactional_id
            # kafka-python waits retry_backoff_ms (100) after CONCURRENT_TRANSACTIONS on AddOffsetsToTxn while
            # the previous transaction completes: that wait was the router's p99 at 1k events/s (bench/).
            config["retry_backoff_ms"] = 5
        try:
            self._producer = kafka.KafkaProducer(**config)
        except kafka.errors.KafkaError as exc:
            raise _unavailable(settings, exc) from exc
        self._transactional = transactional_id is not None
        if self._transactional:
            self._call(self._producer.init_transactions)

    def send(
        self, topic: str, value: bytes | None, key: bytes | None = None, headers: Headers | None = None
    ) -> Delivery:
        try:
            return Delivery(self._producer.send(topic, value=value, key=key, headers=headers or []))
        except kafka.errors.KafkaTimeoutError as exc:
            raise KafkaUnavailable(f"cannot send to {topic}: {exc}") from exc
        except kafka.errors.KafkaError as exc:
            raise DeliveryFailed(f"cannot send to {topic}: {exc}") from exc

    def know_topics(self, topics: Iterable[str], timeout_s: float = 30.0) -> None:
        """Fetch the metadata of ``topics`` in one request. kafka-python otherwise blocks the first
        send to each new topic for a metadata round trip of its own, one topic after another (100
        subscriber topics held a router's first batch for 10 s)."""
        names = sorted(set(topics))
        sender = getattr(self._producer, "_sender", None)
        if not names or sender is None or not hasattr(sender, "add_topic"):
            return
        for name in names:
            sender.add_topic(name)
        metadata = self._producer._metadata
        deadline = time.monotonic() + timeout_s
        missing = names
        while missing and time.monotonic() < deadline:  # a topic just created may have no leader yet
            try:
                self._producer._wait_on_metadata(missing[0], int(max(0.001, deadline - time.monotonic()) * 1000))
            except kafka.errors.KafkaError as exc:
                raise KafkaUnavailable(f"no metadata for {missing[0]}: {exc!r}") from exc
            missing = [name for name in missing if metadata.partitions_for_topic(name) is None]
            if missing:
                metadata.request_update()
                time.sleep(0.1)

    def send_batch(self, sends: Iterable[tuple[str, bytes | None, bytes | None, Headers]]) -> None:
        """Send records of the open transaction without a handle on each: :meth:`commit` fails if any
        of them did not land."""
        send = self._producer.send
        topic = ""
        try:
            for topic, value, key, headers in sends:
                send(topic, value=value, key=key, headers=headers)
        except kafka.errors.KafkaTimeoutError as exc:
            raise KafkaUnavailable(f"cannot send to {topic}: {exc}") from exc
        except kafka.errors.KafkaError as exc:
            raise DeliveryFailed(f"cannot send to {topic}: {exc}") from exc

    def flush(self, timeout_s: float | None = None) -> None:
        try:
            self._producer.flush(timeout=timeout_s)
        except kafka.errors.KafkaTimeoutError as exc:
            raise DeliveryFailed(f"flush did not complete: {exc}") from exc

    # ---- transactions -------------------------------------------------------------------------

    def begin(self) -> None:
        self._call(self._producer.begin_transaction)

    def send_offsets(
        self,
        consumer: Consumer,
        offsets: Mapping[tuple[str, int], int],
        metadata: Mapping[tuple[str, int], str] | None = None,
    ) -> None:
        """Add the consumer's next offsets to the open transaction (consume-transform-produce), each
        with its metadata string when given (read back by :meth:`Consumer.committed`)."""
        notes = metadata or {}
        converted = {
            TopicPartition(t, p): OffsetAndMetadata(o, notes.get((t, p), ""), -1) for (t, p), o in offsets.items()
        }
        try:
            self._call(self._producer.send_offsets_to_transaction, converted, consumer._consumer.group_metadata())
        except TransactionFailed as exc:
            if isinstance(exc.__cause__, _REFUSED_MEMBER):
                consumer.note_refused_offsets()
            raise

    def commit(self) -> None:
        self._call(self._producer.commit_transaction)

    def abort(self) -> None:
        self._call(self._producer.abort_transaction)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except kafka.errors.KafkaError as exc:
            raise TransactionFailed(f"{fn.__name__}: {exc!r}") from exc

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.close(timeout=timeout_s)

    def discard(self) -> None:
        """Close at once, dropping records not yet sent. A transaction this producer left open is
        aborted by the broker when a new producer with the same transactional id initialises."""
        sender = getattr(self._producer, "_sender", None)
        if sender is not None:
            sender.force_close()
            sender.join(5)
        with contextlib.suppress(Exception):
            self._producer.close(timeout=0)


class Consumer:
    """A consumer in a group, committing only when told to (never automatically).

    Settings naming ``client="confluent-kafka"`` make a :class:`streaming.confluent.ConfluentConsumer`."""

    def __new__(cls, settings: ClientSettings, *args: Any, **kwargs: Any) -> Consumer:
        return super().__new__(_for_client(cls, Consumer, settings, "ConfluentConsumer"))

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
        config = settings.client_config() | {
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest" if from_beginning else "latest",
            "isolation_level": "read_committed" if read_committed else "read_uncommitted",
            "max_poll_records": max_poll_records,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": min(3_000, session_timeout_ms // 3),
            "max_poll_interval_ms": max_poll_interval_ms,
            "allow_auto_create_topics": False,
        }
        self._settings = settings
        self._topics = list(topics)
        self._config = config
        self._session_timeout_s = session_timeout_ms / 1000
        self._heartbeat_interval_s = config["heartbeat_interval_ms"] / 1000
        self._heartbeat_off_since: float | None = None
        self._stranded_since: float | None = None
        self._membership_suspect = False
        self.rejoins = 0
        self.assignments = 0
        """How many assignments this consumer has received: it changes whenever a rebalance (or a
        rejoin) may have moved partitions, and with them what other members committed."""
        self._consumer = self._open()

    def _open(self) -> Any:
        try:
            consumer = kafka.KafkaConsumer(**self._config)
            consumer.subscribe(self._topics, listener=_CountAssignments(self))
            return consumer
        except kafka.errors.KafkaError as exc:
            raise _unavailable(self._settings, exc) from exc

    def _membership_lost(self) -> str | None:
        """Why this member has (or is about to have) dropped out of its group without knowing it.

        kafka-python 3.0.12 can end a rebalance with its heartbeat switched off while it believes it
        is a stable member (seen under CPU load when a rebalance follows the first one at once). The
        broker then expires the member after the session timeout, and the consumer goes on fetching
        while every transactional offset commit is refused as coming from an unknown member. It can
        also be stranded by a rebalance it never finished (:meth:`_stranded`). Read from the client's
        private state, so a client that changes it only disables the check."""
        if self._membership_suspect:
            return "the group refused this member's offsets"
        coordinator = getattr(self._consumer, "_coordinator", None)
        heartbeat = getattr(coordinator, "heartbeat", None)
        try:
            if coordinator is None or heartbeat is None:
                return None
            now = time.monotonic()
            if not coordinator.stable():
                self._heartbeat_off_since = None
                return self._stranded(coordinator, now)
            self._stranded_since = None
            if getattr(coordinator, "_heartbeat_enabled", True):
                self._heartbeat_off_since = None
            elif self._heartbeat_off_since is None:
                self._heartbeat_off_since = now
            elif now - self._heartbeat_off_since > 3 * self._heartbeat_interval_s:
                return f"heartbeat switched off for {now - self._heartbeat_off_since:.1f}s in a stable group"
            silent = now - max(heartbeat.last_receive, heartbeat.last_reset)
            if silent > self._session_timeout_s:
                return f"no heartbeat answered for {silent:.0f}s (session timeout {self._session_timeout_s:.0f}s)"
        except (AttributeError, TypeError):
            return None
        return None

    def _stranded(self, coordinator: Any, now: float) -> str | None:
        """A rebalance this member took part in has finished, but the client never took its assignment.

        kafka-python 3.0.12 leaves a JoinGroup/SyncGroup round running when a poll times out, and
        takes its result at the next poll only if the group still needs a rejoin. When the round
        itself settled that need (the leader's assignment catches up with the topic metadata that
        asked for it), the result is never taken: the client stays "rebalancing" with no partitions
        and no heartbeat, and polls for ever with nothing to read (seen in a soak: three of five
        router workers idle from the start). Nothing is in flight and nothing asks for a rejoin."""
        join = getattr(coordinator, "_join_task", None)
        idle = join is None or bool(join.is_done)
        if not (coordinator.rejoining and idle and not coordinator.need_rejoin()):
            self._stranded_since = None
            return None
        if self._stranded_since is None:
            self._stranded_since = now
        elif now - self._stranded_since > 3 * self._heartbeat_interval_s:
            return f"a rebalance ended {now - self._stranded_since:.1f}s ago and this member never took its assignment"
        return None

    def _rejoin(self, reason: str) -> None:
        """Leave the group and join it again with a fresh client; positions restart from the
        committed offsets, as after any rebalance."""
        group = self._config["group_id"]
        logger.warning("consumer group %s: %s; rejoining with a new consumer", group, reason)
        with contextlib.suppress(Exception):
            self._consumer.close(autocommit=False, timeout_ms=5_000)
        self._consumer = self._open()
        self._heartbeat_off_since = None
        self._stranded_since = None
        self._membership_suspect = False
        self.rejoins += 1

    def note_refused_offsets(self) -> None:
        """The group coordinator refused offsets from this member (unknown member / generation):
        the next :meth:`poll` rejoins."""
        self._membership_suspect = True

    def poll(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[Record]:
        reason = self._membership_lost()
        if reason is not None:
            self._rejoin(reason)
        try:
            batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"poll failed: {exc!r}") from exc
        return [_record(r) for batch in batches.values() for r in batch]

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit the next offsets to read, per (topic, partition)."""
        if not offsets:
            return
        converted = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        try:
            self._consumer.commit(converted)
        except kafka.errors.KafkaError as exc:
            if isinstance(exc, (kafka.errors.CommitFailedError, *_REFUSED_MEMBER)):
                self.note_refused_offsets()
            raise KafkaUnavailable(f"commit failed: {exc!r}") from exc

    def seek(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Move the fetch position back (or forward) so the next poll starts there."""
        for (topic, partition), offset in positions.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition), offset)
            except (kafka.errors.KafkaError, AssertionError, ValueError) as exc:
                logger.debug("seek %s/%s skipped: %r", topic, partition, exc)

    def committed(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, str] | None]:
        """The group's committed offset and its metadata string per partition; None where nothing was committed."""
        found: dict[tuple[str, int], tuple[int, str] | None] = {}
        try:
            for topic, partition in partitions:
                committed = self._consumer.committed(TopicPartition(topic, partition), metadata=True)
                found[(topic, partition)] = None if committed is None else (committed.offset, committed.metadata or "")
        except (kafka.errors.KafkaError, AssertionError) as exc:
            raise KafkaUnavailable(f"cannot read committed offsets: {exc!r}") from exc
        return found

    def seek_to_committed(self) -> None:
        """Move every assigned partition back to the group's committed offset (or its beginning)."""
        try:
            for tp in self._consumer.assignment():
                committed = self._consumer.committed(tp)
                if committed is None:
                    self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, committed)
        except (kafka.errors.KafkaError, AssertionError) as exc:
            raise KafkaUnavailable(f"cannot rewind to committed offsets: {exc!r}") from exc

    def lag(self) -> int:
        """Records between this consumer's fetch positions and the ends of its assigned partitions.

        (Positions, not committed offsets: with transactions the log end includes commit markers
        that committed offsets never pass.)"""
        try:
            assigned = list(self._consumer.assignment())
            if not assigned:
                return 0
            ends = self._consumer.end_offsets(assigned)
            return sum(max(0, ends[tp] - self._consumer.position(tp)) for tp in assigned)
        except (kafka.errors.KafkaError, AssertionError) as exc:
            raise KafkaUnavailable(f"lag unknown: {exc!r}") from exc

    def assignment(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def close(self) -> None:
        self._consumer.close(autocommit=False)


class _CountAssignments(kafka.ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: Consumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.owner.assignments += 1


class Reader:
    """Reads assigned partitions from given offsets, outside any consumer group (nothing committed):
    a second read position beside a group member's, e.g. to catch a new subscriber up on history.

    Settings naming ``client="confluent-kafka"`` make a :class:`streaming.confluent.ConfluentReader`."""

    def __new__(cls, settings: ClientSettings, *args: Any, **kwargs: Any) -> Reader:
        return super().__new__(_for_client(cls, Reader, settings, "ConfluentReader"))

    def __init__(self, settings: ClientSettings, *, read_committed: bool = True, max_poll_records: int = 1000) -> None:
        self._settings = settings
        try:
            self._consumer = kafka.KafkaConsumer(
                **settings.client_config(),
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed" if read_committed else "read_uncommitted",
                max_poll_records=max_poll_records,
            )
        except kafka.errors.KafkaError as exc:
            raise _unavailable(settings, exc) from exc

    def assign(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Read exactly these partitions, each from its offset (an offset before the log start reads
        from the log start)."""
        try:
            self._consumer.assign([TopicPartition(t, p) for t, p in positions])
            for (topic, partition), offset in positions.items():
                self._consumer.seek(TopicPartition(topic, partition), offset)
        except (kafka.errors.KafkaError, AssertionError, ValueError) as exc:
            raise KafkaUnavailable(f"cannot assign {sorted(positions)}: {exc!r}") from exc

    def poll(self, timeout_ms: int = 0) -> list[Record]:
        if not self._consumer.assignment():
            return []
        try:
            batches = self._consumer.poll(timeout_ms=timeout_ms)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"poll failed: {exc!r}") from exc
        return [_record(r) for batch in batches.values() for r in batch]

    def position(self, topic: str, partition: int) -> int:
        """The offset of the next record this reader returns from the partition."""
        try:
            return int(self._consumer.position(TopicPartition(topic, partition)))
        except (kafka.errors.KafkaError, AssertionError) as exc:
            raise KafkaUnavailable(f"position of {topic}/{partition} unknown: {exc!r}") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._consumer.close(autocommit=False)


@dataclass(frozen=True)
class TopicSpec:
    """A topic the hub needs, with its partitions and replication."""

    name: str
    partitions: int = 3
    replication_factor: int = 1
    configs: Mapping[str, str] = field(default_factory=dict)


class Admin:
    """Topic administration."""

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        try:
            self._admin = kafka.KafkaAdminClient(**settings.client_config())
        except kafka.errors.KafkaError as exc:
            raise _unavailable(settings, exc) from exc

    def ensure_topics(self, specs: Iterable[TopicSpec], timeout_s: float = 30.0) -> list[str]:
        """Create the topics that do not exist yet; return the names created."""
        wanted = {s.name: s for s in specs}
        existing = set(self.list_topics())
        missing = {name: spec for name, spec in wanted.items() if name not in existing}
        if not missing:
            return []
        request = {
            name: {
                "num_partitions": spec.partitions,
                "replication_factor": spec.replication_factor,
                "configs": dict(spec.configs),
            }
            for name, spec in missing.items()
        }
        try:
            result = self._admin.create_topics(request, timeout_ms=int(timeout_s * 1000), raise_errors=False)
            self._admin.wait_for_topics(list(missing), timeout_ms=int(timeout_s * 1000))
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"creating topics {sorted(missing)} failed: {exc!r}") from exc
        for topic in result.get("topics", []):
            code = topic.get("error_code", 0)
            if code not in (0, kafka.errors.TopicAlreadyExistsError.errno):
                raise StreamingError(f"creating topic {topic.get('name')}: {topic.get('error_message') or code}")
        logger.info("created topics %s", sorted(missing))
        return sorted(missing)

    def list_topics(self) -> list[str]:
        try:
            return list(self._admin.list_topics())
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"listing topics failed: {exc!r}") from exc

    def upsert_scram_user(self, user: str, password: str, mechanism: str = "SCRAM-SHA-512") -> None:
        """Create or update a SCRAM credential (the broker stores only a salted hash)."""
        from kafka.admin import UserScramCredentialUpsertion

        try:
            result = self._admin.alter_user_scram_credentials([UserScramCredentialUpsertion(user, mechanism, password)])
        except kafka.errors.KafkaError as exc:
            raise StreamingError(f"cannot set SCRAM credential for {user}: {exc!r}") from exc
        errors = {u: r for u, r in (result or {}).items() if isinstance(r, dict) and r.get("error")}
        if errors:
            raise StreamingError(f"cannot set SCRAM credential for {user}: {errors}")

    def delete_topics(self, names: Sequence[str]) -> None:
        if names:
            self._admin.delete_topics(list(names), raise_errors=False)

    def end_offsets(self, topic: str) -> dict[int, int]:
        """High-water mark per partition of ``topic``."""
        consumer = kafka.KafkaConsumer(**self._settings.client_config(), enable_auto_commit=False)
        try:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            return {tp.partition: off for tp, off in consumer.end_offsets(partitions).items()}
        finally:
            consumer.close()

    def close(self) -> None:
        self._admin.close()


def ping(settings: ClientSettings, timeout_s: float = 10.0) -> None:
    """Raise :class:`KafkaUnavailable` unless the cluster answers a metadata request in time."""
    probe = ClientSettings(
        **{
            **settings.__dict__,
            "request_timeout_ms": int(timeout_s * 1000),
            "bootstrap_timeout_ms": int(timeout_s * 1000),
            "client_id": "hub-ping",
        }
    )
    try:
        admin = kafka.KafkaAdminClient(**probe.client_config())
    except (kafka.errors.KafkaError, OSError) as exc:
        raise KafkaUnavailable(f"no broker answers at {settings.bootstrap_servers}: {exc!r}") from exc
    try:
        admin.list_topics()
    except kafka.errors.KafkaError as exc:
        raise KafkaUnavailable(f"broker at {settings.bootstrap_servers} did not answer: {exc!r}") from exc
    finally:
        admin.close()


def read_to_end(
    settings: ClientSettings, topic: str, *, read_committed: bool = True, timeout_s: float = 60.0
) -> list[Record]:
    """Every record of ``topic`` up to its current end (no consumer group, nothing committed)."""
    consumer = kafka.KafkaConsumer(
        **settings.client_config(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed" if read_committed else "read_uncommitted",
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = {tp: off for tp, off in consumer.end_offsets(partitions).items()}
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"reading {topic} to its end took over {timeout_s}s")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(_record(r) for r in batch)
        return records
    except kafka.errors.KafkaError as exc:
        raise KafkaUnavailable(f"reading {topic} failed: {exc!r}") from exc
    finally:
        consumer.close()
