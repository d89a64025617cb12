"""The hub talks to Kafka with SASL/SCRAM: tested against the local broker's SCRAM listener."""

from __future__ import annotations

import os
import secrets
import time

import pytest

from streaming.kafka import (
    Admin,
    AuthenticationFailed,
    ClientSettings,
    Consumer,
    KafkaUnavailable,
    Producer,
    StreamingError,
    TopicSpec,
)
from streaming.local_broker import LocalBroker

pytestmark = pytest.mark.integration


@pytest.fixture
def scram_broker(kafka_bootstrap: str) -> LocalBroker:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("an external cluster: its security is its own")
    broker = LocalBroker.from_env(port=int(kafka_bootstrap.rsplit(":", 1)[1]))
    if not broker.status().startswith("running"):
        pytest.skip("tests run on a testcontainers broker")
    if not (_open(broker.sasl_port) and _open(broker.tls_port)):
        pytest.fail("the local broker has no SCRAM/TLS listeners: restart it (hub kafka down && hub kafka up)")
    return broker


def _open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def scram_user_and_topic(kafka_bootstrap: str, user: str, topic: str) -> tuple[str, str, str]:
    """A new SCRAM user with a random password, and a topic for it (made over the plaintext listener)."""
    password = secrets.token_urlsafe(16)
    admin = Admin(ClientSettings(kafka_bootstrap))
    try:
        admin.upsert_scram_user(user, password)
        admin.ensure_topics([TopicSpec(topic, 1)])
    finally:
        admin.close()
    return user, password, topic


def first_values(settings: ClientSettings, topic: str, group: str, timeout_s: float = 30) -> list[bytes | None]:
    """The values of the first non-empty poll of ``topic`` in a new group."""
    consumer = Consumer(settings, group_id=group, topics=[topic])
    got = []
    deadline = time.monotonic() + timeout_s
    while not got and time.monotonic() < deadline:
        got = consumer.poll(timeout_ms=500)
    consumer.close()
    return [r.value for r in got]


def scram(broker: LocalBroker, user: str, password: str) -> ClientSettings:
    return ClientSettings(
        broker.sasl_bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=user,
        sasl_password=password,
        request_timeout_ms=10_000,
        bootstrap_timeout_ms=5_000,
    )


def test_scram_clients_produce_and_consume_and_wrong_passwords_are_refused(
    scram_broker: LocalBroker, kafka_bootstrap: str, unique: str
) -> None:
    user, password, topic = scram_user_and_topic(kafka_bootstrap, f"hub-{unique}", f"t{unique}.secure")

    settings = scram(scram_broker, user, password)
    assert password not in repr(settings)  # secrets stay out of logs
    producer = None
    for _ in range(20):  # the credential reaches the broker through the metadata log
        try:
            producer = Producer(settings)
            break
        except StreamingError:  # authentication may fail until the credential lands
            time.sleep(0.5)
    assert producer is not None, "SCRAM client could not connect"
    producer.send(topic, b"over scram", b"k").wait()
    producer.close()
    assert first_values(settings, topic, f"g{unique}") == [b"over scram"]

    def send_with_a_wrong_password() -> None:
        bad = Producer(scram(scram_broker, user, "wrong-password"))
        bad.send(topic, b"must not land").wait(timeout_s=5)

    with pytest.raises((AuthenticationFailed, KafkaUnavailable)):
        send_with_a_wrong_password()


def test_scram_over_tls_with_the_local_ca(scram_broker: LocalBroker, kafka_bootstrap: str, unique: str) -> None:
    user, password, topic = scram_user_and_topic(kafka_bootstrap, f"hub-tls-{unique}", f"t{unique}.tls")
    settings = ClientSettings(
        scram_broker.tls_bootstrap_servers,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=user,
        sasl_password=password,
        ssl_cafile=str(scram_broker.ca_file),
        bootstrap_timeout_ms=5_000,
    )
    producer = None
    for _ in range(20):
        try:
            producer = Producer(settings)
            break
        except StreamingError:
            time.sleep(0.5)
    assert producer is not None, "SASL_SSL client could not connect"
    assert producer.send(topic, b"over tls", b"k").wait().offset == 0
    producer.close()

    def without_the_ca() -> None:  # a client that does not trust the local CA is refused
        Producer(
            ClientSettings(
                scram_broker.tls_bootstrap_servers,
                security_protocol="SASL_SSL",
                sasl_mechanism="SCRAM-SHA-512",
                sasl_username=user,
                sasl_password=password,
                bootstrap_timeout_ms=3_000,
            )
        ).send(topic, b"x").wait(timeout_s=3)

    with pytest.raises(StreamingError):
        without_the_ca()


def test_confluent_client_speaks_scram_over_tls_too(
    scram_broker: LocalBroker, kafka_bootstrap: str, unique: str
) -> None:
    user, password, topic = scram_user_and_topic(kafka_bootstrap, f"hub-ck-{unique}", f"t{unique}.cktls")
    secure = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": user,
        "sasl_password": password,
        "client": "confluent-kafka",
    }
    settings = ClientSettings(scram_broker.tls_bootstrap_servers, ssl_cafile=str(scram_broker.ca_file), **secure)
    written = None
    for _ in range(20):  # the credential reaches the broker through the metadata log
        producer = Producer(settings)
        try:
            written = producer.send(topic, b"over tls", b"k").wait(timeout_s=5)
            break
        except StreamingError:
            time.sleep(0.5)
        finally:
            producer.discard()
    assert written is not None and written.offset == 0
    assert first_values(settings, topic, f"g{unique}") == [b"over tls"]

    untrusting = Producer(ClientSettings(scram_broker.tls_bootstrap_servers, **secure))  # no local CA
    with pytest.raises(StreamingError):
        untrusting.send(topic, b"must not land").wait(timeout_s=5)
    untrusting.discard()
