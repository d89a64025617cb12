"""Consumers that dropped out of their group without their client knowing it.

Under CPU load kafka-python 3.0.12 can lose a group member in two ways, both seen here:

* it ends a rebalance with its heartbeat switched off while it believes it is a stable member: the
  broker expires the member after the session timeout and every transactional offset commit is then
  refused, so a router worker re-read its batch for ever (a CI season run stalled this way);
* a JoinGroup/SyncGroup round outlives the poll that started it and settles the need that started it,
  so no later poll takes its result: the client stays "rebalancing" with no partitions and no
  heartbeat, and reads nothing for ever (three of five router workers in a soak).

The seam's consumer notices both and rejoins the group with a new client. Each fault is injected by
putting the client in the state the race leaves behind."""

from __future__ import annotations

import time

import pytest

from streaming.kafka import Admin, ClientSettings, Consumer, Producer, TopicSpec, next_offsets

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def _topic(settings: ClientSettings, name: str) -> str:
    admin = Admin(settings)
    admin.ensure_topics([TopicSpec(name, partitions=3)])
    admin.close()
    return name


def _produce(settings: ClientSettings, topic: str, values: range) -> None:
    producer = Producer(settings)
    for i in values:
        producer.send(topic, f"v{i}".encode(), f"k{i % 5}".encode()).wait()
    producer.close()


def _read(consumer: Consumer, count: int, timeout_s: float) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        records = consumer.poll(timeout_ms=200)
        got += [r.value or b"" for r in records]
        consumer.commit(next_offsets(records))
    return got


def test_a_consumer_whose_heartbeat_stopped_rejoins_and_reads_on(kafka_bootstrap: str, unique: str) -> None:
    settings = ClientSettings(kafka_bootstrap)
    topic = _topic(settings, f"t{unique}.membership")
    _produce(settings, topic, range(20))

    consumer = Consumer(settings, group_id=f"g{unique}", topics=[topic], session_timeout_ms=6_000)
    try:
        first = _read(consumer, 20, timeout_s=30)
        assert sorted(first) == sorted(f"v{i}".encode() for i in range(20))

        consumer._consumer._coordinator._disable_heartbeat()  # the state the race leaves behind
        started = time.monotonic()
        second = _read(consumer, 1, timeout_s=10)  # past the 6 s session: the broker has expired the member
        _produce(settings, topic, range(20, 40))
        second += _read(consumer, 20, timeout_s=60)
        second += _read(consumer, 1, timeout_s=3)
        assert consumer.rejoins == 1
        assert time.monotonic() - started < 40
        # reading resumed at the group's committed offsets: nothing lost, nothing twice
        assert sorted(second) == sorted(f"v{i}".encode() for i in range(20, 40))
    finally:
        consumer.close()


def _stranded(settings: ClientSettings, topic: str, group: str) -> Consumer:
    """A consumer whose first JoinGroup/SyncGroup round outlived the poll that started it and settled
    what asked for it (here by hand; in the soak the leader's assignment caught up with the topic
    metadata), so no later poll takes its result. A round that a 1 ms poll happens to finish is not
    the race: that consumer is closed and another one tries."""
    for attempt in range(10):
        consumer = Consumer(settings, group_id=f"{group}.{attempt}", topics=[topic], session_timeout_ms=6_000)
        coordinator = consumer._consumer._coordinator
        assert consumer._consumer.partitions_for_topic(topic)  # metadata first, as in the soak
        deadline = time.monotonic() + 20
        while not coordinator.stable() and time.monotonic() < deadline:
            task = coordinator._join_task
            if task is not None and task.is_done and task.succeeded():
                return consumer  # the round is over, and nobody will take its result
            if task is None or task.is_done:  # start a round (the first one meets MemberIdRequired)
                consumer._consumer.poll(timeout_ms=1)
                coordinator.rejoin_needed = False
            time.sleep(0.02)
        consumer.close()
    raise AssertionError("could not put a consumer in the stranded state")


def test_a_consumer_stranded_by_a_rebalance_it_never_finished_rejoins(kafka_bootstrap: str, unique: str) -> None:
    settings = ClientSettings(kafka_bootstrap)
    topic = _topic(settings, f"t{unique}.stranded")
    _produce(settings, topic, range(10))

    consumer = _stranded(settings, topic, f"g{unique}")
    try:
        coordinator = consumer._consumer._coordinator
        assert not coordinator.stable() and not coordinator.need_rejoin() and not consumer._consumer.assignment()
        started = time.monotonic()
        _produce(settings, topic, range(10, 30))
        got = _read(consumer, 30, timeout_s=60)
        got += _read(consumer, 1, timeout_s=3)
        assert consumer.rejoins == 1
        assert time.monotonic() - started < 30
        assert sorted(got) == sorted(f"v{i}".encode() for i in range(30))
    finally:
        consumer.close()
