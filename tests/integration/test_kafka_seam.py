"""The Kafka seam against the real broker."""

from __future__ import annotations

from typing import Any

import pytest

from streaming.kafka import Admin, ClientSettings, Consumer, Producer, TopicSpec
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration


def test_topics_are_created_once_with_their_partitions(kafka_bootstrap: str, unique: str) -> None:
    admin = Admin(ClientSettings(kafka_bootstrap))
    try:
        spec = TopicSpec(f"t{unique}.seam", partitions=4)
        assert admin.ensure_topics([spec]) == [spec.name]
        assert admin.ensure_topics([spec]) == []
        assert sorted(admin.end_offsets(spec.name)) == [0, 1, 2, 3]
    finally:
        admin.close()


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_produce_consume_commit_resume(kafka_bootstrap: str, unique: str, client: Any) -> None:
    settings = ClientSettings(kafka_bootstrap, client=client)
    topic = f"t{unique}.seam"
    admin = Admin(settings)
    admin.ensure_topics([TopicSpec(topic, partitions=2)])
    admin.close()
    producer = Producer(settings)
    for i in range(10):
        producer.send(topic, f"v{i}".encode(), b"one-pilgrim", [("h", b"1")]).wait()
    producer.close()

    group = f"g{unique}"
    consumer = Consumer(settings, group_id=group, topics=[topic])
    seen = []
    while len(seen) < 10:
        seen += consumer.poll(timeout_ms=500)
    assert [r.value for r in seen] == [f"v{i}".encode() for i in range(10)]  # one key: one partition, in order
    assert seen[0].header("h") == b"1"
    consumer.commit({(topic, seen[0].partition): seen[4].offset})  # records 0-3 done, 4.. not yet
    consumer.close()
    again = read_topic(kafka_bootstrap, topic, expected=6, timeout_s=15, group=group)
    assert [r.value for r in again] == [f"v{i}".encode() for i in range(4, 10)]


def test_settings_pick_the_client_under_producers_and_consumers(kafka_bootstrap: str, unique: str) -> None:
    from streaming.confluent import ConfluentConsumer, ConfluentProducer

    settings = ClientSettings(kafka_bootstrap, client="confluent-kafka")
    producer = Producer(settings)
    consumer = Consumer(settings, group_id=f"g{unique}", topics=[f"t{unique}.none"])
    try:
        assert isinstance(producer, ConfluentProducer) and isinstance(consumer, ConfluentConsumer)
        default = Producer(ClientSettings(kafka_bootstrap))
        assert type(default) is Producer
        default.close()
    finally:
        producer.close()
        consumer.close()
