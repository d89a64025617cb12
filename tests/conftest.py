"""Shared fixtures.

``kafka_bootstrap`` (session): ``KAFKA_BOOTSTRAP_SERVERS`` when set; else a testcontainers Kafka
when a Docker engine answers; else the project's local KRaft broker (``hub kafka up``), stopped at
the end if this session started it. Every test gets its own topic names and group ids.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import HubConfig, load_config


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    if _docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        image = os.environ.get("HUB_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:8.0.0")
        with KafkaContainer(image).with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from streaming.local_broker import LocalBroker

    broker = LocalBroker.from_env(port=int(os.environ.get("HUB_TEST_KAFKA_PORT", "0")) or None)
    already_running = broker.status().startswith("running")
    yield broker.up()
    if not already_running and not os.environ.get("HUB_TEST_KEEP_BROKER"):
        broker.down()


@pytest.fixture
def unique() -> str:
    """A short unique token for topic names and group ids of one test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def hub_config(tmp_path: Path, unique: str, kafka_bootstrap: str) -> HubConfig:
    """The repository's config, pointed at the test broker with topics and groups of this test only."""
    subscriptions = {
        "subscriptions": [
            {
                "id": "ministry-ops",
                "agency": "ministry",
                "event_types": ["PilgrimRegistered"],
                "target": {"kind": "kafka", "topic": f"t{unique}.deliver.ministry"},
            },
            {
                "id": "hotels-none",
                "agency": "hotels",
                "event_types": ["PilgrimRegistered"],
                "target": {"kind": "kafka", "topic": f"t{unique}.deliver.hotels"},
            },
        ]
    }
    (tmp_path / "subscriptions.yaml").write_text(yaml.safe_dump(subscriptions))
    base = load_config()
    raw: dict[str, Any] = base.model_dump(mode="json", exclude={"source"})
    raw["kafka"]["bootstrap_servers"] = kafka_bootstrap
    raw["kafka"]["partitions"] = 3
    raw["kafka"]["topics"] = {
        "events": f"t{unique}.journey.events",
        "quarantine": f"t{unique}.journey.quarantine",
        "dead_letter": f"t{unique}.journey.deadletter",
        "checkpoints": f"t{unique}.ingest.checkpoints",
        "replay": f"t{unique}.journey.replay",
        "audit": f"t{unique}.hub.audit",
        "schemas": f"t{unique}.hub.schemas",
    }
    raw["router"]["group_id"] = f"g{unique}.router"
    raw["identity"]["pilgrim_key_secret"] = "test-secret-0123456789abcdef"
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)
