"""One feed end to end on the real broker: HTTP POST -> Avro on the journey topic -> router -> subscribers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from config import HubConfig
from hub import Hub
from router.engine import decode_delivery, read_derived_schemas
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from streaming.kafka import ClientSettings, Producer
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration

FEEDS = Path(__file__).parents[2] / "demo" / "feeds" / "operators"
API_KEY = "demo-operators-key-not-for-production"


def post_all(hub: Hub) -> list[dict]:
    client = TestClient(hub.app())
    return [
        client.post("/ingest/operators", content=feed.read_bytes(), headers={"X-API-Key": API_KEY}).json()
        for feed in sorted(FEEDS.iterdir())
    ]


def test_registrations_reach_every_subscriber_as_avro_with_cloudevents(hub_config: HubConfig) -> None:
    hub = Hub(hub_config)
    try:
        hub.start_router()
        results = post_all(hub)
        accepted = sum(r["accepted"] for r in results)
        assert accepted == 7
        bootstrap = hub_config.kafka.bootstrap_servers
        codec = Codec(SchemaCatalogue())
        derived: dict = {}

        journey = read_topic(bootstrap, hub_config.kafka.topics.events, expected=accepted)
        assert len(journey) == accepted
        for record in journey:  # the journey topic holds the hub's own catalogue schemas
            assert codec.decode(record.value or b"")[0] == "PilgrimRegistered"

        for sub in hub.subscriptions.subscriptions:
            delivered = read_topic(bootstrap, sub.target.topic, expected=accepted)
            assert len(delivered) == accepted, sub.id  # none lost, none duplicated
            ids = set()
            derived = read_derived_schemas(ClientSettings(bootstrap), hub_config.kafka.topics.schemas)
            for record in delivered:
                event = decode_delivery(record.value or b"", derived)
                assert event["envelope"]["event_type"] == "PilgrimRegistered"
                assert event["pilgrim"]["passport_number"]  # no projection: the whole event
                assert record.key == event["envelope"]["pilgrim_key"].encode()
                assert record.header("ce_id") == event["envelope"]["event_id"].encode()
                assert record.header("ce_type") == b"hajj.journey.PilgrimRegistered"
                assert record.header("ce_specversion") == b"1.0"
                assert record.header("content-type") == b"application/vnd.apache.avro+binary"
                assert record.header("hub_subscriber") == sub.id.encode()
                ids.add(event["envelope"]["event_id"])
            assert ids == {eid for r in results for eid in r["event_ids"]}

        quarantined = read_topic(bootstrap, hub_config.kafka.topics.quarantine, expected=3)
        assert sorted((r.header("hub_location") or b"").decode() for r in quarantined) == [
            "$",
            "$.registrations[1]",
            "$.registrations[2]",
        ]
    finally:
        hub.close()


def test_router_commits_after_delivery_and_dead_letters_what_it_cannot_read(hub_config: HubConfig) -> None:
    hub = Hub(hub_config)
    bootstrap = hub_config.kafka.bootstrap_servers
    topics = hub_config.kafka.topics
    try:
        hub.start_router()
        post_all(hub)
        producer = Producer(ClientSettings(bootstrap))
        producer.send(topics.events, b"not avro at all", b"k").wait()
        producer.close()
        first = hub.subscriptions.subscriptions[0].target.topic
        assert len(read_topic(bootstrap, first, expected=7)) == 7
        dead = read_topic(bootstrap, topics.dead_letter, expected=2)
        # each subscriber's worker dead-letters what it cannot read, naming itself
        assert sorted((d.header("hub_dlq_subscriber") or b"").decode() for d in dead) == ["hotels-none", "ministry-ops"]
        assert all(d.value == b"not avro at all" for d in dead)
        assert all(b"undecodable" in (d.header("hub_dlq_error") or b"") for d in dead)
    finally:
        hub.close()

    # a new router in the same group starts after the committed offsets: no re-delivery
    again = Hub(hub_config)
    try:
        again.start_router()
        assert len(read_topic(bootstrap, first, expected=8, timeout_s=6)) == 7
    finally:
        again.close()


def test_journey_endpoint_needs_an_admin_token_when_configured(hub_config: HubConfig) -> None:
    import hashlib

    open_hub = Hub(hub_config)  # development mode, no tokens configured: open
    try:
        assert TestClient(open_hub.app()).get("/journeys/pk_unknown").status_code == 404
    finally:
        open_hub.close()
    guarded = HubConfig.model_validate(
        {
            **hub_config.model_dump(mode="json", exclude={"source"}),
            "source": hub_config.source,
            "identity": {"pilgrim_key_secret": "test-secret-0123456789abcdef"},
            "admin": {"token_sha256": [hashlib.sha256(b"ops-room-token").hexdigest()]},
        }
    )
    hub = Hub(guarded)
    try:
        client = TestClient(hub.app())
        assert client.get("/journeys/pk_unknown").status_code == 401
        assert client.get("/journeys/pk_unknown", headers={"Authorization": "Bearer guess"}).status_code == 401
        assert client.get("/journeys/pk_unknown", headers={"Authorization": "Bearer ops-room-token"}).status_code == 404
    finally:
        hub.close()
