"""A consumer whose client stops heartbeating while it believes it is a stable group member.

Under CPU load kafka-python 3.0.12 sometimes ends a rebalance with its heartbeat switched off: the
broker expires the member after the session timeout and every transactional offset commit is then
refused, so a router worker re-read its batch forever (a CI season run stalled this way). The
seam's consumer notices and rejoins the group with a new client. The fault is injected by switching
the heartbeat off in the client, as the race leaves it."""

from __future__ import annotations

import time

import pytest

from streaming.kafka import Admin, ClientSettings, Consumer, Producer, TopicSpec, next_offsets

pytestmark = [pytest.mark.faults, pytest.mark.integration]


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
    topic = f"t{unique}.membership"
    admin = Admin(settings)
    admin.ensure_topics([TopicSpec(topic, partitions=3)])
    admin.close()
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
